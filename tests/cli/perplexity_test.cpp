// `tokenmill perplexity` against llama.cpp's llama-perplexity on the same files: stories260K and
// synthetic models of every architecture must agree within 1%. The llama.cpp build is found
// under TOKENMILL_LLAMA_TREE (build/bin/llama-perplexity); without it those tests skip.
#include <gtest/gtest.h>

#include <cmath>
#include <algorithm>
#include <filesystem>
#include <fstream>
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

std::string model_dir() {
  const auto dir = std::filesystem::temp_directory_path() / "tokenmill-cli-tests";
  std::filesystem::create_directories(dir);
  return dir.string();
}

// The text scored: the project README (any English text serves; both tools read the same file).
std::string readme() { return std::string(TOKENMILL_SOURCE_DIR) + "/README.md"; }

// A longer text for random-weight models: the README and every document under docs/. Their
// predictions are so confident and so wrong that last-bit differences (llama.cpp rounds queries
// to half precision and accumulates attention in half precision; both round activations to 8
// bits) move a short text's perplexity by about 1%; over tens of thousands of tokens they
// average out to a few tenths of a percent.
std::string long_text() {
  const std::string path = model_dir() + "/docs-text.txt";
  std::vector<std::filesystem::path> files = {readme()};
  for (const auto& e : std::filesystem::directory_iterator(std::string(TOKENMILL_SOURCE_DIR) + "/docs"))
    if (e.path().extension() == ".md") files.push_back(e.path());
  std::sort(files.begin() + 1, files.end());
  std::ofstream out(path + ".tmp", std::ios::binary);
  for (const auto& f : files) out << std::ifstream(f, std::ios::binary).rdbuf();
  out.close();
  std::filesystem::rename(path + ".tmp", path);
  return path;
}


double tokenmill_ppl(const std::string& model, const std::string& text, const std::string& opts) {
  const auto r = run_tokenmill("perplexity " + model + " -f " + text + " " + opts + " --json");
  EXPECT_EQ(r.exit_code, 0) << r.err;
  const auto j = nlohmann::json::parse(r.out, nullptr, false);
  EXPECT_TRUE(j.is_object() && j.contains("perplexity")) << r.out;
  return j.is_object() ? j.value("perplexity", NAN) : NAN;
}

double llama_cpp_ppl(const std::string& model, const std::string& text, const std::string& opts) {
  // llama.cpp prints through a logging thread that it never joins: on a busy machine the
  // process can exit before the last lines (the final estimate among them) are written.
  // Passive OpenMP waiting gives the logger more CPU; a run that still lost them is repeated.
  const std::string cmd = "OMP_WAIT_POLICY=PASSIVE " + llama_perplexity() + " -m " + model + " -f " + text +
                          " " + opts + " -t 2 2>&1";
  std::string out;
  for (int attempt = 0; attempt < 5; ++attempt) {
    out.clear();
    FILE* p = ::popen(cmd.c_str(), "r");
    char buf[4096];
    size_t n;
    while ((n = std::fread(buf, 1, sizeof buf, p)) > 0) out.append(buf, n);
    ::pclose(p);
    std::smatch m;
    if (std::regex_search(out, m, std::regex("Final estimate: PPL = ([0-9.]+)"))) return std::stod(m[1]);
  }
  ADD_FAILURE() << "llama-perplexity printed no estimate:\n" << out.substr(out.size() > 2000 ? out.size() - 2000 : 0);
  return NAN;
}

// Both tools run several windows side by side (the default batch is several windows long).
void expect_agreement(const std::string& model, const std::string& text, int n_ctx, const std::string& opts = "") {
  const std::string ctx = "-c " + std::to_string(n_ctx) + " " + opts;
  const double ours = tokenmill_ppl(model, text, ctx);
  const double theirs = llama_cpp_ppl(model, text, ctx);
  std::printf("perplexity %s: tokenmill %.4f, llama.cpp %.4f (%+.3f%%)\n", model.c_str(), ours, theirs,
              100 * (ours - theirs) / theirs);
  EXPECT_LT(std::fabs(ours - theirs), 0.01 * theirs) << model << ": tokenmill " << ours << ", llama.cpp " << theirs;
}

TEST(Perplexity, Stories260KAgreesWithLlamaCpp) {
  const std::string model = shared_dir() + "/models/stories260K-f32.gguf";
  if (!std::filesystem::exists(model)) GTEST_SKIP() << "shared models not found";
  if (llama_perplexity().empty()) GTEST_SKIP() << "TOKENMILL_LLAMA_TREE has no build/bin/llama-perplexity";
  expect_agreement(model, readme(), 128);
  expect_agreement(shared_dir() + "/models/stories260K-q8_0.gguf", readme(), 64);
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
  expect_agreement(path, long_text(), 256, "--chunks 64");
}

INSTANTIATE_TEST_SUITE_P(Archs, PerplexityGenerated,
                         ::testing::Values(Generated{"llama", "Q4_K_M"}, Generated{"llama", "Q8_0"},
                                           Generated{"qwen2", "Q8_0"}, Generated{"qwen3", "Q4_K_M"},
                                           Generated{"chatglm", "Q4_K_M"}, Generated{"glm4", "Q4_K_M"},
                                           Generated{"glm4moe", "Q4_K_M"},
                                           Generated{"qwen3moe", "Q8_0"}),
                         [](const auto& info) { return std::string(info.param.arch) + "_" + info.param.quant; });

TEST(Perplexity, TextOutputAndErrors) {
  const std::string model = shared_dir() + "/models/stories260K-f32.gguf";
  if (!std::filesystem::exists(model)) GTEST_SKIP() << "shared models not found";
  auto r = run_tokenmill("perplexity " + model + " -f " + readme() + " -c 128 --chunks 2");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_TRUE(std::regex_search(r.out, std::regex(R"(^\[1\][0-9.]+,\[2\][0-9.]+,\nFinal estimate: PPL = [0-9.]+ \+/- [0-9.]+\n$)")))
      << r.out;
  // A text shorter than two windows cannot be scored.
  r = run_tokenmill("perplexity " + model + " -f " + readme() + " -c 100000");
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.err.find("needs at least 200000"), std::string::npos) << r.err;
  r = run_tokenmill("perplexity " + model + " -f /nonexistent.txt");
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.err.find("/nonexistent.txt"), std::string::npos) << r.err;
}

}  // namespace
}  // namespace tokenmill::testing
