// The management HTTP API without a server: admin keys only under /admin/v1, tenants see only
// their own usage and quota, and bad input is a 400 or 404 that writes nothing.
#include "maas/admin_api.h"
#include "store_fixture.h"

namespace tokenmill::testing {
namespace {

using nlohmann::json;

class AdminApi : public StoreTest {
 protected:
  void SetUp() override {
    StoreTest::SetUp();
    if (IsSkipped()) return;
    acme_ = tenant("acme", "5");
    admin_ = principal(admin_key());
    user_ = principal(key(acme_));
  }
  std::string admin_key() {
    NewKey k = generate_key({});
    k.record.tenant_id = tenant("ops", "1").id;
    k.record.admin = true;
    store_->insert_key(k.record);
    return k.presented;
  }
  ApiResponse call(const Principal& who, const std::string& method, const std::string& path, const json& params = {}) {
    ApiRequest r{method, path, {}, ""};
    if (method == "GET") {
      for (const auto& [k, v] : params.items()) r.query[k] = v.is_string() ? v.get<std::string>() : v.dump();
    } else {
      r.body = params.is_null() ? "" : params.dump();
    }
    return handle_management(*store_, who, r, [this] { return now_.load(); });
  }
  json body(const ApiResponse& r) { return json::parse(r.body, nullptr, false); }

  Tenant acme_;
  Principal admin_, user_;
};

TEST_P(AdminApi, AdminRoutesWork) {
  EXPECT_EQ(call(admin_, "POST", "/admin/v1/tenants", {{"name", "beta"}}).status, 201);
  const ApiResponse created = call(admin_, "POST", "/admin/v1/keys", {{"tenant", "beta"}, {"models", {"glm"}}, {"max_concurrent", 3}});
  ASSERT_EQ(created.status, 201) << created.body;
  const json key = body(created);
  EXPECT_EQ(key["limits"]["max_concurrent"], 3);
  EXPECT_NE(key["key"].get<std::string>().find('.'), std::string::npos);
  EXPECT_EQ(body(call(admin_, "POST", "/admin/v1/balance/top-up", {{"tenant", "beta"}, {"amount", 2.5}}))["balance"], "2.50");
  EXPECT_EQ(call(admin_, "POST", "/admin/v1/prices", {{"model", "org/glm-4.6"}, {"input", "1"}, {"output", "2"},
                                                       {"tiers", {{{"min_prompt_tokens", 1000}, {"input", "3"}, {"output", "4"}}}}})
                .status,
            200);
  EXPECT_EQ(body(call(admin_, "GET", "/admin/v1/prices"))[0]["tiers"].size(), 2u);
  EXPECT_EQ(body(call(admin_, "GET", "/admin/v1/keys", {{"tenant", "beta"}})).size(), 1u);
  EXPECT_EQ(call(admin_, "POST", "/admin/v1/keys/revoke", {{"id", key["id"]}}).status, 200);
  const ApiResponse csv = call(admin_, "GET", "/admin/v1/usage", {{"format", "csv"}});
  EXPECT_EQ(csv.content_type, "text/csv; charset=utf-8");
  EXPECT_EQ(body(call(admin_, "GET", "/admin/v1/audit/verify"))["intact"], true);
  // Every change above is in the audit log, attributed to the admin key, without the secret.
  const json audit = body(call(admin_, "GET", "/admin/v1/audit"));
  EXPECT_EQ(audit.size(), 5u);
  EXPECT_EQ(audit[0]["actor"], "key:" + admin_.key_id);
  EXPECT_EQ(audit.dump().find(key["key"].get<std::string>()), std::string::npos);
}

TEST_P(AdminApi, OrdinaryKeysAreKeptOut) {
  for (const auto& [method, path] : std::vector<std::pair<std::string, std::string>>{
           {"GET", "/admin/v1/tenants"}, {"POST", "/admin/v1/balance/top-up"}, {"GET", "/admin/v1/audit"}, {"GET", "/admin/v1/nothing"}}) {
    const ApiResponse r = call(user_, method, path, {{"tenant", "acme"}, {"amount", "100"}});
    EXPECT_EQ(r.status, 403) << path;
  }
  EXPECT_EQ(balance(acme_.id), 5'000'000);
}

TEST_P(AdminApi, TenantsSeeOnlyTheirOwn) {
  const ApiResponse quota = call(user_, "GET", "/v1/quota");
  ASSERT_EQ(quota.status, 200);
  EXPECT_EQ(body(quota)["tenant"], "acme");
  EXPECT_EQ(body(quota)["balance"], "5.00");
  EXPECT_EQ(body(quota)["key"]["id"], user_.key_id);
  EXPECT_EQ(call(user_, "GET", "/v1/usage").status, 200);
  EXPECT_EQ(call(user_, "GET", "/v1/usage", {{"tenant", "ops"}}).status, 403);
  // Filtering by another tenant's key finds nothing of theirs.
  price("glm", "1", "1", "1");
  std::get<Ticket>(admit(admin_, "theirs", "glm", 1, 1)).settle({1, 0, 1, 0}, Outcome::Completed);
  const json usage = body(call(user_, "GET", "/v1/usage", {{"key", admin_.key_id}}));
  EXPECT_EQ(usage["total"]["requests"], 0);
  EXPECT_EQ(call(user_, "GET", "/v1/usage", {{"key", admin_.key_id}, {"format", "csv"}}).body.find("theirs"), std::string::npos);
}

TEST_P(AdminApi, BadInputIsAClean4xx) {
  EXPECT_EQ(call(admin_, "POST", "/admin/v1/balance/top-up", {{"tenant", "nobody"}, {"amount", "1"}}).status, 404);
  EXPECT_EQ(call(admin_, "POST", "/admin/v1/balance/top-up", {{"tenant", "acme"}, {"amount", "1e9"}}).status, 400);
  EXPECT_EQ(call(admin_, "POST", "/admin/v1/balance/top-up", {{"tenant", "acme"}, {"amount", {1, 2}}}).status, 400);
  EXPECT_EQ(call(admin_, "POST", "/admin/v1/tenants", {{"name", "'; DROP TABLE tenants; --"}}).status, 400);
  EXPECT_EQ(call(admin_, "POST", "/admin/v1/tenants", {{"name", std::string(100'000, 'a')}}).status, 400);
  EXPECT_EQ(call(admin_, "POST", "/admin/v1/keys/revoke", {{"id", "' OR 1=1 --"}}).status, 404);
  EXPECT_EQ(call(admin_, "POST", "/admin/v1/keys", {{"tenant", "acme"}, {"max_concurrent", "lots"}}).status, 400);
  EXPECT_EQ(call(admin_, "POST", "/admin/v1/plans", {{"name", "p"}}).status, 400);
  EXPECT_EQ(call(admin_, "GET", "/admin/v1/tenants/extra").status, 404);
  EXPECT_EQ(call(admin_, "DELETE", "/admin/v1/tenants").status, 405);
  ApiRequest broken{"POST", "/admin/v1/tenants", {}, "{not json"};
  EXPECT_EQ(handle_management(*store_, admin_, broken).status, 400);
  const json error = body(handle_management(*store_, admin_, broken));
  EXPECT_TRUE(error["error"]["message"].is_string());
  EXPECT_EQ(store_->list_tenants().size(), 2u);
  EXPECT_EQ(balance(acme_.id), 5'000'000);
  EXPECT_TRUE(store_->audit_log(0, 0).empty());
}

TOKENMILL_ON_BOTH_BACKENDS(AdminApi);

}  // namespace
}  // namespace tokenmill::testing
