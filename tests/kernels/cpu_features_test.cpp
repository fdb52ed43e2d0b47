// ISA detection and selection, including the TOKENMILL_ISA override (checked in a fresh
// process, since the choice is made once per process).
#include <gtest/gtest.h>

#include <cstdlib>

#include "common/error.h"
#include "kernels/cpu_features.h"
#include "kernels/ops.h"

namespace tokenmill::kernels {
namespace {

TEST(CpuFeatures, NamesRoundTrip) {
  for (Isa isa : {Isa::scalar, Isa::avx2, Isa::avx512}) {
    EXPECT_EQ(isa_from_name(isa_name(isa)), isa);
  }
  EXPECT_FALSE(isa_from_name("sse2").has_value());
}

TEST(CpuFeatures, DetectionIsConsistent) {
  const CpuFeatures& f = cpu_features();
  if (f.avx512vl || f.avx512bw || f.avx512dq) {
    EXPECT_TRUE(f.avx512f);
  }
  if (isa_supported(Isa::avx512, f)) {
    EXPECT_TRUE(isa_supported(Isa::avx2, f));
  }
  EXPECT_EQ(supported_isas().front(), Isa::scalar);
  EXPECT_EQ(supported_isas().back(), best_isa(f));
}

TEST(CpuFeatures, AvxPathsNeedEveryFlagTheirFilesAreBuiltWith) {
  CpuFeatures f;
  f.avx2 = f.fma = f.f16c = true;
  EXPECT_FALSE(isa_supported(Isa::avx2, f));  // no BMI2
  f.bmi2 = true;
  EXPECT_TRUE(isa_supported(Isa::avx2, f));
  f.avx512f = f.avx512bw = f.avx512vl = f.avx512dq = true;
  EXPECT_FALSE(isa_supported(Isa::avx512, f));  // Skylake-X: no VNNI
  EXPECT_EQ(best_isa(f), Isa::avx2);
  f.avx512vnni = true;
  EXPECT_EQ(best_isa(f), Isa::avx512);
}

TEST(CpuFeatures, ChooseIsaHonoursAndChecksTheOverride) {
  const CpuFeatures none;
  EXPECT_EQ(choose_isa(none, nullptr), Isa::scalar);
  EXPECT_EQ(choose_isa(none, ""), Isa::scalar);
  EXPECT_EQ(choose_isa(none, "scalar"), Isa::scalar);
  EXPECT_THROW(choose_isa(none, "avx2"), Error);
  EXPECT_THROW(choose_isa(none, "avx512"), Error);
  EXPECT_THROW(choose_isa(none, "AVX9000"), Error);
  for (Isa isa : supported_isas()) {
    EXPECT_EQ(choose_isa(cpu_features(), std::string(isa_name(isa)).c_str()), isa);
  }
}

TEST(CpuFeatures, UnsupportedTableIsAnError) {
  for (Isa isa : {Isa::scalar, Isa::avx2, Isa::avx512}) {
    if (isa_supported(isa, cpu_features())) {
      EXPECT_NO_THROW(op_table(isa));
    } else {
      EXPECT_THROW(op_table(isa), Error);
    }
  }
}

// In a child process: set TOKENMILL_ISA, then report the path the kernels chose.
void exit_with_active_isa(const char* forced) {
  setenv("TOKENMILL_ISA", forced, 1);
  try {
    if (&ops() != &op_table(active_isa())) std::exit(43);  // the table follows the choice
    std::exit(static_cast<int>(active_isa()));
  } catch (const Error&) {
    std::exit(42);
  }
}

TEST(CpuFeaturesDeathTest, EnvironmentForcesThePath) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");  // re-executes, so nothing is chosen yet
  for (Isa isa : supported_isas()) {
    EXPECT_EXIT(exit_with_active_isa(std::string(isa_name(isa)).c_str()),
                ::testing::ExitedWithCode(static_cast<int>(isa)), "");
  }
  EXPECT_EXIT(exit_with_active_isa("avx1024"), ::testing::ExitedWithCode(42), "");
  if (!isa_supported(Isa::avx512, cpu_features())) {
    EXPECT_EXIT(exit_with_active_isa("avx512"), ::testing::ExitedWithCode(42), "");
  }
}

}  // namespace
}  // namespace tokenmill::kernels
