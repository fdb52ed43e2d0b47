// `tokenmill run MODEL -p TEXT [-n N] [--temp T] [--seed S] [-t THREADS] ...`: generates a
// continuation of the prompt. Only the generated text goes to stdout, streamed as it comes;
// loading progress and timings go to stderr.
#include <cstdio>
#include <memory>
#include <random>
#include <string>

#include "cli/commands.h"
#include "cli/model_options.h"
#include "common/error.h"
#include "engine/generator.h"
#include "kernels/thread_pool.h"
#include "tokenizer/tokenizer.h"

namespace tokenmill::cli {
namespace {

struct RunArgs {
  std::string model;
  std::string prompt;
  int64_t n_predict = 128;
  int64_t n_ctx = 0;
  ThreadOptions threads;
  gguf::TensorType cache_type = gguf::TensorType::F16;
  std::optional<uint64_t> seed;
  // The defaults of llama.cpp's tools, so the two sample alike out of the box.
  engine::SamplingParams sampling{.temperature = 0.8f, .top_k = 40, .top_p = 0.95f, .min_p = 0.05f};
};

void run(RunArgs& args) {
  args.sampling.seed = args.seed ? *args.seed : std::random_device{}();
  args.sampling.validate();
  if (args.n_predict < 0) throw Error("-n must not be negative");
  const model::Model model = load_model(args.model);
  const auto tokenizer = tokenizer::Tokenizer::from_gguf(model.file());
  const std::vector<int32_t> prompt = tokenizer.tokenize(args.prompt, true, true);
  if (prompt.empty()) throw Error("the prompt is empty (and the model adds no BOS token)");
  const int64_t n_ctx = args.n_ctx > 0 ? args.n_ctx : static_cast<int64_t>(prompt.size()) + args.n_predict + 1;

  kernels::ThreadPool pool(args.threads.threads, args.threads.pin);
  engine::Generator generator(model, tokenizer, pool, n_ctx, args.cache_type);
  engine::GenerationParams params;
  params.max_tokens = args.n_predict;
  params.sampling = args.sampling;
  const engine::GenerationStats stats = generator.generate(prompt, params, [](int32_t, std::string_view text) {
    std::fwrite(text.data(), 1, text.size(), stdout);
    std::fflush(stdout);
    return true;
  });
  std::fprintf(stderr, "seed %llu, %d threads\n", static_cast<unsigned long long>(args.sampling.seed), pool.size());
  std::fprintf(stderr, "prompt: %lld tokens in %.3f s (%.2f tokens/s)\n",
               static_cast<long long>(stats.prompt_tokens), stats.prefill_seconds,
               stats.prompt_tokens / stats.prefill_seconds);
  std::fprintf(stderr, "generated: %lld tokens in %.3f s (%.2f tokens/s)%s\n",
               static_cast<long long>(stats.generated_tokens), stats.decode_seconds,
               stats.decode_seconds > 0 ? stats.generated_tokens / stats.decode_seconds : 0.0,
               stats.stop == engine::StopReason::EndOfGeneration ? ", stopped at end of generation" : "");
}

}  // namespace

void register_run(CLI::App& app) {
  auto* cmd = app.add_subcommand("run", "Generate text from a prompt");
  auto args = std::make_shared<RunArgs>();
  engine::SamplingParams& s = args->sampling;
  cmd->add_option("model", args->model, "GGUF model file")->required();
  cmd->add_option("-p,--prompt", args->prompt, "Prompt text")->required();
  cmd->add_option("-n,--n-predict", args->n_predict, "Tokens to generate at most")->capture_default_str();
  cmd->add_option("-c,--ctx-size", args->n_ctx, "Context length (default: prompt plus -n)");
  add_threads_option(*cmd, args->threads);
  add_cache_type_option(*cmd, args->cache_type);
  cmd->add_option("--temp", s.temperature, "Temperature (0: greedy)")->capture_default_str();
  cmd->add_option("--seed", args->seed, "Random seed (default: a random one, printed to stderr)");
  cmd->add_option("--top-k", s.top_k, "Keep the k most likely tokens (0: off)")->capture_default_str();
  cmd->add_option("--top-p", s.top_p, "Keep the most likely tokens up to this mass (1: off)")->capture_default_str();
  cmd->add_option("--min-p", s.min_p, "Drop tokens less likely than this times the best (0: off)")
      ->capture_default_str();
  cmd->add_option("--repeat-penalty", s.repetition_penalty, "Penalty for repeated tokens (1: off)")
      ->capture_default_str();
  cmd->add_option("--presence-penalty", s.presence_penalty, "Subtracted once per generated token (0: off)")
      ->capture_default_str();
  cmd->add_option("--frequency-penalty", s.frequency_penalty, "Subtracted per occurrence (0: off)")
      ->capture_default_str();
  cmd->callback([args] { run(*args); });
}

}  // namespace tokenmill::cli
