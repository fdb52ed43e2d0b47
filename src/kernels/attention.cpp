#include "kernels/attention.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <string>
#include <vector>

#include "common/error.h"
#include "kernels/block_layouts.h"
#include "kernels/formats.h"
#include "kernels/op_tables.h"
#include "kernels/thread_pool.h"

namespace tokenmill::kernels {
namespace {

// Tokens per tile: enough that a converted key block serves several queries, few enough that
// prefill still has many tiles to spread over the threads.
constexpr int kTileTokens = 4;

bool supported_kv_type(gguf::TensorType t) {
  return t == gguf::TensorType::F32 || t == gguf::TensorType::F16 || t == gguf::TensorType::Q8_0;
}

void validate_view(const KvView& view, const char* name, int head_dim) {
  if (!supported_kv_type(view.type)) {
    throw Error(std::string("attention: ") + name + " cache type " +
                std::string(gguf::tensor_type_name(view.type)) + " is not F32, F16 or Q8_0");
  }
  if (view.data == nullptr && view.pages == nullptr) throw Error(std::string("attention: ") + name + " cache is null");
  const auto row = static_cast<int64_t>(gguf::row_bytes(view.type, head_dim));
  if (view.pos_stride < row || view.pos_stride % 2 != 0 || view.head_stride % 2 != 0 ||
      (view.type == gguf::TensorType::F32 && (view.pos_stride % 4 != 0 || view.head_stride % 4 != 0))) {
    throw Error(std::string("attention: ") + name + " cache strides do not fit its rows");
  }
}

void validate_paging(const KvView& k, const KvView& v) {
  if ((k.pages == nullptr) != (v.pages == nullptr) || k.page_positions != v.page_positions) {
    throw Error("attention: K and V caches must be paged alike");
  }
  if (k.pages != nullptr && (k.page_positions <= 0 || k.page_positions % kAttentionKeyBlock != 0)) {
    throw Error("attention: a page must hold a positive multiple of " + std::to_string(kAttentionKeyBlock) +
                " positions, got " + std::to_string(k.page_positions));
  }
}

void validate(const AttentionArgs& a) {
  if (a.n_head <= 0 || a.n_head_kv <= 0 || a.n_head % a.n_head_kv != 0) {
    throw Error("attention: n_head (" + std::to_string(a.n_head) +
                ") must be a positive multiple of n_head_kv (" + std::to_string(a.n_head_kv) + ")");
  }
  if (a.head_dim <= 0) throw Error("attention: head_dim must be positive");
  if (a.n_tokens < 0 || a.first_pos < 0) {
    throw Error("attention: n_tokens and first_pos must not be negative");
  }
  if (a.q == nullptr || a.out == nullptr) throw Error("attention: q and out must be given");
  if (a.k.type != a.v.type) throw Error("attention: K and V caches must have the same type");
  if (a.k.type == gguf::TensorType::Q8_0 && a.head_dim % kBlockSize != 0) {
    throw Error("attention: a Q8_0 cache needs head_dim to be a multiple of 32, got " +
                std::to_string(a.head_dim));
  }
  validate_view(a.k, "K", a.head_dim);
  validate_view(a.v, "V", a.head_dim);
  validate_paging(a.k, a.v);
}

// The block table the tiles read: the view's own, or one page holding every position.
const void* const* pages_of(const KvView& view) { return view.pages ? view.pages : &view.data; }
int64_t page_positions_of(const KvView& view) {
  return view.pages ? view.page_positions : std::numeric_limits<int64_t>::max();
}

}  // namespace

// One key at a time: s = scale * q.k; the running max m, normaliser l and weighted sum acc
// are rescaled by e^(m_old - m_new) whenever the max grows.
void attention_tile_scalar(const AttentionTile& t) {
  const int64_t hd = t.head_dim;
  float* k = t.k_block;
  float* v = t.v_block;
  for (int tok = 0; tok < t.n_tokens; ++tok) {
    for (int h = 0; h < t.n_heads; ++h) {
      const float* q = t.q + tok * t.token_stride + h * hd;
      float* acc = t.acc;
      std::fill(acc, acc + hd, 0.0f);
      float m = -INFINITY;
      double l = 0.0;
      for (int64_t j = 0; j <= t.first_pos + tok; ++j) {
        dequantize_row(t.kv_type, t.k_row(j), k, hd);
        dequantize_row(t.kv_type, t.v_row(j), v, hd);
        double dot = 0.0;
        for (int64_t i = 0; i < hd; ++i) dot += static_cast<double>(q[i]) * k[i];
        const float s = static_cast<float>(dot) * t.scale;
        const float m_new = std::max(m, s);
        const float correction = std::exp(m - m_new);
        const float p = std::exp(s - m_new);
        l = l * correction + p;
        for (int64_t i = 0; i < hd; ++i) acc[i] = acc[i] * correction + p * v[i];
        m = m_new;
      }
      float* out = t.out + tok * t.token_stride + h * hd;
      for (int64_t i = 0; i < hd; ++i) out[i] = static_cast<float>(acc[i] / l);
    }
  }
}

void attention(ThreadPool& pool, const AttentionArgs& args) { attention(pool, std::span(&args, 1), active_isa()); }

void attention(ThreadPool& pool, const AttentionArgs& args, Isa isa) { attention(pool, std::span(&args, 1), isa); }

void attention(ThreadPool& pool, std::span<const AttentionArgs> batch) { attention(pool, batch, active_isa()); }

namespace {

// How one call's work is cut into tiles.
struct TilePlan {
  int group;         // query heads per kv head
  int tile_tokens;
  int tile_heads;
  int head_chunks;   // tiles per kv head
  int64_t token_tiles;
  int64_t tiles;     // in all
};

TilePlan plan_tiles(const AttentionArgs& a, int threads) {
  TilePlan p;
  p.group = a.n_head / a.n_head_kv;
  p.tile_tokens = static_cast<int>(std::min<int64_t>(a.n_tokens, kTileTokens));
  p.token_tiles = (a.n_tokens + p.tile_tokens - 1) / p.tile_tokens;
  // Split a kv head's query heads over several tiles only when there would otherwise be too
  // few tiles to keep every thread busy (decode with few kv heads).
  p.tile_heads = p.group;
  auto chunks = [&] { return (p.group + p.tile_heads - 1) / p.tile_heads; };
  while (p.tile_heads > 1 && a.n_head_kv * chunks() * p.token_tiles < 2 * threads) p.tile_heads = (p.tile_heads + 1) / 2;
  p.head_chunks = chunks();
  p.tiles = p.token_tiles * a.n_head_kv * p.head_chunks;
  return p;
}

}  // namespace

// Every call's tiles go into one parallel pass: the attention of all the sequences of a batch
// costs one synchronisation of the pool, not one per sequence.
void attention(ThreadPool& pool, std::span<const AttentionArgs> batch, Isa isa) {
  const OpTable& table = op_table(isa);
  std::vector<TilePlan> plans;
  std::vector<int64_t> first_tile;  // of each call, in the pass's numbering
  int64_t total = 0, scratch_floats = 0;
  for (const AttentionArgs& a : batch) {
    validate(a);
    plans.push_back(a.n_tokens == 0 ? TilePlan{1, 1, 1, 1, 0, 0} : plan_tiles(a, pool.size()));
    first_tile.push_back(total);
    total += plans.back().tiles;
    const int64_t max_queries = int64_t{plans.back().tile_heads} * plans.back().tile_tokens;
    scratch_floats = std::max(scratch_floats, max_queries * (a.head_dim + 2) + 2 * int64_t{kAttentionKeyBlock} * a.head_dim +
                                                  kAttentionKeyBlock);
  }
  pool.parallel_for(total, 1, [&](int64_t begin, int64_t end) {
    thread_local std::vector<float> scratch;
    if (static_cast<int64_t>(scratch.size()) < scratch_floats) scratch.resize(scratch_floats);
    for (int64_t index = begin; index < end; ++index) {
      const size_t call = std::upper_bound(first_tile.begin(), first_tile.end(), index) - first_tile.begin() - 1;
      const AttentionArgs& a = batch[call];
      const TilePlan& p = plans[call];
      const int64_t local = index - first_tile[call];
      const int64_t tiles_per_token_tile = int64_t{a.n_head_kv} * p.head_chunks;
      // The last tokens see the most keys, so their tiles go out first.
      const int64_t token_tile = p.token_tiles - 1 - local / tiles_per_token_tile;
      const int within = static_cast<int>(local % tiles_per_token_tile);
      const int kv_head = within / p.head_chunks;
      const int first_head = kv_head * p.group + within % p.head_chunks * p.tile_heads;
      const int64_t first_token = token_tile * p.tile_tokens;
      const int64_t hd = a.head_dim;
      const int64_t max_queries = int64_t{p.tile_heads} * p.tile_tokens;
      AttentionTile t;
      t.n_heads = std::min(p.tile_heads, (kv_head + 1) * p.group - first_head);
      t.n_tokens = static_cast<int>(std::min<int64_t>(p.tile_tokens, a.n_tokens - first_token));
      t.token_stride = int64_t{a.n_head} * hd;
      t.q = a.q + first_token * t.token_stride + first_head * hd;
      t.out = a.out + first_token * t.token_stride + first_head * hd;
      t.head_dim = a.head_dim;
      t.first_pos = a.first_pos + first_token;
      t.scale = a.scale;
      t.kv_type = a.k.type;
      t.k_pages = pages_of(a.k);
      t.v_pages = pages_of(a.v);
      t.page_positions = page_positions_of(a.k);
      t.k_head_offset = kv_head * a.k.head_stride;
      t.v_head_offset = kv_head * a.v.head_stride;
      t.k_pos_stride = a.k.pos_stride;
      t.v_pos_stride = a.v.pos_stride;
      t.acc = scratch.data();
      t.row_max = t.acc + max_queries * hd;
      t.row_sum = t.row_max + max_queries;
      t.k_block = t.row_sum + max_queries;
      t.v_block = t.k_block + kAttentionKeyBlock * hd;
      t.scores = t.v_block + kAttentionKeyBlock * hd;
      table.attention_tile(t);
    }
  });
}

}  // namespace tokenmill::kernels
