#include "store/postgres_store.h"

#include <algorithm>
#include <charconv>
#include <thread>

#include "common/error.h"
#include "store/schema.h"

namespace tokenmill::store {
namespace {

// The advisory lock key of an instance: its id is 16 hex digits, 64 random bits.
int64_t instance_key(const std::string& id) {
  uint64_t key = 0;
  const auto [end, ec] = std::from_chars(id.data(), id.data() + id.size(), key, 16);
  if (ec != std::errc() || end != id.data() + id.size() || id.size() != 16) {
    throw Error("store: '" + id.substr(0, 40) + "' is not an instance id");
  }
  return static_cast<int64_t>(key);
}

}  // namespace

PostgresStore::Config PostgresStore::parse(const std::string& url) {
  Config config;
  config.pool = std::clamp<size_t>(std::thread::hardware_concurrency(), 4, 16);
  const size_t query = url.find('?');
  config.conninfo = url.substr(0, query);
  if (query == std::string::npos) return config;
  std::string kept;
  size_t start = query + 1;
  while (start <= url.size()) {
    size_t end = url.find('&', start);
    if (end == std::string::npos) end = url.size();
    const std::string param = url.substr(start, end - start);
    start = end + 1;
    if (param.rfind("master_key=", 0) == 0) {
      config.master_key = param.substr(11);
    } else if (param.rfind("pool=", 0) == 0) {
      const std::string n = param.substr(5);
      size_t pool = 0;
      const auto [p, ec] = std::from_chars(n.data(), n.data() + n.size(), pool);
      if (ec != std::errc() || p != n.data() + n.size() || pool < 1 || pool > 1000) {
        throw Error("--db: pool=" + n.substr(0, 20) + " is not a connection count (1 to 1000)");
      }
      config.pool = pool;
    } else if (!param.empty()) {
      kept += (kept.empty() ? "?" : "&") + param;
    }
  }
  config.conninfo += kept;
  return config;
}

PostgresStore::PostgresStore(const std::string& url) : PostgresStore(parse(url)) {}

PostgresStore::PostgresStore(const Config& config)
    : SqlStore([conninfo = config.conninfo] { return std::make_unique<PgConnection>(conninfo); }, config.pool,
               config.master_key),
      conninfo_(config.conninfo) {
  auto db = lease();
  migrate(*db, Dialect::Postgres);
}

PostgresStore::~PostgresStore() {
  retire_instance();
  liveness_.reset();  // ends the session: the advisory lock goes with it
}

void PostgresStore::hold_instance_lock(const std::string& id) {
  auto session = std::make_unique<PgConnection>(conninfo_);
  Query q(*session, "SELECT CASE WHEN pg_try_advisory_lock(?) THEN 1 ELSE 0 END");
  if (!q.bind(1, instance_key(id)).step() || q.int64(0) != 1) {
    throw Error("store: cannot take the advisory lock of instance " + id);
  }
  liveness_ = std::move(session);
}

bool PostgresStore::instance_gone(Connection& db, const std::string& id) {
  Query q(db, "SELECT CASE WHEN pg_try_advisory_xact_lock(?) THEN 1 ELSE 0 END");
  return q.bind(1, instance_key(id)).step() && q.int64(0) == 1;
}

}  // namespace tokenmill::store
