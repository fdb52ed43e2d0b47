#include "kernels/bandwidth.h"

#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <memory>
#include <vector>

#include "common/error.h"
#include "kernels/ops.h"
#include "kernels/thread_pool.h"

namespace tokenmill::kernels {

int64_t default_bandwidth_bytes() {
  const long l3 = sysconf(_SC_LEVEL3_CACHE_SIZE);
  const long l2 = sysconf(_SC_LEVEL2_CACHE_SIZE);
  const int64_t llc = std::max<int64_t>({l3, l2, 0});
  return std::max<int64_t>(4 * llc, int64_t{256} << 20);
}

double read_bandwidth_gbps(ThreadPool& pool, int64_t bytes, int runs) {
  if (bytes < static_cast<int64_t>(sizeof(float)) || runs <= 0) {
    throw Error("read_bandwidth_gbps: bytes and runs must be positive");
  }
  const int64_t n = bytes / static_cast<int64_t>(sizeof(float));
  // Left uninitialised here so that each thread first touches (and so places) its own slice.
  const std::unique_ptr<float[]> data(new float[n]);
  const int threads = pool.size();
  auto slice = [&](int t, int64_t* begin, int64_t* end) {
    *begin = n * t / threads;
    *end = n * (t + 1) / threads;
  };
  pool.run([&](int t) {
    int64_t begin, end;
    slice(t, &begin, &end);
    std::fill(data.get() + begin, data.get() + end, 1.0f);
  });

  const OpTable& k = ops();
  std::vector<float> sums(threads);
  std::vector<double> seconds;
  for (int r = 0; r <= runs; ++r) {
    const auto start = std::chrono::steady_clock::now();
    pool.run([&](int t) {
      int64_t begin, end;
      slice(t, &begin, &end);
      sums[t] = k.sum(data.get() + begin, end - begin);
    });
    const std::chrono::duration<double> elapsed = std::chrono::steady_clock::now() - start;
    if (r > 0) seconds.push_back(elapsed.count());  // pass 0 only warms up
  }
  std::nth_element(seconds.begin(), seconds.begin() + runs / 2, seconds.end());
  return static_cast<double>(n) * sizeof(float) / seconds[runs / 2] / 1e9;
}

}  // namespace tokenmill::kernels
