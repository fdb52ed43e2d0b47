// The SQLite Store: one database file in WAL mode, opened by every server process and admin
// command that names it. Within a process all calls share one connection behind a mutex (no
// busy-waiting between threads); between processes SQLite's write lock serializes BEGIN
// IMMEDIATE transactions. synchronous=NORMAL in WAL mode makes every committed transaction
// survive a killed process; after a power failure the last commits may be lost (the
// database stays consistent). A background thread checkpoints the WAL every half second, so
// no request waits for a checkpoint's fsync.
//
// Beside the database live two things that must not be inside it:
//   PATH.master-key   32 random bytes (mode 0600) sealing the secrets of JWT-enabled keys;
//   PATH.instances/   one lock file per running instance, flock()ed while the process lives,
//                     which is how recover() tells a crashed instance from a live one.
#pragma once

#include <condition_variable>
#include <mutex>
#include <string>
#include <thread>

#include "maas/store.h"
#include "store/sqlite.h"

namespace tokenmill::store {

class SqliteStore final : public maas::Store {
 public:
  explicit SqliteStore(const std::string& path);
  ~SqliteStore() override;

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

 private:
  bool instance_alive(const std::string& id);
  void release_instance(const std::string& id, maas::TimeMs now, int64_t& released);

  std::mutex mutex_;
  std::string path_;
  Database db_;
  std::string instance_id_;
  int lock_fd_ = -1;

  std::mutex checkpoint_mutex_;
  std::condition_variable checkpoint_stop_;
  bool stopping_ = false;
  std::thread checkpointer_;
};

}  // namespace tokenmill::store
