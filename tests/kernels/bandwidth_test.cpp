#include <gtest/gtest.h>

#include <cmath>

#include "common/error.h"
#include "kernels/bandwidth.h"
#include "kernels/thread_pool.h"

namespace tokenmill::kernels {
namespace {

TEST(Bandwidth, SmallArrayGivesAPositiveFiniteRate) {
  for (int threads : {1, 2}) {
    ThreadPool pool(threads);
    const double gbps = read_bandwidth_gbps(pool, 1 << 20, 3);
    EXPECT_TRUE(std::isfinite(gbps)) << threads;
    EXPECT_GT(gbps, 0.0) << threads;
  }
}

TEST(Bandwidth, DefaultSizeIsBeyondTheCaches) {
  EXPECT_GE(default_bandwidth_bytes(), int64_t{256} << 20);
}

TEST(Bandwidth, RejectsEmptyRuns) {
  ThreadPool pool(1);
  EXPECT_THROW(read_bandwidth_gbps(pool, 0, 3), Error);
  EXPECT_THROW(read_bandwidth_gbps(pool, 1024, 0), Error);
}

}  // namespace
}  // namespace tokenmill::kernels
