// The per-ISA inner loops of matmul (matmul.cpp drives them): scalar in matmul.cpp, the vector
// ones in matmul_avx2.cpp and matmul_avx512.cpp from the templates in matmul_simd.h. Internal
// to kernels/.
#pragma once

#include <cstdint>

#include "gguf/tensor_type.h"
#include "kernels/cpu_features.h"

namespace tokenmill::kernels {

// Products of quantized weight rows with activation rows in the format their dot product takes
// (dot.h): y[t * ldy + r] = dot(w + r * w_stride, a + t * a_stride, n) for r < n_rows,
// t < n_tokens.
using QuantTileFn = void (*)(const uint8_t* w, uint64_t w_stride, int64_t n_rows, const uint8_t* a,
                             uint64_t a_stride, int64_t n_tokens, int64_t n, float* y, int64_t ldy);

// The formats with their own tile kernels; the others (and a null entry) take the dot table
// one product at a time.
struct QuantTiles {
  QuantTileFn q8_0 = nullptr, q4_k = nullptr, q5_k = nullptr, q6_k = nullptr;

  QuantTileFn find(gguf::TensorType weight) const;
};

struct MatmulKernels {
  // A tile of dot products of f32 rows: y[t * ldy + r] = sum_c w[r * ldw + c] * x[t * ldx + c]
  // for r < n_rows, t < n_tokens, c < n.
  void (*gemm_f32)(const float* w, int64_t ldw, int64_t n_rows, const float* x, int64_t ldx,
                   int64_t n_tokens, int64_t n, float* y, int64_t ldy);
  // n IEEE halves to floats.
  void (*f16_to_f32)(const uint16_t* src, float* dst, int64_t n);
  QuantTiles quant;
};

extern const MatmulKernels scalar_matmul_kernels;
extern const MatmulKernels avx2_matmul_kernels;
extern const MatmulKernels avx512_matmul_kernels;

}  // namespace tokenmill::kernels
