// The local price catalogue: per model, input / cached input / output prices per million
// tokens, optionally in tiers by prompt length. Prices are set by an admin and never fetched.
// Costs are exact: one 128-bit sum of tokens x price, divided once and rounded up to a micro-unit.
#pragma once

#include <string_view>

#include "maas/records.h"

namespace tokenmill::maas {

// The most a price may be: one million currency units per million tokens.
inline constexpr int64_t kMaxPriceMicros = int64_t{1'000'000} * 1'000'000;

// Checks tiers (prices in range, first tier at 0, strictly ascending thresholds) and sorts them.
void normalize_price(ModelPrice& price);

// The tier for a prompt of `prompt_tokens` (cached tokens included): the last whose threshold it reaches.
const PriceTier& tier_for(const ModelPrice& price, int64_t prompt_tokens);

// What `tokens` cost at `tier`: uncached prompt at the input price, cached at the cached-input
// price, output (reasoning included) at the output price.
int64_t cost_micros(const PriceTier& tier, const TokenUsage& tokens);

}  // namespace tokenmill::maas
