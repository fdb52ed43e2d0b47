// Every op of every ISA path this CPU has, against the scalar reference on many lengths (odd
// ones, shorter than a vector, one off a multiple of the vector width), plus known values
// that check the reference itself.
#include <gtest/gtest.h>

#include <cmath>
#include <numeric>
#include <vector>

#include "common/error.h"
#include "kernels/ops.h"
#include "kernels/test_util.h"

namespace tokenmill::kernels {
namespace {

using testing::all_near;
using testing::random_normal;

const std::vector<int64_t> kLengths = {1,  2,  3,   5,   7,   8,   9,   15,   16,   17,  31,
                                       32, 33, 63,  64,  65,  100, 127, 128,  129,  255, 256,
                                       257, 1000, 1023, 4096, 4099, 11008};

class OpsTest : public ::testing::TestWithParam<Isa> {
 protected:
  const OpTable& vec = op_table(GetParam());
  const OpTable& ref = op_table(Isa::scalar);
};

TEST_P(OpsTest, ElementwiseArithmeticIsExact) {
  Rng rng(1);
  for (int64_t n : kLengths) {
    const auto a = random_normal(rng, n), b = random_normal(rng, n);
    std::vector<float> got(n), want(n);
    vec.add(a.data(), b.data(), got.data(), n);
    ref.add(a.data(), b.data(), want.data(), n);
    EXPECT_TRUE(all_near(got, want, 0, 0)) << "add n=" << n;
    vec.mul(a.data(), b.data(), got.data(), n);
    ref.mul(a.data(), b.data(), want.data(), n);
    EXPECT_TRUE(all_near(got, want, 0, 0)) << "mul n=" << n;
    vec.scale(a.data(), -0.37f, got.data(), n);
    ref.scale(a.data(), -0.37f, want.data(), n);
    EXPECT_TRUE(all_near(got, want, 0, 0)) << "scale n=" << n;
  }
}

TEST_P(OpsTest, OutputsMayAliasInputsAndTailsWriteNothingBeyondN) {
  Rng rng(2);
  for (int64_t n : kLengths) {
    auto a = random_normal(rng, n + 1);
    const auto b = random_normal(rng, n);
    a[n] = 12345.0f;  // a sentinel just past the row
    std::vector<float> want(n);
    ref.add(a.data(), b.data(), want.data(), n);
    vec.add(a.data(), b.data(), a.data(), n);
    EXPECT_TRUE(all_near(a.data(), want.data(), n, 0, 0)) << "n=" << n;
    EXPECT_EQ(a[n], 12345.0f) << "n=" << n;
  }
}

TEST_P(OpsTest, SumMatchesReference) {
  Rng rng(3);
  for (int64_t n : kLengths) {
    const auto x = random_normal(rng, n);
    double abs_sum = 0;
    for (float v : x) abs_sum += std::fabs(v);
    EXPECT_NEAR(vec.sum(x.data(), n), ref.sum(x.data(), n), 1e-6 * abs_sum + 1e-6) << "n=" << n;
  }
}

TEST_P(OpsTest, NormsMatchReference) {
  Rng rng(4);
  for (int64_t n : kLengths) {
    const auto x = random_normal(rng, n, 3.0f);
    const auto w = random_normal(rng, n), b = random_normal(rng, n);
    std::vector<float> got(n), want(n);
    vec.rms_norm(x.data(), w.data(), got.data(), n, 1e-5f);
    ref.rms_norm(x.data(), w.data(), want.data(), n, 1e-5f);
    EXPECT_TRUE(all_near(got, want, 1e-6, 1e-5)) << "rms_norm n=" << n;
    vec.rms_norm(x.data(), nullptr, got.data(), n, 1e-6f);
    ref.rms_norm(x.data(), nullptr, want.data(), n, 1e-6f);
    EXPECT_TRUE(all_near(got, want, 1e-6, 1e-5)) << "rms_norm unweighted n=" << n;
    for (const float* weight : {w.data(), static_cast<const float*>(nullptr)}) {
      for (const float* bias : {b.data(), static_cast<const float*>(nullptr)}) {
        vec.layer_norm(x.data(), weight, bias, got.data(), n, 1e-5f);
        ref.layer_norm(x.data(), weight, bias, want.data(), n, 1e-5f);
        EXPECT_TRUE(all_near(got, want, 1e-5, 1e-5))
            << "layer_norm n=" << n << " weight=" << (weight != nullptr) << " bias=" << (bias != nullptr);
      }
    }
  }
}

TEST_P(OpsTest, NormsNormalise) {
  Rng rng(5);
  const int64_t n = 999;
  const auto x = random_normal(rng, n, 7.0f);
  std::vector<float> y(n);
  vec.rms_norm(x.data(), nullptr, y.data(), n, 0.0f);
  double ms = 0;
  for (float v : y) ms += double{v} * v;
  EXPECT_NEAR(ms / n, 1.0, 1e-5);
  vec.layer_norm(x.data(), nullptr, nullptr, y.data(), n, 0.0f);
  const double mean = std::accumulate(y.begin(), y.end(), 0.0) / n;
  double var = 0;
  for (float v : y) var += (v - mean) * (v - mean);
  EXPECT_NEAR(mean, 0.0, 1e-5);
  EXPECT_NEAR(var / n, 1.0, 1e-5);
}

TEST_P(OpsTest, SoftmaxMatchesReferenceAndSumsToOne) {
  Rng rng(6);
  for (int64_t n : kLengths) {
    auto x = random_normal(rng, n, 10.0f);
    if (n > 3) x[n / 2] = -INFINITY;  // a masked entry
    std::vector<float> got(n), want(n);
    vec.softmax(x.data(), got.data(), n);
    ref.softmax(x.data(), want.data(), n);
    EXPECT_TRUE(all_near(got, want, 1e-9, 1e-5)) << "n=" << n;
    EXPECT_NEAR(std::accumulate(got.begin(), got.end(), 0.0), 1.0, 1e-5) << "n=" << n;
    if (n > 3) {
      EXPECT_EQ(got[n / 2], 0.0f);
    }
    vec.softmax(x.data(), x.data(), n);  // in place
    EXPECT_TRUE(all_near(x, got, 0, 0)) << "in place n=" << n;
  }
}

TEST_P(OpsTest, ActivationsMatchReference) {
  Rng rng(7);
  for (int64_t n : kLengths) {
    auto x = random_normal(rng, n, 4.0f);
    // Saturated and extreme inputs, where exp under- or overflows.
    const float extremes[] = {0.0f, -0.0f, 30.0f, -30.0f, 90.0f, -90.0f, 1e-7f, -200.0f, 200.0f};
    for (size_t i = 0; i < std::size(extremes) && i < x.size(); ++i) x[i * 7 % n] = extremes[i];
    const auto up = random_normal(rng, n);
    std::vector<float> got(n), want(n);
    vec.silu(x.data(), got.data(), n);
    ref.silu(x.data(), want.data(), n);
    EXPECT_TRUE(all_near(got, want, 1e-6, 1e-5)) << "silu n=" << n;
    vec.gelu_tanh(x.data(), got.data(), n);
    ref.gelu_tanh(x.data(), want.data(), n);
    EXPECT_TRUE(all_near(got, want, 2e-6, 1e-5)) << "gelu_tanh n=" << n;
    vec.gelu_erf(x.data(), got.data(), n);
    ref.gelu_erf(x.data(), want.data(), n);
    EXPECT_TRUE(all_near(got, want, 2e-6, 1e-5)) << "gelu_erf n=" << n;
    vec.swiglu(x.data(), up.data(), got.data(), n);
    ref.swiglu(x.data(), up.data(), want.data(), n);
    EXPECT_TRUE(all_near(got, want, 1e-6, 1e-5)) << "swiglu n=" << n;
  }
}

TEST_P(OpsTest, ActivationsHitKnownValues) {
  const std::vector<float> x = {1.0f, -1.5f, -2.0f, -3.0f, 0.0f};
  std::vector<float> y(x.size());
  vec.gelu_erf(x.data(), y.data(), 2);
  EXPECT_NEAR(y[0], 0.8413447460685429, 1e-6);
  EXPECT_NEAR(y[1], -0.10021080190328713, 1e-6);
  vec.gelu_tanh(x.data(), y.data(), 3);
  EXPECT_NEAR(y[0], 0.8411919906082768, 1e-6);
  EXPECT_NEAR(y[2], -0.04540230591222494, 1e-6);
  vec.silu(x.data(), y.data(), 5);
  EXPECT_NEAR(y[0], 0.7310585786300049, 1e-6);
  EXPECT_NEAR(y[3], -0.14227761953270035, 1e-6);
  EXPECT_EQ(y[4], 0.0f);
  const std::vector<float> up = {2.0f, 1.0f, 1.0f, -1.0f, 5.0f};
  vec.swiglu(x.data(), up.data(), y.data(), 5);
  EXPECT_NEAR(y[0], 2 * 0.7310585786300049, 2e-6);
  EXPECT_NEAR(y[3], 0.14227761953270035, 1e-6);
}

TEST_P(OpsTest, RopeApplyMatchesReference) {
  Rng rng(8);
  for (RopeMode mode : {RopeMode::normal, RopeMode::neox}) {
    for (int head_dim : {2, 6, 32, 64, 80, 96, 128, 256}) {
      for (int n_rot : {2, head_dim / 2 + (head_dim / 2) % 2, head_dim}) {
        RopeConfig config;
        config.mode = mode;
        config.n_rot = n_rot;
        std::vector<float> cos(n_rot), sin(n_rot);
        rope_rotation(config, 1234, cos.data(), sin.data());
        const int n_heads = 3;
        auto got = random_normal(rng, n_heads * head_dim);
        auto want = got;
        vec.rope(got.data(), n_heads, head_dim, mode, n_rot, cos.data(), sin.data());
        ref.rope(want.data(), n_heads, head_dim, mode, n_rot, cos.data(), sin.data());
        EXPECT_TRUE(all_near(got, want, 1e-6, 1e-6))
            << "mode=" << static_cast<int>(mode) << " head_dim=" << head_dim << " n_rot=" << n_rot;
      }
    }
  }
}

INSTANTIATE_TEST_SUITE_P(EveryIsa, OpsTest, ::testing::ValuesIn(supported_isas()),
                         testing::isa_param_name);

TEST(TopK, PicksLargestInOrderWithStableTies) {
  const std::vector<float> x = {0.5f, 2.0f, -1.0f, 2.0f, NAN, 3.0f, 0.5f, -INFINITY};
  std::vector<int32_t> idx(4);
  top_k(x.data(), static_cast<int64_t>(x.size()), 4, idx.data());
  EXPECT_EQ(idx, (std::vector<int32_t>{5, 1, 3, 0}));
  std::vector<int32_t> all(x.size());
  top_k(x.data(), static_cast<int64_t>(x.size()), static_cast<int64_t>(x.size()), all.data());
  EXPECT_EQ(all, (std::vector<int32_t>{5, 1, 3, 0, 6, 2, 7, 4}));
}

TEST(TopK, MatchesFullSortOnRandomRouterLogits) {
  Rng rng(9);
  for (int64_t n : {1, 8, 60, 128, 256}) {
    const auto x = random_normal(rng, n);
    std::vector<int32_t> order(n);
    std::iota(order.begin(), order.end(), 0);
    std::stable_sort(order.begin(), order.end(), [&](int32_t a, int32_t b) { return x[a] > x[b]; });
    for (int64_t k : {int64_t{1}, std::min<int64_t>(n, 8), n}) {
      std::vector<int32_t> idx(k);
      top_k(x.data(), n, k, idx.data());
      EXPECT_TRUE(std::equal(idx.begin(), idx.end(), order.begin())) << "n=" << n << " k=" << k;
    }
  }
}

TEST(TopK, RejectsBadK) {
  const float x[3] = {1, 2, 3};
  int32_t idx[4];
  EXPECT_THROW(top_k(x, 3, 0, idx), Error);
  EXPECT_THROW(top_k(x, 3, 4, idx), Error);
}

}  // namespace
}  // namespace tokenmill::kernels
