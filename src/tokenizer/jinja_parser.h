// Parses template source into a syntax tree. Operator precedence and statement forms follow
// @huggingface/jinja (the reference our output is compared with), which follows Jinja2.
#pragma once

#include <string_view>

#include "tokenizer/jinja_ast.h"

namespace tokenmill::jinja {

// Throws TemplateError naming the line and column of the first problem.
Body parse_template(std::string_view source);

}  // namespace tokenmill::jinja
