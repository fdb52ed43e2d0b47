// store/: persistence for maas/ — the Store implementations (SQLite, PostgreSQL) and their
// schema migrations. Depends on maas/ (the Store interface and records) and common/.
//
// sqlite.h: the SQLite Connection: prepared statements cached per connection, BEGIN IMMEDIATE
// transactions (the write lock is taken at the start, so the conditional updates inside see
// and change one consistent state).
#pragma once

#include <sqlite3.h>

#include <string>
#include <string_view>
#include <unordered_map>

#include "store/sql.h"

namespace tokenmill::store {

class SqliteConnection final : public Connection {
 public:
  explicit SqliteConnection(const std::string& path);
  ~SqliteConnection() override;
  SqliteConnection(const SqliteConnection&) = delete;
  SqliteConnection& operator=(const SqliteConnection&) = delete;

  std::unique_ptr<Statement> statement(const char* sql) override;
  void exec(const char* script) override;
  void begin() override { exec("BEGIN IMMEDIATE"); }
  void commit() override { exec("COMMIT"); }
  void rollback() noexcept override { sqlite3_exec(db_, "ROLLBACK", nullptr, nullptr, nullptr); }
  void lock_until_commit(int64_t) override {}  // BEGIN IMMEDIATE already excludes every other writer

  [[noreturn]] void fail(std::string_view what) const;
  sqlite3* handle() { return db_; }

 private:
  sqlite3* db_ = nullptr;
  std::unordered_map<const char*, sqlite3_stmt*> statements_;  // prepared once, reused
};

}  // namespace tokenmill::store
