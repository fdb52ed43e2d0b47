// API keys. A key is "id.secret": the id is public (it names the key in logs, the ledger and the
// admin API), the secret is shown once at creation and stored only as SHA-256(salt || secret)
// with a random 16-byte salt. Secrets are 192 random bits, so a fast hash is enough: there is
// no dictionary to search. Checks compare in constant time.
//
// Zhipu-style JWTs are accepted too: HS256 over {"api_key": id, "exp": ms, "timestamp": ms},
// signed with the secret. HS256 verification needs the secret itself, so a key accepts JWTs
// only when created with them enabled; its secret is then also kept sealed (AES-256-GCM) under a
// master key that lives outside the database (Store::sealing_key).
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "maas/records.h"

namespace tokenmill::maas {

struct NewKey {
  KeyRecord record;
  std::string presented;  // "id.secret", shown once
};

// A fresh key with its salted hash; `sealing_key` non-empty also seals the secret for JWTs.
NewKey generate_key(std::string_view sealing_key);
bool verify_secret(const KeyRecord& key, std::string_view secret);

// The credential of a request: "Authorization: Bearer X" (scheme case-insensitive) or
// "x-api-key: X". Empty when neither is present.
std::string credential_from_headers(std::string_view authorization, std::string_view x_api_key);

// Splits "id.secret"; false when the text does not have that form.
bool split_key(std::string_view credential, std::string& id, std::string& secret);
bool looks_like_jwt(std::string_view credential);  // three dot-separated parts

struct JwtClaims {
  std::string api_key;
  TimeMs exp = 0;
  TimeMs timestamp = 0;
};

// Decodes a JWT's header and claims without checking the signature. Returns an error sentence
// when the token is malformed, not HS256, or lacks the claims.
std::optional<JwtClaims> decode_jwt(std::string_view token, std::string& error);
bool jwt_signature_valid(std::string_view token, std::string_view secret);
std::string make_jwt(std::string_view key_id, std::string_view secret, TimeMs exp, TimeMs timestamp);

// "id.****" (or "****" when there is no id): what logs and the audit log show of a credential.
std::string mask_credential(std::string_view credential);

}  // namespace tokenmill::maas
