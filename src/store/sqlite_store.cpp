#include "store/sqlite_store.h"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <filesystem>

#include "common/error.h"
#include "store/schema.h"
#include "store/sqlite.h"

namespace tokenmill::store {

SqliteStore::SqliteStore(const std::string& path)
    : SqlStore([path] { return std::make_unique<SqliteConnection>(path); }, 1, path + ".master-key"), path_(path) {
  {
    auto db = lease();
    db->exec("PRAGMA journal_mode = WAL");
    db->exec("PRAGMA synchronous = NORMAL");
    db->exec("PRAGMA foreign_keys = ON");
    migrate(*db, Dialect::Sqlite);
    // Checkpoints copy the WAL into the database and fsync it: milliseconds that would land on
    // whichever request's commit crossed the threshold. A thread does them instead, on a
    // connection of its own; PASSIVE never blocks the request path's writers.
    db->exec("PRAGMA wal_autocheckpoint = 0");
  }
  checkpointer_ = std::thread([this] {
    SqliteConnection db(path_);
    std::unique_lock<std::mutex> lock(checkpoint_mutex_);
    while (!checkpoint_stop_.wait_for(lock, std::chrono::milliseconds(500), [this] { return stopping_; })) {
      sqlite3_wal_checkpoint_v2(db.handle(), "main", SQLITE_CHECKPOINT_PASSIVE, nullptr, nullptr);
    }
  });
}

SqliteStore::~SqliteStore() {
  {
    std::lock_guard<std::mutex> lock(checkpoint_mutex_);
    stopping_ = true;
  }
  checkpoint_stop_.notify_all();
  checkpointer_.join();
  if (lock_fd_ < 0) return;
  if (retire_instance()) ::unlink(lock_file(own_instance()).c_str());
  ::close(lock_fd_);
}

void SqliteStore::hold_instance_lock(const std::string& id) {
  const std::string dir = path_ + ".instances";
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) throw Error("cannot create the instance lock folder " + dir + ": " + ec.message());
  const std::string file = lock_file(id);
  const int fd = ::open(file.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (fd < 0 || ::flock(fd, LOCK_EX | LOCK_NB) != 0) {
    if (fd >= 0) ::close(fd);
    throw Error("cannot lock the instance file " + file + ": " + std::strerror(errno));
  }
  lock_fd_ = fd;
}

bool SqliteStore::instance_gone(Connection&, const std::string& id) {
  const std::string file = lock_file(id);
  const int fd = ::open(file.c_str(), O_RDWR | O_CLOEXEC);
  if (fd < 0) return true;  // an instance creates and locks its file before it admits anything
  // flock locks belong to the open file: the live owner's lock refuses ours even in this process.
  const bool gone = ::flock(fd, LOCK_EX | LOCK_NB) == 0;
  if (gone) ::unlink(file.c_str());
  ::close(fd);
  return gone;
}

}  // namespace tokenmill::store
