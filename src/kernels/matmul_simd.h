// The vector inner loops of matmul, written once over a vector type V (simd_avx2.h,
// simd_avx512.h) and instantiated by matmul_avx2.cpp and matmul_avx512.cpp. Like ops_simd.h,
// everything here is a template over V, so no code compiled with wider ISA flags can be picked
// by the linker for a narrower path.
#pragma once

#include <cstdint>

#include "kernels/matmul_kernels.h"

namespace tokenmill::kernels::simd {

// R weight rows times T tokens, accumulated in R*T vectors: each weight vector loaded is used T
// times and each activation vector R times, so the loop runs on FMA throughput, not loads.
template <class V, int R, int T>
void gemm_tile(const float* w, int64_t ldw, const float* x, int64_t ldx, int64_t n, float* y,
               int64_t ldy) {
  typename V::F acc[R][T];
  #pragma GCC unroll 4
  for (int r = 0; r < R; ++r)
    #pragma GCC unroll 4
    for (int t = 0; t < T; ++t) acc[r][t] = V::zero();
  int64_t c = 0;
  for (; c + V::kLanes <= n; c += V::kLanes) {
    typename V::F xv[T];
    #pragma GCC unroll 4
    for (int t = 0; t < T; ++t) xv[t] = V::load(x + t * ldx + c);
    #pragma GCC unroll 4
    for (int r = 0; r < R; ++r) {
      const typename V::F wv = V::load(w + r * ldw + c);
      #pragma GCC unroll 4
      for (int t = 0; t < T; ++t) acc[r][t] = V::fmadd(wv, xv[t], acc[r][t]);
    }
  }
  if (c < n) {  // masked tail: lanes past n load as zero
    typename V::F xv[T];
    #pragma GCC unroll 4
    for (int t = 0; t < T; ++t) xv[t] = V::load_tail(x + t * ldx + c, n - c);
    #pragma GCC unroll 4
    for (int r = 0; r < R; ++r) {
      const typename V::F wv = V::load_tail(w + r * ldw + c, n - c);
      #pragma GCC unroll 4
      for (int t = 0; t < T; ++t) acc[r][t] = V::fmadd(wv, xv[t], acc[r][t]);
    }
  }
  #pragma GCC unroll 4
  for (int r = 0; r < R; ++r)
    #pragma GCC unroll 4
    for (int t = 0; t < T; ++t) y[t * ldy + r] = V::reduce_add(acc[r][t]);
}

// Whole 4x4 tiles, then the edges with smaller tiles.
template <class V>
void gemm_f32(const float* w, int64_t ldw, int64_t n_rows, const float* x, int64_t ldx,
              int64_t n_tokens, int64_t n, float* y, int64_t ldy) {
  using Tile = void (*)(const float*, int64_t, const float*, int64_t, int64_t, float*, int64_t);
  static constexpr Tile kTiles[4][4] = {
      {gemm_tile<V, 1, 1>, gemm_tile<V, 1, 2>, gemm_tile<V, 1, 3>, gemm_tile<V, 1, 4>},
      {gemm_tile<V, 2, 1>, gemm_tile<V, 2, 2>, gemm_tile<V, 2, 3>, gemm_tile<V, 2, 4>},
      {gemm_tile<V, 3, 1>, gemm_tile<V, 3, 2>, gemm_tile<V, 3, 3>, gemm_tile<V, 3, 4>},
      {gemm_tile<V, 4, 1>, gemm_tile<V, 4, 2>, gemm_tile<V, 4, 3>, gemm_tile<V, 4, 4>},
  };
  for (int64_t t = 0; t < n_tokens; t += 4) {
    const int64_t nt = n_tokens - t < 4 ? n_tokens - t : 4;
    for (int64_t r = 0; r < n_rows; r += 4) {
      const int64_t nr = n_rows - r < 4 ? n_rows - r : 4;
      kTiles[nr - 1][nt - 1](w + r * ldw, ldw, x + t * ldx, ldx, n, y + t * ldy + r, ldy);
    }
  }
}

template <class V>
void f16_to_f32(const uint16_t* src, float* dst, int64_t n) {
  int64_t i = 0;
  for (; i + V::kLanes <= n; i += V::kLanes) V::store(dst + i, V::load_f16(src + i));
  if (i < n) V::store_tail(dst + i, V::load_f16_tail(src + i, n - i), n - i);
}

// A bfloat16 is the top half of a float; the compiler vectorises this loop for the ISA.
template <class V>
void bf16_to_f32(const uint16_t* src, float* dst, int64_t n) {
  for (int64_t i = 0; i < n; ++i) dst[i] = __builtin_bit_cast(float, static_cast<uint32_t>(src[i]) << 16);
}

// The float kernels; the 8-bit product is added by the paths that have it.
template <class V>
constexpr MatmulKernels make_matmul_kernels() {
  return MatmulKernels{gemm_f32<V>, f16_to_f32<V>, bf16_to_f32<V>, nullptr, nullptr, nullptr, {}};
}

}  // namespace tokenmill::kernels::simd
