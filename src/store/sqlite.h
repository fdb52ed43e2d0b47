// store/: persistence for maas/ — the Store implementations (SQLite now; PostgreSQL next) and
// their schema migrations. Depends on maas/ (the Store interface and records) and common/.
//
// sqlite.h: a small RAII layer over the SQLite C API: a connection with cached prepared
// statements, a Query that binds and steps one of them, and a write transaction.
#pragma once

#include <sqlite3.h>

#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_map>

namespace tokenmill::store {

class Database {
 public:
  explicit Database(const std::string& path);
  ~Database();
  Database(const Database&) = delete;
  Database& operator=(const Database&) = delete;

  void exec(const char* sql);
  // The statement for `sql`, prepared once per connection and reused.
  sqlite3_stmt* statement(const char* sql);
  int64_t changes() const { return sqlite3_changes64(db_); }
  int64_t last_insert_rowid() const { return sqlite3_last_insert_rowid(db_); }
  [[noreturn]] void fail(std::string_view what) const;
  sqlite3* handle() { return db_; }

 private:
  sqlite3* db_ = nullptr;
  std::unordered_map<const char*, sqlite3_stmt*> statements_;
};

// One execution of a cached statement: bind with bind(), then step() through the rows.
// Parameters are numbered from 1, columns from 0. Resets the statement when destroyed.
class Query {
 public:
  Query(Database& db, const char* sql);
  ~Query();
  Query(const Query&) = delete;
  Query& operator=(const Query&) = delete;

  Query& bind(int index, int64_t value);
  Query& bind(int index, std::string_view text);
  Query& bind_blob(int index, std::string_view bytes);
  Query& bind_null(int index);
  bool step();  // true while there is a row
  void run();   // steps a statement that returns no rows

  int64_t int64(int column) const { return sqlite3_column_int64(stmt_, column); }
  std::string text(int column) const;
  std::string blob(int column) const;
  bool is_null(int column) const { return sqlite3_column_type(stmt_, column) == SQLITE_NULL; }

 private:
  Database& db_;
  sqlite3_stmt* stmt_;
};

// BEGIN IMMEDIATE ... COMMIT: takes the write lock at the start, so the conditional updates
// inside see and change one consistent state. Rolls back unless committed.
class WriteTransaction {
 public:
  explicit WriteTransaction(Database& db);
  ~WriteTransaction();
  void commit();

 private:
  Database& db_;
  bool open_ = true;
};

}  // namespace tokenmill::store
