#include "tokenizer/jinja_text.h"

#include <algorithm>

namespace tokenmill::jinja {

uint32_t next_code_point(std::string_view text, size_t& pos) {
  const tokenizer::Utf8Step step = tokenizer::utf8_step(text.substr(pos));
  if (step.status != tokenizer::Utf8Status::Valid) return static_cast<uint8_t>(text[pos++]);
  pos += step.length;
  return step.codepoint;
}

bool is_space(uint32_t cp) {
  if (cp <= 0x20) return cp == 0x20 || (cp >= 0x09 && cp <= 0x0D) || (cp >= 0x1C && cp <= 0x1F);
  return cp == 0x85 || cp == 0xA0 || cp == 0x1680 || (cp >= 0x2000 && cp <= 0x200A) ||
         cp == 0x2028 || cp == 0x2029 || cp == 0x202F || cp == 0x205F || cp == 0x3000;
}

std::vector<size_t> code_point_offsets(std::string_view text) {
  std::vector<size_t> offsets;
  size_t pos = 0;
  while (pos < text.size()) {
    offsets.push_back(pos);
    next_code_point(text, pos);
  }
  offsets.push_back(text.size());
  return offsets;
}

size_t code_point_count(std::string_view text) { return code_point_offsets(text).size() - 1; }

std::string strip(std::string_view text, const std::string* chars, StripSide side) {
  std::vector<uint32_t> set;
  if (chars) {
    for (size_t pos = 0; pos < chars->size();) set.push_back(next_code_point(*chars, pos));
  }
  const auto strippable = [&](uint32_t cp) {
    return chars ? std::find(set.begin(), set.end(), cp) != set.end() : is_space(cp);
  };
  size_t first = 0, last = text.size();  // bytes [first, last) survive
  if (side != StripSide::Right) {
    while (first < last) {
      size_t next = first;
      if (!strippable(next_code_point(text, next))) break;
      first = next;
    }
  }
  if (side != StripSide::Left) {
    while (last > first) {
      // Step back to the start of the last character (an invalid byte stands alone).
      size_t start = last - 1;
      while (start > first && (static_cast<uint8_t>(text[start]) & 0xC0) == 0x80 && last - start < 4) --start;
      size_t end = start;
      uint32_t cp = next_code_point(text, end);
      if (end != last) {
        start = last - 1;
        end = start;
        cp = next_code_point(text, end);
      }
      if (!strippable(cp)) break;
      last = start;
    }
  }
  return std::string(text.substr(first, last - first));
}

namespace {

// Latin-1 letters À-Þ / à-þ differ by 0x20, except × and ÷ which are not letters.
std::string map_case(std::string_view text, bool upper) {
  std::string out;
  out.reserve(text.size());
  for (size_t pos = 0; pos < text.size();) {
    uint32_t cp = next_code_point(text, pos);
    if (upper) {
      if (cp >= 'a' && cp <= 'z') cp -= 0x20;
      else if (cp >= 0xE0 && cp <= 0xFE && cp != 0xF7) cp -= 0x20;
    } else {
      if (cp >= 'A' && cp <= 'Z') cp += 0x20;
      else if (cp >= 0xC0 && cp <= 0xDE && cp != 0xD7) cp += 0x20;
    }
    append_utf8(out, cp);
  }
  return out;
}

}  // namespace

std::string to_upper(std::string_view text) { return map_case(text, true); }
std::string to_lower(std::string_view text) { return map_case(text, false); }

}  // namespace tokenmill::jinja
