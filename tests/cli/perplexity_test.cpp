// `tokenmill perplexity` against llama.cpp's llama-perplexity on the same files: stories260K and
// synthetic models of every architecture must agree within 1%. The llama.cpp build is found
// under TOKENMILL_LLAMA_TREE (build/bin/llama-perplexity); without it those tests skip.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <regex>
#include <string>

#include "cli_helpers.h"

namespace tokenmill::testing {
namespace {

std::string llama_perplexity() {
  const std::string tree = llama_tree();
  const std::string bin = tree + "/build/bin/llama-perplexity";
  return !tree.empty() && std::filesystem::exists(bin) ? bin : "";
}

// The text scored: the project README (any English text serves; both tools read the same file).
std::string text_file() { return std::string(TOKENMILL_SOURCE_DIR) + "/README.md"; }

std::string model_dir() {
  const auto dir = std::filesystem::temp_directory_path() / "tokenmill-cli-tests";
  std::filesystem::create_directories(dir);
  return dir.string();
}

double tokenmill_ppl(const std::string& model, const std::string& opts) {
  const auto r = run_tokenmill("perplexity " + model + " -f " + text_file() + " " + opts + " --json");
  EXPECT_EQ(r.exit_code, 0) << r.err;
  const auto j = nlohmann::json::parse(r.out, nullptr, false);
  EXPECT_TRUE(j.is_object() && j.contains("perplexity")) << r.out;
  return j.is_object() ? j.value("perplexity", NAN) : NAN;
}

double llama_cpp_ppl(const std::string& model, const std::string& opts) {
  // llama.cpp prints through a logging thread that its spinning OpenMP workers can starve on a
  // busy machine; the process then exits before the final lines are written. Passive waiting
  // lets the logger run.
  const std::string cmd = "OMP_WAIT_POLICY=PASSIVE " + llama_perplexity() + " -m " + model + " -f " + text_file() +
                          " " + opts + " -t 2 2>&1";
  FILE* p = ::popen(cmd.c_str(), "r");
  std::string out;
  char buf[4096];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, p)) > 0) out.append(buf, n);
  ::pclose(p);
  std::smatch m;
  if (!std::regex_search(out, m, std::regex("Final estimate: PPL = ([0-9.]+)"))) {
    ADD_FAILURE() << "llama-perplexity printed no estimate:\n" << out.substr(out.size() > 2000 ? out.size() - 2000 : 0);
    return NAN;
  }
  return std::stod(m[1]);
}

// Both tools run several windows side by side (the default batch is several windows long).
void expect_agreement(const std::string& model, int n_ctx, const std::string& opts = "") {
  const std::string ctx = "-c " + std::to_string(n_ctx) + " " + opts;
  const double ours = tokenmill_ppl(model, ctx);
  const double theirs = llama_cpp_ppl(model, ctx);
  EXPECT_LT(std::fabs(ours - theirs), 0.01 * theirs) << model << ": tokenmill " << ours << ", llama.cpp " << theirs;
}

TEST(Perplexity, Stories260KAgreesWithLlamaCpp) {
  const std::string model = shared_dir() + "/models/stories260K-f32.gguf";
  if (!std::filesystem::exists(model)) GTEST_SKIP() << "shared models not found";
  if (llama_perplexity().empty()) GTEST_SKIP() << "TOKENMILL_LLAMA_TREE has no build/bin/llama-perplexity";
  expect_agreement(model, 128);
  expect_agreement(shared_dir() + "/models/stories260K-q8_0.gguf", 64);
}

struct Generated {
  const char* arch;
  const char* quant;
};

class PerplexityGenerated : public ::testing::TestWithParam<Generated> {};

TEST_P(PerplexityGenerated, AgreesWithLlamaCpp) {
  if (llama_perplexity().empty()) GTEST_SKIP() << "TOKENMILL_LLAMA_TREE has no build/bin/llama-perplexity";
  const Generated g = GetParam();
  const std::string path = model_dir() + "/" + g.arch + "-small-" + g.quant + ".gguf";
  const auto made = run_tokenmill(std::string("make-model --arch ") + g.arch + " --preset small --quant " + g.quant +
                                  " -o " + path);
  ASSERT_EQ(made.exit_code, 0) << made.err;
  expect_agreement(path, 256, "--chunks 6");
}

INSTANTIATE_TEST_SUITE_P(Archs, PerplexityGenerated,
                         ::testing::Values(Generated{"llama", "Q4_K_M"}, Generated{"llama", "Q8_0"},
                                           Generated{"qwen2", "Q8_0"}, Generated{"qwen3", "Q4_K_M"},
                                           Generated{"glm4", "Q4_K_M"}, Generated{"glm4moe", "Q4_K_M"},
                                           Generated{"qwen3moe", "Q8_0"}),
                         [](const auto& info) { return std::string(info.param.arch) + "_" + info.param.quant; });

TEST(Perplexity, TextOutputAndErrors) {
  const std::string model = shared_dir() + "/models/stories260K-f32.gguf";
  if (!std::filesystem::exists(model)) GTEST_SKIP() << "shared models not found";
  auto r = run_tokenmill("perplexity " + model + " -f " + text_file() + " -c 128 --chunks 2");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_TRUE(std::regex_search(r.out, std::regex(R"(^\[1\][0-9.]+,\[2\][0-9.]+,\nFinal estimate: PPL = [0-9.]+ \+/- [0-9.]+\n$)")))
      << r.out;
  // A text shorter than two windows cannot be scored.
  r = run_tokenmill("perplexity " + model + " -f " + text_file() + " -c 100000");
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.err.find("needs at least 200000"), std::string::npos) << r.err;
  r = run_tokenmill("perplexity " + model + " -f /nonexistent.txt");
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.err.find("/nonexistent.txt"), std::string::npos) << r.err;
}

}  // namespace
}  // namespace tokenmill::testing
