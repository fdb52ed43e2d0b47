// Shared by the block-format tests: seeded data and error measures.
#pragma once

#include <cmath>
#include <cstdint>
#include <cstring>
#include <vector>

#include "common/random.h"
#include "gguf/tensor_type.h"
#include "kernels/formats.h"

namespace tokenmill::kernels::testing {

inline std::vector<float> gaussian(int64_t n, uint64_t seed) {
  Rng rng(seed);
  std::vector<float> x(n);
  for (auto& v : x) v = rng.normal();
  return x;
}

// Gaussian times a log-normal factor: a few values far larger than the rest, as in real
// weight matrices.
inline std::vector<float> heavy_tailed(int64_t n, uint64_t seed) {
  Rng rng(seed);
  std::vector<float> x(n);
  for (auto& v : x) {
    v = rng.normal();
    v *= std::exp(rng.normal());
  }
  return x;
}

inline double rmse(const std::vector<float>& a, const std::vector<float>& b) {
  double sum = 0;
  for (size_t i = 0; i < a.size(); ++i) sum += (double(a[i]) - b[i]) * (double(a[i]) - b[i]);
  return std::sqrt(sum / a.size());
}

inline std::vector<uint8_t> quantize(gguf::TensorType type, const std::vector<float>& x) {
  std::vector<uint8_t> q(gguf::row_bytes(type, x.size()));
  quantize_row(type, x.data(), q.data(), static_cast<int64_t>(x.size()));
  return q;
}

inline std::vector<float> dequantize(gguf::TensorType type, const std::vector<uint8_t>& q, int64_t n) {
  std::vector<float> x(n);
  dequantize_row(type, q.data(), x.data(), n);
  return x;
}

// FNV-1a over raw bytes: compact fingerprints of reference outputs.
inline uint64_t fnv1a(const void* data, size_t size) {
  const auto* p = static_cast<const uint8_t*>(data);
  uint64_t h = 14695981039346656037ull;
  for (size_t i = 0; i < size; ++i) {
    h ^= p[i];
    h *= 1099511628211ull;
  }
  return h;
}

}  // namespace tokenmill::kernels::testing
