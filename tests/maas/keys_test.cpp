// API keys and Zhipu-style JWTs: generated keys verify and nothing else does, secrets are never
// stored in the clear, and every malformed, forged or wrongly-signed token is refused.
#include <gtest/gtest.h>

#include <set>

#include "common/error.h"
#include "maas/crypto.h"
#include "maas/keys.h"

namespace tokenmill::maas {
namespace {

TEST(Keys, GeneratedKeyVerifiesOnlyWithItsSecret) {
  const NewKey k = generate_key({});
  std::string id, secret;
  ASSERT_TRUE(split_key(k.presented, id, secret));
  EXPECT_EQ(id, k.record.id);
  EXPECT_EQ(id.size(), 24u);
  EXPECT_EQ(secret.size(), 32u);
  EXPECT_TRUE(verify_secret(k.record, secret));
  std::string wrong = secret;
  wrong[5] = wrong[5] == 'a' ? 'b' : 'a';
  EXPECT_FALSE(verify_secret(k.record, wrong));
  EXPECT_FALSE(verify_secret(k.record, ""));
  EXPECT_FALSE(verify_secret(k.record, secret + "x"));
  // Stored: salt and hash only; the secret appears nowhere in the record.
  EXPECT_TRUE(k.record.sealed_secret.empty());
  EXPECT_EQ(k.record.secret_hash.find(secret), std::string::npos);
  EXPECT_EQ(k.record.salt.size(), 16u);
}

TEST(Keys, SaltsDifferSoEqualSecretsHashApart) {
  std::set<std::string> ids, salts;
  for (int i = 0; i < 50; ++i) {
    const NewKey k = generate_key({});
    ids.insert(k.record.id);
    salts.insert(k.record.salt);
  }
  EXPECT_EQ(ids.size(), 50u);
  EXPECT_EQ(salts.size(), 50u);
}

TEST(Keys, JwtEnabledKeySealsItsSecret) {
  const std::string master = random_bytes(32);
  const NewKey k = generate_key(master);
  std::string id, secret;
  ASSERT_TRUE(split_key(k.presented, id, secret));
  EXPECT_EQ(unseal(master, k.record.sealed_secret), secret);
  EXPECT_THROW(unseal(random_bytes(32), k.record.sealed_secret), Error);
  std::string tampered = k.record.sealed_secret;
  tampered[14] ^= 1;
  EXPECT_THROW(unseal(master, tampered), Error);
}

TEST(Keys, CredentialFromHeaders) {
  EXPECT_EQ(credential_from_headers("Bearer abc.def", ""), "abc.def");
  EXPECT_EQ(credential_from_headers("bearer   abc.def  ", ""), "abc.def");
  EXPECT_EQ(credential_from_headers("BEARER x", "y"), "x");
  EXPECT_EQ(credential_from_headers("", " k.s "), "k.s");
  EXPECT_EQ(credential_from_headers("", ""), "");
  EXPECT_EQ(credential_from_headers("Basic dXNlcjpwYXNz", ""), "Basic dXNlcjpwYXNz");
}

TEST(Keys, SplitKeyRefusesOtherShapes) {
  std::string id, secret;
  for (const char* bad : {"", "nodot", ".secret", "id.", "a.b.c", "."}) EXPECT_FALSE(split_key(bad, id, secret)) << bad;
  EXPECT_FALSE(split_key(std::string(5000, 'a') + ".b", id, secret));
}

TEST(Jwt, RoundTripsAndVerifies) {
  const std::string token = make_jwt("abc", "s3cret", 2000, 1000);
  EXPECT_TRUE(looks_like_jwt(token));
  std::string error;
  const auto claims = decode_jwt(token, error);
  ASSERT_TRUE(claims) << error;
  EXPECT_EQ(claims->api_key, "abc");
  EXPECT_EQ(claims->exp, 2000);
  EXPECT_EQ(claims->timestamp, 1000);
  EXPECT_TRUE(jwt_signature_valid(token, "s3cret"));
  EXPECT_FALSE(jwt_signature_valid(token, "s3creT"));
}

TEST(Jwt, ForgedTokensFail) {
  const std::string token = make_jwt("abc", "s3cret", 2000, 1000);
  const size_t a = token.find('.');
  const size_t b = token.rfind('.');
  // Claims swapped for other claims, signature kept.
  const std::string other = make_jwt("xyz", "s3cret", 9999, 1000);
  const std::string swapped = token.substr(0, a) + other.substr(other.find('.'), other.rfind('.') - other.find('.')) + token.substr(b);
  EXPECT_FALSE(jwt_signature_valid(swapped, "s3cret"));
  // alg "none" with an empty signature.
  const std::string none = base64url_encode(R"({"alg":"none"})") + "." + token.substr(a + 1, b - a - 1) + ".";
  std::string error;
  EXPECT_FALSE(decode_jwt(none, error));
  EXPECT_FALSE(jwt_signature_valid(none, "s3cret"));
  // Truncated signature, signature of another key.
  EXPECT_FALSE(jwt_signature_valid(token.substr(0, token.size() - 2), "s3cret"));
  EXPECT_FALSE(jwt_signature_valid(make_jwt("abc", "other", 2000, 1000), "s3cret"));
}

TEST(Jwt, MalformedTokensAreRefusedWithAReason) {
  const std::string h = base64url_encode(R"({"alg":"HS256"})");
  for (const std::string& bad :
       {std::string("a.b.c"), h + ".!!!.sig", h + "." + base64url_encode("[]") + ".s",
        h + "." + base64url_encode(R"({"api_key":"k","exp":"soon","timestamp":1})") + ".s",
        h + "." + base64url_encode(R"({"api_key":"k","exp":1.5,"timestamp":1})") + ".s",
        h + "." + base64url_encode(R"({"exp":1,"timestamp":1})") + ".s",
        base64url_encode(R"({"alg":"RS256"})") + "." + base64url_encode(R"({"api_key":"k","exp":1,"timestamp":1})") + ".s",
        base64url_encode("not json") + "." + base64url_encode("{}") + ".s", std::string(5000, 'a') + ".b.c"}) {
    std::string error;
    EXPECT_FALSE(decode_jwt(bad, error)) << bad;
    EXPECT_FALSE(error.empty());
  }
}

TEST(Keys, MaskingHidesSecrets) {
  EXPECT_EQ(mask_credential("0123abcd.supersecret"), "0123abcd.****");
  EXPECT_EQ(mask_credential("nodot"), "****");
}

TEST(Crypto, Base64UrlRoundTripAndStrictness) {
  for (const std::string& s : {std::string(), std::string("f"), std::string("fo"), std::string("foo"),
                               std::string("\xff\x00\x10", 3)}) {
    std::string back;
    ASSERT_TRUE(base64url_decode(base64url_encode(s), back));
    EXPECT_EQ(back, s);
  }
  std::string out;
  EXPECT_FALSE(base64url_decode("Zm9v=", out));
  EXPECT_FALSE(base64url_decode("Zm9v+", out));
  EXPECT_FALSE(base64url_decode("Z", out));
  EXPECT_FALSE(base64url_decode("Zh", out));  // non-zero leftover bits: a second spelling of "f"
}

TEST(Crypto, KnownDigests) {
  EXPECT_EQ(to_hex(sha256("abc")), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  // RFC 4231 test case 2.
  EXPECT_EQ(to_hex(hmac_sha256("Jefe", "what do ya want for nothing?")),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
  EXPECT_TRUE(constant_time_equal("abc", "abc"));
  EXPECT_FALSE(constant_time_equal("abc", "abd"));
  EXPECT_FALSE(constant_time_equal("abc", "ab"));
}

}  // namespace
}  // namespace tokenmill::maas
