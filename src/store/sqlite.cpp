#include "store/sqlite.h"

namespace tokenmill::store {
namespace {

// One execution of a cached statement; resets it when destroyed.
class SqliteStatement final : public Statement {
 public:
  SqliteStatement(SqliteConnection& db, sqlite3_stmt* stmt) : db_(db), stmt_(stmt) {}
  ~SqliteStatement() override {
    sqlite3_reset(stmt_);
    sqlite3_clear_bindings(stmt_);
  }

  void bind(int index, int64_t value) override { check(sqlite3_bind_int64(stmt_, index, value)); }
  void bind(int index, std::string_view text) override {
    check(sqlite3_bind_text64(stmt_, index, text.data(), text.size(), SQLITE_TRANSIENT, SQLITE_UTF8));
  }
  void bind_blob(int index, std::string_view bytes) override {
    check(sqlite3_bind_blob64(stmt_, index, bytes.data(), bytes.size(), SQLITE_TRANSIENT));
  }
  void bind_null(int index) override { check(sqlite3_bind_null(stmt_, index)); }

  bool step() override {
    const int rc = sqlite3_step(stmt_);
    if (rc == SQLITE_ROW) return true;
    if (rc == SQLITE_DONE) return false;
    db_.fail(std::string("running \"") + std::string(sqlite3_sql(stmt_)).substr(0, 60) + "\"");
  }

  int64_t int64(int column) const override { return sqlite3_column_int64(stmt_, column); }
  std::string text(int column) const override {
    const auto* p = reinterpret_cast<const char*>(sqlite3_column_text(stmt_, column));
    return p ? std::string(p, static_cast<size_t>(sqlite3_column_bytes(stmt_, column))) : std::string();
  }
  std::string blob(int column) const override {
    const auto* p = static_cast<const char*>(sqlite3_column_blob(stmt_, column));
    return p ? std::string(p, static_cast<size_t>(sqlite3_column_bytes(stmt_, column))) : std::string();
  }
  int64_t changes() const override { return sqlite3_changes64(sqlite3_db_handle(stmt_)); }

 private:
  void check(int rc) {
    if (rc != SQLITE_OK) db_.fail("binding a parameter");
  }

  SqliteConnection& db_;
  sqlite3_stmt* stmt_;
};

}  // namespace

SqliteConnection::SqliteConnection(const std::string& path) {
  const int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX;
  if (sqlite3_open_v2(path.c_str(), &db_, flags, nullptr) != SQLITE_OK) {
    const std::string why = db_ ? sqlite3_errmsg(db_) : "out of memory";
    sqlite3_close(db_);
    db_ = nullptr;
    throw Error("cannot open database '" + path + "': " + why);
  }
  sqlite3_extended_result_codes(db_, 1);
  // Another process (an admin command, a second server) may hold the write lock briefly.
  sqlite3_busy_timeout(db_, 10'000);
}

SqliteConnection::~SqliteConnection() {
  for (auto& [sql, stmt] : statements_) sqlite3_finalize(stmt);
  sqlite3_close(db_);
}

void SqliteConnection::fail(std::string_view what) const {
  throw Error("store: " + std::string(what) + ": " + sqlite3_errmsg(db_));
}

void SqliteConnection::exec(const char* script) {
  char* message = nullptr;
  if (sqlite3_exec(db_, script, nullptr, nullptr, &message) != SQLITE_OK) {
    const std::string why = message ? message : sqlite3_errmsg(db_);
    sqlite3_free(message);
    throw Error("store: " + why);
  }
}

std::unique_ptr<Statement> SqliteConnection::statement(const char* sql) {
  auto it = statements_.find(sql);
  if (it == statements_.end()) {
    sqlite3_stmt* stmt = nullptr;
    if (sqlite3_prepare_v3(db_, sql, -1, SQLITE_PREPARE_PERSISTENT, &stmt, nullptr) != SQLITE_OK) {
      fail(std::string("preparing \"") + std::string(sql).substr(0, 60) + "\"");
    }
    it = statements_.emplace(sql, stmt).first;
  }
  return std::make_unique<SqliteStatement>(*this, it->second);
}

}  // namespace tokenmill::store
