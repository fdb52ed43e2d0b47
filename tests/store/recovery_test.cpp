// Crash recovery: a process that admitted requests and was killed with SIGKILL leaves open
// reservations; recover() in the next process releases exactly those, and only once the
// killed process is really gone. Afterwards every admitted request is settled exactly once or
// released, and the balance adds up.
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <map>

#include "store_fixture.h"

namespace tokenmill::testing {
namespace {

class Recovery : public StoreTest {
 protected:
  void SetUp() override {
    StoreTest::SetUp();
    if (IsSkipped()) return;
    acme_ = tenant("acme", "1");
    price("glm", "2", "0.5", "8");
    key_ = key(acme_);
  }

  // Forks a child that opens the database itself, admits `admit` requests, settles the first
  // `settle` of them, reports on a pipe, and waits to be killed.
  pid_t crashing_child(int admit, int settle) {
    int fds[2];
    EXPECT_EQ(::pipe(fds), 0);
    const pid_t pid = ::fork();
    if (pid == 0) {
      ::close(fds[0]);
      int status = 0;
      try {
        const std::unique_ptr<Store> s = open_replica();
        Gateway g(*s);
        const Principal who = std::get<Principal>(g.authenticate(key_));
        std::vector<Ticket> held;
        for (int i = 0; i < admit; ++i) {
          held.push_back(std::move(std::get<Ticket>(g.admit(who, AdmitRequest{"c" + std::to_string(i), "glm", 1000, 1000}))));
        }
        for (int i = 0; i < settle; ++i) held[i].settle({1000, 100, 500, 0}, Outcome::Completed);
        const char ok = 'k';
        if (::write(fds[1], &ok, 1) != 1) status = 1;
        ::pause();  // killed here, with tickets still open
      } catch (...) {
        status = 2;
      }
      ::_exit(status);
    }
    ::close(fds[1]);
    char c = 0;
    EXPECT_EQ(::read(fds[0], &c, 1), 1);
    ::close(fds[0]);
    return pid;
  }

  Tenant acme_;
  std::string key_;
};

TEST_P(Recovery, KilledInstanceIsReleasedAndTheLedgerAddsUp) {
  const pid_t child = crashing_child(7, 3);
  EXPECT_EQ(reserved(acme_.id), 4 * 10'000);
  // While the child lives, its reservations are its own.
  EXPECT_EQ(gateway().recover(), 0);
  EXPECT_EQ(reserved(acme_.id), 4 * 10'000);

  ::kill(child, SIGKILL);
  int status = 0;
  ::waitpid(child, &status, 0);
  ASSERT_TRUE(WIFSIGNALED(status));
  for (const ReservationRow& r : store_->reservations(0)) await_instance_gone(r.instance_id);

  EXPECT_EQ(gateway().recover(), 4);
  EXPECT_EQ(gateway().recover(), 0);  // nothing twice
  EXPECT_EQ(reserved(acme_.id), 0);

  std::map<std::string, int> records;
  int64_t charged = 0;
  for (const LedgerRecord& r : store_->ledger(UsageFilter{})) {
    ++records[r.request_id];
    charged += r.cost_micros;
  }
  int settled = 0, released = 0;
  for (const ReservationRow& r : store_->reservations(0)) {
    if (r.state == ReservationState::Settled) {
      ++settled;
      EXPECT_EQ(records[r.request_id], 1) << r.request_id;
    } else {
      ASSERT_EQ(r.state, ReservationState::Released) << r.request_id;
      ++released;
      EXPECT_EQ(records.count(r.request_id), 0u) << r.request_id;
    }
  }
  EXPECT_EQ(settled, 3);
  EXPECT_EQ(released, 4);
  EXPECT_EQ(charged, 3 * (900 * 2 + 100 / 2 + 500 * 8));
  EXPECT_EQ(balance(acme_.id), 1'000'000 - charged);
}

TEST_P(Recovery, LiveInstancesInThisProcessAreLeftAlone) {
  const std::unique_ptr<Store> other = open_replica();
  Gateway other_gateway(*other, [this] { return now_.load(); });
  const Principal who = principal(key_);
  auto held = other_gateway.admit(who, AdmitRequest{"mine", "glm", 10, 10});
  ASSERT_TRUE(std::holds_alternative<Ticket>(held));
  EXPECT_EQ(gateway().recover(), 0);
  EXPECT_EQ(std::get<Ticket>(held).settle({10, 0, 10, 0}, Outcome::Completed), SettleStatus::Settled);
}

TEST_P(Recovery, ASettlementAfterReleaseIsChargedOnce) {
  const Principal who = principal(key_);
  // An instance that looks dead while its request still runs: its lock is taken from it.
  const std::unique_ptr<Store> ghost = open_replica();
  Gateway ghost_gateway(*ghost, [this] { return now_.load(); });
  auto a = ghost_gateway.admit(who, AdmitRequest{"ghost", "glm", 1000, 1000});
  ASSERT_TRUE(std::holds_alternative<Ticket>(a));
  make_instance_look_dead(ghost_gateway.instance_id());
  EXPECT_EQ(gateway().recover(), 1);
  EXPECT_EQ(reserved(acme_.id), 0);
  // The request finishes after all: charged exactly once, recorded once.
  EXPECT_EQ(std::get<Ticket>(a).settle({1000, 0, 10, 0}, Outcome::Completed), SettleStatus::AfterRelease);
  EXPECT_EQ(balance(acme_.id), 1'000'000 - (1000 * 2 + 10 * 8));
  UsageFilter f;
  f.key_id = who.key_id;
  int ghosts = 0;
  for (const LedgerRecord& r : store_->ledger(f)) ghosts += r.request_id == "ghost";
  EXPECT_EQ(ghosts, 1);
}

TOKENMILL_ON_BOTH_BACKENDS(Recovery);

}  // namespace
}  // namespace tokenmill::testing
