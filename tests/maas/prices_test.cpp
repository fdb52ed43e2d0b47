// Prices: tier choice by prompt length, exact costs with cached tokens at the cached price, and
// rounding that never lets a worst-case reservation fall below the settled cost.
#include <gtest/gtest.h>

#include "common/error.h"
#include "maas/money.h"
#include "maas/prices.h"

namespace tokenmill::maas {
namespace {

ModelPrice glm() {
  // 2 / 0.5 / 8 per million tokens; from 32k prompt tokens 4 / 1 / 16.
  ModelPrice p{"glm-4.6", {{32'000, 4'000'000, 1'000'000, 16'000'000}, {0, 2'000'000, 500'000, 8'000'000}}};
  normalize_price(p);
  return p;
}

TEST(Prices, TierByPromptLength) {
  const ModelPrice p = glm();
  EXPECT_EQ(p.tiers.front().min_prompt_tokens, 0);  // sorted
  EXPECT_EQ(tier_for(p, 0).input, 2'000'000);
  EXPECT_EQ(tier_for(p, 31'999).input, 2'000'000);
  EXPECT_EQ(tier_for(p, 32'000).input, 4'000'000);
  EXPECT_EQ(tier_for(p, 1'000'000).output, 16'000'000);
}

TEST(Prices, CachedTokensArePricedAsCached) {
  const ModelPrice p = glm();
  const PriceTier& t = p.tiers.front();
  // 1000 prompt tokens of which 600 cached, 200 output:
  // 400 * 2 + 600 * 0.5 + 200 * 8 = 800 + 300 + 1600 = 2700 per million -> 0.0027.
  EXPECT_EQ(cost_micros(t, {1000, 600, 200, 50}), 2700);
  EXPECT_EQ(cost_micros(t, {1000, 0, 200, 0}), 3600);
  EXPECT_EQ(cost_micros(t, {0, 0, 0, 0}), 0);
}

TEST(Prices, RoundsUpOnceOverTheSum) {
  const PriceTier t{0, 1, 1, 1};  // one micro-unit per million tokens
  EXPECT_EQ(cost_micros(t, {1, 0, 0, 0}), 1);
  EXPECT_EQ(cost_micros(t, {500'000, 0, 500'000, 0}), 1);  // summed before rounding
  EXPECT_EQ(cost_micros(t, {500'000, 0, 500'001, 0}), 2);
}

TEST(Prices, WorstCaseNeverBelowActual) {
  const ModelPrice p = glm();
  for (int64_t prompt : {0, 1, 17, 999, 31'999, 32'000, 100'000}) {
    for (int64_t max_tokens : {1, 2, 100, 4096}) {
      const PriceTier& tier = tier_for(p, prompt);
      const int64_t worst = cost_micros(tier, {prompt, 0, max_tokens, 0});
      for (int64_t out = 0; out <= max_tokens; out += std::max<int64_t>(1, max_tokens / 7)) {
        for (int64_t cached : {int64_t{0}, prompt / 2, prompt}) {
          EXPECT_LE(cost_micros(tier, {prompt, cached, out, 0}), worst);
        }
      }
    }
  }
}

TEST(Prices, BadCatalogueEntriesAreRefused) {
  ModelPrice no_tiers{"m", {}};
  EXPECT_THROW(normalize_price(no_tiers), Error);
  ModelPrice gap{"m", {{10, 1, 1, 1}}};
  EXPECT_THROW(normalize_price(gap), Error);
  ModelPrice twice{"m", {{0, 1, 1, 1}, {0, 2, 2, 2}}};
  EXPECT_THROW(normalize_price(twice), Error);
  ModelPrice negative{"m", {{0, -1, 1, 1}}};
  EXPECT_THROW(normalize_price(negative), Error);
  ModelPrice huge{"m", {{0, kMaxPriceMicros + 1, 1, 1}}};
  EXPECT_THROW(normalize_price(huge), Error);
  ModelPrice bad_name{"bad name", {{0, 1, 1, 1}}};
  EXPECT_THROW(normalize_price(bad_name), Error);
  EXPECT_THROW(cost_micros(PriceTier{}, {10, 11, 0, 0}), Error);  // more cached than prompt
}

TEST(Prices, LargestRequestAtLargestPriceFits) {
  const PriceTier t{0, kMaxPriceMicros, kMaxPriceMicros, kMaxPriceMicros};
  EXPECT_EQ(cost_micros(t, {100'000'000, 0, 100'000'000, 0}), int64_t{200'000'000} * 1'000'000);
}

}  // namespace
}  // namespace tokenmill::maas
