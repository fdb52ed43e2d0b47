// Subscription plans through the Gateway: several windows at once, first_use and period
// anchoring, model and peak multipliers, resets on renewal, models outside the plan, and an
// exhausted plan that never draws on the balance.
#include "store_fixture.h"

namespace tokenmill::testing {
namespace {

constexpr TimeMs kHour = 3'600'000;
constexpr TimeMs kDay = 24 * kHour;

class GatewayPlan : public StoreTest {
 protected:
  void SetUp() override {
    StoreTest::SetUp();
    if (IsSkipped()) return;
    acme_ = tenant("acme", "100");  // money on the balance that the plan must never touch
    price("glm", "2", "0.5", "8");
    plan_ = store_->upsert_plan(parse_plan(nlohmann::json::parse(R"({
      "name": "lite", "period": "30d", "models": ["glm", "glm-air"],
      "model_multipliers": {"glm-air": 0.5},
      "peak_hours": [{"from": "14:00", "to": "18:00", "utc_offset": "+08:00", "multiplier": 2}],
      "windows": [
        {"name": "5h", "duration": "5h", "anchor": "first_use", "unit": "prompts", "limit": 3},
        {"name": "weekly", "duration": "7d", "anchor": "period", "unit": "prompts", "limit": 5}
      ]})")));
    sub_ = store_->subscribe(acme_.id, plan_, kStart, kStart + plan_.period_ms);
    who_ = principal(key(acme_));
  }

  std::variant<Ticket, Rejection> run(const std::string& id, const std::string& model = "glm") {
    auto a = admit(who_, id, model, 100, 100);
    if (auto* t = std::get_if<Ticket>(&a)) t->settle({100, 0, 50, 0}, Outcome::Completed);
    return a;
  }

  WindowStatus window(const std::string& name) {
    for (const WindowStatus& w : gateway().quota(acme_.id).windows) {
      if (w.name == name) return w;
    }
    ADD_FAILURE() << "no window " << name;
    return {};
  }

  Tenant acme_;
  Plan plan_;
  Subscription sub_;
  Principal who_;
};

TEST_P(GatewayPlan, ShortWindowExhaustsThenResetsFromFirstUse) {
  now_ = kStart + 10 * kHour;  // 18:00 at +08:00, and five hours later 23:00: both off-peak
  const TimeMs first_use = now_;
  for (int i = 0; i < 3; ++i) {
    ASSERT_TRUE(std::holds_alternative<Ticket>(run("r" + std::to_string(i)))) << i;
    now_ += 60'000;
  }
  const Rejection& r = rejection_of(run("r3"));
  EXPECT_EQ(r.http_status, 429);
  EXPECT_EQ(r.code, code::kPlanShortWindow);
  EXPECT_EQ(r.next_flush_time, first_use + 5 * kHour);
  EXPECT_EQ(r.retry_after_s, (first_use + 5 * kHour - now_) / 1000);
  EXPECT_EQ(r.to_json()["error"]["next_flush_time"], first_use + 5 * kHour);
  EXPECT_EQ(r.extra["window"], "5h");
  // Quota status says the same.
  const WindowStatus w = window("5h");
  EXPECT_EQ(w.used_milli, 3000);
  EXPECT_EQ(w.remaining_milli, 0);
  EXPECT_EQ(w.next_reset, first_use + 5 * kHour);
  // The plan never falls back to the balance.
  EXPECT_EQ(balance(acme_.id), 100'000'000);
  EXPECT_EQ(reserved(acme_.id), 0);
  // Five hours after the first use the window opens afresh.
  now_ = first_use + 5 * kHour;
  EXPECT_TRUE(std::holds_alternative<Ticket>(run("r4")));
  EXPECT_EQ(window("5h").window_start, now_.load());
  EXPECT_EQ(window("5h").used_milli, 1000);
}

TEST_P(GatewayPlan, LongWindowGivesItsOwnCode) {
  now_ = kStart + 10 * kHour;  // 18:00 at +08:00, and five hours later 23:00: both off-peak
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(std::holds_alternative<Ticket>(run("a" + std::to_string(i))));
  now_ += 5 * kHour;
  for (int i = 0; i < 2; ++i) ASSERT_TRUE(std::holds_alternative<Ticket>(run("b" + std::to_string(i))));
  const Rejection& r = rejection_of(run("b2"));
  EXPECT_EQ(r.code, code::kPlanLongWindow);
  EXPECT_EQ(r.next_flush_time, kStart + 7 * kDay);  // weekly windows tile from the period start
  now_ = kStart + 7 * kDay;
  EXPECT_TRUE(std::holds_alternative<Ticket>(run("b2")));
}

TEST_P(GatewayPlan, MultipliersWeighPrompts) {
  now_ = kStart + 5 * kHour;  // 13:00 at +08:00: off-peak
  run("air", "glm-air");
  EXPECT_EQ(window("5h").used_milli, 500);
  now_ = kStart + 6 * kHour;  // 14:00 at +08:00: peak, x2
  run("peak");
  EXPECT_EQ(window("5h").used_milli, 2500);
  const auto ledger = store_->ledger(UsageFilter{});
  EXPECT_EQ(ledger[0].plan_prompts_milli, 500);
  EXPECT_EQ(ledger[1].plan_prompts_milli, 2000);
  EXPECT_EQ(ledger[1].billing, Billing::Plan);
  EXPECT_EQ(ledger[1].cost_micros, 0);
}

TEST_P(GatewayPlan, HoldsCountWhileRequestsRun) {
  now_ = kStart + kHour;
  std::vector<Ticket> running;
  for (int i = 0; i < 3; ++i) running.push_back(std::move(std::get<Ticket>(admit(who_, "h" + std::to_string(i), "glm", 1, 1))));
  EXPECT_EQ(rejection_of(admit(who_, "h3", "glm", 1, 1)).code, code::kPlanShortWindow);
  EXPECT_EQ(window("5h").reserved_milli, 3000);
  // A request that fails without output is not counted.
  running[0].settle({}, Outcome::Error, "engine failed");
  EXPECT_EQ(window("5h").used_milli, 0);
  EXPECT_TRUE(std::holds_alternative<Ticket>(admit(who_, "h3", "glm", 1, 1)));
}

TEST_P(GatewayPlan, ModelsOutsideThePlanAreRefused) {
  const Rejection& r = rejection_of(run("x", "qwen"));
  EXPECT_EQ(r.http_status, 403);
  EXPECT_EQ(r.code, code::kModelNotInPlan);
}

TEST_P(GatewayPlan, RenewalResetsEveryWindow) {
  now_ = kStart + kHour;
  for (int i = 0; i < 3; ++i) run("r" + std::to_string(i));
  EXPECT_EQ(rejection_of(run("r3")).code, code::kPlanShortWindow);
  store_->subscribe(acme_.id, plan_, now_, now_ + plan_.period_ms);
  EXPECT_EQ(window("5h").used_milli, 0);
  EXPECT_EQ(window("weekly").used_milli, 0);
  EXPECT_EQ(window("weekly").window_start, now_.load());
  EXPECT_TRUE(std::holds_alternative<Ticket>(run("r3")));
}

TEST_P(GatewayPlan, RenewalWhileRunningKeepsHoldsAndDropsOldUsage) {
  now_ = kStart + kHour;
  auto running = admit(who_, "long", "glm", 1, 1);
  ASSERT_TRUE(std::holds_alternative<Ticket>(running));
  store_->subscribe(acme_.id, plan_, now_, now_ + plan_.period_ms);
  EXPECT_EQ(window("5h").reserved_milli, 1000);
  std::get<Ticket>(running).settle({1, 0, 1, 0}, Outcome::Completed);
  EXPECT_EQ(window("5h").reserved_milli, 0);
  EXPECT_EQ(window("5h").used_milli, 0);  // admitted in the old period's window
}

TEST_P(GatewayPlan, ExpiredSubscriptionIsRefused) {
  now_ = kStart + plan_.period_ms;
  const Rejection& r = rejection_of(run("late"));
  EXPECT_EQ(r.code, code::kPlanExpired);
  EXPECT_EQ(r.http_status, 403);
  EXPECT_EQ(balance(acme_.id), 100'000'000);
}

TEST_P(GatewayPlan, UnsubscribedTenantPaysFromTheBalance) {
  store_->unsubscribe(acme_.id);
  auto a = run("paid");
  ASSERT_TRUE(std::holds_alternative<Ticket>(a));
  EXPECT_EQ(balance(acme_.id), 100'000'000 - (100 * 2 + 50 * 8));
  EXPECT_EQ(gateway().quota(acme_.id).billing, Billing::Balance);
}

TEST_P(GatewayPlan, WeightedTokenWindows) {
  const Plan tokens = store_->upsert_plan(parse_plan(nlohmann::json::parse(R"({
      "name": "tokens", "period": "30d",
      "token_weights": {"input": 1, "cached_input": 0.1, "output": 2},
      "windows": [{"name": "day", "duration": "1d", "unit": "weighted_tokens", "limit": 1000}]})")));
  store_->subscribe(acme_.id, tokens, kStart, kStart + tokens.period_ms);
  // Worst case 100 + 2 x 400 = 900 fits; the second (another 900 held) does not.
  auto a = admit(who_, "a", "glm", 100, 400);
  ASSERT_TRUE(std::holds_alternative<Ticket>(a));
  EXPECT_EQ(rejection_of(admit(who_, "b", "glm", 100, 400)).code, code::kPlanLongWindow);  // a day or longer
  // Actual: 100 prompt (50 cached) + 10 output = 50 + 5 + 20 = 75.
  std::get<Ticket>(a).settle({100, 50, 10, 0}, Outcome::Completed);
  EXPECT_EQ(window("day").used_milli, 75'000);
  EXPECT_TRUE(std::holds_alternative<Ticket>(admit(who_, "b", "glm", 100, 400)));
}

TOKENMILL_ON_BOTH_BACKENDS(GatewayPlan);

}  // namespace
}  // namespace tokenmill::testing
