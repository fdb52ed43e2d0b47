// Runs the tokenmill binary's make-model subcommand as a user would.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>

#include "cli/cli_helpers.h"
#include "gguf/file.h"

namespace tokenmill {
namespace {

namespace fs = std::filesystem;
using testing::run_tokenmill;

class MakeModelCli : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("tokenmill_make_model_cli_" + std::to_string(::getpid()));
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }
  std::string path(const std::string& name) const { return (dir_ / name).string(); }

  fs::path dir_;
};

std::string bytes_of(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), {}};
}

TEST_F(MakeModelCli, WritesAModelThatOpens) {
  const auto r = run_tokenmill("make-model --arch qwen3 --preset tiny --quant f16 --seed 7 -o " + path("m.gguf"));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.err.find("wrote " + path("m.gguf")), std::string::npos) << r.err;
  EXPECT_EQ(r.err.find('\r'), std::string::npos) << "no progress bar when stderr is not a terminal";
  const auto f = gguf::File::open(path("m.gguf"));
  EXPECT_EQ(f.architecture(), "qwen3");
  EXPECT_EQ(f.get_uint("general.file_type"), 1u);
  EXPECT_EQ(f.find_tensor("blk.1.attn_q_norm.weight")->shape, (std::vector<uint64_t>{32}));
  EXPECT_FALSE(fs::exists(path("m.gguf.partial")));
}

TEST_F(MakeModelCli, SeedDecidesTheBytes) {
  const std::string cmd = "make-model --arch glm4 --preset tiny --quant Q4_K_M ";
  ASSERT_EQ(run_tokenmill(cmd + "--seed 3 -o " + path("a.gguf")).exit_code, 0);
  ASSERT_EQ(run_tokenmill(cmd + "--seed 3 --threads 1 -o " + path("b.gguf")).exit_code, 0);
  ASSERT_EQ(run_tokenmill(cmd + "--seed 4 -o " + path("c.gguf")).exit_code, 0);
  EXPECT_EQ(bytes_of(path("a.gguf")), bytes_of(path("b.gguf")));
  EXPECT_NE(bytes_of(path("a.gguf")), bytes_of(path("c.gguf")));
}

TEST_F(MakeModelCli, BadArgumentsGiveClearErrors) {
  const std::string out = " -o " + path("x.gguf");
  auto expect_error = [](const testing::CommandResult& r, const std::string& message) {
    EXPECT_NE(r.exit_code, 0);
    EXPECT_NE(r.err.find(message), std::string::npos) << r.err;
  };
  expect_error(run_tokenmill("make-model --arch gpt5 --preset tiny --quant F16" + out),
               "--arch gpt5: unknown architecture (one of llama, qwen2, qwen3, chatglm, glm4, glm4moe, qwen3moe)");
  expect_error(run_tokenmill("make-model --arch llama --preset huge --quant F16" + out),
               "--preset huge: unknown preset (one of tiny, small, 1b)");
  expect_error(run_tokenmill("make-model --arch llama --preset tiny --quant Q4_K" + out),
               "--quant Q4_K: unknown file type (one of F32, F16, BF16");
  expect_error(run_tokenmill("make-model --arch llama --preset tiny --quant F16"), "--output is required");
  expect_error(run_tokenmill("make-model --arch llama --preset tiny --quant F16 --threads 0" + out),
               "--threads must be at least 1");
  expect_error(run_tokenmill("make-model --arch llama --preset tiny --quant F16 --vocab " + path("missing.gguf") + out),
               "missing.gguf");
  std::ofstream(path("ranks.model")) << "IQ== 0\n";  // a ranks file with no tokenizer_config beside it
  expect_error(run_tokenmill("make-model --arch llama --preset tiny --quant F16 --vocab " + path("ranks.model") + out),
               "needs its tokenizer_config.json");
  expect_error(run_tokenmill("make-model --arch llama --preset tiny --quant F16 -o " + path("no-dir/x.gguf")),
               "cannot create");
  EXPECT_FALSE(fs::exists(path("x.gguf")));
}

TEST_F(MakeModelCli, CopiesARealVocabulary) {
  const std::string tree = testing::llama_tree();
  if (tree.empty()) GTEST_SKIP() << "TOKENMILL_LLAMA_TREE is not set (the llama.cpp tree with vocab GGUFs)";
  const auto r = run_tokenmill("make-model --arch qwen2 --preset tiny --quant Q8_0 --vocab " + tree +
                               "/models/ggml-vocab-qwen2.gguf -o " + path("q.gguf"));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const auto f = gguf::File::open(path("q.gguf"));
  EXPECT_EQ(f.get_string("tokenizer.ggml.pre"), "qwen2");
  EXPECT_EQ(f.find_tensor("token_embd.weight")->shape, (std::vector<uint64_t>{64, 151936}));
}

TEST_F(MakeModelCli, BuildsGlmVocabularyFromTiktokenRanks) {
  const std::string ranks = testing::shared_dir() + "/tokenizers/glm4/tokenizer.model";
  if (!fs::exists(ranks)) GTEST_SKIP() << "../shared/tokenizers/glm4 is absent";
  const auto r = run_tokenmill("make-model --arch glm4moe --preset tiny --quant F16 --vocab " + ranks + " -o " +
                               path("g.gguf"));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const auto f = gguf::File::open(path("g.gguf"));
  EXPECT_EQ(f.get_string("tokenizer.ggml.pre"), "glm4");
  EXPECT_EQ(f.find_tensor("output.weight")->shape, (std::vector<uint64_t>{64, 151552}));
}

}  // namespace
}  // namespace tokenmill
