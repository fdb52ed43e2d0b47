// engine/: turning a loaded model into generated text for many requests — sampling, the KV
// cache, batching and scheduling. Depends on model/, tokenizer/, kernels/ and common/.
//
// This file: choosing the next token from a row of logits. The order of the steps follows the
// serving engines our users compare us with (vLLM, the OpenAI API): penalties on the raw logits,
// then temperature, then the truncations (top-k, top-p, min-p), then a seeded draw.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "common/random.h"

namespace tokenmill::engine {

struct SamplingParams {
  float temperature = 1.0f;          // 0 = greedy (argmax)
  int32_t top_k = 0;                 // 0 = off
  float top_p = 1.0f;                // 1 = off
  float min_p = 0.0f;                // 0 = off; relative to the most likely token
  float repetition_penalty = 1.0f;   // 1 = off; divides positive logits, multiplies negative ones
  float presence_penalty = 0.0f;     // subtracted once from every token already seen
  float frequency_penalty = 0.0f;    // subtracted per occurrence
  uint64_t seed = 0;

  // Throws tokenmill::Error naming the first parameter out of its valid range.
  void validate() const;
};

struct TokenLogprob {
  int32_t token;
  float logprob;
};

class Sampler {
 public:
  explicit Sampler(const SamplingParams& params);

  // Picks the next token. `seen` holds the tokens the penalties apply to (the caller chooses
  // the window: generated tokens for presence/frequency as in the OpenAI API). The logits are
  // modified in place (penalties and temperature).
  int32_t sample(std::span<float> logits, std::span<const int32_t> seen);

  // The n most likely tokens under the model's own distribution (log-softmax of `logits`),
  // most likely first — what the API reports as top_logprobs.
  static std::vector<TokenLogprob> top_logprobs(std::span<const float> logits, int n);
  static float logprob_of(std::span<const float> logits, int32_t token);

 private:
  void apply_penalties(std::span<float> logits, std::span<const int32_t> seen);

  SamplingParams params_;
  Rng rng_;
  std::vector<uint32_t> counts_;    // per-token occurrence counts, reused between calls
  std::vector<int32_t> touched_;    // tokens whose count is non-zero, to reset cheaply
  std::vector<TokenLogprob> candidates_;
};

}  // namespace tokenmill::engine
