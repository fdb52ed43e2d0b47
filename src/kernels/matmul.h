// Products of a weight matrix with activation rows, y = x W^T: the transformer's linear layers
// and the output projection. Weights may be any type with a dot product (dot.h); the float
// activations are quantized once per call to the format the weights pair with, and each
// output is one dot product of a weight row with a quantized activation row.
#pragma once

#include <cstdint>

#include "gguf/tensor_type.h"

namespace tokenmill::kernels {

class ThreadPool;

struct WeightMatrix {
  const void* data = nullptr;
  gguf::TensorType type = gguf::TensorType::F32;
  int64_t rows = 0;  // output features
  int64_t cols = 0;  // input features: a multiple of the type's block size
};

// For each of the m activation rows x[t * w.cols ..], y[t * w.rows + r] = the dot product of
// weight row r with it, using the active ISA's dot table and every thread of the pool. The
// results do not depend on the number of threads. Throws tokenmill::Error for a weight type
// with no dot product or columns that are not whole blocks.
void matmul(const WeightMatrix& w, const float* x, int64_t m, float* y, ThreadPool& pool);

}  // namespace tokenmill::kernels
