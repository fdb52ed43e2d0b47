// RoPE (rope_rotation + each path's rope op) against the formula written out here: plain,
// partial rotary, frequency factors, linear scaling and YaRN, in both pairings.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <numbers>
#include <vector>

#include "common/error.h"
#include "kernels/ops.h"
#include "kernels/test_util.h"

namespace tokenmill::kernels {
namespace {

using testing::all_near;
using testing::random_normal;

// The rotation angle of pair i at position pos, and the magnitude factor, from the YaRN paper:
// theta_i = pos * base^(-2i/d) / factor_i; with linear scaling the angle is multiplied by
// freq_scale; YaRN ramps from extrapolation (fast pairs, i < low) to interpolation
// (i > high), where low/high are the pairs that rotate beta_fast/beta_slow times in the
// original context, and scales magnitudes by 1 + 0.1 ln(1/freq_scale).
struct Angle {
  double theta;
  double magnitude;
};

Angle naive_angle(const RopeConfig& c, double pos, int i) {
  const double d = c.n_rot;
  double extrapolated = pos / std::pow(c.freq_base, 2.0 * i / d);
  if (c.freq_factors) extrapolated /= c.freq_factors[i];
  const double interpolated = extrapolated * c.freq_scale;
  if (c.ext_factor == 0.0f) return {interpolated, c.attn_factor};
  auto pair_rotating = [&](double rotations) {  // solve 2*pi*rotations*base^(2i/d) = n_ctx
    return d * std::log(c.n_ctx_orig / (2 * std::numbers::pi * rotations)) / (2 * std::log(c.freq_base));
  };
  const double low = std::max(0.0, std::floor(pair_rotating(c.beta_fast)));
  const double high = std::min(d - 1, std::ceil(pair_rotating(c.beta_slow)));
  double ramp = (i - low) / std::max(0.001, high - low);
  ramp = 1.0 - std::clamp(ramp, 0.0, 1.0);
  const double mix = ramp * c.ext_factor;
  return {interpolated * (1 - mix) + extrapolated * mix,
          c.attn_factor * (1 + 0.1 * std::log(1 / c.freq_scale))};
}

// Rotates one head in place, in double.
void naive_rope(const RopeConfig& c, int64_t pos, float* x) {
  for (int i = 0; i < c.n_rot / 2; ++i) {
    const int a = c.mode == RopeMode::normal ? 2 * i : i;
    const int b = c.mode == RopeMode::normal ? 2 * i + 1 : i + c.n_rot / 2;
    const Angle angle = naive_angle(c, static_cast<double>(pos), i);
    const double x0 = x[a], x1 = x[b];
    x[a] = static_cast<float>((x0 * std::cos(angle.theta) - x1 * std::sin(angle.theta)) * angle.magnitude);
    x[b] = static_cast<float>((x0 * std::sin(angle.theta) + x1 * std::cos(angle.theta)) * angle.magnitude);
  }
}

struct Variant {
  const char* name;
  RopeConfig config;
  int head_dim;
};

std::vector<Variant> variants(const std::vector<float>& factors) {
  std::vector<Variant> v;
  for (RopeMode mode : {RopeMode::normal, RopeMode::neox}) {
    RopeConfig plain;
    plain.mode = mode;
    plain.n_rot = 128;
    plain.freq_base = 10000.0f;
    v.push_back({"plain", plain, 128});

    RopeConfig partial = plain;  // GLM and Phi rotate only part of each head
    partial.n_rot = 64;
    partial.freq_base = 1e6f;
    v.push_back({"partial", partial, 128});

    RopeConfig odd_partial = plain;
    odd_partial.n_rot = 18;
    v.push_back({"odd partial", odd_partial, 40});

    RopeConfig llama3 = plain;
    llama3.freq_base = 500000.0f;
    llama3.freq_factors = factors.data();
    v.push_back({"frequency factors", llama3, 128});

    RopeConfig linear = plain;
    linear.freq_scale = 0.25f;
    v.push_back({"linear scaling", linear, 128});

    RopeConfig yarn = plain;
    yarn.freq_scale = 0.25f;
    yarn.ext_factor = 1.0f;
    yarn.n_ctx_orig = 4096;
    yarn.beta_fast = 32.0f;
    yarn.beta_slow = 1.0f;
    v.push_back({"yarn", yarn, 128});

    RopeConfig yarn_partial = yarn;  // YaRN with partial mixing and its own attention factor
    yarn_partial.n_rot = 64;
    yarn_partial.ext_factor = 0.5f;
    yarn_partial.attn_factor = 0.9f;
    yarn_partial.freq_base = 1e6f;
    v.push_back({"yarn partial", yarn_partial, 96});
  }
  return v;
}

class RopeTest : public ::testing::TestWithParam<Isa> {};

TEST_P(RopeTest, MatchesNaiveFormula) {
  const OpTable& k = op_table(GetParam());
  Rng rng(11);
  std::vector<float> factors(64);
  for (size_t i = 0; i < factors.size(); ++i) factors[i] = 1.0f + 7.0f * i / factors.size();
  for (const Variant& variant : variants(factors)) {
    const RopeConfig& c = variant.config;
    const int n_heads = 5;
    for (int64_t pos : {0, 1, 7, 100, 4095, 5000, 32767}) {
      const auto x = random_normal(rng, n_heads * variant.head_dim);
      std::vector<float> cos(c.n_rot), sin(c.n_rot);
      rope_rotation(c, pos, cos.data(), sin.data());
      auto got = x;
      k.rope(got.data(), n_heads, variant.head_dim, c.mode, c.n_rot, cos.data(), sin.data());
      auto want = x;
      for (int h = 0; h < n_heads; ++h) naive_rope(c, pos, want.data() + h * variant.head_dim);
      EXPECT_TRUE(all_near(got, want, 2e-6, 2e-6))
          << variant.name << " mode=" << static_cast<int>(c.mode) << " pos=" << pos;
      // Dimensions past n_rot pass through untouched.
      for (int h = 0; h < n_heads; ++h) {
        for (int i = c.n_rot; i < variant.head_dim; ++i) {
          ASSERT_EQ(got[h * variant.head_dim + i], x[h * variant.head_dim + i]) << variant.name;
        }
      }
    }
  }
}

// The property RoPE exists for: q.k after rotation depends only on the distance of the
// positions.
TEST_P(RopeTest, DotProductDependsOnlyOnRelativePosition) {
  const OpTable& k = op_table(GetParam());
  Rng rng(12);
  for (RopeMode mode : {RopeMode::normal, RopeMode::neox}) {
    RopeConfig c;
    c.mode = mode;
    c.n_rot = 64;
    const auto q0 = random_normal(rng, 64), k0 = random_normal(rng, 64);
    auto rotated_dot = [&](int64_t pq, int64_t pk) {
      std::vector<float> q = q0, kk = k0, cos(64), sin(64);
      rope_rotation(c, pq, cos.data(), sin.data());
      k.rope(q.data(), 1, 64, mode, 64, cos.data(), sin.data());
      rope_rotation(c, pk, cos.data(), sin.data());
      k.rope(kk.data(), 1, 64, mode, 64, cos.data(), sin.data());
      double d = 0;
      for (int i = 0; i < 64; ++i) d += double{q[i]} * kk[i];
      return d;
    };
    EXPECT_NEAR(rotated_dot(10, 3), rotated_dot(107, 100), 1e-3);
    EXPECT_NEAR(rotated_dot(3, 10), rotated_dot(50, 57), 1e-3);
    EXPECT_GT(std::fabs(rotated_dot(10, 3) - rotated_dot(10, 4)), 1e-3);
  }
}

INSTANTIATE_TEST_SUITE_P(EveryIsa, RopeTest, ::testing::ValuesIn(supported_isas()),
                         testing::isa_param_name);

TEST(RopeRotation, PositionZeroIsIdentityTimesAttnFactor) {
  RopeConfig c;
  c.n_rot = 8;
  c.attn_factor = 0.5f;
  std::vector<float> cos(8), sin(8);
  rope_rotation(c, 0, cos.data(), sin.data());
  for (int i = 0; i < 8; ++i) {
    EXPECT_FLOAT_EQ(cos[i], 0.5f);
    EXPECT_EQ(std::fabs(sin[i]), 0.0f);
  }
}

TEST(RopeRotation, RejectsBadConfig) {
  std::vector<float> cos(8), sin(8);
  RopeConfig c;
  c.n_rot = 7;
  EXPECT_THROW(rope_rotation(c, 1, cos.data(), sin.data()), Error);
  c.n_rot = 8;
  c.freq_base = 0.0f;
  EXPECT_THROW(rope_rotation(c, 1, cos.data(), sin.data()), Error);
  c.freq_base = 10000.0f;
  c.ext_factor = 1.0f;  // YaRN without the original context length
  EXPECT_THROW(rope_rotation(c, 1, cos.data(), sin.data()), Error);
}

}  // namespace
}  // namespace tokenmill::kernels
