// The plain records maas/ keeps: tenants (organisations) and their projects, API keys, limits,
// prices, ledger entries and audit entries. Times are Unix epoch milliseconds; amounts are
// integer micro-units of the configured currency (maas/money.h).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace tokenmill::maas {

using TimeMs = int64_t;

struct Tenant {
  int64_t id = 0;
  std::string name;
  TimeMs created_at = 0;
  int64_t balance_micros = 0;   // prepaid money left
  int64_t reserved_micros = 0;  // held by admitted requests that have not settled yet
};

struct Project {
  int64_t id = 0;
  int64_t tenant_id = 0;
  std::string name;
  TimeMs created_at = 0;
};

// Per-key or per-model limits; 0 means no limit. Minute counters are fixed calendar minutes
// shared by every server replica through the store.
struct Limits {
  int64_t requests_per_minute = 0;
  int64_t tokens_per_minute = 0;  // prompt + max_tokens when admitted, corrected to the actual total
  int64_t max_concurrent = 0;
  bool any() const { return requests_per_minute > 0 || tokens_per_minute > 0 || max_concurrent > 0; }
};

struct KeyRecord {
  std::string id;  // the public half of "id.secret"
  int64_t tenant_id = 0;
  int64_t project_id = 0;  // 0: the key is not tied to a project
  std::string name;
  std::string salt;           // 16 random bytes
  std::string secret_hash;    // SHA-256(salt || secret)
  std::string sealed_secret;  // AES-GCM under the server's master key; only for JWT-enabled keys
  std::vector<std::string> models;  // allow-list; empty allows every model
  bool admin = false;               // may use the admin API
  TimeMs created_at = 0;
  TimeMs expires_at = 0;  // 0: never
  TimeMs revoked_at = 0;  // 0: active
  Limits limits;
};

// One price tier in micro-units per million tokens; a tier applies from its prompt length up.
struct PriceTier {
  int64_t min_prompt_tokens = 0;
  int64_t input = 0;
  int64_t cached_input = 0;
  int64_t output = 0;
};

struct ModelPrice {
  std::string model;
  std::vector<PriceTier> tiers;  // ascending min_prompt_tokens, the first at 0
};

// Token counts as the engine reports them, OpenAI semantics: cached tokens are part of the
// prompt, reasoning tokens part of the output.
struct TokenUsage {
  int64_t prompt = 0;
  int64_t cached = 0;
  int64_t output = 0;
  int64_t reasoning = 0;
};

enum class Outcome { Completed, ClientDisconnected, Error, Rejected };
enum class Billing { None, Balance, Plan };

std::string_view outcome_name(Outcome o);
std::optional<Outcome> parse_outcome(std::string_view name);
std::string_view billing_name(Billing b);
Billing parse_billing(std::string_view name);

// Which request, by whom, for what: what a reservation and its ledger record share.
struct RequestRef {
  std::string request_id;  // unique per tenant
  int64_t tenant_id = 0;
  int64_t project_id = 0;
  std::string key_id;
  std::string model;
  Billing billing = Billing::None;
};

// One request in the append-only ledger. A request id appears at most once with an outcome
// other than Rejected (a rejected request may be retried with the same id).
struct LedgerRecord : RequestRef {
  int64_t seq = 0;  // assigned by the store
  TokenUsage tokens;
  int64_t cost_micros = 0;         // charged to the balance (Billing::Balance)
  int64_t plan_prompts_milli = 0;  // counted against prompt windows (Billing::Plan)
  int64_t plan_tokens_milli = 0;   // counted against weighted-token windows (Billing::Plan)
  Outcome outcome = Outcome::Completed;
  int code = 0;  // Zhipu-style business code of a rejection or error, 0 otherwise
  std::string error;
  TimeMs admitted_at = 0;
  TimeMs finished_at = 0;
  int64_t first_token_ms = -1;  // latency to the first output token, -1 when unknown
};

// A hash-chained admin action: hash = SHA-256 over the previous hash and this entry's fields.
struct AuditEntry {
  int64_t seq = 0;
  TimeMs at = 0;
  std::string actor;    // "cli" or "key:<id>"
  std::string action;   // "tenants.create", "keys.revoke", ...
  std::string target;   // the tenant, key id, model or plan acted on
  std::string details;  // JSON with secrets masked
  std::string prev_hash;  // hex
  std::string hash;       // hex
};

}  // namespace tokenmill::maas

namespace tokenmill::maas {
// "2025-01-31T12:00:00Z" (UTC, whole seconds): for messages and CSV.
std::string format_utc(TimeMs ms);
}  // namespace tokenmill::maas
