// The transformer forward pass, one skeleton for every architecture: the per-architecture
// differences are data — which tensors the model has (biases, QK norms, post-norms, fused
// q/k/v, fused gate/up, experts) and the settings Model derived from the metadata (RoPE, router).
//
// A call runs a batch that may mix several sequences, each with its own KV cache and its own
// positions (a prompt being prefilled next to other sequences' single decode tokens), which is
// what continuous batching needs. Every projection runs once over all the batch's tokens;
// attention runs per sequence over that sequence's cache.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "kernels/thread_pool.h"
#include "model/kv_cache.h"
#include "model/model.h"

namespace tokenmill::model {

// Which logits a sequence wants back.
enum class Logits { None, Last, All };

struct SequenceInput {
  SequenceCache* cache = nullptr;    // tokens go at positions cache->size(), size() + 1, ...
  std::span<const int32_t> tokens;
  Logits logits = Logits::Last;
};

class Forward {
 public:
  // The model and the pool must outlive this object.
  Forward(const Model& model, kernels::ThreadPool& pool);

  // Runs the batch, appends every token's keys and values to its sequence's cache, and returns
  // the requested logits: for each sequence in batch order, one row of n_vocab floats per token
  // (Logits::All) or for its last token (Logits::Last). The rows stay valid until the next call.
  // Throws tokenmill::Error (leaving every cache unchanged) for token ids outside the
  // vocabulary, a sequence listed twice, or a cache without room.
  std::span<const float> run(std::span<const SequenceInput> batch);

  const Model& model() const { return model_; }

 private:
  struct Token {
    int32_t id;
    int32_t seq;  // index into the batch
    int64_t pos;
  };

  void prepare(std::span<const SequenceInput> batch);
  void attention_block(int layer, std::span<const SequenceInput> batch);
  void ffn_block(int layer, int64_t n_rows);
  void dense_ffn(int layer, int64_t n_rows);
  void moe_ffn(int layer, int64_t n_rows);
  // Keeps only the rows of tokens whose logits are wanted; returns how many remain.
  int64_t keep_output_rows();
  // fn(t) for every token row t < n, spread over the pool when there are enough of them.
  template <class Fn>
  void each_row(int64_t n, Fn&& fn);

  const Model& model_;
  kernels::ThreadPool& pool_;
  std::vector<Token> tokens_;
  std::vector<int64_t> output_rows_;  // token rows whose logits are returned
  // Activations, one row per token: the residual stream and scratch for each stage.
  std::vector<float> x_, h_, q_, k_, v_, att_, o_, ff_a_, ff_b_, ff_out_, rope_cos_, rope_sin_;
  std::vector<float> qkv_;  // output of a fused q/k/v projection, before it is split
  // Mixture-of-experts scratch: router output, chosen experts and their weights per token,
  // and the rows gathered for each expert.
  std::vector<float> router_, moe_weights_, moe_in_, moe_gate_, moe_up_, moe_out_;
  std::vector<int32_t> moe_experts_, moe_row_of_;
  std::vector<float> logits_;
};

}  // namespace tokenmill::model
