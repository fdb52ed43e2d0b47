// Each store on its own: migrations, records in and out, the append-only tables, the audit
// chain as stored, and balances that cannot go below what running requests hold.

#include "common/error.h"
#include "maas/audit.h"
#include "store/open_store.h"
#include "store/schema.h"
#include "store_fixture.h"

namespace tokenmill::testing {
namespace {

using StoreBasics = StoreTest;

TEST_P(StoreBasics, MigratesOnceAndRefusesNewerSchemas) {
  store_.reset();
  store_ = open_replica();  // reopening applies nothing twice
  EXPECT_EQ(raw_sql("SELECT 1"), "");
  store_.reset();
  EXPECT_EQ(raw_sql("INSERT INTO schema_migrations VALUES(" + std::to_string(store::latest_schema_version() + 1) + ", 0)"), "");
  EXPECT_THROW(open_replica(), Error);
}

TEST_P(StoreBasics, OpenStoreUrls) {
  EXPECT_NE(store::open_store(db_url()), nullptr);
  EXPECT_NE(store::open_store("sqlite:" + path_ + "-other"), nullptr);
  remove_db(path_ + "-other");
  try {
    store::open_store("postgresql://someone:hunter2@127.0.0.1:1/db?password=hunter2");
    ADD_FAILURE() << "nothing listens on port 1";
  } catch (const Error& e) {
    EXPECT_EQ(std::string(e.what()).find("hunter2"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("someone:***@127.0.0.1:1"), std::string::npos) << e.what();
  }
  if (postgres()) EXPECT_THROW(store::open_store(db_url() + "&pool=0"), Error);
  EXPECT_THROW(store::open_store("mysql://x"), Error);
  EXPECT_THROW(store::open_store("sqlite:"), Error);
  EXPECT_THROW(store::open_store("sqlite:/nonexistent-dir/x/y.db"), Error);
}

TEST_P(StoreBasics, TenantsProjectsAndKeys) {
  const Tenant acme = tenant("acme");
  EXPECT_THROW(store_->create_tenant("acme", now_), Error);
  EXPECT_EQ(store_->find_tenant("acme")->id, acme.id);
  EXPECT_FALSE(store_->find_tenant("ACME"));
  const Project p = store_->create_project(acme.id, "search", now_);
  EXPECT_THROW(store_->create_project(acme.id, "search", now_), Error);
  EXPECT_EQ(store_->find_project(acme.id, "search")->id, p.id);
  EXPECT_EQ(store_->list_projects(acme.id).size(), 1u);

  NewKey k = generate_key({});
  k.record.tenant_id = acme.id;
  k.record.project_id = p.id;
  k.record.models = {"glm-4.6", "qwen"};
  k.record.limits = {10, 1000, 2};
  k.record.expires_at = kStart + 1000;
  store_->insert_key(k.record);
  const KeyRecord back = *store_->find_key(k.record.id);
  EXPECT_EQ(back.salt, k.record.salt);
  EXPECT_EQ(back.secret_hash, k.record.secret_hash);
  EXPECT_EQ(back.models, k.record.models);
  EXPECT_EQ(back.limits.tokens_per_minute, 1000);
  EXPECT_EQ(back.project_id, p.id);
  EXPECT_EQ(back.expires_at, kStart + 1000);
  EXPECT_TRUE(store_->revoke_key(k.record.id, now_));
  EXPECT_FALSE(store_->revoke_key(k.record.id, now_));
  EXPECT_FALSE(store_->revoke_key("no-such-key", now_));
  EXPECT_NE(store_->find_key(k.record.id)->revoked_at, 0);
  EXPECT_EQ(store_->list_keys(acme.id).size(), 1u);
  EXPECT_TRUE(store_->list_keys(acme.id + 1).empty());
  EXPECT_FALSE(store_->find_key("' OR 1=1 --"));
}

TEST_P(StoreBasics, PricesReplaceAllTiers) {
  ModelPrice p{"glm", {{0, 1, 1, 1}, {1000, 2, 2, 2}}};
  store_->set_price(p);
  EXPECT_EQ(store_->find_price("glm")->tiers.size(), 2u);
  store_->set_price(ModelPrice{"glm", {{0, 5, 5, 5}}});
  const ModelPrice back = *store_->find_price("glm");
  ASSERT_EQ(back.tiers.size(), 1u);
  EXPECT_EQ(back.tiers[0].output, 5);
  EXPECT_EQ(store_->list_prices().size(), 1u);
  EXPECT_TRUE(store_->delete_price("glm"));
  EXPECT_FALSE(store_->find_price("glm"));
}

TEST_P(StoreBasics, BalanceJournalAndFloor) {
  const Tenant t = tenant("acme");
  EXPECT_EQ(store_->add_to_balance(t.id, 5'000'000, "top-up", now_), 5'000'000);
  EXPECT_EQ(store_->add_to_balance(t.id, -2'000'000, "refund", now_), 3'000'000);
  EXPECT_FALSE(store_->add_to_balance(t.id, -3'000'001, "too much", now_));
  EXPECT_FALSE(store_->add_to_balance(t.id + 99, 1, "nobody", now_));
  EXPECT_FALSE(store_->add_to_balance(t.id, kMaxMicros, "overflow", now_));
  const auto journal = store_->balance_journal(t.id);
  ASSERT_EQ(journal.size(), 2u);
  EXPECT_EQ(journal[1].amount_micros, -2'000'000);
  EXPECT_EQ(journal[1].note, "refund");
}

TEST_P(StoreBasics, LedgerAuditAndJournalAreAppendOnly) {
  const Tenant t = tenant("acme", "1");
  LedgerRecord r;
  r.request_id = "req-1";
  r.tenant_id = t.id;
  r.outcome = Outcome::Rejected;
  store_->record_rejection(r);
  store_->append_audit(AuditEntry{0, now_, "cli", "tenants.create", "acme", "{}", "", ""});
  for (const char* sql : {"UPDATE ledger SET cost_micros = 0", "DELETE FROM ledger", "UPDATE audit_log SET actor = 'x'",
                          "DELETE FROM audit_log", "UPDATE balance_journal SET amount_micros = 1e9",
                          "DELETE FROM balance_journal"}) {
    EXPECT_NE(raw_sql(sql).find("append-only"), std::string::npos) << sql;
  }
}

TEST_P(StoreBasics, AuditChainDetectsTamperingBehindTheStoresBack) {
  for (int i = 0; i < 4; ++i) {
    store_->append_audit(AuditEntry{0, now_ + i, "cli", "balance.top_up", "acme", R"({"amount":"5"})", "", ""});
  }
  auto log = store_->audit_log(0, 0);
  ASSERT_EQ(log.size(), 4u);
  EXPECT_EQ(log[0].seq, 1);
  EXPECT_EQ(log[1].prev_hash, log[0].hash);
  EXPECT_EQ(first_broken_audit_entry(log), 0);
  EXPECT_EQ(store_->audit_log(2, 1).front().seq, 3);

  // An attacker with the file drops the trigger and edits an amount.
  const std::string drop = postgres() ? "DROP TRIGGER audit_log_append_only ON audit_log; "
                                     : "DROP TRIGGER audit_append_only_update; ";
  EXPECT_EQ(raw_sql(drop + "UPDATE audit_log SET details = '{\"amount\":\"5000\"}' WHERE seq = 2"), "");
  EXPECT_EQ(first_broken_audit_entry(store_->audit_log(0, 0)), 2);
}

TEST_P(StoreBasics, HostileStringsAreStoredAsData) {
  const std::string nasty = "x'); DROP TABLE tenants; --";
  const Tenant t = store_->create_tenant(nasty, now_);
  EXPECT_EQ(store_->find_tenant(nasty)->id, t.id);
  EXPECT_EQ(store_->list_tenants().size(), 1u);
}

TOKENMILL_ON_BOTH_BACKENDS(StoreBasics);

}  // namespace
}  // namespace tokenmill::testing
