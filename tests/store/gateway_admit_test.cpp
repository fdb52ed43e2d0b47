// Admission and settlement through the Gateway on prepaid balances: exact costs (cached tokens
// at the cached price), worst-case holds, the ledger record, duplicate request ids, scopes,
// limits, bad parameters, and tickets dropped unsettled.
#include "store_fixture.h"

namespace tokenmill::testing {
namespace {

class GatewayAdmit : public StoreTest {
 protected:
  void SetUp() override {
    StoreTest::SetUp();
    if (IsSkipped()) return;
    acme_ = tenant("acme", "1");
    price("glm", "2", "0.5", "8");  // per million tokens
    who_ = principal(key(acme_));
  }
  size_t ledger_size() { return store_->ledger(UsageFilter{}).size(); }
  Tenant acme_;
  Principal who_;
};

TEST_P(GatewayAdmit, HoldsTheWorstCaseAndChargesExactly) {
  auto admitted = admit(who_, "r1", "glm", 1000, 1000);
  ASSERT_TRUE(std::holds_alternative<Ticket>(admitted));
  // Worst case: 1000 x 2 + 1000 x 8 = 10000 per million = 0.01.
  EXPECT_EQ(reserved(acme_.id), 10'000);
  EXPECT_EQ(balance(acme_.id), 1'000'000);
  Ticket& ticket = std::get<Ticket>(admitted);
  // 1000 prompt of which 600 cached, 250 output (40 reasoning): 400 x 2 + 600 x 0.5 + 250 x 8 = 3100.
  EXPECT_EQ(ticket.settle({1000, 600, 250, 40}, Outcome::Completed, "", 12), SettleStatus::Settled);
  EXPECT_EQ(reserved(acme_.id), 0);
  EXPECT_EQ(balance(acme_.id), 1'000'000 - 3'100);
  const auto ledger = store_->ledger(UsageFilter{});
  ASSERT_EQ(ledger.size(), 1u);
  const LedgerRecord& r = ledger[0];
  EXPECT_EQ(r.request_id, "r1");
  EXPECT_EQ(r.tenant_id, acme_.id);
  EXPECT_EQ(r.key_id, who_.key_id);
  EXPECT_EQ(r.model, "glm");
  EXPECT_EQ(r.billing, Billing::Balance);
  EXPECT_EQ(r.tokens.prompt, 1000);
  EXPECT_EQ(r.tokens.cached, 600);
  EXPECT_EQ(r.tokens.output, 250);
  EXPECT_EQ(r.tokens.reasoning, 40);
  EXPECT_EQ(r.cost_micros, 3'100);
  EXPECT_EQ(r.outcome, Outcome::Completed);
  EXPECT_EQ(r.first_token_ms, 12);
  // Settling again changes nothing.
  EXPECT_EQ(ticket.settle({1000, 0, 1000, 0}, Outcome::Completed), SettleStatus::AlreadySettled);
  EXPECT_EQ(balance(acme_.id), 1'000'000 - 3'100);
  EXPECT_EQ(ledger_size(), 1u);
}

TEST_P(GatewayAdmit, DisconnectedStreamsPayForWhatWasProduced) {
  auto admitted = admit(who_, "r1", "glm", 100, 4000);
  ASSERT_TRUE(std::holds_alternative<Ticket>(admitted));
  std::get<Ticket>(admitted).settle({100, 0, 17, 0}, Outcome::ClientDisconnected);
  EXPECT_EQ(balance(acme_.id), 1'000'000 - (100 * 2 + 17 * 8));
  EXPECT_EQ(store_->ledger(UsageFilter{})[0].outcome, Outcome::ClientDisconnected);
}

TEST_P(GatewayAdmit, RefusesWhatTheBalanceCannotCover) {
  // 0.01 per worst case; 1.00 covers exactly 100 held at once.
  std::vector<Ticket> held;
  for (int i = 0; i < 100; ++i) {
    auto a = admit(who_, "r" + std::to_string(i), "glm", 1000, 1000);
    ASSERT_TRUE(std::holds_alternative<Ticket>(a)) << i;
    held.push_back(std::move(std::get<Ticket>(a)));
  }
  const auto refused = admit(who_, "r100", "glm", 1000, 1000);
  const Rejection& r = rejection_of(refused);
  EXPECT_EQ(r.http_status, 402);
  EXPECT_EQ(r.code, code::kBalance);
  EXPECT_EQ(r.type, "insufficient_quota");
  EXPECT_EQ(r.extra["required"], "0.01");
  EXPECT_EQ(r.extra["available"], "0.00");
  EXPECT_EQ(r.to_json()["error"]["code"], "1113");
  // A smaller request still fits once one settles below its hold.
  held[0].settle({1000, 0, 0, 0}, Outcome::Completed);  // costs 0.002, frees 0.008
  EXPECT_TRUE(std::holds_alternative<Ticket>(admit(who_, "r100", "glm", 1000, 500)));
  // The rejection is in the ledger, and the id could be used again after it.
  UsageFilter mine;
  mine.tenant_id = acme_.id;
  const auto rejected = store_->ledger(mine);
  EXPECT_EQ(std::count_if(rejected.begin(), rejected.end(), [](const LedgerRecord& l) { return l.outcome == Outcome::Rejected; }), 1);
}

TEST_P(GatewayAdmit, UsageTotalsCountOnlyServedTokens) {
  std::get<Ticket>(admit(who_, "a", "glm", 100, 10)).settle({100, 40, 10, 2}, Outcome::Completed);
  std::get<Ticket>(admit(who_, "b", "glm", 50, 10)).settle({50, 0, 3, 0}, Outcome::ClientDisconnected);
  rejection_of(admit(who_, "c", "glm", 900'000, 10));  // 1.8 at list price: more than the balance
  const auto totals = store_->usage_totals(UsageFilter{}, UsageGroup::Model);
  ASSERT_EQ(totals.size(), 1u);
  EXPECT_EQ(totals[0].group, "glm");
  EXPECT_EQ(totals[0].requests, 2);
  EXPECT_EQ(totals[0].rejected, 1);
  EXPECT_EQ(totals[0].tokens.prompt, 150);
  EXPECT_EQ(totals[0].tokens.cached, 40);
  EXPECT_EQ(totals[0].tokens.output, 13);
  EXPECT_EQ(totals[0].tokens.reasoning, 2);
  EXPECT_EQ(totals[0].cost_micros, (60 * 2 + 40 / 2 + 10 * 8) + (50 * 2 + 3 * 8));
  UsageFilter by_key;
  by_key.key_id = "someone-else";
  EXPECT_TRUE(store_->usage_totals(by_key, UsageGroup::Key).empty());
}

TEST_P(GatewayAdmit, DuplicateRequestIdsAreRefused) {
  auto first = admit(who_, "same", "glm", 10, 10);
  ASSERT_TRUE(std::holds_alternative<Ticket>(first));
  EXPECT_EQ(rejection_of(admit(who_, "same", "glm", 10, 10)).http_status, 409);
  std::get<Ticket>(first).settle({10, 0, 10, 0}, Outcome::Completed);
  EXPECT_EQ(rejection_of(admit(who_, "same", "glm", 10, 10)).http_status, 409);  // a settled id stays taken
  // Request ids are per tenant: another tenant's ids neither collide nor leak.
  const Principal other = principal(key(tenant("other", "1")));
  auto theirs = admit(other, "same", "glm", 10, 10);
  EXPECT_TRUE(std::holds_alternative<Ticket>(theirs));
  EXPECT_EQ(ledger_size(), 1u);
}

TEST_P(GatewayAdmit, DroppedTicketReleasesItsHold) {
  {
    auto a = admit(who_, "r1", "glm", 1000, 1000);
    ASSERT_TRUE(std::holds_alternative<Ticket>(a));
    EXPECT_EQ(reserved(acme_.id), 10'000);
  }
  EXPECT_EQ(reserved(acme_.id), 0);
  EXPECT_EQ(balance(acme_.id), 1'000'000);
  EXPECT_EQ(ledger_size(), 0u);
  EXPECT_TRUE(store_->reservations(0).empty());
  // The request never ran, so its id may be tried again.
  EXPECT_TRUE(std::holds_alternative<Ticket>(admit(who_, "r1", "glm", 1000, 1000)));
}

TEST_P(GatewayAdmit, ScopesAndPrices) {
  const Principal limited = principal(key(acme_, {}, {"qwen"}));
  const Rejection& r = rejection_of(admit(limited, "r1", "glm", 10, 10));
  EXPECT_EQ(r.http_status, 403);
  EXPECT_EQ(r.code, code::kNoPermission);
  const Rejection& unpriced = rejection_of(admit(who_, "r2", "mystery", 10, 10));
  EXPECT_EQ(unpriced.http_status, 403);
  EXPECT_NE(unpriced.message.find("no price"), std::string::npos);
  EXPECT_EQ(reserved(acme_.id), 0);
}

TEST_P(GatewayAdmit, BadParametersAreCleanErrorsAndWriteNothing) {
  const std::vector<AdmitRequest> bad = {
      {"r1", "glm", 10, -1},
      {"r1", "glm", 10, 0},
      {"r1", "glm", 10, int64_t{1} << 62},
      {"r1", "glm", -5, 10},
      {"r1", "glm", int64_t{1} << 40, 10},
      {"", "glm", 10, 10},
      {"'; DROP TABLE ledger; --", "glm", 10, 10},
      {std::string(200, 'r'), "glm", 10, 10},
      {"r1", "", 10, 10},
      {"r1", "glm'; --", 10, 10},
      {"r1", std::string(1 << 16, 'm'), 10, 10},
      {"r1", "glm\nx", 10, 10},
  };
  for (const AdmitRequest& req : bad) {
    const auto a = gateway().admit(who_, req);
    const Rejection& r = rejection_of(a);
    EXPECT_EQ(r.http_status, 400) << req.request_id.substr(0, 30) << " " << req.model.substr(0, 30);
    EXPECT_EQ(r.code, code::kBadParameter);
  }
  EXPECT_EQ(ledger_size(), 0u);
  EXPECT_TRUE(store_->reservations(0).empty());
  EXPECT_EQ(reserved(acme_.id), 0);
}

TEST_P(GatewayAdmit, ConcurrencyLimitPerKey) {
  const Principal p = principal(key(acme_, {0, 0, 2}));
  auto a = admit(p, "a", "glm", 1, 1);
  auto b = admit(p, "b", "glm", 1, 1);
  ASSERT_TRUE(std::holds_alternative<Ticket>(a));
  ASSERT_TRUE(std::holds_alternative<Ticket>(b));
  const Rejection& r = rejection_of(admit(p, "c", "glm", 1, 1));
  EXPECT_EQ(r.http_status, 429);
  EXPECT_EQ(r.code, code::kConcurrency);
  EXPECT_EQ(r.retry_after_s, 1);
  std::get<Ticket>(a).settle({1, 0, 1, 0}, Outcome::Completed);
  EXPECT_TRUE(std::holds_alternative<Ticket>(admit(p, "c", "glm", 1, 1)));
  // Other keys are not limited by this one.
  EXPECT_TRUE(std::holds_alternative<Ticket>(admit(who_, "d", "glm", 1, 1)));
}

TEST_P(GatewayAdmit, RequestsPerMinuteWithRetryAfter) {
  const Principal p = principal(key(acme_, {3, 0, 0}));
  now_ = kStart + 20'000;  // 20 s into a minute
  for (int i = 0; i < 3; ++i) std::get<Ticket>(admit(p, "r" + std::to_string(i), "glm", 1, 1)).settle({}, Outcome::Completed);
  const Rejection& r = rejection_of(admit(p, "r3", "glm", 1, 1));
  EXPECT_EQ(r.code, code::kRate);
  EXPECT_EQ(r.http_status, 429);
  EXPECT_EQ(r.retry_after_s, 40);
  now_ = kStart + 60'000;
  EXPECT_TRUE(std::holds_alternative<Ticket>(admit(p, "r3", "glm", 1, 1)));
}

TEST_P(GatewayAdmit, TokensPerMinuteCountsActualTokens) {
  const Principal p = principal(key(acme_, {0, 1000, 0}));
  auto a = admit(p, "a", "glm", 100, 800);  // holds 900 of 1000
  ASSERT_TRUE(std::holds_alternative<Ticket>(a));
  EXPECT_EQ(rejection_of(admit(p, "b", "glm", 100, 100)).code, code::kRate);
  std::get<Ticket>(a).settle({100, 0, 50, 0}, Outcome::Completed);  // 150 used: 850 left this minute
  EXPECT_TRUE(std::holds_alternative<Ticket>(admit(p, "b", "glm", 100, 700)));
}

TEST_P(GatewayAdmit, ModelLimitsApplyAcrossKeysAndTenants) {
  store_->set_model_limits("glm", Limits{0, 0, 1});
  const Principal other = principal(key(tenant("other", "1")));
  auto a = admit(who_, "a", "glm", 1, 1);
  ASSERT_TRUE(std::holds_alternative<Ticket>(a));
  const Rejection& r = rejection_of(admit(other, "b", "glm", 1, 1));
  EXPECT_EQ(r.code, code::kConcurrency);
  EXPECT_NE(r.message.find("model:glm"), std::string::npos);
}

TEST_P(GatewayAdmit, TieredPriceFollowsPromptLength) {
  ModelPrice tiered{"long", {{0, 1'000'000, 0, 1'000'000}, {10'000, 3'000'000, 0, 3'000'000}}};
  normalize_price(tiered);
  store_->set_price(tiered);
  std::get<Ticket>(admit(who_, "short", "long", 9'999, 1)).settle({9'999, 0, 1, 0}, Outcome::Completed);
  std::get<Ticket>(admit(who_, "long", "long", 10'000, 1)).settle({10'000, 0, 1, 0}, Outcome::Completed);
  const auto ledger = store_->ledger(UsageFilter{});
  EXPECT_EQ(ledger[0].cost_micros, 10'000);
  EXPECT_EQ(ledger[1].cost_micros, 30'003);
}

TOKENMILL_ON_BOTH_BACKENDS(GatewayAdmit);

}  // namespace
}  // namespace tokenmill::testing
