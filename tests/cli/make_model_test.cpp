// Runs the tokenmill binary's make-model subcommand as a user would.
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>

#include "gguf/file.h"

namespace {

namespace fs = std::filesystem;

struct Result {
  int status = -1;
  std::string output;  // stdout and stderr together
};

Result run(const std::string& args) {
  Result r;
  const std::string command = std::string(TOKENMILL_BINARY) + " " + args + " 2>&1";
  FILE* pipe = popen(command.c_str(), "r");
  if (!pipe) return r;
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, pipe)) > 0) r.output.append(buf, n);
  const int raw = pclose(pipe);
  r.status = WIFEXITED(raw) ? WEXITSTATUS(raw) : -1;
  return r;
}

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

TEST_F(MakeModelCli, WritesAModelThatOpens) {
  const Result r = run("make-model --arch qwen3 --preset tiny --quant f16 --seed 7 -o " + path("m.gguf"));
  ASSERT_EQ(r.status, 0) << r.output;
  const auto f = tokenmill::gguf::File::open(path("m.gguf"));
  EXPECT_EQ(f.architecture(), "qwen3");
  EXPECT_EQ(f.get_uint("general.file_type"), 1u);
  EXPECT_EQ(f.find_tensor("blk.1.attn_q_norm.weight")->shape, (std::vector<uint64_t>{32}));
  EXPECT_FALSE(fs::exists(path("m.gguf.partial")));
}

TEST_F(MakeModelCli, SeedDecidesTheBytes) {
  ASSERT_EQ(run("make-model --arch glm4 --preset tiny --quant F32 --seed 3 -o " + path("a.gguf")).status, 0);
  ASSERT_EQ(run("make-model --arch glm4 --preset tiny --quant F32 --seed 3 --threads 1 -o " + path("b.gguf")).status, 0);
  ASSERT_EQ(run("make-model --arch glm4 --preset tiny --quant F32 --seed 4 -o " + path("c.gguf")).status, 0);
  auto bytes = [](const std::string& p) {
    std::ifstream in(p, std::ios::binary);
    return std::string(std::istreambuf_iterator<char>(in), {});
  };
  EXPECT_EQ(bytes(path("a.gguf")), bytes(path("b.gguf")));
  EXPECT_NE(bytes(path("a.gguf")), bytes(path("c.gguf")));
}

TEST_F(MakeModelCli, BadArgumentsGiveClearErrors) {
  const std::string out = " -o " + path("x.gguf");
  Result r = run("make-model --arch gpt5 --preset tiny --quant F16" + out);
  EXPECT_EQ(r.status, 1);
  EXPECT_NE(r.output.find("--arch gpt5: unknown architecture (one of llama, qwen2, qwen3, glm4, glm4moe, qwen3moe)"),
            std::string::npos)
      << r.output;
  r = run("make-model --arch llama --preset huge --quant F16" + out);
  EXPECT_EQ(r.status, 1);
  EXPECT_NE(r.output.find("--preset huge: unknown preset"), std::string::npos) << r.output;
  r = run("make-model --arch llama --preset tiny --quant Q4_K" + out);
  EXPECT_EQ(r.status, 1);
  EXPECT_NE(r.output.find("--quant Q4_K: unknown file type (one of F32, F16, BF16"), std::string::npos) << r.output;
  r = run("make-model --arch llama --preset tiny --quant F16");
  EXPECT_NE(r.status, 0);
  EXPECT_NE(r.output.find("--output is required"), std::string::npos) << r.output;
  r = run("make-model --arch llama --preset tiny --quant F16 --vocab " + path("missing.gguf") + out);
  EXPECT_EQ(r.status, 1);
  EXPECT_NE(r.output.find("missing.gguf"), std::string::npos) << r.output;
  r = run("make-model --arch llama --preset tiny --quant F16 --vocab " + path("tokenizer.model") + out);
  EXPECT_EQ(r.status, 1);
  EXPECT_NE(r.output.find("tiktoken rank files are not supported yet"), std::string::npos) << r.output;
  r = run("make-model --arch llama --preset tiny --quant F16 -o " + path("no-such-dir/x.gguf"));
  EXPECT_EQ(r.status, 1);
  EXPECT_NE(r.output.find("cannot create"), std::string::npos) << r.output;
  EXPECT_FALSE(fs::exists(path("x.gguf")));
}

TEST_F(MakeModelCli, CopiesARealVocabulary) {
  const char* tree = std::getenv("TOKENMILL_LLAMA_TREE");
  if (!tree) GTEST_SKIP() << "TOKENMILL_LLAMA_TREE is not set (the llama.cpp tree with vocab GGUFs)";
  const Result r = run("make-model --arch qwen2 --preset tiny --quant Q8_0 --vocab " + std::string(tree) +
                       "/models/ggml-vocab-qwen2.gguf -o " + path("q.gguf"));
  ASSERT_EQ(r.status, 0) << r.output;
  const auto f = tokenmill::gguf::File::open(path("q.gguf"));
  EXPECT_EQ(f.get_string("tokenizer.ggml.pre"), "qwen2");
  EXPECT_EQ(f.find_tensor("token_embd.weight")->shape, (std::vector<uint64_t>{64, 151936}));
}

}  // namespace
