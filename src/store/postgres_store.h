// The PostgreSQL Store, for several server replicas sharing one database:
//   --db postgres://USER[:PASSWORD]@HOST[:PORT]/DB[?master_key=PATH&pool=N&sslmode=...]
// Any libpq URI parameter passes through; two are tokenmill's own and are taken out first:
//   master_key=PATH  the file of 32 random bytes (mode 0600) sealing the secrets of JWT-enabled
//                    keys, created on first use. Every replica and admin command must read the
//                    same bytes, so it is a file the operator distributes; without it, JWT-enabled
//                    keys cannot be created or verified (plain keys work).
//   pool=N           connections this process opens at most (default: the cores, 4 to 16).
//
// Statements and transactions are the shared ones of SqlStore under READ COMMITTED. Instance
// liveness is a session-level advisory lock keyed by the instance id, held by one extra
// connection for the process's lifetime; the server drops it when that session ends (process
// killed, host gone), and recover() releases the reservations of instances whose lock it can
// take (pg_try_advisory_xact_lock, held until its transaction commits).
#pragma once

#include <memory>
#include <string>

#include "store/postgres.h"
#include "store/sql_store.h"

namespace tokenmill::store {

class PostgresStore final : public SqlStore {
 public:
  explicit PostgresStore(const std::string& url);
  ~PostgresStore() override;

 private:
  struct Config {
    std::string conninfo;  // the URL without tokenmill's parameters
    std::string master_key;
    size_t pool = 0;
  };
  static Config parse(const std::string& url);
  PostgresStore(const Config& config);

  void hold_instance_lock(const std::string& id) override;
  bool instance_gone(Connection& db, const std::string& id) override;

  std::string conninfo_;
  std::unique_ptr<PgConnection> liveness_;  // holds this instance's advisory lock
};

}  // namespace tokenmill::store
