// Dot products of a weight row with an activation row in the format that pairs with it: the
// inner loop of every matrix-vector product. Weight formats with 32-element blocks pair with
// Q8_0 activations, the 256-element ones with Q8_K, and F32, F16 and BF16 weights with F32.
//
// Each ISA path has a DotTable. The scalar table is the reference (block_codes.h: the codes
// exactly as decoding reads them, integer sums per group, one float expression per block); the
// AVX2 and AVX-512 tables compute the same integer sums and differ only in the order of the
// float additions.
#pragma once

#include <cstdint>

#include "gguf/tensor_type.h"
#include "kernels/cpu_features.h"

namespace tokenmill::kernels {

// The format activations are quantized to for a dot with rows of `weight`. Throws
// tokenmill::Error for a type with no dot product.
gguf::TensorType dot_activation_type(gguf::TensorType weight);

// sum over i < n of w[i] * a[i]; n a multiple of the weight type's block size. The activation
// row of a float format is plain floats.
using DotFn = float (*)(const void* weight_row, const void* activation_row, int64_t n);

struct DotTable {
  DotFn f32, f16, bf16;                        // against F32
  DotFn q4_0, q4_1, q5_0, q5_1, q8_0, iq4_nl;  // against Q8_0
  DotFn q2_k, q3_k, q4_k, q5_k, q6_k, iq4_xs;  // against Q8_K

  // The entry for a weight type; throws tokenmill::Error for a type with no dot product.
  DotFn find(gguf::TensorType weight) const;
};

// The table for one path; throws tokenmill::Error when this CPU lacks it.
const DotTable& dot_table(Isa isa);
// The table of active_isa().
const DotTable& dots();

}  // namespace tokenmill::kernels
