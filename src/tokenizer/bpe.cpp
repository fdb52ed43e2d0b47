#include "tokenizer/bpe.h"

#include <algorithm>

#include "common/error.h"
#include "tokenizer/byte_level.h"
#include "tokenizer/utf8.h"

namespace tokenmill::tokenizer {
namespace {

constexpr TokenId kMergedAway = -2;

// Orders the heap so that its front is the lowest rank, leftmost first. (A function object,
// not a function, so that the heap operations inline it.)
struct Later {
  bool operator()(const BpeModel::Workspace::Candidate& a, const BpeModel::Workspace::Candidate& b) const {
    return a.rank > b.rank || (a.rank == b.rank && a.left > b.left);
  }
};

}  // namespace

BpeModel::BpeModel(const Vocab& vocab, const gguf::Array& merges, bool ignore_merges)
    : merges_(merges.items.size()), whole_words_(ignore_merges ? vocab.size() : 0), ignore_merges_(ignore_merges) {
  if (!merges.items.empty() && merges.element_type != gguf::ValueType::STRING)
    throw Error("tokenizer.ggml.merges must be an array of strings");

  StringIndex by_text(vocab.size());
  for (size_t id = 0; id < vocab.size(); ++id)
    if (!vocab.texts[id].empty()) by_text.insert(vocab.texts[id], static_cast<TokenId>(id));

  for (int b = 0; b < 256; ++b) {
    std::string text;
    append_utf8(text, byte_level_char(static_cast<uint8_t>(b)));
    byte_token_[b] = by_text.find(text);
  }

  // A merge whose parts or result are not tokens cannot be applied (Hugging Face refuses such
  // files; we skip the line and count it so that `inspect`-style tools can report it).
  std::string joined;
  for (size_t rank = 0; rank < merges.items.size(); ++rank) {
    const std::string& line = *merges.items[rank].as_string();
    const size_t space = line.find(' ', 1);
    if (space == std::string::npos) {
      ++n_unusable_merges_;
      continue;
    }
    const std::string_view left = std::string_view(line).substr(0, space);
    const std::string_view right = std::string_view(line).substr(space + 1);
    joined.assign(left);
    joined.append(right);
    const TokenId l = by_text.find(left);
    const TokenId r = by_text.find(right);
    const TokenId result = by_text.find(joined);
    if (l < 0 || r < 0 || result < 0) {
      ++n_unusable_merges_;
      continue;
    }
    merges_.insert(l, r, {static_cast<int32_t>(rank), result});
  }

  if (ignore_merges_) {
    for (size_t id = 0; id < vocab.size(); ++id)
      if (vocab.types[id] == TokenType::Normal && !vocab.pieces[id].empty())
        whole_words_.insert(vocab.pieces[id], static_cast<TokenId>(id));
  }
}

void BpeModel::push_candidate(Workspace& ws, int32_t left) const {
  const int32_t right = ws.symbols[left].next;
  if (right < 0) return;
  const TokenId left_id = ws.symbols[left].id;
  const TokenId right_id = ws.symbols[right].id;
  const MergeTable::Merge m = merges_.find(left_id, right_id);
  if (m.rank < 0) return;
  ws.heap.push_back({m.rank, left, left_id, right_id});
  std::push_heap(ws.heap.begin(), ws.heap.end(), Later{});
}

void BpeModel::encode(std::string_view word, std::vector<TokenId>& out, Workspace& ws) const {
  const auto n = static_cast<int32_t>(word.size());
  if (n == 0) return;
  if (ignore_merges_) {
    const TokenId whole = whole_words_.find(word);
    if (whole >= 0) {
      out.push_back(whole);
      return;
    }
  }

  // A byte without a token (no real byte-level vocabulary lacks one) is dropped, as the
  // reference implementations do; it can take part in no merge.
  ws.symbols.resize(n);
  for (int32_t i = 0; i < n; ++i)
    ws.symbols[i] = {byte_token_[static_cast<uint8_t>(word[i])], i - 1, i + 1 < n ? i + 1 : -1};

  // The heap holds candidate merges; one made stale by an earlier merge is recognised when
  // popped because a symbol's id changes whenever it grows, and merged-away symbols are marked.
  ws.heap.clear();
  for (int32_t i = 0; i + 1 < n; ++i) push_candidate(ws, i);
  while (!ws.heap.empty()) {
    std::pop_heap(ws.heap.begin(), ws.heap.end(), Later{});
    const Workspace::Candidate c = ws.heap.back();
    ws.heap.pop_back();
    Workspace::Symbol& left = ws.symbols[c.left];
    if (left.id != c.left_id || left.next < 0) continue;
    Workspace::Symbol& right = ws.symbols[left.next];
    if (right.id != c.right_id) continue;

    left.id = merges_.find(c.left_id, c.right_id).result;
    right.id = kMergedAway;
    left.next = right.next;
    if (left.next >= 0) ws.symbols[left.next].prev = c.left;
    if (left.prev >= 0) push_candidate(ws, left.prev);
    push_candidate(ws, c.left);
  }

  // The first symbol is never merged away: merges fold the right symbol into the left.
  for (int32_t i = 0; i >= 0; i = ws.symbols[i].next)
    if (ws.symbols[i].id >= 0) out.push_back(ws.symbols[i].id);
}

}  // namespace tokenmill::tokenizer
