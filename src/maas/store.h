// The persistence seam of maas/: everything the Gateway and the admin operations keep, behind an
// abstract Store that store/ implements (SQLite now, PostgreSQL next).
//
// The contract every backend must keep, across any number of server replicas:
//  - admit() and settle() are each ONE transaction. Every limit is enforced by a conditional
//    update inside it ("UPDATE ... SET reserved = reserved + x WHERE balance - reserved >= x"),
//    never by reading a value and writing it back from application code, so concurrent requests
//    on any replica can never overspend a balance, a plan window or a limit.
//  - A reservation row is the request id's claim: (tenant, request_id) is unique for ever, so a
//    duplicate id is refused while the first is in flight, and settle() of an already settled
//    reservation changes nothing (never double-counted).
//  - Each reservation names the server instance that admitted it. An instance proves it is alive
//    by holding a lock that the operating system (SQLite: flock on a file beside the database) or
//    the database server (PostgreSQL: a session advisory lock) drops when the process dies.
//    recover() releases the open reservations of instances whose lock is free: after kill -9 and
//    a restart, every admitted request is either settled exactly once or released.
//  - The ledger and the audit log are append-only (backends refuse UPDATE and DELETE on them).
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "maas/plans.h"
#include "maas/records.h"

namespace tokenmill::maas {

// A limit counter charged by an admission: the minute counters and in-flight count of one scope
// ("key:<id>" or "model:<name>").
struct CounterCharge {
  std::string scope;
  Limits limits;
};

// What an admission takes from one plan window.
struct WindowCharge {
  std::string window;
  TimeMs duration_ms = 0;
  TimeMs fresh_start = 0;  // the window's new start if the stored one has expired
  int64_t limit_milli = 0;
  int64_t amount_milli = 0;
  int code = 0;  // business code when exhausted
};

struct Reservation : RequestRef {
  int64_t amount_micros = 0;     // Billing::Balance: the worst-case cost held on the balance
  int64_t subscription_id = 0;   // Billing::Plan
  std::vector<WindowCharge> windows;
  std::vector<CounterCharge> counters;
  int64_t tokens = 0;  // prompt + max_tokens, held on tokens-per-minute counters
  int64_t prompt_tokens = 0;
  int64_t max_tokens = 0;
  TimeMs now = 0;
};

enum class AdmitStatus { Admitted, Duplicate, Balance, Window, Concurrency, RequestRate, TokenRate };

struct AdmitResult {
  AdmitStatus status = AdmitStatus::Admitted;
  int64_t available_micros = 0;  // Balance: what was free when refused
  std::string window;            // Window: the exhausted window
  int64_t window_remaining_milli = 0;
  int code = 0;
  TimeMs retry_at = 0;  // Window: its reset; rates: the next minute; 0 when unknown
  std::string scope;    // Concurrency / rates: "key:<id>" or "model:<name>"
};

struct Settlement {
  std::string request_id;
  int64_t tenant_id = 0;
  int64_t cost_micros = 0;                                     // Billing::Balance
  std::vector<std::pair<std::string, int64_t>> window_amounts;  // Billing::Plan: actual milli-units
  int64_t tokens = 0;  // actual prompt + output, for tokens-per-minute counters
  LedgerRecord record;  // the ledger entry to append
};

enum class SettleStatus {
  Settled,         // reservation closed, ledger appended
  AlreadySettled,  // nothing changed: the request was settled before
  AfterRelease,    // the reservation had been released by recovery; charged and recorded now
  Unknown,         // no such reservation: nothing written
};

enum class ReservationState { Open, Settled, Released };

struct ReservationRow {
  std::string request_id;
  int64_t tenant_id = 0;
  std::string key_id;
  std::string model;
  std::string instance_id;
  ReservationState state = ReservationState::Open;
  Billing billing = Billing::None;
  int64_t amount_micros = 0;
  TimeMs created_at = 0;
};

struct UsageFilter {
  int64_t tenant_id = 0;  // 0: every tenant
  std::string key_id;     // empty: every key
  std::string model;      // empty: every model
  TimeMs from = 0;        // admitted_at >= from
  TimeMs to = 0;          // admitted_at < to; 0: no bound
  bool include_rejected = true;
  int64_t limit = 0;  // 0: no limit
};

enum class UsageGroup { Tenant, Key, Model };

struct UsageTotals {
  std::string group;  // tenant name, key id or model
  int64_t requests = 0;  // served (settled), whatever their outcome
  int64_t rejected = 0;  // refused at admission; their tokens are not usage
  TokenUsage tokens;
  int64_t cost_micros = 0;
  int64_t plan_prompts_milli = 0;
  int64_t plan_tokens_milli = 0;
};

struct BalanceEntry {
  int64_t seq = 0;
  int64_t tenant_id = 0;
  int64_t amount_micros = 0;
  std::string note;
  TimeMs at = 0;
};

class Store {
 public:
  virtual ~Store() = default;

  // Settings. The currency is chosen once, before any amount is stored.
  virtual std::string currency() = 0;
  virtual void set_currency(const std::string& code) = 0;
  // The 32-byte master key that seals JWT-enabled secrets, kept outside the database; created on
  // first use when `create` is set, empty when absent.
  virtual std::string sealing_key(bool create) = 0;

  // Tenants (organisations) and their projects.
  virtual Tenant create_tenant(const std::string& name, TimeMs now) = 0;
  virtual std::optional<Tenant> find_tenant(const std::string& name) = 0;
  virtual std::optional<Tenant> tenant_by_id(int64_t id) = 0;
  virtual std::vector<Tenant> list_tenants() = 0;
  virtual Project create_project(int64_t tenant_id, const std::string& name, TimeMs now) = 0;
  virtual std::optional<Project> find_project(int64_t tenant_id, const std::string& name) = 0;
  virtual std::vector<Project> list_projects(int64_t tenant_id) = 0;

  // Keys. revoke_key returns false when there was no active key with that id.
  virtual void insert_key(const KeyRecord& key) = 0;
  virtual std::optional<KeyRecord> find_key(const std::string& id) = 0;
  virtual bool revoke_key(const std::string& id, TimeMs now) = 0;
  virtual void set_key_limits(const std::string& id, const Limits& limits) = 0;
  virtual std::vector<KeyRecord> list_keys(int64_t tenant_id) = 0;  // 0: all

  // Prices and per-model limits.
  virtual void set_price(const ModelPrice& price) = 0;
  virtual std::optional<ModelPrice> find_price(const std::string& model) = 0;
  virtual std::vector<ModelPrice> list_prices() = 0;
  virtual bool delete_price(const std::string& model) = 0;
  virtual void set_model_limits(const std::string& model, const Limits& limits) = 0;
  virtual Limits model_limits(const std::string& model) = 0;

  // Balances: a journal of top-ups and adjustments. A negative amount that would take the
  // balance below what is held for running requests is refused (returns nullopt).
  virtual std::optional<int64_t> add_to_balance(int64_t tenant_id, int64_t amount_micros, const std::string& note,
                                                TimeMs now) = 0;
  virtual std::vector<BalanceEntry> balance_journal(int64_t tenant_id) = 0;

  // Plans and subscriptions (one live subscription per tenant).
  virtual Plan upsert_plan(const Plan& plan) = 0;
  virtual std::optional<Plan> find_plan(const std::string& name) = 0;
  virtual std::optional<Plan> plan_by_id(int64_t id) = 0;
  virtual std::vector<Plan> list_plans() = 0;
  // Starts (or restarts) the tenant's subscription: a new period, every window empty.
  virtual Subscription subscribe(int64_t tenant_id, const Plan& plan, TimeMs period_start, TimeMs period_end) = 0;
  virtual std::optional<Subscription> subscription_of(int64_t tenant_id) = 0;
  virtual bool unsubscribe(int64_t tenant_id) = 0;
  virtual std::vector<WindowState> windows(int64_t subscription_id) = 0;

  // Metering: see the contract at the top of this file.
  virtual AdmitResult admit(const Reservation& r, const std::string& instance_id) = 0;
  virtual SettleStatus settle(const Settlement& s) = 0;
  // Gives back what an open reservation holds and forgets it, so its request id may be used
  // again: for a request that never ran. Does nothing to a reservation that is not open.
  virtual void release(int64_t tenant_id, const std::string& request_id) = 0;
  virtual void record_rejection(const LedgerRecord& record) = 0;

  // This process's instance id; registers it and takes its liveness lock on first call.
  virtual std::string instance_id(TimeMs now) = 0;
  // Releases the open reservations of instances that are no longer alive; returns how many.
  virtual int64_t recover(TimeMs now) = 0;
  virtual std::vector<ReservationRow> reservations(int64_t tenant_id) = 0;  // 0: all

  // Usage.
  virtual std::vector<LedgerRecord> ledger(const UsageFilter& filter) = 0;
  virtual std::vector<UsageTotals> usage_totals(const UsageFilter& filter, UsageGroup group) = 0;

  // The audit log: append computes the entry's hash chained to the previous one, in one
  // transaction; read returns entries in order from `after_seq`.
  virtual AuditEntry append_audit(AuditEntry entry) = 0;
  virtual std::vector<AuditEntry> audit_log(int64_t after_seq, int64_t limit) = 0;
};

}  // namespace tokenmill::maas
