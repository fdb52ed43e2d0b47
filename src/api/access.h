// api/: the HTTP front of the engine — the wire formats (OpenAI first), the server, request
// admission. Depends on engine/, tokenizer/, model/ and common/; never on maas/ (cli/ wires
// the two together through the Access interface below).
//
// The admission seam: who may call a model, and the record of what each call used. The HTTP
// server asks an Access for every model request, in this order:
//
//   1. authenticate(credentials)  -> a Principal, or a Rejection (sent to the client as is);
//   2. admit(principal, request)  -> a Ticket, or a Rejection — after the prompt is tokenized,
//      so the token counts are known, and before any work is queued;
//   3. ticket->settle(usage, outcome, timings) exactly once when the request ends, whatever
//      the way it ends (completed, client gone, error after admission).
//
// A Ticket destroyed without settle() (the server failed before generating anything it could
// account for) releases whatever admit() reserved and charges nothing.
//
// api/ sees only this interface: the open mode (no keys, everything admitted) is here; the
// keyed implementation with tenants, prices, quotas and the ledger lives in maas/, and cli/
// hands it to the server. Implementations are called from several threads at once.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include <nlohmann/json.hpp>

namespace tokenmill::api {

// Why a request is refused, in the terms every wire format needs.
struct Rejection {
  int http_status = 400;       // 401 no/bad key, 403 model not allowed, 429 rate/quota, ...
  std::string type;            // OpenAI error type: "authentication_error", "permission_error",
                               // "rate_limit_error", "insufficient_quota", "invalid_request_error"
  std::string code;            // OpenAI error code: "invalid_api_key", "model_not_found", ...
  std::string message;         // the whole user-facing sentence
  std::string business_code;   // provider-specific code (Zhipu's "1113", ...); empty if none
  int retry_after_seconds = 0;  // sent as Retry-After when > 0
  // More members of the error object: Zhipu's next_flush_time when a plan window resets, the
  // required and available amounts when a balance falls short.
  nlohmann::json details = nlohmann::json::object();
};

// The key material a request carried: `Authorization: Bearer <token>` and `x-api-key: <key>`
// (Anthropic's header). Either may be empty.
struct Credentials {
  std::string bearer;
  std::string api_key;
};

// An authenticated caller.
struct Principal {
  std::string tenant_id;  // empty in open mode
  std::string key_id;
  // Models this key may call; nullopt = every served model.
  std::optional<std::vector<std::string>> allowed_models;
  // Keys the prefix cache: cached prompt blocks are shared only between requests with the same
  // salt, so one tenant's prefix never speeds up (or leaks to) another. The server appends the
  // request's own cache_salt field to it.
  std::string cache_salt;

  bool may_use(const std::string& model) const;
};

// What admit() is asked to allow. max_tokens is the completion budget the request may spend
// (the server's cap when the request sets none), so a reservation can cover the worst case.
struct AdmissionRequest {
  std::string request_id;
  std::string model;
  int64_t prompt_tokens = 0;
  int64_t max_tokens = 0;
};

struct Usage {
  int64_t prompt_tokens = 0;
  int64_t cached_tokens = 0;      // of prompt_tokens, served from the prefix cache
  int64_t completion_tokens = 0;
  int64_t reasoning_tokens = 0;   // of completion_tokens, inside the reasoning block
};

enum class Outcome { Completed, ClientDisconnected, Error };

struct Timings {
  double queued_seconds = 0;          // admission to the first forward pass
  double time_to_first_token = 0;     // admission to the first generated token
  double total_seconds = 0;           // admission to the end
};

// One admitted request. settle() is called exactly once; see the file comment.
class Ticket {
 public:
  virtual ~Ticket() = default;
  virtual void settle(const Usage& usage, Outcome outcome, const Timings& timings) = 0;
};

class Access {
 public:
  virtual ~Access() = default;
  virtual std::variant<Principal, Rejection> authenticate(const Credentials& credentials) = 0;
  virtual std::variant<std::unique_ptr<Ticket>, Rejection> admit(const Principal& principal,
                                                                 const AdmissionRequest& request) = 0;
};

// No keys: every request is the same anonymous principal and is admitted; nothing is recorded.
class OpenAccess final : public Access {
 public:
  std::variant<Principal, Rejection> authenticate(const Credentials& credentials) override;
  std::variant<std::unique_ptr<Ticket>, Rejection> admit(const Principal& principal,
                                                         const AdmissionRequest& request) override;
};

}  // namespace tokenmill::api
