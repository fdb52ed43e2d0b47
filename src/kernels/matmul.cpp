#include "kernels/matmul.h"

#include <algorithm>
#include <string>
#include <vector>

#include "common/error.h"
#include "kernels/dot.h"
#include "kernels/formats.h"
#include "kernels/thread_pool.h"

namespace tokenmill::kernels {
namespace {

// Rows of weights a thread works through together: small enough to stay in L2 while every
// tile of activations passes over them.
constexpr int64_t kRowBlock = 16;
// Bytes of quantized activations per tile: they stay in L2 while the row block passes.
constexpr int64_t kTileBytes = 256 * 1024;

}  // namespace

void matmul(const WeightMatrix& w, const float* x, int64_t m, float* y, ThreadPool& pool) {
  const DotFn dot = dots().find(w.type);  // throws for types without a dot product
  const auto& info = gguf::tensor_type_info(w.type);
  if (w.cols <= 0 || w.cols % info.block_elements != 0 || w.rows < 0 || m < 0)
    throw Error("matmul: " + std::to_string(w.rows) + " x " + std::to_string(w.cols) + " " +
                std::string(info.name) + " weights times " + std::to_string(m) +
                " rows: the columns must be a positive multiple of " + std::to_string(info.block_elements));
  if (w.rows == 0 || m == 0) return;

  // Activations in the weights' paired format; float weights take the floats as they are.
  const gguf::TensorType activation_type = dot_activation_type(w.type);
  const uint64_t activation_bytes = gguf::row_bytes(activation_type, w.cols);
  const uint8_t* activations = reinterpret_cast<const uint8_t*>(x);
  if (activation_type != gguf::TensorType::F32) {
    // Kept between calls (one buffer per calling thread) so a forward pass allocates once.
    thread_local std::vector<uint8_t> buffer;
    buffer.resize(activation_bytes * m);
    uint8_t* quantized = buffer.data();  // the workers must see this thread's buffer
    pool.parallel_for(m, 1, [&](int64_t begin, int64_t end) {
      for (int64_t t = begin; t < end; ++t)
        quantize_row(activation_type, x + t * w.cols, quantized + t * activation_bytes, w.cols);
    });
    activations = quantized;
  }

  const uint64_t weight_bytes = gguf::row_bytes(w.type, w.cols);
  const auto* weights = static_cast<const uint8_t*>(w.data);
  const int64_t tile = std::max<int64_t>(1, kTileBytes / static_cast<int64_t>(activation_bytes));
  pool.parallel_for(w.rows, kRowBlock, [&](int64_t begin, int64_t end) {
    for (int64_t r0 = begin; r0 < end; r0 += kRowBlock) {
      const int64_t r1 = std::min(end, r0 + kRowBlock);
      for (int64_t t0 = 0; t0 < m; t0 += tile) {
        const int64_t t1 = std::min(m, t0 + tile);
        for (int64_t r = r0; r < r1; ++r)
          for (int64_t t = t0; t < t1; ++t)
            y[t * w.rows + r] = dot(weights + r * weight_bytes, activations + t * activation_bytes, w.cols);
      }
    }
  });
}

}  // namespace tokenmill::kernels
