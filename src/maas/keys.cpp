#include "maas/keys.h"

#include <nlohmann/json.hpp>

#include "common/error.h"
#include "maas/crypto.h"

namespace tokenmill::maas {
namespace {

constexpr size_t kIdBytes = 12;      // 24 hex characters
constexpr size_t kSecretBytes = 24;  // 32 base64url characters
constexpr size_t kSaltBytes = 16;
constexpr size_t kMaxCredential = 4096;

std::string salted_hash(std::string_view salt, std::string_view secret) {
  std::string data(salt);
  data.append(secret);
  return sha256(data);
}

bool iequals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (std::tolower(static_cast<unsigned char>(a[i])) != std::tolower(static_cast<unsigned char>(b[i]))) return false;
  }
  return true;
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

}  // namespace

NewKey generate_key(std::string_view sealing_key) {
  NewKey k;
  k.record.id = to_hex(random_bytes(kIdBytes));
  const std::string secret = base64url_encode(random_bytes(kSecretBytes));
  k.record.salt = random_bytes(kSaltBytes);
  k.record.secret_hash = salted_hash(k.record.salt, secret);
  if (!sealing_key.empty()) k.record.sealed_secret = seal(sealing_key, secret);
  k.presented = k.record.id + "." + secret;
  return k;
}

bool verify_secret(const KeyRecord& key, std::string_view secret) {
  return constant_time_equal(salted_hash(key.salt, secret), key.secret_hash);
}

std::string credential_from_headers(std::string_view authorization, std::string_view x_api_key) {
  authorization = trim(authorization);
  if (!authorization.empty()) {
    const size_t space = authorization.find(' ');
    if (space != std::string_view::npos && iequals(authorization.substr(0, space), "bearer")) {
      return std::string(trim(authorization.substr(space + 1)));
    }
    return std::string(authorization);  // a bare token: judged (and refused) like any other
  }
  return std::string(trim(x_api_key));
}

bool split_key(std::string_view credential, std::string& id, std::string& secret) {
  const size_t dot = credential.find('.');
  if (dot == std::string_view::npos || dot == 0 || dot + 1 >= credential.size() || credential.size() > kMaxCredential ||
      credential.find('.', dot + 1) != std::string_view::npos) {
    return false;
  }
  id = credential.substr(0, dot);
  secret = credential.substr(dot + 1);
  return true;
}

bool looks_like_jwt(std::string_view credential) {
  const size_t a = credential.find('.');
  if (a == std::string_view::npos) return false;
  const size_t b = credential.find('.', a + 1);
  return b != std::string_view::npos && credential.find('.', b + 1) == std::string_view::npos;
}

std::optional<JwtClaims> decode_jwt(std::string_view token, std::string& error) {
  using nlohmann::json;
  if (token.size() > kMaxCredential || !looks_like_jwt(token)) {
    error = "the token is not a JWT";
    return std::nullopt;
  }
  const size_t a = token.find('.');
  const size_t b = token.find('.', a + 1);
  std::string header_text;
  std::string claims_text;
  if (!base64url_decode(token.substr(0, a), header_text) || !base64url_decode(token.substr(a + 1, b - a - 1), claims_text)) {
    error = "the JWT is not base64url";
    return std::nullopt;
  }
  const json header = json::parse(header_text, nullptr, false);
  const json claims = json::parse(claims_text, nullptr, false);
  if (!header.is_object() || !claims.is_object()) {
    error = "the JWT header or claims are not JSON objects";
    return std::nullopt;
  }
  // Only HS256: "none" and asymmetric algorithms would let a forger choose how we verify.
  if (!header.contains("alg") || header["alg"] != "HS256") {
    error = "the JWT must be signed with HS256";
    return std::nullopt;
  }
  auto integer = [&](const char* name, int64_t& out) {
    if (!claims.contains(name) || !claims[name].is_number_integer()) return false;
    out = claims[name].get<int64_t>();
    return true;
  };
  JwtClaims c;
  if (!claims.contains("api_key") || !claims["api_key"].is_string() || !integer("exp", c.exp) ||
      !integer("timestamp", c.timestamp)) {
    error = "the JWT needs the claims api_key, exp and timestamp (milliseconds)";
    return std::nullopt;
  }
  c.api_key = claims["api_key"].get<std::string>();
  return c;
}

bool jwt_signature_valid(std::string_view token, std::string_view secret) {
  const size_t last = token.rfind('.');
  if (last == std::string_view::npos) return false;
  std::string signature;
  if (!base64url_decode(token.substr(last + 1), signature)) return false;
  return constant_time_equal(hmac_sha256(secret, token.substr(0, last)), signature);
}

std::string make_jwt(std::string_view key_id, std::string_view secret, TimeMs exp, TimeMs timestamp) {
  const nlohmann::json header = {{"alg", "HS256"}, {"sign_type", "SIGN"}};
  const nlohmann::json claims = {{"api_key", key_id}, {"exp", exp}, {"timestamp", timestamp}};
  const std::string signing_input = base64url_encode(header.dump()) + "." + base64url_encode(claims.dump());
  return signing_input + "." + base64url_encode(hmac_sha256(secret, signing_input));
}

std::string mask_credential(std::string_view credential) {
  const size_t dot = credential.find('.');
  if (dot == std::string_view::npos || dot > 64) return "****";
  return std::string(credential.substr(0, dot)) + ".****";
}

}  // namespace tokenmill::maas
