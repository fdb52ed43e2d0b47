#include "maas/rejection.h"

namespace tokenmill::maas {

std::string Rejection::error_type() const {
  switch (http_status) {
    case 401: return "authentication_error";
    case 402: return "insufficient_quota";
    case 403: return "permission_error";
    case 429: return "rate_limit_error";
    default: return "invalid_request_error";
  }
}

nlohmann::json Rejection::to_json() const {
  nlohmann::json error = {{"message", message}, {"type", error_type()}, {"param", nullptr}, {"code", std::to_string(code)}};
  if (next_flush_time > 0) error["next_flush_time"] = next_flush_time;
  for (const auto& [k, v] : extra.items()) error[k] = v;
  return {{"error", error}};
}

}  // namespace tokenmill::maas
