#include "engine/generator.h"

#include <algorithm>
#include <chrono>
#include <string>
#include <vector>

#include "common/error.h"
#include "tokenizer/stream_decoder.h"

namespace tokenmill::engine {
namespace {

double seconds_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

}  // namespace

Generator::Generator(const model::Model& model, const tokenizer::Tokenizer& tokenizer, kernels::ThreadPool& pool,
                     int64_t n_ctx, gguf::TensorType kv_type)
    : model_(model), tokenizer_(tokenizer), forward_(model, pool), cache_(model.hparams(), n_ctx, kv_type) {}

GenerationStats Generator::generate(std::span<const int32_t> prompt, const GenerationParams& params,
                                    const TextSink& sink) {
  params.sampling.validate();
  if (prompt.empty()) throw Error("the prompt is empty");
  if (static_cast<int64_t>(prompt.size()) >= cache_.capacity())
    throw Error("the prompt has " + std::to_string(prompt.size()) + " tokens; the context holds " +
                std::to_string(cache_.capacity()));
  cache_.truncate(0);
  GenerationStats stats;
  stats.prompt_tokens = static_cast<int64_t>(prompt.size());

  const auto prefill_start = std::chrono::steady_clock::now();
  std::span<const float> logits;
  const auto step = static_cast<size_t>(std::max<int64_t>(1, params.prefill_batch));
  for (size_t i = 0; i < prompt.size(); i += step) {
    const model::SequenceInput in{&cache_, prompt.subspan(i, std::min(step, prompt.size() - i)),
                                  model::Logits::Last};
    logits = forward_.run(std::span(&in, 1));
  }
  stats.prefill_seconds = seconds_since(prefill_start);

  const auto decode_start = std::chrono::steady_clock::now();
  Sampler sampler(params.sampling);
  tokenizer::StreamDecoder decoder(tokenizer_);
  std::vector<float> row;
  std::vector<int32_t> generated;
  stats.stop = StopReason::Length;
  while (static_cast<int64_t>(generated.size()) < params.max_tokens) {
    row.assign(logits.begin(), logits.end());
    const int32_t token = sampler.sample(row, generated);
    if (tokenizer_.is_end_of_generation(token)) {
      stats.stop = StopReason::EndOfGeneration;
      break;
    }
    generated.push_back(token);
    if (!sink(token, decoder.push(token))) {
      stats.stop = StopReason::Callback;
      break;
    }
    if (static_cast<int64_t>(generated.size()) == params.max_tokens) break;
    if (cache_.size() >= cache_.capacity()) {
      stats.stop = StopReason::ContextFull;
      break;
    }
    const model::SequenceInput in{&cache_, std::span(&generated.back(), 1), model::Logits::Last};
    logits = forward_.run(std::span(&in, 1));
  }
  if (const std::string rest = decoder.finish(); !rest.empty()) sink(-1, rest);
  stats.generated_tokens = static_cast<int64_t>(generated.size());
  stats.decode_seconds = seconds_since(decode_start);
  return stats;
}

}  // namespace tokenmill::engine
