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

// Q8_0 only: the other formats take their tiles (matmul_vnni.h) for prompts too. The K-quants'
// scale once per 256 elements there and run as fast as this path. Q4_0, Q5_0 and IQ4_NL would
// run about 35% faster here (GEMM, one matmul), but with them decoded here the llama small Q4_0
// prefill drifted 1% from the reference forward pass while every single matmul matched its
// reference: not understood yet, so they stay on their tiles.
bool decodes_codes(TensorType type) { return type == TensorType::Q8_0; }

// One chunk's codes from natural order to the interleaved one (CodeRows): output vector s takes
// the 32-bit word 4g + s of the input for each group g.
void interleave(const uint8_t* natural, uint8_t* out) {
  const __m512i words = _mm512_setr_epi32(0, 4, 8, 12, 16, 20, 24, 28, 32, 36, 40, 44, 48, 52, 56, 60);
  for (int s = 0; s < 4; ++s)
    _mm512_storeu_si512(out + 64 * s,
                        _mm512_i32gather_epi32(_mm512_add_epi32(words, _mm512_set1_epi32(s)), natural, 4));
}

void decode_codes(TensorType type, const void* row, int64_t n, uint8_t* codes, float* scale, float* offset) {
  if (type != TensorType::Q8_0) return;  // decodes_codes()
  alignas(64) uint8_t natural[kCodeChunk];
  for (int64_t c = 0; c < n; c += kCodeChunk, codes += kCodeChunk, scale += 16, offset += 16) {
    const int64_t count = n - c < kCodeChunk ? n - c : kCodeChunk;
    decode_q8_0(static_cast<const BlockQ8_0*>(row) + c / kBlockSize, count, natural, scale, offset);
    // A last, partial chunk is padded with groups that contribute nothing.
    for (int64_t e = count; e < kCodeChunk; ++e) natural[e] = 0;
    for (int64_t g = count / 16; g < 16; ++g) scale[g] = offset[g] = 0.0f;
    interleave(natural, codes);
  }
}

// R weight rows times T tokens, a chunk at a time: VPDPBUSD sums each group's code products in
// its own 32-bit lane over the chunk's four vectors, then each lane is scaled once by its
// group's (weight scale x activation scale). Each weight vector loaded serves T tokens, each
// activation vector R rows.
template <int R, int T>
void codes_tile(const CodeRows& w, const CodeActivations& a, int64_t r0, int64_t t0, float* y, int64_t ldy) {
  __m512 acc[R][T];
  vnni::zero_sums(acc);
  const uint8_t* wc = w.codes + r0 * w.n_pad;
  const float* ws = w.scale + r0 * w.n_groups;
  const float* wo = w.offset + r0 * w.n_groups;
  const int8_t* ac = a.codes + t0 * a.n_pad;
  const float* ad = a.d + t0 * a.n_groups;
  const float* as = a.sum + t0 * a.n_groups;
  for (int64_t k = 0, g = 0; k < w.n_pad; k += kCodeChunk, g += 16) {
    __m512i sums[R][T];
#pragma GCC unroll 4
    for (int r = 0; r < R; ++r)
#pragma GCC unroll 4
      for (int t = 0; t < T; ++t) sums[r][t] = _mm512_setzero_si512();
#pragma GCC unroll 4
    for (int s = 0; s < 4; ++s) {
      __m512i wv[R];
#pragma GCC unroll 4
      for (int r = 0; r < R; ++r) wv[r] = _mm512_loadu_si512(wc + r * w.n_pad + k + 64 * s);
#pragma GCC unroll 4
      for (int t = 0; t < T; ++t) {
        const __m512i av = _mm512_loadu_si512(ac + t * a.n_pad + k + 64 * s);
#pragma GCC unroll 4
        for (int r = 0; r < R; ++r) sums[r][t] = _mm512_dpbusd_epi32(sums[r][t], wv[r], av);
      }
    }
    // Lane g of the accumulator collects group g: its scaled code sum, less the weight offset
    // times the activations' group sum.
#pragma GCC unroll 4
    for (int r = 0; r < R; ++r) {
      const __m512 sv = _mm512_loadu_ps(ws + r * w.n_groups + g);
      const __m512 ov = _mm512_loadu_ps(wo + r * w.n_groups + g);
#pragma GCC unroll 4
      for (int t = 0; t < T; ++t) {
        const __m512 scale = _mm512_mul_ps(sv, _mm512_loadu_ps(ad + t * a.n_groups + g));
        acc[r][t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(sums[r][t]), scale, acc[r][t]);
        acc[r][t] = _mm512_fnmadd_ps(ov, _mm512_loadu_ps(as + t * a.n_groups + g), acc[r][t]);
      }
    }
  }
#pragma GCC unroll 4
  for (int r = 0; r < R; ++r)
#pragma GCC unroll 4
    for (int t = 0; t < T; ++t) y[(t0 + t) * ldy + r0 + r] = _mm512_reduce_add_ps(acc[r][t]);
}

void gemm_codes(const CodeRows& w, int64_t n_rows, const CodeActivations& a, int64_t n_tokens, float* y,
                int64_t ldy) {
  // 4 x 3 tiles: 12 integer and 12 float accumulators, 4 weight vectors and one activation
  // vector stay in the 32 registers.
  using Tile = void (*)(const CodeRows&, const CodeActivations&, int64_t, int64_t, float*, int64_t);
  static constexpr Tile kTiles[4][3] = {
      {codes_tile<1, 1>, codes_tile<1, 2>, codes_tile<1, 3>},
      {codes_tile<2, 1>, codes_tile<2, 2>, codes_tile<2, 3>},
      {codes_tile<3, 1>, codes_tile<3, 2>, codes_tile<3, 3>},
      {codes_tile<4, 1>, codes_tile<4, 2>, codes_tile<4, 3>},
  };
  for (int64_t t = 0; t < n_tokens; t += 3) {
    const int64_t nt = n_tokens - t < 3 ? n_tokens - t : 3;
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
