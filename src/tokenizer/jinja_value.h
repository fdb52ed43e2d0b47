// The values a chat template computes with. They follow Python's data model, because chat
// templates are written for (and their models trained with) Python Jinja2: None, bool, int,
// float, str, list, dict (insertion-ordered), plus Jinja's Undefined, namespace() objects and
// callables. Lists, dicts and namespaces have reference semantics, as in Python: a copy of a
// Value shares them, so `ns.x = 1` inside a loop is seen outside and `list.append` mutates.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

#include <nlohmann/json.hpp>

namespace tokenmill::jinja {

class Value;
using Array = std::vector<Value>;

// A dict or a namespace: insertion-ordered, as Python dicts are (tojson must keep the order).
// Chat-template dicts are small, so a vector with a linear search is the right structure.
struct Object {
  std::vector<std::pair<std::string, Value>> entries;
  bool is_namespace = false;  // namespace(): attribute access and assignment, not a mapping

  const Value* find(std::string_view key) const;
  Value* find(std::string_view key);
  void set(std::string key, Value value);
};

// Arguments of a call: positional first, then keyword arguments in the order written.
struct CallArgs {
  std::vector<Value> positional;
  std::vector<std::pair<std::string, Value>> keyword;

  // The argument at position `index`, else the keyword argument `name`, else nullptr.
  const Value* get(size_t index, std::string_view name) const;
};

using Function = std::function<Value(const CallArgs&)>;

struct Undefined {
  bool operator==(const Undefined&) const = default;
};
struct None {
  bool operator==(const None&) const = default;
};

class Value {
 public:
  Value() = default;  // Undefined
  Value(None) : data_(None{}) {}
  Value(bool b) : data_(b) {}
  Value(int v) : data_(int64_t{v}) {}
  Value(int64_t v) : data_(v) {}
  Value(double v) : data_(v) {}
  Value(std::string s) : data_(std::move(s)) {}
  Value(std::string_view s) : data_(std::string(s)) {}
  Value(const char* s) : data_(std::string(s)) {}
  Value(Array a) : data_(std::make_shared<Array>(std::move(a))) {}
  Value(Object o) : data_(std::make_shared<Object>(std::move(o))) {}
  Value(Function f) : data_(std::make_shared<Function>(std::move(f))) {}

  static Value from_json(const nlohmann::ordered_json& json);

  bool is_undefined() const { return std::holds_alternative<Undefined>(data_); }
  bool is_none() const { return std::holds_alternative<None>(data_); }
  bool is_bool() const { return std::holds_alternative<bool>(data_); }
  bool is_int() const { return std::holds_alternative<int64_t>(data_); }
  bool is_float() const { return std::holds_alternative<double>(data_); }
  bool is_number() const { return is_int() || is_float(); }  // bool is not, as in Jinja's test
  bool is_string() const { return std::holds_alternative<std::string>(data_); }
  bool is_array() const { return std::holds_alternative<std::shared_ptr<Array>>(data_); }
  bool is_object() const { return std::holds_alternative<std::shared_ptr<Object>>(data_); }
  bool is_mapping() const { return is_object() && !object().is_namespace; }
  bool is_namespace() const { return is_object() && object().is_namespace; }
  bool is_function() const { return std::holds_alternative<std::shared_ptr<Function>>(data_); }

  bool boolean() const { return std::get<bool>(data_); }
  int64_t integer() const;  // int, or bool as 0/1 (Python's bool is an int)
  double number() const;    // int, float or bool as a double
  const std::string& str() const { return std::get<std::string>(data_); }
  Array& array() const { return *std::get<std::shared_ptr<Array>>(data_); }
  Object& object() const { return *std::get<std::shared_ptr<Object>>(data_); }
  const Function& function() const { return *std::get<std::shared_ptr<Function>>(data_); }

  bool truthy() const;
  // Python's type name ("str", "dict", ...), for error messages.
  std::string type_name() const;

  // The text {{ value }} prints: Undefined and None print nothing, lists and dicts as JSON.
  std::string to_string() const;
  // repr(value): strings quoted, the form Python uses inside printed lists and dicts.
  std::string repr() const;
  // json.dumps(value, ...) with Python's formatting; see jinja_json.cpp.
  struct JsonOptions {
    int indent = -1;  // < 0: one line
    bool ensure_ascii = false;
    bool sort_keys = false;
    std::string item_separator;  // empty: Python's default for the indent mode
    std::string key_separator;
  };
  std::string to_json(const JsonOptions& options) const;
  nlohmann::ordered_json to_json_value() const;

 private:
  std::variant<Undefined, None, bool, int64_t, double, std::string, std::shared_ptr<Array>,
               std::shared_ptr<Object>, std::shared_ptr<Function>>
      data_;
};

// Python ==: deep for lists and dicts, 1 == 1.0 == True.
bool equals(const Value& a, const Value& b);
// Python ordering (numbers, strings, lists); throws Error for unorderable types.
int compare(const Value& a, const Value& b);

// Python's float repr: the shortest digits that round-trip ("0.1", "2.0", "1e-07").
std::string format_float(double value);

}  // namespace tokenmill::jinja
