#include "model/synthetic.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>

#include "common/error.h"
#include "gguf/writer.h"
#include "kernels/formats.h"

namespace tokenmill::model {
namespace {

namespace fs = std::filesystem;

class SyntheticTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("tokenmill_synthetic_" + std::to_string(::getpid()));
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }

  std::string write(Arch arch, Preset preset, std::string_view quant, uint64_t seed = 1, unsigned threads = 2,
                    const std::string& name = "") {
    const std::string path = (dir_ / (name.empty() ? std::string(arch_info(arch).name) + "-" +
                                                         std::string(preset_name(preset)) + "-" +
                                                         std::string(quant) + ".gguf"
                                                   : name))
                                 .string();
    const FileType* ft = find_file_type(quant);
    EXPECT_NE(ft, nullptr);
    write_synthetic_model({arch, preset, ft, byte_vocabulary(), seed}, path, threads);
    return path;
  }

  fs::path dir_;
};

std::string read_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), {}};
}

std::vector<float> dequantize(const gguf::TensorInfo& t) {
  std::vector<float> out(t.n_elements());
  const uint64_t ne0 = t.shape[0];
  const uint64_t row_bytes = gguf::row_bytes(t.type, ne0);
  for (uint64_t r = 0; r < t.n_rows(); ++r)
    kernels::dequantize_row(t.type, t.data + r * row_bytes, out.data() + r * ne0, static_cast<int64_t>(ne0));
  return out;
}

struct Stats {
  double mean = 0;
  double std = 0;
};

Stats stats(const std::vector<float>& xs) {
  Stats s;
  for (float x : xs) s.mean += x;
  s.mean /= static_cast<double>(xs.size());
  for (float x : xs) s.std += (x - s.mean) * (x - s.mean);
  s.std = std::sqrt(s.std / static_cast<double>(xs.size()));
  return s;
}

void expect_hparams_equal(const HParams& a, const HParams& b) {
  EXPECT_EQ(a.n_vocab, b.n_vocab);
  EXPECT_EQ(a.n_ctx_train, b.n_ctx_train);
  EXPECT_EQ(a.n_embd, b.n_embd);
  EXPECT_EQ(a.n_block, b.n_block);
  EXPECT_EQ(a.n_nextn, b.n_nextn);
  EXPECT_EQ(a.n_head, b.n_head);
  EXPECT_EQ(a.n_head_kv, b.n_head_kv);
  EXPECT_EQ(a.head_dim, b.head_dim);
  EXPECT_EQ(a.n_rot, b.n_rot);
  EXPECT_EQ(a.n_ff, b.n_ff);
  EXPECT_EQ(a.n_expert, b.n_expert);
  EXPECT_EQ(a.n_expert_used, b.n_expert_used);
  EXPECT_EQ(a.n_ff_exp, b.n_ff_exp);
  EXPECT_EQ(a.n_expert_shared, b.n_expert_shared);
  EXPECT_EQ(a.n_dense_lead, b.n_dense_lead);
  EXPECT_EQ(a.expert_gating, b.expert_gating);
  EXPECT_EQ(a.expert_weights_scale, b.expert_weights_scale);
  EXPECT_EQ(a.expert_weights_norm, b.expert_weights_norm);
  EXPECT_EQ(a.rope_freq_base, b.rope_freq_base);
  EXPECT_EQ(a.rms_eps, b.rms_eps);
  EXPECT_EQ(a.tied_embeddings, b.tied_embeddings);
  EXPECT_EQ(a.has_rope_freqs, b.has_rope_freqs);
}

TEST_F(SyntheticTest, EveryArchAndFileTypeWritesTheLayoutItPlans) {
  // Every file type on the tiny shapes (fallback types), the K-quant mixture on the small ones.
  const std::vector<std::pair<Preset, const char*>> cases = {
      {Preset::Tiny, "F32"}, {Preset::Tiny, "F16"}, {Preset::Tiny, "Q8_0"}, {Preset::Tiny, "Q4_K_M"},
      {Preset::Small, "Q4_K_M"}};
  for (const ArchInfo& arch : all_archs()) {
    for (const auto& [preset, quant] : cases) {
      SCOPED_TRACE(std::string(arch.name) + " " + std::string(preset_name(preset)) + " " + quant);
      const std::string path = write(arch.arch, preset, quant);
      const gguf::File f = gguf::File::open(path);
      EXPECT_EQ(f.architecture(), arch.name);
      EXPECT_EQ(f.get_uint("general.file_type"), find_file_type(quant)->id);
      EXPECT_EQ(f.get_uint("general.quantization_version"), 2u);
      EXPECT_EQ(f.get_string("tokenizer.ggml.model"), "llama");

      const HParams hp = preset_hparams(arch.arch, preset, 259);
      expect_hparams_equal(read_hparams(f, arch), hp);
      const auto planned = model_tensors(arch, hp);
      const auto types = choose_tensor_types(*find_file_type(quant), arch, hp, planned);
      ASSERT_EQ(f.tensors().size(), planned.size());
      for (size_t i = 0; i < planned.size(); ++i) {
        EXPECT_EQ(f.tensors()[i].name, planned[i].name);
        EXPECT_EQ(f.tensors()[i].shape, planned[i].shape) << planned[i].name;
        EXPECT_EQ(f.tensors()[i].type, types[i]) << planned[i].name;
      }
      // Norms stay F32 in every file type.
      EXPECT_EQ(f.find_tensor("output_norm.weight")->type, gguf::TensorType::F32);
      EXPECT_EQ(f.find_tensor("blk.0.attn_norm.weight")->type, gguf::TensorType::F32);
    }
  }
}

TEST_F(SyntheticTest, KQuantFileHoldsTheExpectedMixture) {
  const gguf::File f = gguf::File::open(write(Arch::Llama, Preset::Small, "Q4_K_M"));
  EXPECT_EQ(f.find_tensor("token_embd.weight")->type, gguf::TensorType::Q6_K);
  EXPECT_EQ(f.find_tensor("blk.0.attn_q.weight")->type, gguf::TensorType::Q4_K);
  EXPECT_EQ(f.find_tensor("blk.3.attn_v.weight")->type, gguf::TensorType::Q6_K);
  EXPECT_EQ(f.find_tensor("rope_freqs.weight")->type, gguf::TensorType::F32);
  const gguf::File g = gguf::File::open(write(Arch::Glm4, Preset::Tiny, "Q4_K_M"));
  EXPECT_EQ(g.find_tensor("output.weight")->type, gguf::TensorType::Q8_0);         // 64-wide rows
  EXPECT_EQ(g.find_tensor("blk.0.attn_output.weight")->type, gguf::TensorType::Q5_0);
}

TEST_F(SyntheticTest, SameSeedSameBytesWhateverTheThreads) {
  const std::string a = write(Arch::Glm4Moe, Preset::Tiny, "Q4_K_M", 42, 2, "a.gguf");
  const std::string b = write(Arch::Glm4Moe, Preset::Tiny, "Q4_K_M", 42, 1, "b.gguf");
  const std::string c = write(Arch::Glm4Moe, Preset::Tiny, "Q4_K_M", 43, 2, "c.gguf");
  EXPECT_EQ(read_bytes(a), read_bytes(b));
  EXPECT_NE(read_bytes(a), read_bytes(c));
  // Large tensors span many random-stream chunks; thread count must not matter there either.
  const std::string d = write(Arch::Qwen3, Preset::Small, "F16", 5, 1, "d.gguf");
  const std::string e = write(Arch::Qwen3, Preset::Small, "F16", 5, 3, "e.gguf");
  EXPECT_EQ(read_bytes(d), read_bytes(e));
}

TEST_F(SyntheticTest, DifferentTensorsGetDifferentValues) {
  const gguf::File f = gguf::File::open(write(Arch::Llama, Preset::Tiny, "F32"));
  const auto q0 = dequantize(*f.find_tensor("blk.0.attn_q.weight"));
  const auto q1 = dequantize(*f.find_tensor("blk.1.attn_q.weight"));
  EXPECT_NE(q0, q1);
}

// The intended scales (docs/models.md): q/k std sqrt(2/n_embd), v and embeddings 1/sqrt(n_embd),
// the output norm 3, other norms 1 +- 0.1, QK-norms sqrt(2) +- 0.1, biases 0.1, attention output
// 1/sqrt(2 n_layer) / sqrt(q_dim).
TEST_F(SyntheticTest, WeightsHaveTheIntendedScale) {
  for (const char* quant : {"F32", "Q4_K_M"}) {
    SCOPED_TRACE(quant);
    const double tol = std::string(quant) == "F32" ? 0.03 : 0.08;
    const gguf::File f = gguf::File::open(write(Arch::Qwen3, Preset::Small, quant));
    const double n_embd = 256;
    const Stats q = stats(dequantize(*f.find_tensor("blk.1.attn_q.weight")));
    EXPECT_NEAR(q.mean, 0, 0.01);
    EXPECT_NEAR(q.std, std::sqrt(2 / n_embd), tol * std::sqrt(2 / n_embd));
    const Stats v = stats(dequantize(*f.find_tensor("blk.2.attn_v.weight")));
    EXPECT_NEAR(v.std, 1 / std::sqrt(n_embd), tol / std::sqrt(n_embd));
    const Stats e = stats(dequantize(*f.find_tensor("token_embd.weight")));
    EXPECT_NEAR(e.std, 1 / std::sqrt(n_embd), tol / std::sqrt(n_embd));
    EXPECT_NEAR(stats(dequantize(*f.find_tensor("output_norm.weight"))).mean, 3, 0.1);
    const Stats o = stats(dequantize(*f.find_tensor("blk.0.attn_output.weight")));
    const double o_std = 1 / std::sqrt(2.0 * 4) / std::sqrt(512.0);
    EXPECT_NEAR(o.std, o_std, tol * o_std);
    const Stats norm = stats(dequantize(*f.find_tensor("blk.3.ffn_norm.weight")));
    EXPECT_NEAR(norm.mean, 1, 0.03);
    EXPECT_NEAR(norm.std, 0.1, 0.03);
    const Stats qk = stats(dequantize(*f.find_tensor("blk.0.attn_k_norm.weight")));
    EXPECT_NEAR(qk.mean, std::sqrt(2.0), 0.05);
  }
  const gguf::File g = gguf::File::open(write(Arch::Glm4, Preset::Small, "F32"));
  const Stats bias = stats(dequantize(*g.find_tensor("blk.0.attn_q.bias")));
  EXPECT_NEAR(bias.std, 0.1, 0.02);
  const Stats post = stats(dequantize(*g.find_tensor("blk.0.post_ffw_norm.weight")));
  EXPECT_NEAR(post.mean, 1 / std::sqrt(8.0), 0.02);  // the post-norm sets the branch's size
}

// Llama 3 RoPE scaling with factor 32: high frequencies unchanged, low ones divided by 32.
TEST_F(SyntheticTest, RopeFreqsFollowLlama3Scaling) {
  const gguf::File f = gguf::File::open(write(Arch::Llama, Preset::Small, "F32"));
  const auto freqs = dequantize(*f.find_tensor("rope_freqs.weight"));
  ASSERT_EQ(freqs.size(), 16u);  // head size 32
  EXPECT_FLOAT_EQ(freqs.front(), 1.0f);  // wavelength 2*pi < 8192/4
  EXPECT_FLOAT_EQ(freqs.back(), 32.0f);  // wavelength 2*pi*500000^(30/32) > 8192
  for (size_t i = 1; i < freqs.size(); ++i) EXPECT_GE(freqs[i], freqs[i - 1]);
}

TEST(Vocabulary, BuiltInByteVocabulary) {
  const Vocabulary v = byte_vocabulary();
  EXPECT_EQ(v.n_tokens(), 259u);
  const gguf::Array* tokens = nullptr;
  const gguf::Array* types = nullptr;
  for (const auto& e : v.metadata) {
    EXPECT_TRUE(e.key.starts_with("tokenizer.")) << e.key;
    if (e.key == "tokenizer.ggml.tokens") tokens = e.value.as_array();
    if (e.key == "tokenizer.ggml.token_type") types = e.value.as_array();
  }
  ASSERT_TRUE(tokens && types);
  EXPECT_EQ(*tokens->items[1].as_string(), "<s>");
  EXPECT_EQ(*tokens->items[3].as_string(), "<0x00>");
  EXPECT_EQ(*tokens->items[3 + 0x41].as_string(), "<0x41>");
  EXPECT_EQ(*tokens->items[258].as_string(), "<0xFF>");
  EXPECT_EQ(types->items[258].as_int(), 6);  // BYTE
  EXPECT_EQ(types->items[0].as_int(), 2);    // UNKNOWN
}

TEST(Vocabulary, CopiesTokenizerKeysFromARealVocabFile) {
  const char* tree = std::getenv("TOKENMILL_LLAMA_TREE");
  if (!tree) GTEST_SKIP() << "TOKENMILL_LLAMA_TREE is not set (the llama.cpp tree with vocab GGUFs)";
  const Vocabulary v = vocabulary_from_gguf(std::string(tree) + "/models/ggml-vocab-llama-bpe.gguf");
  EXPECT_EQ(v.n_tokens(), 128256u);
  bool has_merges = false;
  for (const auto& e : v.metadata) {
    EXPECT_TRUE(e.key.starts_with("tokenizer.")) << e.key;
    has_merges |= e.key == "tokenizer.ggml.merges";
  }
  EXPECT_TRUE(has_merges);
}

TEST_F(SyntheticTest, VocabularyFileWithoutTokensIsAnError) {
  const std::string path = (dir_ / "no-tokens.gguf").string();
  gguf::Writer w;
  w.set("general.architecture", "llama");
  w.set("tokenizer.ggml.model", "llama");
  w.write(path, [](size_t, uint8_t*) {});
  EXPECT_THROW(vocabulary_from_gguf(path), Error);
  EXPECT_THROW(vocabulary_from_gguf((dir_ / "missing.gguf").string()), Error);
}

TEST(Presets, NamesAndOneBillionShapes) {
  EXPECT_EQ(preset_from_name("1b"), Preset::B1);
  EXPECT_EQ(preset_from_name("tiny"), Preset::Tiny);
  EXPECT_FALSE(preset_from_name("huge").has_value());
  // Llama-3.2-1B exactly.
  const HParams l = preset_hparams(Arch::Llama, Preset::B1, 128256);
  EXPECT_EQ(l.n_embd, 2048u);
  EXPECT_EQ(l.n_block, 16u);
  EXPECT_EQ(l.n_head, 32u);
  EXPECT_EQ(l.n_head_kv, 8u);
  EXPECT_EQ(l.n_ff, 8192u);
  EXPECT_EQ(l.rope_freq_base, 500000.0f);
  EXPECT_TRUE(l.tied_embeddings);
  EXPECT_TRUE(l.has_rope_freqs);
  uint64_t params = 0;
  for (const auto& t : model_tensors(arch_info(Arch::Llama), l)) {
    uint64_t n = 1;
    for (uint64_t d : t.shape) n *= d;
    params += n;
  }
  EXPECT_EQ(params, 1235814400u + 32);  // Llama-3.2-1B's published count, plus rope_freqs
  const HParams g = preset_hparams(Arch::Glm4, Preset::B1, 151552);
  EXPECT_EQ(g.n_rot * 2, g.head_dim);
  const HParams m = preset_hparams(Arch::Glm4Moe, Preset::B1, 151552);
  EXPECT_EQ(m.n_layer(), 16u);
  EXPECT_EQ(m.n_expert, 16u);
}

}  // namespace
}  // namespace tokenmill::model
