#include "maas/prices.h"

#include <algorithm>
#include <limits>
#include <string>

#include "common/error.h"
#include "maas/money.h"
#include "maas/names.h"

namespace tokenmill::maas {

void normalize_price(ModelPrice& price) {
  check_model_name(price.model);
  if (price.tiers.empty()) throw Error("a price needs at least one tier");
  if (price.tiers.size() > 16) throw Error("a price has at most 16 tiers");
  std::sort(price.tiers.begin(), price.tiers.end(),
            [](const PriceTier& a, const PriceTier& b) { return a.min_prompt_tokens < b.min_prompt_tokens; });
  if (price.tiers.front().min_prompt_tokens != 0) throw Error("the first price tier must start at 0 prompt tokens");
  for (size_t i = 0; i < price.tiers.size(); ++i) {
    const PriceTier& t = price.tiers[i];
    if (i > 0 && t.min_prompt_tokens == price.tiers[i - 1].min_prompt_tokens) {
      throw Error("two price tiers start at " + std::to_string(t.min_prompt_tokens) + " prompt tokens");
    }
    for (int64_t p : {t.input, t.cached_input, t.output}) {
      if (p < 0 || p > kMaxPriceMicros) {
        throw Error("a price must be between 0 and " + format_money(kMaxPriceMicros) + " per million tokens");
      }
    }
  }
}

const PriceTier& tier_for(const ModelPrice& price, int64_t prompt_tokens) {
  const PriceTier* chosen = &price.tiers.front();
  for (const PriceTier& t : price.tiers) {
    if (prompt_tokens >= t.min_prompt_tokens) chosen = &t;
  }
  return *chosen;
}

int64_t cost_micros(const PriceTier& tier, const TokenUsage& tokens) {
  if (tokens.prompt < 0 || tokens.cached < 0 || tokens.output < 0 || tokens.cached > tokens.prompt) {
    throw Error("token counts must be non-negative, with cached tokens part of the prompt");
  }
  using u128 = unsigned __int128;
  const u128 total = static_cast<u128>(tokens.prompt - tokens.cached) * static_cast<u128>(tier.input) +
                     static_cast<u128>(tokens.cached) * static_cast<u128>(tier.cached_input) +
                     static_cast<u128>(tokens.output) * static_cast<u128>(tier.output);
  const u128 micros = (total + 999'999) / 1'000'000;
  if (micros > static_cast<u128>(kMaxMicros)) throw Error("a request's cost is out of range");
  return static_cast<int64_t>(micros);
}

}  // namespace tokenmill::maas
