// `tokenmill serve --model NAME=PATH [--model ...] [--listen ADDR:PORT] [--threads N]
// [--kv-budget SIZE] [--db URL] ...`: loads the models, starts the engine thread and serves the
// OpenAI, Anthropic Messages and Zhipu v4 APIs until SIGTERM or SIGINT, then shuts down
// gracefully and exits 0.
// Prints "listening on http://ADDR:PORT" to stderr once the socket is bound (port 0 picks one).
//
// With --db every model request needs an API key and is metered (tenants, prices, plans, limits,
// the ledger: docs/MAAS.md), and the admin API is served under /admin/v1. Without it the server
// is single-user and open: no keys, nothing recorded, and it listens on loopback only unless
// --insecure-open says otherwise.
#include <cctype>
#include <chrono>
#include <cstdio>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "api/access.h"
#include "api/server.h"
#include "api/service.h"
#include "cli/commands.h"
#include "cli/gateway_access.h"
#include "cli/model_options.h"
#include "common/error.h"
#include "engine/engine.h"
#include "engine/kv_blocks.h"
#include "store/open_store.h"

namespace tokenmill::cli {
namespace {

struct ServeArgs {
  std::vector<std::string> models;          // NAME=PATH
  std::vector<std::string> chat_templates;  // NAME=FILE
  std::vector<std::string> model_aliases;   // PATTERN=NAME
  std::vector<std::string> stops;           // NAME=STRING
  std::string listen = "127.0.0.1:8000";
  ThreadOptions threads;
  std::string kv_budget = "1GiB";
  std::string kv_type = "f16";
  int64_t context = 0;
  int64_t max_running = 64;
  int64_t max_queued = 256;
  int64_t step_tokens = 256;
  int64_t max_output_tokens = 0;
  size_t max_body = 8 << 20;
  double shutdown_grace = 10;
  std::string db;  // empty: open mode
  bool insecure_open = false;
};

// Reservations left by a server that died are released at startup and then every so often,
// for replicas that die while this one runs.
constexpr auto kRecoveryInterval = std::chrono::seconds(30);

bool is_loopback(const std::string& host) {
  return host == "localhost" || host == "::1" || host.rfind("127.", 0) == 0;
}

std::pair<std::string, std::string> split_pair(const std::string& arg, const char* option) {
  const size_t eq = arg.find('=');
  if (eq == std::string::npos || eq == 0 || eq + 1 == arg.size())
    throw Error(std::string(option) + " expects NAME=VALUE, got '" + arg + "'");
  return {arg.substr(0, eq), arg.substr(eq + 1)};
}

// "512MiB", "2G", "1000000" (bytes) or "32768t" / "32768 tokens" (positions): the blocks of
// KV cache one model may use.
int64_t kv_blocks(const std::string& text, const model::HParams& hp, gguf::TensorType type) {
  size_t end = 0;
  double value = 0;
  try {
    value = std::stod(text, &end);
  } catch (const std::exception&) {
    end = 0;
  }
  std::string unit = text.substr(end);
  std::erase_if(unit, [](char c) { return std::isspace(static_cast<unsigned char>(c)); });
  for (char& c : unit) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  const std::map<std::string, double> bytes = {{"", 1},         {"b", 1},          {"k", 1e3},        {"kb", 1e3},
                                               {"m", 1e6},      {"mb", 1e6},       {"g", 1e9},        {"gb", 1e9},
                                               {"kib", 1024.0}, {"mib", 1048576.0}, {"gib", 1073741824.0}};
  if (end == 0 || value <= 0) throw Error("--kv-budget: '" + text + "' is not a size (e.g. 512MiB, 2GB, 32768tokens)");
  if (unit == "t" || unit == "tokens") return static_cast<int64_t>(value + engine::kKvBlockPositions - 1) / engine::kKvBlockPositions;
  const auto it = bytes.find(unit);
  if (it == bytes.end()) throw Error("--kv-budget: unknown unit '" + unit + "' (B, KB, MB, GB, KiB, MiB, GiB or tokens)");
  return static_cast<int64_t>(value * it->second) / engine::KvBlockPool::block_bytes(hp, type);
}

gguf::TensorType kv_type(const std::string& name) {
  if (name == "f16" || name == "F16") return gguf::TensorType::F16;
  if (name == "f32" || name == "F32") return gguf::TensorType::F32;
  if (name == "q8_0" || name == "Q8_0") return gguf::TensorType::Q8_0;
  throw Error("--kv-type must be f16, q8_0 or f32, got '" + name + "'");
}

void serve(const ServeArgs& args) {
  const size_t colon = args.listen.rfind(':');
  if (colon == std::string::npos) throw Error("--listen expects ADDR:PORT, got '" + args.listen + "'");
  api::ServerOptions options;
  options.host = args.listen.substr(0, colon);
  try {
    const int port = std::stoi(args.listen.substr(colon + 1));
    if (port < 0 || port > 65535) throw Error("");
    options.port = static_cast<uint16_t>(port);
  } catch (const std::exception&) {
    throw Error("--listen: bad port in '" + args.listen + "'");
  }
  options.max_body_bytes = args.max_body;
  options.shutdown_grace_seconds = args.shutdown_grace;
  for (const std::string& alias : args.model_aliases) options.model_aliases.add(alias);

  std::map<std::string, std::string> templates;
  for (const std::string& t : args.chat_templates) templates.insert(split_pair(t, "--chat-template"));
  std::map<std::string, std::vector<std::string>> stops;
  for (const std::string& s : args.stops) {
    auto [name, text] = split_pair(s, "--stop");
    stops[name].push_back(std::move(text));
  }
  std::unique_ptr<maas::Store> store;
  std::unique_ptr<GatewayAccess> keyed;
  api::OpenAccess open;
  if (args.db.empty()) {
    if (!is_loopback(options.host) && !args.insecure_open) {
      throw Error("--listen " + args.listen +
                  " without --db would let anyone who reaches it use the models with no key: give --db URL, "
                  "listen on 127.0.0.1, or pass --insecure-open");
    }
    std::fprintf(stderr, "open mode: no --db, so no API keys are checked and nothing is metered%s\n",
                 is_loopback(options.host) ? "; listening on loopback only" : " (--insecure-open)");
  } else {
    store = store::open_store(args.db);
    keyed = std::make_unique<GatewayAccess>(*store);
    if (const int64_t released = keyed->gateway().recover()) {
      std::fprintf(stderr, "released %lld reservations left by a server that stopped\n", static_cast<long long>(released));
    }
    keyed->gateway().start_recovery_sweeper(kRecoveryInterval);
    options.extra_routes = [&keyed](const api::ExtraRequest& r) { return keyed->management(r); };
    std::fprintf(stderr, "metering with %s: every model request needs an API key\n", args.db.c_str());
  }
  api::Access& access = keyed ? static_cast<api::Access&>(*keyed) : open;
  engine::Engine engine(args.threads.threads, args.threads.pin);
  api::Metrics metrics;
  api::Service service(engine, access, metrics);
  for (const std::string& spec : args.models) {
    const auto [name, path] = split_pair(spec, "--model");
    if (service.find(name)) throw Error("--model: the name '" + name + "' is given twice");
    const auto it = templates.find(name);
    auto served = api::load_served_model(name, path, it == templates.end() ? "" : it->second);
    if (it != templates.end()) templates.erase(it);
    served->max_output_tokens = args.max_output_tokens;
    if (const auto stop = stops.find(name); stop != stops.end()) {
      served->stop = stop->second;
      stops.erase(stop);
    }
    engine::SchedulerConfig config;
    config.kv_type = kv_type(args.kv_type);
    config.kv_blocks = kv_blocks(args.kv_budget, served->model.hparams(), config.kv_type);
    config.context = args.context;
    config.max_running = args.max_running;
    config.max_queued = args.max_queued;
    config.step_tokens = args.step_tokens;
    std::fprintf(stderr, "model %s: %s, KV cache %lld blocks of %lld tokens\n", name.c_str(), path.c_str(),
                 static_cast<long long>(config.kv_blocks), static_cast<long long>(engine::kKvBlockPositions));
    service.add(std::move(served), config);
  }
  if (!templates.empty()) throw Error("--chat-template names model '" + templates.begin()->first + "', which is not served");
  if (!stops.empty()) throw Error("--stop names model '" + stops.begin()->first + "', which is not served");

  api::Server server(service, options);
  engine.start();
  std::fprintf(stderr, "listening on http://%s:%u\n", options.host.c_str(), server.port());
  std::fflush(stderr);
  server.run();
  engine.stop(true);
  std::fprintf(stderr, "shut down\n");
}

}  // namespace

void register_serve(CLI::App& app) {
  auto* cmd = app.add_subcommand("serve", "Serve models over the OpenAI, Anthropic Messages and Zhipu v4 HTTP APIs");
  auto args = std::make_shared<ServeArgs>();
  cmd->add_option("--model", args->models, "NAME=PATH of a GGUF model to serve (repeatable)")->required();
  cmd->add_option("--chat-template", args->chat_templates, "NAME=FILE: a chat template for model NAME (repeatable)");
  cmd->add_option("--model-alias", args->model_aliases,
                  "PATTERN=NAME: requests for a model matching PATTERN ('claude-*': any suffix) get model NAME (repeatable)");
  cmd->add_option("--listen", args->listen, "ADDR:PORT to listen on (port 0: any free port)")->capture_default_str();
  add_threads_option(*cmd, args->threads);
  cmd->add_option("--kv-budget", args->kv_budget, "KV cache per model: bytes (512MiB, 2GB) or tokens (32768tokens)")
      ->capture_default_str();
  cmd->add_option("--kv-type", args->kv_type, "KV cache type: f16, q8_0 or f32")->capture_default_str();
  cmd->add_option("--context", args->context, "Tokens per sequence (default: the model's training context)");
  cmd->add_option("--max-running", args->max_running, "Sequences in one batch at most")->capture_default_str();
  cmd->add_option("--max-queued", args->max_queued, "Sequences waiting at most; more get 503")->capture_default_str();
  cmd->add_option("--step-tokens", args->step_tokens, "Tokens per forward pass (decode plus prefill chunks)")
      ->capture_default_str();
  cmd->add_option("--stop", args->stops,
                  "NAME=TEXT: model NAME's answers end at TEXT, as at its end-of-turn token (repeatable)");
  cmd->add_option("--max-output-tokens", args->max_output_tokens,
                  "Tokens one answer may have at most, whatever a request asks for (0: what the context leaves)")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  cmd->add_option("--max-body", args->max_body, "Largest request body in bytes; larger get 413")->capture_default_str();
  cmd->add_option("--shutdown-grace", args->shutdown_grace, "Seconds in-flight requests may finish after SIGTERM")
      ->capture_default_str();
  cmd->add_option("--db", args->db, "Store URL (sqlite:PATH or postgres://USER@HOST:PORT/DB): API keys, metering and the admin API");
  cmd->add_flag("--insecure-open", args->insecure_open, "Without --db, allow a non-loopback --listen (no keys!)");
  cmd->callback([args] { serve(*args); });
}

}  // namespace tokenmill::cli
