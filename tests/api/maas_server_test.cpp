// The metered server end to end: `tokenmill serve --db`, keys and prices set with `tokenmill
// admin`, and the official openai SDK as the client (metering_clients.mjs). Sixty-four requests
// at once against a small balance, a plan window and a concurrency limit never get more than
// there is, every admitted request is settled, and no request that fitted was refused; a
// server killed with SIGKILL in the middle of 20 streams leaves a ledger whose invariants hold
// after a restart; the ledger equals what the clients were told; hostile requests are clean
// errors; open mode stays on loopback.
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <fstream>
#include <map>
#include <optional>
#include <thread>

#include <nlohmann/json.hpp>

#include "maas/keys.h"
#include "maas/money.h"
#include "server_env.h"
#include "store/open_store.h"

namespace tokenmill::testing {
namespace {

using Json = nlohmann::json;

// Prices per million tokens: 0.001 per uncached prompt token, 0.0001 cached, 0.002 output,
// so a request costs exactly uncached x 1000 + cached x 100 + output x 2000 micro-units.
int64_t expected_cost(int64_t prompt, int64_t cached, int64_t output) {
  return (prompt - cached) * 1000 + cached * 100 + output * 2000;
}

class MeteredServer : public ::testing::Test {
 protected:
  void SetUp() override {
    modules_ = openai_modules();
    const auto dir = std::filesystem::temp_directory_path() / "tokenmill-tests";
    std::filesystem::create_directories(dir);
    db_ = (dir / ("metered-" + std::to_string(::getpid()) + "-" +
                  ::testing::UnitTest::GetInstance()->current_test_info()->name() + ".db"))
              .string();
    clean();
    admin("prices set --model tiny --input 1000 --cached-input 100 --output 2000");
  }
  void TearDown() override {
    server_.reset();
    clean();
  }
  void clean() {
    for (const char* s : {"", "-wal", "-shm", ".master-key"}) std::filesystem::remove(db_ + s);
    std::filesystem::remove_all(db_ + ".instances");
  }

  Json admin(const std::string& args) {
    int code = -1;
    const std::string out = run_capture(std::string(TOKENMILL_BINARY) + " admin --db sqlite:" + db_ + " --json " + args, code);
    EXPECT_EQ(code, 0) << args << ": " << out;
    return Json::parse(out, nullptr, false);
  }
  // A tenant with `balance` and a key made with `key_options`; returns the key.
  std::string tenant(const std::string& name, const std::string& balance, const std::string& key_options = "") {
    admin("tenants create " + name);
    admin("balance top-up --tenant " + name + " --amount " + balance);
    return admin("keys create --tenant " + name + " " + key_options)["key"];
  }
  // Defines a plan from its JSON (docs/MAAS.md) through `tokenmill admin plans set`.
  void set_plan(const std::string& definition) {
    const auto file = std::filesystem::path(db_ + ".plan.json");
    std::ofstream(file) << definition;
    admin("plans set --file " + file.string());
    std::filesystem::remove(file);
  }
  void start() {
    server_ = std::make_unique<ServerProcess>(serve_tiny({"--db", "sqlite:" + db_}));
    ASSERT_GT(server_->port(), 0) << server_->log();
  }
  // metering_clients.mjs with COUNT requests at once; the per-request results.
  Json clients(const std::string& key, int count, int max_tokens, const std::string& tag, bool stream = false) {
    int code = -1;
    const std::string out = run_capture("OPENAI_MODULES=" + modules_ + " node " + TOKENMILL_SOURCE_DIR +
                                            "/tests/api/metering_clients.mjs " + server_->url() + " " + key + " tiny " +
                                            std::to_string(count) + " " + std::to_string(max_tokens) + " " + tag +
                                            (stream ? " stream" : ""),
                                        code);
    EXPECT_EQ(code, 0) << out;
    const size_t at = out.find("RESULTS ");
    return at == std::string::npos ? Json::array() : Json::parse(out.substr(at + 8), nullptr, false);
  }
  HttpReply get(const std::string& path, const std::string& key) {
    return http(server_->port(), "GET", path, "", "Authorization: Bearer " + key + "\r\n");
  }
  HttpReply post(const std::string& path, const std::string& body, const std::string& headers) {
    return http(server_->port(), "POST", path, body, headers);
  }

  // The ledger invariants for `tenant`, read from the database itself: every reservation is
  // settled with exactly one ledger record or released with none, nothing is held any more, the
  // balance is what was paid in less what the ledger charged, each record charges exactly its
  // tokens, and each admitted client's usage is in the ledger as the client received it.
  // Returns the records by request id.
  std::map<std::string, maas::LedgerRecord> check_ledger(const std::string& tenant, int64_t paid_in, const Json& results) {
    const auto store = store::open_store("sqlite:" + db_);
    const maas::Tenant t = *store->find_tenant(tenant);
    maas::UsageFilter filter;
    filter.tenant_id = t.id;
    std::map<std::string, maas::LedgerRecord> settled;
    std::map<std::string, int> records;
    int64_t charged = 0;
    for (const maas::LedgerRecord& r : store->ledger(filter)) {
      if (r.outcome == maas::Outcome::Rejected) continue;
      ++records[r.request_id];
      settled[r.request_id] = r;
      charged += r.cost_micros;
      if (r.billing == maas::Billing::Balance) {
        EXPECT_EQ(r.cost_micros, expected_cost(r.tokens.prompt, r.tokens.cached, r.tokens.output)) << r.request_id;
      }
    }
    for (const maas::ReservationRow& r : store->reservations(t.id)) {
      EXPECT_NE(r.state, maas::ReservationState::Open) << r.request_id;
      EXPECT_EQ(records[r.request_id], r.state == maas::ReservationState::Settled ? 1 : 0) << r.request_id;
    }
    const maas::Tenant after = *store->find_tenant(tenant);
    EXPECT_EQ(after.reserved_micros, 0);
    EXPECT_EQ(after.balance_micros, paid_in - charged);
    EXPECT_GE(after.balance_micros, 0);
    for (const Json& r : results) {
      if (r["status"] != 200 || r["usage"].is_null()) continue;
      const auto it = settled.find(r["request_id"].get<std::string>());
      if (it == settled.end()) {
        ADD_FAILURE() << "no ledger record for " << r["request_id"];
        continue;
      }
      EXPECT_EQ(it->second.tokens.prompt, r["usage"]["prompt_tokens"]) << r.dump();
      EXPECT_EQ(it->second.tokens.cached, r["usage"]["prompt_tokens_details"]["cached_tokens"]) << r.dump();
      EXPECT_EQ(it->second.tokens.output, r["usage"]["completion_tokens"]) << r.dump();
    }
    return settled;
  }

  std::string modules_;
  std::string db_;
  std::unique_ptr<ServerProcess> server_;
};

#define NEEDS_SDK() \
  if (modules_.empty()) GTEST_SKIP() << "node or the openai SDK is not installed (the build installs it when npm can reach its registry)"

int count_status(const Json& results, int status) {
  return static_cast<int>(std::count_if(results.begin(), results.end(), [&](const Json& r) { return r["status"] == status; }));
}

TEST_F(MeteredServer, SixtyFourRequestsOnASmallBalance) {
  NEEDS_SDK();
  const std::string key = tenant("acme", "2.5");
  start();
  // One request first, so the shared prompt prefix is in the cache for the others.
  const Json warm = clients(key, 1, 16, "warm");
  ASSERT_EQ(warm[0]["status"], 200) << warm.dump();
  const Json results = clients(key, 64, 16, "burst");
  ASSERT_EQ(results.size(), 64u);
  const int admitted = count_status(results, 200);
  EXPECT_GT(count_status(results, 402), 0) << "the balance should not cover all 64";
  EXPECT_EQ(admitted + count_status(results, 402), 64) << results.dump();
  int64_t required = 0;
  for (const Json& r : results) {
    if (r["status"] != 402) continue;
    const Json& e = r["error"];
    EXPECT_EQ(e["code"], "1113");
    EXPECT_EQ(e["type"], "insufficient_quota");
    required = std::max(required, maas::parse_money(e["required"].get<std::string>(), "required"));
    // Refused only because it did not fit at that moment.
    EXPECT_LT(maas::parse_money(e["available"].get<std::string>(), "available"),
              maas::parse_money(e["required"].get<std::string>(), "required"))
        << e.dump();
  }
  EXPECT_EQ(server_->stop(SIGTERM), 0) << server_->log();
  Json all = results;
  all.push_back(warm[0]);
  const auto settled = check_ledger("acme", 2'500'000, all);
  EXPECT_EQ(settled.size(), static_cast<size_t>(admitted + 1));
  // Whatever else happened, every request that fitted in what the warm-up left was admitted.
  const int64_t left = 2'500'000 - settled.at("warm-0").cost_micros;
  EXPECT_GE(admitted, left / required);
  int64_t cached = 0;
  for (const auto& [id, r] : settled) cached += r.tokens.cached;
  EXPECT_GT(cached, 0) << "the shared prefix should have come from the cache, priced as cached";
}

TEST_F(MeteredServer, SixtyFourRequestsOnAPlanWindow) {
  NEEDS_SDK();
  set_plan(R"({"name": "lite", "period": "30d", "models": ["tiny"],
    "windows": [{"name": "5h", "duration": "5h", "anchor": "first_use", "unit": "prompts", "limit": 10},
                {"name": "weekly", "duration": "7d", "unit": "prompts", "limit": 100}]})");
  const std::string key = tenant("planco", "100");
  admin("plans subscribe --tenant planco --plan lite");
  start();
  const Json results = clients(key, 64, 8, "plan");
  // Prompts are never given back, so exactly the window's ten get through.
  EXPECT_EQ(count_status(results, 200), 10) << results.dump();
  EXPECT_EQ(count_status(results, 429), 54);
  for (const Json& r : results) {
    if (r["status"] != 429) continue;
    EXPECT_EQ(r["error"]["code"], "1308");
    EXPECT_TRUE(r["error"]["next_flush_time"].is_number());
    EXPECT_FALSE(r["retry_after"].is_null());
  }
  // The quota endpoint says the same, for the key itself.
  const HttpReply quota = get("/v1/quota", key);
  ASSERT_EQ(quota.status, 200) << quota.body;
  const Json q = Json::parse(quota.body);
  EXPECT_EQ(q["windows"][0]["used"], "10");
  EXPECT_EQ(q["windows"][0]["remaining"], "0");
  EXPECT_FALSE(q["windows"][0]["next_reset"].is_null());
  EXPECT_EQ(q["windows"][1]["used"], "10");
  EXPECT_EQ(server_->stop(SIGTERM), 0) << server_->log();
  // The plan never drew on the balance.
  const auto settled = check_ledger("planco", 100'000'000, results);
  EXPECT_EQ(settled.size(), 10u);
  for (const auto& [id, r] : settled) {
    EXPECT_EQ(r.billing, maas::Billing::Plan);
    EXPECT_EQ(r.cost_micros, 0);
    EXPECT_EQ(r.plan_prompts_milli, 1000);
  }
}

TEST_F(MeteredServer, SixtyFourRequestsOnAConcurrencyLimit) {
  NEEDS_SDK();
  const std::string key = tenant("busy", "1000", "--concurrency 4");
  start();
  const Json results = clients(key, 64, 24, "conc");
  const int admitted = count_status(results, 200);
  EXPECT_GE(admitted, 4);
  EXPECT_EQ(admitted + count_status(results, 429), 64) << results.dump();
  for (const Json& r : results) {
    if (r["status"] != 429) continue;
    EXPECT_EQ(r["error"]["code"], "1302");
    EXPECT_EQ(r["retry_after"], "1");
  }
  EXPECT_EQ(server_->stop(SIGTERM), 0) << server_->log();
  const auto settled = check_ledger("busy", 1'000'000'000, results);
  EXPECT_EQ(settled.size(), static_cast<size_t>(admitted));
  // Never more than 4 at once, and a refusal only while 4 ran (to the millisecond).
  std::vector<std::pair<maas::TimeMs, maas::TimeMs>> spans;
  for (const auto& [id, r] : settled) spans.emplace_back(r.admitted_at, r.finished_at);
  const auto store = store::open_store("sqlite:" + db_);
  for (const maas::LedgerRecord& r : store->ledger(maas::UsageFilter{})) {
    const maas::TimeMs t = r.admitted_at;
    // Times are read just before each transaction, in milliseconds: a millisecond either side
    // is the clock's, not the limit's.
    int open_strictly = 0, open_loosely = 0;
    for (const auto& [from, to] : spans) {
      open_strictly += from + 1 < t && t + 1 < to;
      open_loosely += from <= t && t <= to + 5;
    }
    EXPECT_LE(open_strictly, 4);
    if (r.outcome == maas::Outcome::Rejected) {
      EXPECT_GE(open_loosely, 4) << r.request_id;
    }
  }
}

TEST_F(MeteredServer, KilledDuringTwentyStreamsRestartsWithAConsistentLedger) {
  NEEDS_SDK();
  const std::string key = tenant("crashco", "1000");
  start();
  FILE* node = ::popen(("OPENAI_MODULES=" + modules_ + " node " + TOKENMILL_SOURCE_DIR + "/tests/api/metering_clients.mjs " +
                        server_->url() + " " + key + " tiny 20 1000 crash stream 2>&1")
                           .c_str(),
                       "r");
  ASSERT_NE(node, nullptr);
  std::string out;
  char line[65536];
  while (out.find("STARTED") == std::string::npos && std::fgets(line, sizeof line, node)) out += line;
  ASSERT_NE(out.find("STARTED"), std::string::npos) << out;
  EXPECT_EQ(server_->stop(SIGKILL), -1);  // died from the signal
  while (std::fgets(line, sizeof line, node)) out += line;
  ::pclose(node);
  const Json results = Json::parse(out.substr(out.find("RESULTS ") + 8), nullptr, false);
  ASSERT_EQ(count_status(results, 200), 20) << out;

  // The restarted server releases what the dead one held, and serves again.
  start();
  EXPECT_NE(server_->log().find("released 20 reservations"), std::string::npos) << server_->log();
  const Json after = clients(key, 1, 4, "after");
  EXPECT_EQ(after[0]["status"], 200) << after.dump();
  EXPECT_EQ(server_->stop(SIGTERM), 0) << server_->log();
  const auto settled = check_ledger("crashco", 1'000'000'000, after);
  EXPECT_EQ(settled.size(), 1u);
  const auto store = store::open_store("sqlite:" + db_);
  const auto reservations = store->reservations(0);
  EXPECT_EQ(std::count_if(reservations.begin(), reservations.end(),
                          [](const maas::ReservationRow& r) { return r.state == maas::ReservationState::Released; }),
            20);
}

TEST_F(MeteredServer, ADisconnectedStreamPaysForWhatWasProduced) {
  const std::string key = tenant("acme", "10");
  start();
  {
    Connection c(server_->port());
    const std::string body =
        R"({"model":"tiny","prompt":"once upon a time","max_tokens":1500,"stream":true,"ignore_eos":true,"request_id":"gone"})";
    c.send("POST /v1/completions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + key +
           "\r\nContent-Type: application/json\r\nContent-Length: " + std::to_string(body.size()) + "\r\n\r\n" + body);
    c.read_until("\"text\"");  // generating
  }  // and the client is gone
  std::optional<maas::LedgerRecord> record;
  for (int i = 0; i < 200 && !record; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    const auto store = store::open_store("sqlite:" + db_);
    for (const maas::LedgerRecord& r : store->ledger(maas::UsageFilter{})) {
      if (r.request_id == "gone") record = r;
    }
  }
  ASSERT_TRUE(record) << "the cancelled request was never settled";
  EXPECT_EQ(record->outcome, maas::Outcome::ClientDisconnected);
  EXPECT_GT(record->tokens.output, 0);
  EXPECT_LT(record->tokens.output, 1500);
  EXPECT_EQ(server_->stop(SIGTERM), 0) << server_->log();
  check_ledger("acme", 10'000'000, Json::array());  // charged exactly its tokens, nothing held
}

TEST_F(MeteredServer, HostileRequestsAreCleanErrors) {
  const std::string key = tenant("acme", "10");
  const std::string other = tenant("other", "10");
  const Json jwt_key = admin("keys create --tenant acme --jwt");
  const std::string admin_key = admin("keys create --tenant other --admin")["key"];
  const std::string revoked = admin("keys create --tenant acme")["key"];
  admin("keys revoke " + revoked.substr(0, revoked.find('.')));
  start();
  const std::string body = R"({"model":"tiny","prompt":"hello","max_tokens":2)";
  auto chat = [&](const std::string& headers, const std::string& extra = "") {
    return post("/v1/completions", body + extra + "}", headers);
  };
  auto bearer = [](const std::string& k) { return "Authorization: Bearer " + k + "\r\n"; };
  auto error_code = [](const HttpReply& r) {
    const Json j = Json::parse(r.body, nullptr, false);
    return j.is_object() && j.contains("error") ? j["error"].value("code", Json()).dump() : r.body;
  };
  const std::string id = jwt_key["id"], secret = jwt_key["key"].get<std::string>().substr(id.size() + 1);
  const int64_t now = std::chrono::duration_cast<std::chrono::milliseconds>(
                          std::chrono::system_clock::now().time_since_epoch()).count();
  struct Case {
    std::string what, headers, extra;
    int status;
    std::string code;
  };
  const std::vector<Case> cases = {
      {"no key", "", "", 401, "\"1001\""},
      {"forged secret", bearer(key.substr(0, key.find('.') + 1) + std::string(32, 'A')), "", 401, "\"1000\""},
      {"unknown id", bearer("ffffffffffffffffffffffff.secret"), "", 401, "\"1000\""},
      {"revoked", bearer(revoked), "", 401, "\"1000\""},
      {"sql in the key", bearer("' OR 1=1 --.x"), "", 401, "\"1000\""},
      {"oversized key", bearer(std::string(6000, 'k')), "", 401, "\"1002\""},
      {"expired jwt", bearer(maas::make_jwt(id, secret, now - 1000, now - 60'000)), "", 401, "\"1003\""},
      {"forged jwt", bearer(maas::make_jwt(id, "guess", now + 60'000, now)), "", 401, "\"1004\""},
      {"sql request id", bearer(key), R"(,"request_id":"x'; DROP TABLE ledger; --")", 400, "\"1210\""},
      {"oversized request id", bearer(key), ",\"request_id\":\"" + std::string(5000, 'r') + "\"", 400, "\"1210\""},
      {"negative max_tokens", bearer(key), ",\"max_tokens\":-5", 400, ""},
      {"absurd max_tokens", bearer(key), ",\"max_tokens\":99999999999", 400, ""},
  };
  for (const Case& c : cases) {
    const HttpReply r = chat(c.headers, c.extra);
    EXPECT_EQ(r.status, c.status) << c.what << ": " << r.body;
    if (!c.code.empty()) {
      EXPECT_EQ(error_code(r), c.code) << c.what << ": " << r.body;
    }
  }
  // Valid ones: the key in either header, a fresh JWT; then the same request id again.
  EXPECT_EQ(chat(bearer(key), R"(,"request_id":"once")").status, 200);
  EXPECT_EQ(chat("x-api-key: " + key + "\r\n", R"(,"request_id":"twice")").status, 200);
  EXPECT_EQ(chat(bearer(maas::make_jwt(id, secret, now + 60'000, now))).status, 200);
  const HttpReply again = chat(bearer(key), R"(,"request_id":"once")");
  EXPECT_EQ(again.status, 409) << again.body;
  // The same id is free for another tenant.
  EXPECT_EQ(chat(bearer(other), R"(,"request_id":"once")").status, 200);
  // Other tenants' data and the admin API stay out of reach.
  EXPECT_EQ(get("/v1/usage?tenant=other", key).status, 403);
  EXPECT_EQ(get("/admin/v1/tenants", key).status, 403);
  EXPECT_EQ(post("/admin/v1/balance/top-up", R"({"tenant":"acme","amount":"1000"})", bearer(key)).status, 403);
  // Only the three admitted requests reached acme's ledger: nothing else was written.
  const Json mine = Json::parse(get("/v1/usage?format=json&group=key", key).body);
  EXPECT_EQ(mine["total"]["requests"], 3) << mine.dump();
  EXPECT_EQ(mine["total"]["rejected"], 0);
  // An admin key works over HTTP.
  EXPECT_EQ(post("/admin/v1/balance/top-up", R"({"tenant":"acme","amount":"1"})", bearer(admin_key)).status, 200);
  const HttpReply csv = get("/admin/v1/usage?tenant=acme&format=csv", admin_key);
  EXPECT_EQ(csv.status, 200);
  EXPECT_NE(csv.head.find("text/csv"), std::string::npos);
  EXPECT_EQ(server_->stop(SIGTERM), 0) << server_->log();
  check_ledger("acme", 11'000'000, Json::array());
}

TEST(OpenMode, LoopbackOnlyUnlessInsecureOpen) {
  ServerProcess open(serve_tiny());
  ASSERT_GT(open.port(), 0) << open.log();
  EXPECT_NE(open.log().find("open mode"), std::string::npos) << open.log();
  EXPECT_EQ(http(open.port(), "POST", "/v1/completions", R"({"model":"tiny","prompt":"hi","max_tokens":2})").status, 200);
  EXPECT_EQ(http(open.port(), "GET", "/admin/v1/tenants").status, 404);
  EXPECT_EQ(open.stop(SIGTERM), 0);

  std::string args;
  for (const std::string& a : serve_tiny()) args += " " + a;
  int code = -1;
  const std::string refused = run_capture(std::string(TOKENMILL_BINARY) + " serve" + args + " --listen 0.0.0.0:0", code);
  EXPECT_NE(code, 0);
  EXPECT_NE(refused.find("--insecure-open"), std::string::npos) << refused;
  const std::string allowed =
      run_capture("timeout 8 " + std::string(TOKENMILL_BINARY) + " serve" + args + " --listen 0.0.0.0:0 --insecure-open", code);
  EXPECT_NE(allowed.find("listening on http://0.0.0.0:"), std::string::npos) << allowed;
}

TEST_F(MeteredServer, EveryModelRequestNeedsAKey) {
  start();
  EXPECT_NE(server_->log().find("every model request needs an API key"), std::string::npos);
  const HttpReply r = http(server_->port(), "POST", "/v1/completions", R"({"model":"tiny","prompt":"hi","max_tokens":2})");
  EXPECT_EQ(r.status, 401);
}

// Refusals on the Anthropic routes are Anthropic-shaped: a bad key authentication_error (401),
// an exhausted plan window rate_limit_error (429, with Retry-After), an empty balance
// billing_error (402) — each {"type": "error", "error": {"type", "message"}}.
TEST_F(MeteredServer, AnthropicRefusalsCarryAnthropicErrorTypes) {
  set_plan(R"({"name": "one", "period": "30d", "models": ["tiny"],
    "windows": [{"name": "5h", "duration": "5h", "unit": "prompts", "limit": 1}]})");
  const std::string planned = tenant("oneshot", "1");
  admin("plans subscribe --tenant oneshot --plan one");
  const std::string broke = tenant("broke", "0.000001");
  start();
  const std::string body = R"({"model":"tiny","max_tokens":4,"messages":[{"role":"user","content":"hi"}]})";
  auto refused = [&](const std::string& key, int status, const char* type) {
    const HttpReply r = post("/v1/messages", body, "x-api-key: " + key + "\r\n");
    EXPECT_EQ(r.status, status) << r.body;
    const Json j = Json::parse(r.body, nullptr, false);
    EXPECT_EQ(j["type"], "error") << r.body;
    EXPECT_EQ(j["error"]["type"], type) << r.body;
    EXPECT_TRUE(j["error"]["message"].is_string()) << r.body;
    return r;
  };
  EXPECT_EQ(post("/v1/messages", body, "x-api-key: " + planned + "\r\n").status, 200);
  const HttpReply limited = refused(planned, 429, "rate_limit_error");
  EXPECT_NE(limited.head.find("Retry-After"), std::string::npos) << limited.head;
  refused(broke, 402, "billing_error");
  refused("sk-not-a-key", 401, "authentication_error");
}

// Zhipu's coding-plan usage query reports the key's plan windows: a token window and a prompt
// window in Zhipu's limit shape, their usage matching the ledger; a tenant billed by balance
// has none, and a bad key is refused in the same envelope. Zhipu's own tools send the key in
// Authorization without a scheme, so that works too.
TEST_F(MeteredServer, ZhipuQuotaLimitReportsThePlanWindows) {
  set_plan(R"({"name": "pro", "period": "30d", "models": ["tiny"],
    "windows": [{"name": "5h", "duration": "5h", "anchor": "first_use", "unit": "weighted_tokens", "limit": 100000},
                {"name": "monthly", "duration": "30d", "unit": "prompts", "limit": 50}]})");
  const std::string key = tenant("coder", "1");
  admin("plans subscribe --tenant coder --plan pro");
  const std::string payg = tenant("payg", "1");
  start();
  const std::string path = "/api/monitor/usage/quota/limit";
  const Json before = Json::parse(get(path, key).body);
  ASSERT_EQ(before["data"]["limits"].size(), 2u) << before.dump();
  EXPECT_FALSE(before["data"]["limits"][0].contains("nextResetTime")) << "a first_use window opens with a request";
  for (const char* id : {"quota-one", "quota-two"}) {
    const HttpReply r = post("/api/coding/paas/v4/chat/completions",
                             std::string(R"({"model":"tiny","max_tokens":4,"request_id":")") + id +
                                 R"(","messages":[{"role":"user","content":"hi"}]})",
                             "Authorization: Bearer " + key + "\r\n");
    ASSERT_EQ(r.status, 200) << r.body;
  }
  const HttpReply reply = http(server_->port(), "GET", path, "", "Authorization: " + key + "\r\n");
  ASSERT_EQ(reply.status, 200) << reply.body;
  const Json j = Json::parse(reply.body);
  EXPECT_EQ(j["code"], 200);
  EXPECT_EQ(j["success"], true);
  EXPECT_TRUE(j["msg"].is_string());
  EXPECT_EQ(j["data"]["level"], "pro");
  const Json tokens = j["data"]["limits"][0], prompts = j["data"]["limits"][1];

  const auto store = store::open_store("sqlite:" + db_);
  maas::UsageFilter filter;
  filter.tenant_id = store->find_tenant("coder")->id;
  int64_t weighted = 0;
  for (const maas::LedgerRecord& r : store->ledger(filter)) weighted += r.tokens.prompt + r.tokens.output;
  EXPECT_EQ(tokens["type"], "TOKENS_LIMIT");
  EXPECT_EQ(tokens["unit"], 3);  // hours
  EXPECT_EQ(tokens["number"], 5);
  EXPECT_EQ(tokens["usage"], 100000);
  EXPECT_EQ(tokens["currentValue"], weighted);
  EXPECT_EQ(tokens["remaining"], 100000 - weighted);
  EXPECT_EQ(tokens["percentage"], weighted * 100 / 100000);
  EXPECT_TRUE(tokens["nextResetTime"].is_number());
  EXPECT_EQ(prompts["type"], "TIME_LIMIT");
  EXPECT_EQ(prompts["unit"], 5);  // months
  EXPECT_EQ(prompts["number"], 1);
  EXPECT_EQ(prompts["usage"], 50);
  EXPECT_EQ(prompts["currentValue"], 2);
  EXPECT_EQ(prompts["remaining"], 48);
  EXPECT_EQ(prompts["percentage"], 4);
  EXPECT_GT(prompts["nextResetTime"].get<int64_t>(), tokens["nextResetTime"].get<int64_t>());

  const Json balance = Json::parse(get(path, payg).body);
  EXPECT_EQ(balance["success"], true);
  EXPECT_EQ(balance["data"]["limits"], Json::array());
  EXPECT_FALSE(balance["data"].contains("level"));

  const HttpReply refused = get(path, "not-a-key");
  EXPECT_EQ(refused.status, 401) << refused.body;
  const Json e = Json::parse(refused.body);
  EXPECT_EQ(e["success"], false);
  EXPECT_TRUE(e["code"].is_number_integer() && e["code"] >= 1000 && e["code"] < 1100) << refused.body;
  EXPECT_FALSE(e.contains("data"));
  EXPECT_EQ(http(server_->port(), "POST", path, "{}", "Authorization: Bearer " + key + "\r\n").status, 405);
}

}  // namespace
}  // namespace tokenmill::testing

namespace tokenmill::testing {
namespace {

// The same key through the three dialects: each request is settled in the ledger under its own
// request id with exactly the tokens its response reported, whatever the wire format.
TEST_F(MeteredServer, UsageLandsInTheLedgerTheSameWayForEveryDialect) {
  const std::string key = tenant("dialects", "100");
  start();
  const std::string turn = R"("messages":[{"role":"user","content":"hi"}])";
  const HttpReply openai = post("/v1/chat/completions", R"({"model":"tiny","max_tokens":5,)" + turn + "}",
                                "Authorization: Bearer " + key + "\r\nX-Request-Id: dialect-openai\r\n");
  const HttpReply anthropic = post("/v1/messages", R"({"model":"tiny","max_tokens":5,)" + turn + "}",
                                   "x-api-key: " + key + "\r\nX-Request-Id: dialect-anthropic\r\n");
  const HttpReply zhipu = post("/api/paas/v4/chat/completions",
                               R"({"model":"tiny","max_tokens":5,"request_id":"dialect-zhipu",)" + turn + "}",
                               "Authorization: Bearer " + key + "\r\n");
  ASSERT_EQ(openai.status, 200) << openai.body;
  ASSERT_EQ(anthropic.status, 200) << anthropic.body;
  ASSERT_EQ(zhipu.status, 200) << zhipu.body;
  const Json o = Json::parse(openai.body)["usage"], a = Json::parse(anthropic.body)["usage"], z = Json::parse(zhipu.body)["usage"];

  const auto store = store::open_store("sqlite:" + db_);
  maas::UsageFilter filter;
  filter.tenant_id = store->find_tenant("dialects")->id;
  std::map<std::string, maas::TokenUsage> ledger;
  for (const maas::LedgerRecord& r : store->ledger(filter)) ledger[r.request_id] = r.tokens;
  ASSERT_EQ(ledger.size(), 3u);
  auto expect = [&](const std::string& id, int64_t prompt, int64_t cached, int64_t output) {
    ASSERT_TRUE(ledger.count(id)) << id;
    EXPECT_EQ(ledger[id].prompt, prompt) << id;
    EXPECT_EQ(ledger[id].cached, cached) << id;
    EXPECT_EQ(ledger[id].output, output) << id;
  };
  expect("dialect-openai", o["prompt_tokens"], o["prompt_tokens_details"]["cached_tokens"], o["completion_tokens"]);
  expect("dialect-anthropic", a["input_tokens"].get<int64_t>() + a["cache_read_input_tokens"].get<int64_t>(),
         a["cache_read_input_tokens"], a["output_tokens"]);
  expect("dialect-zhipu", z["prompt_tokens"], z["prompt_tokens_details"]["cached_tokens"], z["completion_tokens"]);
}

}  // namespace
}  // namespace tokenmill::testing
