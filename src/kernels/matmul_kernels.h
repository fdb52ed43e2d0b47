// The per-ISA inner loops of matmul (matmul.cpp drives them): scalar in matmul.cpp, the vector
// ones in matmul_avx2.cpp and matmul_avx512.cpp from the templates in matmul_simd.h. Internal
// to kernels/.
#pragma once

#include <cstdint>

#include "kernels/cpu_features.h"

namespace tokenmill::kernels {

struct MatmulKernels {
  // A tile of dot products of f32 rows: y[t * ldy + r] = sum_c w[r * ldw + c] * x[t * ldx + c]
  // for r < n_rows, t < n_tokens, c < n.
  void (*gemm_f32)(const float* w, int64_t ldw, int64_t n_rows, const float* x, int64_t ldx,
                   int64_t n_tokens, int64_t n, float* y, int64_t ldy);
  // n IEEE halves to floats.
  void (*f16_to_f32)(const uint16_t* src, float* dst, int64_t n);
};

extern const MatmulKernels scalar_matmul_kernels;
extern const MatmulKernels avx2_matmul_kernels;
extern const MatmulKernels avx512_matmul_kernels;

}  // namespace tokenmill::kernels
