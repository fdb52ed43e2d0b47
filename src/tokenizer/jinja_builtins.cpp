#include "tokenizer/jinja_builtins.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <map>

#include "tokenizer/jinja_error.h"
#include "tokenizer/jinja_text.h"

namespace tokenmill::jinja {

namespace {

[[noreturn]] void fail(const std::string& message) { throw RuntimeError(message); }

// --- argument helpers -------------------------------------------------------------------

const Value& arg_or(const CallArgs& args, size_t index, std::string_view name, const Value& fallback) {
  const Value* v = args.get(index, name);
  return v ? *v : fallback;
}

bool bool_arg(const CallArgs& args, size_t index, std::string_view name, bool fallback) {
  const Value* v = args.get(index, name);
  return v && !v->is_undefined() ? v->truthy() : fallback;
}

std::string string_arg(const CallArgs& args, size_t index, std::string_view name, const char* what) {
  const Value* v = args.get(index, name);
  if (!v || !v->is_string()) fail(std::string(what) + " expects a string for '" + std::string(name) + "'");
  return v->str();
}

const std::string& as_string(const Value& v, const char* what) {
  if (!v.is_string()) fail(std::string(what) + " expects a string, got " + v.type_name());
  return v.str();
}

CallArgs rest_args(const CallArgs& args, size_t from) {
  CallArgs rest;
  for (size_t i = from; i < args.positional.size(); ++i) rest.positional.push_back(args.positional[i]);
  rest.keyword = args.keyword;
  return rest;
}

// --- shared operations ------------------------------------------------------------------

// "a.b.0": dict keys and list indices, as Jinja's attribute arguments of sort, map, ...
Value attribute_path(const Value& item, const std::string& path) {
  Value current = item;
  size_t start = 0;
  while (true) {
    const size_t dot = path.find('.', start);
    const std::string part = path.substr(start, dot == std::string::npos ? std::string::npos : dot - start);
    if (current.is_object()) {
      const Value* found = current.object().find(part);
      current = found ? *found : Value();
    } else if (current.is_array() && !part.empty() && part.find_first_not_of("0123456789") == std::string::npos) {
      const size_t index = std::stoul(part);
      current = index < current.array().size() ? current.array()[index] : Value();
    } else {
      return Value();
    }
    if (dot == std::string::npos) return current;
    start = dot + 1;
  }
}

Value attribute_of(const Value& item, const Value& attribute) {
  if (attribute.is_int()) return attribute_path(item, std::to_string(attribute.integer()));
  return attribute_path(item, attribute.str());
}

Value lowered(const Value& v, bool case_sensitive) {
  return !case_sensitive && v.is_string() ? Value(to_lower(v.str())) : v;
}

Array pairs_of(const Object& object) {
  Array pairs;
  for (const auto& [key, value] : object.entries) pairs.push_back(Value(Array{Value(key), value}));
  return pairs;
}

std::string slice_code_points(const std::string& s, size_t first, size_t count) {
  const std::vector<size_t> offsets = code_point_offsets(s);
  first = std::min(first, offsets.size() - 1);
  const size_t last = std::min(first + count, offsets.size() - 1);
  return s.substr(offsets[first], offsets[last] - offsets[first]);
}

std::string capitalize(const std::string& s) {
  if (s.empty()) return s;
  const std::string head = slice_code_points(s, 0, 1);
  return to_upper(head) + to_lower(s.substr(head.size()));
}

// Python's str.title(): a letter after a non-letter starts a word.
std::string title(const std::string& s) {
  std::string out;
  bool previous_cased = false;
  for (size_t pos = 0; pos < s.size();) {
    const size_t start = pos;
    next_code_point(s, pos);
    const std::string ch = s.substr(start, pos - start);
    const bool cased = to_upper(ch) != to_lower(ch);
    out += cased ? (previous_cased ? to_lower(ch) : to_upper(ch)) : ch;
    previous_cased = cased;
  }
  return out;
}

std::string replace(const std::string& s, const std::string& old_text, const std::string& new_text, int64_t count) {
  if (count < 0) count = INT64_MAX;
  std::string out;
  if (old_text.empty()) {  // Python inserts between every character
    const std::vector<size_t> offsets = code_point_offsets(s);
    for (size_t i = 0; i + 1 < offsets.size(); ++i) {
      if (count-- > 0) out += new_text;
      out += s.substr(offsets[i], offsets[i + 1] - offsets[i]);
    }
    if (count > 0) out += new_text;
    return out;
  }
  size_t pos = 0;
  while (count-- > 0) {
    const size_t found = s.find(old_text, pos);
    if (found == std::string::npos) break;
    out += s.substr(pos, found - pos) + new_text;
    pos = found + old_text.size();
  }
  return out + s.substr(pos);
}

// str.split(sep=None, maxsplit=-1)
Array split(const std::string& s, const Value& sep, int64_t maxsplit) {
  Array parts;
  if (sep.is_none() || sep.is_undefined()) {
    size_t pos = 0;
    const auto skip_spaces = [&] {
      while (pos < s.size()) {
        size_t next = pos;
        if (!is_space(next_code_point(s, next))) break;
        pos = next;
      }
    };
    skip_spaces();
    while (pos < s.size()) {
      if (maxsplit >= 0 && static_cast<int64_t>(parts.size()) == maxsplit) {
        parts.push_back(Value(strip(s.substr(pos), nullptr, StripSide::Right)));
        return parts;
      }
      const size_t start = pos;
      while (pos < s.size()) {
        size_t next = pos;
        if (is_space(next_code_point(s, next))) break;
        pos = next;
      }
      parts.push_back(Value(s.substr(start, pos - start)));
      skip_spaces();
    }
    return parts;
  }
  const std::string& separator = as_string(sep, "split()");
  if (separator.empty()) fail("split(): empty separator");
  size_t pos = 0;
  while (maxsplit < 0 || static_cast<int64_t>(parts.size()) < maxsplit) {
    const size_t found = s.find(separator, pos);
    if (found == std::string::npos) break;
    parts.push_back(Value(s.substr(pos, found - pos)));
    pos = found + separator.size();
  }
  parts.push_back(Value(s.substr(pos)));
  return parts;
}

// '{} and {name}'.format(...): positional, numbered and named fields, no format specs.
std::string format_string(const std::string& pattern, const CallArgs& args) {
  std::string out;
  size_t next_index = 0;
  for (size_t i = 0; i < pattern.size(); ++i) {
    const char c = pattern[i];
    if ((c == '{' || c == '}') && i + 1 < pattern.size() && pattern[i + 1] == c) {
      out += c;
      ++i;
      continue;
    }
    if (c != '{') {
      out += c;
      continue;
    }
    const size_t close = pattern.find('}', i);
    if (close == std::string::npos) fail("format(): unmatched '{'");
    const std::string field = pattern.substr(i + 1, close - i - 1);
    const Value* value = nullptr;
    if (field.empty()) {
      value = next_index < args.positional.size() ? &args.positional[next_index++] : nullptr;
    } else if (field.find_first_not_of("0123456789") == std::string::npos) {
      const size_t index = std::stoul(field);
      value = index < args.positional.size() ? &args.positional[index] : nullptr;
    } else {
      value = args.get(SIZE_MAX, field);
    }
    if (!value) fail("format(): no argument for field '{" + field + "}'");
    out += value->to_string();
    i = close;
  }
  return out;
}

bool starts_or_ends(const std::string& s, const Value& affix, bool at_start) {
  const auto check = [&](const Value& v) {
    const std::string& a = as_string(v, at_start ? "startswith()" : "endswith()");
    if (a.size() > s.size()) return false;
    return at_start ? s.compare(0, a.size(), a) == 0 : s.compare(s.size() - a.size(), a.size(), a) == 0;
  };
  if (affix.is_array()) {
    return std::any_of(affix.array().begin(), affix.array().end(), check);
  }
  return check(affix);
}

std::string strip_with(const std::string& s, const CallArgs& args, StripSide side) {
  const Value* chars = args.get(0, "chars");
  return strip(s, chars && chars->is_string() ? &chars->str() : nullptr, side);
}

int64_t normalize_index(int64_t index, size_t size) { return index < 0 ? index + static_cast<int64_t>(size) : index; }

// --- methods ----------------------------------------------------------------------------

Value string_method(const std::string& s, const std::string& name) {
  using Fn = std::function<Value(const std::string&, const CallArgs&)>;
  static const std::map<std::string, Fn, std::less<>> methods = {
      {"upper", [](const std::string& s, const CallArgs&) { return Value(to_upper(s)); }},
      {"lower", [](const std::string& s, const CallArgs&) { return Value(to_lower(s)); }},
      {"title", [](const std::string& s, const CallArgs&) { return Value(title(s)); }},
      {"capitalize", [](const std::string& s, const CallArgs&) { return Value(capitalize(s)); }},
      {"strip", [](const std::string& s, const CallArgs& a) { return Value(strip_with(s, a, StripSide::Both)); }},
      {"lstrip", [](const std::string& s, const CallArgs& a) { return Value(strip_with(s, a, StripSide::Left)); }},
      {"rstrip", [](const std::string& s, const CallArgs& a) { return Value(strip_with(s, a, StripSide::Right)); }},
      {"startswith", [](const std::string& s, const CallArgs& a) {
         return Value(starts_or_ends(s, arg_or(a, 0, "prefix", Value("")), true));
       }},
      {"endswith", [](const std::string& s, const CallArgs& a) {
         return Value(starts_or_ends(s, arg_or(a, 0, "suffix", Value("")), false));
       }},
      {"split", [](const std::string& s, const CallArgs& a) {
         return Value(split(s, arg_or(a, 0, "sep", Value(None{})), arg_or(a, 1, "maxsplit", Value(-1)).integer()));
       }},
      {"replace", [](const std::string& s, const CallArgs& a) {
         return Value(replace(s, string_arg(a, 0, "old", "replace()"), string_arg(a, 1, "new", "replace()"),
                              arg_or(a, 2, "count", Value(-1)).integer()));
       }},
      {"find", [](const std::string& s, const CallArgs& a) {
         const size_t at = s.find(string_arg(a, 0, "sub", "find()"));
         return Value(at == std::string::npos ? int64_t{-1} : static_cast<int64_t>(code_point_count(s.substr(0, at))));
       }},
      {"count", [](const std::string& s, const CallArgs& a) {
         const std::string sub = string_arg(a, 0, "sub", "count()");
         if (sub.empty()) return Value(static_cast<int64_t>(code_point_count(s) + 1));
         int64_t n = 0;
         for (size_t at = s.find(sub); at != std::string::npos; at = s.find(sub, at + sub.size())) ++n;
         return Value(n);
       }},
      {"join", [](const std::string& s, const CallArgs& a) {
         std::string out;
         bool first = true;
         for (const Value& item : iterate(arg_or(a, 0, "iterable", Value(Array{})))) {
           if (!first) out += s;
           first = false;
           out += as_string(item, "join()");
         }
         return Value(out);
       }},
      {"format", [](const std::string& s, const CallArgs& a) { return Value(format_string(s, a)); }},
      {"isdigit", [](const std::string& s, const CallArgs&) {
         return Value(!s.empty() && s.find_first_not_of("0123456789") == std::string::npos);
       }},
      {"isspace", [](const std::string& s, const CallArgs&) {
         return Value(!s.empty() && strip(s, nullptr, StripSide::Both).empty());
       }},
      {"isupper", [](const std::string& s, const CallArgs&) { return Value(to_upper(s) == s && to_lower(s) != s); }},
      {"islower", [](const std::string& s, const CallArgs&) { return Value(to_lower(s) == s && to_upper(s) != s); }},
  };
  const auto it = methods.find(name);
  if (it == methods.end()) return Value();
  const Fn& fn = it->second;
  return Value(Function([s, &fn](const CallArgs& args) { return fn(s, args); }));
}

Value list_method(const Value& self, const std::string& name) {
  if (name == "append") {
    return Value(Function([self](const CallArgs& a) {
      self.array().push_back(arg_or(a, 0, "object", Value()));
      return Value(None{});
    }));
  }
  if (name == "extend") {
    return Value(Function([self](const CallArgs& a) {
      for (const Value& item : iterate(arg_or(a, 0, "iterable", Value()))) self.array().push_back(item);
      return Value(None{});
    }));
  }
  if (name == "insert") {
    return Value(Function([self](const CallArgs& a) {
      Array& list = self.array();
      const int64_t at = std::clamp<int64_t>(normalize_index(arg_or(a, 0, "index", Value(0)).integer(), list.size()), 0,
                                             static_cast<int64_t>(list.size()));
      list.insert(list.begin() + at, arg_or(a, 1, "object", Value()));
      return Value(None{});
    }));
  }
  if (name == "pop") {
    return Value(Function([self](const CallArgs& a) {
      Array& list = self.array();
      const int64_t at = normalize_index(arg_or(a, 0, "index", Value(-1)).integer(), list.size());
      if (at < 0 || at >= static_cast<int64_t>(list.size())) fail("pop index out of range");
      Value item = list[at];
      list.erase(list.begin() + at);
      return item;
    }));
  }
  if (name == "index" || name == "count") {
    const bool count = name == "count";
    return Value(Function([self, count](const CallArgs& a) {
      const Value& needle = arg_or(a, 0, "value", Value());
      int64_t n = 0;
      for (size_t i = 0; i < self.array().size(); ++i) {
        if (!equals(self.array()[i], needle)) continue;
        if (!count) return Value(static_cast<int64_t>(i));
        ++n;
      }
      if (!count) fail("list.index(x): x not in list");
      return Value(n);
    }));
  }
  return Value();
}

Value dict_method(const Value& self, const std::string& name) {
  if (name == "get") {
    return Value(Function([self](const CallArgs& a) {
      const Value& key = arg_or(a, 0, "key", Value());
      const Value* found = key.is_string() ? self.object().find(key.str()) : nullptr;
      return found ? *found : arg_or(a, 1, "default", Value(None{}));
    }));
  }
  if (name == "items") return Value(Function([self](const CallArgs&) { return Value(pairs_of(self.object())); }));
  if (name == "keys") {
    return Value(Function([self](const CallArgs&) {
      Array keys;
      for (const auto& entry : self.object().entries) keys.push_back(Value(entry.first));
      return Value(std::move(keys));
    }));
  }
  if (name == "values") {
    return Value(Function([self](const CallArgs&) {
      Array values;
      for (const auto& entry : self.object().entries) values.push_back(entry.second);
      return Value(std::move(values));
    }));
  }
  if (name == "pop") {
    return Value(Function([self](const CallArgs& a) {
      const std::string key = string_arg(a, 0, "key", "pop()");
      auto& entries = self.object().entries;
      for (auto it = entries.begin(); it != entries.end(); ++it) {
        if (it->first != key) continue;
        Value value = it->second;
        entries.erase(it);
        return value;
      }
      if (const Value* fallback = a.get(1, "default")) return *fallback;
      fail("KeyError: '" + key + "'");
    }));
  }
  if (name == "update") {
    return Value(Function([self](const CallArgs& a) {
      if (const Value* other = a.get(0, "")) {
        if (!other->is_mapping()) fail("update() expects a dict");
        for (const auto& [k, v] : other->object().entries) self.object().set(k, v);
      }
      for (const auto& [k, v] : a.keyword) self.object().set(k, v);
      return Value(None{});
    }));
  }
  return Value();
}

// --- filters ----------------------------------------------------------------------------

Value sorted(const Value& operand, const CallArgs& args) {
  Array items = iterate(operand);
  const bool reverse = bool_arg(args, 0, "reverse", false);
  const bool case_sensitive = bool_arg(args, 1, "case_sensitive", false);
  const Value attribute = arg_or(args, 2, "attribute", Value(None{}));
  const auto key = [&](const Value& item) {
    return lowered(attribute.is_none() ? item : attribute_of(item, attribute), case_sensitive);
  };
  std::stable_sort(items.begin(), items.end(), [&](const Value& a, const Value& b) {
    const int c = compare(key(a), key(b));
    return reverse ? c > 0 : c < 0;
  });
  return Value(std::move(items));
}

Value dictsort(const Value& operand, const CallArgs& args) {
  if (!operand.is_mapping()) fail("dictsort expects a dict, got " + operand.type_name());
  const bool case_sensitive = bool_arg(args, 0, "case_sensitive", false);
  const Value by = arg_or(args, 1, "by", Value("key"));
  const bool reverse = bool_arg(args, 2, "reverse", false);
  if (!by.is_string() || (by.str() != "key" && by.str() != "value")) fail("dictsort: 'by' must be 'key' or 'value'");
  const size_t index = by.str() == "key" ? 0 : 1;
  Array pairs = pairs_of(operand.object());
  std::stable_sort(pairs.begin(), pairs.end(), [&](const Value& a, const Value& b) {
    const int c = compare(lowered(a.array()[index], case_sensitive), lowered(b.array()[index], case_sensitive));
    return reverse ? c > 0 : c < 0;
  });
  return Value(std::move(pairs));
}

Value extreme(const Value& operand, const CallArgs& args, bool want_max) {
  const Array items = iterate(operand);
  if (items.empty()) return Value();
  const bool case_sensitive = bool_arg(args, 0, "case_sensitive", false);
  const Value attribute = arg_or(args, 1, "attribute", Value(None{}));
  const auto key = [&](const Value& item) {
    return lowered(attribute.is_none() ? item : attribute_of(item, attribute), case_sensitive);
  };
  const Value* best = &items[0];
  for (const Value& item : items) {
    const int c = compare(key(item), key(*best));
    if (want_max ? c > 0 : c < 0) best = &item;
  }
  return *best;
}

// select/reject (test on each item) and selectattr/rejectattr (test on an attribute).
Value select_items(const Value& operand, const CallArgs& args, bool on_attribute, bool keep_matching) {
  size_t next = 0;
  Value attribute;
  if (on_attribute) {
    attribute = arg_or(args, next++, "attribute", Value());
    if (!attribute.is_string()) fail("selectattr/rejectattr expect an attribute name");
  }
  const Value* test = args.get(next++, "");
  Array out;
  if (!operand.truthy()) return Value(std::move(out));  // Jinja: `none | selectattr(...)` is empty
  for (const Value& item : iterate(operand)) {
    const Value subject = on_attribute ? attribute_path(item, attribute.str()) : item;
    const bool passed = test ? apply_test(as_string(*test, "select()"), subject, rest_args(args, next)) : subject.truthy();
    if (passed == keep_matching) out.push_back(item);
  }
  return Value(std::move(out));
}

Value map_items(const Value& operand, const CallArgs& args) {
  Array out;
  if (!operand.truthy()) return Value(std::move(out));
  if (const Value* attribute = args.get(SIZE_MAX, "attribute")) {
    const Value* fallback = args.get(SIZE_MAX, "default");
    for (const Value& item : iterate(operand)) {
      Value v = attribute_of(item, *attribute);
      out.push_back(v.is_undefined() && fallback ? *fallback : v);
    }
    return Value(std::move(out));
  }
  const std::string filter = string_arg(args, 0, "", "map()");
  const CallArgs rest = rest_args(args, 1);
  for (const Value& item : iterate(operand)) out.push_back(apply_filter(filter, item, rest));
  return Value(std::move(out));
}

Value unique(const Value& operand, const CallArgs& args) {
  const bool case_sensitive = bool_arg(args, 0, "case_sensitive", false);
  const Value attribute = arg_or(args, 1, "attribute", Value(None{}));
  Array out, seen;
  for (const Value& item : iterate(operand)) {
    const Value key = lowered(attribute.is_none() ? item : attribute_of(item, attribute), case_sensitive);
    if (std::none_of(seen.begin(), seen.end(), [&](const Value& s) { return equals(s, key); })) {
      seen.push_back(key);
      out.push_back(item);
    }
  }
  return Value(std::move(out));
}

Value tojson(const Value& operand, const CallArgs& args) {
  Value::JsonOptions options;
  const Value indent = arg_or(args, 0, "indent", Value(None{}));
  if (indent.is_int()) options.indent = static_cast<int>(indent.integer());
  else if (!indent.is_none()) fail("tojson: indent must be an integer");
  options.ensure_ascii = bool_arg(args, SIZE_MAX, "ensure_ascii", false);
  options.sort_keys = bool_arg(args, SIZE_MAX, "sort_keys", false);
  if (const Value* separators = args.get(SIZE_MAX, "separators"); separators && !separators->is_none()) {
    if (!separators->is_array() || separators->array().size() != 2) fail("tojson: separators must be a pair of strings");
    options.item_separator = as_string(separators->array()[0], "tojson separators");
    options.key_separator = as_string(separators->array()[1], "tojson separators");
  }
  return Value(operand.to_json(options));
}

Value indent(const Value& operand, const CallArgs& args) {
  const Value width = arg_or(args, 0, "width", Value(4));
  const std::string pad = width.is_string() ? width.str() : std::string(static_cast<size_t>(std::max<int64_t>(0, width.integer())), ' ');
  const bool first = bool_arg(args, 1, "first", false);
  const bool blank = bool_arg(args, 2, "blank", false);
  const std::string& s = operand.to_string();
  std::string out;
  size_t start = 0;
  for (size_t line = 0;; ++line) {
    const size_t end = s.find('\n', start);
    const std::string text = s.substr(start, end == std::string::npos ? std::string::npos : end - start);
    if ((line > 0 || first) && (blank || !text.empty())) out += pad;
    out += text;
    if (end == std::string::npos) break;
    out += '\n';
    start = end + 1;
  }
  return Value(out);
}

Value to_int(const Value& operand, const CallArgs& args) {
  const Value fallback = arg_or(args, 0, "default", Value(0));
  if (operand.is_int() || operand.is_bool()) return Value(operand.integer());
  if (operand.is_float()) return Value(static_cast<int64_t>(operand.number()));
  if (operand.is_string()) {
    const std::string s = strip(operand.str(), nullptr, StripSide::Both);
    const int base = static_cast<int>(arg_or(args, 1, "base", Value(10)).integer());
    char* end = nullptr;
    const long long v = std::strtoll(s.c_str(), &end, base);
    if (!s.empty() && end == s.c_str() + s.size()) return Value(int64_t{v});
    const double d = std::strtod(s.c_str(), &end);
    if (!s.empty() && end == s.c_str() + s.size()) return Value(static_cast<int64_t>(d));
  }
  return fallback;
}

Value to_float(const Value& operand, const CallArgs& args) {
  const Value fallback = arg_or(args, 0, "default", Value(0.0));
  if (operand.is_number() || operand.is_bool()) return Value(operand.number());
  if (operand.is_string()) {
    const std::string s = strip(operand.str(), nullptr, StripSide::Both);
    char* end = nullptr;
    const double d = std::strtod(s.c_str(), &end);
    if (!s.empty() && end == s.c_str() + s.size()) return Value(d);
  }
  return fallback;
}

Value round_number(const Value& operand, const CallArgs& args) {
  const int64_t precision = arg_or(args, 0, "precision", Value(0)).integer();
  const Value method = arg_or(args, 1, "method", Value("common"));
  const double scale = std::pow(10.0, static_cast<double>(precision));
  const double x = operand.number() * scale;
  const std::string& how = as_string(method, "round()");
  const double r = how == "ceil" ? std::ceil(x) : how == "floor" ? std::floor(x) : std::round(x);
  return Value(r / scale);
}

Value length(const Value& operand) {
  if (operand.is_string()) return Value(static_cast<int64_t>(code_point_count(operand.str())));
  if (operand.is_array()) return Value(static_cast<int64_t>(operand.array().size()));
  if (operand.is_object()) return Value(static_cast<int64_t>(operand.object().entries.size()));
  if (operand.is_undefined()) return Value(0);
  fail("object of type '" + operand.type_name() + "' has no len()");
}

Value reverse(const Value& operand) {
  if (operand.is_string()) {
    const std::vector<size_t> offsets = code_point_offsets(operand.str());
    std::string out;
    for (size_t i = offsets.size() - 1; i > 0; --i) out += operand.str().substr(offsets[i - 1], offsets[i] - offsets[i - 1]);
    return Value(out);
  }
  Array items = iterate(operand);
  std::reverse(items.begin(), items.end());
  return Value(std::move(items));
}

Value from_json(const Value& operand) {
  const std::string& text = as_string(operand, "from_json");
  try {
    return Value::from_json(nlohmann::ordered_json::parse(text));
  } catch (const nlohmann::json::exception& e) {
    fail(std::string("from_json: invalid JSON: ") + e.what());
  }
}

Value string_filter(const Value& operand, const CallArgs& args, const std::string& name) {
  const std::string s = operand.is_undefined() ? std::string() : operand.to_string();
  if (name == "upper") return Value(to_upper(s));
  if (name == "lower") return Value(to_lower(s));
  if (name == "title") return Value(title(s));
  if (name == "capitalize") return Value(capitalize(s));
  if (name == "replace") {
    return Value(replace(s, string_arg(args, 0, "old", "replace"), string_arg(args, 1, "new", "replace"),
                         arg_or(args, 2, "count", Value(-1)).integer()));
  }
  return Value(strip_with(s, args, StripSide::Both));  // trim
}

// Python's str(): what `x | string` gives, e.g. a tool list printed the way a model was trained
// on it ({'type': 'function', ...}), and None as "None".
std::string python_str(const Value& v) {
  if (v.is_none()) return "None";
  if (v.is_array() || v.is_object()) return v.repr();
  return v.to_string();
}

using Filter = Value (*)(const Value&, const CallArgs&, const std::string&);

const std::map<std::string, Filter, std::less<>>& filters() {
  static const std::map<std::string, Filter, std::less<>> table = {
      {"abs", [](const Value& v, const CallArgs&, const std::string&) {
         if (v.is_float()) return Value(std::fabs(v.number()));
         if (!v.is_int() && !v.is_bool()) fail("abs expects a number");
         return Value(static_cast<int64_t>(std::llabs(v.integer())));
       }},
      {"capitalize", string_filter},
      {"count", [](const Value& v, const CallArgs&, const std::string&) { return length(v); }},
      {"default", [](const Value& v, const CallArgs& a, const std::string&) {
         const bool boolean = bool_arg(a, 1, "boolean", false);
         return v.is_undefined() || (boolean && !v.truthy()) ? arg_or(a, 0, "default_value", Value("")) : v;
       }},
      {"dictsort", [](const Value& v, const CallArgs& a, const std::string&) { return dictsort(v, a); }},
      {"first", [](const Value& v, const CallArgs&, const std::string&) {
         const Array items = iterate(v);
         return items.empty() ? Value() : items.front();
       }},
      {"float", [](const Value& v, const CallArgs& a, const std::string&) { return to_float(v, a); }},
      {"from_json", [](const Value& v, const CallArgs&, const std::string&) { return from_json(v); }},
      {"indent", [](const Value& v, const CallArgs& a, const std::string&) { return indent(v, a); }},
      {"int", [](const Value& v, const CallArgs& a, const std::string&) { return to_int(v, a); }},
      {"items", [](const Value& v, const CallArgs&, const std::string&) {
         if (v.is_undefined()) return Value(Array{});
         if (!v.is_mapping()) fail("items expects a dict, got " + v.type_name());
         return Value(pairs_of(v.object()));
       }},
      {"join", [](const Value& v, const CallArgs& a, const std::string&) {
         const std::string separator = arg_or(a, 0, "d", Value("")).to_string();
         const Value attribute = arg_or(a, 1, "attribute", Value(None{}));
         std::string out;
         bool first = true;
         for (const Value& item : iterate(v)) {
           if (!first) out += separator;
           first = false;
           out += (attribute.is_none() ? item : attribute_of(item, attribute)).to_string();
         }
         return Value(out);
       }},
      {"last", [](const Value& v, const CallArgs&, const std::string&) {
         const Array items = iterate(v);
         return items.empty() ? Value() : items.back();
       }},
      {"length", [](const Value& v, const CallArgs&, const std::string&) { return length(v); }},
      {"list", [](const Value& v, const CallArgs&, const std::string&) { return Value(iterate(v)); }},
      {"lower", string_filter},
      {"map", [](const Value& v, const CallArgs& a, const std::string&) { return map_items(v, a); }},
      {"max", [](const Value& v, const CallArgs& a, const std::string&) { return extreme(v, a, true); }},
      {"min", [](const Value& v, const CallArgs& a, const std::string&) { return extreme(v, a, false); }},
      {"reject", [](const Value& v, const CallArgs& a, const std::string&) { return select_items(v, a, false, false); }},
      {"rejectattr", [](const Value& v, const CallArgs& a, const std::string&) { return select_items(v, a, true, false); }},
      {"replace", string_filter},
      {"reverse", [](const Value& v, const CallArgs&, const std::string&) { return reverse(v); }},
      {"round", [](const Value& v, const CallArgs& a, const std::string&) { return round_number(v, a); }},
      {"safe", [](const Value& v, const CallArgs&, const std::string&) { return v; }},
      {"select", [](const Value& v, const CallArgs& a, const std::string&) { return select_items(v, a, false, true); }},
      {"selectattr", [](const Value& v, const CallArgs& a, const std::string&) { return select_items(v, a, true, true); }},
      {"sort", [](const Value& v, const CallArgs& a, const std::string&) { return sorted(v, a); }},
      {"string", [](const Value& v, const CallArgs&, const std::string&) { return Value(python_str(v)); }},
      {"sum", [](const Value& v, const CallArgs& a, const std::string&) {
         const Value attribute = arg_or(a, 0, "attribute", Value(None{}));
         Value total = arg_or(a, 1, "start", Value(0));
         for (const Value& item : iterate(v)) {
           const Value x = attribute.is_none() ? item : attribute_of(item, attribute);
           total = total.is_float() || x.is_float() ? Value(total.number() + x.number()) : Value(total.integer() + x.integer());
         }
         return total;
       }},
      {"title", string_filter},
      {"tojson", [](const Value& v, const CallArgs& a, const std::string&) { return tojson(v, a); }},
      {"trim", string_filter},
      {"unique", [](const Value& v, const CallArgs& a, const std::string&) { return unique(v, a); }},
      {"upper", string_filter},
  };
  return table;
}

// --- tests ------------------------------------------------------------------------------

bool compare_test(const std::string& name, const Value& a, const Value& b) {
  if (name == "eq" || name == "equalto" || name == "==") return equals(a, b);
  if (name == "ne" || name == "!=") return !equals(a, b);
  const int c = compare(a, b);
  if (name == "lt" || name == "lessthan" || name == "<") return c < 0;
  if (name == "le" || name == "<=") return c <= 0;
  if (name == "gt" || name == "greaterthan" || name == ">") return c > 0;
  return c >= 0;  // ge, >=
}

}  // namespace

bool contains(const Value& container, const Value& item) {
  if (container.is_string()) {
    if (!item.is_string()) fail("'in <string>' requires string as left operand, not " + item.type_name());
    return container.str().find(item.str()) != std::string::npos;
  }
  if (container.is_array()) {
    return std::any_of(container.array().begin(), container.array().end(), [&](const Value& v) { return equals(v, item); });
  }
  if (container.is_object()) return item.is_string() && container.object().find(item.str()) != nullptr;
  if (container.is_undefined()) return false;
  fail("argument of type '" + container.type_name() + "' is not iterable");
}

Array iterate(const Value& value) {
  if (value.is_array()) return value.array();
  if (value.is_mapping()) {
    Array keys;
    for (const auto& entry : value.object().entries) keys.push_back(Value(entry.first));
    return keys;
  }
  if (value.is_string()) {
    Array chars;
    const std::vector<size_t> offsets = code_point_offsets(value.str());
    for (size_t i = 0; i + 1 < offsets.size(); ++i) chars.push_back(Value(value.str().substr(offsets[i], offsets[i + 1] - offsets[i])));
    return chars;
  }
  if (value.is_undefined()) return {};
  fail("'" + value.type_name() + "' object is not iterable");
}

Value apply_filter(const std::string& name, const Value& operand, const CallArgs& args) {
  const std::string& canonical = name == "d" ? "default" : name == "e" ? "safe" : name;
  const auto& table = filters();
  const auto it = table.find(canonical);
  if (it == table.end()) fail("unknown filter '" + name + "'");
  return it->second(operand, args, canonical);
}

bool apply_test(const std::string& name, const Value& v, const CallArgs& args) {
  if (name == "defined") return !v.is_undefined();
  if (name == "undefined") return v.is_undefined();
  if (name == "none") return v.is_none();
  if (name == "boolean") return v.is_bool();
  if (name == "true") return v.is_bool() && v.boolean();
  if (name == "false") return v.is_bool() && !v.boolean();
  if (name == "integer") return v.is_int();
  if (name == "float") return v.is_float();
  if (name == "number") return v.is_number() || v.is_bool();
  if (name == "string") return v.is_string();
  if (name == "mapping") return v.is_mapping();
  if (name == "iterable") return v.is_array() || v.is_string() || v.is_mapping() || v.is_undefined();
  if (name == "sequence") return v.is_array() || v.is_string() || v.is_mapping();
  if (name == "callable") return v.is_function();
  if (name == "lower") return v.is_string() && to_lower(v.str()) == v.str();
  if (name == "upper") return v.is_string() && to_upper(v.str()) == v.str();
  if (name == "odd" || name == "even") {
    if (!v.is_int()) fail("test '" + name + "' expects an integer, got " + v.type_name());
    return (v.integer() % 2 != 0) == (name == "odd");
  }
  const Value* other = args.get(0, "");
  if (name == "divisibleby") {
    if (!other || other->integer() == 0) fail("divisibleby needs a non-zero number");
    return v.integer() % other->integer() == 0;
  }
  if (name == "in") return other && contains(*other, v);
  if (name == "sameas") {
    if (!other) return false;
    if ((v.is_array() && other->is_array()) || (v.is_object() && other->is_object())) return equals(v, *other) && v.is_object() == other->is_object();
    return v.is_none() == other->is_none() && v.is_bool() == other->is_bool() && equals(v, *other);
  }
  static const char* comparisons[] = {"eq", "equalto", "==", "ne", "!=", "lt", "lessthan", "<", "le", "<=", "gt", "greaterthan", ">", "ge", ">="};
  for (const char* c : comparisons) {
    if (name == c) {
      if (!other) fail("test '" + name + "' needs an argument");
      return compare_test(name, v, *other);
    }
  }
  fail("unknown test '" + name + "'");
}

Value builtin_attribute(const Value& object, const std::string& name) {
  if (object.is_string()) return string_method(object.str(), name);
  if (object.is_array()) return list_method(object, name);
  if (object.is_mapping()) return dict_method(object, name);
  return Value();
}

Object make_globals(const RenderOptions& options) {
  Object globals;
  globals.set("range", Value(Function([](const CallArgs& a) {
    if (a.positional.empty()) fail("range expected at least 1 argument");
    int64_t start = 0, stop = a.positional[0].integer(), step = 1;
    if (a.positional.size() >= 2) {
      start = stop;
      stop = a.positional[1].integer();
    }
    if (a.positional.size() >= 3) step = a.positional[2].integer();
    if (step == 0) fail("range() arg 3 must not be zero");
    Array out;
    for (int64_t i = start; step > 0 ? i < stop : i > stop; i += step) out.push_back(Value(i));
    return Value(std::move(out));
  })));
  globals.set("namespace", Value(Function([](const CallArgs& a) {
    Object ns;
    ns.is_namespace = true;
    for (const Value& source : a.positional) {
      if (!source.is_mapping()) fail("namespace() expects a dict or keyword arguments");
      for (const auto& [k, v] : source.object().entries) ns.set(k, v);
    }
    for (const auto& [k, v] : a.keyword) ns.set(k, v);
    return Value(std::move(ns));
  })));
  globals.set("dict", Value(Function([](const CallArgs& a) {
    Object dict;
    for (const Value& source : a.positional) {
      if (source.is_mapping()) {
        for (const auto& [k, v] : source.object().entries) dict.set(k, v);
      } else {
        for (const Value& pair : iterate(source)) {
          if (!pair.is_array() || pair.array().size() != 2) fail("dict() expects key/value pairs");
          dict.set(pair.array()[0].to_string(), pair.array()[1]);
        }
      }
    }
    for (const auto& [k, v] : a.keyword) dict.set(k, v);
    return Value(std::move(dict));
  })));
  globals.set("raise_exception", Value(Function([](const CallArgs& a) -> Value {
    throw RuntimeError(a.positional.empty() ? "raise_exception() called" : a.positional[0].to_string());
  })));
  std::tm now{};
  if (options.now) {
    now = *options.now;
  } else {
    const std::time_t t = std::chrono::system_clock::to_time_t(std::chrono::system_clock::now());
    localtime_r(&t, &now);
  }
  globals.set("strftime_now", Value(Function([now](const CallArgs& a) {
    const std::string format = string_arg(a, 0, "format", "strftime_now()");
    char buffer[512];
    const size_t n = std::strftime(buffer, sizeof buffer, format.c_str(), &now);
    return Value(std::string(buffer, n));
  })));
  return globals;
}

}  // namespace tokenmill::jinja
