// Why a request was refused, in the forms clients understand: an HTTP status with Retry-After,
// an OpenAI-shaped error object, and the Zhipu (BigModel) business code that Zhipu SDKs and
// coding tools switch on.
#pragma once

#include <string>

#include <nlohmann/json.hpp>

#include "maas/records.h"

namespace tokenmill::maas {

// Zhipu business codes.
namespace code {
inline constexpr int kAuthFailed = 1000;          // unknown key, wrong secret, revoked key
inline constexpr int kAuthMissing = 1001;         // no credential in the request
inline constexpr int kTokenInvalid = 1002;        // malformed key or JWT
inline constexpr int kTokenExpired = 1003;        // expired key or JWT
inline constexpr int kTokenSignature = 1004;      // JWT signature does not verify
inline constexpr int kBalance = 1113;             // prepaid balance cannot cover the request
inline constexpr int kBadParameter = 1210;        // request parameters out of range
inline constexpr int kNoPermission = 1220;        // key may not use this model or API
inline constexpr int kConcurrency = 1302;
inline constexpr int kRate = 1303;
inline constexpr int kPlanShortWindow = 1308;     // a plan window under a day (e.g. 5 hours)
inline constexpr int kPlanExpired = 1309;
inline constexpr int kPlanLongWindow = 1310;      // a weekly or monthly plan window
inline constexpr int kModelNotInPlan = 1311;
}  // namespace code

struct Rejection {
  Rejection() = default;
  Rejection(int status, int business_code, std::string error_type, std::string text)
      : http_status(status), code(business_code), type(std::move(error_type)), message(std::move(text)) {}

  int http_status = 400;
  int code = 0;
  std::string type;  // what exactly: "invalid_api_key", "insufficient_quota", "plan_window_exhausted", ...
  std::string message;
  int64_t retry_after_s = -1;  // the Retry-After header; -1: none
  TimeMs next_flush_time = 0;  // plan windows: when the exhausted window resets
  nlohmann::json extra = nlohmann::json::object();  // more fields for the error object

  // OpenAI's class of the error, from the status: "authentication_error", "insufficient_quota",
  // "permission_error", "rate_limit_error" or "invalid_request_error".
  std::string error_type() const;
  // {"error": {"message", "type": error_type(), "param": null, "code": "1113"[, "next_flush_time": ms, extra...]}}
  nlohmann::json to_json() const;
};

}  // namespace tokenmill::maas
