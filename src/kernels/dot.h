// Dot products of a quantized weight row with an activation row quantized to the 8-bit format
// that pairs with it: the inner loop of every matrix-vector product. Weight formats with
// 32-element blocks pair with Q8_0 activations, the 256-element ones with Q8_K.
//
// Each ISA path has a DotTable. The scalar table is the reference (block_codes.h: the codes
// exactly as decoding reads them, integer sums per group, one float expression per block); the
// AVX2 and AVX-512 tables compute the same integer sums and differ only in the order of the
// float additions.
#pragma once

#include <cstdint>

#include "gguf/tensor_type.h"

namespace tokenmill::kernels {

// The format activations are quantized to for a dot with rows of `weight`. Throws
// tokenmill::Error for a type with no dot product.
gguf::TensorType dot_activation_type(gguf::TensorType weight);

// sum over i < n of w[i] * a[i]; n a multiple of the weight type's block size.
using DotFn = float (*)(const void* weight_row, const void* activation_row, int64_t n);

struct DotTable {
  DotFn q4_0, q4_1, q5_0, q5_1, q8_0, iq4_nl;  // against Q8_0
  DotFn q2_k, q3_k, q4_k, q5_k, q6_k, iq4_xs;  // against Q8_K

  // The entry for a weight type; throws tokenmill::Error for a type with no dot product.
  DotFn find(gguf::TensorType weight) const;
};

// The AVX2 table needs AVX2, FMA, F16C and BMI2; the AVX-512 one also AVX-512 F/BW/VL/DQ and
// VNNI. Callers check the CPU first (cpu_features.h).
extern const DotTable scalar_dot_table;
extern const DotTable avx2_dot_table;
extern const DotTable avx512_dot_table;

}  // namespace tokenmill::kernels
