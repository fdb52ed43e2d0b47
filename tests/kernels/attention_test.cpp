// Attention over a KV cache, on every ISA path, against a naive implementation written here:
// all scores of a query, a full softmax in double, then the weighted sum of V.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <vector>

#include "common/error.h"
#include "kernels/attention.h"
#include "kernels/formats.h"
#include "kernels/half.h"
#include "kernels/thread_pool.h"
#include "kernels/test_util.h"

namespace tokenmill::kernels {
namespace {

using gguf::TensorType;
using testing::all_near;
using testing::random_normal;

struct Shape {
  int n_head, n_head_kv, head_dim;
  int64_t n_tokens, first_pos;
};

// A layer's cache: f32 originals [pos][kv head][head_dim] and the same rows stored in `type`,
// laid out position-major or head-major.
struct Cache {
  TensorType type;
  int64_t n_pos;
  int n_head_kv, head_dim;
  bool head_major;
  std::vector<float> k_f32, v_f32;
  std::vector<unsigned char> k_bytes, v_bytes;

  int64_t row_bytes() const { return static_cast<int64_t>(gguf::row_bytes(type, head_dim)); }
  int64_t pos_stride() const { return head_major ? row_bytes() : n_head_kv * row_bytes(); }
  int64_t head_stride() const { return head_major ? n_pos * row_bytes() : row_bytes(); }
  int64_t offset(int64_t pos, int h) const { return pos * pos_stride() + h * head_stride(); }
  KvView view(const std::vector<unsigned char>& bytes) const {
    return {type, bytes.data(), pos_stride(), head_stride()};
  }
};

Cache make_cache(Rng& rng, TensorType type, int64_t n_pos, int n_head_kv, int head_dim,
                 bool head_major, float k_scale) {
  Cache c{type, n_pos, n_head_kv, head_dim, head_major, {}, {}, {}, {}};
  c.k_f32 = random_normal(rng, n_pos * n_head_kv * head_dim, k_scale);
  c.v_f32 = random_normal(rng, n_pos * n_head_kv * head_dim);
  c.k_bytes.resize(n_pos * n_head_kv * c.row_bytes());
  c.v_bytes.resize(c.k_bytes.size());
  for (int64_t p = 0; p < n_pos; ++p) {
    for (int h = 0; h < n_head_kv; ++h) {
      const int64_t src = (p * n_head_kv + h) * head_dim;
      quantize_row(type, &c.k_f32[src], &c.k_bytes[c.offset(p, h)], head_dim);
      quantize_row(type, &c.v_f32[src], &c.v_bytes[c.offset(p, h)], head_dim);
    }
  }
  return c;
}

// The values a stored row decodes to, decoded independently of the kernels.
std::vector<float> decoded(const Cache& c, const std::vector<unsigned char>& bytes) {
  std::vector<float> out(c.n_pos * c.n_head_kv * c.head_dim);
  for (int64_t p = 0; p < c.n_pos; ++p) {
    for (int h = 0; h < c.n_head_kv; ++h) {
      const unsigned char* row = &bytes[c.offset(p, h)];
      float* dst = &out[(p * c.n_head_kv + h) * c.head_dim];
      for (int i = 0; i < c.head_dim; ++i) {
        if (c.type == TensorType::F32) {
          std::memcpy(&dst[i], row + 4 * i, 4);
        } else if (c.type == TensorType::F16) {
          uint16_t half;
          std::memcpy(&half, row + 2 * i, 2);
          dst[i] = f16_to_f32(half);
        } else {  // Q8_0: per 32 values, an f16 scale then 32 int8
          const unsigned char* block = row + (i / 32) * 34;
          uint16_t d;
          std::memcpy(&d, block, 2);
          dst[i] = f16_to_f32(d) * static_cast<int8_t>(block[2 + i % 32]);
        }
      }
    }
  }
  return out;
}

std::vector<float> naive_attention(const Shape& s, float scale, const std::vector<float>& q,
                                   const std::vector<float>& k, const std::vector<float>& v) {
  std::vector<float> out(q.size());
  const int group = s.n_head / s.n_head_kv;
  for (int64_t t = 0; t < s.n_tokens; ++t) {
    for (int h = 0; h < s.n_head; ++h) {
      const float* qr = &q[(t * s.n_head + h) * s.head_dim];
      const int kvh = h / group;
      const int64_t n_keys = s.first_pos + t + 1;
      std::vector<double> scores(n_keys);
      double max = -INFINITY;
      for (int64_t j = 0; j < n_keys; ++j) {
        const float* kr = &k[(j * s.n_head_kv + kvh) * s.head_dim];
        double dot = 0;
        for (int i = 0; i < s.head_dim; ++i) dot += double{qr[i]} * kr[i];
        scores[j] = dot * scale;
        max = std::max(max, scores[j]);
      }
      double total = 0;
      for (double& x : scores) total += (x = std::exp(x - max));
      for (int i = 0; i < s.head_dim; ++i) {
        double acc = 0;
        for (int64_t j = 0; j < n_keys; ++j) acc += scores[j] * v[(j * s.n_head_kv + kvh) * s.head_dim + i];
        out[(t * s.n_head + h) * s.head_dim + i] = static_cast<float>(acc / total);
      }
    }
  }
  return out;
}

const std::vector<Shape> kShapes = {
    {1, 1, 32, 1, 0},     // the very first token
    {4, 4, 64, 1, 100},   // decode, no grouping
    {8, 2, 128, 1, 37},   // decode, GQA
    {32, 2, 128, 1, 70},  // GLM-4-like decode: 16 query heads per kv head
    {6, 3, 96, 5, 10},    // prefill continuing a cache
    {8, 1, 64, 13, 0},    // MQA prefill from scratch
    {4, 1, 64, 2, 1000},  // long context: many key blocks
    {2, 2, 256, 9, 31},   // head_dim 256, tokens crossing a key-block edge
};

// head_dim not a multiple of a vector (F32/F16 only; Q8_0 needs multiples of 32).
const std::vector<Shape> kOddShapes = {{4, 2, 40, 7, 33}, {2, 1, 17, 3, 5}, {3, 3, 1, 4, 2}};

class AttentionTest : public ::testing::TestWithParam<Isa> {
 protected:
  // Runs one case; returns the kernel's output for further comparisons.
  std::vector<float> check(const Shape& s, TensorType type, bool head_major, ThreadPool& pool,
                           float k_scale = 1.0f, uint64_t seed = 1) {
    Rng rng(seed);
    const int64_t n_pos = s.first_pos + s.n_tokens;
    const Cache cache = make_cache(rng, type, n_pos, s.n_head_kv, s.head_dim, head_major, k_scale);
    const auto q = random_normal(rng, s.n_tokens * s.n_head * s.head_dim);
    const float scale = 1.0f / std::sqrt(static_cast<float>(s.head_dim));
    std::vector<float> out(q.size(), NAN);
    AttentionArgs a;
    a.n_head = s.n_head;
    a.n_head_kv = s.n_head_kv;
    a.head_dim = s.head_dim;
    a.scale = scale;
    a.q = q.data();
    a.out = out.data();
    a.n_tokens = s.n_tokens;
    a.first_pos = s.first_pos;
    a.k = cache.view(cache.k_bytes);
    a.v = cache.view(cache.v_bytes);
    attention(pool, a, GetParam());

    const std::string what = std::string(gguf::tensor_type_name(type)) + " heads " +
                             std::to_string(s.n_head) + "/" + std::to_string(s.n_head_kv) + " dim " +
                             std::to_string(s.head_dim) + " tokens " + std::to_string(s.n_tokens) +
                             " from " + std::to_string(s.first_pos) + (head_major ? " head-major" : "");
    // Against the exact answer for the values the cache holds: only float rounding differs.
    const auto exact = naive_attention(s, scale, q, decoded(cache, cache.k_bytes), decoded(cache, cache.v_bytes));
    EXPECT_TRUE(all_near(out, exact, 2e-5, 2e-5)) << what;
    // Against the f32 originals: the cache type's rounding shows, in proportion to the keys'
    // size (it perturbs the scores).
    const double tolerance =
        (type == TensorType::F32 ? 2e-5 : type == TensorType::F16 ? 3e-3 : 3e-2) * k_scale;
    const auto original = naive_attention(s, scale, q, cache.k_f32, cache.v_f32);
    EXPECT_TRUE(all_near(out, original, tolerance, 0)) << what << " vs f32";
    return out;
  }
};

TEST_P(AttentionTest, MatchesNaiveForEveryCacheType) {
  ThreadPool pool(2);
  for (TensorType type : {TensorType::F32, TensorType::F16, TensorType::Q8_0}) {
    for (const Shape& s : kShapes) {
      for (bool head_major : {false, true}) check(s, type, head_major, pool);
    }
  }
}

TEST_P(AttentionTest, OddHeadDims) {
  ThreadPool pool(2);
  for (TensorType type : {TensorType::F32, TensorType::F16}) {
    for (const Shape& s : kOddShapes) check(s, type, false, pool);
  }
}

// Large scores make the running max jump between key blocks; the rescaling must keep up.
TEST_P(AttentionTest, LargeScoresStayStable) {
  ThreadPool pool(2);
  check({4, 2, 64, 3, 200}, TensorType::F32, false, pool, 12.0f);
  check({4, 2, 64, 3, 200}, TensorType::F16, false, pool, 12.0f);
}

TEST_P(AttentionTest, SameResultForAnyThreadCount) {
  const Shape s{16, 2, 64, 6, 45};
  ThreadPool one(1), two(2), five(5);
  const auto a = check(s, TensorType::F16, false, one);
  EXPECT_TRUE(all_near(check(s, TensorType::F16, false, two), a, 0, 0));
  EXPECT_TRUE(all_near(check(s, TensorType::F16, false, five), a, 0, 0));
}

TEST_P(AttentionTest, OutputMayOverwriteQ) {
  Rng rng(5);
  const Cache cache = make_cache(rng, TensorType::Q8_0, 9, 2, 32, false, 1.0f);
  auto q = random_normal(rng, 3 * 4 * 32);
  std::vector<float> separate(q.size());
  AttentionArgs a{4, 2, 32, 0.2f, q.data(), separate.data(), 3, 6, cache.view(cache.k_bytes),
                  cache.view(cache.v_bytes)};
  ThreadPool pool(2);
  attention(pool, a, GetParam());
  a.out = q.data();
  attention(pool, a, GetParam());
  EXPECT_TRUE(all_near(q, separate, 0, 0));
}

// The same cache copied into pages of `page_positions` positions, placed in shuffled order in
// one arena (so page i is not where page i - 1 ends) and listed in a block table.
struct PagedCopy {
  std::vector<unsigned char> k_arena, v_arena;
  std::vector<const void*> k_pages, v_pages;
  int64_t pos_stride = 0, head_stride = 0;
};

PagedCopy page(const Cache& c, int64_t page_positions, bool head_major_pages, Rng& rng) {
  const int64_t n_pages = (c.n_pos + page_positions - 1) / page_positions;
  const int64_t page_bytes = page_positions * c.n_head_kv * c.row_bytes();
  std::vector<int64_t> slot(n_pages);
  for (int64_t i = 0; i < n_pages; ++i) slot[i] = i;
  for (int64_t i = n_pages - 1; i > 0; --i) std::swap(slot[i], slot[rng.next_u64() % (i + 1)]);
  PagedCopy p;
  p.k_arena.assign(n_pages * page_bytes, 0xAB);
  p.v_arena.assign(n_pages * page_bytes, 0xAB);
  p.pos_stride = head_major_pages ? c.row_bytes() : c.n_head_kv * c.row_bytes();
  p.head_stride = head_major_pages ? page_positions * c.row_bytes() : c.row_bytes();
  for (int64_t i = 0; i < n_pages; ++i) {
    p.k_pages.push_back(&p.k_arena[slot[i] * page_bytes]);
    p.v_pages.push_back(&p.v_arena[slot[i] * page_bytes]);
  }
  for (int64_t pos = 0; pos < c.n_pos; ++pos) {
    for (int h = 0; h < c.n_head_kv; ++h) {
      const int64_t at = slot[pos / page_positions] * page_bytes + pos % page_positions * p.pos_stride + h * p.head_stride;
      std::memcpy(&p.k_arena[at], &c.k_bytes[c.offset(pos, h)], c.row_bytes());
      std::memcpy(&p.v_arena[at], &c.v_bytes[c.offset(pos, h)], c.row_bytes());
    }
  }
  return p;
}

// Reading through a block table changes where rows come from, not the arithmetic: the result
// is bit-identical to the contiguous cache's.
TEST_P(AttentionTest, PagedCacheMatchesContiguous) {
  ThreadPool pool(2);
  Rng rng(11);
  const std::vector<Shape> shapes = {{8, 2, 64, 1, 0}, {8, 2, 64, 1, 95}, {6, 3, 96, 5, 60},
                                     {4, 1, 32, 40, 0}, {4, 2, 64, 3, 200}};
  for (TensorType type : {TensorType::F32, TensorType::F16, TensorType::Q8_0}) {
    for (const Shape& s : shapes) {
      for (int64_t page_positions : {32, 64}) {
        for (bool head_major_pages : {false, true}) {
          const Cache cache = make_cache(rng, type, s.first_pos + s.n_tokens, s.n_head_kv, s.head_dim, false, 1.0f);
          const PagedCopy paged = page(cache, page_positions, head_major_pages, rng);
          const auto q = random_normal(rng, s.n_tokens * s.n_head * s.head_dim);
          std::vector<float> contiguous(q.size(), NAN), through_pages(q.size(), NAN);
          AttentionArgs a{s.n_head, s.n_head_kv, s.head_dim, 0.125f, q.data(), contiguous.data(), s.n_tokens,
                          s.first_pos, cache.view(cache.k_bytes), cache.view(cache.v_bytes)};
          attention(pool, a, GetParam());
          a.out = through_pages.data();
          a.k = {type, nullptr, paged.pos_stride, paged.head_stride, paged.k_pages.data(), page_positions};
          a.v = {type, nullptr, paged.pos_stride, paged.head_stride, paged.v_pages.data(), page_positions};
          attention(pool, a, GetParam());
          EXPECT_TRUE(all_near(through_pages, contiguous, 0, 0))
              << gguf::tensor_type_name(type) << " tokens " << s.n_tokens << " from " << s.first_pos << " pages of "
              << page_positions << (head_major_pages ? " head-major" : "");
        }
      }
    }
  }
}

// A batch of independent calls (a forward pass's sequences, with different shapes, positions and
// cache types) in one pass gives each call exactly what it gives alone.
TEST_P(AttentionTest, BatchOfCallsMatchesCallsOneByOne) {
  ThreadPool pool(3);
  Rng rng(21);
  const std::vector<std::pair<Shape, TensorType>> calls = {
      {{8, 2, 64, 1, 70}, TensorType::F16}, {{8, 2, 64, 9, 0}, TensorType::F16},
      {{4, 4, 32, 1, 5}, TensorType::Q8_0}, {{6, 3, 96, 3, 40}, TensorType::F32}, {{2, 1, 32, 2, 3}, TensorType::F32}};
  std::vector<Cache> caches;
  std::vector<std::vector<float>> qs, alone, together;
  std::vector<AttentionArgs> batch;
  for (const auto& [s, type] : calls) {
    caches.push_back(make_cache(rng, type, s.first_pos + s.n_tokens, s.n_head_kv, s.head_dim, false, 1.0f));
    qs.push_back(random_normal(rng, s.n_tokens * s.n_head * s.head_dim));
    alone.emplace_back(qs.back().size(), NAN);
    together.emplace_back(qs.back().size(), NAN);
  }
  for (size_t i = 0; i < calls.size(); ++i) {
    const Shape& s = calls[i].first;
    AttentionArgs a{s.n_head, s.n_head_kv, s.head_dim, 0.2f, qs[i].data(), alone[i].data(), s.n_tokens, s.first_pos,
                    caches[i].view(caches[i].k_bytes), caches[i].view(caches[i].v_bytes)};
    attention(pool, a, GetParam());
    a.out = together[i].data();
    batch.push_back(a);
  }
  attention(pool, batch, GetParam());
  for (size_t i = 0; i < calls.size(); ++i) EXPECT_TRUE(all_near(together[i], alone[i], 0, 0)) << "call " << i;
}

INSTANTIATE_TEST_SUITE_P(EveryIsa, AttentionTest, ::testing::ValuesIn(supported_isas()),
                         testing::isa_param_name);

TEST(Attention, RejectsBadArguments) {
  ThreadPool pool(1);
  std::vector<float> q(2 * 64), out(2 * 64), kv(64 * 8);
  const KvView view{TensorType::F32, kv.data(), 64 * 4, 64 * 4 * 8};
  const AttentionArgs good{2, 1, 64, 0.125f, q.data(), out.data(), 1, 0, view, view};
  EXPECT_NO_THROW(attention(pool, good));
  AttentionArgs a = good;
  a.n_head = 3;
  a.n_head_kv = 2;
  EXPECT_THROW(attention(pool, a), Error);
  a = good;
  a.k.type = a.v.type = TensorType::Q4_0;
  EXPECT_THROW(attention(pool, a), Error);
  a = good;
  a.v.type = TensorType::F16;
  EXPECT_THROW(attention(pool, a), Error);
  a = good;
  a.k.type = a.v.type = TensorType::Q8_0;
  a.head_dim = 40;
  EXPECT_THROW(attention(pool, a), Error);
  a = good;
  a.k.pos_stride = 10;
  EXPECT_THROW(attention(pool, a), Error);
  a = good;
  a.first_pos = -1;
  EXPECT_THROW(attention(pool, a), Error);
  const void* pages[] = {kv.data()};
  a = good;
  a.k = a.v = {TensorType::F32, nullptr, 64 * 4, 64 * 4 * 8, pages, 32};
  EXPECT_NO_THROW(attention(pool, a));
  a.k.page_positions = a.v.page_positions = 20;  // not a whole number of key blocks
  EXPECT_THROW(attention(pool, a), Error);
  a.k.page_positions = 32;  // V paged differently
  EXPECT_THROW(attention(pool, a), Error);
  a.k = good.k;  // K contiguous, V paged
  EXPECT_THROW(attention(pool, a), Error);
}

}  // namespace
}  // namespace tokenmill::kernels
