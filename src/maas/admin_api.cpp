#include "maas/admin_api.h"

#include <algorithm>
#include <chrono>
#include <vector>

#include "maas/admin.h"
#include "maas/names.h"
#include "maas/rejection.h"

namespace tokenmill::maas {
namespace {

using nlohmann::json;

constexpr size_t kMaxBody = 1 << 20;

ApiResponse json_reply(int status, const json& body) { return ApiResponse{status, "application/json", body.dump()}; }

ApiResponse error_reply(int status, int code, const std::string& type, const std::string& message) {
  return json_reply(status, Rejection(status, code, type, message).to_json());
}

// Reads a request's parameters from the query (GET) or the JSON body (POST) alike.
class Params {
 public:
  explicit Params(const ApiRequest& r) {
    if (r.method == "GET") {
      for (const auto& [k, v] : r.query) values_[k] = v;
      return;
    }
    if (r.body.size() > kMaxBody) throw Error("the request body is larger than 1 MiB");
    values_ = r.body.empty() ? json::object() : json::parse(r.body, nullptr, false);
    if (!values_.is_object()) throw Error("the request body must be a JSON object");
  }
  const json& all() const { return values_; }
  bool has(const char* k) const { return values_.contains(k) && !values_[k].is_null(); }
  std::string text(const char* k, const std::string& fallback = "") const {
    if (!has(k)) return fallback;
    if (values_[k].is_string()) return values_[k].get<std::string>();
    if (values_[k].is_number()) return values_[k].dump();  // decimals keep their written form
    throw Error(std::string("\"") + k + "\" must be a string");
  }
  std::string required(const char* k) const {
    if (!has(k)) throw Error(std::string("the request needs \"") + k + "\"");
    return text(k);
  }
  int64_t integer(const char* k, int64_t fallback = 0) const {
    if (!has(k)) return fallback;
    const json& v = values_[k];
    if (v.is_number_integer()) return v.get<int64_t>();
    if (v.is_string()) {
      const std::string s = v.get<std::string>();
      size_t used = 0;
      int64_t out = 0;
      try {
        out = std::stoll(s, &used);
      } catch (const std::exception&) {
        used = 0;
      }
      if (!s.empty() && used == s.size()) return out;
    }
    throw Error(std::string("\"") + k + "\" must be an integer");
  }
  bool flag(const char* k) const {
    if (!has(k)) return false;
    if (values_[k].is_boolean()) return values_[k].get<bool>();
    const std::string v = text(k);
    if (v == "true" || v == "1") return true;
    if (v == "false" || v == "0") return false;
    throw Error(std::string("\"") + k + "\" must be true or false");
  }
  std::vector<std::string> list(const char* k) const {
    std::vector<std::string> out;
    if (!has(k)) return out;
    const json& v = values_[k];
    if (v.is_array()) {
      for (const json& item : v) {
        if (!item.is_string()) throw Error(std::string("\"") + k + "\" must be a list of strings");
        out.push_back(item.get<std::string>());
      }
      return out;
    }
    std::string s = text(k);
    for (size_t start = 0; start <= s.size();) {
      size_t end = s.find(',', start);
      if (end == std::string::npos) end = s.size();
      if (end > start) out.push_back(s.substr(start, end - start));
      start = end + 1;
    }
    return out;
  }
  Limits limits() const {
    return Limits{integer("requests_per_minute"), integer("tokens_per_minute"), integer("max_concurrent")};
  }
  TimeMs time(const char* k) const { return has(k) ? parse_time(text(k)) : 0; }
  UsageQuery usage() const {
    UsageQuery q;
    q.tenant = text("tenant");
    q.key_id = text("key");
    q.model = text("model");
    q.from = time("from");
    q.to = time("to");
    q.group = text("group", "model");
    q.include_rejected = !has("include_rejected") || flag("include_rejected");
    return q;
  }

 private:
  json values_;
};

ApiResponse usage_reply(Admin& admin, const UsageQuery& q, const Params& p) {
  const std::string format = p.text("format", "json");
  if (format == "csv") return ApiResponse{200, "text/csv; charset=utf-8", admin.ledger_csv(q)};
  if (format != "json") throw Error("format is json or csv");
  return json_reply(200, admin.usage(q));
}

json key_quota(Store& store, const KeyRecord& key, TimeMs now) {
  json out = quota_json(quota_status(store, key.tenant_id, now), store.currency());
  out["key"] = {{"id", key.id},
                {"limits",
                 {{"requests_per_minute", key.limits.requests_per_minute},
                  {"tokens_per_minute", key.limits.tokens_per_minute},
                  {"max_concurrent", key.limits.max_concurrent}}}};
  return out;
}

// Zhipu's coding-plan usage query (GET /api/monitor/usage/quota/limit, as the GLM coding
// plan's tools call it) answers in an envelope, {"code", "msg", "data", "success"}.
constexpr const char* kPlanLimitsPath = "/api/monitor/usage/quota/limit";

ApiResponse envelope_reply(int status, int code, const std::string& message, const json& data = nullptr) {
  json body = {{"code", code}, {"msg", message}};
  if (!data.is_null()) body["data"] = data;
  body["success"] = status == 200;
  return json_reply(status, body);
}

// One plan window as Zhipu reports it. Zhipu's types: TOKENS_LIMIT for token windows and
// TIME_LIMIT for windows counted in calls ("times"), ours in prompts. The window's length is
// `number` of `unit`s, with Zhipu's unit codes 3 (hours), 4 (days) and 5 (months, here 30
// days); a window that is not whole hours is given in hours rounded up. `usage` is the limit,
// `currentValue` what the window has used, `remaining` what is left after requests still
// running, `percentage` the share used, `nextResetTime` unix milliseconds (absent while a
// first_use window has not opened).
json plan_limit_json(const WindowStatus& w) {
  constexpr TimeMs kHour = 3'600'000, kDay = 24 * kHour, kMonth = 30 * kDay;
  int unit = 3;
  TimeMs per_unit = kHour;
  if (w.duration_ms % kMonth == 0) {
    unit = 5;
    per_unit = kMonth;
  } else if (w.duration_ms % kDay == 0) {
    unit = 4;
    per_unit = kDay;
  }
  const int64_t limit = w.limit_milli / 1000;
  const int64_t used = (w.used_milli + 999) / 1000;  // a started unit counts as used
  json out = {{"type", w.unit == WindowUnit::WeightedTokens ? "TOKENS_LIMIT" : "TIME_LIMIT"},
              {"name", w.name},
              {"unit", unit},
              {"number", (w.duration_ms + per_unit - 1) / per_unit},
              {"usage", limit},
              {"currentValue", used},
              {"remaining", w.remaining_milli / 1000},
              {"percentage", w.limit_milli > 0 ? std::min<int64_t>(100, w.used_milli * 100 / w.limit_milli) : 100}};
  if (w.next_reset > 0) out["nextResetTime"] = w.next_reset;
  return out;
}

ApiResponse plan_limits_reply(Store& store, const Principal& who, const ApiRequest& request, TimeMs now) {
  if (request.method != "GET") return envelope_reply(405, code::kBadParameter, "use GET");
  const std::optional<KeyRecord> key = store.find_key(who.key_id);
  if (!key) return envelope_reply(401, code::kAuthFailed, "invalid API key");
  const QuotaStatus q = quota_status(store, key->tenant_id, now);
  json limits = json::array();
  for (const WindowStatus& w : q.windows) limits.push_back(plan_limit_json(w));
  json data = {{"limits", limits}};
  if (q.billing == Billing::Plan) data["level"] = q.plan;  // a tenant billed by balance has no plan windows
  return envelope_reply(200, 200, "Operation successful", data);
}

using Handler = std::function<ApiResponse(Admin&, const Params&)>;

struct Route {
  const char* method;
  const char* path;
  Handler handler;
};

std::vector<Route> admin_routes(Store& store, const std::function<TimeMs()>& now) {
  auto ok = [](json body) { return json_reply(200, body); };
  return {
      {"GET", "/admin/v1/tenants", [=](Admin& a, const Params&) { return ok(a.list_tenants()); }},
      {"POST", "/admin/v1/tenants", [=](Admin& a, const Params& p) { return json_reply(201, a.create_tenant(p.required("name"))); }},
      {"GET", "/admin/v1/projects", [=](Admin& a, const Params& p) { return ok(a.list_projects(p.required("tenant"))); }},
      {"POST", "/admin/v1/projects",
       [=](Admin& a, const Params& p) { return json_reply(201, a.create_project(p.required("tenant"), p.required("name"))); }},
      {"GET", "/admin/v1/keys", [=](Admin& a, const Params& p) { return ok(a.list_keys(p.text("tenant"))); }},
      {"POST", "/admin/v1/keys",
       [=](Admin& a, const Params& p) {
         KeyOptions o;
         o.tenant = p.required("tenant");
         o.project = p.text("project");
         o.name = p.text("name");
         o.models = p.list("models");
         o.admin = p.flag("admin");
         o.jwt = p.flag("jwt");
         o.expires_at = p.time("expires_at");
         o.limits = p.limits();
         return json_reply(201, a.create_key(o));
       }},
      {"POST", "/admin/v1/keys/revoke", [=](Admin& a, const Params& p) { return ok(a.revoke_key(p.required("id"))); }},
      {"POST", "/admin/v1/keys/limits",
       [=](Admin& a, const Params& p) { return ok(a.set_key_limits(p.required("id"), p.limits())); }},
      {"GET", "/admin/v1/balance", [=](Admin& a, const Params& p) { return ok(a.balance(p.required("tenant"))); }},
      {"POST", "/admin/v1/balance/top-up",
       [=](Admin& a, const Params& p) { return ok(a.top_up(p.required("tenant"), p.required("amount"), p.text("note"))); }},
      {"GET", "/admin/v1/prices", [=](Admin& a, const Params&) { return ok(a.list_prices()); }},
      {"POST", "/admin/v1/prices",
       [=](Admin& a, const Params& p) {
         PriceOptions o{p.required("model"), p.required("input"), p.text("cached_input"), p.required("output"), {}};
         if (p.has("tiers")) {
           const json& tiers = p.all()["tiers"];
           if (!tiers.is_array()) throw Error("\"tiers\" must be a list");
           for (const json& t : tiers) {
             const Params tier(ApiRequest{"POST", "", {}, t.dump()});
             o.tiers.push_back({tier.integer("min_prompt_tokens"), tier.required("input"), tier.text("cached_input"),
                                tier.required("output")});
           }
         }
         return ok(a.set_price(o));
       }},
      {"POST", "/admin/v1/prices/delete", [=](Admin& a, const Params& p) { return ok(a.delete_price(p.required("model"))); }},
      {"POST", "/admin/v1/models/limits",
       [=](Admin& a, const Params& p) { return ok(a.set_model_limits(p.required("model"), p.limits())); }},
      {"GET", "/admin/v1/plans", [=](Admin& a, const Params&) { return ok(a.list_plans()); }},
      {"POST", "/admin/v1/plans", [=](Admin& a, const Params& p) { return ok(a.set_plan(p.all())); }},
      {"POST", "/admin/v1/subscriptions",
       [=](Admin& a, const Params& p) { return ok(a.subscribe(p.required("tenant"), p.required("plan"), p.time("start"))); }},
      {"POST", "/admin/v1/subscriptions/renew", [=](Admin& a, const Params& p) { return ok(a.renew(p.required("tenant"))); }},
      {"POST", "/admin/v1/subscriptions/cancel",
       [=](Admin& a, const Params& p) { return ok(a.unsubscribe(p.required("tenant"))); }},
      {"GET", "/admin/v1/quota",
       [&store, now](Admin& a, const Params& p) {
         if (!p.has("key")) return json_reply(200, a.quota(p.required("tenant")));
         const std::string id = p.text("key");
         const std::optional<KeyRecord> key = id.size() <= 64 ? store.find_key(id) : std::nullopt;
         if (!key) throw NotFound("no API key with id '" + id.substr(0, 64) + "'");
         return json_reply(200, key_quota(store, *key, now()));
       }},
      {"GET", "/admin/v1/usage", [=](Admin& a, const Params& p) { return usage_reply(a, p.usage(), p); }},
      {"GET", "/admin/v1/audit",
       [=](Admin& a, const Params& p) { return ok(a.audit(p.integer("after"), p.integer("limit", 1000))); }},
      {"GET", "/admin/v1/audit/verify", [=](Admin& a, const Params&) { return ok(a.verify_audit()); }},
  };
}

}  // namespace

bool is_management_path(const std::string& path) {
  return path.rfind("/admin/", 0) == 0 || path == "/admin" || path == "/v1/quota" || path == "/v1/usage" ||
         path == kPlanLimitsPath;
}

ApiResponse rejection_reply(const std::string& path, const Rejection& r) {
  if (path == kPlanLimitsPath) return envelope_reply(r.http_status, r.code, r.message);
  return json_reply(r.http_status, r.to_json());
}

ApiResponse handle_management(Store& store, const Principal& who, const ApiRequest& request,
                              const std::function<TimeMs()>& clock) {
  const std::function<TimeMs()> now = clock ? clock : [] {
    return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
        .count();
  };
  try {
    if (request.path == kPlanLimitsPath) return plan_limits_reply(store, who, request, now());
    const Params params(request);
    if (request.path == "/v1/quota" || request.path == "/v1/usage") {
      if (request.method != "GET") return error_reply(405, code::kBadParameter, "invalid_request_error", "use GET");
      const std::optional<KeyRecord> key = store.find_key(who.key_id);
      if (!key) return error_reply(401, code::kAuthFailed, "invalid_api_key", "invalid API key");
      if (request.path == "/v1/quota") return json_reply(200, key_quota(store, *key, now()));
      // A tenant sees its own usage only: the tenant is the caller's, whatever the query says.
      UsageQuery q = params.usage();
      if (!q.tenant.empty() && q.tenant != who.tenant) {
        return error_reply(403, code::kNoPermission, "permission_denied", "a key may only read its own tenant's usage");
      }
      q.tenant = who.tenant;
      Admin admin(store, "key:" + who.key_id, now);
      return usage_reply(admin, q, params);
    }
    if (!who.admin) {
      return error_reply(403, code::kNoPermission, "permission_denied", "this API key may not use the admin API");
    }
    bool path_known = false;
    for (const Route& route : admin_routes(store, now)) {
      if (request.path != route.path) continue;
      path_known = true;
      if (request.method != route.method) continue;
      Admin admin(store, "key:" + who.key_id, now);
      return route.handler(admin, params);
    }
    if (path_known) return error_reply(405, code::kBadParameter, "invalid_request_error", "method not allowed here");
    return error_reply(404, code::kBadParameter, "not_found", "no admin route " + request.path.substr(0, 100));
  } catch (const NotFound& e) {
    return error_reply(404, code::kBadParameter, "not_found", e.what());
  } catch (const Error& e) {
    return error_reply(400, code::kBadParameter, "invalid_request_error", e.what());
  } catch (const nlohmann::json::exception& e) {
    return error_reply(400, code::kBadParameter, "invalid_request_error", std::string("malformed parameters: ") + e.what());
  }
}

}  // namespace tokenmill::maas
