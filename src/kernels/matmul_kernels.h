// The per-ISA inner loops of matmul (matmul.cpp drives them): scalar in matmul.cpp, the vector
// ones in matmul_avx2.cpp and matmul_avx512.cpp from the templates in matmul_simd.h. Internal
// to kernels/.
#pragma once

#include <cstdint>

#include "gguf/tensor_type.h"

namespace tokenmill::kernels {

// Rows are padded to whole chunks of this many elements for the 8-bit product.
constexpr int64_t kCodeChunk = 256;

// Weight rows decoded for the 8-bit product ("code rows"): each row holds n_pad unsigned codes
// (the row length rounded up to a whole chunk, padded with zero codes) and, per 16 elements, a
// scale and an offset:  w[e] = scale[e / 16] * code[e] - offset[e / 16].
//
// Within each 256-element chunk the codes are interleaved so that one 64-byte vector holds four
// consecutive elements of each of the chunk's 16 groups: element 16g + 4s + j of the chunk is
// stored at byte 64s + 4g + j. The four vectors of a chunk then put every element of group g in
// 32-bit lane g, so lane sums can run over the whole chunk before one scaling per lane.
struct CodeRows {
  const uint8_t* codes;
  const float* scale;
  const float* offset;
  int64_t n_pad;     // codes per row
  int64_t n_groups;  // scales (and offsets) per row: n_pad / 16
};

// Activation rows in the same shape and order: a[e] = d[e / 16] * code[e] with signed codes, and
// sum[g] = d[g] * (the sum of group g's codes), which the weights' offsets multiply.
struct CodeActivations {
  const int8_t* codes;
  const float* d;
  const float* sum;
  int64_t n_pad;
  int64_t n_groups;
};

// Byte position of chunk element e (< kCodeChunk) in the interleaved order.
constexpr int64_t interleaved(int64_t e) { return 64 * (e / 4 % 4) + 4 * (e / 16) + e % 4; }

// Products of quantized weight rows with activation rows in the format their dot product takes
// (dot.h): y[t * ldy + r] = dot(w + r * w_stride, a + t * a_stride, n) for r < n_rows,
// t < n_tokens.
using QuantTileFn = void (*)(const uint8_t* w, uint64_t w_stride, int64_t n_rows, const uint8_t* a,
                             uint64_t a_stride, int64_t n_tokens, int64_t n, float* y, int64_t ldy);

// The formats with their own tile kernels; the others (and a null entry) take the paths below.
struct QuantTiles {
  QuantTileFn q8_0 = nullptr, q4_0 = nullptr, q5_0 = nullptr, iq4_nl = nullptr, iq4_xs = nullptr;
  QuantTileFn q2_k = nullptr, q3_k = nullptr, q4_k = nullptr, q5_k = nullptr, q6_k = nullptr;

  QuantTileFn find(gguf::TensorType weight) const;
};

struct MatmulKernels {
  // A tile of dot products of f32 rows: y[t * ldy + r] = sum_c w[r * ldw + c] * x[t * ldx + c]
  // for r < n_rows, t < n_tokens, c < n.
  void (*gemm_f32)(const float* w, int64_t ldw, int64_t n_rows, const float* x, int64_t ldx,
                   int64_t n_tokens, int64_t n, float* y, int64_t ldy);
  // n IEEE halves, or bfloat16 values, to floats.
  void (*f16_to_f32)(const uint16_t* src, float* dst, int64_t n);
  void (*bf16_to_f32)(const uint16_t* src, float* dst, int64_t n);

  // The 8-bit product, on paths that have it (null elsewhere): whether rows of a type can be
  // decoded to code rows; decoding one row of n elements into the interleaved order (codes,
  // scale and offset sized as in CodeRows); and y[t * ldy + r] = sum_e w_r[e] * a_t[e] for r < n_rows, t < n_tokens.
  bool (*decodes_codes)(gguf::TensorType type);
  void (*decode_codes)(gguf::TensorType type, const void* row, int64_t n, uint8_t* codes, float* scale,
                       float* offset);
  void (*gemm_codes)(const CodeRows& w, int64_t n_rows, const CodeActivations& a, int64_t n_tokens, float* y,
                     int64_t ldy);
  QuantTiles quant;
};

extern const MatmulKernels scalar_matmul_kernels;
extern const MatmulKernels avx2_matmul_kernels;
extern const MatmulKernels avx512_matmul_kernels;

}  // namespace tokenmill::kernels
