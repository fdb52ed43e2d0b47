// The management HTTP API, independent of any HTTP server: the server hands over method,
// path, query and body of a request whose path is_management_path() accepts, together with the
// authenticated caller, and sends back the ApiResponse.
//
//   /admin/v1/...  admin keys only: tenants, projects, keys, balances, prices, model limits,
//                  plans, subscriptions, quota, usage (JSON or CSV), the audit log;
//   /v1/quota      any key: its tenant's balance or plan windows (used, remaining, next reset)
//                  and the key's own limits;
//   /v1/usage      any key: its own tenant's usage, never another's;
//   /api/monitor/usage/quota/limit
//                  any key: its tenant's plan windows in Zhipu's coding-plan shape
//                  ({"code": 200, "msg", "data": {"limits": [...], "level"}, "success": true}).
// Parameters travel in the JSON body (POST) or the query (GET), never in the path, so model
// names with slashes need no escaping. Routes are listed in docs/MAAS.md.
#pragma once

#include <functional>
#include <map>
#include <string>

#include "maas/gateway.h"
#include "maas/rejection.h"
#include "maas/store.h"

namespace tokenmill::maas {

struct ApiRequest {
  std::string method;  // "GET", "POST"
  std::string path;    // without the query string
  std::map<std::string, std::string> query;
  std::string body;
};

struct ApiResponse {
  int status = 200;
  std::string content_type = "application/json";
  std::string body;
};

bool is_management_path(const std::string& path);

// The reply to a request for `path` refused before it reached handle_management (say, a bad
// key): the refusal in the shape that path's clients read.
ApiResponse rejection_reply(const std::string& path, const Rejection& rejection);

ApiResponse handle_management(Store& store, const Principal& who, const ApiRequest& request,
                              const std::function<TimeMs()>& clock = {});

}  // namespace tokenmill::maas
