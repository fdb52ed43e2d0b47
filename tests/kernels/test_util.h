// Helpers shared by the kernel tests: random inputs, tolerance checks, and ISA parameters.
#pragma once

#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include "common/random.h"
#include "kernels/cpu_features.h"

namespace tokenmill::kernels::testing {

inline std::vector<float> random_normal(Rng& rng, int64_t n, float scale = 1.0f) {
  std::vector<float> v(n);
  for (auto& x : v) x = rng.normal() * scale;
  return v;
}

// Every element within atol + rtol * |expected|; reports the first few that are not.
inline ::testing::AssertionResult all_near(const float* actual, const float* expected, int64_t n,
                                           double atol, double rtol) {
  int bad = 0;
  std::string message;
  for (int64_t i = 0; i < n; ++i) {
    const double diff = std::fabs(static_cast<double>(actual[i]) - expected[i]);
    if (!(diff <= atol + rtol * std::fabs(expected[i]))) {
      if (++bad <= 5) {
        message += " [" + std::to_string(i) + "] " + std::to_string(actual[i]) + " vs " +
                   std::to_string(expected[i]) + ";";
      }
    }
  }
  if (bad == 0) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << bad << " of " << n << " elements differ:" << message;
}

inline ::testing::AssertionResult all_near(const std::vector<float>& actual,
                                           const std::vector<float>& expected, double atol,
                                           double rtol) {
  if (actual.size() != expected.size()) return ::testing::AssertionFailure() << "size differs";
  return all_near(actual.data(), expected.data(), static_cast<int64_t>(actual.size()), atol, rtol);
}

// Parameter name for INSTANTIATE_TEST_SUITE_P over supported_isas().
inline std::string isa_param_name(const ::testing::TestParamInfo<Isa>& info) {
  return std::string(isa_name(info.param));
}

}  // namespace tokenmill::kernels::testing
