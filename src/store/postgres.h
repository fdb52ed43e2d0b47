// The PostgreSQL Connection over libpq: statements are prepared once per connection (their
// "?" / "?N" parameters rewritten to "$N") and run with PQexecPrepared, integers and text
// sent as text, blobs as binary; results come back as text. Transactions are READ COMMITTED:
// the store's conditional updates take row locks, which is all its guarantees need.
//
// Errors become tokenmill::Error with the server's message and never the connection string's
// password; a deadlock or serialization failure (SQLSTATE 40P01 / 40001) is a RetryableError.
// A connection the server dropped is reopened on its next use.
#pragma once

#include <libpq-fe.h>

#include <string>
#include <unordered_map>

#include "store/sql.h"

namespace tokenmill::store {

// `url` with its password (in the user part or a password= parameter) replaced by "***".
std::string redact_url(const std::string& url);

// "?" and "?N" placeholders outside quoted text rewritten to "$N".
std::string postgres_placeholders(const char* sql);

class PgConnection final : public Connection {
 public:
  // `conninfo`: a libpq connection URI or key=value string.
  explicit PgConnection(const std::string& conninfo);
  ~PgConnection() override;
  PgConnection(const PgConnection&) = delete;
  PgConnection& operator=(const PgConnection&) = delete;

  std::unique_ptr<Statement> statement(const char* sql) override;
  void exec(const char* script) override;
  void begin() override { exec("BEGIN"); }
  void commit() override { exec("COMMIT"); }
  void rollback() noexcept override;
  void lock_until_commit(int64_t key) override;

  // Runs a prepared statement (prepares it on first use with these parameter types).
  PGresult* execute(const char* sql, int count, const Oid* types, const char* const* values, const int* lengths,
                    const int* formats);

 private:
  void reconnect_if_lost();

  std::string conninfo_;
  PGconn* conn_ = nullptr;
  std::unordered_map<const char*, std::string> prepared_;  // sql -> server-side statement name
};

}  // namespace tokenmill::store
