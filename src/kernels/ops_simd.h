// The vector ops, written once over a vector type V (simd_avx2.h, simd_avx512.h) and
// instantiated by ops_avx2.cpp and ops_avx512.cpp. Each computes what its scalar reference in
// ops_scalar.cpp / attention.cpp computes, up to float rounding and the approximations of
// exp and erf below.
//
// This header is compiled with ISA flags, so everything in it is a template over V or calls
// V's members: a plain inline function or a standard-library template used here could be
// emitted with AVX-512 instructions and then chosen by the linker for the AVX2 or baseline
// code too.
#pragma once

#include <cstdint>

#include "kernels/attention.h"
#include "kernels/block_layouts.h"
#include "kernels/ops.h"

namespace tokenmill::kernels::simd {

template <class V>
using Vec = typename V::F;

constexpr float kNegInf = -__builtin_inff();

// e^x to about 2 ulp: x = n*ln2 + r with |r| <= ln2/2, e^r from Cephes' degree-6 polynomial,
// times 2^n. Below -87.3 (and for -inf and NaN) the result is 0; above 88.37 it saturates at
// about 2.4e38, so x / (1 + exp(-x)) and the like never see infinities.
template <class V>
Vec<V> vexp(Vec<V> x) {
  const Vec<V> lo = V::set1(-87.33654f);
  const Vec<V> xc = V::min(V::max(x, lo), V::set1(88.3762626647949f));
  const Vec<V> n = V::round(V::mul(xc, V::set1(1.44269504088896341f)));
  Vec<V> r = V::fnmadd(n, V::set1(0.693359375f), xc);  // ln2 split in two for exactness
  r = V::fnmadd(n, V::set1(-2.12194440e-4f), r);
  Vec<V> p = V::set1(1.9875691500e-4f);
  p = V::fmadd(p, r, V::set1(1.3981999507e-3f));
  p = V::fmadd(p, r, V::set1(8.3334519073e-3f));
  p = V::fmadd(p, r, V::set1(4.1665795894e-2f));
  p = V::fmadd(p, r, V::set1(1.6666665459e-1f));
  p = V::fmadd(p, r, V::set1(5.0000001201e-1f));
  const Vec<V> er = V::add(V::fmadd(p, V::mul(r, r), r), V::set1(1.0f));
  return V::zero_below(V::mul(er, V::pow2(n)), x, lo);
}

// erf(x) by Abramowitz & Stegun 7.1.26 (absolute error below 1.5e-7).
template <class V>
Vec<V> verf(Vec<V> x) {
  const Vec<V> ax = V::abs(x);
  const Vec<V> t = V::div(V::set1(1.0f), V::fmadd(V::set1(0.3275911f), ax, V::set1(1.0f)));
  Vec<V> p = V::set1(1.061405429f);
  p = V::fmadd(p, t, V::set1(-1.453152027f));
  p = V::fmadd(p, t, V::set1(1.421413741f));
  p = V::fmadd(p, t, V::set1(-0.284496736f));
  p = V::fmadd(p, t, V::set1(0.254829592f));
  p = V::mul(p, t);
  const Vec<V> e = vexp<V>(V::sub(V::zero(), V::mul(ax, ax)));
  const Vec<V> y = V::fnmadd(p, e, V::set1(1.0f));
  return V::xor_bits(y, V::sign_bits(x));
}

// x / (1 + e^-z), the shared shape of SiLU (z = x) and tanh-GELU.
template <class V>
Vec<V> times_sigmoid(Vec<V> x, Vec<V> z) {
  return V::div(x, V::add(V::set1(1.0f), vexp<V>(V::sub(V::zero(), z))));
}

// count (<= kLanes) floats: a whole vector, or a masked tail that touches nothing beyond.
template <class V>
Vec<V> load_n(const float* p, int64_t count) {
  return count == V::kLanes ? V::load(p) : V::load_tail(p, count);
}

template <class V>
void store_n(float* p, Vec<V> v, int64_t count) {
  if (count == V::kLanes) {
    V::store(p, v);
  } else {
    V::store_tail(p, v, count);
  }
}

// y[i] = fn(in[i]...) over n floats for one or more inputs.
template <class V, class Fn, class... In>
void map(int64_t n, float* y, Fn fn, const In*... in) {
  for (int64_t i = 0; i < n; i += V::kLanes) {
    const int64_t count = n - i < V::kLanes ? n - i : V::kLanes;
    store_n<V>(y + i, fn(load_n<V>(in + i, count)...), count);
  }
}

// Sum of fn(x[i]) with four accumulators, which hides the add latency and keeps enough loads
// in flight to reach memory bandwidth.
template <class V, class Fn>
float map_sum(const float* x, int64_t n, Fn fn) {
  constexpr int64_t L = V::kLanes;
  Vec<V> s0 = V::zero(), s1 = V::zero(), s2 = V::zero(), s3 = V::zero();
  int64_t i = 0;
  for (; i + 4 * L <= n; i += 4 * L) {
    s0 = V::add(s0, fn(V::load(x + i)));
    s1 = V::add(s1, fn(V::load(x + i + L)));
    s2 = V::add(s2, fn(V::load(x + i + 2 * L)));
    s3 = V::add(s3, fn(V::load(x + i + 3 * L)));
  }
  for (; i + L <= n; i += L) s0 = V::add(s0, fn(V::load(x + i)));
  // fn(0) need not be 0, so the tail's unused lanes are cleared after applying fn.
  if (i < n) s1 = V::add(s1, V::first_lanes(fn(V::load_tail(x + i, n - i)), n - i));
  return V::reduce_add(V::add(V::add(s0, s1), V::add(s2, s3)));
}

template <class V>
float sum(const float* x, int64_t n) {
  return map_sum<V>(x, n, [](Vec<V> v) { return v; });
}

template <class V>
float dot(const float* a, const float* b, int64_t n) {
  Vec<V> s0 = V::zero(), s1 = V::zero();
  int64_t i = 0;
  for (; i + 2 * V::kLanes <= n; i += 2 * V::kLanes) {
    s0 = V::fmadd(V::load(a + i), V::load(b + i), s0);
    s1 = V::fmadd(V::load(a + i + V::kLanes), V::load(b + i + V::kLanes), s1);
  }
  for (; i + V::kLanes <= n; i += V::kLanes) s0 = V::fmadd(V::load(a + i), V::load(b + i), s0);
  if (i < n) s1 = V::fmadd(V::load_tail(a + i, n - i), V::load_tail(b + i, n - i), s1);
  return V::reduce_add(V::add(s0, s1));
}

template <class V>
void rms_norm(const float* x, const float* weight, float* y, int64_t n, float eps) {
  const float ss = map_sum<V>(x, n, [](Vec<V> v) { return V::mul(v, v); });
  const Vec<V> scale = V::set1(1.0f / __builtin_sqrtf(ss / static_cast<float>(n) + eps));
  if (weight) {
    map<V>(n, y, [&](Vec<V> v, Vec<V> w) { return V::mul(V::mul(v, scale), w); }, x, weight);
  } else {
    map<V>(n, y, [&](Vec<V> v) { return V::mul(v, scale); }, x);
  }
}

template <class V>
void layer_norm(const float* x, const float* weight, const float* bias, float* y, int64_t n,
                float eps) {
  const float mean = sum<V>(x, n) / static_cast<float>(n);
  const Vec<V> m = V::set1(mean);
  const float var = map_sum<V>(x, n, [&](Vec<V> v) {
                      const Vec<V> d = V::sub(v, m);
                      return V::mul(d, d);
                    }) /
                    static_cast<float>(n);
  const Vec<V> inv = V::set1(1.0f / __builtin_sqrtf(var + eps));
  map<V>(n, y, [&](Vec<V> v) { return V::mul(V::sub(v, m), inv); }, x);
  if (weight) map<V>(n, y, [](Vec<V> v, Vec<V> w) { return V::mul(v, w); }, y, weight);
  if (bias) map<V>(n, y, [](Vec<V> v, Vec<V> b) { return V::add(v, b); }, y, bias);
}

// out = x*cos + partner(x)*sin, partner being the neighbour lane (normal) or the element half
// a rotation away (neox). n_rot is even, so a tail never splits a normal-mode pair.
template <class V>
void rope(float* x, int64_t n_heads, int64_t head_dim, RopeMode mode, int64_t n_rot,
          const float* cos, const float* sin) {
  for (int64_t h = 0; h < n_heads; ++h) {
    float* r = x + h * head_dim;
    if (mode == RopeMode::normal) {
      map<V>(n_rot, r, [](Vec<V> v, Vec<V> c, Vec<V> s) {
        return V::fmadd(V::swap_pairs(v), s, V::mul(v, c));
      }, r, cos, sin);
      continue;
    }
    const int64_t half = n_rot / 2;
    for (int64_t i = 0; i < half; i += V::kLanes) {
      const int64_t count = half - i < V::kLanes ? half - i : V::kLanes;
      const Vec<V> a = load_n<V>(r + i, count);
      const Vec<V> b = load_n<V>(r + half + i, count);
      const Vec<V> out_a = V::fmadd(b, load_n<V>(sin + i, count), V::mul(a, load_n<V>(cos + i, count)));
      const Vec<V> out_b =
          V::fmadd(a, load_n<V>(sin + half + i, count), V::mul(b, load_n<V>(cos + half + i, count)));
      store_n<V>(r + i, out_a, count);
      store_n<V>(r + half + i, out_b, count);
    }
  }
}

template <class V>
void softmax(const float* x, float* y, int64_t n) {
  Vec<V> mv = V::set1(kNegInf);
  int64_t i = 0;
  for (; i + V::kLanes <= n; i += V::kLanes) mv = V::max(mv, V::load(x + i));
  if (i < n) mv = V::max(mv, V::load_tail(x + i, n - i, V::set1(kNegInf)));
  const Vec<V> m = V::set1(V::reduce_max(mv));
  // Tail lanes read -inf, whose exp is 0, so they add nothing to the sum.
  Vec<V> s = V::zero();
  for (i = 0; i + V::kLanes <= n; i += V::kLanes) {
    const Vec<V> e = vexp<V>(V::sub(V::load(x + i), m));
    V::store(y + i, e);
    s = V::add(s, e);
  }
  if (i < n) {
    const Vec<V> e = vexp<V>(V::sub(V::load_tail(x + i, n - i, V::set1(kNegInf)), m));
    V::store_tail(y + i, e, n - i);
    s = V::add(s, e);
  }
  const Vec<V> inv = V::set1(1.0f / V::reduce_add(s));
  map<V>(n, y, [&](Vec<V> v) { return V::mul(v, inv); }, y);
}

template <class V>
void silu(const float* x, float* y, int64_t n) {
  map<V>(n, y, [](Vec<V> v) { return times_sigmoid<V>(v, v); }, x);
}

// 0.5 x (1 + tanh(u)) = x * sigmoid(2u), which needs one exp and stays finite for any x.
template <class V>
void gelu_tanh(const float* x, float* y, int64_t n) {
  map<V>(n, y, [](Vec<V> v) {
    const Vec<V> inner = V::fmadd(V::mul(V::set1(0.044715f), V::mul(v, v)), v, v);
    return times_sigmoid<V>(v, V::mul(V::set1(2.0f * 0.7978845608028654f), inner));
  }, x);
}

template <class V>
void gelu_erf(const float* x, float* y, int64_t n) {
  map<V>(n, y, [](Vec<V> v) {
    const Vec<V> e = verf<V>(V::mul(v, V::set1(0.7071067811865476f)));
    return V::mul(V::mul(V::set1(0.5f), v), V::add(V::set1(1.0f), e));
  }, x);
}

template <class V>
void swiglu(const float* gate, const float* up, float* y, int64_t n) {
  map<V>(n, y, [](Vec<V> g, Vec<V> u) { return V::mul(times_sigmoid<V>(g, g), u); }, gate, up);
}

template <class V>
void add(const float* a, const float* b, float* y, int64_t n) {
  map<V>(n, y, [](Vec<V> p, Vec<V> q) { return V::add(p, q); }, a, b);
}

template <class V>
void mul(const float* a, const float* b, float* y, int64_t n) {
  map<V>(n, y, [](Vec<V> p, Vec<V> q) { return V::mul(p, q); }, a, b);
}

template <class V>
void scale(const float* x, float s, float* y, int64_t n) {
  const Vec<V> sv = V::set1(s);
  map<V>(n, y, [&](Vec<V> v) { return V::mul(v, sv); }, x);
}

// `count` consecutive rows of one kv head, the first at `row`, as f32: F32 rows are used where
// they lie, F16 and Q8_0 rows are converted into buf. Sets *stride to the floats between returned rows.
template <class V>
const float* kv_block_f32(const AttentionTile& t, const char* row, int64_t pos_stride, int count, float* buf,
                          int64_t* stride) {
  const int64_t hd = t.head_dim;
  if (t.kv_type == gguf::TensorType::F32) {
    *stride = pos_stride / static_cast<int64_t>(sizeof(float));
    return reinterpret_cast<const float*>(row);
  }
  *stride = hd;
  for (int r = 0; r < count; ++r, row += pos_stride) {
    float* dst = buf + r * hd;
    if (t.kv_type == gguf::TensorType::F16) {
      const uint16_t* src = reinterpret_cast<const uint16_t*>(row);
      int64_t i = 0;
      for (; i + V::kLanes <= hd; i += V::kLanes) V::store(dst + i, V::load_f16(src + i));
      if (i < hd) V::store_tail(dst + i, V::load_f16_tail(src + i, hd - i), hd - i);
      continue;
    }
    const BlockQ8_0* block = reinterpret_cast<const BlockQ8_0*>(row);
    for (int64_t b = 0; b < hd; b += kBlockSize, ++block) {
      const Vec<V> d = V::set1(V::f16_to_f32(block->d));
      for (int64_t i = 0; i < kBlockSize; i += V::kLanes) {
        V::store(dst + b + i, V::mul(d, V::load_i8(block->qs + i)));
      }
    }
  }
  return buf;
}

// scores[j] = q . k_j for `count` key rows, four keys at a time: they share the loads of q and
// give four independent FMA chains.
template <class V>
void key_scores(const float* q, const float* k, int64_t k_stride, int count, int64_t hd,
                float* scores) {
  int j = 0;
  for (; j + 4 <= count; j += 4) {
    const float* k0 = k + j * k_stride;
    Vec<V> s0 = V::zero(), s1 = V::zero(), s2 = V::zero(), s3 = V::zero();
    for (int64_t c = 0; c < hd; c += V::kLanes) {
      const int64_t n = hd - c < V::kLanes ? hd - c : V::kLanes;
      const Vec<V> qc = load_n<V>(q + c, n);
      s0 = V::fmadd(qc, load_n<V>(k0 + c, n), s0);
      s1 = V::fmadd(qc, load_n<V>(k0 + k_stride + c, n), s1);
      s2 = V::fmadd(qc, load_n<V>(k0 + 2 * k_stride + c, n), s2);
      s3 = V::fmadd(qc, load_n<V>(k0 + 3 * k_stride + c, n), s3);
    }
    scores[j] = V::reduce_add(s0);
    scores[j + 1] = V::reduce_add(s1);
    scores[j + 2] = V::reduce_add(s2);
    scores[j + 3] = V::reduce_add(s3);
  }
  for (; j < count; ++j) scores[j] = dot<V>(q, k + j * k_stride, hd);
}

// acc = acc * correction + sum_j p[j] * v_j, a vector of dims at a time, with four partial sums
// over the keys so that consecutive FMAs do not wait on each other.
template <class V>
void accumulate_values(const float* p, const float* v, int64_t v_stride, int count, int64_t hd,
                       float correction, float* acc) {
  const Vec<V> corr = V::set1(correction);
  for (int64_t c = 0; c < hd; c += V::kLanes) {
    const int64_t n = hd - c < V::kLanes ? hd - c : V::kLanes;
    const float* vc = v + c;
    Vec<V> a0 = V::mul(load_n<V>(acc + c, n), corr), a1 = V::zero(), a2 = V::zero(), a3 = V::zero();
    int j = 0;
    for (; j + 4 <= count; j += 4) {
      a0 = V::fmadd(V::set1(p[j]), load_n<V>(vc + j * v_stride, n), a0);
      a1 = V::fmadd(V::set1(p[j + 1]), load_n<V>(vc + (j + 1) * v_stride, n), a1);
      a2 = V::fmadd(V::set1(p[j + 2]), load_n<V>(vc + (j + 2) * v_stride, n), a2);
      a3 = V::fmadd(V::set1(p[j + 3]), load_n<V>(vc + (j + 3) * v_stride, n), a3);
    }
    for (; j < count; ++j) a0 = V::fmadd(V::set1(p[j]), load_n<V>(vc + j * v_stride, n), a0);
    store_n<V>(acc + c, V::add(V::add(a0, a1), V::add(a2, a3)), n);
  }
}

// Folds `count` keys into one query's online-softmax state (max m, normaliser l, weighted sum
// acc of V): acc and l are rescaled by e^(m_old - m_new) whenever the max grows.
template <class V>
void fold_keys(const float* q, const float* k, int64_t k_stride, const float* v, int64_t v_stride,
               int count, int64_t hd, float scale, float* scores, float* acc, float* m, float* l) {
  key_scores<V>(q, k, k_stride, count, hd, scores);
  float block_max = kNegInf;
  for (int j = 0; j < count; ++j) {
    scores[j] *= scale;
    block_max = scores[j] > block_max ? scores[j] : block_max;
  }
  const float m_new = block_max > *m ? block_max : *m;
  const float correction = V::first(vexp<V>(V::set1(*m - m_new)));
  const Vec<V> mv = V::set1(m_new);
  map<V>(count, scores, [&](Vec<V> s) { return vexp<V>(V::sub(s, mv)); }, scores);
  *l = *l * correction + sum<V>(scores, count);
  *m = m_new;
  accumulate_values<V>(scores, v, v_stride, count, hd, correction, acc);
}

// Streams the tile's visible keys in blocks: each block is converted to f32 once and folded
// into every query of the tile, so the tile's heads and tokens share one pass over the cache.
template <class V>
void attention_tile(const AttentionTile& t) {
  const int64_t hd = t.head_dim;
  const int nq = t.n_heads * t.n_tokens;
  for (int qi = 0; qi < nq; ++qi) {
    t.row_max[qi] = kNegInf;
    t.row_sum[qi] = 0.0f;
    map<V>(hd, t.acc + qi * hd, [] { return V::zero(); });
  }
  const int64_t n_keys = t.first_pos + t.n_tokens;
  for (int64_t kb = 0; kb < n_keys; kb += kAttentionKeyBlock) {
    const int nb = n_keys - kb < kAttentionKeyBlock ? static_cast<int>(n_keys - kb) : kAttentionKeyBlock;
    int64_t k_stride, v_stride;
    const float* k = kv_block_f32<V>(t, t.k_row(kb), t.k_pos_stride, nb, t.k_block, &k_stride);
    const float* v = kv_block_f32<V>(t, t.v_row(kb), t.v_pos_stride, nb, t.v_block, &v_stride);
    for (int tok = 0; tok < t.n_tokens; ++tok) {
      const int64_t visible = t.first_pos + tok + 1 - kb;
      if (visible <= 0) continue;
      const int count = visible < nb ? static_cast<int>(visible) : nb;
      for (int h = 0; h < t.n_heads; ++h) {
        const int qi = tok * t.n_heads + h;
        fold_keys<V>(t.q + tok * t.token_stride + h * hd, k, k_stride, v, v_stride, count, hd,
                     t.scale, t.scores, t.acc + qi * hd, &t.row_max[qi], &t.row_sum[qi]);
      }
    }
  }
  for (int tok = 0; tok < t.n_tokens; ++tok) {
    for (int h = 0; h < t.n_heads; ++h) {
      const int qi = tok * t.n_heads + h;
      scale<V>(t.acc + qi * hd, 1.0f / t.row_sum[qi], t.out + tok * t.token_stride + h * hd, hd);
    }
  }
}

template <class V>
constexpr OpTable make_op_table() {
  return OpTable{
      .rms_norm = rms_norm<V>,
      .layer_norm = layer_norm<V>,
      .rope = rope<V>,
      .softmax = softmax<V>,
      .silu = silu<V>,
      .gelu_tanh = gelu_tanh<V>,
      .gelu_erf = gelu_erf<V>,
      .swiglu = swiglu<V>,
      .add = add<V>,
      .mul = mul<V>,
      .scale = scale<V>,
      .sum = sum<V>,
      .attention_tile = attention_tile<V>,
  };
}

}  // namespace tokenmill::kernels::simd
