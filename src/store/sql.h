// The backend-neutral SQL seam the stores are written against: a Connection runs Statements
// (one execution each: bind, step through rows), a Transaction wraps BEGIN ... COMMIT, and a
// ConnectionPool lends connections to the threads that call a Store. sqlite.h and postgres.h
// implement Connection; sql_store.h holds the one copy of the store's logic and SQL.
//
// SQL is written once in the dialect both backends accept: parameters as "?" or "?N" (the
// PostgreSQL connection rewrites them to "$N"), BIGINT-valued columns, no backend functions.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "common/error.h"

namespace tokenmill::store {

// A transaction that lost a deadlock or serialization conflict: nothing was written, and
// running the whole transaction again is correct.
class RetryableError : public Error {
 public:
  using Error::Error;
};

class Statement {
 public:
  virtual ~Statement() = default;
  // Parameters are numbered from 1, columns from 0.
  virtual void bind(int index, int64_t value) = 0;
  virtual void bind(int index, std::string_view text) = 0;
  virtual void bind_blob(int index, std::string_view bytes) = 0;
  virtual void bind_null(int index) = 0;
  virtual bool step() = 0;  // true while there is a row
  virtual int64_t int64(int column) const = 0;  // 0 for NULL
  virtual std::string text(int column) const = 0;
  virtual std::string blob(int column) const = 0;
  virtual int64_t changes() const = 0;  // rows the executed statement inserted, updated or deleted
};

class Connection {
 public:
  virtual ~Connection() = default;
  virtual std::unique_ptr<Statement> statement(const char* sql) = 0;  // `sql` outlives the connection
  virtual void exec(const char* script) = 0;  // statements without parameters
  virtual void begin() = 0;  // a write transaction
  virtual void commit() = 0;
  virtual void rollback() noexcept = 0;
  // Holds lock `key` until the transaction ends: serializes writers of one thing (the audit
  // chain, migrations) that no row lock covers. A no-op where begin() already serializes.
  virtual void lock_until_commit(int64_t key) = 0;
};

// One execution of a statement, with chainable binds.
class Query {
 public:
  Query(Connection& db, const char* sql) : stmt_(db.statement(sql)) {}

  Query& bind(int index, int64_t value) { return stmt_->bind(index, value), *this; }
  Query& bind(int index, std::string_view text) { return stmt_->bind(index, text), *this; }
  Query& bind(int index, const std::string& text) { return bind(index, std::string_view(text)); }
  Query& bind(int index, const char* text) { return bind(index, std::string_view(text)); }
  Query& bind_blob(int index, std::string_view bytes) { return stmt_->bind_blob(index, bytes), *this; }
  Query& bind_null(int index) { return stmt_->bind_null(index), *this; }
  bool step() { return stmt_->step(); }
  // Runs a statement that returns no rows; returns how many rows it changed.
  int64_t run() {
    while (stmt_->step()) {
    }
    return stmt_->changes();
  }

  int64_t int64(int column) const { return stmt_->int64(column); }
  std::string text(int column) const { return stmt_->text(column); }
  std::string blob(int column) const { return stmt_->blob(column); }

 private:
  std::unique_ptr<Statement> stmt_;
};

// Rolls back unless committed.
class Transaction {
 public:
  explicit Transaction(Connection& db) : db_(db) { db_.begin(); }
  ~Transaction() {
    if (open_) db_.rollback();
  }
  Transaction(const Transaction&) = delete;
  Transaction& operator=(const Transaction&) = delete;
  void commit() {
    open_ = false;
    db_.commit();
  }

 private:
  Connection& db_;
  bool open_ = true;
};

// Up to `capacity` connections, opened on demand and lent to one thread at a time.
class ConnectionPool {
 public:
  using Opener = std::function<std::unique_ptr<Connection>()>;
  ConnectionPool(Opener open, size_t capacity) : open_(std::move(open)), capacity_(capacity) {}

  class Lease {
   public:
    Lease(ConnectionPool& pool, std::unique_ptr<Connection> c) : pool_(pool), c_(std::move(c)) {}
    ~Lease() { pool_.give_back(std::move(c_)); }
    Lease(const Lease&) = delete;
    Lease& operator=(const Lease&) = delete;
    Connection& operator*() { return *c_; }
    Connection* operator->() { return c_.get(); }

   private:
    ConnectionPool& pool_;
    std::unique_ptr<Connection> c_;
  };

  Lease lease() {
    std::unique_lock<std::mutex> lock(mutex_);
    returned_.wait(lock, [this] { return !idle_.empty() || opened_ < capacity_; });
    if (!idle_.empty()) {
      std::unique_ptr<Connection> c = std::move(idle_.back());
      idle_.pop_back();
      return Lease(*this, std::move(c));
    }
    ++opened_;  // counted before opening, so others wait rather than overshoot
    lock.unlock();
    try {
      return Lease(*this, open_());
    } catch (...) {
      lock.lock();
      --opened_;
      returned_.notify_one();
      throw;
    }
  }

 private:
  void give_back(std::unique_ptr<Connection> c) {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      idle_.push_back(std::move(c));
    }
    returned_.notify_one();
  }

  Opener open_;
  size_t capacity_;
  std::mutex mutex_;
  std::condition_variable returned_;
  std::vector<std::unique_ptr<Connection>> idle_;
  size_t opened_ = 0;
};

}  // namespace tokenmill::store
