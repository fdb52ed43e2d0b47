#include "store/open_store.h"

#include "common/error.h"
#include "store/postgres_store.h"
#include "store/sqlite_store.h"

namespace tokenmill::store {

std::unique_ptr<maas::Store> open_store(const std::string& url) {
  const std::string sqlite_prefix = "sqlite:";
  if (url.rfind(sqlite_prefix, 0) == 0) {
    std::string path = url.substr(sqlite_prefix.size());
    // "sqlite:///abs/path" and "sqlite://rel" read like URLs; accept them as paths too.
    if (path.rfind("//", 0) == 0) path = path.substr(2);
    if (path.empty()) throw Error("--db sqlite: needs a file path, e.g. sqlite:/var/lib/tokenmill/tokenmill.db");
    if (path == ":memory:") throw Error("--db sqlite::memory: is not supported: a server and its admin commands share one file");
    return std::make_unique<SqliteStore>(path);
  }
  if (url.rfind("postgres://", 0) == 0 || url.rfind("postgresql://", 0) == 0) {
    return std::make_unique<PostgresStore>(url);
  }
  throw Error("unknown --db URL '" + redact_url(url).substr(0, 80) +
              "': expected sqlite:PATH or postgres://USER@HOST:PORT/DB");
}

}  // namespace tokenmill::store
