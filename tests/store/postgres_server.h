// A throwaway PostgreSQL server for the tests of one binary: initdb in a per-process temporary
// folder, started on 127.0.0.1 at a free port on first use, stopped and removed at exit. It
// runs with fsync off (nothing in it outlives the tests). PostgreSQL refuses to run as root,
// so under root (CI) it runs as the `postgres` user the Debian package creates. Each test gets
// a database of its own from fresh_database().
#pragma once

#include <glob.h>
#include <libpq-fe.h>
#include <netinet/in.h>
#include <pwd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

namespace tokenmill::testing {

class PostgresServer {
 public:
  // The server, started on first call; nullptr when it cannot run (see skip_reason()).
  static PostgresServer* shared() {
    static std::unique_ptr<PostgresServer> server = start();
    return server && server->ready_ ? server.get() : nullptr;
  }
  static std::string& skip_reason() {
    static std::string reason;
    return reason;
  }

  ~PostgresServer() {
    if (!ready_) return;  // its logs stay for whoever reads the skip message
    run(pg_ctl() + " -m immediate stop >/dev/null 2>&1");
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }

  std::string url(const std::string& database) const {
    return "postgres://tokenmill@127.0.0.1:" + std::to_string(port_) + "/" + database;
  }

  // A new, empty database; returns its URL.
  std::string fresh_database() {
    static std::atomic<int> counter{0};
    const std::string name = "t" + std::to_string(counter++);
    const std::string error = sql(url("postgres"), "CREATE DATABASE " + name);
    if (!error.empty()) throw std::runtime_error("CREATE DATABASE failed: " + error);
    return url(name);
  }

  // Runs `statement` on its own connection to `db_url`; returns the error text, empty on success.
  static std::string sql(const std::string& db_url, const std::string& statement) {
    PGconn* conn = PQconnectdb(db_url.c_str());
    std::string error;
    if (PQstatus(conn) != CONNECTION_OK) {
      error = PQerrorMessage(conn);
    } else {
      PGresult* r = PQexec(conn, statement.c_str());
      const ExecStatusType s = PQresultStatus(r);
      if (s != PGRES_COMMAND_OK && s != PGRES_TUPLES_OK) error = PQresultErrorMessage(r);
      PQclear(r);
    }
    PQfinish(conn);
    return error;
  }

  // The first value `query` returns, as text ("" when no row).
  static std::string value(const std::string& db_url, const std::string& query) {
    PGconn* conn = PQconnectdb(db_url.c_str());
    PGresult* r = PQexec(conn, query.c_str());
    std::string out = PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) > 0 ? PQgetvalue(r, 0, 0) : "";
    PQclear(r);
    PQfinish(conn);
    return out;
  }

 private:
  static std::string bin_dir() {
    glob_t g{};
    std::string best;
    if (::glob("/usr/lib/postgresql/*/bin/postgres", 0, nullptr, &g) == 0) {
      std::vector<std::string> found(g.gl_pathv, g.gl_pathv + g.gl_pathc);
      std::sort(found.begin(), found.end(), [](const std::string& a, const std::string& b) {
        return std::atoi(a.c_str() + 20) < std::atoi(b.c_str() + 20);  // by major version
      });
      best = std::filesystem::path(found.back()).parent_path();
    }
    ::globfree(&g);
    return best;
  }

  static int free_port() {
    const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof addr;
    ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
    ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
    ::close(fd);
    return ntohs(addr.sin_port);
  }

  static std::unique_ptr<PostgresServer> start() {
    auto server = std::unique_ptr<PostgresServer>(new PostgresServer);
    server->bin_ = bin_dir();
    if (server->bin_.empty()) {
      skip_reason() = "PostgreSQL server binaries not found (/usr/lib/postgresql/*/bin): install postgresql";
      return nullptr;
    }
    server->dir_ = (std::filesystem::temp_directory_path() / ("tokenmill-pg-" + std::to_string(::getpid()))).string();
    std::filesystem::remove_all(server->dir_);
    std::filesystem::create_directories(server->dir_);
    if (::geteuid() == 0) {
      const passwd* pw = ::getpwnam("postgres");
      if (!pw) {
        skip_reason() = "running as root and there is no `postgres` user to run the PostgreSQL server as";
        return nullptr;
      }
      if (::chown(server->dir_.c_str(), pw->pw_uid, pw->pw_gid) != 0) {
        skip_reason() = "cannot hand " + server->dir_ + " to the postgres user";
        return nullptr;
      }
      server->as_user_ = "runuser -u postgres -- ";
    }
    const std::string data = server->dir_ + "/data";
    if (!server->run(server->bin_ + "/initdb -D " + data + " -A trust -U tokenmill --no-sync -E UTF8 --locale=C >" +
                     server->dir_ + "/initdb.log 2>&1")) {
      skip_reason() = "initdb failed: see " + server->dir_ + "/initdb.log";
      return nullptr;
    }
    for (int attempt = 0; attempt < 5 && !server->ready_; ++attempt) {
      server->port_ = free_port();
      server->ready_ = server->run(server->pg_ctl() + " -w -t 30 -l " + server->dir_ + "/server.log -o \"-p " +
                                   std::to_string(server->port_) + " -k " + server->dir_ +
                                   " -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off"
                                   " -c full_page_writes=off -c max_connections=300\" start >/dev/null 2>&1");
    }
    if (!server->ready_) skip_reason() = "the PostgreSQL server did not start: see " + server->dir_ + "/server.log";
    return server;
  }

  std::string pg_ctl() const { return bin_ + "/pg_ctl -D " + dir_ + "/data"; }
  bool run(const std::string& command) const { return std::system((as_user_ + command).c_str()) == 0; }

  std::string bin_;
  std::string dir_;
  std::string as_user_;
  int port_ = 0;
  bool ready_ = false;
};

}  // namespace tokenmill::testing
