#include "tokenizer/special_tokens.h"

#include <algorithm>

namespace tokenmill::tokenizer {

int32_t SpecialTokenMatcher::child(int32_t node, uint8_t byte) const {
  const auto& children = nodes_[node].children;
  auto it = std::lower_bound(children.begin(), children.end(), byte,
                             [](const std::pair<uint8_t, int32_t>& c, uint8_t b) { return c.first < b; });
  return it != children.end() && it->first == byte ? it->second : -1;
}

void SpecialTokenMatcher::add(std::string_view text, TokenId id, bool always) {
  if (text.empty()) return;
  starts_[static_cast<uint8_t>(text[0])] = true;
  int32_t node = 0;
  for (char c : text) {
    const auto byte = static_cast<uint8_t>(c);
    int32_t next = child(node, byte);
    if (next < 0) {
      next = static_cast<int32_t>(nodes_.size());
      nodes_.emplace_back();
      auto& children = nodes_[node].children;
      children.insert(std::upper_bound(children.begin(), children.end(), std::make_pair(byte, next),
                                       [](const auto& a, const auto& b) { return a.first < b.first; }),
                      {byte, next});
    }
    node = next;
  }
  // Two tokens with the same text: the first (lowest id) keeps it.
  if (nodes_[node].any == kNoToken) nodes_[node].any = id;
  if (always && nodes_[node].always == kNoToken) nodes_[node].always = id;
}

std::optional<SpecialTokenMatcher::Match> SpecialTokenMatcher::find(std::string_view text, size_t from,
                                                                    bool parse_special) const {
  for (size_t start = from; start < text.size(); ++start) {
    if (!starts_[static_cast<uint8_t>(text[start])]) continue;
    std::optional<Match> best;
    int32_t node = 0;
    for (size_t i = start; i < text.size(); ++i) {
      node = child(node, static_cast<uint8_t>(text[i]));
      if (node < 0) break;
      const TokenId id = parse_special ? nodes_[node].any : nodes_[node].always;
      if (id != kNoToken) best = Match{start, i + 1 - start, id};
    }
    if (best) return best;
  }
  return std::nullopt;
}

}  // namespace tokenmill::tokenizer
