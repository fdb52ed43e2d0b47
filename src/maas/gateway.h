// The Gateway meters model requests: it authenticates a credential to a Principal, admits a
// request by reserving its worst-case cost (prompt + max_tokens at list price, or at plan weight)
// in one store transaction, and settles the Ticket to the engine's actual token counts when the
// request ends, appending its one ledger record. A Ticket dropped unsettled (the request never
// ran: the server refused it after admission) is released instead: nothing charged, nothing
// recorded, and its request id free for a retry. Reservations of a crashed process are released
// by recover().
#pragma once

#include <atomic>
#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <variant>
#include <vector>

#include "maas/plans.h"
#include "maas/records.h"
#include "maas/rejection.h"
#include "maas/store.h"

namespace tokenmill::maas {

// Bounds on what one request may ask for; anything beyond is a parameter error, not a bill.
inline constexpr int64_t kMaxRequestTokens = 100'000'000;

struct Principal {
  int64_t tenant_id = 0;
  std::string tenant;
  int64_t project_id = 0;
  std::string key_id;
  std::vector<std::string> models;  // allow-list; empty: every model
  bool admin = false;
  Limits limits;
};

struct AdmitRequest {
  std::string request_id;
  std::string model;
  int64_t prompt_tokens = 0;
  int64_t max_tokens = 0;
};

class Gateway;

// One admitted request. settle() charges exactly the tokens the engine produced and appends the
// ledger record, once; later calls change nothing. Move-only.
class Ticket {
 public:
  Ticket(Ticket&&) noexcept;
  Ticket& operator=(Ticket&&) noexcept;
  Ticket(const Ticket&) = delete;
  Ticket& operator=(const Ticket&) = delete;
  ~Ticket();

  const std::string& request_id() const;
  Billing billing() const;
  bool settled() const { return state_ == nullptr; }

  SettleStatus settle(const TokenUsage& tokens, Outcome outcome, const std::string& error = {},
                      int64_t first_token_ms = -1);

  struct State;

 private:
  friend class Gateway;
  Ticket(Gateway* gateway, std::unique_ptr<State> state);
  Gateway* gateway_ = nullptr;
  std::unique_ptr<State> state_;
};

struct WindowStatus {
  std::string name;
  WindowUnit unit = WindowUnit::Prompts;
  TimeMs duration_ms = 0;
  int64_t limit_milli = 0;
  int64_t used_milli = 0;
  int64_t reserved_milli = 0;
  int64_t remaining_milli = 0;
  TimeMs window_start = 0;  // 0: not open (a first_use window opens with the next request)
  TimeMs next_reset = 0;    // 0: none scheduled
};

struct QuotaStatus {
  std::string tenant;
  Billing billing = Billing::Balance;
  int64_t balance_micros = 0;
  int64_t reserved_micros = 0;
  std::string plan;
  TimeMs period_start = 0;
  TimeMs period_end = 0;
  std::vector<WindowStatus> windows;
};

// The tenant's balance and, on a plan, each window's usage and next reset as of `now`.
QuotaStatus quota_status(Store& store, int64_t tenant_id, TimeMs now);

class Gateway {
 public:
  using Clock = std::function<TimeMs()>;
  // `clock` defaults to the system clock; tests pass their own.
  explicit Gateway(Store& store, Clock clock = {});
  ~Gateway();
  Gateway(const Gateway&) = delete;
  Gateway& operator=(const Gateway&) = delete;

  // `credential` is what credential_from_headers() found ("id.secret" or a JWT).
  std::variant<Principal, Rejection> authenticate(const std::string& credential);
  std::variant<Ticket, Rejection> admit(const Principal& who, const AdmitRequest& request);

  QuotaStatus quota(int64_t tenant_id) { return quota_status(store_, tenant_id, clock_()); }

  // Releases reservations left by dead instances (see Store::recover). Call at startup; the
  // sweeper calls it every `every` to cover replicas that die while this one runs.
  int64_t recover();
  void start_recovery_sweeper(std::chrono::milliseconds every);

  TimeMs now() const { return clock_(); }
  Store& store() { return store_; }
  const std::string& instance_id() const { return instance_id_; }

 private:
  friend class Ticket;
  SettleStatus settle(Ticket::State& state, const TokenUsage& tokens, Outcome outcome, const std::string& error,
                      int64_t first_token_ms);
  Rejection reject(const Principal& who, const AdmitRequest& request, Rejection rejection);

  Store& store_;
  Clock clock_;
  std::string instance_id_;

  std::mutex sweeper_mutex_;
  std::condition_variable sweeper_wake_;
  bool stopping_ = false;
  std::thread sweeper_;
};

}  // namespace tokenmill::maas
