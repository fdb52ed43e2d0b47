// The vocabulary as GGUF stores it (tokenizer.ggml.tokens / token_type / scores), plus each
// token's bytes: what the encoders look tokens up by and what detokenization emits.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace tokenmill::tokenizer {

using TokenId = int32_t;
constexpr TokenId kNoToken = -1;

// tokenizer.ggml.token_type values.
enum class TokenType : int32_t {
  Undefined = 0,
  Normal = 1,       // produced by the BPE / SentencePiece model
  Unknown = 2,      // <unk>
  Control = 3,      // BOS, EOS, chat roles: matched in text only when special parsing is asked for
  UserDefined = 4,  // added tokens that are always split out of raw text (e.g. GLM's <think>)
  Unused = 5,       // padding up to the embedding size; never produced, decodes to nothing
  Byte = 6,         // SentencePiece byte fallback <0xAB>
};

struct Vocab {
  std::vector<std::string> texts;  // as stored in the GGUF
  std::vector<TokenType> types;
  std::vector<float> scores;       // SentencePiece merge priorities; empty when absent
  std::vector<std::string> pieces; // the bytes each token stands for when decoded

  size_t size() const { return texts.size(); }
  bool contains(TokenId id) const { return id >= 0 && static_cast<size_t>(id) < texts.size(); }
};

// The byte a SentencePiece byte token ("<0xAB>") stands for; nullopt for other texts.
inline std::optional<uint8_t> byte_token_value(std::string_view text) {
  if (text.size() != 6 || text.substr(0, 3) != "<0x" || text[5] != '>') return std::nullopt;
  int value = 0;
  for (char c : text.substr(3, 2)) {
    value *= 16;
    if (c >= '0' && c <= '9') value += c - '0';
    else if (c >= 'A' && c <= 'F') value += c - 'A' + 10;
    else if (c >= 'a' && c <= 'f') value += c - 'a' + 10;
    else return std::nullopt;
  }
  return static_cast<uint8_t>(value);
}

}  // namespace tokenmill::tokenizer
