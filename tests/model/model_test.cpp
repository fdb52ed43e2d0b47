// Loading: every architecture's synthetic model loads with the settings its family implies, and
// files with missing, inconsistent or unsupported contents fail with an error naming the problem.
#include "model/model.h"

#include <gtest/gtest.h>

#include <string>

#include "common/error.h"
#include "model/kv_cache.h"
#include "model_files.h"

namespace tokenmill::model {
namespace {

using testing::copy_model;
using testing::synthetic_model;
using V = std::optional<gguf::Value>;

TEST(ModelLoad, DerivesPerArchitectureSettings) {
  const Model llama = Model::load(synthetic_model(Arch::Llama, Preset::Tiny, "F32"));
  EXPECT_EQ(llama.rope().mode, kernels::RopeMode::normal);
  EXPECT_NE(llama.rope().freq_factors, nullptr) << "llama 3 rope_freqs";
  EXPECT_EQ(&llama.output(), &llama.global(TensorKind::TokenEmbd)) << "tied embeddings";
  EXPECT_FLOAT_EQ(llama.attention_scale(), 0.25f);

  const Model glm4 = Model::load(synthetic_model(Arch::Glm4, Preset::Tiny, "F32"));
  EXPECT_EQ(glm4.rope().mode, kernels::RopeMode::normal);
  EXPECT_EQ(glm4.rope().n_rot, 8) << "partial rotary";
  EXPECT_TRUE(glm4.block(0, TensorKind::FfnGateUp));
  EXPECT_FALSE(glm4.block(0, TensorKind::FfnGate));

  const Model chatglm = Model::load(synthetic_model(Arch::ChatGlm, Preset::Tiny, "F32"));
  EXPECT_EQ(chatglm.rope().mode, kernels::RopeMode::normal);
  EXPECT_EQ(chatglm.rope().n_rot, 8) << "partial rotary";
  EXPECT_EQ(chatglm.hparams().head_dim, 16u) << "embedding_length / head_count";
  EXPECT_TRUE(chatglm.block(1, TensorKind::AttnQkv));
  EXPECT_TRUE(chatglm.block(1, TensorKind::AttnQkvBias));
  EXPECT_FALSE(chatglm.block(1, TensorKind::AttnQ));
  EXPECT_NE(&chatglm.output(), &chatglm.global(TensorKind::TokenEmbd)) << "separate output head";

  const Model glm45 = Model::load(synthetic_model(Arch::Glm4Moe, Preset::Tiny, "F32"));
  EXPECT_EQ(glm45.rope().mode, kernels::RopeMode::neox);
  EXPECT_EQ(glm45.routing().gating, Routing::Gating::Sigmoid);
  EXPECT_TRUE(glm45.routing().normalize);
  EXPECT_FLOAT_EQ(glm45.routing().scale, 2.5f);
  EXPECT_EQ(glm45.hparams().n_layer(), 2u) << "the NextN block is loaded but does not run";
  EXPECT_TRUE(glm45.block(2, TensorKind::NextnEhProj));
  EXPECT_FALSE(glm45.block(0, TensorKind::FfnGateInp)) << "leading dense block";
  EXPECT_TRUE(glm45.block(1, TensorKind::FfnGateInp));

  const Model qwen3moe = Model::load(synthetic_model(Arch::Qwen3Moe, Preset::Tiny, "F32"));
  EXPECT_EQ(qwen3moe.routing().gating, Routing::Gating::Softmax);
  EXPECT_TRUE(qwen3moe.routing().normalize);
  EXPECT_FLOAT_EQ(qwen3moe.routing().scale, 1.0f);
}

TEST(ModelLoad, BytesPerTokenCountsOnlyActiveExperts) {
  const Model m = Model::load(synthetic_model(Arch::Qwen3Moe, Preset::Tiny, "F32"));
  const HParams& hp = m.hparams();
  uint64_t all = m.output().info->n_bytes;
  for (const auto& t : m.file().tensors())
    if (t.shape.size() >= 2 && t.name.rfind("blk.", 0) == 0) all += t.n_bytes;
  const uint64_t experts_per_block = 3ull * hp.n_embd * hp.n_ff_exp * hp.n_expert * sizeof(float);
  const uint64_t unused = hp.n_layer() * experts_per_block / hp.n_expert * (hp.n_expert - hp.n_expert_used);
  EXPECT_EQ(m.bytes_per_token(), all - unused);
}

TEST(ModelLoad, ReportsProgressUpToTheTotal) {
  uint64_t last = 0, total = 0;
  int calls = 0;
  Model::load(synthetic_model(Arch::Llama, Preset::Tiny, "F32"), [&](uint64_t done, uint64_t all) {
    EXPECT_GE(done, last);
    last = done;
    total = all;
    ++calls;
  });
  EXPECT_GT(calls, 1);
  EXPECT_EQ(last, total);
}

// The error message must name what is wrong.
void expect_load_error(const std::string& path, const std::string& fragment) {
  try {
    Model::load(path);
    ADD_FAILURE() << "loading " << path << " should fail";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(fragment), std::string::npos) << e.what();
  }
}

TEST(ModelLoad, RejectsBadFiles) {
  const std::string src = synthetic_model(Arch::Llama, Preset::Tiny, "F32");
  expect_load_error(copy_model(src, "bad-no-eps.gguf", {{"llama.attention.layer_norm_rms_epsilon", V()}}),
                    "llama.attention.layer_norm_rms_epsilon");
  expect_load_error(copy_model(src, "bad-arch.gguf", {{"general.architecture", V("mamba")}}), "mamba");
  expect_load_error(copy_model(src, "bad-heads.gguf", {{"llama.attention.head_count_kv", V(uint32_t{3})}}),
                    "head_count");
  expect_load_error(copy_model(src, "bad-rope.gguf", {{"llama.rope.scaling.type", V("longrope")}}), "longrope");
  expect_load_error(copy_model(src, "bad-eps-type.gguf", {{"llama.attention.layer_norm_rms_epsilon", V("small")}}),
                    "layer_norm_rms_epsilon");
  expect_load_error(copy_model(src, "bad-missing.gguf", {},
                               [](testing::TensorEdit& t) { return t.name != "blk.1.attn_k.weight"; }),
                    "missing tensor blk.1.attn_k.weight");
  expect_load_error(copy_model(src, "bad-shape.gguf", {},
                               [](testing::TensorEdit& t) {
                                 if (t.name == "blk.0.attn_k.weight") std::swap(t.shape[0], t.shape[1]);
                                 return true;
                               }),
                    "blk.0.attn_k.weight has shape [32, 64], expected [64, 32]");
  const testing::TensorEdit bias{"blk.0.ffn_norm.bias", gguf::TensorType::F32, {64}};
  expect_load_error(copy_model(src, "bad-extra.gguf", {}, {}, {bias}), "unexpected tensor blk.0.ffn_norm.bias");
  const testing::TensorEdit odd{"blk.x.attn_norm.weight", gguf::TensorType::F32, {64}};
  expect_load_error(copy_model(src, "bad-odd.gguf", {}, {}, {odd}), "unexpected tensor blk.x.attn_norm.weight");
  expect_load_error(copy_model(src, "bad-type.gguf", {},
                               [](testing::TensorEdit& t) {
                                 if (t.name == "output_norm.weight") t.type = gguf::TensorType::I32;
                                 return true;
                               }),
                    "output_norm.weight has type I32");
  // GLM-4-9B files give no head size: the heads must divide the embedding.
  const std::string chatglm = synthetic_model(Arch::ChatGlm, Preset::Tiny, "F32");
  expect_load_error(copy_model(chatglm, "bad-chatglm-heads.gguf", {{"chatglm.attention.head_count", V(uint32_t{6})}}),
                    "embedding_length must be a multiple of head_count");
  expect_load_error(copy_model(chatglm, "bad-chatglm-rot.gguf", {{"chatglm.rope.dimension_count", V(uint32_t{7})}}),
                    "rotary dimensions");
  expect_load_error(copy_model(chatglm, "bad-chatglm-qkv.gguf", {},
                               [](testing::TensorEdit& t) {
                                 if (t.name == "blk.0.attn_qkv.bias") t.shape = {32, 4};  // same bytes, wrong shape
                                 return true;
                               }),
                    "blk.0.attn_qkv.bias has shape [32, 4], expected [128]");
  const std::string moe = synthetic_model(Arch::Glm4Moe, Preset::Tiny, "F32");
  expect_load_error(copy_model(moe, "bad-gating.gguf", {{"glm4moe.expert_gating_func", V(uint32_t{7})}}),
                    "expert_gating_func");
}

// NextN blocks never run: tensors there that the table does not list are accepted.
TEST(ModelLoad, ToleratesExtraTensorsInNextnBlocks) {
  const std::string src = synthetic_model(Arch::Glm4Moe, Preset::Tiny, "F32");
  const testing::TensorEdit extra{"blk.2.nextn.embed_tokens.weight", gguf::TensorType::F32, {64, 259}};
  const Model m = Model::load(copy_model(src, "nextn-extra.gguf", {}, {}, {extra}));
  EXPECT_EQ(m.hparams().n_layer(), 2u);
}

TEST(KvCache, TracksPositionsAndCapacity) {
  const Model m = Model::load(synthetic_model(Arch::Qwen3, Preset::Tiny, "F32"));
  ContiguousCache cache(m.hparams(), 8, gguf::TensorType::Q8_0);  // head_dim 32
  EXPECT_EQ(cache.capacity(), 8);
  cache.reserve(8);
  EXPECT_THROW(cache.reserve(9), Error);
  cache.commit(5);
  EXPECT_EQ(cache.size(), 5);
  EXPECT_THROW(cache.commit(4), Error);
  cache.truncate(2);
  EXPECT_EQ(cache.size(), 2);
  EXPECT_THROW(cache.truncate(3), Error);
  const kernels::KvView k = cache.keys(1);
  EXPECT_EQ(k.type, gguf::TensorType::Q8_0);
  EXPECT_EQ(k.head_stride, 34);
  EXPECT_EQ(k.pos_stride, 34 * m.hparams().n_head_kv);
  EXPECT_EQ(cache.key_row(1, 3), static_cast<const uint8_t*>(k.data) + 3 * k.pos_stride);
  EXPECT_NE(cache.value_row(1, 3), cache.key_row(1, 3));

  const Model llama = Model::load(synthetic_model(Arch::Llama, Preset::Tiny, "F32"));  // head_dim 16
  EXPECT_THROW(ContiguousCache(llama.hparams(), 8, gguf::TensorType::Q8_0), Error);
  EXPECT_THROW(ContiguousCache(llama.hparams(), 8, gguf::TensorType::Q4_K), Error);
  EXPECT_THROW(ContiguousCache(llama.hparams(), 0, gguf::TensorType::F16), Error);
}

}  // namespace
}  // namespace tokenmill::model
