// tokenizer/: turning text into token ids and back, exactly as each model's reference tokenizer
// does (byte-level BPE, SentencePiece), plus chat templates. Depends on common/ and gguf/ (the
// vocabulary comes from GGUF metadata) and on PCRE2 for the pre-tokenizer regexes.
//
// UTF-8 decoding shared by tokenization (invalid input is repaired before the regexes see it)
// and by streaming detokenization (which must hold back incomplete characters).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace tokenmill::tokenizer {

constexpr uint32_t kReplacementCharacter = 0xFFFD;

enum class Utf8Status {
  Valid,       // a whole well-formed character
  Incomplete,  // every byte present is a valid start of a longer character: more may follow
  Invalid,     // no character can start here: replace `length` bytes with one U+FFFD
};

struct Utf8Step {
  Utf8Status status;
  uint32_t length;     // bytes consumed (Valid, Invalid) or present (Incomplete)
  uint32_t codepoint;  // Valid only
};

// Decodes the character at the start of `bytes` (non-empty). Well-formedness is Unicode's
// (Table 3-7: no overlongs, no surrogates, nothing above U+10FFFF), and an invalid sequence is
// consumed as its "maximal subpart", the substitution WHATWG's TextDecoder and Python's
// errors="replace" use, so repaired text equals what those reference decoders would produce.
Utf8Step utf8_step(std::string_view bytes);

bool is_valid_utf8(std::string_view text);

// `text` with every ill-formed sequence replaced by U+FFFD (an incomplete character at the end
// counts as ill-formed).
std::string repair_utf8(std::string_view text);

void append_utf8(std::string& out, uint32_t codepoint);

}  // namespace tokenmill::tokenizer
