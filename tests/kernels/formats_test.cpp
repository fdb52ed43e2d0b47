// Quantizing: accuracy against llama.cpp's reference quantizers, the exact rounding rules of
// the activation formats, determinism, odd inputs and the errors for what is unsupported.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>

#include "common/error.h"
#include "format_test_util.h"
#include "kernels/half.h"

namespace tokenmill::kernels {
namespace {

using gguf::TensorType;
using testing::dequantize;
using testing::quantize;
using testing::rmse;

const TensorType kAllTypes[] = {TensorType::F32,  TensorType::F16,  TensorType::BF16,  TensorType::Q4_0,
                                TensorType::Q4_1, TensorType::Q5_0, TensorType::Q5_1,  TensorType::Q8_0,
                                TensorType::Q8_1, TensorType::Q2_K, TensorType::Q3_K,  TensorType::Q4_K,
                                TensorType::Q5_K, TensorType::Q6_K, TensorType::Q8_K,  TensorType::IQ4_NL,
                                TensorType::IQ4_XS};

// RMSE of llama.cpp's quantizers (as llama-quantize calls them, without importance matrix;
// the reference row quantizer for Q8_K) on the data sets below: 256 rows
// of 4096, gaussian from seed 1234 and heavy-tailed from seed 1235. Ours must stay within 10%.
struct Reference {
  TensorType type;
  double gaussian, heavy;
};
const Reference kReference[] = {
    {TensorType::Q4_0, 0.085749, 0.358306}, {TensorType::Q4_1, 0.078182, 0.303234},
    {TensorType::Q5_0, 0.042631, 0.196851}, {TensorType::Q5_1, 0.037824, 0.145528},
    {TensorType::Q8_0, 0.005341, 0.026622}, {TensorType::Q2_K, 0.296438, 1.008002},
    {TensorType::Q3_K, 0.150738, 0.483986}, {TensorType::Q4_K, 0.071299, 0.270975},
    {TensorType::Q5_K, 0.036106, 0.140707}, {TensorType::Q6_K, 0.017695, 0.077889},
    {TensorType::Q8_K, 0.006943, 0.055154}, {TensorType::IQ4_NL, 0.076097, 0.288681},
    {TensorType::IQ4_XS, 0.076680, 0.292353},
};

TEST(Quantize, ErrorWithinTenPercentOfTheReferenceQuantizers) {
  const auto gaussian = testing::gaussian(256 * 4096, 1234);
  const auto heavy = testing::heavy_tailed(256 * 4096, 1235);
  for (const auto& ref : kReference) {
    const auto name = gguf::tensor_type_name(ref.type);
    const int64_t n = static_cast<int64_t>(gaussian.size());
    EXPECT_LE(rmse(gaussian, dequantize(ref.type, quantize(ref.type, gaussian), n)), 1.10 * ref.gaussian) << name;
    EXPECT_LE(rmse(heavy, dequantize(ref.type, quantize(ref.type, heavy), n)), 1.10 * ref.heavy) << name;
  }
}

// Short rows (a block or two) and long ones, against the same bounds with room for the
// sampling noise of a few hundred values.
TEST(Quantize, RoundTripErrorOnRowsOfManySizes) {
  for (const auto& ref : kReference) {
    const auto block = gguf::tensor_type_info(ref.type).block_elements;
    for (int64_t blocks : {1, 2, 3, 7, 43}) {
      const auto x = testing::gaussian(blocks * block, 77 + blocks);
      const double err = rmse(x, dequantize(ref.type, quantize(ref.type, x), blocks * block));
      EXPECT_LE(err, (blocks < 7 ? 1.5 : 1.25) * ref.gaussian) << gguf::tensor_type_name(ref.type) << " x" << blocks;
    }
  }
  // The float formats: exact or within their rounding.
  const auto x = testing::gaussian(1000, 5);
  EXPECT_EQ(rmse(x, dequantize(TensorType::F32, quantize(TensorType::F32, x), 1000)), 0.0);
  for (TensorType t : {TensorType::F16, TensorType::BF16}) {
    const auto y = dequantize(t, quantize(t, x), 1000);
    const float unit = t == TensorType::F16 ? std::ldexp(1.0f, -11) : std::ldexp(1.0f, -8);
    for (int i = 0; i < 1000; ++i) ASSERT_LE(std::fabs(y[i] - x[i]), std::fabs(x[i]) * unit) << i;
  }
}

TEST(Quantize, IsDeterministicAndBlockByBlock) {
  const auto x = testing::heavy_tailed(4096, 9);
  for (TensorType t : kAllTypes) {
    const auto once = quantize(t, x);
    EXPECT_EQ(quantize(t, x), once) << gguf::tensor_type_name(t);
    // Each block depends only on its own values: quantizing the halves separately gives the
    // same bytes.
    std::vector<uint8_t> halves(once.size());
    quantize_row(t, x.data(), halves.data(), 2048);
    quantize_row(t, x.data() + 2048, halves.data() + once.size() / 2, 2048);
    EXPECT_EQ(halves, once) << gguf::tensor_type_name(t);
  }
}

// Digests of llama.cpp's reference activation quantizers (the "_ref" row quantizers) on 4096 values 3 * N(0, 1) from seed 77: the dot products rely on these bytes.
TEST(Quantize, ActivationFormatsMatchTheReferenceBytes) {
  Rng rng(77);
  std::vector<float> x(4096);
  for (auto& v : x) v = rng.normal() * 3;
  const std::pair<TensorType, uint64_t> cases[] = {{TensorType::Q8_0, 0xafa2346b9c05bc6full},
                                                   {TensorType::Q8_1, 0x733928fd87155839ull},
                                                   {TensorType::Q8_K, 0xe067ce7d25764d75ull}};
  for (const auto& [type, digest] : cases) {
    const auto q = quantize(type, x);
    EXPECT_EQ(testing::fnv1a(q.data(), q.size()), digest) << gguf::tensor_type_name(type);
  }
}

// Q8_0: d = max|x| / 127 and q = round(x / d) with ties away from zero. With max|x| = 127 the
// step is 1 and the ties are visible directly.
TEST(Quantize, Q8_0RoundsTiesAwayFromZero) {
  std::vector<float> x(32, 0.0f);
  x[0] = 127;
  x[1] = 2.5f;
  x[2] = -2.5f;
  x[3] = 3.5f;
  x[4] = 0.49999997f;
  const auto q = quantize(TensorType::Q8_0, x);
  EXPECT_EQ(q[0] | q[1] << 8, 0x3C00);  // d = 1.0
  const auto* v = reinterpret_cast<const int8_t*>(q.data() + 2);
  EXPECT_EQ(v[0], 127);
  EXPECT_EQ(v[1], 3);
  EXPECT_EQ(v[2], -3);
  EXPECT_EQ(v[3], 4);
  EXPECT_EQ(v[4], 0);

  // Q8_1 also stores d * sum(q) as a half: 127 + 3 - 3 + 4 = 131.
  const auto q1 = quantize(TensorType::Q8_1, x);
  EXPECT_EQ(f16_to_f32(static_cast<uint16_t>(q1[2] | q1[3] << 8)), 131.0f);
}

// Q8_K: d = -extreme / 127 with extreme the value of largest magnitude, sign included, and
// q = round(x / d) with ties to even; bsums holds the sums of each 16 codes.
TEST(Quantize, Q8_KRoundsTiesToEvenAndSumsGroups) {
  std::vector<float> x(256, 0.0f);
  x[10] = -127;  // the extreme: d = 1
  x[0] = 2.5f;
  x[1] = 3.5f;
  x[2] = -2.5f;
  x[17] = 5;
  const auto q = quantize(TensorType::Q8_K, x);
  float d;
  std::memcpy(&d, q.data(), 4);
  EXPECT_EQ(d, 1.0f);
  const auto* v = reinterpret_cast<const int8_t*>(q.data() + 4);
  EXPECT_EQ(v[0], 2);
  EXPECT_EQ(v[1], 4);
  EXPECT_EQ(v[2], -2);
  EXPECT_EQ(v[10], -127);
  int16_t bsums[16];
  std::memcpy(bsums, q.data() + 260, sizeof(bsums));
  EXPECT_EQ(bsums[0], 2 + 4 - 2 - 127);
  EXPECT_EQ(bsums[1], 5);
  for (int g = 2; g < 16; ++g) EXPECT_EQ(bsums[g], 0);

  // With a positive extreme the scale is negative and the codes flip sign.
  x[10] = 127;
  const auto flipped = quantize(TensorType::Q8_K, x);
  std::memcpy(&d, flipped.data(), 4);
  EXPECT_EQ(d, -1.0f);
  EXPECT_EQ(reinterpret_cast<const int8_t*>(flipped.data() + 4)[10], -127);
}

TEST(Quantize, ZerosConstantsAndExtremeMagnitudes) {
  for (TensorType t : kAllTypes) {
    const auto name = gguf::tensor_type_name(t);
    const int64_t n = 512;
    const std::vector<float> zeros(n, 0.0f);
    EXPECT_EQ(dequantize(t, quantize(t, zeros), n), zeros) << name;

    // A constant row: every format reproduces it to within its step.
    const std::vector<float> constant(n, -0.75f);
    for (float v : dequantize(t, quantize(t, constant), n)) ASSERT_NEAR(v, -0.75f, 0.75f * 0.07f) << name;

    // Tiny and huge rows keep their relative accuracy while the scales stay representable.
    for (float magnitude : {1e-3f, 1e3f}) {
      auto x = testing::gaussian(n, 3);
      for (auto& v : x) v *= magnitude;
      const double err = rmse(x, dequantize(t, quantize(t, x), n));
      EXPECT_LE(err, 0.35 * magnitude) << name << " at " << magnitude;
    }
  }
}

TEST(Quantize, NonFiniteInputStaysInBounds) {
  // Not meaningful output, but no out-of-range conversions (UBSan) and no crash.
  auto x = testing::gaussian(512, 4);
  x[3] = std::numeric_limits<float>::quiet_NaN();
  x[300] = std::numeric_limits<float>::infinity();
  for (TensorType t : kAllTypes) {
    const auto q = quantize(t, x);
    EXPECT_EQ(q.size(), gguf::row_bytes(t, 512));
  }
}

TEST(Formats, UnsupportedTypesAndBadLengthsAreErrors) {
  std::vector<float> x(256, 1.0f);
  std::vector<uint8_t> bytes(4096);
  for (TensorType t : {TensorType::IQ2_XXS, TensorType::IQ1_S, TensorType::I32, TensorType::TQ2_0,
                       TensorType::MXFP4, static_cast<TensorType>(1000)}) {
    EXPECT_FALSE(can_quantize(t));
    EXPECT_FALSE(can_dequantize(t));
    EXPECT_THROW(quantize_row(t, x.data(), bytes.data(), 256), Error);
    EXPECT_THROW(dequantize_row(t, bytes.data(), x.data(), 256), Error);
  }
  for (TensorType t : kAllTypes) {
    EXPECT_TRUE(can_quantize(t));
    EXPECT_TRUE(can_dequantize(t));
  }
  EXPECT_THROW(quantize_row(TensorType::Q4_K, x.data(), bytes.data(), 128), Error);
  EXPECT_THROW(dequantize_row(TensorType::Q8_0, bytes.data(), x.data(), 33), Error);
  EXPECT_THROW(quantize_row(TensorType::Q8_0, x.data(), bytes.data(), -32), Error);
  try {
    quantize_row(TensorType::IQ2_XXS, x.data(), bytes.data(), 256);
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("IQ2_XXS"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace tokenmill::kernels
