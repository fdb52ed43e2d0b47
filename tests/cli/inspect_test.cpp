// `tokenmill inspect` on real files (../shared, the npm bundle's vocab GGUFs) and bad ones.
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "cli_helpers.h"

namespace tokenmill::testing {
namespace {

TEST(InspectCli, StoriesModelTextAndJson) {
  const std::string path = shared_dir() + "/models/stories260K-f32.gguf";
  if (!std::filesystem::exists(path)) GTEST_SKIP() << "../shared is absent: " << path;
  const auto text = run_tokenmill("inspect '" + path + "'");
  ASSERT_EQ(text.exit_code, 0) << text.err;
  EXPECT_NE(text.out.find("architecture:  llama"), std::string::npos);
  EXPECT_NE(text.out.find("blk.4.ffn_down.weight"), std::string::npos);
  EXPECT_NE(text.out.find("llama, pre 'default', 512 tokens"), std::string::npos) << text.out;

  const auto js = run_tokenmill("inspect --json '" + path + "'");
  ASSERT_EQ(js.exit_code, 0) << js.err;
  const auto j = nlohmann::json::parse(js.out);
  EXPECT_EQ(j["architecture"], "llama");
  EXPECT_EQ(j["tensor_count"], 47);
  EXPECT_EQ(j["metadata"]["llama.block_count"], 5);
  EXPECT_DOUBLE_EQ(j["metadata"]["llama.attention.layer_norm_rms_epsilon"].get<double>(), 1e-5);
  // 512 tokens: summarised, not printed.
  EXPECT_EQ(j["metadata"]["tokenizer.ggml.tokens"]["type"], "string");
  EXPECT_EQ(j["metadata"]["tokenizer.ggml.tokens"]["length"], 512);
  EXPECT_EQ(j["tensors"][0]["name"], "token_embd.weight");
  EXPECT_EQ(j["tensors"][0]["type"], "F32");
  EXPECT_EQ(j["tensors"][0]["shape"], nlohmann::json::array({64, 512}));
}

TEST(InspectCli, EveryVocabGgufOfTheNpmBundle) {
  const std::string tree = llama_tree();
  if (tree.empty()) GTEST_SKIP() << "TOKENMILL_LLAMA_TREE is unset (scripts/fetch-testdata.sh provides it)";
  int n = 0;
  for (const auto& e : std::filesystem::directory_iterator(tree + "/models")) {
    if (e.path().extension() != ".gguf") continue;
    const auto r = run_tokenmill("inspect --json '" + e.path().string() + "'");
    ASSERT_EQ(r.exit_code, 0) << e.path() << ": " << r.err;
    const auto j = nlohmann::json::parse(r.out);  // throws (fails the test) on invalid JSON
    EXPECT_TRUE(j.contains("architecture")) << e.path();
    EXPECT_TRUE(j["metadata"].contains("tokenizer.ggml.model")) << e.path();
    EXPECT_TRUE(j["tensors"].is_array());
    ++n;
  }
  EXPECT_GE(n, 19);  // the bundle ships 19 vocab-only GGUFs
}

TEST(InspectCli, BadFilesExitNonZeroWithOneLine) {
  const auto dir = std::filesystem::temp_directory_path() / "tokenmill-tests";
  std::filesystem::create_directories(dir);
  const std::string junk = (dir / "junk.gguf").string();
  std::ofstream(junk) << "this is not a gguf file at all, just text";
  const auto r = run_tokenmill("inspect '" + junk + "'");
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
  EXPECT_NE(r.err.find("offset 0: not a GGUF file"), std::string::npos) << r.err;
  EXPECT_TRUE(r.out.empty());

  const auto missing = run_tokenmill("inspect /nonexistent/model.gguf");
  EXPECT_EQ(missing.exit_code, 1);
  EXPECT_NE(missing.err.find("cannot open"), std::string::npos) << missing.err;
}

}  // namespace
}  // namespace tokenmill::testing
