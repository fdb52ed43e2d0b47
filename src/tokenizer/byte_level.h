// GPT-2's byte-level alphabet: byte-level BPE vocabularies store every token as text in which
// each byte is one printable character (bytes that are printable Latin-1 stand for themselves,
// the others are shifted to U+0100..U+0143), so "Ġ" in a token is a space byte.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace tokenmill::tokenizer {

// The character standing for `byte`.
uint32_t byte_level_char(uint8_t byte);

// Appends the byte-level text of raw bytes.
void append_byte_level(std::string& out, std::string_view bytes);

// The raw bytes of a byte-level token text. A character outside the alphabet (malformed
// vocabularies have a few) stands for its own UTF-8 bytes.
std::string byte_level_decode(std::string_view text);

}  // namespace tokenmill::tokenizer
