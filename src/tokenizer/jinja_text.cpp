// tokenizer/: turns text into tokens and conversations into prompts (chat templates, output
// parsing) and back. Depends on common/ and gguf/.
#include "tokenizer/jinja_text.h"

#include <algorithm>

namespace tokenmill::jinja {

uint32_t next_code_point(std::string_view text, size_t& pos) {
  const auto byte = [&](size_t i) { return static_cast<uint8_t>(text[i]); };
  const uint8_t lead = byte(pos);
  int length = lead < 0x80 ? 1 : (lead >> 5) == 0x6 ? 2 : (lead >> 4) == 0xE ? 3 : (lead >> 3) == 0x1E ? 4 : 0;
  if (length <= 1 || pos + length > text.size()) {
    ++pos;
    return lead;
  }
  uint32_t cp = lead & (0x7F >> length);
  for (int i = 1; i < length; ++i) {
    if ((byte(pos + i) & 0xC0) != 0x80) {
      ++pos;
      return lead;
    }
    cp = (cp << 6) | (byte(pos + i) & 0x3F);
  }
  pos += length;
  return cp;
}

void append_utf8(std::string& out, uint32_t cp) {
  if (cp < 0x80) {
    out += static_cast<char>(cp);
  } else if (cp < 0x800) {
    out += static_cast<char>(0xC0 | (cp >> 6));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else if (cp < 0x10000) {
    out += static_cast<char>(0xE0 | (cp >> 12));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else {
    out += static_cast<char>(0xF0 | (cp >> 18));
    out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  }
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
  const std::vector<size_t> offsets = code_point_offsets(text);
  size_t first = 0, last = offsets.size() - 1;  // code point indices [first, last)
  const auto cp_at = [&](size_t i) {
    size_t pos = offsets[i];
    return next_code_point(text, pos);
  };
  if (side != StripSide::Right) {
    while (first < last && strippable(cp_at(first))) ++first;
  }
  if (side != StripSide::Left) {
    while (last > first && strippable(cp_at(last - 1))) --last;
  }
  return std::string(text.substr(offsets[first], offsets[last] - offsets[first]));
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
