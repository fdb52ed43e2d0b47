// `tokenmill bench kernels [--json]`: this machine's memory read bandwidth and, for each weight
// format, matrix-vector (decode) GB/s and matrix-matrix (prefill) GFLOP/s on weights larger than
// the last-level cache, with 1 thread and with all threads. Decode reads every weight once per
// token, so GEMV GB/s over the read bandwidth is the fraction of the roofline a model reaches.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

#include "cli/commands.h"
#include "common/error.h"
#include "common/progress.h"
#include "common/random.h"
#include "kernels/bandwidth.h"
#include "kernels/cpu_features.h"
#include "kernels/formats.h"
#include "kernels/matmul.h"
#include "kernels/thread_pool.h"

namespace tokenmill::cli {
namespace {

using gguf::TensorType;

constexpr int64_t kCols = 4096;     // a typical hidden size
constexpr int64_t kGemmTokens = 64;  // a prefill chunk

struct FormatResult {
  std::string format;
  int threads;
  double read_gbps;  // measured just before this format's GEMV: shared machines drift
  double gemv_gbps;
  double gemv_roofline;  // gemv_gbps / read bandwidth with the same threads
  double gemm_gflops;
};

// Median seconds of `runs` timed calls after one untimed warm-up.
template <class Fn>
double median_seconds(int runs, Fn&& fn) {
  fn();
  std::vector<double> t;
  for (int i = 0; i < runs; ++i) {
    const auto start = std::chrono::steady_clock::now();
    fn();
    t.push_back(std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
  }
  std::nth_element(t.begin(), t.begin() + t.size() / 2, t.end());
  return t[t.size() / 2];
}

// A weight matrix of `bytes` bytes or a little more: one block-row of seeded gaussian weights,
// quantized once and repeated. Realistic scales without quantizing hundreds of MiB.
std::unique_ptr<uint8_t[]> make_weights(TensorType type, int64_t bytes, int64_t* rows) {
  const uint64_t row_bytes = gguf::row_bytes(type, kCols);
  *rows = std::max<int64_t>(1, bytes / static_cast<int64_t>(row_bytes));
  constexpr int kDistinctRows = 64;
  std::vector<float> src(kCols * kDistinctRows);
  Rng rng(42);
  for (float& x : src) x = rng.normal() * 0.02f;
  std::vector<uint8_t> quantized(row_bytes * kDistinctRows);
  for (int r = 0; r < kDistinctRows; ++r)
    kernels::quantize_row(type, src.data() + r * kCols, quantized.data() + r * row_bytes, kCols);
  auto data = std::make_unique<uint8_t[]>(static_cast<size_t>(*rows) * row_bytes);
  for (int64_t r = 0; r < *rows; ++r)
    std::memcpy(data.get() + r * row_bytes, quantized.data() + (r % kDistinctRows) * row_bytes, row_bytes);
  return data;
}

struct Options {
  bool json = false;
  int runs = 9;
  int64_t weight_mib = 0;  // 0: four times the last-level cache, at least 256 MiB
  std::vector<std::string> formats = {"F32", "F16", "BF16", "Q8_0", "Q6_K", "Q5_K", "Q4_K",
                                       "Q4_0", "IQ4_XS", "Q3_K", "Q2_K"};
};

void run_bench(const Options& opt) {
  const int all = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  std::vector<int> thread_counts = {1};
  if (all > 1) thread_counts.push_back(all);
  const int64_t bytes = opt.weight_mib > 0 ? opt.weight_mib << 20 : kernels::default_bandwidth_bytes();
  const std::string isa(kernels::isa_name(kernels::active_isa()));

  std::vector<TensorType> types;
  for (const auto& name : opt.formats) {
    auto t = gguf::tensor_type_from_name(name);
    if (!t || !kernels::matmul_supports(*t)) throw tokenmill::Error("bench kernels: no matmul for format '" + name + "'");
    types.push_back(*t);
  }

  Progress progress("bench kernels", thread_counts.size() * (types.size() + 1));
  std::vector<std::pair<int, double>> bandwidth;
  std::vector<FormatResult> results;
  for (int threads : thread_counts) {
    kernels::ThreadPool pool(threads);
    const double bw = kernels::read_bandwidth_gbps(pool, bytes, opt.runs);
    bandwidth.emplace_back(threads, bw);
    progress.add(1);
    for (TensorType type : types) {
      const double read_gbps = kernels::read_bandwidth_gbps(pool, bytes, opt.runs);
      int64_t rows = 0;
      const auto weights = make_weights(type, bytes, &rows);
      const kernels::WeightMatrix w{type, weights.get(), rows, kCols};
      const double weight_bytes = static_cast<double>(rows) * gguf::row_bytes(type, kCols);
      std::vector<float> x(kCols * kGemmTokens), y(rows * kGemmTokens);
      Rng rng(7);
      for (float& v : x) v = rng.normal();
      const double gemv = median_seconds(opt.runs, [&] { kernels::matmul(pool, w, x.data(), y.data(), 1); });
      // A GEMM pass reads the weights once for all tokens, so fewer runs keep the time bounded.
      const double gemm =
          median_seconds(std::max(3, opt.runs / 3), [&] { kernels::matmul(pool, w, x.data(), y.data(), kGemmTokens); });
      const double gemv_gbps = weight_bytes / gemv / 1e9;
      results.push_back({std::string(gguf::tensor_type_name(type)), threads, read_gbps, gemv_gbps, gemv_gbps / read_gbps,
                         2.0 * static_cast<double>(rows) * kCols * kGemmTokens / gemm / 1e9});
      progress.add(1);
    }
  }
  progress.finish();

  if (opt.json) {
    nlohmann::ordered_json j;
    j["isa"] = isa;
    j["weight_bytes"] = bytes;
    j["cols"] = kCols;
    j["gemm_tokens"] = kGemmTokens;
    for (const auto& [threads, bw] : bandwidth) j["read_bandwidth_gbps"][std::to_string(threads)] = bw;
    j["formats"] = nlohmann::ordered_json::array();
    for (const auto& r : results)
      j["formats"].push_back({{"format", r.format},
                              {"threads", r.threads},
                              {"read_gbps", r.read_gbps},
                              {"gemv_gbps", r.gemv_gbps},
                              {"gemv_roofline_fraction", r.gemv_roofline},
                              {"gemm_gflops", r.gemm_gflops}});
    std::printf("%s\n", j.dump(2).c_str());
    return;
  }
  std::printf("kernel path %s, weights %.0f MiB per matrix (%lld columns), GEMM over %lld tokens\n", isa.c_str(),
              static_cast<double>(bytes) / 1048576.0, static_cast<long long>(kCols), static_cast<long long>(kGemmTokens));
  for (const auto& [threads, bw] : bandwidth)
    std::printf("memory read bandwidth, %d thread%s: %.1f GB/s\n", threads, threads == 1 ? "" : "s", bw);
  std::printf("\n%-8s %7s %10s %10s %9s %12s\n", "format", "threads", "read GB/s", "GEMV GB/s", "roofline",
              "GEMM GFLOP/s");
  for (const auto& r : results)
    std::printf("%-8s %7d %10.1f %10.1f %8.0f%% %12.1f\n", r.format.c_str(), r.threads, r.read_gbps, r.gemv_gbps,
                r.gemv_roofline * 100, r.gemm_gflops);
}

}  // namespace

void register_bench_kernels(CLI::App& bench) {
  auto opt = std::make_shared<Options>();
  auto* cmd = bench.add_subcommand("kernels", "Memory bandwidth and per-format GEMV / GEMM speed of this machine");
  cmd->add_flag("--json", opt->json, "Print one JSON object");
  cmd->add_option("-r,--repetitions", opt->runs, "Timed runs per measurement (median reported)")
      ->capture_default_str()
      ->check(CLI::Range(1, 1000));
  cmd->add_option("--weight-mib", opt->weight_mib, "Weight matrix size in MiB (default: 4x the last-level cache, >= 256)")
      ->check(CLI::Range(int64_t{1}, int64_t{1} << 16));
  cmd->add_option("--formats", opt->formats, "Weight formats to measure")->delimiter(',');
  cmd->callback([opt] { run_bench(*opt); });
}

}  // namespace tokenmill::cli
