// Plan definitions: parsing and its refusals, window amounts with model and peak multipliers,
// and the two window anchorings.
#include <gtest/gtest.h>

#include "common/error.h"
#include "maas/plans.h"

namespace tokenmill::maas {
namespace {

using nlohmann::json;

constexpr TimeMs kHour = 3'600'000;
constexpr TimeMs kDay = 24 * kHour;

json coding_plan() {
  return json::parse(R"({
    "name": "coding-lite", "period": "30d",
    "models": ["glm-4.6", "glm-4.5-air"],
    "model_multipliers": {"glm-4.6": 2, "glm-4.5-air": "0.5"},
    "peak_hours": [{"from": "14:00", "to": "18:00", "utc_offset": "+08:00", "multiplier": 1.5}],
    "token_weights": {"input": 1, "cached_input": 0.1, "output": 4},
    "windows": [
      {"name": "5h", "duration": "5h", "anchor": "first_use", "unit": "prompts", "limit": 120},
      {"name": "weekly", "duration": "7d", "anchor": "period", "unit": "weighted_tokens", "limit": "1000000.5"}
    ]})");
}

TEST(Plans, ParsesACodingPlan) {
  const Plan p = parse_plan(coding_plan());
  EXPECT_EQ(p.name, "coding-lite");
  EXPECT_EQ(p.period_ms, 30 * kDay);
  ASSERT_EQ(p.windows.size(), 2u);
  EXPECT_EQ(p.windows[0].duration_ms, 5 * kHour);
  EXPECT_EQ(p.windows[0].anchor, WindowAnchor::FirstUse);
  EXPECT_EQ(p.windows[0].limit_milli, 120'000);
  EXPECT_EQ(p.windows[0].code, 1308);
  EXPECT_EQ(p.windows[1].unit, WindowUnit::WeightedTokens);
  EXPECT_EQ(p.windows[1].limit_milli, 1'000'000'500);
  EXPECT_EQ(p.windows[1].code, 1310);
  EXPECT_EQ(model_multiplier(p, "glm-4.6"), 2000);
  EXPECT_EQ(model_multiplier(p, "glm-4.5-air"), 500);
  EXPECT_EQ(model_multiplier(p, "other"), 1000);
  EXPECT_EQ(p.token_weights.cached_input_milli, 100);
  EXPECT_TRUE(plan_covers(p, "glm-4.6"));
  EXPECT_FALSE(plan_covers(p, "glm-5"));
}

TEST(Plans, SerializedFormParsesToTheSamePlan) {
  const Plan p = parse_plan(coding_plan());
  const json again = plan_to_json(parse_plan(plan_to_json(p)));
  EXPECT_EQ(again, plan_to_json(p));
  EXPECT_EQ(again["windows"][1]["limit"], "1000000.5");
  EXPECT_EQ(again["peak_hours"][0]["utc_offset"], "+08:00");
}

TEST(Plans, RefusesBadDefinitions) {
  auto with = [](const char* pointer, json value) {
    json d = coding_plan();
    d[json::json_pointer(pointer)] = std::move(value);
    return d;
  };
  const std::vector<json> bad = {
      json::array(),
      with("/name", "bad name!"),
      with("/period", "30x"),
      with("/period", "-3d"),
      with("/windows", json::array()),
      with("/windows/0/unit", "dollars"),
      with("/windows/0/anchor", "whenever"),
      with("/windows/0/limit", 0),
      with("/windows/0/limit", -5),
      with("/windows/0/limit", "1.0001"),
      with("/windows/1/name", "5h"),
      with("/model_multipliers/glm-4.6", "1e3"),
      with("/peak_hours/0/from", "25:00"),
      with("/peak_hours/0/to", "14:00"),
      with("/peak_hours/0/utc_offset", "+15:00"),
      with("/token_weights/bogus", 1),
      with("/surprise", 1),
      with("/models/0", 7),
  };
  for (const json& d : bad) EXPECT_THROW(parse_plan(d), Error) << d.dump();
}

TEST(Plans, Durations) {
  EXPECT_EQ(parse_duration("90s"), 90'000);
  EXPECT_EQ(parse_duration("2w"), 14 * kDay);
  EXPECT_EQ(format_duration(5 * kHour), "5h");
  EXPECT_EQ(format_duration(7 * kDay), "1w");
  for (const char* bad : {"", "5", "h", "0h", "5y", "1.5h", "99999999999999d"}) EXPECT_THROW(parse_duration(bad), Error) << bad;
}

TEST(Plans, PeakMultiplierFollowsTheLocalClock) {
  const Plan p = parse_plan(coding_plan());
  // 14:00-18:00 at +08:00 is 06:00-10:00 UTC.
  EXPECT_EQ(peak_multiplier(p, 5 * kHour + 59 * 60'000), 1000);
  EXPECT_EQ(peak_multiplier(p, 6 * kHour), 1500);
  EXPECT_EQ(peak_multiplier(p, 9 * kHour + 59 * 60'000), 1500);
  EXPECT_EQ(peak_multiplier(p, 10 * kHour), 1000);
  EXPECT_EQ(peak_multiplier(p, 3 * kDay + 7 * kHour), 1500);

  json d = coding_plan();
  d["peak_hours"] = json::parse(R"([{"from": "22:00", "to": "02:00", "multiplier": 3}])");
  const Plan wrap = parse_plan(d);
  EXPECT_EQ(peak_multiplier(wrap, 23 * kHour), 3000);
  EXPECT_EQ(peak_multiplier(wrap, kDay + kHour), 3000);
  EXPECT_EQ(peak_multiplier(wrap, kDay + 2 * kHour), 1000);
}

TEST(Plans, WindowAmounts) {
  const Plan p = parse_plan(coding_plan());
  // One prompt of glm-4.6 at peak: 1 x 2 x 1.5 = 3 prompts.
  EXPECT_EQ(window_amount(p, WindowUnit::Prompts, {}, 2000, 1500), 3000);
  EXPECT_EQ(window_amount(p, WindowUnit::Prompts, {}, 500, 1000), 500);
  // 1000 prompt (400 cached) + 100 output: 600 x 1 + 400 x 0.1 + 100 x 4 = 1040 tokens; x 0.5.
  EXPECT_EQ(window_amount(p, WindowUnit::WeightedTokens, {1000, 400, 100, 0}, 500, 1000), 520'000);
  // Rounded up to a milli-unit: 1 token x 0.1 x 0.5 x 1 = 0.05 -> 0.050 exactly; x 0.001 -> up.
  EXPECT_EQ(window_amount(p, WindowUnit::WeightedTokens, {1, 1, 0, 0}, 1, 1000), 1);
}

TEST(Plans, WindowAnchoring) {
  const Plan p = parse_plan(coding_plan());
  const Subscription sub{1, 1, 1, 10 * kDay, 40 * kDay};
  const PlanWindow& five_hours = p.windows[0];
  const PlanWindow& weekly = p.windows[1];
  // first_use: opens when the request arrives.
  EXPECT_EQ(fresh_window_start(five_hours, sub, 12 * kDay + 123), 12 * kDay + 123);
  // period: tiles from the subscription start.
  EXPECT_EQ(fresh_window_start(weekly, sub, 10 * kDay), 10 * kDay);
  EXPECT_EQ(fresh_window_start(weekly, sub, 16 * kDay + 5), 10 * kDay);
  EXPECT_EQ(fresh_window_start(weekly, sub, 17 * kDay), 17 * kDay);
  EXPECT_EQ(fresh_window_start(weekly, sub, 25 * kDay), 24 * kDay);
  EXPECT_TRUE(window_expired(0, five_hours, 1));
  EXPECT_FALSE(window_expired(100, five_hours, 100 + 5 * kHour - 1));
  EXPECT_TRUE(window_expired(100, five_hours, 100 + 5 * kHour));
}

}  // namespace
}  // namespace tokenmill::maas
