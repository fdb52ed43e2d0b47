// `tokenmill bench MODEL` on stories260K: the JSON has the prefill and decode rates with their
// spread and samples, and the roofline figures; the table has one row per test; bad arguments
// fail with a message.
#include <gtest/gtest.h>

#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>

#include "cli_helpers.h"

namespace tokenmill::testing {
namespace {

class BenchStories : public ::testing::Test {
 protected:
  void SetUp() override {
    model_ = shared_dir() + "/models/stories260K-f32.gguf";
    if (!std::filesystem::exists(model_)) GTEST_SKIP() << "shared models not found";
  }
  std::string model_;
};

TEST_F(BenchStories, JsonReportsRatesSpreadAndRoofline) {
  const auto r = run_tokenmill("bench " + model_ + " -p 32 -n 8 -r 3 -t 2 --bandwidth 10 --json");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const auto j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j["n_prompt"], 32);
  EXPECT_EQ(j["n_gen"], 8);
  EXPECT_EQ(j["threads"], 2);
  EXPECT_GT(j["pp_tokens_per_s"].get<double>(), 0);
  EXPECT_GT(j["tg_tokens_per_s"].get<double>(), 0);
  EXPECT_GE(j["pp_stddev"].get<double>(), 0);
  EXPECT_EQ(j["pp_samples"].size(), 3u);
  EXPECT_EQ(j["tg_samples"].size(), 3u);
  // The weights stories260K's decode reads: its tied embedding matrix (512 x 64 f32) and five
  // blocks of matrices, all F32.
  const double bytes = j["bytes_per_token"].get<double>();
  EXPECT_GT(bytes, 512 * 64 * 4);
  EXPECT_LT(bytes, std::filesystem::file_size(model_));
  EXPECT_DOUBLE_EQ(j["roofline_tokens_per_s"].get<double>(), 10e9 / bytes);
  EXPECT_DOUBLE_EQ(j["tg_roofline_fraction"].get<double>(), j["tg_tokens_per_s"].get<double>() / (10e9 / bytes));
}

TEST_F(BenchStories, TableHasOneRowPerTest) {
  const auto r = run_tokenmill("bench " + model_ + " -p 16 -n 0 -r 2 --bandwidth 10");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("| pp16 |"), std::string::npos) << r.out;
  EXPECT_EQ(r.out.find("| tg"), std::string::npos) << r.out;
}

TEST_F(BenchStories, BadArgumentsFail) {
  auto r = run_tokenmill("bench " + model_ + " -r 0");
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.err.find("-r"), std::string::npos) << r.err;
  r = run_tokenmill("bench");
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.err.find("model"), std::string::npos) << r.err;
}

}  // namespace
}  // namespace tokenmill::testing
