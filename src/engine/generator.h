// Generating text for one prompt: prefill the prompt into a KV cache, then sample one token at
// a time until the token budget, the context or one of the model's end-of-generation tokens
// ends it, streaming each piece of text as soon as it is complete UTF-8.
#pragma once

#include <cstdint>
#include <functional>
#include <span>
#include <string_view>
#include <vector>

#include "engine/sampler.h"
#include "kernels/thread_pool.h"
#include "model/forward.h"
#include "model/model.h"
#include "tokenizer/tokenizer.h"

namespace tokenmill::engine {

struct GenerationParams {
  int64_t max_tokens = 128;
  SamplingParams sampling;
  int64_t prefill_batch = 512;  // prompt tokens per forward call
};

enum class StopReason { EndOfGeneration, Length, ContextFull, Callback };

struct GenerationStats {
  int64_t prompt_tokens = 0;
  int64_t generated_tokens = 0;  // the end-of-generation token not counted
  double prefill_seconds = 0;
  double decode_seconds = 0;
  StopReason stop = StopReason::Length;
};

// Receives each piece of generated text (possibly empty while a character is incomplete);
// returning false stops generation.
using TextSink = std::function<bool(int32_t token, std::string_view text)>;

class Generator {
 public:
  // n_ctx: the KV cache's length in positions (prompt plus generated tokens).
  Generator(const model::Model& model, const tokenizer::Tokenizer& tokenizer, kernels::ThreadPool& pool,
            int64_t n_ctx, gguf::TensorType kv_type = gguf::TensorType::F16);

  // Throws tokenmill::Error for an empty prompt or one longer than the context.
  GenerationStats generate(std::span<const int32_t> prompt, const GenerationParams& params, const TextSink& sink);

 private:
  const model::Model& model_;
  const tokenizer::Tokenizer& tokenizer_;
  model::Forward forward_;
  model::ContiguousCache cache_;
};

}  // namespace tokenmill::engine
