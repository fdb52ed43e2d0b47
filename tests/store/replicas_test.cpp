// Two server instances ("replicas") on one database, each a Store with its own connections and
// its own liveness lock, driving the Store interface directly: concurrent admissions on both
// never hold more than one tenant's balance, and recovery by one instance leaves the live
// other's reservations alone but releases a dead one's once its lock is gone (SQLite: the lock
// file's descriptor closed; PostgreSQL: the session holding the advisory lock ended).
#include <barrier>
#include <thread>

#include "store_fixture.h"

namespace tokenmill::testing {
namespace {

constexpr int64_t kHold = 30'000;  // micros held per request
constexpr int kThreadsPerReplica = 12;
constexpr int kTriesPerThread = 6;

class Replicas : public StoreTest {
 protected:
  Reservation reservation(const std::string& id) const {
    Reservation r;
    r.request_id = id;
    r.tenant_id = acme_.id;
    r.key_id = "k";
    r.model = "glm";
    r.billing = Billing::Balance;
    r.amount_micros = kHold;
    r.now = now_;
    return r;
  }

  // Every thread of both replicas admits kTriesPerThread requests; returns the admitted ids per replica.
  std::vector<std::vector<std::string>> admit_on_both(Store& a, Store& b) {
    std::vector<std::vector<std::string>> admitted(2 * kThreadsPerReplica);
    std::barrier start(2 * kThreadsPerReplica);
    std::vector<std::thread> threads;
    for (int t = 0; t < 2 * kThreadsPerReplica; ++t) {
      threads.emplace_back([&, t] {
        Store& s = t % 2 == 0 ? a : b;
        const std::string instance = s.instance_id(now_);
        start.arrive_and_wait();
        for (int n = 0; n < kTriesPerThread; ++n) {
          const std::string id = "r" + std::to_string(t) + "-" + std::to_string(n);
          const AdmitResult result = s.admit(reservation(id), instance);
          if (result.status == AdmitStatus::Admitted) {
            admitted[t].push_back(id);
          } else {
            EXPECT_EQ(result.status, AdmitStatus::Balance);
            EXPECT_LT(result.available_micros, kHold);
          }
        }
      });
    }
    for (std::thread& t : threads) t.join();
    std::vector<std::vector<std::string>> per_replica(2);
    for (int t = 0; t < 2 * kThreadsPerReplica; ++t) {
      per_replica[t % 2].insert(per_replica[t % 2].end(), admitted[t].begin(), admitted[t].end());
    }
    return per_replica;
  }

  Tenant acme_;
};

TEST_P(Replicas, ConcurrentInstancesNeverOverspendAndRecoverOnlyTheDead) {
  acme_ = tenant("acme", "1");  // room for 33 holds of 0.03; 144 are tried
  std::unique_ptr<Store> other = open_replica();
  // One request each first: however the race below goes, both instances hold something.
  ASSERT_EQ(store_->admit(reservation("first-a"), store_->instance_id(now_)).status, AdmitStatus::Admitted);
  ASSERT_EQ(other->admit(reservation("first-b"), other->instance_id(now_)).status, AdmitStatus::Admitted);
  auto admitted = admit_on_both(*store_, *other);
  admitted[0].push_back("first-a");
  admitted[1].push_back("first-b");
  const size_t total = admitted[0].size() + admitted[1].size();
  EXPECT_EQ(total, 1'000'000u / kHold);  // every hold that fits, and not one more
  EXPECT_EQ(reserved(acme_.id), static_cast<int64_t>(total) * kHold);

  // Both alive: recovery on either releases nothing.
  EXPECT_EQ(store_->recover(now_), 0);
  EXPECT_EQ(other->recover(now_), 0);

  // The other instance dies with its reservations open: its lock goes with it.
  const std::string dead = other->instance_id(now_);
  other.reset();
  await_instance_gone(dead);
  EXPECT_EQ(store_->recover(now_), static_cast<int64_t>(admitted[1].size()));
  EXPECT_EQ(reserved(acme_.id), static_cast<int64_t>(admitted[0].size()) * kHold);
  for (const ReservationRow& r : store_->reservations(acme_.id)) {
    EXPECT_EQ(r.state, r.instance_id == dead ? ReservationState::Released : ReservationState::Open) << r.request_id;
  }

  // The live instance's requests settle normally.
  for (const std::string& id : admitted[0]) {
    Settlement s;
    s.request_id = id;
    s.tenant_id = acme_.id;
    s.cost_micros = 1'000;
    static_cast<RequestRef&>(s.record) = reservation(id);
    s.record.outcome = Outcome::Completed;
    s.record.cost_micros = 1'000;
    EXPECT_EQ(store_->settle(s), SettleStatus::Settled);
  }
  EXPECT_EQ(reserved(acme_.id), 0);
  EXPECT_EQ(balance(acme_.id), 1'000'000 - static_cast<int64_t>(admitted[0].size()) * 1'000);
}

TOKENMILL_ON_BOTH_BACKENDS(Replicas);

}  // namespace
}  // namespace tokenmill::testing
