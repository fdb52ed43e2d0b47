// Finding added tokens (CONTROL, USER_DEFINED, UNKNOWN) in raw text before the model sees it.
// Matching is leftmost-longest, as Hugging Face's added-vocabulary splitter does: at the first
// position where any token matches, the longest token there wins.
#pragma once

#include <cstdint>
#include <optional>
#include <string_view>
#include <vector>

#include "tokenizer/vocab.h"

namespace tokenmill::tokenizer {

class SpecialTokenMatcher {
 public:
  // `always`: matched even when special parsing is off (user-defined tokens).
  void add(std::string_view text, TokenId id, bool always);

  struct Match {
    size_t position;
    size_t length;
    TokenId id;
  };
  // The first match at or after `from`.
  std::optional<Match> find(std::string_view text, size_t from, bool parse_special) const;

 private:
  struct Node {
    std::vector<std::pair<uint8_t, int32_t>> children;  // sorted by byte
    TokenId any = kNoToken;     // token ending here
    TokenId always = kNoToken;  // token ending here that is matched without special parsing
  };
  int32_t child(int32_t node, uint8_t byte) const;

  std::vector<Node> nodes_{Node{}};
  bool starts_[256] = {};  // bytes some token starts with: a cheap filter before walking the trie
};

}  // namespace tokenmill::tokenizer
