// `tokenmill serve --db postgres://...` and `tokenmill admin --db postgres://...` end to end,
// against a database of the binary's throwaway PostgreSQL server: keys, prices and a balance
// set with the admin command; two serving replicas on the one database answer with the same
// keys (a JWT-enabled one too, created with the master key file the URL names) and meter into
// one ledger, a request id taken on one replica is refused on the other, and the balance adds
// up. (Crash recovery across instances on PostgreSQL is tests/store/recovery_test.cpp and
// replicas_test.cpp.)
#include <gtest/gtest.h>

#include <filesystem>

#include <nlohmann/json.hpp>

#include "../store/postgres_server.h"
#include "server_env.h"
#include "store/open_store.h"

namespace tokenmill::testing {
namespace {

using Json = nlohmann::json;

class PostgresReplicas : public ::testing::Test {
 protected:
  void SetUp() override {
    PostgresServer* server = PostgresServer::shared();
    if (!server) GTEST_SKIP() << "no PostgreSQL test server: " << PostgresServer::skip_reason();
    key_file_ = (std::filesystem::temp_directory_path() / ("tokenmill-pg-key-" + std::to_string(::getpid()))).string();
    url_ = server->fresh_database() + "?master_key=" + key_file_;
  }
  void TearDown() override { std::filesystem::remove(key_file_); }

  Json admin(const std::string& args) {
    int code = -1;
    const std::string out = run_capture(std::string(TOKENMILL_BINARY) + " admin --db '" + url_ + "' --json " + args, code);
    EXPECT_EQ(code, 0) << args << ": " << out;
    return Json::parse(out, nullptr, false);
  }
  static HttpReply chat(const ServerProcess& server, const std::string& key, const std::string& id) {
    return http(server.port(), "POST", "/v1/chat/completions",
                R"({"model":"tiny","max_tokens":4,"messages":[{"role":"user","content":"hi"}]})",
                "Authorization: Bearer " + key + "\r\nX-Request-Id: " + id + "\r\n");
  }

  std::string key_file_;
  std::string url_;
};

TEST_F(PostgresReplicas, TwoServersShareKeysAndOneLedger) {
  admin("prices set --model tiny --input 1000 --cached-input 100 --output 2000");
  admin("tenants create acme");
  admin("balance top-up --tenant acme --amount 100");
  const std::string key = admin("keys create --tenant acme")["key"];
  const Json jwt_key = admin("keys create --tenant acme --jwt");
  ASSERT_TRUE(jwt_key.contains("key")) << jwt_key.dump();
  ASSERT_TRUE(std::filesystem::exists(key_file_));

  ServerProcess a(serve_tiny({"--db", url_}));
  ServerProcess b(serve_tiny({"--db", url_}));
  ASSERT_GT(a.port(), 0) << a.log();
  ASSERT_GT(b.port(), 0) << b.log();
  const HttpReply on_a = chat(a, key, "on-a");
  const HttpReply on_b = chat(b, jwt_key["key"], "on-b");  // a JWT-enabled key still works as a plain key
  ASSERT_EQ(on_a.status, 200) << on_a.body;
  ASSERT_EQ(on_b.status, 200) << on_b.body;
  EXPECT_EQ(chat(b, key, "on-a").status, 409) << "a request id is the tenant's, whichever replica sees it";

  const auto store = store::open_store(url_);
  const maas::Tenant t = *store->find_tenant("acme");
  int64_t charged = 0;
  std::vector<std::string> ids;
  maas::UsageFilter filter;
  filter.tenant_id = t.id;
  for (const maas::LedgerRecord& r : store->ledger(filter)) {
    if (r.outcome == maas::Outcome::Rejected) continue;
    ids.push_back(r.request_id);
    charged += r.cost_micros;
  }
  EXPECT_EQ(ids, (std::vector<std::string>{"on-a", "on-b"}));
  EXPECT_GT(charged, 0);
  EXPECT_EQ(t.balance_micros, 100'000'000 - charged);
  EXPECT_EQ(t.reserved_micros, 0);
  EXPECT_EQ(admin("audit verify")["intact"], true);
}

}  // namespace
}  // namespace tokenmill::testing
