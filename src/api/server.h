// The HTTP server (Boost.Beast, asynchronous, one I/O thread): OpenAI's routes
// (POST /v1/chat/completions, POST /v1/completions, GET /v1/models[/{id}]), Anthropic's
// (POST /v1/messages[/count_tokens], also under /api/anthropic), Zhipu's
// (POST /api/paas/v4/chat/completions, also under /api/coding) plus GET /health and
// GET /metrics, keep-alive, streaming by server-sent events, and errors in the shape of the
// route's API for every bad request. A client that goes away — noticed as the connection closing, while waiting or
// streaming — has its generation cancelled. Beast is confined to server.cpp.
//
// Shutdown (SIGTERM, SIGINT or stop()): stop accepting and admitting, let the requests in
// flight finish for up to the grace period, cancel what is left, send the last responses, return.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "api/anthropic.h"
#include "api/service.h"

namespace tokenmill::api {

// A request for a path the server does not serve itself, handed to ServerOptions::extra_routes.
struct ExtraRequest {
  std::string method;
  std::string path;
  std::string query;  // after '?', still percent-encoded
  Credentials credentials;
  std::string body;
};

struct ExtraResponse {
  int status = 200;
  std::string content_type = "application/json";
  std::string body;
};

struct ServerOptions {
  std::string host = "127.0.0.1";
  uint16_t port = 8000;            // 0: any free port (see Server::port())
  size_t max_body_bytes = 8 << 20;  // larger request bodies get 413
  double shutdown_grace_seconds = 10;
  bool handle_signals = true;       // SIGTERM / SIGINT start the shutdown
  anthropic::ModelAliases model_aliases;  // requested model names to served ones, every route
  // Routes beyond the model API (cli/ adds the admin API here): asked about every path the
  // server does not serve itself, on the I/O thread, so it must answer quickly; nullopt: 404.
  std::function<std::optional<ExtraResponse>(const ExtraRequest&)> extra_routes;
};

class Server {
 public:
  // Binds the listening socket; throws tokenmill::Error when it cannot.
  Server(Service& service, const ServerOptions& options);
  ~Server();

  uint16_t port() const;
  // Serves until shut down; returns once every response in flight is sent.
  void run();
  // Starts the shutdown from any thread.
  void stop();

  struct Impl;  // server.cpp's; public so its connections can reach it

 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace tokenmill::api
