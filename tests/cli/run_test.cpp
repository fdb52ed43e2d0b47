// `tokenmill run` on the real stories260K model: greedy decoding must reproduce, token for token,
// the reference continuation recorded in ../shared/models/README.md (from llama.cpp), for the F32
// and the Q8_0 file; sampling with a seed must be reproducible; bad arguments fail cleanly.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "cli_helpers.h"

namespace tokenmill::testing {
namespace {

// The fenced code blocks of the README, in order.
std::vector<std::string> fenced_blocks(const std::string& path) {
  std::ifstream in(path);
  std::vector<std::string> blocks;
  std::string line, current;
  bool inside = false;
  while (std::getline(in, line)) {
    if (line.rfind("```", 0) == 0) {
      if (inside) blocks.push_back(current);
      current.clear();
      inside = !inside;
    } else if (inside) {
      current += (current.empty() ? "" : "\n") + line;
    }
  }
  return blocks;
}

class RunStories : public ::testing::Test {
 protected:
  void SetUp() override {
    models_ = shared_dir() + "/models";
    if (!std::filesystem::exists(models_ + "/stories260K-f32.gguf"))
      GTEST_SKIP() << "shared models not found at " << models_;
    references_ = fenced_blocks(models_ + "/README.md");
    ASSERT_EQ(references_.size(), 2u) << "README.md should hold the 64- and 200-token references";
  }
  std::string models_;
  std::vector<std::string> references_;
};

TEST_F(RunStories, GreedyF32MatchesReference64) {
  const auto r = run_tokenmill("run " + models_ + "/stories260K-f32.gguf -p 'Once upon a time' -n 64 --temp 0");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, references_[0]);
}

TEST_F(RunStories, GreedyQ8MatchesReference64) {
  const auto r = run_tokenmill("run " + models_ + "/stories260K-q8_0.gguf -p 'Once upon a time' -n 64 --temp 0 -t 1");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, references_[0]);
}

TEST_F(RunStories, GreedyF32MatchesReference200) {
  const auto r = run_tokenmill("run " + models_ + "/stories260K-f32.gguf -p 'Once upon a time' -n 200 --temp 0");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, references_[1]);
}

TEST_F(RunStories, SeededSamplingIsReproducibleAcrossThreadCounts) {
  const std::string cmd = "run " + models_ + "/stories260K-f32.gguf -p 'Once upon a time' -n 48 --temp 1 --seed 42";
  const auto a = run_tokenmill(cmd + " -t 1");
  const auto b = run_tokenmill(cmd + " -t 2");
  const auto c = run_tokenmill("run " + models_ + "/stories260K-f32.gguf -p 'Once upon a time' -n 48 --temp 1 --seed 43");
  ASSERT_EQ(a.exit_code, 0) << a.err;
  EXPECT_EQ(a.out, b.out);
  EXPECT_FALSE(a.out.empty());
  EXPECT_NE(a.out, c.out) << "a different seed should give a different story";
  EXPECT_NE(a.out, references_[0].substr(0, a.out.size())) << "temperature 1 should not be greedy";
}

TEST_F(RunStories, DiagnosticsGoToStderr) {
  const auto r = run_tokenmill("run " + models_ + "/stories260K-f32.gguf -p 'Once upon a time' -n 4 --temp 0");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.err.find("generated: 4 tokens"), std::string::npos) << r.err;
  EXPECT_EQ(r.out.find("tokens"), std::string::npos) << r.out;
}

TEST_F(RunStories, BadArgumentsFailWithAMessage) {
  auto r = run_tokenmill("run " + models_ + "/stories260K-f32.gguf -p 'Once' --temp -1");
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.err.find("temperature"), std::string::npos) << r.err;
  r = run_tokenmill("run /nonexistent.gguf -p 'Once'");
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.err.find("/nonexistent.gguf"), std::string::npos) << r.err;
  r = run_tokenmill("run " + models_ + "/stories260K-f32.gguf -p 'Once upon a time' -n 10 -c 5");
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.err.find("context"), std::string::npos) << r.err;
}

}  // namespace
}  // namespace tokenmill::testing
