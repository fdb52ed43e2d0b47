// A model's tokenizer, built from the tokenizer.* metadata of its GGUF: text -> token ids
// (what we bill) and ids -> text. Construction takes milliseconds even for 150k-token
// vocabularies; a Tokenizer is immutable afterwards and safe to share between threads.
#pragma once

#include <functional>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "gguf/value.h"
#include "tokenizer/vocab.h"

namespace tokenmill::gguf {
class File;
}

namespace tokenmill::tokenizer {

enum class TokenizerKind {
  ByteLevelBpe,   // tokenizer.ggml.model = "gpt2": byte-level BPE with merges
  SentencePiece,  // tokenizer.ggml.model = "llama": scores and byte fallback
};

struct SpecialTokenIds {
  TokenId bos = kNoToken;
  TokenId eos = kNoToken;
  TokenId eot = kNoToken;  // end of turn (Llama 3's <|eot_id|>, GLM's <|user|>)
  TokenId eom = kNoToken;  // end of message awaiting a tool result (<|eom_id|>, <|observation|>)
  TokenId unknown = kNoToken;
  TokenId padding = kNoToken;
  TokenId separator = kNoToken;
  TokenId mask = kNoToken;
};

using Metadata = std::vector<std::pair<std::string, gguf::Value>>;

class Tokenizer {
 public:
  static Tokenizer from_gguf(const gguf::File& file);
  static Tokenizer from_metadata(const Metadata& metadata);
  // From any key -> value lookup (nullptr when absent). tokenmill::Error for missing or
  // malformed tokenizer metadata and for tokenizer kinds or pre-tokenizers we do not implement.
  static Tokenizer from_lookup(const std::function<const gguf::Value*(const std::string&)>& find);

  Tokenizer(Tokenizer&&) noexcept;
  Tokenizer& operator=(Tokenizer&&) noexcept;
  ~Tokenizer();

  // `add_special`: add BOS / EOS where the model's metadata says to. `parse_special`: text that
  // spells a control token (e.g. "<|user|>") becomes that token; user-defined tokens are always
  // recognised. Invalid UTF-8 is read as U+FFFD per maximal ill-formed subsequence, the text a
  // WHATWG or Python decoder gives the reference tokenizer. Any input is accepted; tokenmill::Error
  // only if the regex engine fails (its JIT stack is sized for megabyte runs of one class).
  std::vector<TokenId> tokenize(std::string_view text, bool add_special = true, bool parse_special = true) const;

  // The text of `ids`: complete UTF-8 only, bytes that form no character become U+FFFD.
  // Control tokens appear only with `render_special`; unused (padding) tokens never.
  std::string detokenize(std::span<const TokenId> ids, bool render_special = false) const;

  TokenizerKind kind() const;
  const std::string& pre() const;  // tokenizer.ggml.pre ("" for SentencePiece)
  size_t size() const;
  TokenType type(TokenId id) const;   // Undefined for ids outside the vocabulary
  const std::string& text(TokenId id) const;   // as stored in the GGUF
  const std::string& piece(TokenId id) const;  // the bytes the token decodes to
  const SpecialTokenIds& special() const;
  bool adds_bos() const;
  bool adds_eos() const;
  // SentencePiece prefixes text with a space when encoding and drops it again when decoding.
  bool adds_space_prefix() const;

  // Tokens that end generation: EOS, EOT, EOM and the model's other end-of-turn tokens.
  bool is_end_of_generation(TokenId id) const;
  const std::vector<TokenId>& end_of_generation() const;

 private:
  struct Impl;
  explicit Tokenizer(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace tokenmill::tokenizer
