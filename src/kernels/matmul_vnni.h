// The quantized tiles of matmul on AVX-512 VNNI: R weight rows times T activation rows per
// pass. Each weight block is unpacked once into byte codes and group scales and multiplied
// with all T activation rows, each activation vector loaded once for all R weight rows, so a
// prefill runs on multiply throughput rather than on unpacking, and a decode (T = 1) reads R
// rows side by side. The integer sums are those of the scalar dot products (dot_scalar.cpp);
// only the order of the float additions differs.
//
// K-quants against Q8_K, 64 elements per 512-bit step: maddubs multiplies the unsigned codes
// (at most 63) with the activations (|a| <= 127) into 16-bit pair sums (at most 16002, no
// saturation) and vpdpwssd multiplies those by the group scale and adds them to 32-bit lanes.
// A super-block's lanes become floats once: times d_w d_a, less the group offsets (mins, or the
// centring of Q3_K's and Q6_K's codes) times d_a times Q8_K's 16-element sums.
//
// Q8_0, Q4_0, Q5_0 and IQ4_NL weights against Q8_0, two blocks per step: vpdpbusd takes the
// weights as unsigned codes (w + 128, the stored 4- / 5-bit q, or IQ4's level + 128 looked up by
// vpshufb), and each lane starts from minus the centre (128, 8, 16) times its activations' sum,
// so it ends at sum(w a). The lanes of each block are scaled by that block's d_w d_a. IQ4_XS
// does the same against Q8_K, two 32-element groups per step, each with its own scale.
//
// Every tile prefetches a little ahead in each of its rows, so a decode keeps memory busy while
// it computes.
//
// Included only by matmul_avx512.cpp; everything has internal linkage (see dot_simd.h).
#pragma once

#include <cstdint>
#include <cstring>
#include <utility>

#include "kernels/block_layouts.h"
#include "kernels/matmul_kernels.h"
#include "kernels/simd_avx512.h"

namespace tokenmill::kernels::vnni {
namespace {

float half_to_float(uint16_t h) { return _cvtsh_ss(h); }

__m512i load64(const void* p) { return _mm512_loadu_si512(p); }
// 32 bytes in both halves.
__m512i broadcast32(const void* p) {
  return _mm512_broadcast_i64x4(_mm256_loadu_si256(static_cast<const __m256i*>(p)));
}
__m512i bytes(int v) { return _mm512_set1_epi8(static_cast<char>(v)); }
// 16-bit words 0-15 shifted by `low`, words 16-31 by `high`.
__m512i words_by_half(int low, int high) {
  return _mm512_inserti64x4(_mm512_set1_epi16(static_cast<short>(low)), _mm256_set1_epi16(static_cast<short>(high)), 1);
}

// A tile's weight rows and outputs: row r at w + r * lane_stride, its output for token t at
// y[t * ldy + r * y_lane]. After a row, the tile that follows on the same lane reads the row at
// `next` bytes from it (where the prefetches below run on to).
struct TileRows {
  const uint8_t* w;
  uint64_t lane_stride;
  uint64_t next;
  float* y;
  int64_t y_lane;
};

// Software prefetch a short distance ahead in each of a tile's rows, running on into each lane's
// next row near the end: the hardware prefetcher alone leaves memory idle while the core
// unpacks. Measured on one core with 1 GiB of weights: 512 bytes ahead beats 256 B to 2 KiB.
constexpr uint64_t kPrefetchDistance = 512;
template <int R>
void prefetch_rows(const TileRows& rows, uint64_t row_bytes, uint64_t offset, uint64_t bytes) {
  const uint64_t ahead = offset + kPrefetchDistance;
  const uint8_t* p = rows.w + (ahead < row_bytes ? ahead : ahead - row_bytes + rows.next);
  for (int r = 0; r < R; ++r)
    for (uint64_t line = 0; line < bytes; line += 64)
      _mm_prefetch(reinterpret_cast<const char*>(p + r * rows.lane_stride + line), _MM_HINT_T0);
}

// A tile's float accumulators: zeroed before its rows, and each summed across its lanes into
// the row's output for the token at the end. Inlined, so they stay in registers.
template <int R, int T>
void zero_sums(__m512 (&acc)[R][T]) {
  #pragma GCC unroll 8
  for (int r = 0; r < R; ++r)
    #pragma GCC unroll 8
    for (int t = 0; t < T; ++t) acc[r][t] = _mm512_setzero_ps();
}
template <int R, int T>
void store_sums(const __m512 (&acc)[R][T], const TileRows& rows, int64_t ldy) {
  #pragma GCC unroll 8
  for (int r = 0; r < R; ++r)
    #pragma GCC unroll 8
    for (int t = 0; t < T; ++t) rows.y[t * ldy + r * rows.y_lane] = _mm512_reduce_add_ps(acc[r][t]);
}

// ---- K-quants.

// One weight row's super-block, prepared once per tile pass.
struct SuperRow {
  __m512i scales;   // the group scales as 16-bit words
  __m512 offsets;   // per 16-element group: what d_a * (sum of its activations) is taken times
  __m512 d;         // d_w in every lane
};

// The 16-bit word picks that spread group scales over a 64-element step's 32 pair sums: word i
// of step j holds elements 64j + 2i and 64j + 2i + 1, in group (64j + 2i) / group_size.
struct alignas(64) WordPicks {
  int16_t step[4][32];
};
template <int GroupSize>
constexpr WordPicks word_picks() {
  WordPicks p{};
  for (int j = 0; j < 4; ++j)
    for (int i = 0; i < 32; ++i) p.step[j][i] = static_cast<int16_t>((64 * j + 2 * i) / GroupSize);
  return p;
}

// Q4_K and Q5_K: elements 64j .. 64j + 31 are the low nibbles of qs[32j .. 32j + 31], the next
// 32 the high nibbles; Q5_K's fifth bit of element e is bit e / 32 of qh[e % 32].
template <class B>
struct Q45K {
  using Block = B;
  static constexpr int kGroupSize = 32;

  static SuperRow prepare(const Block& b) {
    const ScalesMins sm = q45_k_scales(b.scales);
    // Each min covers two of the 16-element sums.
    const __m128i pairs = _mm_setr_epi8(0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7);
    const __m128i mins = _mm_shuffle_epi8(_mm_cvtsi64_si128(static_cast<int64_t>(sm.mins)), pairs);
    // d and dmin, adjacent halves, converted together.
    uint32_t d_dmin;
    std::memcpy(&d_dmin, &b.d, 4);
    const __m512 both = _mm512_castps128_ps512(_mm_cvtph_ps(_mm_cvtsi32_si128(static_cast<int>(d_dmin))));
    return {_mm512_castsi128_si512(_mm_cvtepu8_epi16(_mm_cvtsi64_si128(static_cast<int64_t>(sm.scales)))),
            _mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_cvtepu8_epi32(mins)), _mm512_permutexvar_ps(_mm512_set1_epi32(1), both)),
            _mm512_broadcastss_ps(_mm512_castps512_ps128(both))};
  }

  static __m512i codes(const Block& b, int j) {
    const __m512i nibbles =
        _mm512_and_si512(_mm512_srlv_epi16(broadcast32(b.qs + 32 * j), words_by_half(0, 4)), bytes(15));
    if constexpr (requires { b.qh; }) {
      // Bits 2j and 2j + 1 of qh to bit 4: a left shift for j < 2, a right one after.
      const __m512i top = broadcast32(b.qh);
      const __m512i moved = j < 2 ? _mm512_sllv_epi16(top, words_by_half(4 - 2 * j, 3 - 2 * j))
                                  : _mm512_srlv_epi16(top, words_by_half(2 * j - 4, 2 * j - 3));
      return _mm512_or_si512(nibbles, _mm512_and_si512(moved, bytes(16)));
    }
    return nibbles;
  }
};

// Q6_K: step j is half h = j / 2; its 64 elements take nibble j % 2 of ql[64h .. 64h + 63] and,
// as bits 4-5, bits 2k of qh[32h + e % 32] for k = 2 (j % 2) in the first 32, 2 (j % 2) + 1 in
// the second. The codes are the stored 0..63; the -32 comes off through the offsets.
struct Q6K {
  using Block = BlockQ6_K;
  static constexpr int kGroupSize = 16;

  static SuperRow prepare(const Block& b) {
    const __m128i scales = _mm_loadu_si128(reinterpret_cast<const __m128i*>(b.scales));
    const float d = half_to_float(b.d);
    return {_mm512_castsi256_si512(_mm256_cvtepi8_epi16(scales)),
            _mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(scales)), _mm512_set1_ps(32.0f * d)),
            _mm512_set1_ps(d)};
  }

  static __m512i codes(const Block& b, int j) {
    const int h = j / 2;
    const __m512i low = load64(b.ql + 64 * h);
    const __m512i nibbles = _mm512_and_si512(j % 2 ? _mm512_srli_epi16(low, 4) : low, bytes(15));
    const __m512i top = broadcast32(b.qh + 32 * h);
    // Bits 0-1 / 2-3 to 4-5 for even j (left by 4 / 2), bits 4-5 / 6-7 for odd j (right by 0 / 2).
    const __m512i moved = j % 2 ? _mm512_srlv_epi16(top, words_by_half(0, 2)) : _mm512_sllv_epi16(top, words_by_half(4, 2));
    return _mm512_or_si512(nibbles, _mm512_and_si512(moved, bytes(0x30)));
  }
};

// Q2_K and Q3_K's low two bits: step j is half n = j / 2; element 32k + l of the half is bits
// 2k of qs[32n + l], k = 2 (j % 2) in the first 32 of the step, 2 (j % 2) + 1 in the second.
__m512i two_bit_codes(const uint8_t* qs, int j) {
  const int shift = 4 * (j % 2);
  return _mm512_and_si512(_mm512_srlv_epi16(broadcast32(qs + 32 * (j / 2)), words_by_half(shift, shift + 2)), bytes(3));
}

// Q2_K: the low nibble of scales[g] is group g's scale, the high nibble its min.
struct Q2K {
  using Block = BlockQ2_K;
  static constexpr int kGroupSize = 16;

  static SuperRow prepare(const Block& b) {
    const __m128i packed = _mm_loadu_si128(reinterpret_cast<const __m128i*>(b.scales));
    const __m128i low4 = _mm_set1_epi8(15);
    const __m128i mins = _mm_and_si128(_mm_srli_epi16(packed, 4), low4);
    return {_mm512_castsi256_si512(_mm256_cvtepu8_epi16(_mm_and_si128(packed, low4))),
            _mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_cvtepu8_epi32(mins)), _mm512_set1_ps(half_to_float(b.dmin))),
            _mm512_set1_ps(half_to_float(b.d))};
  }

  static __m512i codes(const Block& b, int j) { return two_bit_codes(b.qs, j); }
};

// Q3_K: codes are the two low bits plus the third bit of element e, bit e / 32 of
// hmask[e % 32], as bit 2 (0..7; the -4 comes off through the offsets). The 16 signed 6-bit
// scales (stored + 32): low 4 bits of scale g are nibble g / 8 of scales[g % 8], the top two
// bits 2 (g / 4) of scales[8 + g % 4].
struct Q3K {
  using Block = BlockQ3_K;
  static constexpr int kGroupSize = 16;

  static SuperRow prepare(const Block& b) {
    uint64_t low;
    uint32_t top;
    std::memcpy(&low, b.scales, 8);
    std::memcpy(&top, b.scales + 8, 4);
    const uint64_t nibbles = 0x0F0F0F0F0F0F0F0F, twos = 0x0303030303030303;
    const uint64_t top_0_7 = (top | uint64_t{top} << 30) & twos, top_8_15 = (top >> 4 | uint64_t{top} << 26) & twos;
    const __m128i stored = _mm_set_epi64x(static_cast<int64_t>((low >> 4 & nibbles) | top_8_15 << 4),
                                          static_cast<int64_t>((low & nibbles) | top_0_7 << 4));
    const __m256i scales = _mm256_sub_epi16(_mm256_cvtepu8_epi16(stored), _mm256_set1_epi16(32));
    const float d = half_to_float(b.d);
    return {_mm512_castsi256_si512(scales),
            _mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_cvtepi16_epi32(scales)), _mm512_set1_ps(4.0f * d)),
            _mm512_set1_ps(d)};
  }

  static __m512i codes(const Block& b, int j) {
    const __m512i third = _mm512_and_si512(_mm512_srlv_epi16(broadcast32(b.hmask), words_by_half(2 * j, 2 * j + 1)), bytes(1));
    return _mm512_or_si512(two_bit_codes(b.qs, j), _mm512_slli_epi16(third, 2));
  }
};

template <class F, int R, int T>
void k_quant_tile(const TileRows& rows, const uint8_t* a, uint64_t a_stride, int64_t n_blocks, int64_t ldy) {
  using Block = typename F::Block;
  static constexpr WordPicks kPicks = word_picks<F::kGroupSize>();
  __m512 acc[R][T];
  zero_sums(acc);
  for (int64_t i = 0; i < n_blocks; ++i) {
    prefetch_rows<R>(rows, n_blocks * sizeof(Block), i * sizeof(Block), sizeof(Block));
    const Block* b[R];
    SuperRow row[R];
    #pragma GCC unroll 8
    for (int r = 0; r < R; ++r) {
      b[r] = reinterpret_cast<const Block*>(rows.w + r * rows.lane_stride) + i;
      row[r] = F::prepare(*b[r]);
    }
    const BlockQ8_K* q[T];
    #pragma GCC unroll 8
    for (int t = 0; t < T; ++t) q[t] = reinterpret_cast<const BlockQ8_K*>(a + t * a_stride) + i;
    __m512i sums[R][T];
    #pragma GCC unroll 8
    for (int r = 0; r < R; ++r)
      #pragma GCC unroll 8
      for (int t = 0; t < T; ++t) sums[r][t] = _mm512_setzero_si512();
#pragma GCC unroll 4
    for (int j = 0; j < 4; ++j) {
      __m512i act[T];
      #pragma GCC unroll 8
      for (int t = 0; t < T; ++t) act[t] = load64(q[t]->qs + 64 * j);
      #pragma GCC unroll 8
      for (int r = 0; r < R; ++r) {
        const __m512i codes = F::codes(*b[r], j);
        const __m512i scales = _mm512_permutexvar_epi16(_mm512_load_si512(kPicks.step[j]), row[r].scales);
        #pragma GCC unroll 8
        for (int t = 0; t < T; ++t)
          sums[r][t] = _mm512_dpwssd_epi32(sums[r][t], _mm512_maddubs_epi16(codes, act[t]), scales);
      }
    }
    #pragma GCC unroll 8
    for (int t = 0; t < T; ++t) {
      const __m512 da = _mm512_set1_ps(q[t]->d);
      const __m512 group_sums = _mm512_mul_ps(
          _mm512_cvtepi32_ps(_mm512_cvtepi16_epi32(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(q[t]->bsums)))), da);
      #pragma GCC unroll 8
      for (int r = 0; r < R; ++r) {
        acc[r][t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(sums[r][t]), _mm512_mul_ps(row[r].d, da), acc[r][t]);
        acc[r][t] = _mm512_fnmadd_ps(row[r].offsets, group_sums, acc[r][t]);
      }
    }
  }
  store_sums(acc, rows, ldy);
}

// ---- 32-element blocks against Q8_0: Q8_0, Q4_0 and Q5_0, two blocks per step. Each format
// gives its 64 elements as unsigned codes q + kCentre, which vpdpbusd multiplies with the signed
// activations; each lane starts from -kCentre times its activations' sum, so it ends at the sum
// of the centred values times the activations.

// [d0 x 8 | d1 x 8] from two half floats.
__m512 pair_scales(uint16_t d0, uint16_t d1) {
  const __m128 two = _mm_cvtph_ps(_mm_cvtsi32_si128(static_cast<int>(d0 | static_cast<uint32_t>(d1) << 16)));
  return _mm512_permutexvar_ps(_mm512_setr_epi32(0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1),
                               _mm512_castps128_ps512(two));
}
// Two 32-byte halves as one vector; the second zero when there is no second block.
__m512i pair(__m256i first, __m256i second, bool both) {
  return both ? _mm512_inserti64x4(_mm512_castsi256_si512(first), second, 1) : _mm512_zextsi256_si512(first);
}
__m256i load32(const void* p) { return _mm256_loadu_si256(static_cast<const __m256i*>(p)); }

// Stored signed bytes; flipping the sign bit adds 128.
struct Q8_0Codes {
  using Block = BlockQ8_0;
  static constexpr int kCentre = 128;
  static __m512i codes(const Block* b, bool both) {
    return _mm512_xor_si512(pair(load32(b[0].qs), both ? load32(b[1].qs) : _mm256_setzero_si256(), both), bytes(0x80));
  }
};

// Element j < 16 of a block is the low nibble of qs[j], element j + 16 its high nibble.
template <class Block>
__m256i nibble_codes(const Block& b) {
  const __m128i q = _mm_loadu_si128(reinterpret_cast<const __m128i*>(b.qs));
  const __m128i low4 = _mm_set1_epi8(15);
  return _mm256_set_m128i(_mm_and_si128(_mm_srli_epi16(q, 4), low4), _mm_and_si128(q, low4));
}

struct Q4_0Codes {
  using Block = BlockQ4_0;
  static constexpr int kCentre = 8;
  static __m512i codes(const Block* b, bool both) {
    return pair(nibble_codes(b[0]), both ? nibble_codes(b[1]) : _mm256_setzero_si256(), both);
  }
};

// Q4_0's nibbles with element e's fifth bit from bit e of qh.
struct Q5_0Codes {
  using Block = BlockQ5_0;
  static constexpr int kCentre = 16;
  static __m512i codes(const Block* b, bool both) {
    uint32_t qh[2] = {0, 0};
    std::memcpy(&qh[0], b[0].qh, 4);
    if (both) std::memcpy(&qh[1], b[1].qh, 4);
    const __m512i nibbles = pair(nibble_codes(b[0]), both ? nibble_codes(b[1]) : _mm256_setzero_si256(), both);
    return _mm512_or_si512(nibbles, _mm512_maskz_set1_epi8(qh[0] | uint64_t{qh[1]} << 32, 16));
  }
};

// IQ4_NL: Q4_0's nibbles index the 16 levels; the codes are level + 128.
__m512i iq4_levels_plus_128() {
  return _mm512_xor_si512(_mm512_broadcast_i32x4(_mm_loadu_si128(reinterpret_cast<const __m128i*>(kIq4Levels))), bytes(0x80));
}
struct IQ4NLCodes {
  using Block = BlockIQ4_NL;
  static constexpr int kCentre = 128;
  static __m512i codes(const Block* b, bool both) {
    return _mm512_shuffle_epi8(iq4_levels_plus_128(), pair(nibble_codes(b[0]), both ? nibble_codes(b[1]) : _mm256_setzero_si256(), both));
  }
};

template <class F, int R, int T>
void block32_tile(const TileRows& rows, const uint8_t* a, uint64_t a_stride, int64_t n_blocks, int64_t ldy) {
  using Block = typename F::Block;
  __m512 acc[R][T];
  zero_sums(acc);
  for (int64_t i = 0; i < n_blocks; i += 2) {
    prefetch_rows<R>(rows, n_blocks * sizeof(Block), i * sizeof(Block), 2 * sizeof(Block));
    const bool both = i + 1 < n_blocks;
    __m512i act[T], start[T];
    __m512 da[T];
    #pragma GCC unroll 8
    for (int t = 0; t < T; ++t) {
      const auto* q = reinterpret_cast<const BlockQ8_0*>(a + t * a_stride) + i;
      act[t] = pair(load32(q[0].qs), both ? load32(q[1].qs) : _mm256_setzero_si256(), both);
      start[t] = _mm512_sub_epi32(_mm512_setzero_si512(),
                                  _mm512_dpbusd_epi32(_mm512_setzero_si512(), bytes(F::kCentre), act[t]));
      da[t] = pair_scales(q[0].d, both ? q[1].d : 0);
    }
    #pragma GCC unroll 8
    for (int r = 0; r < R; ++r) {
      const auto* b = reinterpret_cast<const Block*>(rows.w + r * rows.lane_stride) + i;
      const __m512i codes = F::codes(b, both);
      const __m512 dw = pair_scales(b[0].d, both ? b[1].d : 0);
      #pragma GCC unroll 8
      for (int t = 0; t < T; ++t) {
        const __m512i sums = _mm512_dpbusd_epi32(start[t], codes, act[t]);
        acc[r][t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(sums), _mm512_mul_ps(dw, da[t]), acc[r][t]);
      }
    }
  }
  store_sums(acc, rows, ldy);
}

// ---- IQ4_XS against Q8_K, 64 elements (two 32-element groups) per step: the nibbles index the
// levels, taken as level + 128 by vpdpbusd with each lane starting from -128 times its
// activations' sum, as above; lanes 0-7 hold the first group's sums, 8-15 the second's, each
// scaled by its group's d (scale - 32) d_a.

// The eight group scales (stored + 32) times d, in lanes 0-7: low 4 bits in nibble g % 2 of
// scales_l[g / 2], high 2 bits in bits 2g of scales_h; pdep spreads both to a byte per group.
__m512 iq4_xs_group_scales(const BlockIQ4_XS& b) {
  uint32_t low;
  std::memcpy(&low, b.scales_l, 4);
  const uint64_t stored = _pdep_u64(low, 0x0F0F0F0F0F0F0F0F) | _pdep_u64(b.scales_h, 0x0303030303030303) << 4;
  const __m256i scales = _mm256_sub_epi32(_mm256_cvtepu8_epi32(_mm_cvtsi64_si128(static_cast<int64_t>(stored))), _mm256_set1_epi32(32));
  return _mm512_castps256_ps512(_mm256_mul_ps(_mm256_cvtepi32_ps(scales), _mm256_set1_ps(half_to_float(b.d))));
}

// Group g's 32 elements are the low then the high nibbles of qs[16g .. 16g + 15].
__m512i iq4_xs_codes(const BlockIQ4_XS& b, int j) {
  const __m256i q = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(b.qs + 32 * j));
  const __m256i low4 = _mm256_set1_epi8(15);
  const __m512i lows_highs = _mm512_inserti64x4(_mm512_castsi256_si512(_mm256_and_si256(q, low4)),
                                                _mm256_and_si256(_mm256_srli_epi16(q, 4), low4), 1);
  // 128-bit lanes [low 0-15, low 16-31, high 0-15, high 16-31] to [low, high of group 2j, then 2j + 1].
  return _mm512_shuffle_epi8(iq4_levels_plus_128(), _mm512_shuffle_i64x2(lows_highs, lows_highs, _MM_SHUFFLE(3, 1, 2, 0)));
}

template <int R, int T>
void iq4_xs_tile(const TileRows& rows, const uint8_t* a, uint64_t a_stride, int64_t n_blocks, int64_t ldy) {
  __m512 acc[R][T];
  zero_sums(acc);
  const __m512i first_group = _mm512_setr_epi32(0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1);
  for (int64_t i = 0; i < n_blocks; ++i) {
    prefetch_rows<R>(rows, n_blocks * sizeof(BlockIQ4_XS), i * sizeof(BlockIQ4_XS), sizeof(BlockIQ4_XS));
    const BlockIQ4_XS* b[R];
    __m512 group_scales[R];
    #pragma GCC unroll 8
    for (int r = 0; r < R; ++r) {
      b[r] = reinterpret_cast<const BlockIQ4_XS*>(rows.w + r * rows.lane_stride) + i;
      group_scales[r] = iq4_xs_group_scales(*b[r]);
    }
    const BlockQ8_K* q[T];
    #pragma GCC unroll 8
    for (int t = 0; t < T; ++t) q[t] = reinterpret_cast<const BlockQ8_K*>(a + t * a_stride) + i;
#pragma GCC unroll 4
    for (int j = 0; j < 4; ++j) {
      __m512i act[T], start[T];
      #pragma GCC unroll 8
      for (int t = 0; t < T; ++t) {
        act[t] = load64(q[t]->qs + 64 * j);
        start[t] = _mm512_sub_epi32(_mm512_setzero_si512(), _mm512_dpbusd_epi32(_mm512_setzero_si512(), bytes(0x80), act[t]));
      }
      const __m512i groups = _mm512_add_epi32(first_group, _mm512_set1_epi32(2 * j));
      #pragma GCC unroll 8
      for (int r = 0; r < R; ++r) {
        const __m512i codes = iq4_xs_codes(*b[r], j);
        const __m512 scale = _mm512_permutexvar_ps(groups, group_scales[r]);
        #pragma GCC unroll 8
        for (int t = 0; t < T; ++t) {
          const __m512i sums = _mm512_dpbusd_epi32(start[t], codes, act[t]);
          acc[r][t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(sums), _mm512_mul_ps(scale, _mm512_set1_ps(q[t]->d)), acc[r][t]);
        }
      }
    }
  }
  store_sums(acc, rows, ldy);
}

// ---- Whole blocks of rows and tokens in tiles. A decode (one token) takes kGemvRows rows at a
// time from kGemvRows equal runs of the block's rows, so that each lane of the tile streams
// through a run of contiguous rows: rows of a few KiB read side by side as neighbours come
// from memory about 25% slower (DRAM pages and prefetch streams). More tokens take kRows
// neighbouring rows times kTokens tokens (the best measured per kernel: a few rows, as many
// tokens as the registers hold), the edges in smaller tiles.

constexpr int kGemvRows = 4;

using Tile = void (*)(const TileRows&, const uint8_t*, uint64_t, int64_t, int64_t);

template <template <int, int> class Kernel, int R, int... T>
constexpr void tile_row(Tile* row, std::integer_sequence<int, T...>) {
  ((row[T] = Kernel<R, T + 1>::run), ...);
}
// Kernel<r + 1, t + 1> at [r][t].
template <template <int, int> class Kernel, int kRows, int kTokens>
struct TileTable {
  Tile at[kRows][kTokens];
  constexpr TileTable() : at{} { fill(std::make_integer_sequence<int, kRows>()); }
  template <int... R>
  constexpr void fill(std::integer_sequence<int, R...>) {
    (tile_row<Kernel, R + 1>(at[R], std::make_integer_sequence<int, kTokens>()), ...);
  }
};

template <template <int, int> class Kernel, int kRows, int kTokens>
void tiles(const uint8_t* w, uint64_t row_bytes, int64_t n_rows, const uint8_t* a, uint64_t a_stride,
           int64_t n_tokens, int64_t n_blocks, float* y, int64_t ldy) {
  if (n_tokens == 1) {
    static constexpr TileTable<Kernel, kGemvRows, 1> kGemv;
    const int64_t run = n_rows / kGemvRows, rest = n_rows % kGemvRows;
    for (int64_t i = 0; i < run; ++i)
      kGemv.at[kGemvRows - 1][0]({w + i * row_bytes, run * row_bytes, row_bytes, y + i, run}, a, a_stride, n_blocks, ldy);
    if (rest > 0) {
      const int64_t r = n_rows - rest;
      kGemv.at[rest - 1][0]({w + r * row_bytes, row_bytes, rest * row_bytes, y + r, 1}, a, a_stride, n_blocks, ldy);
    }
    return;
  }
  static constexpr TileTable<Kernel, kRows, kTokens> kGemm;
  for (int64_t t = 0; t < n_tokens; t += kTokens) {
    const int64_t nt = n_tokens - t < kTokens ? n_tokens - t : kTokens;
    for (int64_t r = 0; r < n_rows; r += kRows) {
      const int64_t nr = n_rows - r < kRows ? n_rows - r : kRows;
      kGemm.at[nr - 1][nt - 1]({w + r * row_bytes, row_bytes, kRows * row_bytes, y + t * ldy + r, 1}, a + t * a_stride,
                               a_stride, n_blocks, ldy);
    }
  }
}

template <class F, int R, int T>
struct KQuantTile {
  static constexpr Tile run = k_quant_tile<F, R, T>;
};
template <class Unused, int R, int T>
struct IQ4XSTile {
  static constexpr Tile run = iq4_xs_tile<R, T>;
};
template <class F, int R, int T>
struct Block32Tile {
  static constexpr Tile run = block32_tile<F, R, T>;
};

// Format F's tiles from the kernel family Family<F, R, T>, kRows x kTokens at most for prompts.
template <template <class, int, int> class Family, class F, int kRows, int kTokens, int kBlockElements>
struct Tiled {
  template <int R, int T>
  using Kernel = Family<F, R, T>;
  static void run(const uint8_t* w, uint64_t w_stride, int64_t n_rows, const uint8_t* a, uint64_t a_stride,
                  int64_t n_tokens, int64_t n, float* y, int64_t ldy) {
    tiles<Kernel, kRows, kTokens>(w, w_stride, n_rows, a, a_stride, n_tokens, n / kBlockElements, y, ldy);
  }
};
template <class F>
using KQuant = Tiled<KQuantTile, F, 2, 8, kSuperBlockSize>;
template <class F>
using Block32 = Tiled<Block32Tile, F, 4, 4, kBlockSize>;
using IQ4XS = Tiled<IQ4XSTile, void, 4, 4, kSuperBlockSize>;

constexpr QuantTiles make_quant_tiles() {
  return {Block32<Q8_0Codes>::run,        Block32<Q4_0Codes>::run,      Block32<Q5_0Codes>::run,
          Block32<IQ4NLCodes>::run,       IQ4XS::run,
          KQuant<Q2K>::run,             KQuant<Q3K>::run,             KQuant<Q45K<BlockQ4_K>>::run,
          KQuant<Q45K<BlockQ5_K>>::run, KQuant<Q6K>::run};
}

}  // namespace
}  // namespace tokenmill::kernels::vnni
