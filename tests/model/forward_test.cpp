// The forward pass of every architecture against the naive reference (reference_forward.h), on
// synthetic models: prefill of a whole prompt, token-by-token decode through the KV cache, and
// batches that mix sequences at different positions must all give the reference's logits.
#include "model/forward.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "common/error.h"
#include "common/random.h"
#include "model_files.h"
#include "reference_forward.h"

namespace tokenmill::model {
namespace {

using testing::reference_logits;
using testing::synthetic_model;

std::vector<int32_t> random_tokens(uint64_t seed, size_t n, uint32_t n_vocab) {
  Rng rng(seed);
  std::vector<int32_t> t(n);
  for (auto& id : t) id = static_cast<int32_t>(rng.next_u64() % n_vocab);
  return t;
}

// Largest difference relative to the reference row's largest magnitude.
::testing::AssertionResult logits_close(std::span<const float> actual, const std::vector<float>& expected,
                                        double tolerance) {
  if (actual.size() != expected.size()) return ::testing::AssertionFailure() << "row length differs";
  double worst = 0, scale = 1e-6;
  size_t at = 0;
  for (size_t i = 0; i < expected.size(); ++i) {
    scale = std::max(scale, std::fabs(static_cast<double>(expected[i])));
    const double d = std::fabs(static_cast<double>(actual[i]) - expected[i]);
    if (!(d <= worst)) {
      worst = d;
      at = i;
    }
  }
  if (worst <= tolerance * scale) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << "logit " << at << ": " << actual[at] << " vs " << expected[at]
                                       << " (difference " << worst / scale << " of the largest logit " << scale << ")";
}

struct Case {
  Arch arch;
  Preset preset;
  std::string file_type;
  gguf::TensorType kv_type;
  double tolerance;
};

std::string describe(const Case& c) {
  return std::string(arch_info(c.arch).name) + "_" + std::string(preset_name(c.preset)) + "_" + c.file_type + "_kv" +
         std::string(gguf::tensor_type_name(c.kv_type));
}
bool quantized(const Case& c) { return c.file_type != "F32" && c.file_type != "F16"; }
void PrintTo(const Case& c, std::ostream* os) { *os << describe(c); }
std::string case_name(const ::testing::TestParamInfo<Case>& info) { return describe(info.param); }

class ForwardVsReference : public ::testing::TestWithParam<Case> {
 protected:
  void SetUp() override {
    const Case& c = GetParam();
    std::string path = synthetic_model(c.arch, c.preset, c.file_type);
    // Two blocks (a dense and an MoE one for GLM-4.5) for quantized weights: see kCases.
    if (quantized(c)) path = testing::truncated_model(path, describe(c) + "-2blocks.gguf", 2);
    model_ = std::make_unique<Model>(Model::load(path));
    tokens_ = random_tokens(static_cast<uint64_t>(c.arch) + 100, 11, model_->hparams().n_vocab);
    expected_ = reference_logits(model_->file(), tokens_, c.kv_type);
  }
  ContiguousCache new_cache() const { return ContiguousCache(model_->hparams(), 64, GetParam().kv_type); }

  std::unique_ptr<Model> model_;
  std::vector<int32_t> tokens_;
  std::vector<std::vector<float>> expected_;
  kernels::ThreadPool pool_{2};
};

TEST_P(ForwardVsReference, PrefillAllPositions) {
  Forward forward(*model_, pool_);
  ContiguousCache cache = new_cache();
  const SequenceInput in{&cache, tokens_, Logits::All};
  const std::span<const float> logits = forward.run(std::span(&in, 1));
  const size_t V = model_->hparams().n_vocab;
  ASSERT_EQ(logits.size(), tokens_.size() * V);
  for (size_t t = 0; t < tokens_.size(); ++t)
    EXPECT_TRUE(logits_close(logits.subspan(t * V, V), expected_[t], GetParam().tolerance)) << "position " << t;
  EXPECT_EQ(cache.size(), static_cast<int64_t>(tokens_.size()));
}

TEST_P(ForwardVsReference, DecodeOneTokenAtATime) {
  Forward forward(*model_, pool_);
  ContiguousCache cache = new_cache();
  for (size_t t = 0; t < tokens_.size(); ++t) {
    const SequenceInput in{&cache, std::span(tokens_).subspan(t, 1), Logits::Last};
    EXPECT_TRUE(logits_close(forward.run(std::span(&in, 1)), expected_[t], GetParam().tolerance)) << "position " << t;
  }
}

// One batch holding the rest of a sequence that was partly prefilled, a whole fresh sequence,
// and a sequence that only wants its last logits.
TEST_P(ForwardVsReference, MixedBatchOfSequences) {
  Forward forward(*model_, pool_);
  ContiguousCache a = new_cache(), b = new_cache(), c = new_cache();
  const std::span<const int32_t> all(tokens_);
  const SequenceInput first{&a, all.subspan(0, 4), Logits::None};
  EXPECT_TRUE(forward.run(std::span(&first, 1)).empty());
  const SequenceInput batch[] = {{&a, all.subspan(4), Logits::All},
                                 {&b, all, Logits::All},
                                 {&c, all.subspan(0, 6), Logits::Last}};
  const std::span<const float> logits = forward.run(batch);
  const size_t V = model_->hparams().n_vocab;
  const size_t rest = tokens_.size() - 4;
  ASSERT_EQ(logits.size(), (rest + tokens_.size() + 1) * V);
  for (size_t i = 0; i < rest; ++i)
    EXPECT_TRUE(logits_close(logits.subspan(i * V, V), expected_[4 + i], GetParam().tolerance)) << "a " << 4 + i;
  for (size_t t = 0; t < tokens_.size(); ++t)
    EXPECT_TRUE(logits_close(logits.subspan((rest + t) * V, V), expected_[t], GetParam().tolerance)) << "b " << t;
  EXPECT_TRUE(logits_close(logits.subspan((rest + tokens_.size()) * V, V), expected_[5], GetParam().tolerance));
  EXPECT_EQ(a.size(), static_cast<int64_t>(tokens_.size()));
  EXPECT_EQ(c.size(), 6);
}

// The reference rounds activations for quantized weights, and keys and values for a half or
// 8-bit cache, exactly as the kernels do, so what remains is the order of float additions. But
// any rounding step can turn such a last-bit difference into a whole step of its format (one
// 8-bit step of an activation, one half ulp of a key), and random-weight models amplify that
// from layer to layer. So quantized weights run with an F32 cache on the first two blocks only,
// where a rare flipped rounding stays a small error, and the rounded caches with float weights.
const Case kCases[] = {
    {Arch::Llama, Preset::Tiny, "F32", gguf::TensorType::F32, 2e-4},
    {Arch::Qwen2, Preset::Tiny, "F32", gguf::TensorType::F32, 2e-4},
    {Arch::Qwen3, Preset::Tiny, "F32", gguf::TensorType::F32, 2e-4},
    {Arch::ChatGlm, Preset::Tiny, "F32", gguf::TensorType::F32, 2e-4},
    {Arch::Glm4, Preset::Tiny, "F32", gguf::TensorType::F32, 2e-4},
    {Arch::Glm4Moe, Preset::Tiny, "F32", gguf::TensorType::F32, 2e-4},
    {Arch::Qwen3Moe, Preset::Tiny, "F32", gguf::TensorType::F32, 2e-4},
    {Arch::Llama, Preset::Tiny, "F16", gguf::TensorType::F16, 2e-3},
    {Arch::Glm4Moe, Preset::Small, "F32", gguf::TensorType::F16, 2e-3},
    {Arch::Qwen3, Preset::Tiny, "F32", gguf::TensorType::Q8_0, 2e-2},
    {Arch::Glm4Moe, Preset::Tiny, "Q8_0", gguf::TensorType::F32, 1e-2},
    {Arch::Llama, Preset::Small, "Q4_K_M", gguf::TensorType::F32, 1e-2},
    {Arch::Qwen2, Preset::Small, "Q8_0", gguf::TensorType::F32, 1e-2},
    {Arch::Glm4, Preset::Small, "Q4_K_M", gguf::TensorType::F32, 1e-2},
    {Arch::ChatGlm, Preset::Small, "Q4_K_M", gguf::TensorType::F32, 1e-2},
    {Arch::ChatGlm, Preset::Small, "F32", gguf::TensorType::F16, 2e-3},
    {Arch::Glm4Moe, Preset::Small, "Q4_K_M", gguf::TensorType::F32, 1e-2},
    {Arch::Qwen3Moe, Preset::Small, "Q5_K_M", gguf::TensorType::F32, 1e-2},
    {Arch::Qwen3, Preset::Small, "Q6_K", gguf::TensorType::F32, 1e-2},
    {Arch::Llama, Preset::Small, "Q4_0", gguf::TensorType::F32, 1e-2},
    {Arch::Qwen2, Preset::Small, "Q3_K_M", gguf::TensorType::F32, 1e-2},
    {Arch::Glm4, Preset::Small, "Q2_K", gguf::TensorType::F32, 1e-2},
};

INSTANTIATE_TEST_SUITE_P(Archs, ForwardVsReference, ::testing::ValuesIn(kCases), case_name);

// RoPE scaling from metadata: linear interpolation and YaRN, on a normal-pairing (llama, with
// rope_freqs) and a NeoX-pairing (qwen3) model.
TEST(ForwardRopeScaling, LinearAndYarnMatchReference) {
  kernels::ThreadPool pool(2);
  for (Arch arch : {Arch::Llama, Arch::Qwen3}) {
    const std::string src = synthetic_model(arch, Preset::Tiny, "F32");
    const std::string prefix = std::string(arch_info(arch).name) + ".rope.scaling.";
    using V = std::optional<gguf::Value>;
    const std::pair<std::string, std::vector<std::pair<std::string, V>>> variants[] = {
        {"linear", {{prefix + "type", V("linear")}, {prefix + "factor", V(4.0f)}}},
        {"yarn", {{prefix + "type", V("yarn")}, {prefix + "factor", V(8.0f)},
                  {prefix + "original_context_length", V(uint32_t{64})}}}};
    for (const auto& [label, keys] : variants) {
      SCOPED_TRACE(std::string(arch_info(arch).name) + " " + label);
      const std::string path =
          testing::copy_model(src, std::string(arch_info(arch).name) + "-rope-" + label + ".gguf", keys);
      const Model model = Model::load(path);
      const std::vector<int32_t> tokens = random_tokens(9, 40, model.hparams().n_vocab);
      const auto expected = reference_logits(model.file(), tokens);
      const auto unscaled = reference_logits(Model::load(src).file(), tokens);
      ContiguousCache cache(model.hparams(), 64, gguf::TensorType::F32);
      Forward forward(model, pool);
      const SequenceInput in{&cache, tokens, Logits::All};
      const std::span<const float> logits = forward.run(std::span(&in, 1));
      const size_t V = model.hparams().n_vocab;
      for (size_t t = 0; t < tokens.size(); ++t)
        EXPECT_TRUE(logits_close(logits.subspan(t * V, V), expected[t], 2e-4)) << "position " << t;
      // The scaling must matter, or this test would not test it.
      EXPECT_FALSE(logits_close(logits.subspan((tokens.size() - 1) * V, V), unscaled.back(), 1e-2));
    }
  }
}

class ForwardErrors : public ::testing::Test {
 protected:
  Model model_ = Model::load(synthetic_model(Arch::Llama, Preset::Tiny, "F32"));
  kernels::ThreadPool pool_{1};
};

TEST_F(ForwardErrors, RejectsBadBatchesAndLeavesCachesUnchanged) {
  Forward forward(model_, pool_);
  ContiguousCache cache(model_.hparams(), 4, gguf::TensorType::F32);
  const std::vector<int32_t> ok = {1, 2, 3}, bad = {1, 100000}, too_many = {1, 2, 3, 4, 5};
  const SequenceInput bad_token{&cache, bad, Logits::Last};
  EXPECT_THROW(forward.run(std::span(&bad_token, 1)), Error);
  const SequenceInput overflow{&cache, too_many, Logits::Last};
  EXPECT_THROW(forward.run(std::span(&overflow, 1)), Error);
  const SequenceInput twice[] = {{&cache, ok, Logits::Last}, {&cache, ok, Logits::Last}};
  EXPECT_THROW(forward.run(twice), Error);
  const SequenceInput no_cache{nullptr, ok, Logits::Last};
  EXPECT_THROW(forward.run(std::span(&no_cache, 1)), Error);
  EXPECT_EQ(cache.size(), 0);
  const SequenceInput good{&cache, ok, Logits::Last};
  EXPECT_EQ(forward.run(std::span(&good, 1)).size(), model_.hparams().n_vocab);
  EXPECT_EQ(cache.size(), 3);
}

}  // namespace
}  // namespace tokenmill::model
