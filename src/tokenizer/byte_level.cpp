#include "tokenizer/byte_level.h"

#include <array>

#include "tokenizer/utf8.h"

namespace tokenmill::tokenizer {
namespace {

bool stands_for_itself(uint32_t b) { return (b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || b >= 0xAE; }

struct Tables {
  std::array<uint32_t, 256> char_of_byte{};
  std::array<int16_t, 0x144> byte_of_char{};  // -1: not in the alphabet

  Tables() {
    byte_of_char.fill(-1);
    uint32_t shifted = 0x100;
    for (uint32_t b = 0; b < 256; ++b) {
      char_of_byte[b] = stands_for_itself(b) ? b : shifted++;
      byte_of_char[char_of_byte[b]] = static_cast<int16_t>(b);
    }
  }
};

const Tables& tables() {
  static const Tables t;
  return t;
}

}  // namespace

uint32_t byte_level_char(uint8_t byte) { return tables().char_of_byte[byte]; }

void append_byte_level(std::string& out, std::string_view bytes) {
  for (char c : bytes) append_utf8(out, byte_level_char(static_cast<uint8_t>(c)));
}

std::string byte_level_decode(std::string_view text) {
  const Tables& t = tables();
  std::string out;
  out.reserve(text.size());
  size_t i = 0;
  while (i < text.size()) {
    const Utf8Step step = utf8_step(text.substr(i));
    const bool valid = step.status == Utf8Status::Valid;
    if (valid && step.codepoint < t.byte_of_char.size() && t.byte_of_char[step.codepoint] >= 0) {
      out += static_cast<char>(t.byte_of_char[step.codepoint]);
    } else {
      out.append(text.substr(i, step.length));
    }
    i += step.length;
  }
  return out;
}

}  // namespace tokenmill::tokenizer
