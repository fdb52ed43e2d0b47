// Turns template source into tokens. Chat templates are always read with Hugging Face's
// options: trim_blocks (drop the newline after a block tag) and lstrip_blocks (drop spaces and
// tabs before a block tag at the start of a line), plus the final newline of the source
// removed, as Jinja does by default. Every token remembers its offset in the original source,
// so errors can name the line and column even after this preprocessing.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace tokenmill::jinja {

enum class TokenType {
  Text,            // literal template text between tags
  Number,          // 12, 1.5 (a leading sign is part of the literal where it cannot be binary)
  String,          // 'a' "b" with escapes resolved
  Name,            // identifiers and keywords
  Equals,          // =
  OpenParen,       // (
  CloseParen,      // )
  OpenStatement,   // {%
  CloseStatement,  // %}
  OpenExpression,  // {{
  CloseExpression, // }}
  OpenBracket,     // [
  CloseBracket,    // ]
  OpenBrace,       // {
  CloseBrace,      // }
  Comma,
  Dot,
  Colon,
  Pipe,
  Additive,        // + - ~
  Multiplicative,  // * / // %
  Power,           // **
  Comparison,      // == != < > <= >=
  Unary,           // a - or + that can only be a sign
};

struct Token {
  TokenType type;
  std::string value;
  uint32_t offset;  // in the original source
};

// Throws TemplateError (with line and column) on malformed input.
std::vector<Token> tokenize(std::string_view source);

// 1-based line and column of a byte offset; the column counts characters, not bytes.
struct SourceLocation {
  int line = 1;
  int column = 1;
};
SourceLocation locate(std::string_view source, uint32_t offset);

}  // namespace tokenmill::jinja
