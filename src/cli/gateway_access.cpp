#include "cli/gateway_access.h"

#include <cstdio>
#include <map>

#include "maas/admin_api.h"
#include "maas/keys.h"

namespace tokenmill::cli {
namespace {

api::Rejection to_api(const maas::Rejection& r) {
  api::Rejection out;
  out.http_status = r.http_status;
  out.type = r.error_type();
  out.code = r.type;
  out.message = r.message;
  out.business_code = std::to_string(r.code);
  out.retry_after_seconds = r.retry_after_s > 0 ? static_cast<int>(r.retry_after_s) : 0;
  out.details = r.extra;
  if (r.next_flush_time > 0) out.details["next_flush_time"] = r.next_flush_time;
  return out;
}

maas::Outcome to_maas(api::Outcome o) {
  switch (o) {
    case api::Outcome::Completed: return maas::Outcome::Completed;
    case api::Outcome::ClientDisconnected: return maas::Outcome::ClientDisconnected;
    case api::Outcome::Error: return maas::Outcome::Error;
  }
  return maas::Outcome::Error;
}

class GatewayTicket final : public api::Ticket {
 public:
  explicit GatewayTicket(maas::Ticket ticket) : ticket_(std::move(ticket)) {}

  void settle(const api::Usage& u, api::Outcome outcome, const api::Timings& t) override {
    try {
      const auto first_token_ms = t.time_to_first_token > 0 ? static_cast<int64_t>(t.time_to_first_token * 1000) : -1;
      ticket_.settle({u.prompt_tokens, u.cached_tokens, u.completion_tokens, u.reasoning_tokens}, to_maas(outcome),
                     outcome == api::Outcome::Error ? "the generation failed" : "", first_token_ms);
    } catch (const std::exception& e) {
      // The ticket stays unsettled and releases its hold when it is destroyed.
      std::fprintf(stderr, "tokenmill: cannot settle request %s: %s\n", ticket_.request_id().c_str(), e.what());
    }
  }

 private:
  maas::Ticket ticket_;
};

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

std::string percent_decode(std::string_view s) {
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '+') {
      out += ' ';
    } else if (s[i] == '%' && i + 2 < s.size() && hex_value(s[i + 1]) >= 0 && hex_value(s[i + 2]) >= 0) {
      out += static_cast<char>(hex_value(s[i + 1]) * 16 + hex_value(s[i + 2]));
      i += 2;
    } else {
      out += s[i];
    }
  }
  return out;
}

std::map<std::string, std::string> parse_query(std::string_view query) {
  std::map<std::string, std::string> out;
  while (!query.empty()) {
    const size_t amp = query.find('&');
    const std::string_view pair = query.substr(0, amp);
    const size_t eq = pair.find('=');
    if (!pair.empty()) {
      out[percent_decode(pair.substr(0, eq))] = eq == std::string_view::npos ? "" : percent_decode(pair.substr(eq + 1));
    }
    if (amp == std::string_view::npos) break;
    query.remove_prefix(amp + 1);
  }
  return out;
}

}  // namespace

GatewayAccess::GatewayAccess(maas::Store& store) : store_(store), gateway_(store) {}

std::variant<maas::Principal, maas::Rejection> GatewayAccess::principal_of(const api::Credentials& c) {
  return gateway_.authenticate(c.bearer.empty() ? c.api_key : c.bearer);
}

std::variant<api::Principal, api::Rejection> GatewayAccess::authenticate(const api::Credentials& credentials) {
  auto who = principal_of(credentials);
  if (auto* r = std::get_if<maas::Rejection>(&who)) return to_api(*r);
  const maas::Principal& p = std::get<maas::Principal>(who);
  api::Principal out;
  out.tenant_id = std::to_string(p.tenant_id);
  out.key_id = p.key_id;
  if (!p.models.empty()) out.allowed_models = p.models;
  out.cache_salt = "tenant:" + out.tenant_id;  // no tenant's cached prefix serves another
  return out;
}

std::variant<std::unique_ptr<api::Ticket>, api::Rejection> GatewayAccess::admit(const api::Principal& principal,
                                                                                const api::AdmissionRequest& request) {
  // The api Principal names the key; its scopes and limits are read again here, so a key
  // revoked or narrowed since authentication is judged as it is now.
  const std::optional<maas::KeyRecord> key = store_.find_key(principal.key_id);
  if (!key || key->revoked_at != 0) {
    return to_api(maas::Rejection(401, maas::code::kAuthFailed, "invalid_api_key", "invalid API key"));
  }
  maas::Principal who{key->tenant_id, "", key->project_id, key->id, key->models, key->admin, key->limits};
  auto admitted = gateway_.admit(who, {request.request_id, request.model, request.prompt_tokens, request.max_tokens});
  if (auto* r = std::get_if<maas::Rejection>(&admitted)) return to_api(*r);
  return std::unique_ptr<api::Ticket>(std::make_unique<GatewayTicket>(std::move(std::get<maas::Ticket>(admitted))));
}

std::optional<api::ExtraResponse> GatewayAccess::management(const api::ExtraRequest& request) {
  if (!maas::is_management_path(request.path)) return std::nullopt;
  auto who = principal_of(request.credentials);
  if (auto* r = std::get_if<maas::Rejection>(&who)) {
    const maas::ApiResponse refused = maas::rejection_reply(request.path, *r);
    return api::ExtraResponse{refused.status, refused.content_type, refused.body};
  }
  const maas::ApiResponse reply = maas::handle_management(
      store_, std::get<maas::Principal>(who), {request.method, request.path, parse_query(request.query), request.body});
  return api::ExtraResponse{reply.status, reply.content_type, reply.body};
}

}  // namespace tokenmill::cli
