// The SQLite Store: one database file in WAL mode, opened by every server process and admin
// command that names it. Within a process all calls share one connection (a pool of one: no
// busy-waiting between threads); between processes SQLite's write lock serializes BEGIN
// IMMEDIATE transactions. synchronous=NORMAL in WAL mode makes every committed transaction
// survive a killed process; after a power failure the last commits may be lost (the
// database stays consistent). A background thread checkpoints the WAL every half second, so
// no request waits for a checkpoint's fsync.
//
// Beside the database live two things that must not be inside it:
//   PATH.master-key   32 random bytes (mode 0600) sealing the secrets of JWT-enabled keys;
//   PATH.instances/   one lock file per running instance, flock()ed while the process lives,
//                     which is how recover() tells a crashed instance from a live one.
#pragma once

#include <condition_variable>
#include <mutex>
#include <string>
#include <thread>

#include "store/sql_store.h"

namespace tokenmill::store {

class SqliteStore final : public SqlStore {
 public:
  explicit SqliteStore(const std::string& path);
  ~SqliteStore() override;

 private:
  void hold_instance_lock(const std::string& id) override;
  bool instance_gone(Connection& db, const std::string& id) override;
  std::string lock_file(const std::string& id) const { return path_ + ".instances/" + id; }

  std::string path_;
  int lock_fd_ = -1;

  std::mutex checkpoint_mutex_;
  std::condition_variable checkpoint_stop_;
  bool stopping_ = false;
  std::thread checkpointer_;
};

}  // namespace tokenmill::store
