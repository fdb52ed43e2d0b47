// Attention of query tokens over one layer's KV cache: causal, grouped-query, with K and V
// stored as F32, F16 or Q8_0. Scores are never materialised for the whole context: each query
// keeps a running max, normaliser and weighted sum of V (online softmax) while the cache is
// streamed in blocks, so memory use does not grow with context length.
//
// The driver here splits the work into tiles (one KV head, some of its query heads, some
// tokens) and spreads them over the thread pool; a tile is computed by the ISA's
// OpTable::attention_tile.
#pragma once

#include <cstdint>
#include <span>

#include "gguf/tensor_type.h"
#include "kernels/cpu_features.h"

namespace tokenmill::kernels {

class ThreadPool;

// Keys are streamed in blocks of this many positions.
constexpr int kAttentionKeyBlock = 32;

// One of K or V: a row of head_dim values for each (position, kv head), each row written by
// quantize_row() (formats.h) in the view's type.
//
// Stored either in one buffer (`data`) or in pages through a block table, as a serving engine
// shares fixed-size blocks between sequences: with `pages` set, position p lives in page
// pages[p / page_positions] at row p % page_positions (strides as in one buffer), and `data`
// is unused. page_positions is a multiple of kAttentionKeyBlock, so a streamed key block never
// straddles two pages; K and V must be paged alike.
struct KvView {
  gguf::TensorType type = gguf::TensorType::F32;  // F32, F16 or Q8_0
  const void* data = nullptr;
  int64_t pos_stride = 0;   // bytes from one position to the next
  int64_t head_stride = 0;  // bytes from one kv head to the next
  const void* const* pages = nullptr;
  int64_t page_positions = 0;
};

struct AttentionArgs {
  int n_head = 0;
  int n_head_kv = 0;  // divides n_head; query head h reads kv head h / (n_head / n_head_kv)
  int head_dim = 0;   // a multiple of 32 for Q8_0
  float scale = 0.0f;  // applied to q.k, usually 1/sqrt(head_dim)
  const float* q = nullptr;  // [n_tokens][n_head][head_dim]
  float* out = nullptr;      // same layout; may be q itself
  int64_t n_tokens = 0;
  // Position of the first query token. Token t attends to cache positions 0..first_pos + t,
  // which must all be stored.
  int64_t first_pos = 0;
  KvView k;
  KvView v;
};

// Throws tokenmill::Error for inconsistent arguments. The overload with an Isa lets tests run
// every path; the other uses active_isa().
void attention(ThreadPool& pool, const AttentionArgs& args);
void attention(ThreadPool& pool, const AttentionArgs& args, Isa isa);
// Several independent calls (the sequences of a batch) in one pass over the pool.
void attention(ThreadPool& pool, std::span<const AttentionArgs> batch);
void attention(ThreadPool& pool, std::span<const AttentionArgs> batch, Isa isa);

// The work unit handed to OpTable::attention_tile: n_heads consecutive query heads that share
// one kv head, for n_tokens consecutive tokens.
struct AttentionTile {
  const float* q;  // query (token 0, head 0) of the tile
  float* out;
  int64_t token_stride;  // floats from one token's rows to the next (in q and out)
  int n_heads;           // heads are head_dim floats apart
  int n_tokens;
  int head_dim;
  int64_t first_pos;  // position of token 0; token t sees keys 0..first_pos + t
  float scale;
  gguf::TensorType kv_type;
  // The cache as a block table (a contiguous cache is one page of every position); this kv
  // head's row of position p is at k_row(p) / v_row(p).
  const void* const* k_pages;
  const void* const* v_pages;
  int64_t page_positions;
  int64_t k_head_offset;  // bytes
  int64_t v_head_offset;
  int64_t k_pos_stride;
  int64_t v_pos_stride;
  // Scratch carved by the driver, per query q = token * n_heads + head: the running
  // weighted sum of V (acc[q * head_dim ...]), max score and softmax normaliser; plus room for
  // one key block converted to f32 (k_block, v_block: kAttentionKeyBlock * head_dim) and its
  // scores (kAttentionKeyBlock).
  float* acc;
  float* row_max;
  float* row_sum;
  float* k_block;
  float* v_block;
  float* scores;

  const char* k_row(int64_t pos) const { return row(k_pages, k_head_offset, k_pos_stride, pos); }
  const char* v_row(int64_t pos) const { return row(v_pages, v_head_offset, v_pos_stride, pos); }

 private:
  const char* row(const void* const* pages, int64_t head_offset, int64_t pos_stride, int64_t pos) const {
    return static_cast<const char*>(pages[pos / page_positions]) + head_offset + pos % page_positions * pos_stride;
  }
};

}  // namespace tokenmill::kernels
