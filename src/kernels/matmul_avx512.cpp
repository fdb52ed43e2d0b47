// The AVX-512 matmul kernels: the float ones from matmul_simd.h over 16-lane vectors, and the
// 8-bit product for prompt processing. Compiled with AVX-512 flags: everything here is either a
// template over the vector type or local to this file and built from intrinsics only, so no
// AVX-512 code can stand in for a baseline function at link time.
//
// The 8-bit product: a block of weight rows is decoded once into unsigned codes with a scale and
// an offset per 16 elements (CodeRows), and then multiplied with a tile of tokens whose
// activations are 8-bit codes too (CodeActivations). VPDPBUSD sums four code products into each
// 32-bit lane, so a lane never straddles a 16-element group; each lane's sum is then scaled by
// (weight scale x activation scale) of its group, in float. The offsets, being per group, meet
// the activations only through the per-group code sums: one short dot product per output.
#include <immintrin.h>

#include <cstring>
#include <type_traits>

#include "kernels/block_layouts.h"
#include "kernels/matmul_simd.h"
#include "kernels/matmul_vnni.h"
#include "kernels/simd_avx512.h"

namespace tokenmill::kernels {
namespace {

using gguf::TensorType;

float half(uint16_t h) { return _cvtsh_ss(h); }

void store32(uint8_t* p, __m256i v) { _mm256_storeu_si256(reinterpret_cast<__m256i*>(p), v); }
__m256i load32(const uint8_t* p) { return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)); }

// Q8_0: the code is q + 128 (flipping the sign bit).
void decode_q8_0(const void* row, int64_t n, uint8_t* codes, float* scale, float* offset) {
  const auto* b = static_cast<const BlockQ8_0*>(row);
  const __m256i sign = _mm256_set1_epi8(static_cast<char>(0x80));
  for (int64_t i = 0; i < n / kBlockSize; ++i, codes += 32, scale += 2, offset += 2) {
    store32(codes, _mm256_xor_si256(load32(reinterpret_cast<const uint8_t*>(b[i].qs)), sign));
    scale[0] = scale[1] = half(b[i].d);
    offset[0] = offset[1] = 128.0f * scale[0];
  }
}

// Q4_0 and IQ4_NL: element j < 16 is the low nibble of qs[j], element j + 16 its high nibble.
// Q4_0's code is the nibble (centred on 8), IQ4_NL's its level + 128.
template <class Block>
void decode_nibbles(const void* row, int64_t n, uint8_t* codes, float* scale, float* offset) {
  constexpr bool kLevels = std::is_same_v<Block, BlockIQ4_NL>;
  const auto* b = static_cast<const Block*>(row);
  const __m128i low4 = _mm_set1_epi8(15);
  const __m256i levels = _mm256_xor_si256(
      _mm256_broadcastsi128_si256(_mm_loadu_si128(reinterpret_cast<const __m128i*>(kIq4Levels))), _mm256_set1_epi8(static_cast<char>(0x80)));
  for (int64_t i = 0; i < n / kBlockSize; ++i, codes += 32, scale += 2, offset += 2) {
    const __m128i q = _mm_loadu_si128(reinterpret_cast<const __m128i*>(b[i].qs));
    const __m256i nibbles = _mm256_set_m128i(_mm_and_si128(_mm_srli_epi16(q, 4), low4), _mm_and_si128(q, low4));
    store32(codes, kLevels ? _mm256_shuffle_epi8(levels, nibbles) : nibbles);
    scale[0] = scale[1] = half(b[i].d);
    offset[0] = offset[1] = (kLevels ? 128.0f : 8.0f) * scale[0];
  }
}

// The 32-element-block formats: their tiles (matmul_vnni.h) convert each block's scale per row
// and token, which for prompts costs more than decoding the rows once into codes; the K-quants'
// tiles scale once per 256 elements and run about a third faster than this path.
bool decodes_codes(TensorType type) {
  return type == TensorType::Q8_0 || type == TensorType::Q4_0 || type == TensorType::IQ4_NL;
}

void decode_codes(TensorType type, const void* row, int64_t n, uint8_t* codes, float* scale, float* offset) {
  switch (type) {
    case TensorType::Q8_0: decode_q8_0(row, n, codes, scale, offset); break;
    case TensorType::Q4_0: decode_nibbles<BlockQ4_0>(row, n, codes, scale, offset); break;
    case TensorType::IQ4_NL: decode_nibbles<BlockIQ4_NL>(row, n, codes, scale, offset); break;
    default: return;
  }
  // Padding up to a multiple of 64 contributes nothing.
  const int64_t n_pad = (n + 63) / 64 * 64;
  std::memset(codes + n, 0, n_pad - n);
  for (int64_t g = n / 16; g < n_pad / 16; ++g) scale[g] = offset[g] = 0.0f;
}

// Four groups' values, each repeated over the four lanes that cover its 16 elements.
__m512 spread_groups(const float* four) {
  const __m512i index = _mm512_setr_epi32(0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3);
  return _mm512_permutexvar_ps(index, _mm512_castps128_ps512(_mm_loadu_ps(four)));
}

// R weight rows times T tokens: the codes of each are loaded once per 64 elements and used T
// (R) times.
template <int R, int T>
void codes_tile(const CodeRows& w, const CodeActivations& a, int64_t r0, int64_t t0, float* y, int64_t ldy) {
  __m512 acc[R][T];
  #pragma GCC unroll 4
  for (int r = 0; r < R; ++r)
    #pragma GCC unroll 4
    for (int t = 0; t < T; ++t) acc[r][t] = _mm512_setzero_ps();
  const uint8_t* wc = w.codes + r0 * w.n_pad;
  const float* ws = w.scale + r0 * w.n_groups;
  const int8_t* ac = a.codes + t0 * a.n_pad;
  const float* ad = a.d + t0 * a.n_groups;
  for (int64_t k = 0, g = 0; k < w.n_pad; k += 64, g += 4) {
    __m512i wv[R];
    __m512 sv[R];
    #pragma GCC unroll 4
    for (int r = 0; r < R; ++r) {
      wv[r] = _mm512_loadu_si512(wc + r * w.n_pad + k);
      sv[r] = spread_groups(ws + r * w.n_groups + g);
    }
    #pragma GCC unroll 4
    for (int t = 0; t < T; ++t) {
      const __m512i av = _mm512_loadu_si512(ac + t * a.n_pad + k);
      const __m512 dv = spread_groups(ad + t * a.n_groups + g);
      #pragma GCC unroll 4
      for (int r = 0; r < R; ++r) {
        const __m512i sums = _mm512_dpbusd_epi32(_mm512_setzero_si512(), wv[r], av);
        acc[r][t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(sums), _mm512_mul_ps(sv[r], dv), acc[r][t]);
      }
    }
  }
  #pragma GCC unroll 4
  for (int r = 0; r < R; ++r)
    #pragma GCC unroll 4
    for (int t = 0; t < T; ++t) {
      // The offsets times the activations' group sums.
      const float* wo = w.offset + (r0 + r) * w.n_groups;
      const float* as = a.sum + (t0 + t) * a.n_groups;
      __m512 off = _mm512_setzero_ps();
      for (int64_t g = 0; g < w.n_groups; g += 16) {
        const __mmask16 m = w.n_groups - g >= 16 ? 0xffff : static_cast<__mmask16>((1u << (w.n_groups - g)) - 1);
        off = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(m, wo + g), _mm512_maskz_loadu_ps(m, as + g), off);
      }
      y[(t0 + t) * ldy + r0 + r] = _mm512_reduce_add_ps(acc[r][t]) - _mm512_reduce_add_ps(off);
    }
}

void gemm_codes(const CodeRows& w, int64_t n_rows, const CodeActivations& a, int64_t n_tokens, float* y,
                int64_t ldy) {
  using Tile = void (*)(const CodeRows&, const CodeActivations&, int64_t, int64_t, float*, int64_t);
  static constexpr Tile kTiles[4][4] = {
      {codes_tile<1, 1>, codes_tile<1, 2>, codes_tile<1, 3>, codes_tile<1, 4>},
      {codes_tile<2, 1>, codes_tile<2, 2>, codes_tile<2, 3>, codes_tile<2, 4>},
      {codes_tile<3, 1>, codes_tile<3, 2>, codes_tile<3, 3>, codes_tile<3, 4>},
      {codes_tile<4, 1>, codes_tile<4, 2>, codes_tile<4, 3>, codes_tile<4, 4>},
  };
  for (int64_t t = 0; t < n_tokens; t += 4) {
    const int64_t nt = n_tokens - t < 4 ? n_tokens - t : 4;
    for (int64_t r = 0; r < n_rows; r += 4) {
      const int64_t nr = n_rows - r < 4 ? n_rows - r : 4;
      kTiles[nr - 1][nt - 1](w, a, r, t, y, ldy);
    }
  }
}

constexpr MatmulKernels with_codes(MatmulKernels k) {
  k.decodes_codes = decodes_codes;
  k.decode_codes = decode_codes;
  k.gemm_codes = gemm_codes;
  k.quant = vnni::make_quant_tiles();
  return k;
}

}  // namespace

constinit const MatmulKernels avx512_matmul_kernels = with_codes(simd::make_matmul_kernels<simd::Avx512>());

}  // namespace tokenmill::kernels
