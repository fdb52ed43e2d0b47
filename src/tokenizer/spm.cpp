#include "tokenizer/spm.h"

#include <algorithm>

#include "tokenizer/utf8.h"

namespace tokenmill::tokenizer {
namespace {

// Orders the heap so that its front is the highest score, leftmost first.
struct LowerPriority {
  bool operator()(const SpmModel::Workspace::Candidate& a, const SpmModel::Workspace::Candidate& b) const {
    return a.score < b.score || (a.score == b.score && a.left > b.left);
  }
};

}  // namespace

SpmModel::SpmModel(const Vocab& vocab, TokenId unknown)
    : scores_(vocab.scores), normal_(vocab.size()), unknown_(unknown) {
  std::fill(std::begin(byte_token_), std::end(byte_token_), kNoToken);
  for (size_t id = 0; id < vocab.size(); ++id) {
    const auto token = static_cast<TokenId>(id);
    if (vocab.types[id] == TokenType::Normal && !vocab.texts[id].empty()) normal_.insert(vocab.texts[id], token);
    if (vocab.types[id] == TokenType::Byte) {
      if (const auto b = byte_token_value(vocab.texts[id]); b && byte_token_[*b] == kNoToken) byte_token_[*b] = token;
    }
  }
}

void SpmModel::push_candidate(std::string_view text, Workspace& ws, int32_t left) const {
  const Workspace::Symbol& l = ws.symbols[left];
  if (l.next < 0) return;
  const int32_t length = l.length + ws.symbols[l.next].length;
  const TokenId id = normal_.find(text.substr(l.start, length));
  if (id < 0) return;
  const float score = scores_.empty() ? 0.0f : scores_[id];
  ws.heap.push_back({score, left, l.next, length});
  std::push_heap(ws.heap.begin(), ws.heap.end(), LowerPriority{});
}

void SpmModel::encode(std::string_view text, std::vector<TokenId>& out, Workspace& ws) const {
  ws.symbols.clear();
  for (size_t pos = 0; pos < text.size();) {
    const auto length = static_cast<int32_t>(utf8_step(text.substr(pos)).length);
    const auto index = static_cast<int32_t>(ws.symbols.size());
    ws.symbols.push_back({static_cast<int32_t>(pos), length, index - 1, -1});
    if (index > 0) ws.symbols[index - 1].next = index;
    pos += length;
  }
  if (ws.symbols.empty()) return;

  ws.heap.clear();
  for (int32_t i = 0; i + 1 < static_cast<int32_t>(ws.symbols.size()); ++i) push_candidate(text, ws, i);
  while (!ws.heap.empty()) {
    std::pop_heap(ws.heap.begin(), ws.heap.end(), LowerPriority{});
    const Workspace::Candidate c = ws.heap.back();
    ws.heap.pop_back();
    Workspace::Symbol& left = ws.symbols[c.left];
    Workspace::Symbol& right = ws.symbols[c.right];
    if (left.length == 0 || right.length == 0 || left.next != c.right || left.length + right.length != c.length)
      continue;
    left.length += right.length;
    right.length = 0;
    left.next = right.next;
    if (left.next >= 0) ws.symbols[left.next].prev = c.left;
    if (left.prev >= 0) push_candidate(text, ws, left.prev);
    push_candidate(text, ws, c.left);
  }

  for (int32_t i = 0; i >= 0; i = ws.symbols[i].next) {
    const std::string_view piece = text.substr(ws.symbols[i].start, ws.symbols[i].length);
    const TokenId id = normal_.find(piece);
    if (id >= 0) {
      out.push_back(id);
      continue;
    }
    // A character without a token: its bytes when the vocabulary has byte tokens, else <unk>.
    const bool has_bytes =
        std::all_of(piece.begin(), piece.end(), [&](char c) { return byte_token_[static_cast<uint8_t>(c)] >= 0; });
    if (has_bytes) {
      for (char c : piece) out.push_back(byte_token_[static_cast<uint8_t>(c)]);
    } else if (unknown_ >= 0) {
      out.push_back(unknown_);
    }
  }
}

}  // namespace tokenmill::tokenizer
