// `tokenmill perplexity MODEL -f FILE [-c CTX] [-b BATCH] [--chunks N] [-t T] [--json]`: the
// model's perplexity on a text file, chunked and scored like llama.cpp's llama-perplexity (see
// engine/perplexity.h), printed as it goes ("[1]12.3456,[2]...") and as a final estimate, or as
// one JSON object with --json.
#include <cstdio>
#include <fstream>
#include <memory>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>

#include "cli/commands.h"
#include "cli/model_options.h"
#include "common/error.h"
#include "engine/perplexity.h"
#include "kernels/thread_pool.h"
#include "tokenizer/tokenizer.h"

namespace tokenmill::cli {
namespace {

struct PerplexityArgs {
  std::string model;
  std::string file;
  int64_t n_ctx = 512;  // llama-perplexity's default
  int64_t n_batch = 2048;
  int64_t chunks = -1;
  ThreadOptions threads;
  gguf::TensorType cache_type = gguf::TensorType::F16;
  bool json = false;
};

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Error("cannot read " + path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

void perplexity(const PerplexityArgs& args) {
  const std::string text = read_file(args.file);
  const model::Model model = load_model(args.model);
  const auto tokenizer = tokenizer::Tokenizer::from_gguf(model.file());
  // As llama.cpp: BOS (if the model adds one) before the text, special tokens not parsed.
  const std::vector<int32_t> tokens = tokenizer.tokenize(text, true, false);

  engine::PerplexityParams params;
  params.n_ctx = args.n_ctx;
  params.n_batch = args.n_batch;
  params.max_chunks = args.chunks;
  params.bos = tokenizer.adds_bos() ? tokenizer.special().bos : -1;
  params.kv_type = args.cache_type;
  kernels::ThreadPool pool(args.threads.threads, args.threads.pin);
  if (!args.json)
    std::fprintf(stderr, "perplexity: %zu tokens, n_ctx %lld, batch %lld, %d threads\n", tokens.size(),
                 static_cast<long long>(args.n_ctx), static_cast<long long>(args.n_batch), pool.size());
  const engine::PerplexityResult r =
      engine::perplexity(model, pool, tokens, params, [&](int64_t chunk, double ppl) {
        if (args.json) return;
        std::printf("[%lld]%.4f,", static_cast<long long>(chunk), ppl);
        std::fflush(stdout);
      });
  if (args.json) {
    const nlohmann::ordered_json j = {{"model", args.model},
                                      {"file", args.file},
                                      {"n_ctx", args.n_ctx},
                                      {"n_tokens", tokens.size()},
                                      {"n_chunks", r.n_chunks},
                                      {"n_scored", r.n_scored},
                                      {"mean_nll", r.mean_nll},
                                      {"perplexity", r.perplexity},
                                      {"perplexity_error", r.perplexity_error},
                                      {"seconds", r.seconds},
                                      {"tokens_per_s", r.n_chunks * args.n_ctx / r.seconds},
                                      {"threads", pool.size()}};
    std::printf("%s\n", j.dump(2).c_str());
    return;
  }
  std::printf("\nFinal estimate: PPL = %.4f +/- %.5f\n", r.perplexity, r.perplexity_error);
  std::fflush(stdout);
  std::fprintf(stderr, "%lld chunks, %lld tokens scored, %.2f s (%.1f tokens/s)\n",
               static_cast<long long>(r.n_chunks), static_cast<long long>(r.n_scored), r.seconds,
               r.n_chunks * args.n_ctx / r.seconds);
}

}  // namespace

void register_perplexity(CLI::App& app) {
  auto* cmd = app.add_subcommand("perplexity", "Measure a model's perplexity on a text file (as llama-perplexity)");
  auto args = std::make_shared<PerplexityArgs>();
  cmd->add_option("model", args->model, "GGUF model file")->required();
  cmd->add_option("-f,--file", args->file, "Text file to score")->required();
  cmd->add_option("-c,--ctx-size", args->n_ctx, "Tokens per window; the second half of each is scored")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  cmd->add_option("-b,--batch-size", args->n_batch, "Tokens per forward pass (short windows run side by side)")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  cmd->add_option("--chunks", args->chunks, "Score at most this many windows (-1: all)")->capture_default_str();
  add_threads_option(*cmd, args->threads);
  add_cache_type_option(*cmd, args->cache_type);
  cmd->add_flag("--json", args->json, "Print one JSON object instead of the running figures");
  cmd->callback([args] { perplexity(*args); });
}

}  // namespace tokenmill::cli
