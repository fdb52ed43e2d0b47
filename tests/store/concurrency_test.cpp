// Many threads, and several store connections standing in for server replicas, admitting
// against one balance, one plan window and one concurrency limit at once: never more is held
// or charged than there is, every refusal was justified when it happened, and every admitted
// request is settled exactly once.
#include <barrier>
#include <random>
#include <thread>

#include "store_fixture.h"

namespace tokenmill::testing {
namespace {

constexpr int kThreads = 64;

// Runs `body(thread_index)` on kThreads threads released together.
template <typename Body>
void in_parallel(Body body) {
  std::barrier start(kThreads);
  std::vector<std::thread> threads;
  for (int i = 0; i < kThreads; ++i) {
    threads.emplace_back([&, i] {
      start.arrive_and_wait();
      body(i);
    });
  }
  for (std::thread& t : threads) t.join();
}

class Concurrency : public StoreTest {
 protected:
  void SetUp() override {
    StoreTest::SetUp();
    if (IsSkipped()) return;
    // Two more stores on the same database, each with its own Gateway: three "replicas".
    for (int i = 0; i < 2; ++i) {
      replicas_.push_back(open_replica());
      gateways_.push_back(std::make_unique<Gateway>(*replicas_.back(), [this] { return now_.load(); }));
    }
    price("glm", "2", "0.5", "8");
  }
  void TearDown() override {
    gateways_.clear();
    replicas_.clear();
    StoreTest::TearDown();
  }
  Gateway& replica(int i) { return i % 3 == 0 ? gateway() : *gateways_[i % 3 - 1]; }

  std::vector<std::unique_ptr<Store>> replicas_;
  std::vector<std::unique_ptr<Gateway>> gateways_;
};

TEST_P(Concurrency, HeldRequestsNeverExceedTheBalanceAndNoneThatFitsIsRefused) {
  // Worst case per request: 1000 x 2 + 1000 x 8 = 0.01. The balance covers 23 and a half.
  const Tenant t = tenant("acme", "0.235");
  const Principal who = principal(key(t));
  std::vector<std::optional<Ticket>> tickets(kThreads);
  std::vector<Rejection> refusals(kThreads);
  in_parallel([&](int i) {
    auto a = replica(i).admit(who, AdmitRequest{"r" + std::to_string(i), "glm", 1000, 1000});
    if (auto* ticket = std::get_if<Ticket>(&a)) tickets[i] = std::move(*ticket);
    else refusals[i] = std::get<Rejection>(a);
  });
  const auto admitted = std::count_if(tickets.begin(), tickets.end(), [](const auto& t) { return t.has_value(); });
  EXPECT_EQ(admitted, 23);  // exactly what fits: nothing overspent, nothing that fitted refused
  EXPECT_EQ(reserved(t.id), 230'000);
  for (int i = 0; i < kThreads; ++i) {
    if (tickets[i]) continue;
    EXPECT_EQ(refusals[i].code, code::kBalance);
    EXPECT_LT(parse_money(refusals[i].extra["available"].get<std::string>(), "a"), 10'000);
  }
  // Settle everything at random actual sizes, concurrently.
  in_parallel([&](int i) {
    if (!tickets[i]) return;
    std::mt19937 rng(i);
    const int64_t out = std::uniform_int_distribution<int64_t>(0, 1000)(rng);
    const int64_t cached = std::uniform_int_distribution<int64_t>(0, 1000)(rng);
    tickets[i]->settle({1000, cached, out, 0}, Outcome::Completed);
  });
  int64_t charged = 0;
  for (const LedgerRecord& r : store_->ledger(UsageFilter{})) {
    if (r.outcome != Outcome::Rejected) charged += r.cost_micros;
  }
  EXPECT_EQ(reserved(t.id), 0);
  EXPECT_EQ(balance(t.id), 235'000 - charged);
  EXPECT_GE(balance(t.id), 0);
  EXPECT_EQ(store_->ledger(UsageFilter{}).size(), static_cast<size_t>(kThreads));  // 23 settled + 41 refusals
}

TEST_P(Concurrency, ChurnNeverOverspends) {
  // Admit and settle in a loop on every thread: the balance drains to what no request fits.
  const Tenant t = tenant("acme", "0.5");
  const Principal who = principal(key(t));
  std::atomic<int64_t> admitted{0};
  in_parallel([&](int i) {
    std::mt19937 rng(i);
    for (int n = 0; n < 20; ++n) {
      const int64_t max_tokens = std::uniform_int_distribution<int64_t>(1, 2000)(rng);
      auto a = replica(i).admit(who, AdmitRequest{"c" + std::to_string(i) + "-" + std::to_string(n), "glm", 500, max_tokens});
      if (auto* ticket = std::get_if<Ticket>(&a)) {
        ++admitted;
        const int64_t out = std::uniform_int_distribution<int64_t>(0, max_tokens)(rng);
        ticket->settle({500, out % 500, out, 0}, Outcome::Completed);
      } else {
        const Rejection& r = std::get<Rejection>(a);
        ASSERT_EQ(r.code, code::kBalance);
        EXPECT_LT(parse_money(r.extra["available"].get<std::string>(), "a"),
                  parse_money(r.extra["required"].get<std::string>(), "r"));
      }
    }
  });
  int64_t charged = 0, settled = 0;
  for (const LedgerRecord& r : store_->ledger(UsageFilter{})) {
    if (r.outcome == Outcome::Rejected) continue;
    charged += r.cost_micros;
    ++settled;
  }
  EXPECT_EQ(settled, admitted.load());
  EXPECT_EQ(balance(t.id), 500'000 - charged);
  EXPECT_GE(balance(t.id), 0);
  EXPECT_EQ(reserved(t.id), 0);
  for (const ReservationRow& r : store_->reservations(0)) EXPECT_EQ(r.state, ReservationState::Settled);
}

TEST_P(Concurrency, PlanWindowAdmitsExactlyItsLimit) {
  const Tenant t = tenant("acme", "100");
  const Plan plan = store_->upsert_plan(parse_plan(nlohmann::json::parse(R"({
      "name": "lite", "period": "30d",
      "windows": [{"name": "5h", "duration": "5h", "anchor": "first_use", "unit": "prompts", "limit": 10},
                  {"name": "weekly", "duration": "7d", "unit": "prompts", "limit": 100}]})")));
  store_->subscribe(t.id, plan, kStart, kStart + plan.period_ms);
  const Principal who = principal(key(t));
  std::vector<std::optional<Ticket>> tickets(kThreads);
  std::atomic<int> window_refusals{0};
  in_parallel([&](int i) {
    auto a = replica(i).admit(who, AdmitRequest{"p" + std::to_string(i), "glm", 10, 10});
    if (auto* ticket = std::get_if<Ticket>(&a)) tickets[i] = std::move(*ticket);
    else if (std::get<Rejection>(a).code == code::kPlanShortWindow) ++window_refusals;
  });
  EXPECT_EQ(std::count_if(tickets.begin(), tickets.end(), [](const auto& t) { return t.has_value(); }), 10);
  EXPECT_EQ(window_refusals.load(), kThreads - 10);
  for (auto& ticket : tickets) {
    if (ticket) ticket->settle({10, 0, 10, 0}, Outcome::Completed);
  }
  const QuotaStatus q = gateway().quota(t.id);
  EXPECT_EQ(q.windows[0].used_milli, 10'000);
  EXPECT_EQ(q.windows[0].reserved_milli, 0);
  EXPECT_EQ(q.windows[1].used_milli, 10'000);
  EXPECT_EQ(balance(t.id), 100'000'000);
}

TEST_P(Concurrency, ConcurrencyLimitHoldsAcrossReplicas) {
  const Tenant t = tenant("acme", "100");
  const Principal who = principal(key(t, Limits{0, 0, 4}));
  std::vector<std::optional<Ticket>> tickets(kThreads);
  in_parallel([&](int i) {
    auto a = replica(i).admit(who, AdmitRequest{"k" + std::to_string(i), "glm", 10, 10});
    if (auto* ticket = std::get_if<Ticket>(&a)) tickets[i] = std::move(*ticket);
    else EXPECT_EQ(std::get<Rejection>(a).code, code::kConcurrency);
  });
  EXPECT_EQ(std::count_if(tickets.begin(), tickets.end(), [](const auto& t) { return t.has_value(); }), 4);
  for (auto& ticket : tickets) {
    if (ticket) ticket->settle({10, 0, 10, 0}, Outcome::Completed);
  }
  // All four slots are free again.
  std::vector<Ticket> again;
  for (int i = 0; i < 4; ++i) again.push_back(std::move(std::get<Ticket>(gateway().admit(who, AdmitRequest{"again" + std::to_string(i), "glm", 1, 1}))));
}

TOKENMILL_ON_BOTH_BACKENDS(Concurrency);

}  // namespace
}  // namespace tokenmill::testing
