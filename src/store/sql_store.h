// The Store's logic and SQL, once for every backend: each method leases a connection from the
// pool, runs its statements (one transaction where the contract in maas/store.h asks for one)
// and, when the backend reports a deadlock or serialization failure, runs the whole method
// again. A backend supplies the connections, the schema dialect and how an instance proves it
// is alive (hold_instance_lock / instance_gone).
#pragma once

#include <mutex>
#include <string>

#include "maas/store.h"
#include "store/sql.h"

namespace tokenmill::store {

class SqlStore : public maas::Store {
 public:
  std::string currency() override;
  void set_currency(const std::string& code) override;
  std::string sealing_key(bool create) override;

  maas::Tenant create_tenant(const std::string& name, maas::TimeMs now) override;
  std::optional<maas::Tenant> find_tenant(const std::string& name) override;
  std::optional<maas::Tenant> tenant_by_id(int64_t id) override;
  std::vector<maas::Tenant> list_tenants() override;
  maas::Project create_project(int64_t tenant_id, const std::string& name, maas::TimeMs now) override;
  std::optional<maas::Project> find_project(int64_t tenant_id, const std::string& name) override;
  std::vector<maas::Project> list_projects(int64_t tenant_id) override;

  void insert_key(const maas::KeyRecord& key) override;
  std::optional<maas::KeyRecord> find_key(const std::string& id) override;
  bool revoke_key(const std::string& id, maas::TimeMs now) override;
  void set_key_limits(const std::string& id, const maas::Limits& limits) override;
  std::vector<maas::KeyRecord> list_keys(int64_t tenant_id) override;

  void set_price(const maas::ModelPrice& price) override;
  std::optional<maas::ModelPrice> find_price(const std::string& model) override;
  std::vector<maas::ModelPrice> list_prices() override;
  bool delete_price(const std::string& model) override;
  void set_model_limits(const std::string& model, const maas::Limits& limits) override;
  maas::Limits model_limits(const std::string& model) override;

  std::optional<int64_t> add_to_balance(int64_t tenant_id, int64_t amount_micros, const std::string& note,
                                        maas::TimeMs now) override;
  std::vector<maas::BalanceEntry> balance_journal(int64_t tenant_id) override;

  maas::Plan upsert_plan(const maas::Plan& plan) override;
  std::optional<maas::Plan> find_plan(const std::string& name) override;
  std::optional<maas::Plan> plan_by_id(int64_t id) override;
  std::vector<maas::Plan> list_plans() override;
  maas::Subscription subscribe(int64_t tenant_id, const maas::Plan& plan, maas::TimeMs period_start,
                               maas::TimeMs period_end) override;
  std::optional<maas::Subscription> subscription_of(int64_t tenant_id) override;
  bool unsubscribe(int64_t tenant_id) override;
  std::vector<maas::WindowState> windows(int64_t subscription_id) override;

  maas::AdmitResult admit(const maas::Reservation& r, const std::string& instance_id) override;
  maas::SettleStatus settle(const maas::Settlement& s) override;
  void release(int64_t tenant_id, const std::string& request_id) override;
  void record_rejection(const maas::LedgerRecord& record) override;

  std::string instance_id(maas::TimeMs now) override;
  int64_t recover(maas::TimeMs now) override;
  std::vector<maas::ReservationRow> reservations(int64_t tenant_id) override;

  std::vector<maas::LedgerRecord> ledger(const maas::UsageFilter& filter) override;
  std::vector<maas::UsageTotals> usage_totals(const maas::UsageFilter& filter, maas::UsageGroup group) override;

  maas::AuditEntry append_audit(maas::AuditEntry entry) override;
  std::vector<maas::AuditEntry> audit_log(int64_t after_seq, int64_t limit) override;

 protected:
  // `master_key_file` holds the sealing key; empty: none configured (JWT-enabled keys refused).
  SqlStore(ConnectionPool::Opener open, size_t connections, std::string master_key_file);

  ConnectionPool::Lease lease() { return pool_.lease(); }
  // Takes this instance's liveness lock, held until the process (or its session) ends.
  virtual void hold_instance_lock(const std::string& id) = 0;
  // Inside recovery's transaction: true when instance `id` is dead, and then keeps it so until
  // the transaction ends (no other replica releases its reservations at the same time).
  virtual bool instance_gone(Connection& db, const std::string& id) = 0;
  // For the backend's destructor: on a clean exit removes the instance row when nothing of ours
  // is open; true when it did (the liveness lock may then go too).
  bool retire_instance();
  std::string own_instance();

  // Runs `body` on a leased connection, again (up to kMaxAttempts times) when it lost a deadlock.
  template <typename Body>
  auto with_db(Body body) {
    for (int attempt = 1;; ++attempt) {
      try {
        auto db = pool_.lease();
        return body(*db);
      } catch (const RetryableError&) {
        if (attempt >= kMaxAttempts) throw;
      }
    }
  }

 private:
  static constexpr int kMaxAttempts = 5;
  int64_t release_instance(Connection& db, const std::string& id, maas::TimeMs now);

  ConnectionPool pool_;
  std::string master_key_file_;
  std::mutex instance_mutex_;
  std::string instance_id_;
};

}  // namespace tokenmill::store
