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

// A row of n elements of `type` made of random bytes, with every float and half-float scale made
// finite (top exponent bit cleared): every code and scale pattern the format can hold.
inline std::vector<uint8_t> random_blocks(gguf::TensorType type, int64_t n, uint64_t seed) {
  using gguf::TensorType;
  std::vector<uint8_t> bytes(gguf::row_bytes(type, n));
  Rng rng(seed);
  for (auto& b : bytes) b = static_cast<uint8_t>(rng.next_u64());
  std::vector<int> halves;  // byte offsets of the scales in each block
  switch (type) {
    case TensorType::Q4_1: case TensorType::Q5_1: case TensorType::Q4_K: case TensorType::Q5_K:
      halves = {0, 2};
      break;
    case TensorType::F32: halves = {2}; break;  // the high half of each float
    case TensorType::Q2_K: halves = {80, 82}; break;
    case TensorType::Q3_K: halves = {108}; break;
    case TensorType::Q6_K: halves = {208}; break;
    default: halves = {0};
  }
  const auto block_bytes = gguf::tensor_type_info(type).block_bytes;
  for (size_t block = 0; block < bytes.size(); block += block_bytes)
    for (int at : halves) bytes[block + at + 1] &= 0xBF;
  return bytes;
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
