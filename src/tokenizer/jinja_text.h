// UTF-8 text helpers for the template engine: Python's notion of whitespace and characters.
// Strings are kept as UTF-8 bytes; these helpers step through code points where Python counts
// characters (len, slicing, indexing, strip).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "tokenizer/utf8.h"

namespace tokenmill::jinja {

// Decodes the code point at `pos` and advances `pos` past it; an invalid byte decodes as
// itself (one byte), so any byte string can be walked.
uint32_t next_code_point(std::string_view text, size_t& pos);
using tokenizer::append_utf8;

// Python str.isspace() for one code point (also what JavaScript's \s and trim() match).
bool is_space(uint32_t code_point);

// The byte offset where each code point starts, plus text.size() at the end.
std::vector<size_t> code_point_offsets(std::string_view text);
size_t code_point_count(std::string_view text);

// str.strip([chars]) and its one-sided forms. chars == nullptr strips whitespace.
enum class StripSide { Left, Right, Both };
std::string strip(std::string_view text, const std::string* chars, StripSide side);

// Case mapping of ASCII and Latin-1 letters (the letters chat templates meet in role names and
// keywords); other characters are left as they are.
std::string to_upper(std::string_view text);
std::string to_lower(std::string_view text);

}  // namespace tokenmill::jinja
