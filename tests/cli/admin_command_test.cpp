// `tokenmill admin` against a real database (an SQLite file, and a PostgreSQL database of the
// binary's throwaway server): the documented commands work end to end, a new key's secret is
// printed once and stored nowhere (not in listings, the audit log or the database), and
// hostile arguments are clean errors that change nothing.
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "../store/postgres_server.h"
#include "cli_helpers.h"

namespace tokenmill::testing {
namespace {

using nlohmann::json;

class AdminCommand : public ::testing::TestWithParam<bool> {  // true: PostgreSQL
 protected:
  void SetUp() override {
    if (GetParam()) {
      PostgresServer* server = PostgresServer::shared();
      if (!server) GTEST_SKIP() << "no PostgreSQL test server: " << PostgresServer::skip_reason();
      pg_url_ = server->fresh_database();
    }
    const auto dir = std::filesystem::temp_directory_path() / "tokenmill-tests";
    std::filesystem::create_directories(dir);
    std::string test = ::testing::UnitTest::GetInstance()->current_test_info()->name();
    std::replace(test.begin(), test.end(), '/', '-');  // "Flow/Sqlite"
    db_ = (dir / ("admin-" + std::to_string(::getpid()) + "-" + test + ".db")).string();
    clean();
  }
  void TearDown() override { clean(); }
  void clean() {
    for (const char* s : {"", "-wal", "-shm", ".master-key"}) std::filesystem::remove(db_ + s);
    std::filesystem::remove_all(db_ + ".instances");
  }
  std::string db_url() const { return GetParam() ? pg_url_ + "?master_key=" + db_ + ".master-key" : "sqlite:" + db_; }
  CommandResult admin(const std::string& args) { return run_tokenmill("admin --db '" + db_url() + "' " + args); }
  json admin_json(const std::string& args) {
    const CommandResult r = admin(args + " --json");
    EXPECT_EQ(r.exit_code, 0) << args << ": " << r.err;
    return json::parse(r.out, nullptr, false);
  }
  std::string file_bytes(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
  }
  // Everything the database stores, as bytes (SQLite: its files) or text (PostgreSQL: every row).
  std::string stored() {
    if (!GetParam()) return file_bytes(db_) + file_bytes(db_ + "-wal");
    std::string out;
    for (const char* table : {"api_keys", "audit_log", "tenants", "balance_journal", "prices"}) {
      out += PostgresServer::value(pg_url_, std::string("SELECT string_agg(t::text, ',') FROM ") + table + " t");
    }
    return out;
  }
  std::string db_;
  std::string pg_url_;
};

TEST_P(AdminCommand, DocumentedFlowWorks) {
  EXPECT_EQ(admin_json("tenants create acme")["name"], "acme");
  const json key = admin_json("keys create --tenant acme --models glm,qwen");
  const std::string presented = key["key"];
  const std::string id = key["id"];
  ASSERT_EQ(presented.substr(0, id.size() + 1), id + ".");
  const std::string secret = presented.substr(id.size() + 1);
  EXPECT_EQ(key["models"], json::array({"glm", "qwen"}));

  EXPECT_EQ(admin_json("balance top-up --tenant acme --amount 12.5")["balance"], "12.50");
  EXPECT_EQ(admin_json("balance top-up --tenant acme --amount -0.25 --note refund")["balance"], "12.25");
  const json price = admin_json("prices set --model glm --input 2 --cached-input 0.5 --output 8 --tier 32000:4:1:16");
  EXPECT_EQ(price["tiers"][1]["output"], "16.00");
  EXPECT_EQ(admin_json("prices list").size(), 1u);
  EXPECT_EQ(admin_json("usage --tenant acme")["total"]["requests"], 0);
  const CommandResult csv = admin("usage --tenant acme --csv");
  EXPECT_EQ(csv.exit_code, 0);
  EXPECT_EQ(csv.out.rfind("seq,request_id,tenant,", 0), 0u);

  const json keys = admin_json("keys list --tenant acme");
  ASSERT_EQ(keys.size(), 1u);
  EXPECT_TRUE(keys[0]["revoked_at"].is_null());
  EXPECT_FALSE(admin_json("keys revoke " + id)["revoked_at"].is_null());
  EXPECT_NE(admin("keys revoke " + id).exit_code, 0);  // already revoked

  // The secret was shown once and is stored nowhere.
  EXPECT_EQ(admin("keys list").out.find(secret), std::string::npos);
  EXPECT_EQ(admin("audit list --json").out.find(secret), std::string::npos);
  const std::string everything = stored();
  EXPECT_NE(everything.find(id), std::string::npos);  // what is searched does hold the key's row
  EXPECT_EQ(everything.find(secret), std::string::npos);

  const json audit = admin_json("audit list");
  std::vector<std::string> actions;
  for (const json& e : audit) actions.push_back(e["action"]);
  EXPECT_EQ(actions, (std::vector<std::string>{"tenants.create", "keys.create", "balance.top_up", "balance.top_up",
                                               "prices.set", "keys.revoke"}));
  EXPECT_EQ(admin_json("audit verify")["intact"], true);
}

TEST_P(AdminCommand, PlansAndQuota) {
  admin_json("tenants create acme");
  const auto plan = std::filesystem::path(db_ + ".plan.json");
  std::ofstream(plan) << R"({"name": "lite", "period": "30d", "models": ["glm"],
    "windows": [{"name": "5h", "duration": "5h", "anchor": "first_use", "unit": "prompts", "limit": 120},
                {"name": "weekly", "duration": "7d", "unit": "prompts", "limit": 1000}]})";
  EXPECT_EQ(admin_json("plans set --file " + plan.string())["name"], "lite");
  std::filesystem::remove(plan);
  EXPECT_EQ(admin_json("plans subscribe --tenant acme --plan lite")["plan"], "lite");
  const json quota = admin_json("quota --tenant acme");
  EXPECT_EQ(quota["billing"], "plan");
  ASSERT_EQ(quota["windows"].size(), 2u);
  EXPECT_EQ(quota["windows"][0]["remaining"], "120");
  EXPECT_TRUE(quota["windows"][0]["next_reset"].is_null());  // opens with the first request
  EXPECT_FALSE(quota["windows"][1]["next_reset"].is_null());
  EXPECT_EQ(admin_json("plans cancel --tenant acme")["billing"], "balance");
}

TEST_P(AdminCommand, HostileArgumentsAreCleanErrors) {
  admin_json("tenants create acme");
  for (const std::string& bad : {
           std::string("tenants create \"x'; DROP TABLE tenants; --\""),
           std::string("tenants create ") + std::string(300, 'a'),
           std::string("tenants create acme"),
           std::string("balance top-up --tenant acme --amount 1e5"),
           std::string("balance top-up --tenant acme --amount 99999999999999999999"),
           std::string("balance top-up --tenant acme --amount -5"),
           std::string("balance top-up --tenant nobody --amount 5"),
           std::string("prices set --model glm --input abc --output 1"),
           std::string("prices set --model glm --input -1 --output 1"),
           std::string("prices set --model 'bad model' --input 1 --output 1"),
           std::string("keys create --tenant acme --expires 2001-01-01"),
           std::string("keys create --tenant acme --rpm -1"),
           std::string("keys revoke \"' OR 1=1 --\""),
           std::string("plans subscribe --tenant acme --plan missing"),
           std::string("usage --from yesterday"),
       }) {
    const CommandResult r = admin(bad);
    EXPECT_NE(r.exit_code, 0) << bad;
    EXPECT_EQ(r.err.find("internal error"), std::string::npos) << bad << ": " << r.err;
    EXPECT_NE(r.err.find("error"), std::string::npos) << bad;
  }
  // Nothing was written by any of them.
  const json tenants = admin_json("tenants list");
  ASSERT_EQ(tenants.size(), 1u);
  EXPECT_EQ(tenants[0]["balance"], "0.00");
  EXPECT_EQ(admin_json("audit list").size(), 1u);
  EXPECT_TRUE(admin_json("keys list").empty());
}

TEST_P(AdminCommand, NeedsADatabase) {
  const CommandResult r = run_tokenmill("admin tenants list");
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.err.find("--db"), std::string::npos);
  EXPECT_NE(run_tokenmill("admin --db postgresql://x/y tenants list").exit_code, 0);
}

INSTANTIATE_TEST_SUITE_P(Backends, AdminCommand, ::testing::Bool(),
                         [](const ::testing::TestParamInfo<bool>& info) { return info.param ? "Postgres" : "Sqlite"; });

}  // namespace
}  // namespace tokenmill::testing
