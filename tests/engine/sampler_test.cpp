#include "engine/sampler.h"

#include <gtest/gtest.h>

#include <cmath>
#include <map>

#include "common/error.h"

namespace tokenmill::engine {
namespace {

std::vector<float> logits_for(const std::vector<double>& probs) {
  std::vector<float> l;
  for (double p : probs) l.push_back(static_cast<float>(std::log(p)));
  return l;
}

std::map<int32_t, int> histogram(const SamplingParams& params, const std::vector<float>& logits, int draws) {
  Sampler s(params);
  std::map<int32_t, int> h;
  for (int i = 0; i < draws; ++i) {
    auto l = logits;
    ++h[s.sample(l, {})];
  }
  return h;
}

TEST(Sampler, GreedyPicksTheArgmaxAndTheLowestIdOnTies) {
  SamplingParams p;
  p.temperature = 0;
  Sampler s(p);
  std::vector<float> l = {0.1f, 3.0f, -1.0f, 3.0f};
  EXPECT_EQ(s.sample(l, {}), 1);
}

TEST(Sampler, TemperatureOneFollowsTheSoftmax) {
  const std::vector<double> probs = {0.4, 0.3, 0.2, 0.1};
  SamplingParams p;
  p.seed = 7;
  const int n = 40000;
  auto h = histogram(p, logits_for(probs), n);
  for (int t = 0; t < 4; ++t) EXPECT_NEAR(h[t] / double(n), probs[t], 0.01) << "token " << t;
}

TEST(Sampler, LowTemperatureSharpens) {
  SamplingParams p;
  p.temperature = 0.25f;
  auto h = histogram(p, logits_for({0.4, 0.3, 0.2, 0.1}), 20000);
  // p^4 normalised: 0.4^4 / sum = 0.0256 / 0.0354 = 0.723
  EXPECT_NEAR(h[0] / 20000.0, 0.723, 0.015);
}

TEST(Sampler, TopKKeepsOnlyTheKBest) {
  SamplingParams p;
  p.top_k = 2;
  auto h = histogram(p, logits_for({0.1, 0.4, 0.2, 0.3}), 20000);
  EXPECT_EQ(h.count(0) + h.count(2), 0u);
  EXPECT_NEAR(h[1] / 20000.0, 0.4 / 0.7, 0.015);
}

TEST(Sampler, TopPKeepsTheSmallestNucleus) {
  SamplingParams p;
  p.top_p = 0.75f;
  auto h = histogram(p, logits_for({0.15, 0.5, 0.05, 0.3}), 20000);
  EXPECT_EQ(h.count(0) + h.count(2), 0u);
  EXPECT_NEAR(h[1] / 20000.0, 0.5 / 0.8, 0.015);
}

TEST(Sampler, MinPIsRelativeToTheBestToken) {
  SamplingParams p;
  p.min_p = 0.4f;
  auto h = histogram(p, logits_for({0.5, 0.3, 0.15, 0.05}), 20000);
  EXPECT_EQ(h.count(2) + h.count(3), 0u);
  EXPECT_NEAR(h[0] / 20000.0, 0.5 / 0.8, 0.015);
}

TEST(Sampler, TopPOnALargeFlatVocabularyKeepsTheLowestIdsOnTies) {
  SamplingParams p;
  p.top_p = 0.5f;
  std::vector<float> flat(151552, 0.0f);
  Sampler s(p);
  int32_t max_seen = 0;
  for (int i = 0; i < 400; ++i) {
    auto l = flat;
    max_seen = std::max(max_seen, s.sample(l, {}));
  }
  EXPECT_LT(max_seen, 151552 / 2 + 1);      // ties keep the lowest ids in the nucleus
  EXPECT_GT(max_seen, 151552 / 2 - 10000);  // and the whole half is reachable
}

TEST(Sampler, SameSeedSameTokensOtherSeedOtherTokens) {
  auto run = [](uint64_t seed) {
    SamplingParams p;
    p.seed = seed;
    p.temperature = 1.5f;
    Sampler s(p);
    std::vector<int32_t> out;
    std::vector<float> base(1000);
    for (size_t i = 0; i < base.size(); ++i) base[i] = std::sin(static_cast<float>(i));
    for (int i = 0; i < 50; ++i) {
      auto l = base;
      out.push_back(s.sample(l, {}));
    }
    return out;
  };
  EXPECT_EQ(run(42), run(42));
  EXPECT_NE(run(42), run(43));
}

TEST(Sampler, RepetitionPenaltyDividesPositiveAndMultipliesNegativeLogits) {
  SamplingParams p;
  p.temperature = 0;
  p.repetition_penalty = 2.0f;
  Sampler s(p);
  std::vector<float> l = {2.0f, -2.0f, 1.5f};
  const std::vector<int32_t> seen = {0, 1, 0};
  EXPECT_EQ(s.sample(l, seen), 2);
  EXPECT_FLOAT_EQ(l[0], 1.0f);
  EXPECT_FLOAT_EQ(l[1], -4.0f);
  EXPECT_FLOAT_EQ(l[2], 1.5f);
  // Counts are reset between calls: the same call again penalises the same amount.
  std::vector<float> again = {2.0f, -2.0f, 1.5f};
  s.sample(again, seen);
  EXPECT_FLOAT_EQ(again[0], 1.0f);
}

TEST(Sampler, PresenceAndFrequencyPenaltiesFollowTheOpenAiFormula) {
  SamplingParams p;
  p.temperature = 0;
  p.presence_penalty = 0.5f;
  p.frequency_penalty = 0.25f;
  Sampler s(p);
  std::vector<float> l = {0.0f, 1.0f, 3.0f};
  const std::vector<int32_t> seen = {2, 2, 2, 1, 99, -1};  // out-of-range ids are ignored
  EXPECT_EQ(s.sample(l, seen), 2);
  EXPECT_FLOAT_EQ(l[2], 3.0f - 0.5f - 0.75f);
  EXPECT_FLOAT_EQ(l[1], 1.0f - 0.5f - 0.25f);
  EXPECT_FLOAT_EQ(l[0], 0.0f);
}

TEST(Sampler, InvalidParametersAreClearErrors) {
  auto bad = [](auto mutate) {
    SamplingParams p;
    mutate(p);
    EXPECT_THROW(Sampler{p}, Error);
  };
  bad([](SamplingParams& p) { p.temperature = -1; });
  bad([](SamplingParams& p) { p.temperature = NAN; });
  bad([](SamplingParams& p) { p.top_p = 0; });
  bad([](SamplingParams& p) { p.top_p = 1.5f; });
  bad([](SamplingParams& p) { p.top_k = -3; });
  bad([](SamplingParams& p) { p.min_p = 2; });
  bad([](SamplingParams& p) { p.repetition_penalty = 0; });
  bad([](SamplingParams& p) { p.presence_penalty = 3; });
  bad([](SamplingParams& p) { p.frequency_penalty = -2.5f; });
}

TEST(Sampler, TopLogprobsAreTheLogSoftmaxMostLikelyFirst) {
  const std::vector<float> l = {1.0f, 3.0f, 2.0f, -1.0f};
  const auto top = Sampler::top_logprobs(l, 3);
  ASSERT_EQ(top.size(), 3u);
  EXPECT_EQ(top[0].token, 1);
  EXPECT_EQ(top[1].token, 2);
  EXPECT_EQ(top[2].token, 0);
  double z = 0;
  for (float x : l) z += std::exp(x);
  EXPECT_NEAR(top[0].logprob, 3.0 - std::log(z), 1e-5);
  EXPECT_NEAR(Sampler::logprob_of(l, 3), -1.0 - std::log(z), 1e-5);
  EXPECT_EQ(Sampler::top_logprobs(l, 10).size(), 4u);
}

}  // namespace
}  // namespace tokenmill::engine
