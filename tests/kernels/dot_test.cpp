// Dot products: the scalar reference against the dequantized rows, and every vector table this
// CPU can run against the scalar reference, over all weight formats, many row lengths and
// weights both quantized from data and made of random bytes (every code pattern).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <string>

#include "common/error.h"
#include "format_test_util.h"
#include "kernels/dot.h"

namespace tokenmill::kernels {
namespace {

using gguf::TensorType;

const TensorType kWeightTypes[] = {TensorType::F32,  TensorType::F16, TensorType::BF16, TensorType::Q4_0, TensorType::Q4_1, TensorType::Q5_0, TensorType::Q5_1,
                                   TensorType::Q8_0, TensorType::IQ4_NL, TensorType::Q2_K, TensorType::Q3_K,
                                   TensorType::Q4_K, TensorType::Q5_K, TensorType::Q6_K, TensorType::IQ4_XS};

// A weight row: quantized from heavy-tailed data, or random bytes (every code pattern).
std::vector<uint8_t> weight_row(TensorType type, int64_t n, uint64_t seed, bool random_bytes) {
  return random_bytes ? testing::random_blocks(type, n, seed) : testing::quantize(type, testing::heavy_tailed(n, seed));
}

struct Case {
  std::vector<uint8_t> weights, activations;
  double exact;      // the dot of the dequantized rows, in double
  double magnitude;  // sum of |w_i a_i|: the scale of float rounding
};

Case make_case(TensorType type, int64_t n, uint64_t seed, bool random_bytes) {
  Case c;
  c.weights = weight_row(type, n, seed, random_bytes);
  c.activations = testing::quantize(dot_activation_type(type), testing::gaussian(n, seed + 1000));
  const auto w = testing::dequantize(type, c.weights, n);
  const auto a = testing::dequantize(dot_activation_type(type), c.activations, n);
  c.exact = c.magnitude = 0;
  for (int64_t i = 0; i < n; ++i) {
    c.exact += double(w[i]) * a[i];
    c.magnitude += std::fabs(double(w[i]) * a[i]);
  }
  return c;
}

std::vector<int64_t> row_lengths(TensorType type) {
  const auto block = gguf::tensor_type_info(type).block_elements;
  if (block == 1) return {1, 7, 8, 33, 100, 1000, 4099};
  if (block == 256) return {256, 512, 768, 2048, 4096, 11008};
  return {32, 64, 96, 256, 1024, 4096, 4128};
}

// Float rounding allowed between two ways of summing: each float addition (one per block, or
// one per element for float rows) may be off by half an ulp of the running sum.
double tolerance(TensorType type, int64_t n, double magnitude) {
  const double additions = double(n) / gguf::tensor_type_info(type).block_elements;
  return std::max(1e-5, 1.2e-7 * additions) * magnitude + 1e-30;
}

TEST(Dot, ScalarReferenceIsTheDotOfTheDecodedRows) {
  const DotTable& scalar = dot_table(Isa::scalar);
  for (TensorType type : kWeightTypes) {
    for (int64_t n : row_lengths(type)) {
      for (bool random_bytes : {false, true}) {
        const Case c = make_case(type, n, 10 + n, random_bytes);
        const float got = scalar.find(type)(c.weights.data(), c.activations.data(), n);
        EXPECT_NEAR(got, c.exact, tolerance(type, n, c.magnitude))
            << gguf::tensor_type_name(type) << " n=" << n << (random_bytes ? " random bytes" : "");
      }
    }
  }
}

TEST(Dot, VectorTablesMatchTheScalarReference) {
  const DotTable& scalar = dot_table(Isa::scalar);
  if (supported_isas().size() == 1) GTEST_SKIP() << "this CPU has neither the AVX2 nor the AVX-512 path";
  for (Isa isa : supported_isas()) {
    if (isa == Isa::scalar) continue;
    for (TensorType type : kWeightTypes) {
      for (int64_t n : row_lengths(type)) {
        for (bool random_bytes : {false, true}) {
          for (uint64_t seed : {1, 2, 3}) {
            const Case c = make_case(type, n, seed * 100 + n, random_bytes);
            const float want = scalar.find(type)(c.weights.data(), c.activations.data(), n);
            const float got = dot_table(isa).find(type)(c.weights.data(), c.activations.data(), n);
            ASSERT_NEAR(got, want, tolerance(type, n, c.magnitude))
                << isa_name(isa) << " " << gguf::tensor_type_name(type) << " n=" << n
                << (random_bytes ? " random bytes" : "") << " seed " << seed;
          }
        }
      }
    }
  }
}

// Quantized rows keep the dot of the original floats to within the formats' error.
TEST(Dot, ApproximatesTheFloatDot) {
  const DotTable& scalar = dot_table(Isa::scalar);
  const int64_t n = 4096;
  const auto x = testing::gaussian(n, 5), y = testing::gaussian(n, 6);
  double exact = 0;
  for (int64_t i = 0; i < n; ++i) exact += double(x[i]) * y[i];
  for (TensorType type : kWeightTypes) {
    const auto w = testing::quantize(type, x);
    const auto a = testing::quantize(dot_activation_type(type), y);
    const float got = scalar.find(type)(w.data(), a.data(), n);
    // Error of a sum of n products with independent relative errors: about sqrt(n) * rmse.
    EXPECT_NEAR(got, exact, 0.6 * std::sqrt(double(n)) * (type == TensorType::Q2_K ? 1.0 : 0.35))
        << gguf::tensor_type_name(type);
  }
}

TEST(Dot, ActivationTypesAndUnsupportedWeights) {
  EXPECT_EQ(dot_activation_type(TensorType::Q4_0), TensorType::Q8_0);
  EXPECT_EQ(dot_activation_type(TensorType::IQ4_NL), TensorType::Q8_0);
  EXPECT_EQ(dot_activation_type(TensorType::Q4_K), TensorType::Q8_K);
  EXPECT_EQ(dot_activation_type(TensorType::IQ4_XS), TensorType::Q8_K);
  EXPECT_EQ(dot_activation_type(TensorType::F16), TensorType::F32);
  for (TensorType t : {TensorType::Q8_K, TensorType::Q8_1, TensorType::IQ2_XXS, TensorType::I32,
                       static_cast<TensorType>(999)}) {
    EXPECT_THROW(dot_activation_type(t), Error);
    EXPECT_THROW(dots().find(t), Error);
  }
}

}  // namespace
}  // namespace tokenmill::kernels
