// Matrix multiplication of a weight tensor, stored in its file format, by activation rows:
//   y[t][r] = sum_c W[r][c] * x[t][c]    for every token t and weight row r.
// One token is a matrix-vector product (decode, where reading the weights is the whole cost);
// many tokens (prefill, batched decode) reuse each weight block across a tile of tokens. The
// driver spreads weight rows over the thread pool and converts the activations once per call
// to the format the weight type's dot product takes (its companion type).
#pragma once

#include <cstdint>
#include <span>

#include "gguf/tensor_type.h"
#include "kernels/cpu_features.h"

namespace tokenmill::kernels {

class ThreadPool;

// A 2-D weight tensor as stored in a GGUF file: n_rows rows of n_cols elements, row r holding
// the weights of output r (the file's ne[0] is n_cols).
struct WeightMatrix {
  gguf::TensorType type = gguf::TensorType::F32;
  const void* data = nullptr;
  int64_t n_rows = 0;
  int64_t n_cols = 0;

  uint64_t row_bytes() const { return gguf::row_bytes(type, static_cast<uint64_t>(n_cols)); }
  const uint8_t* row(int64_t r) const { return static_cast<const uint8_t*>(data) + r * row_bytes(); }
};

// One product of a batch: x is [n_tokens][w.n_cols], y is [n_tokens][w.n_rows].
struct MatmulJob {
  WeightMatrix w;
  const float* x = nullptr;
  float* y = nullptr;
  int64_t n_tokens = 0;
};

// Weight types matmul can use.
bool matmul_supports(gguf::TensorType type);

// The type the activations are converted to for a weight type's dot product: F32 where the
// weights are multiplied in floating point, Q8_0 / Q8_K where integer dot products are used.
gguf::TensorType activation_type(gguf::TensorType weight_type, Isa isa);

// Runs every job of the batch in one parallel pass (the Q, K and V projections of a layer, or
// the experts of a mixture, cost one synchronisation instead of one each). Throws
// tokenmill::Error for unsupported types, shapes that are not whole blocks, or null buffers.
void matmul(ThreadPool& pool, std::span<const MatmulJob> jobs);
void matmul(ThreadPool& pool, std::span<const MatmulJob> jobs, Isa isa);
void matmul(ThreadPool& pool, const WeightMatrix& w, const float* x, float* y, int64_t n_tokens);

// The reference: every weight row dequantized to f32, the activations rounded through the same
// companion type as the `isa` path uses, and plain double-precision sums.
void matmul_reference(const WeightMatrix& w, const float* x, float* y, int64_t n_tokens, Isa isa);

}  // namespace tokenmill::kernels
