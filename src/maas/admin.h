// Admin operations: tenants, projects, keys, prices, limits, balances, plans and
// subscriptions, usage and the audit log. The `tokenmill admin` CLI and the admin HTTP API both
// call these, so validation, masking and the audit entry happen in one place. Every change is
// audited; results are JSON with amounts as exact decimal strings.
#pragma once

#include <functional>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "common/error.h"

#include "maas/gateway.h"
#include "maas/store.h"

namespace tokenmill::maas {

// What an admin operation names does not exist (the HTTP API answers 404).
class NotFound : public Error {
 public:
  using Error::Error;
};

struct KeyOptions {
  std::string tenant;
  std::string project;  // empty: none
  std::string name;
  std::vector<std::string> models;
  bool admin = false;
  bool jwt = false;
  TimeMs expires_at = 0;
  Limits limits;
};

// Prices as decimal text per million tokens; `tiers` adds thresholds above 0.
struct PriceOptions {
  std::string model;
  std::string input;
  std::string cached_input;  // empty: same as input
  std::string output;
  struct Tier {
    int64_t min_prompt_tokens = 0;
    std::string input, cached_input, output;
  };
  std::vector<Tier> tiers;
};

struct UsageQuery {
  std::string tenant;  // empty: all (admin only)
  std::string key_id;
  std::string model;
  TimeMs from = 0;
  TimeMs to = 0;
  std::string group = "model";  // tenant | key | model
  bool include_rejected = true;
};

class Admin {
 public:
  using Clock = std::function<TimeMs()>;
  // `actor` names who acts in the audit log: "cli" or "key:<id>".
  Admin(Store& store, std::string actor, Clock clock = {});

  nlohmann::json set_currency(const std::string& code);
  nlohmann::json create_tenant(const std::string& name);
  nlohmann::json list_tenants();
  nlohmann::json create_project(const std::string& tenant, const std::string& name);
  nlohmann::json list_projects(const std::string& tenant);

  // The result's "key" field holds "id.secret": the only time the secret is ever shown.
  nlohmann::json create_key(const KeyOptions& options);
  nlohmann::json revoke_key(const std::string& id);
  nlohmann::json list_keys(const std::string& tenant);
  nlohmann::json set_key_limits(const std::string& id, const Limits& limits);

  nlohmann::json top_up(const std::string& tenant, const std::string& amount, const std::string& note);
  nlohmann::json balance(const std::string& tenant);

  nlohmann::json set_price(const PriceOptions& options);
  nlohmann::json delete_price(const std::string& model);
  nlohmann::json list_prices();
  nlohmann::json set_model_limits(const std::string& model, const Limits& limits);

  nlohmann::json set_plan(const nlohmann::json& definition);
  nlohmann::json list_plans();
  // Starts a period now (or at `start`); renew starts the next one where the current ends.
  nlohmann::json subscribe(const std::string& tenant, const std::string& plan, TimeMs start = 0);
  nlohmann::json renew(const std::string& tenant);
  nlohmann::json unsubscribe(const std::string& tenant);

  nlohmann::json quota(const std::string& tenant);
  nlohmann::json usage(const UsageQuery& query);
  std::vector<LedgerRecord> ledger(const UsageQuery& query, int64_t limit = 0);
  std::string ledger_csv(const UsageQuery& query);

  nlohmann::json audit(int64_t after_seq, int64_t limit);
  nlohmann::json verify_audit();

  Tenant require_tenant(const std::string& name);

 private:
  void audit_action(const std::string& action, const std::string& target, const nlohmann::json& details);
  UsageFilter filter_of(const UsageQuery& query);

  Store& store_;
  std::string actor_;
  Clock clock_;
};

// JSON views shared by the admin API and the quota endpoint.
nlohmann::json quota_json(const QuotaStatus& q, const std::string& currency);
// "1736121600000" (epoch ms), "2025-01-06" or "2025-01-06T12:00:00Z" -> epoch ms.
TimeMs parse_time(const std::string& text);

}  // namespace tokenmill::maas
