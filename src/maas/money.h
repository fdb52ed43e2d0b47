// maas/: model-as-a-service — tenants, API keys, prices, balances, subscription plans, limits,
// the usage ledger and the audit log, and the Gateway that admits and meters requests. It owns
// the rules; persistence is behind the abstract Store (maas/store.h), implemented in store/.
// Depends on common/ only (plus OpenSSL and nlohmann_json); api/ is a sibling it never includes.
//
// money.h: exact decimal amounts. Money is an integer count of micro-units (1e-6) of the
// configured currency; no floating point ever touches an amount. Multipliers and plan usage use
// the same fixed-point idea with three decimals (milli-units).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace tokenmill::maas {

inline constexpr int64_t kMicrosPerUnit = 1'000'000;
inline constexpr int64_t kMilli = 1'000;

// The largest amount we accept anywhere (1e12 currency units): sums of many such amounts and
// their products with token counts still fit the 128-bit intermediates used for costs.
inline constexpr int64_t kMaxMicros = 1'000'000'000'000'000'000;

// Parses a plain decimal ("12", "0.5", "-3.25") with at most `scale` fraction digits into an
// integer scaled by 10^scale. Refuses exponents, separators, more digits than `scale`, and
// magnitudes above `max_abs` (so nothing overflows later). Throws tokenmill::Error naming `what`.
int64_t parse_fixed(std::string_view text, int scale, int64_t max_abs, std::string_view what);

// The inverse: an integer scaled by 10^scale as a decimal with trailing zeros trimmed, at least
// `min_fraction` fraction digits ("1.50" for min_fraction 2).
std::string format_fixed(int64_t value, int scale, int min_fraction = 0);

inline int64_t parse_money(std::string_view text, std::string_view what) {
  return parse_fixed(text, 6, kMaxMicros, what);
}
inline std::string format_money(int64_t micros) { return format_fixed(micros, 6, 2); }

// (a * b + c - 1) / c for non-negative operands, in 128 bits: rounding up means a worst-case
// reservation computed this way is never below the settled amount for fewer tokens.
int64_t mul_div_ceil(int64_t a, int64_t b, int64_t c);

}  // namespace tokenmill::maas
