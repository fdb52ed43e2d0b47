// Expected types below are worked out by hand from llama-quantize's rules (and were checked
// against llama-quantize --dry-run on the same shapes); they are not produced by the code under
// test.
#include "model/quant_policy.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <random>

#include "model/synthetic.h"

namespace tokenmill::model {
namespace {

using gguf::TensorType;
using T = TensorType;

std::map<std::string, TensorType> plan(Arch arch, Preset preset, std::string_view file_type) {
  const FileType* ft = find_file_type(file_type);
  EXPECT_NE(ft, nullptr) << file_type;
  const HParams hp = preset_hparams(arch, preset, 259);
  const auto tensors = model_tensors(arch_info(arch), hp);
  const auto types = choose_tensor_types(*ft, arch_info(arch), hp, tensors);
  std::map<std::string, TensorType> m;
  for (size_t i = 0; i < tensors.size(); ++i) m[tensors[i].name] = types[i];
  return m;
}

TEST(QuantPolicy, FileTypeNamesAndIds) {
  EXPECT_EQ(find_file_type("Q4_K_M")->id, 15u);
  EXPECT_EQ(find_file_type("q4_k_m")->id, 15u);
  EXPECT_EQ(find_file_type("Q8_0")->id, 7u);
  EXPECT_EQ(find_file_type("BF16")->id, 32u);
  EXPECT_EQ(find_file_type("F32")->id, 0u);
  EXPECT_EQ(find_file_type("Q3_K_L")->base_type, T::Q3_K);
  EXPECT_EQ(find_file_type("Q4_K"), nullptr);
  EXPECT_EQ(find_file_type("IQ2_XXS"), nullptr);
  EXPECT_EQ(find_file_type(""), nullptr);
}

TEST(QuantPolicy, FloatFilesKeepVectorsNormsAndRouterInF32) {
  auto m = plan(Arch::Glm4Moe, Preset::Tiny, "F16");
  EXPECT_EQ(m.at("token_embd.weight"), T::F16);
  EXPECT_EQ(m.at("output.weight"), T::F16);
  EXPECT_EQ(m.at("blk.1.ffn_up_exps.weight"), T::F16);
  EXPECT_EQ(m.at("blk.1.attn_q_norm.weight"), T::F32);
  EXPECT_EQ(m.at("blk.1.attn_q.bias"), T::F32);
  EXPECT_EQ(m.at("blk.1.ffn_gate_inp.weight"), T::F32);
  EXPECT_EQ(m.at("blk.1.exp_probs_b.bias"), T::F32);
  EXPECT_EQ(m.at("blk.2.nextn.eh_proj.weight"), T::F16);
  EXPECT_EQ(m.at("blk.2.nextn.enorm.weight"), T::F32);
  m = plan(Arch::Llama, Preset::Tiny, "BF16");
  EXPECT_EQ(m.at("blk.0.attn_q.weight"), T::BF16);
  EXPECT_EQ(m.at("rope_freqs.weight"), T::F32);
}

// Llama small: 4 blocks, rows of 256 or 768. The _M "more bits" layers of 4 are 2 and 3.
TEST(QuantPolicy, Q4KMOnKQuantShapes) {
  const auto m = plan(Arch::Llama, Preset::Small, "Q4_K_M");
  EXPECT_EQ(m.at("token_embd.weight"), T::Q6_K);  // tied: quantized as the output head
  EXPECT_EQ(m.at("output_norm.weight"), T::F32);
  EXPECT_EQ(m.at("rope_freqs.weight"), T::F32);
  EXPECT_EQ(m.at("blk.0.attn_norm.weight"), T::F32);
  EXPECT_EQ(m.at("blk.0.attn_q.weight"), T::Q4_K);
  EXPECT_EQ(m.at("blk.0.attn_k.weight"), T::Q4_K);
  EXPECT_EQ(m.at("blk.0.attn_v.weight"), T::Q4_K);
  EXPECT_EQ(m.at("blk.1.attn_v.weight"), T::Q4_K);
  EXPECT_EQ(m.at("blk.2.attn_v.weight"), T::Q6_K);
  EXPECT_EQ(m.at("blk.3.attn_v.weight"), T::Q6_K);
  EXPECT_EQ(m.at("blk.0.ffn_down.weight"), T::Q4_K);
  EXPECT_EQ(m.at("blk.2.ffn_down.weight"), T::Q6_K);
  EXPECT_EQ(m.at("blk.3.ffn_down.weight"), T::Q6_K);
  EXPECT_EQ(m.at("blk.3.ffn_up.weight"), T::Q4_K);
  EXPECT_EQ(m.at("blk.3.attn_output.weight"), T::Q4_K);
}

// Llama tiny: rows of 64 or 128 are no multiple of 256, so K-quants fall back.
TEST(QuantPolicy, Q4KMFallsBackWhereRowsDoNotFit) {
  const auto m = plan(Arch::Llama, Preset::Tiny, "Q4_K_M");
  EXPECT_EQ(m.at("token_embd.weight"), T::Q8_0);     // output head with an odd row: Q8_0
  EXPECT_EQ(m.at("blk.0.attn_q.weight"), T::Q5_0);   // Q4_K -> Q5_0
  EXPECT_EQ(m.at("blk.0.attn_v.weight"), T::Q5_0);
  EXPECT_EQ(m.at("blk.1.attn_v.weight"), T::Q8_0);   // more bits: Q6_K -> Q8_0
  EXPECT_EQ(m.at("blk.0.ffn_down.weight"), T::Q5_0);
  EXPECT_EQ(m.at("blk.1.ffn_down.weight"), T::Q8_0);
}

TEST(QuantPolicy, RowsThatFitNoBlockBecomeF16) {
  // Qwen3-MoE tiny experts are 48 wide: not a multiple of 32 either.
  auto m = plan(Arch::Qwen3Moe, Preset::Tiny, "Q4_0");
  EXPECT_EQ(m.at("blk.0.ffn_down_exps.weight"), T::F16);
  EXPECT_EQ(m.at("blk.0.ffn_gate_exps.weight"), T::Q4_0);  // rows of 64
  EXPECT_EQ(m.at("blk.0.ffn_gate_inp.weight"), T::F32);
  EXPECT_EQ(m.at("output.weight"), T::Q8_0);  // Q6_K wanted, 64 does not fit 256
  EXPECT_EQ(m.at("token_embd.weight"), T::Q4_0);
  m = plan(Arch::Qwen3Moe, Preset::Tiny, "Q8_0");
  EXPECT_EQ(m.at("blk.1.ffn_down_exps.weight"), T::F16);
  EXPECT_EQ(m.at("output.weight"), T::Q8_0);
}

TEST(QuantPolicy, OutputHeadUnderLegacyTypes) {
  EXPECT_EQ(plan(Arch::Glm4, Preset::Small, "Q4_0").at("output.weight"), T::Q6_K);
  EXPECT_EQ(plan(Arch::Glm4, Preset::Small, "Q4_0").at("token_embd.weight"), T::Q4_0);
  EXPECT_EQ(plan(Arch::Glm4, Preset::Small, "Q8_0").at("output.weight"), T::Q8_0);
  EXPECT_EQ(plan(Arch::Glm4, Preset::Small, "Q5_1").at("blk.0.ffn_up.weight"), T::Q5_1);
}

TEST(QuantPolicy, EightExpertModelsGetMixtralRules) {
  const auto m = plan(Arch::Qwen3Moe, Preset::Small, "Q4_K_M");
  EXPECT_EQ(m.at("blk.0.attn_v.weight"), T::Q8_0);
  EXPECT_EQ(m.at("blk.0.attn_k.weight"), T::Q8_0);
  EXPECT_EQ(m.at("blk.0.attn_output.weight"), T::Q5_K);
  EXPECT_EQ(m.at("blk.0.attn_q.weight"), T::Q4_K);
  EXPECT_EQ(m.at("blk.2.ffn_down_exps.weight"), T::Q6_K);
  EXPECT_EQ(m.at("blk.1.ffn_down_exps.weight"), T::Q4_K);
}

TEST(QuantPolicy, ExpertLayersComeFromNamesIncludingNextn) {
  // GLM-4.5 small: 5 blocks, the last a NextN block; of 5, layers 2 and 4 get more bits.
  const auto m = plan(Arch::Glm4Moe, Preset::Small, "Q4_K_M");
  EXPECT_EQ(m.at("blk.0.ffn_down.weight"), T::Q4_K);
  EXPECT_EQ(m.at("blk.1.ffn_down_exps.weight"), T::Q4_K);
  EXPECT_EQ(m.at("blk.1.ffn_down_shexp.weight"), T::Q4_K);
  EXPECT_EQ(m.at("blk.2.ffn_down_exps.weight"), T::Q6_K);
  EXPECT_EQ(m.at("blk.2.ffn_down_shexp.weight"), T::Q6_K);
  EXPECT_EQ(m.at("blk.4.ffn_down_exps.weight"), T::Q6_K);
  EXPECT_EQ(m.at("blk.4.nextn.eh_proj.weight"), T::Q4_K);
  EXPECT_EQ(m.at("output.weight"), T::Q6_K);
  EXPECT_EQ(m.at("token_embd.weight"), T::Q4_K);
}

TEST(QuantPolicy, Q3KMAndQ2KMixtures) {
  auto m = plan(Arch::Llama, Preset::Small, "Q3_K_M");
  EXPECT_EQ(m.at("blk.0.attn_v.weight"), T::Q5_K);
  EXPECT_EQ(m.at("blk.1.attn_v.weight"), T::Q5_K);
  EXPECT_EQ(m.at("blk.2.attn_v.weight"), T::Q4_K);
  EXPECT_EQ(m.at("blk.0.attn_output.weight"), T::Q4_K);
  EXPECT_EQ(m.at("blk.0.ffn_down.weight"), T::Q4_K);
  EXPECT_EQ(m.at("blk.0.ffn_up.weight"), T::Q3_K);
  m = plan(Arch::Llama, Preset::Small, "Q2_K");  // 8 heads over 2 KV heads: GQA 4
  EXPECT_EQ(m.at("blk.0.attn_v.weight"), T::Q4_K);
  EXPECT_EQ(m.at("blk.0.ffn_down.weight"), T::Q3_K);
  EXPECT_EQ(m.at("blk.0.attn_output.weight"), T::Q3_K);
  EXPECT_EQ(m.at("blk.0.ffn_gate.weight"), T::Q2_K);
  EXPECT_EQ(plan(Arch::Qwen2, Preset::Small, "Q2_K").at("blk.0.attn_v.weight"), T::Q3_K);  // GQA 2
}

// GLM-4-9B small: 4 blocks. llama-quantize gives the fused attn_qkv attn_v's rules (its own
// attn_qkv rule comes after the attn_v-like one and never applies to these types).
TEST(QuantPolicy, FusedQkvFollowsAttnVRules) {
  auto m = plan(Arch::ChatGlm, Preset::Small, "Q4_K_M");
  EXPECT_EQ(m.at("blk.0.attn_qkv.weight"), T::Q4_K);
  EXPECT_EQ(m.at("blk.1.attn_qkv.weight"), T::Q4_K);
  EXPECT_EQ(m.at("blk.2.attn_qkv.weight"), T::Q6_K);
  EXPECT_EQ(m.at("blk.3.attn_qkv.weight"), T::Q6_K);
  EXPECT_EQ(m.at("blk.0.attn_qkv.bias"), T::F32);
  EXPECT_EQ(m.at("blk.3.ffn_up.weight"), T::Q4_K);
  EXPECT_EQ(m.at("blk.3.ffn_down.weight"), T::Q6_K);
  EXPECT_EQ(m.at("output.weight"), T::Q6_K);
  EXPECT_EQ(m.at("token_embd.weight"), T::Q4_K);
  m = plan(Arch::ChatGlm, Preset::Small, "Q3_K_M");
  EXPECT_EQ(m.at("blk.1.attn_qkv.weight"), T::Q5_K);
  EXPECT_EQ(m.at("blk.2.attn_qkv.weight"), T::Q4_K);
  EXPECT_EQ(plan(Arch::ChatGlm, Preset::Small, "Q2_K").at("blk.0.attn_qkv.weight"), T::Q3_K);  // GQA 2
}

TEST(QuantPolicy, ResultDoesNotDependOnInputOrder) {
  const FileType* ft = find_file_type("Q4_K_M");
  const HParams hp = preset_hparams(Arch::Qwen2, Preset::B1, 1000);
  auto tensors = model_tensors(arch_info(Arch::Qwen2), hp);
  const auto types = choose_tensor_types(*ft, arch_info(Arch::Qwen2), hp, tensors);
  std::map<std::string, TensorType> expected;
  for (size_t i = 0; i < tensors.size(); ++i) expected[tensors[i].name] = types[i];
  std::mt19937 gen(7);
  std::shuffle(tensors.begin(), tensors.end(), gen);
  const auto shuffled = choose_tensor_types(*ft, arch_info(Arch::Qwen2), hp, tensors);
  for (size_t i = 0; i < tensors.size(); ++i) EXPECT_EQ(shuffled[i], expected.at(tensors[i].name)) << tensors[i].name;
  // 28 blocks: more bits for 0-2, 5, 8, ..., 23, 24-27.
  EXPECT_EQ(expected.at("blk.3.attn_v.weight"), T::Q4_K);
  EXPECT_EQ(expected.at("blk.5.attn_v.weight"), T::Q6_K);
  EXPECT_EQ(expected.at("blk.24.ffn_down.weight"), T::Q6_K);
}

}  // namespace
}  // namespace tokenmill::model
