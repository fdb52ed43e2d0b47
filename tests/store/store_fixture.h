// A fresh store of either backend (TEST_P over Backend: SQLite in a per-test temporary file,
// PostgreSQL in a per-test database of the binary's throwaway server), a clock the test moves,
// and shortcuts for setting up tenants, keys, prices and plans.
#pragma once

#include <gtest/gtest.h>
#include <sqlite3.h>
#include <unistd.h>

#include <chrono>
#include <thread>

#include <atomic>
#include <filesystem>
#include <memory>
#include <string>

#include "maas/gateway.h"
#include "maas/keys.h"
#include "maas/money.h"
#include "maas/prices.h"
#include "postgres_server.h"
#include "store/postgres_store.h"
#include "store/sqlite_store.h"

namespace tokenmill::testing {

using namespace tokenmill::maas;

inline std::string temp_db_path(const std::string& tag) {
  static std::atomic<int> counter{0};
  const auto dir = std::filesystem::temp_directory_path() / "tokenmill-tests";
  std::filesystem::create_directories(dir);
  return (dir / (tag + "-" + std::to_string(::getpid()) + "-" + std::to_string(counter++) + ".db")).string();
}

inline void remove_db(const std::string& path) {
  for (const char* suffix : {"", "-wal", "-shm", ".master-key"}) std::filesystem::remove(path + suffix);
  std::filesystem::remove_all(path + ".instances");
}

// SQL matching pg_locks rows of instance `id`'s advisory lock (a bigint key is stored split in
// classid, the high half, and objid, the low half).
inline std::string advisory_key_matches(const std::string& id) {
  const uint64_t key = std::stoull(id, nullptr, 16);
  return "classid::bigint = " + std::to_string(key >> 32) + " AND objid::bigint = " + std::to_string(key & 0xffffffffu);
}

enum class Backend { Sqlite, Postgres };

inline std::string backend_name(const ::testing::TestParamInfo<Backend>& info) {
  return info.param == Backend::Sqlite ? "Sqlite" : "Postgres";
}

// Runs every test of `suite` (a StoreTest subclass) on both backends.
#define TOKENMILL_ON_BOTH_BACKENDS(suite)                                                                    \
  INSTANTIATE_TEST_SUITE_P(Backends, suite, ::testing::Values(Backend::Sqlite, Backend::Postgres), \
                           backend_name)

class StoreTest : public ::testing::TestWithParam<Backend> {
 protected:
  // 2025-01-06 00:00:00 UTC, a Monday.
  static constexpr TimeMs kStart = 1'736'121'600'000;

  void SetUp() override {
    path_ = temp_db_path("store");
    if (GetParam() == Backend::Postgres) {
      PostgresServer* server = PostgresServer::shared();
      if (!server) GTEST_SKIP() << "no PostgreSQL test server: " << PostgresServer::skip_reason();
      url_ = server->fresh_database();
    }
    store_ = open_replica();
  }
  void TearDown() override {
    gateway_.reset();
    store_.reset();
    remove_db(path_);
  }

  bool postgres() const { return GetParam() == Backend::Postgres; }

  // The --db URL of this test's store.
  std::string db_url() const { return postgres() ? url_ + "?master_key=" + master_key_file() : "sqlite:" + path_; }

  // Another Store on the same database: another server process or replica would open this.
  std::unique_ptr<Store> open_replica() const {
    if (postgres()) return std::make_unique<store::PostgresStore>(db_url());
    return std::make_unique<store::SqliteStore>(path_);
  }

  std::string master_key_file() const { return path_ + ".master-key"; }

  // Runs SQL on the database through a connection of its own (an attacker with access, or a
  // test looking behind the store's back). Returns the database's error text, empty on success.
  std::string raw_sql(const std::string& sql) const {
    if (postgres()) return PostgresServer::sql(url_, sql);
    sqlite3* db = nullptr;
    sqlite3_open(path_.c_str(), &db);
    sqlite3_busy_timeout(db, 5000);
    char* error = nullptr;
    sqlite3_exec(db, sql.c_str(), nullptr, nullptr, &error);
    std::string out = error ? error : "";
    sqlite3_free(error);
    sqlite3_close(db);
    return out;
  }

  // Makes a live instance look crashed to recover(): its lock file goes (SQLite) or the
  // session holding its advisory lock is terminated (PostgreSQL).
  void make_instance_look_dead(const std::string& id) {
    if (!postgres()) {
      std::filesystem::remove(path_ + ".instances/" + id);
      return;
    }
    PostgresServer::sql(url_, "SELECT pg_terminate_backend(pid) FROM pg_locks WHERE locktype = 'advisory' AND " +
                                  advisory_key_matches(id));
    await_instance_gone(id);
  }

  // After a process was killed, PostgreSQL notices the closed session a moment later: waits
  // (up to 10 s) until nobody holds instance `id`'s advisory lock. Nothing to wait for on SQLite.
  void await_instance_gone(const std::string& id) const {
    if (!postgres()) return;
    for (int i = 0; i < 1000; ++i) {
      if (PostgresServer::value(url_, "SELECT COUNT(*) FROM pg_locks WHERE locktype = 'advisory' AND " +
                                          advisory_key_matches(id)) == "0") {
        return;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    ADD_FAILURE() << "instance " << id << " still holds its advisory lock";
  }

  Gateway& gateway() {
    if (!gateway_) gateway_ = std::make_unique<Gateway>(*store_, [this] { return now_.load(); });
    return *gateway_;
  }

  Tenant tenant(const std::string& name, const std::string& balance = "0") {
    Tenant t = store_->create_tenant(name, now_);
    if (balance != "0") store_->add_to_balance(t.id, parse_money(balance, "balance"), "test", now_);
    return *store_->tenant_by_id(t.id);
  }

  // A key for `t`; returns "id.secret".
  std::string key(const Tenant& t, const Limits& limits = {}, std::vector<std::string> models = {}, bool jwt = false) {
    NewKey k = generate_key(jwt ? store_->sealing_key(true) : std::string());
    k.record.tenant_id = t.id;
    k.record.created_at = now_;
    k.record.limits = limits;
    k.record.models = std::move(models);
    store_->insert_key(k.record);
    return k.presented;
  }

  // Per million tokens: input, cached input, output.
  void price(const std::string& model, const char* input, const char* cached, const char* output) {
    ModelPrice p{model, {{0, parse_money(input, "p"), parse_money(cached, "p"), parse_money(output, "p")}}};
    normalize_price(p);
    store_->set_price(p);
  }

  Principal principal(const std::string& presented) {
    auto who = gateway().authenticate(presented);
    if (auto* r = std::get_if<Rejection>(&who)) ADD_FAILURE() << "authentication failed: " << r->message;
    return std::get<Principal>(who);
  }

  std::variant<Ticket, Rejection> admit(const Principal& who, const std::string& id, const std::string& model,
                                        int64_t prompt, int64_t max_tokens) {
    return gateway().admit(who, AdmitRequest{id, model, prompt, max_tokens});
  }

  int64_t balance(int64_t tenant_id) { return store_->tenant_by_id(tenant_id)->balance_micros; }
  int64_t reserved(int64_t tenant_id) { return store_->tenant_by_id(tenant_id)->reserved_micros; }

  std::string path_;  // SQLite: the database; both: the prefix of per-test files
  std::string url_;   // PostgreSQL: this test's database
  std::unique_ptr<Store> store_;
  std::unique_ptr<Gateway> gateway_;
  std::atomic<TimeMs> now_{kStart};
};

// By value: callers pass the temporary variant admit() returned.
inline Rejection rejection_of(const std::variant<Ticket, Rejection>& v) {
  if (const Rejection* r = std::get_if<Rejection>(&v)) return *r;
  ADD_FAILURE() << "expected a rejection, the request was admitted";
  return {};
}

}  // namespace tokenmill::testing
