// The generation loop on a synthetic model: greedy decoding follows the argmax of the forward
// pass step by step, the model's end-of-generation token ends it (and is not emitted), the
// token budget and the context bound it, and the streamed text is the detokenized tokens.
#include "engine/generator.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <string>
#include <vector>

#include "common/error.h"
#include "model/model_files.h"

namespace tokenmill::engine {
namespace {

using model::Arch;
using model::Preset;

struct Generated {
  std::vector<int32_t> tokens;
  std::string text;
  GenerationStats stats;
};

class GeneratorTest : public ::testing::Test {
 protected:
  Generated generate(const model::Model& m, int64_t max_tokens, int64_t n_ctx = 64, float temperature = 0.0f) {
    const auto tok = tokenizer::Tokenizer::from_gguf(m.file());
    Generator g(m, tok, pool_, n_ctx);
    GenerationParams params;
    params.max_tokens = max_tokens;
    params.sampling.temperature = temperature;
    params.sampling.seed = 5;
    params.prefill_batch = 2;  // the prompt in several calls
    Generated r;
    r.stats = g.generate(prompt_, params, [&](int32_t token, std::string_view text) {
      if (token >= 0) r.tokens.push_back(token);
      r.text += text;
      return true;
    });
    return r;
  }

  const std::string path_ = testing::synthetic_model(Arch::Llama, Preset::Tiny, "F32");
  const std::vector<int32_t> prompt_ = {1, 72, 101, 108, 108, 111};
  kernels::ThreadPool pool_{2};
};

TEST_F(GeneratorTest, GreedyFollowsTheArgmaxOfTheForwardPass) {
  const model::Model m = model::Model::load(path_);
  const Generated run = generate(m, 12);
  ASSERT_FALSE(run.tokens.empty());
  // The same chain computed directly: feed the prompt, then each argmax.
  model::Forward forward(m, pool_);
  model::ContiguousCache cache(m.hparams(), 64);
  std::vector<int32_t> feed = prompt_;
  for (int32_t expected : run.tokens) {
    const model::SequenceInput in{&cache, feed, model::Logits::Last};
    const std::span<const float> logits = forward.run(std::span(&in, 1));
    const auto best = static_cast<int32_t>(std::max_element(logits.begin(), logits.end()) - logits.begin());
    EXPECT_EQ(best, expected);
    feed = {best};
  }
  EXPECT_EQ(run.stats.prompt_tokens, static_cast<int64_t>(prompt_.size()));
  EXPECT_EQ(run.stats.generated_tokens, static_cast<int64_t>(run.tokens.size()));
}

TEST_F(GeneratorTest, StopsAtTheEndOfGenerationTokenWithoutEmittingIt) {
  const Generated free_run = generate(model::Model::load(path_), 10);
  ASSERT_EQ(free_run.tokens.size(), 10u);
  // Make the fourth new token (one not generated before it) the model's end-of-generation token.
  size_t k = 3;
  while (k < free_run.tokens.size() &&
         std::count(free_run.tokens.begin(), free_run.tokens.begin() + k, free_run.tokens[k]) > 0)
    ++k;
  ASSERT_LT(k, free_run.tokens.size());
  const std::string eos_path = testing::copy_model(
      path_, "llama-tiny-eos.gguf", {{"tokenizer.ggml.eos_token_id", gguf::Value(static_cast<uint32_t>(free_run.tokens[k]))}});
  const Generated stopped = generate(model::Model::load(eos_path), 10);
  EXPECT_EQ(stopped.stats.stop, StopReason::EndOfGeneration);
  EXPECT_EQ(stopped.tokens, std::vector<int32_t>(free_run.tokens.begin(), free_run.tokens.begin() + k));
}

TEST_F(GeneratorTest, BudgetAndContextBoundGeneration) {
  const model::Model m = model::Model::load(path_);
  const Generated budget = generate(m, 5);
  EXPECT_EQ(budget.stats.stop, StopReason::Length);
  EXPECT_EQ(budget.tokens.size(), 5u);
  // Room for the prompt and three more positions: the third new token is the last one fed.
  const Generated full = generate(m, 50, static_cast<int64_t>(prompt_.size()) + 3);
  EXPECT_EQ(full.stats.stop, StopReason::ContextFull);
  EXPECT_EQ(full.tokens.size(), 4u);
  EXPECT_THROW(generate(m, 5, static_cast<int64_t>(prompt_.size())), Error) << "prompt fills the context";
}

TEST_F(GeneratorTest, StreamedTextIsTheDetokenizedTokens) {
  const model::Model m = model::Model::load(path_);
  const Generated run = generate(m, 24, 64, 1.0f);
  const auto tok = tokenizer::Tokenizer::from_gguf(m.file());
  EXPECT_EQ(run.text, tok.detokenize(run.tokens));
  // Seeded sampling repeats itself.
  EXPECT_EQ(generate(m, 24, 64, 1.0f).tokens, run.tokens);
}

}  // namespace
}  // namespace tokenmill::engine
