// Subscription plans in the style of a coding plan: a tenant on a plan pays nothing per token;
// instead every request counts against several usage windows at once (say a 5-hour window and a
// weekly one), in prompts or in weighted tokens, scaled by per-model and peak-hour multipliers.
// A tenant with a subscription is billed only by it: an exhausted window never falls back to the
// balance.
//
// Window anchoring, exactly:
//  - first_use: a window opens at the first request after the previous one closed and lasts its
//    duration (a "5-hour session"); the next reset is window_start + duration.
//  - period: windows tile the subscription period from its start (period_start + k * duration).
// Renewing a subscription starts a new period and resets every window to empty.
// Usage in windows is fixed point: 1000 milli-units are one prompt or one weighted token.
#pragma once

#include <map>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "maas/records.h"

namespace tokenmill::maas {

enum class WindowUnit { Prompts, WeightedTokens };
enum class WindowAnchor { FirstUse, Period };

struct PlanWindow {
  std::string name;
  TimeMs duration_ms = 0;
  WindowAnchor anchor = WindowAnchor::Period;
  WindowUnit unit = WindowUnit::Prompts;
  int64_t limit_milli = 0;
  int code = 0;  // business code when exhausted: 1308 (windows under a day) or 1310
};

// Minutes of the day [from, to) in a fixed UTC offset; `to` < `from` wraps past midnight.
struct PeakHours {
  int from_minute = 0;
  int to_minute = 0;
  int utc_offset_minutes = 0;
  int64_t multiplier_milli = 1000;
};

struct TokenWeights {
  int64_t input_milli = 1000;
  int64_t cached_input_milli = 1000;
  int64_t output_milli = 1000;
};

struct Plan {
  int64_t id = 0;
  std::string name;
  TimeMs period_ms = 0;             // length of one subscription period
  std::vector<std::string> models;  // models the plan covers; others are refused (1311)
  std::map<std::string, int64_t> model_multipliers_milli;
  std::vector<PeakHours> peak_hours;
  TokenWeights token_weights;
  std::vector<PlanWindow> windows;
};

struct Subscription {
  int64_t id = 0;
  int64_t tenant_id = 0;
  int64_t plan_id = 0;
  TimeMs period_start = 0;
  TimeMs period_end = 0;
};

// A window's counters as stored.
struct WindowState {
  std::string name;
  TimeMs window_start = 0;  // 0: a first_use window that has not opened yet
  int64_t used_milli = 0;
  int64_t reserved_milli = 0;
};

// Parses and checks a plan definition (see docs/MAAS.md for the format); throws tokenmill::Error.
Plan parse_plan(const nlohmann::json& definition);
nlohmann::json plan_to_json(const Plan& plan);

// "90s", "30m", "5h", "7d", "2w" -> milliseconds.
TimeMs parse_duration(std::string_view text);
std::string format_duration(TimeMs ms);

bool plan_covers(const Plan& plan, std::string_view model);
int64_t model_multiplier(const Plan& plan, std::string_view model);  // milli, default 1000
int64_t peak_multiplier(const Plan& plan, TimeMs now);               // milli, default 1000

// What one request counts in a window of `unit`, in milli-units, rounded up. For prompts the
// tokens do not matter; weighted tokens use the plan's token weights.
int64_t window_amount(const Plan& plan, WindowUnit unit, const TokenUsage& tokens, int64_t model_mult_milli,
                      int64_t peak_mult_milli);

// The start of the window that a request arriving at `now` opens if the stored one has expired.
TimeMs fresh_window_start(const PlanWindow& window, const Subscription& sub, TimeMs now);
// True when a stored window starting at `start` no longer covers `now`.
inline bool window_expired(TimeMs start, const PlanWindow& window, TimeMs now) {
  return start == 0 || start + window.duration_ms <= now;
}

}  // namespace tokenmill::maas
