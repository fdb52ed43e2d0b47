// Byte-level BPE (tokenizer.ggml.model = "gpt2"): a word's bytes start as single-byte tokens
// and the adjacent pair with the lowest merge rank is merged until no listed merge applies.
#pragma once

#include <string_view>
#include <vector>

#include "gguf/value.h"
#include "tokenizer/string_index.h"
#include "tokenizer/vocab.h"

namespace tokenmill::tokenizer {

class BpeModel {
 public:
  // `merges` is tokenizer.ggml.merges ("left right" in byte-level text, lowest rank first).
  // With `ignore_merges`, a word that is itself a token is emitted whole (Llama 3).
  BpeModel(const Vocab& vocab, const gguf::Array& merges, bool ignore_merges);

  // Scratch memory reused across the words of one tokenize call.
  struct Workspace {
    struct Symbol {
      TokenId id;
      int32_t prev;
      int32_t next;
    };
    struct Candidate {
      int32_t rank;
      int32_t left;  // position of the left symbol; ties go to the leftmost pair
      TokenId left_id;
      TokenId right_id;
    };
    std::vector<Symbol> symbols;
    std::vector<Candidate> heap;
  };

  // Appends the tokens of one pre-tokenized word (raw bytes).
  void encode(std::string_view word, std::vector<TokenId>& out, Workspace& ws) const;

  size_t n_merges() const { return merges_.size(); }
  size_t n_unusable_merges() const { return n_unusable_merges_; }

 private:
  void push_candidate(Workspace& ws, int32_t left) const;

  TokenId byte_token_[256];
  MergeTable merges_;
  StringIndex whole_words_;  // NORMAL tokens by their bytes, when ignore_merges
  bool ignore_merges_;
  size_t n_unusable_merges_ = 0;
};

}  // namespace tokenmill::tokenizer
