// SentencePiece BPE (tokenizer.ggml.model = "llama"): spaces become "▁", the text starts as
// single characters, and the adjacent pair whose concatenation is the highest-scoring token is
// merged until none is; characters left without a token fall back to <0xAB> byte tokens.
#pragma once

#include <string_view>
#include <vector>

#include "tokenizer/string_index.h"
#include "tokenizer/vocab.h"

namespace tokenmill::tokenizer {

class SpmModel {
 public:
  SpmModel(const Vocab& vocab, TokenId unknown);

  struct Workspace {
    struct Symbol {
      int32_t start;
      int32_t length;  // 0 once merged into its left neighbour
      int32_t prev;
      int32_t next;
    };
    struct Candidate {
      float score;
      int32_t left;
      int32_t right;
      int32_t length;  // of the merged text: a changed symbol makes the candidate stale
    };
    std::vector<Symbol> symbols;
    std::vector<Candidate> heap;
  };

  // Appends the tokens of `text`, which is already escaped ("▁" for spaces) and valid UTF-8.
  void encode(std::string_view text, std::vector<TokenId>& out, Workspace& ws) const;

 private:
  void push_candidate(std::string_view text, Workspace& ws, int32_t left) const;

  std::vector<float> scores_;
  StringIndex normal_;        // NORMAL tokens by text: the pieces merges may produce
  TokenId byte_token_[256];   // <0xAB> tokens, kNoToken when absent
  TokenId unknown_;
};

}  // namespace tokenmill::tokenizer
