// The built-in library of the template engine: filters (`x | tojson`), tests (`x is string`),
// methods of strings, lists and dicts (`s.split('</think>')`), and the global functions chat
// templates call (range, namespace, raise_exception, strftime_now, dict). Semantics are
// Python's, as Hugging Face renders chat templates with Python Jinja2.
#pragma once

#include <string>

#include "tokenizer/jinja_template.h"
#include "tokenizer/jinja_value.h"

namespace tokenmill::jinja {

// Throws RuntimeError for an unknown filter or unusable arguments.
Value apply_filter(const std::string& name, const Value& operand, const CallArgs& args);
bool apply_test(const std::string& name, const Value& operand, const CallArgs& args);

// obj.name for a built-in type: a bound method, or Undefined when there is none.
Value builtin_attribute(const Value& object, const std::string& name);

// The variables every template sees before its own.
Object make_globals(const RenderOptions& options);

// Python's `item in container`.
bool contains(const Value& container, const Value& item);

// The values a for loop walks: list items, dict keys, string characters; Undefined is empty.
Array iterate(const Value& value);

}  // namespace tokenmill::jinja
