#include "tokenizer/jinja_value.h"

#include <charconv>
#include <cmath>
#include <cstdlib>

#include "tokenizer/jinja_error.h"

namespace tokenmill::jinja {

const Value* Object::find(std::string_view key) const {
  for (const auto& [k, v] : entries) {
    if (k == key) return &v;
  }
  return nullptr;
}

Value* Object::find(std::string_view key) {
  for (auto& [k, v] : entries) {
    if (k == key) return &v;
  }
  return nullptr;
}

void Object::set(std::string key, Value value) {
  if (Value* existing = find(key)) {
    *existing = std::move(value);
  } else {
    entries.emplace_back(std::move(key), std::move(value));
  }
}

const Value* CallArgs::get(size_t index, std::string_view name) const {
  if (index < positional.size()) return &positional[index];
  for (const auto& [k, v] : keyword) {
    if (k == name) return &v;
  }
  return nullptr;
}

Value Value::from_json(const nlohmann::ordered_json& json) {
  switch (json.type()) {
    case nlohmann::json::value_t::null:
      return Value(None{});
    case nlohmann::json::value_t::boolean:
      return Value(json.get<bool>());
    case nlohmann::json::value_t::number_integer:
      return Value(json.get<int64_t>());
    case nlohmann::json::value_t::number_unsigned:
      return Value(static_cast<int64_t>(json.get<uint64_t>()));
    case nlohmann::json::value_t::number_float:
      return Value(json.get<double>());
    case nlohmann::json::value_t::string:
      return Value(json.get<std::string>());
    case nlohmann::json::value_t::array: {
      Array array;
      array.reserve(json.size());
      for (const auto& item : json) array.push_back(from_json(item));
      return Value(std::move(array));
    }
    case nlohmann::json::value_t::object: {
      Object object;
      for (const auto& [key, item] : json.items()) object.entries.emplace_back(key, from_json(item));
      return Value(std::move(object));
    }
    default:
      throw RuntimeError("unsupported JSON value in template variables");
  }
}

int64_t Value::integer() const {
  if (is_bool()) return boolean() ? 1 : 0;
  if (is_float()) return static_cast<int64_t>(std::get<double>(data_));
  return std::get<int64_t>(data_);
}

double Value::number() const {
  if (is_float()) return std::get<double>(data_);
  return static_cast<double>(integer());
}

bool Value::truthy() const {
  if (is_undefined() || is_none()) return false;
  if (is_bool()) return boolean();
  if (is_int()) return integer() != 0;
  if (is_float()) return number() != 0.0;
  if (is_string()) return !str().empty();
  if (is_array()) return !array().empty();
  if (is_object()) return object().is_namespace || !object().entries.empty();
  return true;
}

std::string Value::type_name() const {
  if (is_undefined()) return "undefined";
  if (is_none()) return "NoneType";
  if (is_bool()) return "bool";
  if (is_int()) return "int";
  if (is_float()) return "float";
  if (is_string()) return "str";
  if (is_array()) return "list";
  if (is_namespace()) return "Namespace";
  if (is_object()) return "dict";
  return "function";
}

std::string format_float(double value) {
  if (std::isnan(value)) return "nan";
  if (std::isinf(value)) return value > 0 ? "inf" : "-inf";
  if (value == 0) return std::signbit(value) ? "-0.0" : "0.0";
  char buffer[64];
  auto [end, ec] = std::to_chars(buffer, buffer + sizeof buffer, value, std::chars_format::scientific);
  std::string sci(buffer, end);  // "-d.ddde+XX", shortest round-trip digits
  const bool negative = sci[0] == '-';
  const size_t e = sci.find('e');
  std::string digits;
  for (size_t i = negative ? 1 : 0; i < e; ++i) {
    if (sci[i] != '.') digits += sci[i];
  }
  const int exponent = std::atoi(sci.c_str() + e + 1);
  std::string out = negative ? "-" : "";
  // Python's repr switches to exponent notation below 1e-4 and from 1e16 up.
  if (exponent >= -4 && exponent < 16) {
    if (exponent < 0) {
      out += "0." + std::string(-exponent - 1, '0') + digits;
    } else if (static_cast<int>(digits.size()) <= exponent + 1) {
      out += digits + std::string(exponent + 1 - digits.size(), '0') + ".0";
    } else {
      out += digits.substr(0, exponent + 1) + "." + digits.substr(exponent + 1);
    }
    return out;
  }
  out += digits.substr(0, 1);
  if (digits.size() > 1) out += "." + digits.substr(1);
  const int magnitude = std::abs(exponent);
  out += exponent < 0 ? "e-" : "e+";
  if (magnitude < 10) out += '0';
  out += std::to_string(magnitude);
  return out;
}

std::string Value::to_string() const {
  // None prints as nothing and lists and dicts as JSON, as @huggingface/jinja renders them:
  // Python's "None" and repr() only appear where a template prints a value it did not mean to
  // (a null content, a list of content parts), and there the reference's output is the useful one.
  if (is_undefined() || is_none()) return "";
  if (is_string()) return str();
  if (is_bool()) return boolean() ? "True" : "False";
  if (is_int()) return std::to_string(integer());
  if (is_float()) return format_float(number());
  if (is_array() || is_mapping()) return to_json(JsonOptions{});
  return repr();
}

namespace {

// Python's repr of a str: single quotes unless the text holds ' and no ".
std::string repr_string(const std::string& s) {
  const char quote = s.find('\'') != std::string::npos && s.find('"') == std::string::npos ? '"' : '\'';
  std::string out(1, quote);
  for (const char c : s) {
    switch (c) {
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      default:
        if (c == quote) {
          out += '\\';
          out += c;
        } else if (static_cast<unsigned char>(c) < 0x20 || c == 0x7F) {
          char hex[8];
          std::snprintf(hex, sizeof hex, "\\x%02x", static_cast<unsigned char>(c));
          out += hex;
        } else {
          out += c;
        }
    }
  }
  return out + quote;
}

}  // namespace

std::string Value::repr() const {
  if (is_string()) return repr_string(str());
  if (is_array()) {
    std::string out = "[";
    for (size_t i = 0; i < array().size(); ++i) {
      if (i) out += ", ";
      out += array()[i].repr();
    }
    return out + "]";
  }
  if (is_namespace()) return "<Namespace>";
  if (is_object()) {
    std::string out = "{";
    bool first = true;
    for (const auto& [key, value] : object().entries) {
      if (!first) out += ", ";
      first = false;
      out += repr_string(key) + ": " + value.repr();
    }
    return out + "}";
  }
  if (is_function()) return "<function>";
  if (is_undefined()) return "Undefined";
  if (is_none()) return "None";
  return to_string();
}

bool equals(const Value& a, const Value& b) {
  if ((a.is_number() || a.is_bool()) && (b.is_number() || b.is_bool())) {
    if (a.is_float() || b.is_float()) return a.number() == b.number();
    return a.integer() == b.integer();
  }
  if (a.is_string() && b.is_string()) return a.str() == b.str();
  if (a.is_undefined() || a.is_none()) return a.is_undefined() == b.is_undefined() && a.is_none() == b.is_none();
  if (a.is_array() && b.is_array()) {
    const Array &x = a.array(), &y = b.array();
    if (x.size() != y.size()) return false;
    for (size_t i = 0; i < x.size(); ++i) {
      if (!equals(x[i], y[i])) return false;
    }
    return true;
  }
  if (a.is_object() && b.is_object()) {
    if (a.is_namespace() || b.is_namespace()) return &a.object() == &b.object();
    const Object &x = a.object(), &y = b.object();
    if (x.entries.size() != y.entries.size()) return false;
    for (const auto& [key, value] : x.entries) {
      const Value* other = y.find(key);
      if (!other || !equals(value, *other)) return false;
    }
    return true;
  }
  if (a.is_function() && b.is_function()) return &a.function() == &b.function();
  return false;
}

int compare(const Value& a, const Value& b) {
  if ((a.is_number() || a.is_bool()) && (b.is_number() || b.is_bool())) {
    const double x = a.number(), y = b.number();
    return x < y ? -1 : x > y ? 1 : 0;
  }
  if (a.is_string() && b.is_string()) {
    const int c = a.str().compare(b.str());  // byte order of UTF-8 is code point order
    return c < 0 ? -1 : c > 0 ? 1 : 0;
  }
  if (a.is_array() && b.is_array()) {
    const Array &x = a.array(), &y = b.array();
    for (size_t i = 0; i < x.size() && i < y.size(); ++i) {
      if (const int c = compare(x[i], y[i])) return c;
    }
    return x.size() < y.size() ? -1 : x.size() > y.size() ? 1 : 0;
  }
  throw RuntimeError("'<' not supported between instances of '" + a.type_name() + "' and '" +
                     b.type_name() + "'");
}

}  // namespace tokenmill::jinja
