// `tokenmill bench MODEL [-p 512] [-n 128] [-t T] [-r REPS] [--json]`: prompt processing (pp)
// and token generation (tg) speed, measured as llama-bench measures them so the figures compare:
// pp runs p random tokens (BOS first) through an empty cache in one batch, tg decodes n tokens
// one at a time from an empty cache; each is repeated r times after a warm-up run and reported
// as mean ± standard deviation of tokens/s. Decode is also set against its bandwidth roofline:
// the machine's measured read bandwidth divided by the weight bytes one token reads.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "cli/commands.h"
#include "cli/model_options.h"
#include "common/error.h"
#include "common/random.h"
#include "kernels/bandwidth.h"
#include "kernels/cpu_features.h"
#include "kernels/thread_pool.h"
#include "model/forward.h"

namespace tokenmill::cli {
namespace {

struct BenchArgs {
  std::string model;
  int64_t n_prompt = 512;
  int64_t n_gen = 128;
  int reps = 5;
  ThreadOptions threads;
  double bandwidth_gbps = 0;  // 0: measure
  gguf::TensorType cache_type = gguf::TensorType::F16;
  bool json = false;
};

struct Series {
  std::vector<double> tokens_per_s;
  double mean() const {
    double s = 0;
    for (double x : tokens_per_s) s += x;
    return tokens_per_s.empty() ? 0 : s / static_cast<double>(tokens_per_s.size());
  }
  double stddev() const {
    if (tokens_per_s.size() < 2) return 0;
    const double m = mean();
    double s = 0;
    for (double x : tokens_per_s) s += (x - m) * (x - m);
    return std::sqrt(s / static_cast<double>(tokens_per_s.size() - 1));
  }
};

class Bench {
 public:
  Bench(const model::Model& model, kernels::ThreadPool& pool, int64_t n_ctx, gguf::TensorType cache_type)
      : model_(model), forward_(model, pool), cache_(model.hparams(), n_ctx, cache_type), rng_(1234) {}

  // Seconds to prefill n random tokens into an empty cache.
  double prompt(int64_t n) {
    std::vector<int32_t> tokens(n);
    for (auto& t : tokens) t = random_token();
    const auto bos = model_.file().get_uint("tokenizer.ggml.bos_token_id");
    if (bos && model_.file().get_bool("tokenizer.ggml.add_bos_token").value_or(false))
      tokens[0] = static_cast<int32_t>(*bos);
    cache_.truncate(0);
    const auto start = std::chrono::steady_clock::now();
    const model::SequenceInput in{&cache_, tokens, model::Logits::Last};
    forward_.run(std::span(&in, 1));
    return seconds_since(start);
  }

  // Seconds to decode n tokens one by one from an empty cache.
  double generate(int64_t n) {
    cache_.truncate(0);
    const auto start = std::chrono::steady_clock::now();
    for (int64_t i = 0; i < n; ++i) {
      const int32_t token = random_token();
      const model::SequenceInput in{&cache_, std::span(&token, 1), model::Logits::Last};
      forward_.run(std::span(&in, 1));
    }
    return seconds_since(start);
  }

 private:
  static double seconds_since(std::chrono::steady_clock::time_point t) {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - t).count();
  }
  int32_t random_token() { return static_cast<int32_t>(rng_.next_u64() % model_.hparams().n_vocab); }

  const model::Model& model_;
  model::Forward forward_;
  model::ContiguousCache cache_;
  Rng rng_;
};

std::string describe(const model::Model& m) {
  std::string s = m.arch().name.data();
  if (auto name = m.file().get_string("general.name")) s = *name + " (" + s + ")";
  return s;
}

void bench(const BenchArgs& args) {
  if (args.n_prompt < 0 || args.n_gen < 0 || args.reps < 1) throw Error("-p and -n must not be negative, -r positive");
  const model::Model model = load_model(args.model);
  kernels::ThreadPool pool(args.threads.threads, args.threads.pin);
  Bench bench(model, pool, std::max<int64_t>(1, std::max(args.n_prompt, args.n_gen)), args.cache_type);

  Series pp, tg;
  if (args.n_prompt > 0) {
    bench.prompt(args.n_prompt);  // warm-up
    for (int r = 0; r < args.reps; ++r) pp.tokens_per_s.push_back(args.n_prompt / bench.prompt(args.n_prompt));
  }
  if (args.n_gen > 0) {
    bench.generate(1);
    for (int r = 0; r < args.reps; ++r) tg.tokens_per_s.push_back(args.n_gen / bench.generate(args.n_gen));
  }
  const double gbps = args.bandwidth_gbps > 0
                          ? args.bandwidth_gbps
                          : kernels::read_bandwidth_gbps(pool, kernels::default_bandwidth_bytes(), 5);
  const double bytes = static_cast<double>(model.bytes_per_token());
  const double roofline = gbps * 1e9 / bytes;

  if (args.json) {
    nlohmann::ordered_json j = {{"model", args.model},
                                {"description", describe(model)},
                                {"file_bytes", model.file().total_bytes()},
                                {"threads", pool.size()},
                                {"isa", std::string(kernels::isa_name(kernels::active_isa()))},
                                {"reps", args.reps},
                                {"n_prompt", args.n_prompt},
                                {"n_gen", args.n_gen}};
    if (args.n_prompt > 0) {
      j["pp_tokens_per_s"] = pp.mean();
      j["pp_stddev"] = pp.stddev();
      j["pp_samples"] = pp.tokens_per_s;
    }
    if (args.n_gen > 0) {
      j["tg_tokens_per_s"] = tg.mean();
      j["tg_stddev"] = tg.stddev();
      j["tg_samples"] = tg.tokens_per_s;
    }
    j["bytes_per_token"] = model.bytes_per_token();
    j["bandwidth_gbps"] = gbps;
    j["roofline_tokens_per_s"] = roofline;
    if (args.n_gen > 0) j["tg_roofline_fraction"] = tg.mean() / roofline;
    std::printf("%s\n", j.dump(2).c_str());
    return;
  }
  std::printf("| model | size | threads | test | t/s |\n|---|---|---|---|---|\n");
  const double mib = static_cast<double>(model.file().total_bytes()) / (1024.0 * 1024.0);
  auto row = [&](const char* test, int64_t n, const Series& s) {
    std::printf("| %s | %.2f MiB | %d | %s%lld | %.2f ± %.2f |\n", describe(model).c_str(), mib, pool.size(), test,
                static_cast<long long>(n), s.mean(), s.stddev());
  };
  if (args.n_prompt > 0) row("pp", args.n_prompt, pp);
  if (args.n_gen > 0) row("tg", args.n_gen, tg);
  std::printf("\ndecode reads %.1f MB of weights per token; read bandwidth %.1f GB/s (%d threads) -> roofline %.2f tokens/s",
              bytes / 1e6, gbps, pool.size(), roofline);
  if (args.n_gen > 0) std::printf("; tg%lld reaches %.0f%%", static_cast<long long>(args.n_gen), 100 * tg.mean() / roofline);
  std::printf("\n");
}

}  // namespace

void register_bench(CLI::App& app) {
  auto* cmd = app.add_subcommand("bench", "Measure prompt processing and generation speed (as llama-bench)");
  auto args = std::make_shared<BenchArgs>();
  cmd->add_option("model", args->model, "GGUF model file (or `bench kernels`)");
  cmd->add_option("-p,--n-prompt", args->n_prompt, "Prompt tokens processed in one batch (0: skip)")->capture_default_str();
  cmd->add_option("-n,--n-gen", args->n_gen, "Tokens generated one at a time (0: skip)")->capture_default_str();
  cmd->add_option("-r,--repetitions", args->reps, "Timed runs of each test")->capture_default_str();
  add_threads_option(*cmd, args->threads);
  add_cache_type_option(*cmd, args->cache_type);
  cmd->add_option("--bandwidth", args->bandwidth_gbps, "Memory read bandwidth in GB/s for the roofline (default: measure)");
  cmd->add_flag("--json", args->json, "Print one JSON object");
  register_bench_kernels(*cmd);
  cmd->callback([cmd, args] {
    if (cmd->get_subcommand("kernels")->parsed()) return;  // it ran its own callback
    if (args->model.empty()) throw CLI::RequiredError("model");
    bench(*args);
  });
}

}  // namespace tokenmill::cli
