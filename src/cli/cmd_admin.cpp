// `tokenmill admin --db URL GROUP ACTION ...`: tenants, projects, keys, balances, prices, model
// limits, plans and subscriptions, quota, usage and the audit log of a tokenmill database, from
// the command line (the same operations as the admin HTTP API of a running server). Output is
// human-readable, or JSON with --json; `usage --csv` exports the ledger.
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <functional>
#include <iostream>
#include <memory>
#include <sstream>

#include "cli/commands.h"
#include "common/error.h"
#include "maas/admin.h"
#include "maas/money.h"
#include "store/open_store.h"

namespace tokenmill::cli {
namespace {

using nlohmann::json;

struct AdminOptions {
  std::string db;
  bool json_output = false;
};

std::string cell(const json& v) {
  if (v.is_string()) return v.get<std::string>();
  if (v.is_null()) return "-";
  return v.dump();
}

// Objects as "field: value" lines, lists of objects as aligned tables.
void print_human(const json& v) {
  if (v.is_object() && v.contains("rows") && v.contains("total")) {  // usage
    json rows = v["rows"];
    rows.push_back(v["total"]);
    print_human(rows);
    std::printf("(amounts in %s)\n", cell(v["currency"]).c_str());
    return;
  }
  if (v.is_object()) {
    size_t width = 0;
    for (const auto& [k, item] : v.items()) width = std::max(width, k.size());
    for (const auto& [k, item] : v.items()) std::printf("%-*s  %s\n", static_cast<int>(width + 1), (k + ":").c_str(), cell(item).c_str());
    return;
  }
  if (!v.is_array() || v.empty() || !v[0].is_object()) {
    std::printf("%s\n", v.is_array() && v.empty() ? "(none)" : cell(v).c_str());
    return;
  }
  std::vector<std::string> columns;
  for (const auto& [k, item] : v[0].items()) columns.push_back(k);
  std::vector<size_t> widths;
  for (const std::string& c : columns) widths.push_back(c.size());
  for (const json& row : v) {
    for (size_t i = 0; i < columns.size(); ++i) widths[i] = std::max(widths[i], cell(row.value(columns[i], json())).size());
  }
  auto line = [&](const std::function<std::string(size_t)>& text) {
    std::string out;
    for (size_t i = 0; i < columns.size(); ++i) {
      std::string t = text(i);
      if (i + 1 < columns.size()) t.resize(widths[i] + 2, ' ');
      out += t;
    }
    std::printf("%s\n", out.c_str());
  };
  line([&](size_t i) { return columns[i]; });
  for (const json& row : v) line([&](size_t i) { return cell(row.value(columns[i], json())); });
}

std::string actor() {
  const char* user = std::getenv("USER");
  return std::string("cli:") + (user && *user ? user : std::to_string(::getuid()));
}

// One leaf command: its own options are filled by CLI11, then `run` acts on an Admin.
void leaf(CLI::App& group, const std::string& name, const std::string& description, const AdminOptions& opts,
          const std::function<void(CLI::App&)>& declare, const std::function<json(maas::Admin&)>& run,
          const std::function<bool(maas::Admin&)>& raw_output = {}) {
  CLI::App* cmd = group.add_subcommand(name, description);
  declare(*cmd);
  cmd->callback([&opts, run, raw_output] {
    if (opts.db.empty()) throw Error("tokenmill admin needs --db URL (e.g. --db sqlite:tokenmill.db)");
    const std::unique_ptr<maas::Store> store = store::open_store(opts.db);
    maas::Admin admin(*store, actor());
    if (raw_output && raw_output(admin)) return;
    const json result = run(admin);
    if (opts.json_output) std::printf("%s\n", result.dump(2).c_str());
    else print_human(result);
  });
}

void limit_options(CLI::App& cmd, maas::Limits& limits) {
  cmd.add_option("--rpm", limits.requests_per_minute, "requests per minute (0: no limit)");
  cmd.add_option("--tpm", limits.tokens_per_minute, "tokens per minute (0: no limit)");
  cmd.add_option("--concurrency", limits.max_concurrent, "concurrent requests (0: no limit)");
}

std::vector<std::string> split_list(const std::string& text) {
  std::vector<std::string> out;
  std::stringstream ss(text);
  for (std::string item; std::getline(ss, item, ',');) {
    if (!item.empty()) out.push_back(item);
  }
  return out;
}

std::string read_all(const std::string& path) {
  if (path == "-") return std::string(std::istreambuf_iterator<char>(std::cin), {});
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Error("cannot read " + path);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

// All state the command-line parser fills in; it lives as long as the App.
struct Args {
  AdminOptions opts;
  std::string name, tenant, project, model, plan, id, amount, note = "top-up", input, cached_input, output, file;
  std::string models, expires, start, from, to, key, group = "model";
  std::vector<std::string> tiers;
  bool admin = false, jwt = false, csv = false;
  int64_t after = 0, limit = 1000;
  maas::Limits limits;

  maas::UsageQuery usage_query() const {
    return maas::UsageQuery{tenant, key, model, from.empty() ? 0 : maas::parse_time(from),
                            to.empty() ? 0 : maas::parse_time(to), group, true};
  }
};

}  // namespace

void register_admin(CLI::App& app) {
  auto args = std::make_shared<Args>();
  CLI::App* admin = app.add_subcommand("admin", "Manage tenants, keys, prices, plans and usage in a tokenmill database");
  admin->add_option("--db", args->opts.db, "database URL: sqlite:PATH or postgres://USER@HOST:PORT/DB");
  admin->add_flag("--json", args->opts.json_output, "print JSON");
  admin->fallthrough();
  admin->require_subcommand(1);
  // The callbacks below capture `args`, so it lives as long as the App.
  Args& a = *args;
  admin->callback([args] {});
  const AdminOptions& o = a.opts;
  auto none = [](CLI::App&) {};

  CLI::App* currency = admin->add_subcommand("currency", "The currency every amount is in (set once)");
  currency->require_subcommand(1);
  leaf(*currency, "set", "Choose the currency (ISO 4217 code)", o,
       [&a](CLI::App& c) { c.add_option("CODE", a.name)->required(); },
       [&a](maas::Admin& m) { return m.set_currency(a.name); });

  CLI::App* tenants = admin->add_subcommand("tenants", "Organisations");
  tenants->require_subcommand(1);
  leaf(*tenants, "create", "Create a tenant", o, [&a](CLI::App& c) { c.add_option("NAME", a.name)->required(); },
       [&a](maas::Admin& m) { return m.create_tenant(a.name); });
  leaf(*tenants, "list", "List tenants with their balances", o, none, [](maas::Admin& m) { return m.list_tenants(); });

  CLI::App* projects = admin->add_subcommand("projects", "Projects inside a tenant");
  projects->require_subcommand(1);
  leaf(*projects, "create", "Create a project", o,
       [&a](CLI::App& c) {
         c.add_option("--tenant", a.tenant)->required();
         c.add_option("NAME", a.name)->required();
       },
       [&a](maas::Admin& m) { return m.create_project(a.tenant, a.name); });
  leaf(*projects, "list", "List a tenant's projects", o, [&a](CLI::App& c) { c.add_option("--tenant", a.tenant)->required(); },
       [&a](maas::Admin& m) { return m.list_projects(a.tenant); });

  CLI::App* keys = admin->add_subcommand("keys", "API keys");
  keys->require_subcommand(1);
  leaf(*keys, "create", "Create a key; prints id.secret once (field \"key\")", o,
       [&a](CLI::App& c) {
         c.add_option("--tenant", a.tenant)->required();
         c.add_option("--project", a.project, "tie the key to a project");
         c.add_option("--name", a.name, "a label");
         c.add_option("--models", a.models, "comma-separated model allow-list (default: every model)");
         c.add_flag("--admin", a.admin, "may use the admin API");
         c.add_flag("--jwt", a.jwt, "also accept Zhipu-style JWTs signed with the secret");
         c.add_option("--expires", a.expires, "expiry: epoch ms, YYYY-MM-DD or YYYY-MM-DDTHH:MM:SSZ");
         limit_options(c, a.limits);
       },
       [&a](maas::Admin& m) {
         maas::KeyOptions k;
         k.tenant = a.tenant;
         k.project = a.project;
         k.name = a.name;
         k.models = split_list(a.models);
         k.admin = a.admin;
         k.jwt = a.jwt;
         k.expires_at = a.expires.empty() ? 0 : maas::parse_time(a.expires);
         k.limits = a.limits;
         return m.create_key(k);
       });
  leaf(*keys, "revoke", "Revoke a key now", o, [&a](CLI::App& c) { c.add_option("ID", a.id)->required(); },
       [&a](maas::Admin& m) { return m.revoke_key(a.id); });
  leaf(*keys, "list", "List keys (never their secrets)", o, [&a](CLI::App& c) { c.add_option("--tenant", a.tenant); },
       [&a](maas::Admin& m) { return m.list_keys(a.tenant); });
  leaf(*keys, "limits", "Set a key's rate and concurrency limits", o,
       [&a](CLI::App& c) {
         c.add_option("ID", a.id)->required();
         limit_options(c, a.limits);
       },
       [&a](maas::Admin& m) { return m.set_key_limits(a.id, a.limits); });

  CLI::App* balance = admin->add_subcommand("balance", "Prepaid balances");
  balance->require_subcommand(1);
  leaf(*balance, "top-up", "Add to (or, negative, take from) a tenant's balance", o,
       [&a](CLI::App& c) {
         c.add_option("--tenant", a.tenant)->required();
         c.add_option("--amount", a.amount, "decimal amount in the configured currency")->required();
         c.add_option("--note", a.note, "recorded in the balance journal");
       },
       [&a](maas::Admin& m) { return m.top_up(a.tenant, a.amount, a.note); });
  leaf(*balance, "show", "A tenant's balance", o, [&a](CLI::App& c) { c.add_option("--tenant", a.tenant)->required(); },
       [&a](maas::Admin& m) { return m.balance(a.tenant); });

  CLI::App* prices = admin->add_subcommand("prices", "The local price catalogue (per million tokens)");
  prices->require_subcommand(1);
  leaf(*prices, "set", "Set a model's prices per million tokens", o,
       [&a](CLI::App& c) {
         c.add_option("--model", a.model)->required();
         c.add_option("--input", a.input, "input price per million tokens")->required();
         c.add_option("--cached-input", a.cached_input, "cached input price (default: the input price)");
         c.add_option("--output", a.output, "output price per million tokens")->required();
         c.add_option("--tier", a.tiers, "MIN_PROMPT_TOKENS:INPUT:CACHED:OUTPUT, a dearer tier for long prompts");
       },
       [&a](maas::Admin& m) {
         maas::PriceOptions p{a.model, a.input, a.cached_input, a.output, {}};
         for (const std::string& t : a.tiers) {
           std::vector<std::string> parts;
           std::stringstream ss(t);
           for (std::string part; std::getline(ss, part, ':');) parts.push_back(part);
           if (parts.size() != 4) throw Error("--tier is MIN_PROMPT_TOKENS:INPUT:CACHED:OUTPUT, got '" + t + "'");
           p.tiers.push_back({maas::parse_fixed(parts[0], 0, int64_t{1} << 40, "a tier's prompt tokens"), parts[1],
                              parts[2], parts[3]});
         }
         return m.set_price(p);
       });
  leaf(*prices, "list", "List prices", o, none, [](maas::Admin& m) { return m.list_prices(); });
  leaf(*prices, "delete", "Remove a model's price", o, [&a](CLI::App& c) { c.add_option("--model", a.model)->required(); },
       [&a](maas::Admin& m) { return m.delete_price(a.model); });

  CLI::App* models = admin->add_subcommand("models", "Per-model limits");
  models->require_subcommand(1);
  leaf(*models, "limits", "Set a model's limits across all tenants", o,
       [&a](CLI::App& c) {
         c.add_option("--model", a.model)->required();
         limit_options(c, a.limits);
       },
       [&a](maas::Admin& m) { return m.set_model_limits(a.model, a.limits); });

  CLI::App* plans = admin->add_subcommand("plans", "Subscription plans (see docs/MAAS.md for the format)");
  plans->require_subcommand(1);
  leaf(*plans, "set", "Create or replace a plan from a JSON definition", o,
       [&a](CLI::App& c) { c.add_option("--file", a.file, "the plan's JSON file, - for stdin")->required(); },
       [&a](maas::Admin& m) {
         const json d = json::parse(read_all(a.file), nullptr, false);
         if (d.is_discarded()) throw Error(a.file + " is not valid JSON");
         return m.set_plan(d);
       });
  leaf(*plans, "list", "List plans", o, none, [](maas::Admin& m) { return m.list_plans(); });
  leaf(*plans, "subscribe", "Put a tenant on a plan (a new period, every window empty)", o,
       [&a](CLI::App& c) {
         c.add_option("--tenant", a.tenant)->required();
         c.add_option("--plan", a.plan)->required();
         c.add_option("--start", a.start, "period start (default: now)");
       },
       [&a](maas::Admin& m) { return m.subscribe(a.tenant, a.plan, a.start.empty() ? 0 : maas::parse_time(a.start)); });
  leaf(*plans, "renew", "Start a tenant's next period now; every window resets", o,
       [&a](CLI::App& c) { c.add_option("--tenant", a.tenant)->required(); },
       [&a](maas::Admin& m) { return m.renew(a.tenant); });
  leaf(*plans, "cancel", "End a tenant's subscription; it pays from its balance again", o,
       [&a](CLI::App& c) { c.add_option("--tenant", a.tenant)->required(); },
       [&a](maas::Admin& m) { return m.unsubscribe(a.tenant); });

  leaf(*admin, "quota", "A tenant's balance or plan windows: used, remaining, next reset", o,
       [&a](CLI::App& c) { c.add_option("--tenant", a.tenant)->required(); },
       [&a](maas::Admin& m) { return m.quota(a.tenant); });

  leaf(*admin, "usage", "Usage totals by tenant, key or model; --csv exports the ledger", o,
       [&a](CLI::App& c) {
         c.add_option("--tenant", a.tenant);
         c.add_option("--key", a.key, "a key id");
         c.add_option("--model", a.model);
         c.add_option("--from", a.from, "epoch ms, YYYY-MM-DD or YYYY-MM-DDTHH:MM:SSZ");
         c.add_option("--to", a.to, "exclusive end");
         c.add_option("--group", a.group, "tenant, key or model")->check(CLI::IsMember({"tenant", "key", "model"}));
         c.add_flag("--csv", a.csv, "every ledger record as CSV");
       },
       [&a](maas::Admin& m) { return m.usage(a.usage_query()); },
       [&a](maas::Admin& m) {
         if (!a.csv) return false;
         std::fputs(m.ledger_csv(a.usage_query()).c_str(), stdout);
         return true;
       });

  CLI::App* audit = admin->add_subcommand("audit", "The hash-chained log of admin actions");
  audit->require_subcommand(1);
  leaf(*audit, "list", "Entries in order", o,
       [&a](CLI::App& c) {
         c.add_option("--after", a.after, "entries after this sequence number");
         c.add_option("--limit", a.limit, "at most this many");
       },
       [&a](maas::Admin& m) { return m.audit(a.after, a.limit); });
  leaf(*audit, "verify", "Check the hash chain; fails when an entry was altered", o, none, [](maas::Admin& m) {
    const json result = m.verify_audit();
    if (!result["intact"].get<bool>()) {
      throw Error("the audit log is broken at entry " + std::to_string(result["first_broken_seq"].get<int64_t>()) +
                  ": it was altered outside tokenmill");
    }
    return result;
  });
}

}  // namespace tokenmill::cli
