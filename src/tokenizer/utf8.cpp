#include "tokenizer/utf8.h"

namespace tokenmill::tokenizer {
namespace {

// Lead byte -> total length and the allowed range of the second byte (Unicode Table 3-7); the
// third and fourth bytes are always 80..BF. Length 0 marks bytes that cannot lead.
struct LeadInfo {
  uint8_t length;
  uint8_t second_lo;
  uint8_t second_hi;
};

LeadInfo lead_info(uint8_t b) {
  if (b < 0x80) return {1, 0, 0};
  if (b < 0xC2) return {0, 0, 0};
  if (b < 0xE0) return {2, 0x80, 0xBF};
  if (b == 0xE0) return {3, 0xA0, 0xBF};
  if (b == 0xED) return {3, 0x80, 0x9F};  // excludes the surrogates D800..DFFF
  if (b < 0xF0) return {3, 0x80, 0xBF};
  if (b == 0xF0) return {4, 0x90, 0xBF};
  if (b < 0xF4) return {4, 0x80, 0xBF};
  if (b == 0xF4) return {4, 0x80, 0x8F};  // nothing above U+10FFFF
  return {0, 0, 0};
}

}  // namespace

Utf8Step utf8_step(std::string_view bytes) {
  const auto* p = reinterpret_cast<const uint8_t*>(bytes.data());
  const LeadInfo info = lead_info(p[0]);
  if (info.length == 1) return {Utf8Status::Valid, 1, p[0]};
  if (info.length == 0) return {Utf8Status::Invalid, 1, 0};

  uint32_t cp = p[0] & (0x7F >> info.length);
  for (uint32_t i = 1; i < info.length; ++i) {
    if (i == bytes.size()) return {Utf8Status::Incomplete, i, 0};
    const uint8_t lo = i == 1 ? info.second_lo : 0x80;
    const uint8_t hi = i == 1 ? info.second_hi : 0xBF;
    if (p[i] < lo || p[i] > hi) return {Utf8Status::Invalid, i, 0};
    cp = (cp << 6) | (p[i] & 0x3F);
  }
  return {Utf8Status::Valid, info.length, cp};
}

bool is_valid_utf8(std::string_view text) {
  size_t i = 0;
  while (i < text.size()) {
    if (static_cast<uint8_t>(text[i]) < 0x80) {
      ++i;
      continue;
    }
    const Utf8Step step = utf8_step(text.substr(i));
    if (step.status != Utf8Status::Valid) return false;
    i += step.length;
  }
  return true;
}

std::string repair_utf8(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  size_t i = 0;
  while (i < text.size()) {
    // Copy runs of ASCII in one go: most text is mostly ASCII.
    size_t run = i;
    while (run < text.size() && static_cast<uint8_t>(text[run]) < 0x80) ++run;
    out.append(text.data() + i, run - i);
    i = run;
    if (i == text.size()) break;
    const Utf8Step step = utf8_step(text.substr(i));
    if (step.status == Utf8Status::Valid) {
      out.append(text.data() + i, step.length);
    } else {
      append_utf8(out, kReplacementCharacter);
    }
    i += step.length;
  }
  return out;
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

}  // namespace tokenmill::tokenizer
