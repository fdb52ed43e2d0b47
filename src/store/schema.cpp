#include "store/schema.h"

#include <chrono>
#include <string>
#include <utility>

#include "common/error.h"

namespace tokenmill::store {
namespace {

// Append new migrations at the end; never edit one that has shipped. Written once for both
// backends in SQLite's spelling, which dialect_sql() maps to PostgreSQL's: INTEGER is 64-bit
// in SQLite (BIGINT), an INTEGER PRIMARY KEY is a row id (an identity column), BLOB is BYTEA.
// The append-only guards are triggers, whose syntax differs: see append_only_guards().
constexpr const char* kMigrations[] = {
    // 1: the whole first schema.
    R"sql(
CREATE TABLE settings(name TEXT PRIMARY KEY, value TEXT NOT NULL);

CREATE TABLE tenants(
  id INTEGER PRIMARY KEY,
  name TEXT NOT NULL UNIQUE,
  created_at INTEGER NOT NULL,
  balance_micros INTEGER NOT NULL DEFAULT 0,
  reserved_micros INTEGER NOT NULL DEFAULT 0 CHECK (reserved_micros >= 0));

CREATE TABLE projects(
  id INTEGER PRIMARY KEY,
  tenant_id INTEGER NOT NULL REFERENCES tenants(id),
  name TEXT NOT NULL,
  created_at INTEGER NOT NULL,
  UNIQUE (tenant_id, name));

CREATE TABLE api_keys(
  id TEXT PRIMARY KEY,
  tenant_id INTEGER NOT NULL REFERENCES tenants(id),
  project_id INTEGER NOT NULL DEFAULT 0,
  name TEXT NOT NULL DEFAULT '',
  salt BLOB NOT NULL,
  secret_hash BLOB NOT NULL,
  sealed_secret BLOB,
  models TEXT NOT NULL DEFAULT '',
  is_admin INTEGER NOT NULL DEFAULT 0,
  created_at INTEGER NOT NULL,
  expires_at INTEGER NOT NULL DEFAULT 0,
  revoked_at INTEGER NOT NULL DEFAULT 0,
  rpm INTEGER NOT NULL DEFAULT 0,
  tpm INTEGER NOT NULL DEFAULT 0,
  max_concurrent INTEGER NOT NULL DEFAULT 0);
CREATE INDEX api_keys_tenant ON api_keys(tenant_id);

CREATE TABLE prices(
  model TEXT NOT NULL,
  min_prompt_tokens INTEGER NOT NULL,
  input_micros INTEGER NOT NULL,
  cached_input_micros INTEGER NOT NULL,
  output_micros INTEGER NOT NULL,
  PRIMARY KEY (model, min_prompt_tokens));

CREATE TABLE model_limits(
  model TEXT PRIMARY KEY,
  rpm INTEGER NOT NULL,
  tpm INTEGER NOT NULL,
  max_concurrent INTEGER NOT NULL);

CREATE TABLE balance_journal(
  seq INTEGER PRIMARY KEY,
  tenant_id INTEGER NOT NULL REFERENCES tenants(id),
  amount_micros INTEGER NOT NULL,
  note TEXT NOT NULL,
  at INTEGER NOT NULL);

CREATE TABLE plans(
  id INTEGER PRIMARY KEY,
  name TEXT NOT NULL UNIQUE,
  definition TEXT NOT NULL);

CREATE TABLE subscriptions(
  id INTEGER PRIMARY KEY,
  tenant_id INTEGER NOT NULL UNIQUE REFERENCES tenants(id),
  plan_id INTEGER NOT NULL REFERENCES plans(id),
  period_start INTEGER NOT NULL,
  period_end INTEGER NOT NULL);

CREATE TABLE plan_windows(
  subscription_id INTEGER NOT NULL,
  name TEXT NOT NULL,
  window_start INTEGER NOT NULL,
  used_milli INTEGER NOT NULL DEFAULT 0,
  reserved_milli INTEGER NOT NULL DEFAULT 0 CHECK (reserved_milli >= 0),
  PRIMARY KEY (subscription_id, name));

CREATE TABLE limit_counters(
  scope TEXT PRIMARY KEY,
  in_flight INTEGER NOT NULL DEFAULT 0 CHECK (in_flight >= 0),
  minute_start INTEGER NOT NULL DEFAULT 0,
  requests INTEGER NOT NULL DEFAULT 0,
  tokens INTEGER NOT NULL DEFAULT 0);

CREATE TABLE instances(
  id TEXT PRIMARY KEY,
  started_at INTEGER NOT NULL,
  pid INTEGER NOT NULL,
  host TEXT NOT NULL);

-- One row per admitted request, kept for ever: the (tenant, request id) claim.
CREATE TABLE reservations(
  tenant_id INTEGER NOT NULL,
  request_id TEXT NOT NULL,
  key_id TEXT NOT NULL,
  model TEXT NOT NULL,
  instance_id TEXT NOT NULL,
  state TEXT NOT NULL CHECK (state IN ('open', 'settled', 'released')),
  billing TEXT NOT NULL,
  amount_micros INTEGER NOT NULL,
  subscription_id INTEGER NOT NULL,
  tokens INTEGER NOT NULL,
  minute_start INTEGER NOT NULL,
  counters TEXT NOT NULL,
  created_at INTEGER NOT NULL,
  closed_at INTEGER NOT NULL DEFAULT 0,
  PRIMARY KEY (tenant_id, request_id));
CREATE INDEX reservations_open ON reservations(instance_id) WHERE state = 'open';

CREATE TABLE reservation_windows(
  tenant_id INTEGER NOT NULL,
  request_id TEXT NOT NULL,
  name TEXT NOT NULL,
  amount_milli INTEGER NOT NULL,
  window_start INTEGER NOT NULL,
  PRIMARY KEY (tenant_id, request_id, name));

CREATE TABLE ledger(
  seq INTEGER PRIMARY KEY,
  request_id TEXT NOT NULL,
  tenant_id INTEGER NOT NULL,
  project_id INTEGER NOT NULL,
  key_id TEXT NOT NULL,
  model TEXT NOT NULL,
  billing TEXT NOT NULL,
  prompt_tokens INTEGER NOT NULL,
  cached_tokens INTEGER NOT NULL,
  output_tokens INTEGER NOT NULL,
  reasoning_tokens INTEGER NOT NULL,
  cost_micros INTEGER NOT NULL,
  plan_prompts_milli INTEGER NOT NULL,
  plan_tokens_milli INTEGER NOT NULL,
  outcome TEXT NOT NULL,
  code INTEGER NOT NULL,
  error TEXT NOT NULL,
  admitted_at INTEGER NOT NULL,
  finished_at INTEGER NOT NULL,
  first_token_ms INTEGER NOT NULL);
CREATE UNIQUE INDEX ledger_one_per_request ON ledger(tenant_id, request_id) WHERE outcome <> 'rejected';
CREATE INDEX ledger_tenant_time ON ledger(tenant_id, admitted_at);
CREATE INDEX ledger_key_time ON ledger(key_id, admitted_at);

CREATE TABLE audit_log(
  seq INTEGER PRIMARY KEY,
  at INTEGER NOT NULL,
  actor TEXT NOT NULL,
  action TEXT NOT NULL,
  target TEXT NOT NULL,
  details TEXT NOT NULL,
  prev_hash TEXT NOT NULL,
  hash TEXT NOT NULL);

)sql",
};


// The tables that are append-only, and how their refusal reads.
constexpr std::pair<const char*, const char*> kAppendOnly[] = {
    {"ledger", "ledger"}, {"audit_log", "audit log"}, {"balance_journal", "balance journal"}};

constexpr int64_t kMigrationLock = 0x746d6d6967726174;  // "tmmigrat": one migrator at a time

void replace_all(std::string& text, const std::string& from, const std::string& to) {
  for (size_t at = text.find(from); at != std::string::npos; at = text.find(from, at + to.size())) {
    text.replace(at, from.size(), to);
  }
}

std::string dialect_sql(std::string sql, Dialect dialect) {
  if (dialect == Dialect::Postgres) {
    replace_all(sql, "INTEGER PRIMARY KEY", "BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY");
    replace_all(sql, "INTEGER", "BIGINT");
    replace_all(sql, "BLOB", "BYTEA");
  }
  return sql;
}

// Triggers that refuse UPDATE and DELETE (and on PostgreSQL TRUNCATE) on the append-only tables.
std::string append_only_guards(Dialect dialect) {
  std::string out;
  if (dialect == Dialect::Postgres) {
    out += "CREATE FUNCTION refuse_change() RETURNS trigger LANGUAGE plpgsql AS "
           "$$ BEGIN RAISE EXCEPTION 'the % is append-only', TG_ARGV[0]; END $$;\n";
  }
  for (const auto& [table, what] : kAppendOnly) {
    const std::string t = table;
    if (dialect == Dialect::Postgres) {
      out += "CREATE TRIGGER " + t + "_append_only BEFORE UPDATE OR DELETE OR TRUNCATE ON " + t +
             " FOR EACH STATEMENT EXECUTE FUNCTION refuse_change('" + what + "');\n";
      continue;
    }
    for (const char* change : {"update", "delete"}) {
      std::string name = t == "balance_journal" ? "journal" : t == "audit_log" ? "audit" : t;
      out += "CREATE TRIGGER " + name + "_append_only_" + change + " BEFORE " + (change[0] == 'u' ? "UPDATE" : "DELETE") +
             " ON " + t + " BEGIN SELECT RAISE(ABORT, 'the " + what + " is append-only'); END;\n";
    }
  }
  return out;
}

int64_t now_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

}  // namespace

int latest_schema_version() { return static_cast<int>(std::size(kMigrations)); }

void migrate(Connection& db, Dialect dialect) {
  Transaction tx(db);
  db.lock_until_commit(kMigrationLock);  // replicas starting together apply each migration once
  db.exec(dialect_sql("CREATE TABLE IF NOT EXISTS schema_migrations(version INTEGER PRIMARY KEY, applied_at INTEGER NOT NULL)",
                      dialect)
              .c_str());
  for (int version = 1; version <= latest_schema_version(); ++version) {
    Query applied(db, "SELECT 1 FROM schema_migrations WHERE version = ?");
    if (applied.bind(1, int64_t{version}).step()) continue;
    std::string sql = dialect_sql(kMigrations[version - 1], dialect);
    if (version == 1) sql += append_only_guards(dialect);  // the first schema created the guarded tables
    db.exec(sql.c_str());
    Query record(db, "INSERT INTO schema_migrations(version, applied_at) VALUES(?, ?)");
    record.bind(1, int64_t{version}).bind(2, now_ms()).run();
  }
  Query newest(db, "SELECT COALESCE(MAX(version), 0) FROM schema_migrations");
  newest.step();
  if (newest.int64(0) > latest_schema_version()) {
    throw Error("the database has schema version " + std::to_string(newest.int64(0)) +
                ", newer than this tokenmill understands (" + std::to_string(latest_schema_version()) + ")");
  }
  tx.commit();
}

}  // namespace tokenmill::store
