// Authentication through the Gateway: valid keys and JWTs pass; forged, expired, revoked,
// malformed, oversized and SQL-ish credentials are each refused with the right code, and a
// refusal never says more than it must.
#include "maas/crypto.h"
#include "store_fixture.h"

namespace tokenmill::testing {
namespace {

using GatewayAuth = StoreTest;

int code_of(const std::variant<Principal, Rejection>& v) {
  if (const Rejection* r = std::get_if<Rejection>(&v)) {
    EXPECT_EQ(r->http_status, 401);
    return r->code;
  }
  return 0;
}

TEST_P(GatewayAuth, ValidKeyAuthenticates) {
  const Tenant t = tenant("acme");
  const std::string k = key(t, {5, 0, 0}, {"glm"});
  const auto who = gateway().authenticate(k);
  ASSERT_TRUE(std::holds_alternative<Principal>(who));
  const Principal& p = std::get<Principal>(who);
  EXPECT_EQ(p.tenant_id, t.id);
  EXPECT_EQ(p.tenant, "acme");
  EXPECT_EQ(p.key_id, k.substr(0, k.find('.')));
  EXPECT_EQ(p.models, std::vector<std::string>{"glm"});
  EXPECT_EQ(p.limits.requests_per_minute, 5);
}

TEST_P(GatewayAuth, ForgedKeysFail) {
  const Tenant t = tenant("acme");
  const std::string k = key(t);
  const std::string id = k.substr(0, k.find('.'));
  std::string flipped = k;
  flipped.back() = flipped.back() == 'A' ? 'B' : 'A';
  EXPECT_EQ(code_of(gateway().authenticate(flipped)), code::kAuthFailed);
  EXPECT_EQ(code_of(gateway().authenticate(id + ".")), code::kTokenInvalid);
  EXPECT_EQ(code_of(gateway().authenticate("0123456789abcdef01234567.secret")), code::kAuthFailed);
  EXPECT_EQ(code_of(gateway().authenticate("")), code::kAuthMissing);
  EXPECT_EQ(code_of(gateway().authenticate("nodots")), code::kTokenInvalid);
  EXPECT_EQ(code_of(gateway().authenticate("' OR '1'='1.x")), code::kAuthFailed);
  EXPECT_EQ(code_of(gateway().authenticate(id + ".' OR '1'='1")), code::kAuthFailed);
  EXPECT_EQ(code_of(gateway().authenticate(std::string(1 << 20, 'k') + ".s")), code::kTokenInvalid);
  EXPECT_EQ(code_of(gateway().authenticate(std::string(100, 'k') + ".s")), code::kAuthFailed);
  EXPECT_EQ(code_of(gateway().authenticate(std::string("id\0x.s", 6))), code::kAuthFailed);
  // Another tenant's key id with this tenant's secret.
  const std::string other = key(tenant("other"));
  EXPECT_EQ(code_of(gateway().authenticate(other.substr(0, other.find('.')) + k.substr(k.find('.')))), code::kAuthFailed);
}

TEST_P(GatewayAuth, RevocationIsImmediate) {
  const std::string k = key(tenant("acme"));
  ASSERT_TRUE(std::holds_alternative<Principal>(gateway().authenticate(k)));
  store_->revoke_key(k.substr(0, k.find('.')), now_);
  const auto refused = gateway().authenticate(k);
  EXPECT_EQ(code_of(refused), code::kAuthFailed);
  EXPECT_NE(std::get<Rejection>(refused).message.find("revoked"), std::string::npos);
}

TEST_P(GatewayAuth, ExpiredKeyFails) {
  NewKey k = generate_key({});
  k.record.tenant_id = tenant("acme").id;
  k.record.expires_at = now_ + 1000;
  store_->insert_key(k.record);
  EXPECT_TRUE(std::holds_alternative<Principal>(gateway().authenticate(k.presented)));
  now_ += 1000;
  EXPECT_EQ(code_of(gateway().authenticate(k.presented)), code::kTokenExpired);
}

class GatewayJwt : public StoreTest {
 protected:
  void SetUp() override {
    StoreTest::SetUp();
    if (IsSkipped()) return;
    presented_ = key(tenant("acme"), {}, {}, /*jwt=*/true);
    id_ = presented_.substr(0, presented_.find('.'));
    secret_ = presented_.substr(presented_.find('.') + 1);
  }
  std::string presented_, id_, secret_;
};

TEST_P(GatewayJwt, ValidTokenAuthenticates) {
  const auto who = gateway().authenticate(make_jwt(id_, secret_, now_ + 180'000, now_));
  ASSERT_TRUE(std::holds_alternative<Principal>(who));
  EXPECT_EQ(std::get<Principal>(who).key_id, id_);
  // The key itself still works.
  EXPECT_TRUE(std::holds_alternative<Principal>(gateway().authenticate(presented_)));
}

TEST_P(GatewayJwt, BadTokensFail) {
  EXPECT_EQ(code_of(gateway().authenticate(make_jwt(id_, secret_, now_ - 1, now_ - 180'000))), code::kTokenExpired);
  EXPECT_EQ(code_of(gateway().authenticate(make_jwt(id_, "guessed", now_ + 1000, now_))), code::kTokenSignature);
  EXPECT_EQ(code_of(gateway().authenticate(make_jwt("unknown", secret_, now_ + 1000, now_))), code::kAuthFailed);
  // Lives too long, or issued in the future.
  EXPECT_EQ(code_of(gateway().authenticate(make_jwt(id_, secret_, now_ + 48 * 3600'000, now_))), code::kTokenInvalid);
  EXPECT_EQ(code_of(gateway().authenticate(make_jwt(id_, secret_, now_ + 1000, now_ + 3600'000))), code::kTokenInvalid);
  // alg none.
  const std::string unsigned_token = base64url_encode(R"({"alg":"none","typ":"JWT"})") + "." +
                                     base64url_encode(R"({"api_key":")" + id_ + R"(","exp":)" +
                                                      std::to_string(now_ + 1000) + R"(,"timestamp":1})") +
                                     ".";
  EXPECT_EQ(code_of(gateway().authenticate(unsigned_token)), code::kTokenInvalid);
  // Revoked keys' tokens die with them.
  store_->revoke_key(id_, now_);
  EXPECT_EQ(code_of(gateway().authenticate(make_jwt(id_, secret_, now_ + 1000, now_))), code::kAuthFailed);
}

TEST_P(GatewayJwt, KeysWithoutJwtSupportRefuseTokens) {
  const std::string plain = key(tenant("plain"));
  const std::string id = plain.substr(0, plain.find('.'));
  const std::string secret = plain.substr(plain.find('.') + 1);
  EXPECT_EQ(code_of(gateway().authenticate(make_jwt(id, secret, now_ + 1000, now_))), code::kTokenInvalid);
}

TEST_P(GatewayJwt, MissingOrChangedMasterKeyFailsCleanly) {
  std::filesystem::remove(master_key_file());
  EXPECT_EQ(code_of(gateway().authenticate(make_jwt(id_, secret_, now_ + 1000, now_))), code::kAuthFailed);
  store_->sealing_key(true);  // a new, different master key
  EXPECT_EQ(code_of(gateway().authenticate(make_jwt(id_, secret_, now_ + 1000, now_))), code::kAuthFailed);
  EXPECT_TRUE(std::holds_alternative<Principal>(gateway().authenticate(presented_)));  // the key itself still works
}

TOKENMILL_ON_BOTH_BACKENDS(GatewayAuth);
TOKENMILL_ON_BOTH_BACKENDS(GatewayJwt);

}  // namespace
}  // namespace tokenmill::testing
