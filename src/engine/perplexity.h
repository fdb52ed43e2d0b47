// Perplexity of a model on a text, scored the way llama.cpp's perplexity tool scores it, so the
// two can be compared number for number: the tokens are cut into windows of n_ctx, each window
// starts afresh (its first token replaced by BOS when the model adds one), and only the second
// half of each window is scored, so every scored token has at least n_ctx/2 tokens of context.
#pragma once

#include <cstdint>
#include <functional>
#include <span>

#include "kernels/thread_pool.h"
#include "model/model.h"

namespace tokenmill::engine {

struct PerplexityParams {
  int64_t n_ctx = 512;
  int64_t n_batch = 512;     // tokens per forward call; windows shorter than this run side by side
  int64_t max_chunks = -1;   // -1: every whole window of the text
  int32_t bos = -1;          // put at the start of every window; -1 when the model adds none
  gguf::TensorType kv_type = gguf::TensorType::F16;
};

struct PerplexityResult {
  int64_t n_chunks = 0;
  int64_t n_scored = 0;  // tokens whose probability was scored
  double mean_nll = 0;   // mean negative log-likelihood, nats per token
  double perplexity = 0;
  double perplexity_error = 0;  // standard error, propagated from the NLL's
  double seconds = 0;
};

// Called after each window with its 1-based number and the perplexity so far.
using ChunkDone = std::function<void(int64_t chunk, double perplexity)>;

// Throws tokenmill::Error when the text has fewer than 2 * n_ctx tokens (as llama.cpp does) or
// the parameters are out of range.
PerplexityResult perplexity(const model::Model& model, kernels::ThreadPool& pool, std::span<const int32_t> tokens,
                            const PerplexityParams& params, const ChunkDone& on_chunk = {});

}  // namespace tokenmill::engine
