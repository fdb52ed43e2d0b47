// The vector dot products, written once over 256-bit integer vectors and instantiated by
// dot_avx2.cpp and dot_avx512.cpp. Each kernel forms the integer sums of dot_scalar.cpp from
// the raw blocks and adds up the per-block floats in vector lanes.
//
// Byte products go through maddubs (unsigned times signed bytes, adjacent pairs summed in 16
// bits), which saturates above 32767: every code here is unsigned and at most 63, or at most
// 128 in magnitude against activations of at most 127 (Q8_0 and Q8_K never hold -128), so
// pair sums stay below 32768. The 32-element formats take the products through P::dot4 (acc
// plus the sum of four products per 32-bit lane): maddubs and madd on AVX2, one VNNI
// instruction on AVX-512. The super-block formats scale each group in the madd step, which
// is cheaper than VNNI followed by a 32-bit multiply, so both tables share that code.
//
// This header is compiled with ISA flags, so everything in it has internal linkage (the
// anonymous namespace): an inline function shared with other files could be emitted with these
// instructions and then picked by the linker for code that runs on any CPU. For the same
// reason it calls no standard-library functions.
#pragma once

#include <immintrin.h>

#include <cstdint>
#include <cstring>

#include "kernels/block_layouts.h"
#include "kernels/dot_tables.h"

namespace tokenmill::kernels::dot_simd {
namespace {

float half_to_float(uint16_t h) { return _cvtsh_ss(h); }

float horizontal_sum(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

// A matrix-vector product streams the weight rows from memory, one after another: a software
// prefetch a fixed distance ahead of the bytes being read keeps more of them in flight than the
// hardware prefetcher does while the core is busy unpacking (about +50% bytes per second from
// memory on one core), and runs on into the next row.
constexpr int kPrefetchDistance = 2048;
template <class T>
void prefetch_ahead(const T* p, int bytes = sizeof(T)) {
  const char* at = reinterpret_cast<const char*>(p) + kPrefetchDistance;
  for (int line = 0; line < bytes; line += 64) _mm_prefetch(at + line, _MM_HINT_T0);
}

__m256i load32(const void* p) { return _mm256_loadu_si256(static_cast<const __m256i*>(p)); }
__m256i bytes(int v) { return _mm256_set1_epi8(static_cast<char>(v)); }

// Bits from .. from + width - 1 of every byte of v, moved to start at bit `to`. The 16-bit
// shifts cannot carry bits from one byte into the kept bits of another.
__m256i bit_field(__m256i v, int from, int width, int to) {
  const __m256i shifted = to >= from ? _mm256_sll_epi16(v, _mm_cvtsi32_si128(to - from))
                                     : _mm256_srl_epi16(v, _mm_cvtsi32_si128(from - to));
  return _mm256_and_si256(shifted, bytes(((1 << width) - 1) << to));
}

__m256i low_nibbles(__m256i v) { return _mm256_and_si256(v, bytes(15)); }
__m256i high_nibbles(__m256i v) { return _mm256_and_si256(_mm256_srli_epi16(v, 4), bytes(15)); }

// 16 bytes of packed nibbles as 32 codes: low nibbles first, then high nibbles (the element
// order of the 32-element groups).
__m256i nibble_codes(const uint8_t* p) {
  const __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p));
  const __m128i mask = _mm_set1_epi8(15);
  return _mm256_set_m128i(_mm_and_si128(_mm_srli_epi16(v, 4), mask), _mm_and_si128(v, mask));
}

// 16 in byte j where bit j of the little-endian 32-bit word at p is set.
__m256i fifth_bits(const uint8_t* p) {
  uint32_t word;
  std::memcpy(&word, p, 4);
  // Byte j takes byte j / 8 of the word, then tests its bit j % 8.
  const __m256i spread =
      _mm256_shuffle_epi8(_mm256_set1_epi32(static_cast<int>(word)),
                          _mm256_setr_epi64x(0, 0x0101010101010101, 0x0202020202020202, 0x0303030303030303));
  const __m256i bit = _mm256_set1_epi64x(static_cast<int64_t>(0x8040201008040201));
  return _mm256_and_si256(_mm256_cmpeq_epi8(_mm256_and_si256(spread, bit), bit), bytes(16));
}

// The IQ4 level of each of 32 codes 0..15.
__m256i iq4_levels(__m256i codes) {
  const __m128i table = _mm_loadu_si128(reinterpret_cast<const __m128i*>(kIq4Levels));
  return _mm256_shuffle_epi8(_mm256_set_m128i(table, table), codes);
}

// Signed bytes w times signed bytes a: |w| times a with w's sign moved onto a.
template <class P>
__m256i dot4_signed(__m256i acc, __m256i w, __m256i a) {
  return P::dot4(acc, _mm256_sign_epi8(w, w), _mm256_sign_epi8(a, w));
}

// ---- Float weights against float activations: eight at a time in four accumulators (the
// additions of one would wait on each other), the last n % 8 one by one.

__m256 widen8(const float* p) { return _mm256_loadu_ps(p); }
float widen1(float x) { return x; }
struct F16 {
  uint16_t bits;
};
__m256 widen8(const F16* p) { return _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p))); }
float widen1(F16 h) { return _cvtsh_ss(h.bits); }
struct BF16 {
  uint16_t bits;
};
__m256 widen8(const BF16* p) {
  const __m256i wide = _mm256_cvtepu16_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
  return _mm256_castsi256_ps(_mm256_slli_epi32(wide, 16));
}
float widen1(BF16 h) {
  const uint32_t bits = static_cast<uint32_t>(h.bits) << 16;
  float x;
  std::memcpy(&x, &bits, 4);
  return x;
}

template <class T>
float dot_floats(const void* weight_row, const void* activation_row, int64_t n) {
  const auto* w = static_cast<const T*>(weight_row);
  const auto* a = static_cast<const float*>(activation_row);
  __m256 acc[4] = {_mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps()};
  int64_t i = 0;
  for (; i + 32 <= n; i += 32) {
    prefetch_ahead(w + i, 32 * sizeof(T));
#pragma GCC unroll 4
    for (int k = 0; k < 4; ++k) acc[k] = _mm256_fmadd_ps(widen8(w + i + 8 * k), _mm256_loadu_ps(a + i + 8 * k), acc[k]);
  }
  for (; i + 8 <= n; i += 8) acc[0] = _mm256_fmadd_ps(widen8(w + i), _mm256_loadu_ps(a + i), acc[0]);
  float sum = horizontal_sum(_mm256_add_ps(_mm256_add_ps(acc[0], acc[1]), _mm256_add_ps(acc[2], acc[3])));
  for (; i < n; ++i) sum += widen1(w[i]) * a[i];
  return sum;
}

// ---- 32-element blocks against Q8_0.

// The codes the scale multiplies, as signed bytes.
__m256i signed_codes(const BlockQ8_0& b) { return load32(b.qs); }
__m256i signed_codes(const BlockQ4_0& b) { return _mm256_sub_epi8(nibble_codes(b.qs), bytes(8)); }
__m256i signed_codes(const BlockQ5_0& b) {
  return _mm256_sub_epi8(_mm256_or_si256(nibble_codes(b.qs), fifth_bits(b.qh)), bytes(16));
}
__m256i signed_codes(const BlockIQ4_NL& b) { return iq4_levels(nibble_codes(b.qs)); }
// The formats with a min: unsigned codes.
__m256i unsigned_codes(const BlockQ4_1& b) { return nibble_codes(b.qs); }
__m256i unsigned_codes(const BlockQ5_1& b) { return _mm256_or_si256(nibble_codes(b.qs), fifth_bits(b.qh)); }

// d_w d_a sum(q a) per block.
template <class P, class Block>
float dot_symmetric(const void* weight_row, const void* activation_row, int64_t n) {
  const auto* w = static_cast<const Block*>(weight_row);
  const auto* a = static_cast<const BlockQ8_0*>(activation_row);
  __m256 acc = _mm256_setzero_ps();
  for (int64_t i = 0; i < n / kBlockSize; ++i) {
    prefetch_ahead(w + i);
    const __m256i sums = dot4_signed<P>(_mm256_setzero_si256(), signed_codes(w[i]), load32(a[i].qs));
    const float scale = half_to_float(w[i].d) * half_to_float(a[i].d);
    acc = _mm256_fmadd_ps(_mm256_cvtepi32_ps(sums), _mm256_set1_ps(scale), acc);
  }
  return horizontal_sum(acc);
}

// d_w d_a sum(q a) + m d_a sum(a) per block.
template <class P, class Block>
float dot_with_min(const void* weight_row, const void* activation_row, int64_t n) {
  const auto* w = static_cast<const Block*>(weight_row);
  const auto* a = static_cast<const BlockQ8_0*>(activation_row);
  __m256 acc = _mm256_setzero_ps();
  for (int64_t i = 0; i < n / kBlockSize; ++i) {
    prefetch_ahead(w + i);
    const __m256i activations = load32(a[i].qs);
    const __m256i sums_qa = P::dot4(_mm256_setzero_si256(), unsigned_codes(w[i]), activations);
    const __m256i sums_a = P::dot4(_mm256_setzero_si256(), bytes(1), activations);
    const float da = half_to_float(a[i].d);
    acc = _mm256_fmadd_ps(_mm256_cvtepi32_ps(sums_qa), _mm256_set1_ps(half_to_float(w[i].d) * da), acc);
    acc = _mm256_fmadd_ps(_mm256_cvtepi32_ps(sums_a), _mm256_set1_ps(half_to_float(w[i].m) * da), acc);
  }
  return horizontal_sum(acc);
}

// ---- Super-blocks against Q8_K. Each group's products are scaled in 16-bit lanes by madd
// and summed in 32-bit lanes per super-block. Codes stay unsigned; the offsets of Q3_K (4)
// and Q6_K (32) and the mins come off through Q8_K's 16-element sums. Group scales are
// unpacked with whole-word bit operations and kept in registers: storing them one by one and
// reloading them as a vector stalls on store forwarding.

__m256i scaled_dot(__m256i codes, const int8_t* a, __m256i scale16) {
  return _mm256_madd_epi16(_mm256_maddubs_epi16(codes, load32(a)), scale16);
}

// Up to eight group scales as 16-bit words, repeated in both 128-bit halves; pick() then
// spreads scale `first` over the low half's lanes and `second` over the high half's (the two
// 16-element groups of 32 bytes, or one 32-element group twice) with one byte shuffle.
__m256i scale_words(__m128i eight_signed_bytes) {
  return _mm256_broadcastsi128_si256(_mm_cvtepi8_epi16(eight_signed_bytes));
}
struct alignas(32) ByteShuffle {
  int8_t index[32];
};
constexpr ByteShuffle word_pick(int first, int second) {
  ByteShuffle s{};
  for (int i = 0; i < 16; ++i) {
    s.index[i] = static_cast<int8_t>(2 * first + i % 2);
    s.index[16 + i] = static_cast<int8_t>(2 * second + i % 2);
  }
  return s;
}
constexpr ByteShuffle kPairs[4] = {word_pick(0, 1), word_pick(2, 3), word_pick(4, 5), word_pick(6, 7)};
constexpr ByteShuffle kSingles[8] = {word_pick(0, 0), word_pick(1, 1), word_pick(2, 2), word_pick(3, 3),
                                     word_pick(4, 4), word_pick(5, 5), word_pick(6, 6), word_pick(7, 7)};
__m256i pick(__m256i words, const ByteShuffle& which) {
  return _mm256_shuffle_epi8(words, _mm256_load_si256(reinterpret_cast<const __m256i*>(which.index)));
}

int horizontal_sum(__m256i v) {
  __m128i s = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
  s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0x4E));
  s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0xB1));
  return _mm_cvtsi128_si32(s);
}

// sum over the 16 groups of scale[g] * bsums[g], the scales as 16 signed bytes.
int weighted_group_sums(__m128i scales, const int16_t* bsums) {
  return horizontal_sum(_mm256_madd_epi16(_mm256_cvtepi8_epi16(scales), load32(bsums)));
}

// The float sum of the super-blocks: d_a (d * integer sums - mins), the mins added apart.
struct SuperBlockSum {
  __m256 lanes = _mm256_setzero_ps();
  float mins = 0;

  void add(__m256i sums, float scale, float min_term) {
    lanes = _mm256_fmadd_ps(_mm256_cvtepi32_ps(sums), _mm256_set1_ps(scale), lanes);
    mins += min_term;
  }
  float total() const { return horizontal_sum(lanes) - mins; }
};

float dot_q2_k(const void* weight_row, const void* activation_row, int64_t n) {
  const auto* w = static_cast<const BlockQ2_K*>(weight_row);
  const auto* a = static_cast<const BlockQ8_K*>(activation_row);
  SuperBlockSum result;
  for (int64_t i = 0; i < n / kSuperBlockSize; ++i) {
    prefetch_ahead(w + i);
    // Low nibble: the group's scale, high nibble: its min.
    const __m128i packed = _mm_loadu_si128(reinterpret_cast<const __m128i*>(w[i].scales));
    const __m128i scales = _mm_and_si128(packed, _mm_set1_epi8(15));
    __m256i sums = _mm256_setzero_si256();
    for (int h = 0; h < 2; ++h) {
      const __m256i planes = load32(w[i].qs + 32 * h);
      const __m256i words = scale_words(h == 0 ? scales : _mm_unpackhi_epi64(scales, scales));
#pragma GCC unroll 4
      for (int k = 0; k < 4; ++k)
        sums = _mm256_add_epi32(sums, scaled_dot(bit_field(planes, 2 * k, 2, 0), a[i].qs + 128 * h + 32 * k, pick(words, kPairs[k])));
    }
    const int sum_min = weighted_group_sums(_mm_and_si128(_mm_srli_epi16(packed, 4), _mm_set1_epi8(15)), a[i].bsums);
    result.add(sums, a[i].d * half_to_float(w[i].d), a[i].d * half_to_float(w[i].dmin) * static_cast<float>(sum_min));
  }
  return result.total();
}

// Q3_K's 16 six-bit scales, stored + 32, as signed bytes: low nibbles from bytes 0-7 (nibble
// g / 8 of byte g % 8), top bits from bytes 8-11 (bits 2 * (g / 4) of byte 8 + g % 4).
__m128i q3_k_scales(const uint8_t* p) {
  uint32_t w[3];
  std::memcpy(w, p, 12);
  const uint32_t low = 0x0F0F0F0F, top = 0x03030303;
  const __m128i stored = _mm_setr_epi32(static_cast<int>((w[0] & low) | (w[2] & top) << 4),
                                        static_cast<int>((w[1] & low) | (w[2] >> 2 & top) << 4),
                                        static_cast<int>((w[0] >> 4 & low) | (w[2] >> 4 & top) << 4),
                                        static_cast<int>((w[1] >> 4 & low) | (w[2] >> 6 & top) << 4));
  return _mm_sub_epi8(stored, _mm_set1_epi8(32));
}

float dot_q3_k(const void* weight_row, const void* activation_row, int64_t n) {
  const auto* w = static_cast<const BlockQ3_K*>(weight_row);
  const auto* a = static_cast<const BlockQ8_K*>(activation_row);
  SuperBlockSum result;
  for (int64_t i = 0; i < n / kSuperBlockSize; ++i) {
    prefetch_ahead(w + i);
    const __m128i scales = q3_k_scales(w[i].scales);
    const __m256i high = load32(w[i].hmask);
    __m256i sums = _mm256_setzero_si256();
    for (int h = 0; h < 2; ++h) {
      const __m256i planes = load32(w[i].qs + 32 * h);
      const __m256i words = scale_words(h == 0 ? scales : _mm_unpackhi_epi64(scales, scales));
#pragma GCC unroll 4
      for (int k = 0; k < 4; ++k) {
        const __m256i codes = _mm256_or_si256(bit_field(planes, 2 * k, 2, 0), bit_field(high, 4 * h + k, 1, 2));
        sums = _mm256_add_epi32(sums, scaled_dot(codes, a[i].qs + 128 * h + 32 * k, pick(words, kPairs[k])));
      }
    }
    const float step = a[i].d * half_to_float(w[i].d);
    result.add(sums, step, step * static_cast<float>(4 * weighted_group_sums(scales, a[i].bsums)));
  }
  return result.total();
}

// Q4_K and Q5_K: group 2c in the low nibbles of qs[32c .. 32c + 31], group 2c + 1 in the high
// ones; Q5_K's fifth bit of group g is bit g of qh.
template <class Block>
float dot_q45_k(const void* weight_row, const void* activation_row, int64_t n) {
  constexpr bool kFiveBits = requires(const Block& b) { b.qh; };
  const auto* w = static_cast<const Block*>(weight_row);
  const auto* a = static_cast<const BlockQ8_K*>(activation_row);
  // Each min applies to two of Q8_K's 16-element sums.
  const __m128i pairs = _mm_setr_epi8(0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7);
  SuperBlockSum result;
  for (int64_t i = 0; i < n / kSuperBlockSize; ++i) {
    prefetch_ahead(w + i);
    const ScalesMins sm = q45_k_scales(w[i].scales);
    const __m256i words = scale_words(_mm_cvtsi64_si128(static_cast<int64_t>(sm.scales)));  // < 64: fine as signed
    __m256i sums = _mm256_setzero_si256();
#pragma GCC unroll 4
    for (int c = 0; c < 4; ++c) {
      const __m256i packed = load32(w[i].qs + 32 * c);
      __m256i low = low_nibbles(packed), high = high_nibbles(packed);
      if constexpr (kFiveBits) {
        const __m256i fifth = load32(w[i].qh);
        low = _mm256_or_si256(low, bit_field(fifth, 2 * c, 1, 4));
        high = _mm256_or_si256(high, bit_field(fifth, 2 * c + 1, 1, 4));
      }
      sums = _mm256_add_epi32(sums, scaled_dot(low, a[i].qs + 64 * c, pick(words, kSingles[2 * c])));
      sums = _mm256_add_epi32(sums, scaled_dot(high, a[i].qs + 64 * c + 32, pick(words, kSingles[2 * c + 1])));
    }
    const __m128i mins = _mm_shuffle_epi8(_mm_cvtsi64_si128(static_cast<int64_t>(sm.mins)), pairs);
    const int sum_min = weighted_group_sums(mins, a[i].bsums);  // mins < 64: fine as signed bytes
    result.add(sums, a[i].d * half_to_float(w[i].d), a[i].d * half_to_float(w[i].dmin) * static_cast<float>(sum_min));
  }
  return result.total();
}

// Q6_K: in half h, element 32k + l has its low nibble in ql[64h + 32(k % 2) + l] (nibble
// k / 2) and its top two bits at bits 2k of qh[32h + l].
float dot_q6_k(const void* weight_row, const void* activation_row, int64_t n) {
  const auto* w = static_cast<const BlockQ6_K*>(weight_row);
  const auto* a = static_cast<const BlockQ8_K*>(activation_row);
  SuperBlockSum result;
  for (int64_t i = 0; i < n / kSuperBlockSize; ++i) {
    prefetch_ahead(w + i);
    const __m128i scales = _mm_loadu_si128(reinterpret_cast<const __m128i*>(w[i].scales));
    __m256i sums = _mm256_setzero_si256();
    for (int h = 0; h < 2; ++h) {
      const __m256i low0 = load32(w[i].ql + 64 * h), low1 = load32(w[i].ql + 64 * h + 32);
      const __m256i top = load32(w[i].qh + 32 * h);
      const __m256i words = scale_words(h == 0 ? scales : _mm_unpackhi_epi64(scales, scales));
      const __m256i codes[4] = {low_nibbles(low0), low_nibbles(low1), high_nibbles(low0), high_nibbles(low1)};
#pragma GCC unroll 4
      for (int k = 0; k < 4; ++k) {
        const __m256i code = _mm256_or_si256(codes[k], bit_field(top, 2 * k, 2, 4));
        sums = _mm256_add_epi32(sums, scaled_dot(code, a[i].qs + 128 * h + 32 * k, pick(words, kPairs[k])));
      }
    }
    const float step = a[i].d * half_to_float(w[i].d);
    result.add(sums, step, step * static_cast<float>(32 * weighted_group_sums(scales, a[i].bsums)));
  }
  return result.total();
}

float dot_iq4_xs(const void* weight_row, const void* activation_row, int64_t n) {
  const auto* w = static_cast<const BlockIQ4_XS*>(weight_row);
  const auto* a = static_cast<const BlockQ8_K*>(activation_row);
  SuperBlockSum result;
  for (int64_t i = 0; i < n / kSuperBlockSize; ++i) {
    prefetch_ahead(w + i);
    __m256i sums = _mm256_setzero_si256();
#pragma GCC unroll 8
    for (int g = 0; g < 8; ++g) {
      // 6-bit scale, stored + 32: low nibble g % 2 of scales_l[g / 2], top bits 2g of scales_h.
      const int scale = (((w[i].scales_l[g / 2] >> (4 * (g % 2))) & 15) | ((w[i].scales_h >> (2 * g)) & 3) << 4) - 32;
      const __m256i levels = iq4_levels(nibble_codes(w[i].qs + 16 * g));
      const __m256i activations = _mm256_sign_epi8(load32(a[i].qs + 32 * g), levels);
      sums = _mm256_add_epi32(sums, _mm256_madd_epi16(_mm256_maddubs_epi16(_mm256_sign_epi8(levels, levels), activations),
                                                      _mm256_set1_epi16(static_cast<short>(scale))));
    }
    result.add(sums, a[i].d * half_to_float(w[i].d), 0.0f);
  }
  return result.total();
}

template <class P>
constexpr DotTable make_dot_table() {
  return {dot_floats<float>,           dot_floats<F16>,             dot_floats<BF16>,
          dot_symmetric<P, BlockQ4_0>, dot_with_min<P, BlockQ4_1>, dot_symmetric<P, BlockQ5_0>,
          dot_with_min<P, BlockQ5_1>,  dot_symmetric<P, BlockQ8_0>, dot_symmetric<P, BlockIQ4_NL>,
          dot_q2_k,                    dot_q3_k,                    dot_q45_k<BlockQ4_K>,
          dot_q45_k<BlockQ5_K>,        dot_q6_k,                    dot_iq4_xs};
}

}  // namespace
}  // namespace tokenmill::kernels::dot_simd
