#include "model/arch.h"

#include <gtest/gtest.h>

#include <map>

#include "common/error.h"

namespace tokenmill::model {
namespace {

std::map<std::string, std::vector<uint64_t>> shapes_by_name(const std::vector<TensorDesc>& ts) {
  std::map<std::string, std::vector<uint64_t>> m;
  for (const auto& t : ts) m[t.name] = t.shape;
  return m;
}

HParams llama_like() {
  HParams hp;
  hp.n_vocab = 100;
  hp.n_ctx_train = 512;
  hp.n_embd = 64;
  hp.n_block = 2;
  hp.n_head = 4;
  hp.n_head_kv = 2;
  hp.head_dim = 16;
  hp.n_rot = 16;
  hp.n_ff = 96;
  hp.tied_embeddings = true;
  hp.has_rope_freqs = true;
  return hp;
}

TEST(Arch, TensorSpecTableIsIndexedByKind) {
  for (int k = 0; k <= static_cast<int>(TensorKind::NextnSharedHeadNorm); ++k)
    EXPECT_EQ(static_cast<int>(tensor_spec(static_cast<TensorKind>(k)).kind), k);
}

TEST(Arch, NamesRoundTrip) {
  for (const char* name : {"llama", "qwen2", "qwen3", "chatglm", "glm4", "glm4moe", "qwen3moe"}) {
    const auto arch = arch_from_name(name);
    ASSERT_TRUE(arch.has_value()) << name;
    EXPECT_EQ(arch_info(*arch).name, name);
  }
  EXPECT_FALSE(arch_from_name("gpt2").has_value());
  EXPECT_FALSE(arch_from_name("Llama").has_value());
}

TEST(Arch, LlamaTensorsHaveLlamaCppNamesAndShapes) {
  const auto ts = model_tensors(arch_info(Arch::Llama), llama_like());
  const auto m = shapes_by_name(ts);
  EXPECT_EQ(ts.size(), 3u + 2 * 9);  // output_norm, rope_freqs, token_embd; 9 per block
  EXPECT_EQ(m.at("token_embd.weight"), (std::vector<uint64_t>{64, 100}));
  EXPECT_EQ(m.at("rope_freqs.weight"), (std::vector<uint64_t>{8}));
  EXPECT_EQ(m.at("blk.1.attn_q.weight"), (std::vector<uint64_t>{64, 64}));
  EXPECT_EQ(m.at("blk.1.attn_k.weight"), (std::vector<uint64_t>{64, 32}));
  EXPECT_EQ(m.at("blk.0.ffn_down.weight"), (std::vector<uint64_t>{96, 64}));
  EXPECT_EQ(m.count("output.weight"), 0u) << "tied embeddings have no output tensor";
  EXPECT_EQ(m.count("blk.0.attn_q.bias"), 0u);
}

TEST(Arch, TensorsAreInQuantizerOrder) {
  const auto ts = model_tensors(arch_info(Arch::Llama), llama_like());
  EXPECT_EQ(ts.front().name, "output_norm.weight");
  EXPECT_EQ(ts[3].name, "blk.0.attn_k.weight");
  EXPECT_EQ(ts.back().name, "blk.1.ffn_up.weight");
  HParams hp = llama_like();
  hp.n_block = 12;  // blk.10 sorts after blk.9 (by number, not text)
  const auto many = model_tensors(arch_info(Arch::Llama), hp);
  EXPECT_EQ(many.back().name, "blk.11.ffn_up.weight");
  EXPECT_EQ(many[many.size() - 9 - 1].name, "blk.10.ffn_up.weight");
}

TEST(Arch, UntiedModelsHaveAnOutputTensor) {
  HParams hp = llama_like();
  hp.tied_embeddings = false;
  const auto m = shapes_by_name(model_tensors(arch_info(Arch::Llama), hp));
  EXPECT_EQ(m.at("output.weight"), (std::vector<uint64_t>{64, 100}));
}

TEST(Arch, Glm4FusesGateAndUpAndHasPostNorms) {
  HParams hp = llama_like();
  hp.tied_embeddings = false;
  hp.has_rope_freqs = false;
  hp.n_rot = 8;
  const auto m = shapes_by_name(model_tensors(arch_info(Arch::Glm4), hp));
  EXPECT_EQ(m.at("blk.0.ffn_up.weight"), (std::vector<uint64_t>{64, 192}));
  EXPECT_EQ(m.count("blk.0.ffn_gate.weight"), 0u);
  EXPECT_EQ(m.at("blk.0.post_attention_norm.weight"), (std::vector<uint64_t>{64}));
  EXPECT_EQ(m.at("blk.0.post_ffw_norm.weight"), (std::vector<uint64_t>{64}));
  EXPECT_EQ(m.at("blk.0.attn_k.bias"), (std::vector<uint64_t>{32}));
}

TEST(Arch, ChatGlmFusesQkvWithBiasAndGateUp) {
  HParams hp = llama_like();
  hp.tied_embeddings = false;
  hp.has_rope_freqs = false;
  hp.n_rot = 8;
  const auto ts = model_tensors(arch_info(Arch::ChatGlm), hp);
  const auto m = shapes_by_name(ts);
  EXPECT_EQ(ts.size(), 3u + 2 * 7);  // output, output_norm, token_embd; 7 per block
  EXPECT_EQ(m.at("blk.0.attn_qkv.weight"), (std::vector<uint64_t>{64, 64 + 2 * 32}));
  EXPECT_EQ(m.at("blk.1.attn_qkv.bias"), (std::vector<uint64_t>{128}));
  EXPECT_EQ(m.at("blk.0.attn_output.weight"), (std::vector<uint64_t>{64, 64}));
  EXPECT_EQ(m.at("blk.0.ffn_up.weight"), (std::vector<uint64_t>{64, 192}));
  EXPECT_EQ(m.count("blk.0.attn_q.weight"), 0u);
  EXPECT_EQ(m.count("blk.0.ffn_gate.weight"), 0u);
  EXPECT_EQ(m.count("blk.0.post_attention_norm.weight"), 0u);
  // The converter's key order, and no head size keys.
  std::vector<std::string> keys;
  for (const auto& e : hparam_metadata(arch_info(Arch::ChatGlm), hp)) keys.push_back(e.key);
  EXPECT_EQ(keys, (std::vector<std::string>{"chatglm.context_length", "chatglm.embedding_length",
                                            "chatglm.feed_forward_length", "chatglm.block_count",
                                            "chatglm.attention.head_count", "chatglm.attention.head_count_kv",
                                            "chatglm.attention.layer_norm_rms_epsilon",
                                            "chatglm.rope.dimension_count", "chatglm.rope.freq_base"}));
}

TEST(Arch, Glm4MoeHasDenseLeadMoeBlocksAndNextn) {
  HParams hp = llama_like();
  hp.tied_embeddings = false;
  hp.has_rope_freqs = false;
  hp.n_block = 3;
  hp.n_nextn = 1;
  hp.n_rot = 8;
  hp.n_expert = 4;
  hp.n_expert_used = 2;
  hp.n_ff_exp = 32;
  hp.n_expert_shared = 1;
  hp.n_dense_lead = 1;
  const auto m = shapes_by_name(model_tensors(arch_info(Arch::Glm4Moe), hp));
  EXPECT_EQ(m.at("blk.0.ffn_gate.weight"), (std::vector<uint64_t>{64, 96}));
  EXPECT_EQ(m.count("blk.0.ffn_gate_inp.weight"), 0u);
  EXPECT_EQ(m.count("blk.1.ffn_gate.weight"), 0u);
  EXPECT_EQ(m.at("blk.1.ffn_gate_inp.weight"), (std::vector<uint64_t>{64, 4}));
  EXPECT_EQ(m.at("blk.1.exp_probs_b.bias"), (std::vector<uint64_t>{4}));
  EXPECT_EQ(m.at("blk.1.ffn_down_exps.weight"), (std::vector<uint64_t>{32, 64, 4}));
  EXPECT_EQ(m.at("blk.1.ffn_up_shexp.weight"), (std::vector<uint64_t>{64, 32}));
  EXPECT_EQ(m.at("blk.1.attn_q_norm.weight"), (std::vector<uint64_t>{16}));
  // GLM-4.5's pre-FFN norm goes by post_attention_norm; there is no ffn_norm.
  EXPECT_EQ(m.count("blk.1.post_attention_norm.weight"), 1u);
  EXPECT_EQ(m.count("blk.1.ffn_norm.weight"), 0u);
  // The NextN block is a full MoE block plus its own projection and norms.
  EXPECT_EQ(m.at("blk.2.nextn.eh_proj.weight"), (std::vector<uint64_t>{128, 64}));
  EXPECT_EQ(m.count("blk.2.nextn.shared_head_norm.weight"), 1u);
  EXPECT_EQ(m.count("blk.2.ffn_gate_exps.weight"), 1u);
  EXPECT_EQ(m.count("blk.1.nextn.eh_proj.weight"), 0u);
}

TEST(Arch, ValidateRejectsInconsistentHParams) {
  const ArchInfo& llama = arch_info(Arch::Llama);
  HParams hp = llama_like();
  EXPECT_NO_THROW(validate(llama, hp));
  hp.n_head_kv = 3;
  EXPECT_THROW(validate(llama, hp), Error);
  hp = llama_like();
  hp.n_rot = 8;  // partial RoPE: llama.cpp refuses it for llama files
  EXPECT_THROW(validate(llama, hp), Error);
  EXPECT_NO_THROW(validate(arch_info(Arch::Qwen2), [] {
    HParams q = llama_like();
    q.has_rope_freqs = false;
    q.n_rot = 8;
    return q;
  }()));
  hp = llama_like();
  hp.n_expert = 4;  // a dense architecture with experts
  EXPECT_THROW(validate(llama, hp), Error);
  hp = llama_like();
  hp.n_nextn = 1;  // llama has no NextN blocks
  EXPECT_THROW(validate(llama, hp), Error);
  hp = llama_like();
  hp.has_rope_freqs = true;
  EXPECT_THROW(validate(arch_info(Arch::Qwen3), hp), Error);
  // Without a head size key, q must be exactly as wide as the embedding.
  hp = llama_like();
  hp.has_rope_freqs = false;
  hp.n_rot = 8;
  EXPECT_NO_THROW(validate(arch_info(Arch::ChatGlm), hp));
  hp.head_dim = 32;
  EXPECT_THROW(validate(arch_info(Arch::ChatGlm), hp), Error);
  EXPECT_NO_THROW(validate(arch_info(Arch::Qwen3), hp)) << "qwen3 gives its head size";
}

TEST(Arch, HParamKeysHaveConverterValueTypes) {
  HParams hp = llama_like();
  hp.tied_embeddings = false;
  hp.has_rope_freqs = false;
  hp.n_block = 3;
  hp.n_nextn = 1;
  hp.n_rot = 8;
  hp.n_expert = 4;
  hp.n_expert_used = 2;
  hp.n_ff_exp = 32;
  hp.n_expert_shared = 1;
  hp.n_dense_lead = 1;
  hp.expert_gating = 2;
  hp.expert_weights_scale = 2.5f;
  hp.expert_weights_norm = true;
  std::map<std::string, gguf::ValueType> types;
  for (const auto& e : hparam_metadata(arch_info(Arch::Glm4Moe), hp)) types[e.key] = e.value.type();
  EXPECT_EQ(types.at("glm4moe.block_count"), gguf::ValueType::U32);
  EXPECT_EQ(types.at("glm4moe.rope.freq_base"), gguf::ValueType::F32);
  EXPECT_EQ(types.at("glm4moe.attention.layer_norm_rms_epsilon"), gguf::ValueType::F32);
  EXPECT_EQ(types.at("glm4moe.rope.dimension_count"), gguf::ValueType::U32);
  EXPECT_EQ(types.at("glm4moe.expert_weights_scale"), gguf::ValueType::F32);
  EXPECT_EQ(types.at("glm4moe.expert_weights_norm"), gguf::ValueType::BOOL);
  EXPECT_EQ(types.at("glm4moe.expert_gating_func"), gguf::ValueType::U32);
  EXPECT_EQ(types.at("glm4moe.nextn_predict_layers"), gguf::ValueType::U32);
  EXPECT_EQ(types.at("glm4moe.leading_dense_block_count"), gguf::ValueType::U32);
  EXPECT_EQ(types.count("glm4moe.vocab_size"), 0u);
}

TEST(Arch, Qwen2WritesNoHeadSizeKeys) {
  HParams hp = llama_like();
  hp.has_rope_freqs = false;
  std::vector<std::string> keys;
  for (const auto& e : hparam_metadata(arch_info(Arch::Qwen2), hp)) keys.push_back(e.key);
  EXPECT_EQ(keys, (std::vector<std::string>{"qwen2.block_count", "qwen2.context_length", "qwen2.embedding_length",
                                            "qwen2.feed_forward_length", "qwen2.attention.head_count",
                                            "qwen2.attention.head_count_kv", "qwen2.rope.freq_base",
                                            "qwen2.attention.layer_norm_rms_epsilon"}));
}

}  // namespace
}  // namespace tokenmill::model
