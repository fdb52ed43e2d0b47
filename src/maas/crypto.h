// The few cryptographic primitives maas/ needs, on OpenSSL: random bytes, SHA-256, HMAC-SHA256,
// constant-time comparison, base64url and hex, and AES-256-GCM sealing of secrets that must be
// recoverable (keys that accept JWTs).
#pragma once

#include <string>
#include <string_view>

namespace tokenmill::maas {

// Cryptographically secure random bytes (OpenSSL RAND_bytes); throws if the generator fails.
std::string random_bytes(size_t n);

std::string sha256(std::string_view data);                             // 32 raw bytes
std::string hmac_sha256(std::string_view key, std::string_view data);  // 32 raw bytes

// Equal length and equal bytes, in time that depends only on the lengths.
bool constant_time_equal(std::string_view a, std::string_view b);

std::string to_hex(std::string_view bytes);
std::string base64url_encode(std::string_view bytes);  // no padding
// Accepts base64url without padding only; returns false on any other character or length.
bool base64url_decode(std::string_view text, std::string& out);

// AES-256-GCM with a random 96-bit nonce: nonce || ciphertext || tag. `key` is 32 bytes.
std::string seal(std::string_view key, std::string_view plaintext);
// Throws tokenmill::Error when the data was not sealed with this key or was altered.
std::string unseal(std::string_view key, std::string_view sealed);

}  // namespace tokenmill::maas
