#include "store/sql_store.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <limits>
#include <map>

#include "common/error.h"
#include "maas/audit.h"
#include "maas/crypto.h"
#include "maas/money.h"

namespace tokenmill::store {

using namespace tokenmill::maas;

namespace {

constexpr TimeMs kMinuteMs = 60'000;

std::string join(const std::vector<std::string>& items, char sep) {
  std::string out;
  for (const std::string& s : items) {
    if (!out.empty()) out += sep;
    out += s;
  }
  return out;
}

std::vector<std::string> split(const std::string& text, char sep) {
  std::vector<std::string> out;
  size_t start = 0;
  while (start < text.size()) {
    size_t end = text.find(sep, start);
    if (end == std::string::npos) end = text.size();
    if (end > start) out.push_back(text.substr(start, end - start));
    start = end + 1;
  }
  return out;
}

constexpr const char* kTenantColumns = "SELECT id, name, created_at, balance_micros, reserved_micros FROM tenants";

Tenant read_tenant(const Query& q) {
  return Tenant{q.int64(0), q.text(1), q.int64(2), q.int64(3), q.int64(4)};
}

KeyRecord read_key(const Query& q) {
  KeyRecord k;
  k.id = q.text(0);
  k.tenant_id = q.int64(1);
  k.project_id = q.int64(2);
  k.name = q.text(3);
  k.salt = q.blob(4);
  k.secret_hash = q.blob(5);
  k.sealed_secret = q.blob(6);
  k.models = split(q.text(7), ',');
  k.admin = q.int64(8) != 0;
  k.created_at = q.int64(9);
  k.expires_at = q.int64(10);
  k.revoked_at = q.int64(11);
  k.limits = Limits{q.int64(12), q.int64(13), q.int64(14)};
  return k;
}

Plan read_plan(const Query& q) {
  Plan p = parse_plan(nlohmann::json::parse(q.text(2)));
  p.id = q.int64(0);
  return p;
}

Subscription read_subscription(const Query& q) {
  return Subscription{q.int64(0), q.int64(1), q.int64(2), q.int64(3), q.int64(4)};
}

LedgerRecord read_ledger(const Query& q) {
  LedgerRecord r;
  r.seq = q.int64(0);
  r.request_id = q.text(1);
  r.tenant_id = q.int64(2);
  r.project_id = q.int64(3);
  r.key_id = q.text(4);
  r.model = q.text(5);
  r.billing = parse_billing(q.text(6));
  r.tokens = TokenUsage{q.int64(7), q.int64(8), q.int64(9), q.int64(10)};
  r.cost_micros = q.int64(11);
  r.plan_prompts_milli = q.int64(12);
  r.plan_tokens_milli = q.int64(13);
  r.outcome = parse_outcome(q.text(14)).value_or(Outcome::Error);
  r.code = static_cast<int>(q.int64(15));
  r.error = q.text(16);
  r.admitted_at = q.int64(17);
  r.finished_at = q.int64(18);
  r.first_token_ms = q.int64(19);
  return r;
}

void insert_ledger(Connection& db, const LedgerRecord& r) {
  Query q(db,
          "INSERT INTO ledger(request_id, tenant_id, project_id, key_id, model, billing, prompt_tokens, cached_tokens, "
          "output_tokens, reasoning_tokens, cost_micros, plan_prompts_milli, plan_tokens_milli, outcome, code, error, "
          "admitted_at, finished_at, first_token_ms) VALUES(?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)");
  q.bind(1, r.request_id).bind(2, r.tenant_id).bind(3, r.project_id).bind(4, r.key_id).bind(5, r.model);
  q.bind(6, billing_name(r.billing)).bind(7, r.tokens.prompt).bind(8, r.tokens.cached).bind(9, r.tokens.output);
  q.bind(10, r.tokens.reasoning).bind(11, r.cost_micros).bind(12, r.plan_prompts_milli).bind(13, r.plan_tokens_milli);
  q.bind(14, outcome_name(r.outcome)).bind(15, int64_t{r.code}).bind(16, r.error).bind(17, r.admitted_at);
  q.bind(18, r.finished_at).bind(19, r.first_token_ms).run();
}

// The held amounts of a reservation's plan windows.
struct HeldWindow {
  std::string name;
  int64_t amount_milli;
  TimeMs window_start;
};

std::vector<HeldWindow> held_windows(Connection& db, int64_t tenant_id, const std::string& request_id) {
  Query q(db, "SELECT name, amount_milli, window_start FROM reservation_windows WHERE tenant_id = ? AND request_id = ?");
  q.bind(1, tenant_id).bind(2, request_id);
  std::vector<HeldWindow> out;
  while (q.step()) out.push_back({q.text(0), q.int64(1), q.int64(2)});
  return out;
}

struct OpenReservation {
  int64_t tenant_id = 0;
  std::string request_id;
  std::string state;
  int64_t amount_micros = 0;
  int64_t subscription_id = 0;
  int64_t tokens = 0;
  TimeMs minute_start = 0;
  std::vector<std::string> counters;
};

// Gives back what an open reservation holds. `actual` (per window) and `actual_tokens` are
// the settled usage, counted into the window and minute the request was admitted in; a release
// passes nothing. Rows are locked in admit()'s order (counters, balance, windows), so a settle
// and an admission on another replica never wait for each other in a cycle.
void release_holds(Connection& db, const OpenReservation& r, const std::map<std::string, int64_t>& actual,
                   int64_t actual_tokens) {
  for (const std::string& scope : r.counters) {
    Query q(db,
            "UPDATE limit_counters SET in_flight = CASE WHEN in_flight > 0 THEN in_flight - 1 ELSE 0 END, "
            "tokens = tokens + CASE WHEN minute_start = ?1 THEN ?2 ELSE 0 END WHERE scope = ?3");
    q.bind(1, r.minute_start).bind(2, actual_tokens - r.tokens).bind(3, scope).run();
  }
  Query balance(db, "UPDATE tenants SET reserved_micros = reserved_micros - ? WHERE id = ?");
  balance.bind(1, r.amount_micros).bind(2, r.tenant_id).run();
  for (const HeldWindow& w : held_windows(db, r.tenant_id, r.request_id)) {
    const auto it = actual.find(w.name);
    Query q(db,
            "UPDATE plan_windows SET reserved_milli = reserved_milli - ?1, "
            "used_milli = used_milli + CASE WHEN window_start = ?2 THEN ?3 ELSE 0 END "
            "WHERE subscription_id = ?4 AND name = ?5");
    q.bind(1, w.amount_milli).bind(2, w.window_start).bind(3, it == actual.end() ? 0 : it->second);
    q.bind(4, r.subscription_id).bind(5, w.name).run();
  }
}

// Moves a reservation from state `from` to `to`. The conditional update takes the row's lock,
// so of two replicas closing one reservation at once exactly one sees it change.
bool close_reservation(Connection& db, int64_t tenant_id, const std::string& request_id, const char* from,
                       const char* to, TimeMs now) {
  Query q(db, "UPDATE reservations SET state = ?1, closed_at = ?2 WHERE tenant_id = ?3 AND request_id = ?4 AND state = ?5");
  return q.bind(1, to).bind(2, now).bind(3, tenant_id).bind(4, request_id).bind(5, from).run() == 1;
}

std::optional<OpenReservation> find_reservation(Connection& db, int64_t tenant_id, const std::string& request_id) {
  Query q(db,
          "SELECT state, amount_micros, subscription_id, tokens, minute_start, counters FROM reservations "
          "WHERE tenant_id = ? AND request_id = ?");
  q.bind(1, tenant_id).bind(2, request_id);
  if (!q.step()) return std::nullopt;
  return OpenReservation{tenant_id,   request_id,  q.text(0), q.int64(1), q.int64(2),
                         q.int64(3), q.int64(4), split(q.text(5), '\n')};
}

ReservationState parse_state(const std::string& s) {
  if (s == "open") return ReservationState::Open;
  if (s == "settled") return ReservationState::Settled;
  return ReservationState::Released;
}

// The WHERE clause every usage query shares; fixed text, so its statements are prepared once.
constexpr const char* kUsageWhere =
    " WHERE (?1 = 0 OR l.tenant_id = ?1) AND (?2 = '' OR l.key_id = ?2) AND (?3 = '' OR l.model = ?3)"
    " AND l.admitted_at >= ?4 AND (?5 = 0 OR l.admitted_at < ?5) AND (?6 = 1 OR l.outcome <> 'rejected')";

void bind_usage_filter(Query& q, const UsageFilter& f) {
  q.bind(1, f.tenant_id).bind(2, f.key_id).bind(3, f.model).bind(4, f.from).bind(5, f.to);
  q.bind(6, int64_t{f.include_rejected ? 1 : 0});
}

constexpr int64_t kAuditLock = 0x746d617564697421;  // "tmaudit!": one audit append at a time

AdmitResult refusal(AdmitStatus status) {
  AdmitResult r;
  r.status = status;
  return r;
}

}  // namespace

SqlStore::SqlStore(ConnectionPool::Opener open, size_t connections, std::string master_key_file)
    : pool_(std::move(open), connections), master_key_file_(std::move(master_key_file)) {}

bool SqlStore::retire_instance() {
  if (instance_id_.empty()) return false;
  // A clean exit: nothing of ours is open (tickets settle before the gateway goes), so the
  // instance row goes; a crash leaves it for recover().
  try {
    auto db = pool_.lease();
    Query open(*db, "SELECT COUNT(*) FROM reservations WHERE instance_id = ? AND state = 'open'");
    open.bind(1, instance_id_);
    if (!open.step() || open.int64(0) != 0) return false;
    Query del(*db, "DELETE FROM instances WHERE id = ?");
    del.bind(1, instance_id_).run();
    return true;
  } catch (const std::exception&) {
    return false;  // leaving the row behind is harmless: the next recover() removes it
  }
}

std::string SqlStore::currency() {
  return with_db([&](Connection& db) -> std::string {
    Query q(db, "SELECT value FROM settings WHERE name = 'currency'");
    return q.step() ? q.text(0) : "USD";
  });
}

void SqlStore::set_currency(const std::string& code) {
  return with_db([&](Connection& db) -> void {
    Query q(db, "INSERT INTO settings(name, value) VALUES('currency', ?) ON CONFLICT(name) DO UPDATE SET value = excluded.value");
    q.bind(1, code).run();
  });
}

std::string SqlStore::sealing_key(bool create) {
  const std::string& file = master_key_file_;
  if (file.empty()) {
    if (!create) return {};
    throw Error("this store has no master key file for JWT-enabled keys: add master_key=PATH to the --db URL");
  }
  for (int attempt = 0; attempt < 2; ++attempt) {
    const int fd = ::open(file.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd >= 0) {
      std::string key(32, '\0');
      const ssize_t n = ::read(fd, key.data(), key.size());
      ::close(fd);
      if (n != 32) throw Error("the master key file " + file + " is damaged (it must hold 32 bytes)");
      return key;
    }
    if (errno != ENOENT) throw Error("cannot read the master key file " + file + ": " + std::strerror(errno));
    if (!create) return {};
    // O_EXCL: when two processes race to create it, one wins and the other reads its key.
    const int out = ::open(file.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (out < 0) {
      if (errno == EEXIST) continue;
      throw Error("cannot create the master key file " + file + ": " + std::strerror(errno));
    }
    const std::string key = random_bytes(32);
    const bool ok = ::write(out, key.data(), key.size()) == 32 && ::fsync(out) == 0;
    ::close(out);
    if (!ok) throw Error("cannot write the master key file " + file);
    return key;
  }
  throw Error("cannot read the master key file " + file);
}

Tenant SqlStore::create_tenant(const std::string& name, TimeMs now) {
  return with_db([&](Connection& db) -> Tenant {
    Query q(db, "INSERT INTO tenants(name, created_at) VALUES(?, ?) ON CONFLICT(name) DO NOTHING RETURNING id");
    if (!q.bind(1, name).bind(2, now).step()) throw Error("a tenant named '" + name + "' already exists");
    return Tenant{q.int64(0), name, now, 0, 0};
  });
}

std::optional<Tenant> SqlStore::find_tenant(const std::string& name) {
  return with_db([&](Connection& db) -> std::optional<Tenant> {
    static const std::string sql = std::string(kTenantColumns) + " WHERE name = ?";
    Query q(db, sql.c_str());
    q.bind(1, name);
    if (!q.step()) return std::nullopt;
    return read_tenant(q);
  });
}

std::optional<Tenant> SqlStore::tenant_by_id(int64_t id) {
  return with_db([&](Connection& db) -> std::optional<Tenant> {
    static const std::string sql = std::string(kTenantColumns) + " WHERE id = ?";
    Query q(db, sql.c_str());
    q.bind(1, id);
    if (!q.step()) return std::nullopt;
    return read_tenant(q);
  });
}

std::vector<Tenant> SqlStore::list_tenants() {
  return with_db([&](Connection& db) -> std::vector<Tenant> {
    static const std::string sql = std::string(kTenantColumns) + " ORDER BY id";
    Query q(db, sql.c_str());
    std::vector<Tenant> out;
    while (q.step()) out.push_back(read_tenant(q));
    return out;
  });
}

Project SqlStore::create_project(int64_t tenant_id, const std::string& name, TimeMs now) {
  return with_db([&](Connection& db) -> Project {
    Query q(db, "INSERT INTO projects(tenant_id, name, created_at) VALUES(?, ?, ?) ON CONFLICT DO NOTHING RETURNING id");
    if (!q.bind(1, tenant_id).bind(2, name).bind(3, now).step()) {
      throw Error("the tenant already has a project named '" + name + "'");
    }
    return Project{q.int64(0), tenant_id, name, now};
  });
}

std::optional<Project> SqlStore::find_project(int64_t tenant_id, const std::string& name) {
  return with_db([&](Connection& db) -> std::optional<Project> {
    Query q(db, "SELECT id, tenant_id, name, created_at FROM projects WHERE tenant_id = ? AND name = ?");
    q.bind(1, tenant_id).bind(2, name);
    if (!q.step()) return std::nullopt;
    return Project{q.int64(0), q.int64(1), q.text(2), q.int64(3)};
  });
}

std::vector<Project> SqlStore::list_projects(int64_t tenant_id) {
  return with_db([&](Connection& db) -> std::vector<Project> {
    Query q(db, "SELECT id, tenant_id, name, created_at FROM projects WHERE tenant_id = ? ORDER BY id");
    q.bind(1, tenant_id);
    std::vector<Project> out;
    while (q.step()) out.push_back(Project{q.int64(0), q.int64(1), q.text(2), q.int64(3)});
    return out;
  });
}

namespace {
constexpr const char* kKeyColumns =
    "SELECT id, tenant_id, project_id, name, salt, secret_hash, sealed_secret, models, is_admin, created_at, "
    "expires_at, revoked_at, rpm, tpm, max_concurrent FROM api_keys";
}  // namespace

void SqlStore::insert_key(const KeyRecord& k) {
  return with_db([&](Connection& db) -> void {
    Query q(db,
            "INSERT INTO api_keys(id, tenant_id, project_id, name, salt, secret_hash, sealed_secret, models, is_admin, "
            "created_at, expires_at, revoked_at, rpm, tpm, max_concurrent) VALUES(?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)");
    q.bind(1, k.id).bind(2, k.tenant_id).bind(3, k.project_id).bind(4, k.name).bind_blob(5, k.salt);
    q.bind_blob(6, k.secret_hash);
    if (k.sealed_secret.empty()) q.bind_null(7);
    else q.bind_blob(7, k.sealed_secret);
    q.bind(8, join(k.models, ',')).bind(9, int64_t{k.admin ? 1 : 0}).bind(10, k.created_at).bind(11, k.expires_at);
    q.bind(12, k.revoked_at).bind(13, k.limits.requests_per_minute).bind(14, k.limits.tokens_per_minute);
    q.bind(15, k.limits.max_concurrent).run();
  });
}

std::optional<KeyRecord> SqlStore::find_key(const std::string& id) {
  return with_db([&](Connection& db) -> std::optional<KeyRecord> {
    static const std::string sql = std::string(kKeyColumns) + " WHERE id = ?";
    Query q(db, sql.c_str());
    q.bind(1, id);
    if (!q.step()) return std::nullopt;
    return read_key(q);
  });
}

bool SqlStore::revoke_key(const std::string& id, TimeMs now) {
  return with_db([&](Connection& db) -> bool {
    Query q(db, "UPDATE api_keys SET revoked_at = ? WHERE id = ? AND revoked_at = 0");
    return q.bind(1, now).bind(2, id).run() > 0;
  });
}

void SqlStore::set_key_limits(const std::string& id, const Limits& l) {
  return with_db([&](Connection& db) -> void {
    Query q(db, "UPDATE api_keys SET rpm = ?, tpm = ?, max_concurrent = ? WHERE id = ?");
    if (q.bind(1, l.requests_per_minute).bind(2, l.tokens_per_minute).bind(3, l.max_concurrent).bind(4, id).run() == 0) throw Error("no API key with id '" + id + "'");
  });
}

std::vector<KeyRecord> SqlStore::list_keys(int64_t tenant_id) {
  return with_db([&](Connection& db) -> std::vector<KeyRecord> {
    static const std::string sql = std::string(kKeyColumns) + " WHERE ?1 = 0 OR tenant_id = ?1 ORDER BY created_at, id";
    Query q(db, sql.c_str());
    q.bind(1, tenant_id);
    std::vector<KeyRecord> out;
    while (q.step()) out.push_back(read_key(q));
    return out;
  });
}

void SqlStore::set_price(const ModelPrice& price) {
  return with_db([&](Connection& db) -> void {
    Transaction tx(db);
    Query del(db, "DELETE FROM prices WHERE model = ?");
    del.bind(1, price.model).run();
    for (const PriceTier& t : price.tiers) {
      Query q(db,
              "INSERT INTO prices(model, min_prompt_tokens, input_micros, cached_input_micros, output_micros) "
              "VALUES(?,?,?,?,?)");
      q.bind(1, price.model).bind(2, t.min_prompt_tokens).bind(3, t.input).bind(4, t.cached_input).bind(5, t.output).run();
    }
    tx.commit();
  });
}

namespace {
constexpr const char* kPriceColumns =
    "SELECT model, min_prompt_tokens, input_micros, cached_input_micros, output_micros FROM prices";

// Rows ordered by model then threshold, folded into one ModelPrice per model.
std::vector<ModelPrice> read_prices(Query& q) {
  std::vector<ModelPrice> out;
  while (q.step()) {
    if (out.empty() || out.back().model != q.text(0)) out.push_back(ModelPrice{q.text(0), {}});
    out.back().tiers.push_back(PriceTier{q.int64(1), q.int64(2), q.int64(3), q.int64(4)});
  }
  return out;
}
}  // namespace

std::optional<ModelPrice> SqlStore::find_price(const std::string& model) {
  return with_db([&](Connection& db) -> std::optional<ModelPrice> {
    static const std::string sql = std::string(kPriceColumns) + " WHERE model = ? ORDER BY min_prompt_tokens";
    Query q(db, sql.c_str());
    q.bind(1, model);
    std::vector<ModelPrice> prices = read_prices(q);
    if (prices.empty()) return std::nullopt;
    return std::move(prices.front());
  });
}

std::vector<ModelPrice> SqlStore::list_prices() {
  return with_db([&](Connection& db) -> std::vector<ModelPrice> {
    static const std::string sql = std::string(kPriceColumns) + " ORDER BY model, min_prompt_tokens";
    Query q(db, sql.c_str());
    return read_prices(q);
  });
}

bool SqlStore::delete_price(const std::string& model) {
  return with_db([&](Connection& db) -> bool {
    Query q(db, "DELETE FROM prices WHERE model = ?");
    return q.bind(1, model).run() > 0;
  });
}

void SqlStore::set_model_limits(const std::string& model, const Limits& l) {
  return with_db([&](Connection& db) -> void {
    Query q(db,
            "INSERT INTO model_limits(model, rpm, tpm, max_concurrent) VALUES(?,?,?,?) ON CONFLICT(model) DO UPDATE SET "
            "rpm = excluded.rpm, tpm = excluded.tpm, max_concurrent = excluded.max_concurrent");
    q.bind(1, model).bind(2, l.requests_per_minute).bind(3, l.tokens_per_minute).bind(4, l.max_concurrent).run();
  });
}

Limits SqlStore::model_limits(const std::string& model) {
  return with_db([&](Connection& db) -> Limits {
    Query q(db, "SELECT rpm, tpm, max_concurrent FROM model_limits WHERE model = ?");
    q.bind(1, model);
    if (!q.step()) return {};
    return Limits{q.int64(0), q.int64(1), q.int64(2)};
  });
}

std::optional<int64_t> SqlStore::add_to_balance(int64_t tenant_id, int64_t amount, const std::string& note,
                                                   TimeMs now) {
  return with_db([&](Connection& db) -> std::optional<int64_t> {
    Transaction tx(db);
    Query q(db,
            "UPDATE tenants SET balance_micros = balance_micros + ?1 WHERE id = ?2 "
            "AND balance_micros + ?1 - reserved_micros >= 0 AND balance_micros + ?1 <= ?3");
    if (q.bind(1, amount).bind(2, tenant_id).bind(3, kMaxMicros).run() == 0) return std::nullopt;
    Query journal(db, "INSERT INTO balance_journal(tenant_id, amount_micros, note, at) VALUES(?,?,?,?)");
    journal.bind(1, tenant_id).bind(2, amount).bind(3, note).bind(4, now).run();
    Query balance(db, "SELECT balance_micros FROM tenants WHERE id = ?");
    balance.bind(1, tenant_id).step();
    const int64_t result = balance.int64(0);
    tx.commit();
    return result;
  });
}

std::vector<BalanceEntry> SqlStore::balance_journal(int64_t tenant_id) {
  return with_db([&](Connection& db) -> std::vector<BalanceEntry> {
    Query q(db, "SELECT seq, tenant_id, amount_micros, note, at FROM balance_journal WHERE tenant_id = ? ORDER BY seq");
    q.bind(1, tenant_id);
    std::vector<BalanceEntry> out;
    while (q.step()) out.push_back(BalanceEntry{q.int64(0), q.int64(1), q.int64(2), q.text(3), q.int64(4)});
    return out;
  });
}

Plan SqlStore::upsert_plan(const Plan& plan) {
  return with_db([&](Connection& db) -> Plan {
    Transaction tx(db);
    Query q(db, "INSERT INTO plans(name, definition) VALUES(?, ?) ON CONFLICT(name) DO UPDATE SET definition = excluded.definition");
    q.bind(1, plan.name).bind(2, plan_to_json(plan).dump()).run();
    Query id(db, "SELECT id FROM plans WHERE name = ?");
    id.bind(1, plan.name).step();
    Plan out = plan;
    out.id = id.int64(0);
    tx.commit();
    return out;
  });
}

std::optional<Plan> SqlStore::find_plan(const std::string& name) {
  return with_db([&](Connection& db) -> std::optional<Plan> {
    Query q(db, "SELECT id, name, definition FROM plans WHERE name = ?");
    q.bind(1, name);
    if (!q.step()) return std::nullopt;
    return read_plan(q);
  });
}

std::optional<Plan> SqlStore::plan_by_id(int64_t id) {
  return with_db([&](Connection& db) -> std::optional<Plan> {
    Query q(db, "SELECT id, name, definition FROM plans WHERE id = ?");
    q.bind(1, id);
    if (!q.step()) return std::nullopt;
    return read_plan(q);
  });
}

std::vector<Plan> SqlStore::list_plans() {
  return with_db([&](Connection& db) -> std::vector<Plan> {
    Query q(db, "SELECT id, name, definition FROM plans ORDER BY name");
    std::vector<Plan> out;
    while (q.step()) out.push_back(read_plan(q));
    return out;
  });
}

Subscription SqlStore::subscribe(int64_t tenant_id, const Plan& plan, TimeMs period_start, TimeMs period_end) {
  return with_db([&](Connection& db) -> Subscription {
    Transaction tx(db);
    Query upsert(db,
                 "INSERT INTO subscriptions(tenant_id, plan_id, period_start, period_end) VALUES(?1, ?2, ?3, ?4) "
                 "ON CONFLICT(tenant_id) DO UPDATE SET plan_id = ?2, period_start = ?3, period_end = ?4");
    upsert.bind(1, tenant_id).bind(2, plan.id).bind(3, period_start).bind(4, period_end).run();
    Query read(db, "SELECT id, tenant_id, plan_id, period_start, period_end FROM subscriptions WHERE tenant_id = ?");
    read.bind(1, tenant_id).step();
    const Subscription sub = read_subscription(read);
    // Every window starts empty; what running requests hold stays held until they settle.
    Query drop(db, "DELETE FROM plan_windows WHERE subscription_id = ? AND reserved_milli = 0");
    drop.bind(1, sub.id).run();
    for (const PlanWindow& w : plan.windows) {
      Query q(db,
              "INSERT INTO plan_windows(subscription_id, name, window_start, used_milli) VALUES(?1, ?2, ?3, 0) "
              "ON CONFLICT(subscription_id, name) DO UPDATE SET window_start = ?3, used_milli = 0");
      q.bind(1, sub.id).bind(2, w.name).bind(3, w.anchor == WindowAnchor::Period ? period_start : 0).run();
    }
    tx.commit();
    return sub;
  });
}

std::optional<Subscription> SqlStore::subscription_of(int64_t tenant_id) {
  return with_db([&](Connection& db) -> std::optional<Subscription> {
    Query q(db, "SELECT id, tenant_id, plan_id, period_start, period_end FROM subscriptions WHERE tenant_id = ?");
    q.bind(1, tenant_id);
    if (!q.step()) return std::nullopt;
    return read_subscription(q);
  });
}

bool SqlStore::unsubscribe(int64_t tenant_id) {
  return with_db([&](Connection& db) -> bool {
    Query q(db, "DELETE FROM subscriptions WHERE tenant_id = ?");
    return q.bind(1, tenant_id).run() > 0;
  });
}

std::vector<WindowState> SqlStore::windows(int64_t subscription_id) {
  return with_db([&](Connection& db) -> std::vector<WindowState> {
    Query q(db,
            "SELECT name, window_start, used_milli, reserved_milli FROM plan_windows WHERE subscription_id = ? ORDER BY name");
    q.bind(1, subscription_id);
    std::vector<WindowState> out;
    while (q.step()) out.push_back(WindowState{q.text(0), q.int64(1), q.int64(2), q.int64(3)});
    return out;
  });
}

AdmitResult SqlStore::admit(const Reservation& r, const std::string& instance_id) {
  return with_db([&](Connection& db) -> AdmitResult {
    Transaction tx(db);  // rolls back on every refusal below
    const TimeMs minute = r.now / kMinuteMs * kMinuteMs;
    std::vector<std::string> scopes;
    for (const CounterCharge& c : r.counters) scopes.push_back(c.scope);

    // 1. The request id's claim.
    {
      Query q(db,
              "INSERT INTO reservations(tenant_id, request_id, key_id, model, instance_id, state, billing, amount_micros, "
              "subscription_id, tokens, minute_start, counters, created_at) VALUES(?,?,?,?,?,'open',?,?,?,?,?,?,?) "
              "ON CONFLICT DO NOTHING");
      q.bind(1, r.tenant_id).bind(2, r.request_id).bind(3, r.key_id).bind(4, r.model).bind(5, instance_id);
      q.bind(6, billing_name(r.billing)).bind(7, r.amount_micros).bind(8, r.subscription_id).bind(9, r.tokens);
      if (q.bind(10, minute).bind(11, join(scopes, '\n')).bind(12, r.now).run() == 0) return refusal(AdmitStatus::Duplicate);
    }

    // 2. Limits: one conditional update per scope takes a concurrency slot and counts the minute.
    //    Each step below reads why it failed in a statement of its own; under READ COMMITTED
    //    another replica may have freed room in between, and then the step is tried again, so
    //    a refusal is only ever given with the state that justifies it.
    for (const CounterCharge& c : r.counters) {
      Query create(db, "INSERT INTO limit_counters(scope) VALUES(?) ON CONFLICT DO NOTHING");
      create.bind(1, c.scope).run();
      for (;;) {
        Query q(db,
                "UPDATE limit_counters SET in_flight = in_flight + 1, "
                "requests = CASE WHEN minute_start = ?1 THEN requests ELSE 0 END + 1, "
                "tokens = CASE WHEN minute_start = ?1 THEN tokens ELSE 0 END + ?2, minute_start = ?1 "
                "WHERE scope = ?3 AND (?4 = 0 OR in_flight < ?4) "
                "AND (?5 = 0 OR CASE WHEN minute_start = ?1 THEN requests ELSE 0 END + 1 <= ?5) "
                "AND (?6 = 0 OR CASE WHEN minute_start = ?1 THEN tokens ELSE 0 END + ?2 <= ?6)");
        q.bind(1, minute).bind(2, r.tokens).bind(3, c.scope).bind(4, c.limits.max_concurrent);
        if (q.bind(5, c.limits.requests_per_minute).bind(6, c.limits.tokens_per_minute).run() == 1) break;
        Query why(db, "SELECT in_flight, minute_start, requests, tokens FROM limit_counters WHERE scope = ?");
        why.bind(1, c.scope).step();
        const bool this_minute = why.int64(1) == minute;
        const int64_t requests = this_minute ? why.int64(2) : 0, tokens = this_minute ? why.int64(3) : 0;
        AdmitResult refused = refusal(AdmitStatus::TokenRate);
        refused.scope = c.scope;
        refused.retry_at = minute + kMinuteMs;
        if (c.limits.max_concurrent > 0 && why.int64(0) >= c.limits.max_concurrent) {
          refused.status = AdmitStatus::Concurrency;
          refused.retry_at = 0;
        } else if (c.limits.requests_per_minute > 0 && requests + 1 > c.limits.requests_per_minute) {
          refused.status = AdmitStatus::RequestRate;
        } else if (c.limits.tokens_per_minute == 0 || tokens + r.tokens <= c.limits.tokens_per_minute) {
          continue;  // room was freed since the update
        }
        return refused;
      }
    }

    // 3. Money: hold the worst case on the balance, only if it is free.
    while (r.billing == Billing::Balance) {
      Query q(db,
              "UPDATE tenants SET reserved_micros = reserved_micros + ?1 WHERE id = ?2 "
              "AND balance_micros - reserved_micros >= ?1");
      if (q.bind(1, r.amount_micros).bind(2, r.tenant_id).run() == 1) break;
      Query why(db, "SELECT balance_micros - reserved_micros FROM tenants WHERE id = ?");
      why.bind(1, r.tenant_id);
      AdmitResult refused = refusal(AdmitStatus::Balance);
      refused.available_micros = why.step() ? why.int64(0) : 0;
      if (refused.available_micros >= r.amount_micros) continue;
      return refused;
    }

    // 4. Plan windows: roll an expired window forward and hold the amount, in one update each.
    for (const WindowCharge& w : r.windows) {
      for (;;) {
        Query q(db,
                "UPDATE plan_windows SET "
                "used_milli = CASE WHEN window_start = 0 OR window_start + ?1 <= ?2 THEN 0 ELSE used_milli END, "
                "window_start = CASE WHEN window_start = 0 OR window_start + ?1 <= ?2 THEN ?3 ELSE window_start END, "
                "reserved_milli = reserved_milli + ?4 "
                "WHERE subscription_id = ?5 AND name = ?6 "
                "AND CASE WHEN window_start = 0 OR window_start + ?1 <= ?2 THEN 0 ELSE used_milli END "
                "+ reserved_milli + ?4 <= ?7");
        q.bind(1, w.duration_ms).bind(2, r.now).bind(3, w.fresh_start).bind(4, w.amount_milli);
        const bool held = q.bind(5, r.subscription_id).bind(6, w.window).bind(7, w.limit_milli).run() == 1;
        Query state(db, "SELECT window_start, used_milli, reserved_milli FROM plan_windows WHERE subscription_id = ? AND name = ?");
        state.bind(1, r.subscription_id).bind(2, w.window);
        const bool exists = state.step();
        if (held) {
          Query hold(db,
                     "INSERT INTO reservation_windows(tenant_id, request_id, name, amount_milli, window_start) VALUES(?,?,?,?,?)");
          hold.bind(1, r.tenant_id).bind(2, r.request_id).bind(3, w.window).bind(4, w.amount_milli);
          hold.bind(5, state.int64(0)).run();
          break;
        }
        AdmitResult refused = refusal(AdmitStatus::Window);
        refused.window = w.window;
        refused.code = w.code;
        if (exists) {
          const bool expired = state.int64(0) == 0 || state.int64(0) + w.duration_ms <= r.now;
          const int64_t used = expired ? 0 : state.int64(1);
          refused.window_remaining_milli = std::max<int64_t>(0, w.limit_milli - used - state.int64(2));
          if (w.limit_milli - used - state.int64(2) >= w.amount_milli) continue;  // freed since the update
          // An open window frees up when it resets; a fresh one only when running requests settle.
          refused.retry_at = expired ? r.now + 1000 : state.int64(0) + w.duration_ms;
        }
        return refused;
      }
    }
    tx.commit();
    return refusal(AdmitStatus::Admitted);
  });
}

SettleStatus SqlStore::settle(const Settlement& s) {
  return with_db([&](Connection& db) -> SettleStatus {
    Transaction tx(db);
    const TimeMs at = s.record.finished_at;
    SettleStatus status = SettleStatus::Settled;
    if (!close_reservation(db, s.tenant_id, s.request_id, "open", "settled", at)) {
      if (!close_reservation(db, s.tenant_id, s.request_id, "released", "settled", at)) {
        return find_reservation(db, s.tenant_id, s.request_id) ? SettleStatus::AlreadySettled : SettleStatus::Unknown;
      }
      status = SettleStatus::AfterRelease;
    }
    const OpenReservation r = *find_reservation(db, s.tenant_id, s.request_id);
    const std::map<std::string, int64_t> actual(s.window_amounts.begin(), s.window_amounts.end());
    if (status == SettleStatus::Settled) {
      release_holds(db, r, actual, s.tokens);
    } else {
      // Recovery released this request while it still ran (its instance looked dead): the tokens
      // were produced all the same, so they are charged and counted now, without a hold.
      for (const HeldWindow& w : held_windows(db, r.tenant_id, r.request_id)) {
        const auto it = actual.find(w.name);
        Query q(db,
                "UPDATE plan_windows SET used_milli = used_milli + ?1 WHERE subscription_id = ?2 AND name = ?3 "
                "AND window_start = ?4");
        q.bind(1, it == actual.end() ? 0 : it->second).bind(2, r.subscription_id).bind(3, w.name).bind(4, w.window_start).run();
      }
    }
    Query charge(db, "UPDATE tenants SET balance_micros = balance_micros - ? WHERE id = ?");
    charge.bind(1, s.cost_micros).bind(2, s.tenant_id).run();
    insert_ledger(db, s.record);
    tx.commit();
    return status;
  });
}

void SqlStore::release(int64_t tenant_id, const std::string& request_id) {
  return with_db([&](Connection& db) -> void {
    Transaction tx(db);
    if (!close_reservation(db, tenant_id, request_id, "open", "released", 0)) return;
    release_holds(db, *find_reservation(db, tenant_id, request_id), {}, 0);
    Query windows(db, "DELETE FROM reservation_windows WHERE tenant_id = ? AND request_id = ?");
    windows.bind(1, tenant_id).bind(2, request_id).run();
    Query claim(db, "DELETE FROM reservations WHERE tenant_id = ? AND request_id = ?");
    claim.bind(1, tenant_id).bind(2, request_id).run();
    tx.commit();
  });
}

void SqlStore::record_rejection(const LedgerRecord& record) {
  return with_db([&](Connection& db) -> void {
    insert_ledger(db, record);
  });
}

std::string SqlStore::instance_id(TimeMs now) {
  std::lock_guard<std::mutex> lock(instance_mutex_);
  if (!instance_id_.empty()) return instance_id_;
  const std::string id = to_hex(random_bytes(8));
  hold_instance_lock(id);  // before the row exists, so no recover() ever sees it unlocked
  char host[256] = {};
  ::gethostname(host, sizeof host - 1);
  with_db([&](Connection& db) {
    Query q(db, "INSERT INTO instances(id, started_at, pid, host) VALUES(?,?,?,?)");
    q.bind(1, id).bind(2, now).bind(3, int64_t{::getpid()}).bind(4, std::string(host)).run();
  });
  instance_id_ = id;
  return instance_id_;
}

std::string SqlStore::own_instance() {
  std::lock_guard<std::mutex> lock(instance_mutex_);
  return instance_id_;
}

int64_t SqlStore::release_instance(Connection& db, const std::string& id, TimeMs now) {
  Transaction tx(db);
  if (!instance_gone(db, id)) return 0;
  std::vector<std::pair<int64_t, std::string>> open;
  {
    Query q(db, "SELECT tenant_id, request_id FROM reservations WHERE instance_id = ? AND state = 'open'");
    q.bind(1, id);
    while (q.step()) open.emplace_back(q.int64(0), q.text(1));
  }
  int64_t released = 0;
  for (const auto& [tenant_id, request_id] : open) {
    if (!close_reservation(db, tenant_id, request_id, "open", "released", now)) continue;  // settled meanwhile
    release_holds(db, *find_reservation(db, tenant_id, request_id), {}, 0);
    ++released;
  }
  Query del(db, "DELETE FROM instances WHERE id = ?");
  del.bind(1, id).run();
  tx.commit();
  return released;
}

int64_t SqlStore::recover(TimeMs now) {
  const std::vector<std::string> ids = with_db([&](Connection& db) {
    Query q(db, "SELECT id FROM instances UNION SELECT DISTINCT instance_id FROM reservations WHERE state = 'open'");
    std::vector<std::string> out;
    while (q.step()) out.push_back(q.text(0));
    return out;
  });
  const std::string own = own_instance();
  int64_t released = 0;
  for (const std::string& id : ids) {
    if (id != own) released += with_db([&](Connection& db) { return release_instance(db, id, now); });
  }
  return released;
}

std::vector<ReservationRow> SqlStore::reservations(int64_t tenant_id) {
  return with_db([&](Connection& db) -> std::vector<ReservationRow> {
    Query q(db,
            "SELECT request_id, tenant_id, key_id, model, instance_id, state, billing, amount_micros, created_at "
            "FROM reservations WHERE ?1 = 0 OR tenant_id = ?1 ORDER BY created_at, request_id");
    q.bind(1, tenant_id);
    std::vector<ReservationRow> out;
    while (q.step()) {
      out.push_back(ReservationRow{q.text(0), q.int64(1), q.text(2), q.text(3), q.text(4), parse_state(q.text(5)),
                                   parse_billing(q.text(6)), q.int64(7), q.int64(8)});
    }
    return out;
  });
}

std::vector<LedgerRecord> SqlStore::ledger(const UsageFilter& filter) {
  return with_db([&](Connection& db) -> std::vector<LedgerRecord> {
    static const std::string sql =
        std::string("SELECT l.seq, l.request_id, l.tenant_id, l.project_id, l.key_id, l.model, l.billing, l.prompt_tokens, "
                    "l.cached_tokens, l.output_tokens, l.reasoning_tokens, l.cost_micros, l.plan_prompts_milli, "
                    "l.plan_tokens_milli, l.outcome, l.code, l.error, l.admitted_at, l.finished_at, l.first_token_ms "
                    "FROM ledger l") +
        kUsageWhere + " ORDER BY l.seq LIMIT ?7";
    Query q(db, sql.c_str());
    bind_usage_filter(q, filter);
    q.bind(7, filter.limit > 0 ? filter.limit : std::numeric_limits<int64_t>::max());
    std::vector<LedgerRecord> out;
    while (q.step()) out.push_back(read_ledger(q));
    return out;
  });
}

std::vector<UsageTotals> SqlStore::usage_totals(const UsageFilter& filter, UsageGroup group) {
  return with_db([&](Connection& db) -> std::vector<UsageTotals> {
    // A rejection records what was asked for; only served requests count as usage.
    const std::string sums =
        ", SUM(CASE WHEN l.outcome = 'rejected' THEN 0 ELSE 1 END), SUM(CASE WHEN l.outcome = 'rejected' THEN 1 ELSE 0 END), "
        "SUM(CASE WHEN l.outcome = 'rejected' THEN 0 ELSE l.prompt_tokens END), SUM(l.cached_tokens), "
        "SUM(l.output_tokens), SUM(l.reasoning_tokens), SUM(l.cost_micros), SUM(l.plan_prompts_milli), "
        "SUM(l.plan_tokens_milli) FROM ledger l ";
    static const std::string by_tenant = "SELECT t.name" + sums + "JOIN tenants t ON t.id = l.tenant_id" + kUsageWhere +
                                         " GROUP BY t.id, t.name ORDER BY t.name";
    static const std::string by_key = "SELECT l.key_id" + sums + kUsageWhere + " GROUP BY l.key_id ORDER BY l.key_id";
    static const std::string by_model = "SELECT l.model" + sums + kUsageWhere + " GROUP BY l.model ORDER BY l.model";
    const std::string& sql = group == UsageGroup::Tenant ? by_tenant : group == UsageGroup::Key ? by_key : by_model;
    Query q(db, sql.c_str());
    bind_usage_filter(q, filter);
    std::vector<UsageTotals> out;
    while (q.step()) {
      UsageTotals t;
      t.group = q.text(0);
      t.requests = q.int64(1);
      t.rejected = q.int64(2);
      t.tokens = TokenUsage{q.int64(3), q.int64(4), q.int64(5), q.int64(6)};
      t.cost_micros = q.int64(7);
      t.plan_prompts_milli = q.int64(8);
      t.plan_tokens_milli = q.int64(9);
      out.push_back(t);
    }
    return out;
  });
}

AuditEntry SqlStore::append_audit(AuditEntry entry) {
  return with_db([&](Connection& db) -> AuditEntry {
    Transaction tx(db);
    db.lock_until_commit(kAuditLock);  // on PostgreSQL two appends would otherwise both chain to one entry
    Query last(db, "SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1");
    entry.seq = 1;
    entry.prev_hash.clear();
    if (last.step()) {
      entry.seq = last.int64(0) + 1;
      entry.prev_hash = last.text(1);
    }
    entry.hash = audit_hash(entry);
    Query q(db, "INSERT INTO audit_log(seq, at, actor, action, target, details, prev_hash, hash) VALUES(?,?,?,?,?,?,?,?)");
    q.bind(1, entry.seq).bind(2, entry.at).bind(3, entry.actor).bind(4, entry.action).bind(5, entry.target);
    q.bind(6, entry.details).bind(7, entry.prev_hash).bind(8, entry.hash).run();
    tx.commit();
    return entry;
  });
}

std::vector<AuditEntry> SqlStore::audit_log(int64_t after_seq, int64_t limit) {
  return with_db([&](Connection& db) -> std::vector<AuditEntry> {
    Query q(db,
            "SELECT seq, at, actor, action, target, details, prev_hash, hash FROM audit_log WHERE seq > ? ORDER BY seq "
            "LIMIT ?");
    q.bind(1, after_seq).bind(2, limit > 0 ? limit : std::numeric_limits<int64_t>::max());
    std::vector<AuditEntry> out;
    while (q.step()) {
      out.push_back(AuditEntry{q.int64(0), q.int64(1), q.text(2), q.text(3), q.text(4), q.text(5), q.text(6), q.text(7)});
    }
    return out;
  });
}

}  // namespace tokenmill::store
