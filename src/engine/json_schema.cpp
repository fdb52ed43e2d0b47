#include "engine/json_schema.h"

#include <algorithm>
#include <bit>
#include <cmath>
#include <limits>
#include <map>

#include "common/error.h"

namespace tokenmill::engine {
namespace {

using Json = nlohmann::json;

enum TypeBit : uint8_t {
  kNull = 1,
  kBool = 2,
  kInteger = 4,
  kNumber = 8,  // integers included
  kString = 16,
  kArray = 32,
  kObject = 64,
  kAnyType = 127,
};

constexpr int64_t kUnreachable = int64_t{1} << 40;
constexpr int kMaxDepth = 32;        // nested objects and arrays
constexpr int kMaxIntDigits = 15;
constexpr int kMaxExpDigits = 3;
constexpr int kMaxKeyBytes = 256;   // undeclared keys
constexpr int kMaxProperties = 64;  // declared per object (a bit mask each)

const std::vector<std::string> kBooleans = {"true", "false"};
const std::vector<std::string> kNullText = {"null"};

bool is_ws(uint8_t b) { return b == ' ' || b == '\n' || b == '\t'; }

// Whitespace allowed in one gap at a nesting depth: a newline and two spaces of indent per
// level, as pretty-printed JSON has, but no runs that would only spend the token budget.
bool whitespace_fits(uint8_t& run, size_t depth) { return run++ < 2 * depth + 1; }
bool is_digit(uint8_t b) { return b >= '0' && b <= '9'; }
bool is_hex(uint8_t b) { return is_digit(b) || (b >= 'a' && b <= 'f') || (b >= 'A' && b <= 'F'); }

}  // namespace

struct JsonSchema::Node {
  uint8_t types = kAnyType;
  std::vector<std::string> literals;  // non-empty: the value is one of these JSON texts
  std::vector<std::string> keys;      // declared properties, as JSON string bodies (escaped, no quotes)
  std::vector<int> values;            // their schemas
  uint64_t required = 0;
  int additional = 0;  // schema of undeclared keys; -1: none allowed
  int items = 0;       // schema of array items
  std::vector<int> any_of;
  int64_t min_length = kUnreachable;  // bytes of the shortest valid value
};

JsonSchema::JsonSchema() = default;
JsonSchema::~JsonSchema() = default;
const JsonSchema::Node& JsonSchema::node(int i) const { return nodes_[i]; }
int64_t JsonSchema::min_length() const { return nodes_[root_].min_length; }

// Schema JSON into nodes. Node 0 is "anything".
class SchemaCompiler {
 public:
  SchemaCompiler(const Json& root, JsonSchema& out) : root_(root), out_(out) {
    out_.nodes_.emplace_back();  // any value
    out_.nodes_[0].min_length = 1;
  }

  int compile(const Json& s, const std::string& path) {
    if (s.is_boolean()) {
      if (s.get<bool>()) return 0;
      throw Error("JSON schema at " + path + " is false: no value is valid");
    }
    if (!s.is_object()) throw Error("JSON schema at " + path + " must be an object or a boolean");
    if (const auto ref = s.find("$ref"); ref != s.end()) return reference(*ref, path);
    const int index = static_cast<int>(out_.nodes_.size());
    out_.nodes_.emplace_back();
    JsonSchema::Node node = build(s, path);
    out_.nodes_[index] = std::move(node);
    return index;
  }

  void compute_min_lengths() {
    auto& nodes = out_.nodes_;
    for (bool changed = true; changed;) {
      changed = false;
      for (auto& n : nodes) {
        const int64_t m = min_length(n);
        if (m < n.min_length) {
          n.min_length = m;
          changed = true;
        }
      }
    }
  }

 private:
  int reference(const Json& ref, const std::string& path) {
    if (!ref.is_string() || !ref.get<std::string>().starts_with("#"))
      throw Error("JSON schema at " + path + ": only local $refs (#...) are supported");
    const std::string pointer = ref.get<std::string>().substr(1);
    const Json* target = &root_;
    try {
      if (!pointer.empty()) target = &root_.at(Json::json_pointer(pointer));
    } catch (const Json::exception&) {
      throw Error("JSON schema at " + path + ": $ref " + ref.get<std::string>() + " points nowhere");
    }
    if (const auto it = refs_.find(target); it != refs_.end()) return it->second;
    const int index = static_cast<int>(out_.nodes_.size());
    out_.nodes_.emplace_back();
    refs_[target] = index;  // before compiling, so recursive schemas refer back to it
    if (target->is_object() && target->contains("$ref")) {
      out_.nodes_[index].any_of = {compile(*target, ref.get<std::string>())};
    } else {
      const int compiled = compile(*target, ref.get<std::string>());
      out_.nodes_[index] = out_.nodes_[compiled];
    }
    return index;
  }

  JsonSchema::Node build(const Json& s, const std::string& path) {
    static const char* const kUnsupported[] = {
        "pattern", "minLength", "maxLength", "minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum",
        "multipleOf", "minItems", "maxItems", "uniqueItems", "contains", "prefixItems", "patternProperties",
        "propertyNames", "minProperties", "maxProperties", "dependentRequired", "dependentSchemas", "not",
        "if", "then", "else", "unevaluatedProperties", "unevaluatedItems"};
    for (const char* k : kUnsupported)
      if (s.contains(k)) throw Error("JSON schema keyword '" + std::string(k) + "' (at " + path + ") is not supported");
    JsonSchema::Node n;
    for (const char* key : {"anyOf", "oneOf"}) {
      const auto it = s.find(key);
      if (it == s.end()) continue;
      if (!it->is_array() || it->empty()) throw Error("JSON schema at " + path + ": " + key + " must be a non-empty array");
      if (s.contains("properties") || s.contains("items") || s.contains("enum") || s.contains("const"))
        throw Error("JSON schema at " + path + ": " + key + " next to properties, items, enum or const is not supported");
      for (size_t i = 0; i < it->size(); ++i)
        n.any_of.push_back(compile((*it)[i], path + "/" + key + "/" + std::to_string(i)));
      return n;
    }
    if (const auto all = s.find("allOf"); all != s.end()) {
      if (!all->is_array() || all->size() != 1) throw Error("JSON schema at " + path + ": allOf must hold exactly one schema");
      n.any_of = {compile((*all)[0], path + "/allOf/0")};
      return n;
    }
    if (const auto c = s.find("const"); c != s.end()) {
      n.literals = {c->dump()};
      return n;
    }
    if (const auto e = s.find("enum"); e != s.end()) {
      if (!e->is_array() || e->empty()) throw Error("JSON schema at " + path + ": enum must be a non-empty array");
      if (e->size() > kMaxProperties) throw Error("JSON schema at " + path + ": enum has more than 64 values");
      for (const Json& v : *e) n.literals.push_back(v.dump());
      return n;
    }
    n.types = types(s, path);
    if (n.types & kObject) object(s, path, n);
    if (n.types & kArray) {
      if (const auto items = s.find("items"); items != s.end()) n.items = compile(*items, path + "/items");
    }
    return n;
  }

  static uint8_t type_bit(const Json& t, const std::string& path) {
    static const std::map<std::string, uint8_t> kTypes = {{"null", kNull},     {"boolean", kBool}, {"integer", kInteger},
                                                          {"number", kNumber}, {"string", kString}, {"array", kArray},
                                                          {"object", kObject}};
    const auto it = t.is_string() ? kTypes.find(t.get<std::string>()) : kTypes.end();
    if (it == kTypes.end()) throw Error("JSON schema at " + path + ": unknown type " + t.dump());
    return it->second;
  }

  static uint8_t types(const Json& s, const std::string& path) {
    const auto t = s.find("type");
    if (t == s.end()) {
      if (s.contains("properties") || s.contains("required") || s.contains("additionalProperties")) return kObject;
      if (s.contains("items")) return kArray;
      return kAnyType;
    }
    if (!t->is_array()) return type_bit(*t, path);
    uint8_t bits = 0;
    for (const Json& x : *t) bits |= type_bit(x, path);
    if (bits == 0) throw Error("JSON schema at " + path + ": type is an empty list");
    return bits;
  }

  void object(const Json& s, const std::string& path, JsonSchema::Node& n) {
    const auto props = s.find("properties");
    if (props != s.end()) {
      if (!props->is_object()) throw Error("JSON schema at " + path + ": properties must be an object");
      if (props->size() > kMaxProperties) throw Error("JSON schema at " + path + ": more than 64 properties");
      for (const auto& [name, schema] : props->items()) {
        const std::string quoted = Json(name).dump();
        n.keys.push_back(quoted.substr(1, quoted.size() - 2));
        n.values.push_back(compile(schema, path + "/properties/" + name));
      }
    }
    if (const auto req = s.find("required"); req != s.end()) {
      if (!req->is_array()) throw Error("JSON schema at " + path + ": required must be an array");
      for (const Json& r : *req) {
        const std::string quoted = r.is_string() ? r.dump() : "";
        const auto it = std::find(n.keys.begin(), n.keys.end(), quoted.size() >= 2 ? quoted.substr(1, quoted.size() - 2) : "");
        if (it == n.keys.end())
          throw Error("JSON schema at " + path + ": required property " + r.dump() + " is not in properties");
        n.required |= uint64_t{1} << (it - n.keys.begin());
      }
    }
    const auto extra = s.find("additionalProperties");
    if (extra == s.end()) {
      n.additional = props == s.end() ? 0 : -1;
    } else if (extra->is_boolean()) {
      n.additional = extra->get<bool>() ? 0 : -1;
    } else {
      n.additional = compile(*extra, path + "/additionalProperties");
    }
  }

  int64_t min_length(const JsonSchema::Node& n) const {
    const auto& nodes = out_.nodes_;
    int64_t best = kUnreachable;
    if (!n.any_of.empty()) {
      for (int a : n.any_of) best = std::min(best, nodes[a].min_length);
      return best;
    }
    if (!n.literals.empty()) {
      for (const auto& l : n.literals) best = std::min<int64_t>(best, static_cast<int64_t>(l.size()));
      return best;
    }
    if (n.types & (kInteger | kNumber)) best = std::min<int64_t>(best, 1);
    if (n.types & kString) best = std::min<int64_t>(best, 2);
    if (n.types & kArray) best = std::min<int64_t>(best, 2);
    if (n.types & (kNull | kBool)) best = std::min<int64_t>(best, 4);
    if (n.types & kObject) {
      int64_t total = 2;
      int count = 0;
      for (size_t i = 0; i < n.keys.size(); ++i) {
        if (!(n.required >> i & 1)) continue;
        total += static_cast<int64_t>(n.keys[i].size()) + 3 + nodes[n.values[i]].min_length + (count++ > 0 ? 1 : 0);
      }
      best = std::min(best, std::min(total, kUnreachable));
    }
    return best;
  }

  const Json& root_;
  JsonSchema& out_;
  std::map<const Json*, int> refs_;
};

std::shared_ptr<const JsonSchema> JsonSchema::compile(const Json& schema) {
  auto out = std::shared_ptr<JsonSchema>(new JsonSchema());
  SchemaCompiler compiler(schema, *out);
  out->root_ = compiler.compile(schema, "#");
  compiler.compute_min_lengths();
  if (out->nodes_[out->root_].min_length >= kUnreachable) throw Error("the JSON schema admits no finite document");
  return out;
}

// ---------------------------------------------------------------------------------------------
// The matcher: a stack of frames per way the output can still be read (anyOf may leave several).

namespace {

// Inside a JSON string: escapes and UTF-8 well-formedness (Unicode Table 3-7).
struct StringState {
  enum Mode : uint8_t { Plain, Escape, Unicode, Continuation };
  Mode mode = Plain;
  uint8_t pending = 0;  // hex digits or continuation bytes still due
  uint8_t lo = 0x80, hi = 0xBF;  // range of the next continuation byte

  enum Result { Continue, End, Dead };
  Result feed(uint8_t b) {
    switch (mode) {
      case Plain:
        if (b == '"') return End;
        if (b == '\\') {
          mode = Escape;
          return Continue;
        }
        if (b < 0x20) return Dead;
        if (b < 0x80) return Continue;
        return lead(b) ? Continue : Dead;
      case Escape:
        if (b == 'u') {
          mode = Unicode;
          pending = 4;
          return Continue;
        }
        if (b == '"' || b == '\\' || b == '/' || b == 'b' || b == 'f' || b == 'n' || b == 'r' || b == 't') {
          mode = Plain;
          return Continue;
        }
        return Dead;
      case Unicode:
        if (!is_hex(b)) return Dead;
        if (--pending == 0) mode = Plain;
        return Continue;
      case Continuation:
        if (b < lo || b > hi) return Dead;
        lo = 0x80;
        hi = 0xBF;
        if (--pending == 0) mode = Plain;
        return Continue;
    }
    return Dead;
  }
  bool lead(uint8_t b) {
    mode = Continuation;
    lo = 0x80;
    hi = 0xBF;
    if (b >= 0xC2 && b <= 0xDF) pending = 1;
    else if (b == 0xE0) pending = 2, lo = 0xA0;
    else if (b == 0xED) pending = 2, hi = 0x9F;
    else if (b >= 0xE1 && b <= 0xEF) pending = 2;
    else if (b == 0xF0) pending = 3, lo = 0x90;
    else if (b >= 0xF1 && b <= 0xF3) pending = 3;
    else if (b == 0xF4) pending = 3, hi = 0x8F;
    else return false;
    return true;
  }
  int64_t due() const { return mode == Escape ? 1 : mode == Plain ? 0 : pending; }
};

enum class Kind : uint8_t { Value, Object, Array, String, Number, Literal };
enum ObjectPhase : uint8_t { AfterOpen, InKey, AfterKey, AfterValue, ExpectKey };
enum ArrayPhase : uint8_t { ArrayOpen, AfterItem };
enum NumberPhase : uint8_t { NumStart, Minus, Zero, Int, Dot, Frac, Exp, ExpSign, ExpDigits };

struct Frame {
  Kind kind = Kind::Value;
  uint8_t phase = 0;
  uint8_t ws = 0;
  uint8_t digits = 0;
  bool integer = false;   // number: no fraction or exponent
  bool free_key = false;  // object key: may still be an undeclared key
  int32_t node = 0;
  int32_t key = -1;       // object: declared property of the current key, -1 undeclared
  int32_t pos = 0;        // object key, literal: bytes matched
  uint64_t seen = 0;      // object: declared properties present
  uint64_t candidates = 0;  // object key, literal: still matching
  StringState str;
  const std::vector<std::string>* texts = nullptr;  // literal
};

using Stack = std::vector<Frame>;

bool accepting_number(const Frame& f) {
  return f.phase == Zero || f.phase == Int || f.phase == Frac || f.phase == ExpDigits;
}

uint64_t all_bits(size_t n) { return n >= 64 ? ~uint64_t{0} : (uint64_t{1} << n) - 1; }

class Machine {
 public:
  explicit Machine(const JsonSchema& schema) : s_(schema) {}

  // Every stack `st` can become after byte b, appended to `out`.
  void advance(Stack st, uint8_t b, std::vector<Stack>& out) const {
    for (;;) {
      if (st.empty()) return;  // nothing follows a whole document
      Frame& f = st.back();
      switch (f.kind) {
        case Kind::Value: {
          if (is_ws(b)) {
            if (whitespace_fits(f.ws, st.size())) out.push_back(std::move(st));
            return;
          }
          const JsonSchema::Node& n = s_.node(f.node);
          if (!n.any_of.empty()) {
            for (int alt : n.any_of) {
              Stack copy = st;
              copy.back().node = alt;
              advance(std::move(copy), b, out);
            }
            return;
          }
          if (!start_value(f, n, b, st.size())) return;
          if (f.kind == Kind::Number || f.kind == Kind::Literal) continue;  // the byte is theirs too
          out.push_back(std::move(st));
          return;
        }
        case Kind::String:
          switch (f.str.feed(b)) {
            case StringState::Dead: return;
            case StringState::End: st.pop_back(); [[fallthrough]];
            case StringState::Continue: out.push_back(std::move(st)); return;
          }
          return;
        case Kind::Number:
          switch (number(f, b)) {
            case StringState::Dead: return;
            case StringState::Continue: out.push_back(std::move(st)); return;
            case StringState::End: st.pop_back(); continue;  // the byte belongs to the parent
          }
          return;
        case Kind::Literal: {
          uint64_t next = 0;
          bool whole = false;
          for (uint64_t c = f.candidates; c; c &= c - 1) {
            const int i = std::countr_zero(c);
            const std::string& t = (*f.texts)[i];
            if (static_cast<int>(t.size()) > f.pos && static_cast<uint8_t>(t[f.pos]) == b) next |= uint64_t{1} << i;
            whole |= static_cast<int>(t.size()) == f.pos;
          }
          if (!next) {
            if (!whole) return;
            st.pop_back();  // a number-like literal ended; the byte is the parent's
            continue;
          }
          f.candidates = next;
          ++f.pos;
          bool all_whole = true;
          for (uint64_t c = next; c; c &= c - 1) all_whole &= static_cast<int>((*f.texts)[std::countr_zero(c)].size()) == f.pos;
          if (all_whole) st.pop_back();
          out.push_back(std::move(st));
          return;
        }
        case Kind::Array:
          switch (array(st, b)) {
            case Step::Dead: return;
            case Step::Consumed: out.push_back(std::move(st)); return;
            case Step::PassOn: continue;  // the first byte of the first item
          }
          return;
        case Kind::Object:
          if (object(st, b)) out.push_back(std::move(st));
          return;
      }
    }
  }

  bool complete(const Stack& st) const {
    if (st.empty()) return true;
    if (st.size() != 1) return false;
    const Frame& f = st.back();
    if (f.kind == Kind::Number) return accepting_number(f);
    if (f.kind == Kind::Literal) return rest(f) == 0;
    return false;
  }

  int64_t distance(const Stack& st) const {
    int64_t d = 0;
    for (const Frame& f : st) d += rest(f);
    return d;
  }

 private:
  // The first byte of a value: the frame becomes the value's own.
  bool start_value(Frame& f, const JsonSchema::Node& n, uint8_t b, size_t depth) const {
    const int32_t node = f.node;
    auto literal = [&](const std::vector<std::string>* texts) {
      f = Frame{};
      f.kind = Kind::Literal;
      f.node = node;
      f.texts = texts;
      f.candidates = all_bits(texts->size());
      return true;
    };
    if (!n.literals.empty()) return literal(&n.literals);
    if ((b == '{' || b == '[') && depth > kMaxDepth) return false;
    f = Frame{};
    f.node = node;
    if (b == '{' && (n.types & kObject)) {
      f.kind = Kind::Object;
      f.phase = AfterOpen;
      return true;
    }
    if (b == '[' && (n.types & kArray)) {
      f.kind = Kind::Array;
      f.phase = ArrayOpen;
      return true;
    }
    if (b == '"' && (n.types & kString)) {
      f.kind = Kind::String;
      return true;
    }
    if ((b == '-' || is_digit(b)) && (n.types & (kInteger | kNumber))) {
      f.kind = Kind::Number;
      f.phase = NumStart;
      f.integer = !(n.types & kNumber);
      return true;
    }
    if ((b == 't' || b == 'f') && (n.types & kBool)) return literal(&kBooleans);
    if (b == 'n' && (n.types & kNull)) return literal(&kNullText);
    return false;
  }

  static StringState::Result number(Frame& f, uint8_t b) {
    using R = StringState;
    const bool digit = is_digit(b);
    switch (f.phase) {
      case NumStart:
        if (b == '-') return f.phase = Minus, R::Continue;
        [[fallthrough]];
      case Minus:
        if (b == '0') return f.phase = Zero, R::Continue;
        if (digit) return f.phase = Int, f.digits = 1, R::Continue;
        return R::Dead;
      case Zero:
      case Int:
      case Frac:
        if (digit && f.phase != Zero) return ++f.digits <= kMaxIntDigits ? R::Continue : R::Dead;
        if (b == '.' && f.phase != Frac && !f.integer) return f.phase = Dot, R::Continue;
        if ((b == 'e' || b == 'E') && !f.integer) return f.phase = Exp, R::Continue;
        return R::End;
      case Dot:
        if (digit) return f.phase = Frac, f.digits = 1, R::Continue;
        return R::Dead;
      case Exp:
        if (b == '+' || b == '-') return f.phase = ExpSign, R::Continue;
        [[fallthrough]];
      case ExpSign:
        if (digit) return f.phase = ExpDigits, f.digits = 1, R::Continue;
        return R::Dead;
      case ExpDigits:
        if (digit) return ++f.digits <= kMaxExpDigits ? R::Continue : R::Dead;
        return R::End;
    }
    return R::Dead;
  }

  enum class Step { Dead, Consumed, PassOn };

  Step array(Stack& st, uint8_t b) const {
    Frame& f = st.back();
    if (is_ws(b)) return whitespace_fits(f.ws, st.size()) ? Step::Consumed : Step::Dead;
    if (b == ']') {
      st.pop_back();
      return Step::Consumed;
    }
    if (f.phase == AfterItem && b != ',') return Step::Dead;
    const bool first = f.phase == ArrayOpen;
    f.phase = AfterItem;
    f.ws = 0;
    Frame item;
    item.node = s_.node(f.node).items;
    st.push_back(item);
    return first ? Step::PassOn : Step::Consumed;
  }

  bool can_add_key(const Frame& f, const JsonSchema::Node& n) const {
    return n.additional >= 0 || (all_bits(n.keys.size()) & ~f.seen) != 0;
  }

  bool object(Stack& st, uint8_t b) const {
    Frame& f = st.back();
    const JsonSchema::Node& n = s_.node(f.node);
    const uint64_t missing = n.required & ~f.seen;
    switch (f.phase) {
      case AfterOpen:
      case ExpectKey:
        if (is_ws(b)) return whitespace_fits(f.ws, st.size());
        if (b == '}' && f.phase == AfterOpen && missing == 0) {
          st.pop_back();
          return true;
        }
        if (b != '"' || !can_add_key(f, n)) return false;
        f.phase = InKey;
        f.pos = 0;
        f.candidates = all_bits(n.keys.size()) & ~f.seen;
        f.free_key = n.additional >= 0;
        f.str = {};
        return true;
      case InKey: {
        if (b == '"' && (!f.free_key || f.str.mode == StringState::Plain)) {
          f.key = -1;
          for (uint64_t c = f.candidates; c; c &= c - 1)
            if (static_cast<int>(n.keys[std::countr_zero(c)].size()) == f.pos) f.key = std::countr_zero(c);
          if (f.key < 0 && !f.free_key) return false;
          if (f.key >= 0) f.seen |= uint64_t{1} << f.key;
          f.phase = AfterKey;
          f.ws = 0;
          return true;
        }
        uint64_t next = 0;
        for (uint64_t c = f.candidates; c; c &= c - 1) {
          const std::string& k = n.keys[std::countr_zero(c)];
          if (static_cast<int>(k.size()) > f.pos && static_cast<uint8_t>(k[f.pos]) == b) next |= c & -c;
        }
        if (f.free_key && (f.pos >= kMaxKeyBytes || f.str.feed(b) != StringState::Continue)) f.free_key = false;
        if (!next && !f.free_key) return false;
        f.candidates = next;
        ++f.pos;
        return true;
      }
      case AfterKey: {
        if (is_ws(b)) return whitespace_fits(f.ws, st.size());
        if (b != ':') return false;
        f.phase = AfterValue;
        f.ws = 0;
        Frame v;
        v.node = f.key >= 0 ? n.values[f.key] : n.additional;
        st.push_back(v);
        return true;
      }
      case AfterValue:
        if (is_ws(b)) return whitespace_fits(f.ws, st.size());
        if (b == '}' && missing == 0) {
          st.pop_back();
          return true;
        }
        if (b != ',' || !can_add_key(f, n)) return false;
        f.phase = ExpectKey;
        f.ws = 0;
        return true;
    }
    return false;
  }

  // Bytes for the declared properties in `mask`: "key":value each, with commas between them
  // (and before the first unless `first`).
  int64_t properties_cost(const JsonSchema::Node& n, uint64_t mask, bool first) const {
    int64_t total = 0;
    int count = 0;
    for (uint64_t c = mask; c; c &= c - 1) {
      const int i = std::countr_zero(c);
      total += static_cast<int64_t>(n.keys[i].size()) + 3 + s_.node(n.values[i]).min_length;
      ++count;
    }
    return count == 0 ? 0 : total + count - (first ? 1 : 0);
  }

  int64_t min_length(int node) const { return s_.node(node).min_length; }

  // Fewest bytes that finish frame f's value, once whatever it is waiting for has completed.
  int64_t rest(const Frame& f) const {
    switch (f.kind) {
      case Kind::Value: return min_length(f.node);
      case Kind::String: return f.str.due() + 1;
      case Kind::Number: return accepting_number(f) ? 0 : 1;
      case Kind::Array: return 1;
      case Kind::Literal: {
        int64_t best = kUnreachable;
        for (uint64_t c = f.candidates; c; c &= c - 1)
          best = std::min<int64_t>(best, static_cast<int64_t>((*f.texts)[std::countr_zero(c)].size()) - f.pos);
        return best;
      }
      case Kind::Object: break;
    }
    const JsonSchema::Node& n = s_.node(f.node);
    const uint64_t missing = n.required & ~f.seen;
    switch (f.phase) {
      case AfterOpen: return missing ? properties_cost(n, missing, true) + 1 : 1;
      case AfterValue: return properties_cost(n, missing, false) + 1;
      case AfterKey:
        return 1 + min_length(f.key >= 0 ? n.values[f.key] : n.additional) + properties_cost(n, missing, false) + 1;
      case ExpectKey: {
        if (missing) return properties_cost(n, missing, true) + 1;
        int64_t best = n.additional >= 0 ? 3 + min_length(n.additional) : kUnreachable;
        for (uint64_t c = all_bits(n.keys.size()) & ~f.seen; c; c &= c - 1)
          best = std::min(best, properties_cost(n, c & -c, true));
        return best + 1;
      }
      case InKey: {
        int64_t best = kUnreachable;
        for (uint64_t c = f.candidates; c; c &= c - 1) {
          const int i = std::countr_zero(c);
          best = std::min(best, static_cast<int64_t>(n.keys[i].size()) - f.pos + 2 + min_length(n.values[i]) +
                                    properties_cost(n, missing & ~(uint64_t{1} << i), false));
        }
        if (f.free_key) best = std::min(best, f.str.due() + 2 + min_length(n.additional) + properties_cost(n, missing, false));
        return best + 1;
      }
    }
    return kUnreachable;
  }

  const JsonSchema& s_;
};

}  // namespace

struct JsonMatcher::State {
  std::vector<Stack> stacks;
};

namespace {

// All stacks after `bytes`; empty when none survives.
std::vector<Stack> advance_all(const Machine& m, const std::vector<Stack>& stacks, std::span<const uint8_t> bytes) {
  std::vector<Stack> current = stacks, next;
  for (uint8_t b : bytes) {
    next.clear();
    for (const Stack& st : current) m.advance(st, b, next);
    if (next.empty()) return next;
    current.swap(next);
  }
  return current;
}

bool any_complete(const Machine& m, const std::vector<Stack>& stacks) {
  return std::any_of(stacks.begin(), stacks.end(), [&](const Stack& s) { return m.complete(s); });
}

int64_t min_distance(const Machine& m, const std::vector<Stack>& stacks) {
  int64_t best = kUnreachable;
  for (const Stack& s : stacks) best = std::min(best, m.distance(s));
  return best;
}

}  // namespace

JsonMatcher::JsonMatcher(std::shared_ptr<const JsonSchema> schema)
    : schema_(std::move(schema)), state_(std::make_unique<State>()) {
  Frame root;
  root.node = schema_->root();
  state_->stacks.push_back({root});
}
JsonMatcher::~JsonMatcher() = default;
JsonMatcher::JsonMatcher(const JsonMatcher& o) : schema_(o.schema_), state_(std::make_unique<State>(*o.state_)) {}
JsonMatcher& JsonMatcher::operator=(const JsonMatcher& o) {
  schema_ = o.schema_;
  state_ = std::make_unique<State>(*o.state_);
  return *this;
}

bool JsonMatcher::feed(uint8_t byte) { return feed(std::span(&byte, 1)); }

bool JsonMatcher::feed(std::span<const uint8_t> bytes) {
  auto next = advance_all(Machine(*schema_), state_->stacks, bytes);
  if (next.empty()) return false;
  state_->stacks = std::move(next);
  return true;
}

bool JsonMatcher::complete() const { return any_complete(Machine(*schema_), state_->stacks); }

int64_t JsonMatcher::distance() const { return min_distance(Machine(*schema_), state_->stacks); }

// ---------------------------------------------------------------------------------------------

VocabularyIndex::VocabularyIndex(const tokenizer::Tokenizer& tokenizer) {
  using tokenizer::TokenType;
  trie_.emplace_back();
  offsets_.push_back(0);
  for (size_t t = 0; t < tokenizer.size(); ++t) {
    const auto id = static_cast<int32_t>(t);
    const TokenType type = tokenizer.type(id);
    const std::string& piece = tokenizer.piece(id);
    const bool usable = type == TokenType::Normal || type == TokenType::Byte || type == TokenType::UserDefined;
    if (tokenizer.is_end_of_generation(id)) end_tokens_.push_back(id);
    if (usable && !piece.empty() && !tokenizer.is_end_of_generation(id)) {
      int32_t node = 0;
      for (char c : piece) {
        const auto b = static_cast<uint8_t>(c);
        auto& children = trie_[node].children;
        auto it = std::lower_bound(children.begin(), children.end(), std::pair<uint8_t, int32_t>{b, -1});
        if (it == children.end() || it->first != b) {
          const auto child = static_cast<int32_t>(trie_.size());
          children.insert(it, {b, child});
          trie_.emplace_back();
          node = child;
        } else {
          node = it->second;
        }
      }
      trie_[node].tokens.push_back(id);
      bytes_.insert(bytes_.end(), piece.begin(), piece.end());
    }
    offsets_.push_back(static_cast<uint32_t>(bytes_.size()));
  }
}

std::span<const uint8_t> VocabularyIndex::bytes(int32_t token) const {
  if (token < 0 || static_cast<size_t>(token) + 1 >= offsets_.size()) return {};
  return std::span(bytes_).subspan(offsets_[token], offsets_[token + 1] - offsets_[token]);
}

namespace {

class JsonConstraint final : public TokenConstraint {
 public:
  JsonConstraint(std::shared_ptr<const JsonSchema> schema, std::shared_ptr<const VocabularyIndex> vocabulary)
      : schema_(std::move(schema)), vocabulary_(std::move(vocabulary)), machine_(*schema_) {
    Frame root;
    root.node = schema_->root();
    stacks_.push_back({root});
  }

  bool allows(int32_t token, int64_t remaining) const override {
    const auto& ends = vocabulary_->end_tokens();
    if (std::find(ends.begin(), ends.end(), token) != ends.end()) return any_complete(machine_, stacks_);
    const auto bytes = vocabulary_->bytes(token);
    if (bytes.empty()) return false;
    const auto next = advance_all(machine_, stacks_, bytes);
    return !next.empty() && min_distance(machine_, next) <= remaining;
  }

  // Walks the vocabulary trie with the matcher, so tokens sharing a prefix share the work and a
  // dead prefix rules out every token below it.
  int64_t mask(std::span<float> logits, int64_t remaining) const override {
    std::vector<char> allowed(logits.size(), 0);
    int64_t count = 0;
    walk(0, stacks_, remaining, allowed, count);
    if (any_complete(machine_, stacks_)) {
      for (int32_t t : vocabulary_->end_tokens()) {
        if (static_cast<size_t>(t) < allowed.size() && !allowed[t]) {
          allowed[t] = 1;
          ++count;
        }
      }
    }
    for (size_t i = 0; i < logits.size(); ++i)
      if (!allowed[i]) logits[i] = -std::numeric_limits<float>::infinity();
    return count;
  }

  void accept(int32_t token) override {
    auto next = advance_all(machine_, stacks_, vocabulary_->bytes(token));
    if (!next.empty()) stacks_ = std::move(next);
  }

  bool complete() const override { return any_complete(machine_, stacks_); }

 private:
  void walk(int32_t node, const std::vector<Stack>& stacks, int64_t remaining, std::vector<char>& allowed,
            int64_t& count) const {
    std::vector<Stack> next;
    for (const auto& [byte, child] : vocabulary_->trie()[node].children) {
      next.clear();
      for (const Stack& st : stacks) machine_.advance(st, byte, next);
      if (next.empty()) continue;
      const auto& tokens = vocabulary_->trie()[child].tokens;
      if (!tokens.empty() && min_distance(machine_, next) <= remaining) {
        for (int32_t t : tokens) {
          if (static_cast<size_t>(t) < allowed.size()) {
            allowed[t] = 1;
            ++count;
          }
        }
      }
      walk(child, next, remaining, allowed, count);
    }
  }

  std::shared_ptr<const JsonSchema> schema_;
  std::shared_ptr<const VocabularyIndex> vocabulary_;
  Machine machine_;
  std::vector<Stack> stacks_;
};

}  // namespace

std::unique_ptr<TokenConstraint> json_constraint(std::shared_ptr<const JsonSchema> schema,
                                                 std::shared_ptr<const VocabularyIndex> vocabulary) {
  return std::make_unique<JsonConstraint>(std::move(schema), std::move(vocabulary));
}

}  // namespace tokenmill::engine
