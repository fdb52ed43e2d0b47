// A fresh SQLite store in a per-test temporary file, a clock the test moves, and shortcuts for
// setting up tenants, keys, prices and plans.
#pragma once

#include <gtest/gtest.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <memory>
#include <string>

#include "maas/gateway.h"
#include "maas/keys.h"
#include "maas/money.h"
#include "maas/prices.h"
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

class StoreTest : public ::testing::Test {
 protected:
  // 2025-01-06 00:00:00 UTC, a Monday.
  static constexpr TimeMs kStart = 1'736'121'600'000;

  void SetUp() override {
    path_ = temp_db_path("store");
    store_ = std::make_unique<store::SqliteStore>(path_);
  }
  void TearDown() override {
    gateway_.reset();
    store_.reset();
    remove_db(path_);
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

  std::string path_;
  std::unique_ptr<store::SqliteStore> store_;
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
