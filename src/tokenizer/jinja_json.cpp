// tojson: Python's json.dumps, which is what Hugging Face's chat templates call. The details
// matter for byte-exact prompts: insertion order, ", " and ": " separators (or "," with indent),
// ensure_ascii escaping astral characters as surrogate pairs, floats in Python's repr.
#include <algorithm>
#include <cmath>

#include "tokenizer/jinja_error.h"
#include "tokenizer/jinja_text.h"
#include "tokenizer/jinja_value.h"

namespace tokenmill::jinja {

namespace {

void append_hex4(std::string& out, uint32_t unit) {
  static const char* digits = "0123456789abcdef";
  out += "\\u";
  for (int shift = 12; shift >= 0; shift -= 4) out += digits[(unit >> shift) & 0xF];
}

void dump_string(std::string& out, const std::string& s, bool ensure_ascii) {
  out += '"';
  for (size_t pos = 0; pos < s.size();) {
    const uint32_t cp = next_code_point(s, pos);
    switch (cp) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      case '\b': out += "\\b"; break;
      case '\f': out += "\\f"; break;
      default:
        if (cp < 0x20 || (ensure_ascii && cp >= 0x7F && cp < 0x10000)) {
          append_hex4(out, cp);
        } else if (ensure_ascii && cp >= 0x10000) {
          const uint32_t v = cp - 0x10000;
          append_hex4(out, 0xD800 | (v >> 10));
          append_hex4(out, 0xDC00 | (v & 0x3FF));
        } else {
          append_utf8(out, cp);
        }
    }
  }
  out += '"';
}

struct Dumper {
  const Value::JsonOptions& options;
  std::string item_separator;
  std::string key_separator;

  void newline(std::string& out, int depth) const {
    out += '\n';
    out.append(static_cast<size_t>(options.indent) * depth, ' ');
  }

  void dump(std::string& out, const Value& value, int depth) const {
    if (value.is_none() || value.is_undefined()) {
      out += "null";
    } else if (value.is_bool()) {
      out += value.boolean() ? "true" : "false";
    } else if (value.is_int()) {
      out += std::to_string(value.integer());
    } else if (value.is_float()) {
      const double d = value.number();
      out += std::isnan(d) ? "NaN" : std::isinf(d) ? (d > 0 ? "Infinity" : "-Infinity") : format_float(d);
    } else if (value.is_string()) {
      dump_string(out, value.str(), options.ensure_ascii);
    } else if (value.is_array()) {
      dump_container(out, value.array(), '[', ']', depth, [&](const Value& item) { dump(out, item, depth + 1); });
    } else if (value.is_object()) {
      std::vector<const std::pair<std::string, Value>*> entries;
      for (const auto& entry : value.object().entries) entries.push_back(&entry);
      if (options.sort_keys) {
        std::stable_sort(entries.begin(), entries.end(), [](auto* a, auto* b) { return a->first < b->first; });
      }
      dump_container(out, entries, '{', '}', depth, [&](const std::pair<std::string, Value>* entry) {
        dump_string(out, entry->first, options.ensure_ascii);
        out += key_separator;
        dump(out, entry->second, depth + 1);
      });
    } else {
      throw RuntimeError("Object of type " + value.type_name() + " is not JSON serializable");
    }
  }

  template <typename Items, typename DumpItem>
  void dump_container(std::string& out, const Items& items, char open, char close, int depth,
                      DumpItem dump_item) const {
    out += open;
    bool first = true;
    for (const auto& item : items) {
      if (!first) out += item_separator;
      first = false;
      if (options.indent >= 0) newline(out, depth + 1);
      dump_item(item);
    }
    if (options.indent >= 0 && !items.empty()) newline(out, depth);
    out += close;
  }
};

}  // namespace

std::string Value::to_json(const JsonOptions& options) const {
  Dumper dumper{options, options.item_separator, options.key_separator};
  if (dumper.item_separator.empty()) dumper.item_separator = options.indent >= 0 ? "," : ", ";
  if (dumper.key_separator.empty()) dumper.key_separator = ": ";
  std::string out;
  dumper.dump(out, *this, 0);
  return out;
}

nlohmann::ordered_json Value::to_json_value() const {
  if (is_none() || is_undefined()) return nullptr;
  if (is_bool()) return boolean();
  if (is_int()) return integer();
  if (is_float()) return number();
  if (is_string()) return str();
  if (is_array()) {
    nlohmann::ordered_json out = nlohmann::ordered_json::array();
    for (const Value& item : array()) out.push_back(item.to_json_value());
    return out;
  }
  if (is_object()) {
    nlohmann::ordered_json out = nlohmann::ordered_json::object();
    for (const auto& [key, item] : object().entries) out[key] = item.to_json_value();
    return out;
  }
  throw RuntimeError("Object of type " + type_name() + " is not JSON serializable");
}

}  // namespace tokenmill::jinja
