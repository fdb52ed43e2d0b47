#include "maas/admin.h"

#include <chrono>
#include <ctime>
#include <map>

#include "common/error.h"
#include "maas/audit.h"
#include "maas/keys.h"
#include "maas/money.h"
#include "maas/names.h"
#include "maas/prices.h"

namespace tokenmill::maas {
namespace {

using nlohmann::json;

TimeMs system_now() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

json time_json(TimeMs ms) { return ms == 0 ? json(nullptr) : json(format_utc(ms)); }

json tenant_json(const Tenant& t) {
  return {{"id", t.id},
          {"name", t.name},
          {"created_at", format_utc(t.created_at)},
          {"balance", format_money(t.balance_micros)},
          {"reserved", format_money(t.reserved_micros)},
          {"available", format_money(t.balance_micros - t.reserved_micros)}};
}

json limits_json(const Limits& l) {
  return {{"requests_per_minute", l.requests_per_minute},
          {"tokens_per_minute", l.tokens_per_minute},
          {"max_concurrent", l.max_concurrent}};
}

// Never the salt, hash or sealed secret.
json key_json(const KeyRecord& k, const std::string& tenant) {
  return {{"id", k.id},
          {"tenant", tenant},
          {"project_id", k.project_id},
          {"name", k.name},
          {"models", k.models},
          {"admin", k.admin},
          {"jwt", !k.sealed_secret.empty()},
          {"created_at", format_utc(k.created_at)},
          {"expires_at", time_json(k.expires_at)},
          {"revoked_at", time_json(k.revoked_at)},
          {"limits", limits_json(k.limits)}};
}

json price_json(const ModelPrice& p) {
  json tiers = json::array();
  for (const PriceTier& t : p.tiers) {
    tiers.push_back({{"min_prompt_tokens", t.min_prompt_tokens},
                     {"input", format_money(t.input)},
                     {"cached_input", format_money(t.cached_input)},
                     {"output", format_money(t.output)}});
  }
  return {{"model", p.model}, {"per", "1M tokens"}, {"tiers", tiers}};
}

json totals_json(const UsageTotals& t) {
  return {{"group", t.group},
          {"requests", t.requests},
          {"rejected", t.rejected},
          {"prompt_tokens", t.tokens.prompt},
          {"cached_tokens", t.tokens.cached},
          {"output_tokens", t.tokens.output},
          {"reasoning_tokens", t.tokens.reasoning},
          {"cost", format_money(t.cost_micros)},
          {"plan_prompts", format_fixed(t.plan_prompts_milli, 3)},
          {"plan_weighted_tokens", format_fixed(t.plan_tokens_milli, 3)}};
}

void check_limits(const Limits& l) {
  for (int64_t v : {l.requests_per_minute, l.tokens_per_minute, l.max_concurrent}) {
    if (v < 0 || v > 1'000'000'000'000) throw Error("a limit must be between 0 (none) and 10^12");
  }
}

// A CSV field; text that a spreadsheet would run as a formula is prefixed with a quote.
std::string csv_field(const std::string& s) {
  std::string v = s;
  if (!v.empty() && (v[0] == '=' || v[0] == '+' || v[0] == '-' || v[0] == '@')) v.insert(0, "'");
  if (v.find_first_of(",\"\r\n") == std::string::npos) return v;
  std::string out = "\"";
  for (char c : v) {
    if (c == '"') out += '"';
    out += c;
  }
  return out + "\"";
}

}  // namespace

TimeMs parse_time(const std::string& text) {
  bool digits = !text.empty() && text.size() <= 15;
  for (char c : text) digits = digits && c >= '0' && c <= '9';
  if (digits) return std::stoll(text);
  std::tm tm{};
  const char* end = nullptr;
  if (text.size() == 10) end = strptime(text.c_str(), "%Y-%m-%d", &tm);
  else if (text.size() == 20) end = strptime(text.c_str(), "%Y-%m-%dT%H:%M:%SZ", &tm);
  if (end == nullptr || *end != '\0') {
    throw Error("a time is epoch milliseconds, YYYY-MM-DD or YYYY-MM-DDTHH:MM:SSZ, got '" + text.substr(0, 40) + "'");
  }
  return static_cast<TimeMs>(timegm(&tm)) * 1000;
}

json quota_json(const QuotaStatus& q, const std::string& currency) {
  json windows = json::array();
  for (const WindowStatus& w : q.windows) {
    windows.push_back({{"name", w.name},
                       {"unit", w.unit == WindowUnit::Prompts ? "prompts" : "weighted_tokens"},
                       {"duration", format_duration(w.duration_ms)},
                       {"limit", format_fixed(w.limit_milli, 3)},
                       {"used", format_fixed(w.used_milli, 3)},
                       {"reserved", format_fixed(w.reserved_milli, 3)},
                       {"remaining", format_fixed(w.remaining_milli, 3)},
                       {"window_start", time_json(w.window_start)},
                       {"next_reset", time_json(w.next_reset)},
                       {"next_reset_ms", w.next_reset == 0 ? json(nullptr) : json(w.next_reset)}});
  }
  json out = {{"tenant", q.tenant},
              {"billing", billing_name(q.billing)},
              {"currency", currency},
              {"balance", format_money(q.balance_micros)},
              {"reserved", format_money(q.reserved_micros)},
              {"available", format_money(q.balance_micros - q.reserved_micros)}};
  if (q.billing == Billing::Plan) {
    out["plan"] = q.plan;
    out["period_start"] = time_json(q.period_start);
    out["period_end"] = time_json(q.period_end);
    out["windows"] = windows;
  }
  return out;
}

Admin::Admin(Store& store, std::string actor, Clock clock)
    : store_(store), actor_(std::move(actor)), clock_(clock ? std::move(clock) : Clock(system_now)) {}

void Admin::audit_action(const std::string& action, const std::string& target, const json& details) {
  store_.append_audit(AuditEntry{0, clock_(), actor_, action, target, mask_secrets(details).dump(), "", ""});
}

Tenant Admin::require_tenant(const std::string& name) {
  check_name(name, "tenant name");
  std::optional<Tenant> t = store_.find_tenant(name);
  if (!t) throw NotFound("no tenant named '" + name + "'");
  return *t;
}

json Admin::set_currency(const std::string& code) {
  bool ok = code.size() == 3;
  for (char c : code) ok = ok && c >= 'A' && c <= 'Z';
  if (!ok) throw Error("a currency is a three-letter ISO 4217 code such as USD, EUR or CNY");
  if (code != store_.currency()) {
    bool amounts = !store_.list_prices().empty() || !store_.ledger(UsageFilter{}).empty();
    for (const Tenant& t : store_.list_tenants()) amounts = amounts || t.balance_micros != 0;
    if (amounts) throw Error("the currency can only be chosen before any price, balance or usage is recorded");
    store_.set_currency(code);
    audit_action("settings.currency", code, json::object());
  }
  return {{"currency", code}};
}

json Admin::create_tenant(const std::string& name) {
  check_name(name, "tenant name");
  const Tenant t = store_.create_tenant(name, clock_());
  audit_action("tenants.create", name, json::object());
  return tenant_json(t);
}

json Admin::list_tenants() {
  json out = json::array();
  for (const Tenant& t : store_.list_tenants()) out.push_back(tenant_json(t));
  return out;
}

json Admin::create_project(const std::string& tenant, const std::string& name) {
  const Tenant t = require_tenant(tenant);
  check_name(name, "project name");
  const Project p = store_.create_project(t.id, name, clock_());
  audit_action("projects.create", tenant + "/" + name, json::object());
  return {{"id", p.id}, {"tenant", tenant}, {"name", name}, {"created_at", format_utc(p.created_at)}};
}

json Admin::list_projects(const std::string& tenant) {
  const Tenant t = require_tenant(tenant);
  json out = json::array();
  for (const Project& p : store_.list_projects(t.id)) {
    out.push_back({{"id", p.id}, {"tenant", tenant}, {"name", p.name}, {"created_at", format_utc(p.created_at)}});
  }
  return out;
}

json Admin::create_key(const KeyOptions& o) {
  const Tenant t = require_tenant(o.tenant);
  const TimeMs now = clock_();
  int64_t project_id = 0;
  if (!o.project.empty()) {
    check_name(o.project, "project name");
    const std::optional<Project> p = store_.find_project(t.id, o.project);
    if (!p) throw NotFound("tenant '" + o.tenant + "' has no project named '" + o.project + "'");
    project_id = p->id;
  }
  if (!o.name.empty()) check_name(o.name, "key name");
  for (const std::string& m : o.models) check_model_name(m);
  if (o.models.size() > 256) throw Error("a key's model list holds at most 256 models");
  if (o.expires_at != 0 && o.expires_at <= now) throw Error("the expiry time is in the past");
  check_limits(o.limits);
  NewKey k = generate_key(o.jwt ? store_.sealing_key(true) : std::string());
  k.record.tenant_id = t.id;
  k.record.project_id = project_id;
  k.record.name = o.name;
  k.record.models = o.models;
  k.record.admin = o.admin;
  k.record.created_at = now;
  k.record.expires_at = o.expires_at;
  k.record.limits = o.limits;
  store_.insert_key(k.record);
  json out = key_json(k.record, t.name);
  audit_action("keys.create", k.record.id, out);
  out["key"] = k.presented;
  return out;
}

json Admin::revoke_key(const std::string& id) {
  const std::optional<KeyRecord> k = id.size() <= 64 ? store_.find_key(id) : std::nullopt;
  if (!k) throw NotFound("no API key with id '" + id.substr(0, 64) + "'");
  if (!store_.revoke_key(id, clock_())) throw Error("API key '" + id + "' is already revoked");
  audit_action("keys.revoke", id, json::object());
  const std::optional<Tenant> t = store_.tenant_by_id(k->tenant_id);
  return key_json(*store_.find_key(id), t ? t->name : "");
}

json Admin::list_keys(const std::string& tenant) {
  int64_t tenant_id = 0;
  if (!tenant.empty()) tenant_id = require_tenant(tenant).id;
  std::map<int64_t, std::string> names;
  for (const Tenant& t : store_.list_tenants()) names[t.id] = t.name;
  json out = json::array();
  for (const KeyRecord& k : store_.list_keys(tenant_id)) out.push_back(key_json(k, names[k.tenant_id]));
  return out;
}

json Admin::set_key_limits(const std::string& id, const Limits& limits) {
  check_limits(limits);
  if (id.size() > 64 || !store_.find_key(id)) throw NotFound("no API key with id '" + id.substr(0, 64) + "'");
  store_.set_key_limits(id, limits);
  audit_action("keys.limits", id, limits_json(limits));
  return {{"id", id}, {"limits", limits_json(limits)}};
}

json Admin::top_up(const std::string& tenant, const std::string& amount, const std::string& note) {
  const Tenant t = require_tenant(tenant);
  const int64_t micros = parse_money(amount, "the amount");
  if (micros == 0) throw Error("the amount must not be zero");
  if (note.size() > 500) throw Error("a note holds at most 500 characters");
  const std::optional<int64_t> balance = store_.add_to_balance(t.id, micros, note, clock_());
  if (!balance) {
    throw Error(micros < 0 ? "the balance cannot go below what running requests hold"
                           : "the balance would exceed " + format_money(kMaxMicros));
  }
  audit_action("balance.top_up", tenant, {{"amount", format_money(micros)}, {"note", note}});
  return tenant_json(*store_.tenant_by_id(t.id));
}

json Admin::balance(const std::string& tenant) {
  json out = tenant_json(require_tenant(tenant));
  out["currency"] = store_.currency();
  return out;
}

json Admin::set_price(const PriceOptions& o) {
  check_model_name(o.model);
  auto money = [](const std::string& text, const char* what) {
    const int64_t v = parse_money(text, what);
    if (v < 0) throw Error(std::string(what) + " must not be negative");
    return v;
  };
  ModelPrice p{o.model, {}};
  const int64_t input = money(o.input, "the input price");
  p.tiers.push_back({0, input, o.cached_input.empty() ? input : money(o.cached_input, "the cached-input price"),
                     money(o.output, "the output price")});
  for (const PriceOptions::Tier& t : o.tiers) {
    if (t.min_prompt_tokens <= 0) throw Error("a price tier starts above 0 prompt tokens");
    const int64_t tier_input = money(t.input, "a tier's input price");
    p.tiers.push_back({t.min_prompt_tokens, tier_input,
                       t.cached_input.empty() ? tier_input : money(t.cached_input, "a tier's cached-input price"),
                       money(t.output, "a tier's output price")});
  }
  normalize_price(p);
  store_.set_price(p);
  const json out = price_json(p);
  audit_action("prices.set", o.model, out);
  return out;
}

json Admin::delete_price(const std::string& model) {
  check_model_name(model);
  if (!store_.delete_price(model)) throw NotFound("model '" + model + "' has no price");
  audit_action("prices.delete", model, json::object());
  return {{"model", model}, {"deleted", true}};
}

json Admin::list_prices() {
  json out = json::array();
  for (const ModelPrice& p : store_.list_prices()) out.push_back(price_json(p));
  return out;
}

json Admin::set_model_limits(const std::string& model, const Limits& limits) {
  check_model_name(model);
  check_limits(limits);
  store_.set_model_limits(model, limits);
  audit_action("models.limits", model, limits_json(limits));
  return {{"model", model}, {"limits", limits_json(limits)}};
}

json Admin::set_plan(const json& definition) {
  const Plan plan = store_.upsert_plan(parse_plan(definition));
  const json out = plan_to_json(plan);
  audit_action("plans.set", plan.name, out);
  return out;
}

json Admin::list_plans() {
  json out = json::array();
  for (const Plan& p : store_.list_plans()) out.push_back(plan_to_json(p));
  return out;
}

json Admin::subscribe(const std::string& tenant, const std::string& plan_name, TimeMs start) {
  const Tenant t = require_tenant(tenant);
  check_name(plan_name, "plan name");
  const std::optional<Plan> plan = store_.find_plan(plan_name);
  if (!plan) throw NotFound("no plan named '" + plan_name + "'");
  if (start == 0) start = clock_();
  const Subscription sub = store_.subscribe(t.id, *plan, start, start + plan->period_ms);
  const json out = {{"tenant", tenant},
                    {"plan", plan_name},
                    {"period_start", format_utc(sub.period_start)},
                    {"period_end", format_utc(sub.period_end)}};
  audit_action("plans.subscribe", tenant, out);
  return out;
}

json Admin::renew(const std::string& tenant) {
  const Tenant t = require_tenant(tenant);
  const std::optional<Subscription> sub = store_.subscription_of(t.id);
  if (!sub) throw NotFound("tenant '" + tenant + "' has no subscription to renew");
  const std::optional<Plan> plan = store_.plan_by_id(sub->plan_id);
  if (!plan) throw Error("internal: the subscription names a missing plan");
  return subscribe(tenant, plan->name, 0);
}

json Admin::unsubscribe(const std::string& tenant) {
  const Tenant t = require_tenant(tenant);
  if (!store_.unsubscribe(t.id)) throw NotFound("tenant '" + tenant + "' has no subscription");
  audit_action("plans.unsubscribe", tenant, json::object());
  return {{"tenant", tenant}, {"billing", "balance"}};
}

json Admin::quota(const std::string& tenant) {
  const Tenant t = require_tenant(tenant);
  return quota_json(quota_status(store_, t.id, clock_()), store_.currency());
}

UsageFilter Admin::filter_of(const UsageQuery& q) {
  UsageFilter f;
  if (!q.tenant.empty()) f.tenant_id = require_tenant(q.tenant).id;
  if (!q.key_id.empty() && q.key_id.size() > 64) throw NotFound("no API key with that id");
  if (!q.model.empty()) check_model_name(q.model);
  f.key_id = q.key_id;
  f.model = q.model;
  f.from = q.from;
  f.to = q.to;
  f.include_rejected = q.include_rejected;
  return f;
}

json Admin::usage(const UsageQuery& q) {
  const UsageGroup group = q.group == "tenant" ? UsageGroup::Tenant
                           : q.group == "key"  ? UsageGroup::Key
                           : q.group == "model"
                               ? UsageGroup::Model
                               : throw Error("usage is grouped by tenant, key or model, not '" + q.group.substr(0, 20) + "'");
  const UsageFilter f = filter_of(q);
  json rows = json::array();
  UsageTotals total;
  total.group = "total";
  for (const UsageTotals& t : store_.usage_totals(f, group)) {
    rows.push_back(totals_json(t));
    total.requests += t.requests;
    total.rejected += t.rejected;
    total.tokens.prompt += t.tokens.prompt;
    total.tokens.cached += t.tokens.cached;
    total.tokens.output += t.tokens.output;
    total.tokens.reasoning += t.tokens.reasoning;
    total.cost_micros += t.cost_micros;
    total.plan_prompts_milli += t.plan_prompts_milli;
    total.plan_tokens_milli += t.plan_tokens_milli;
  }
  return {{"currency", store_.currency()},
          {"group_by", q.group},
          {"from", time_json(q.from)},
          {"to", time_json(q.to)},
          {"rows", rows},
          {"total", totals_json(total)}};
}

std::vector<LedgerRecord> Admin::ledger(const UsageQuery& q, int64_t limit) {
  UsageFilter f = filter_of(q);
  f.limit = limit;
  return store_.ledger(f);
}

std::string Admin::ledger_csv(const UsageQuery& q) {
  std::map<int64_t, std::string> names;
  for (const Tenant& t : store_.list_tenants()) names[t.id] = t.name;
  std::string out =
      "seq,request_id,tenant,project_id,key_id,model,billing,prompt_tokens,cached_tokens,output_tokens,"
      "reasoning_tokens,cost,plan_prompts,plan_weighted_tokens,outcome,code,error,admitted_at,finished_at,"
      "first_token_ms\n";
  for (const LedgerRecord& r : ledger(q)) {
    const std::vector<std::string> fields = {
        std::to_string(r.seq),        csv_field(r.request_id),          csv_field(names[r.tenant_id]),
        std::to_string(r.project_id), csv_field(r.key_id),              csv_field(r.model),
        std::string(billing_name(r.billing)), std::to_string(r.tokens.prompt), std::to_string(r.tokens.cached),
        std::to_string(r.tokens.output), std::to_string(r.tokens.reasoning), format_money(r.cost_micros),
        format_fixed(r.plan_prompts_milli, 3), format_fixed(r.plan_tokens_milli, 3),
        std::string(outcome_name(r.outcome)), std::to_string(r.code), csv_field(r.error),
        format_utc(r.admitted_at),    format_utc(r.finished_at),        std::to_string(r.first_token_ms)};
    for (size_t i = 0; i < fields.size(); ++i) out += (i ? "," : "") + fields[i];
    out += '\n';
  }
  return out;
}

json Admin::audit(int64_t after_seq, int64_t limit) {
  json out = json::array();
  for (const AuditEntry& e : store_.audit_log(after_seq, limit)) {
    out.push_back({{"seq", e.seq},
                   {"at", format_utc(e.at)},
                   {"actor", e.actor},
                   {"action", e.action},
                   {"target", e.target},
                   {"details", json::parse(e.details, nullptr, false)},
                   {"prev_hash", e.prev_hash},
                   {"hash", e.hash}});
  }
  return out;
}

json Admin::verify_audit() {
  const std::vector<AuditEntry> log = store_.audit_log(0, 0);
  const int64_t broken = first_broken_audit_entry(log);
  json out = {{"entries", log.size()}, {"intact", broken == 0}, {"head", log.empty() ? "" : log.back().hash}};
  if (broken != 0) out["first_broken_seq"] = broken;
  return out;
}

}  // namespace tokenmill::maas
