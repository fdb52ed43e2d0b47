#include "api/server.h"

#include <sys/socket.h>

#include <atomic>
#include <chrono>
#include <deque>
#include <set>

#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

#include "api/anthropic.h"
#include "api/openai.h"
#include "api/zhipu.h"
#include "common/error.h"

namespace tokenmill::api {
namespace {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = net::ip::tcp;
using Json = nlohmann::ordered_json;

constexpr auto kIdleTimeout = std::chrono::seconds(300);  // a keep-alive connection with no request

std::string sse_event(const Json& j) { return "data: " + j.dump(-1, ' ', false, Json::error_handler_t::replace) + "\n\n"; }

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

class Session;

// Which wire format a request came in, and so how its response and errors are written.
enum class Dialect { OpenAI, Anthropic, Zhipu };

bool anthropic_path(const std::string& path, const char* tail) {
  return path == std::string("/v1/messages") + tail || path == std::string("/api/anthropic/v1/messages") + tail;
}

}  // namespace

struct Server::Impl {
  Impl(Service& service, const ServerOptions& options)
      : service(service), options(options), acceptor(io), signals(io), drain_timer(io) {
    boost::system::error_code ec;
    const auto address = net::ip::make_address(options.host, ec);
    if (ec) throw Error("--listen: '" + options.host + "' is not an IP address");
    const tcp::endpoint endpoint(address, options.port);
    acceptor.open(endpoint.protocol(), ec);
    if (!ec) acceptor.set_option(net::socket_base::reuse_address(true), ec);
    if (!ec) acceptor.bind(endpoint, ec);
    if (!ec) acceptor.listen(net::socket_base::max_listen_connections, ec);
    if (ec)
      throw Error("cannot listen on " + options.host + ":" + std::to_string(options.port) + ": " + ec.message());
  }

  void accept();
  void begin_shutdown();
  void check_drained();

  Service& service;
  ServerOptions options;
  net::io_context io{1};
  tcp::acceptor acceptor;
  net::signal_set signals;
  net::steady_timer drain_timer;
  std::chrono::steady_clock::time_point deadline;
  bool shutting_down = false;
  bool cancelled = false;
  std::set<std::shared_ptr<Session>> sessions;
};

namespace {

class Session final : public std::enable_shared_from_this<Session>, public GenerationListener {
 public:
  Session(tcp::socket socket, Server::Impl& server) : stream_(std::move(socket)), server_(server) {}

  void start() { read_request(); }
  // No request is being answered: the connection can be closed at shutdown.
  bool idle() const { return !generation_ && !writing_ && write_queue_.empty(); }
  void close() {
    boost::system::error_code ec;
    stream_.socket().shutdown(tcp::socket::shutdown_both, ec);
    stream_.close();
  }

  // From the engine thread: a Generation has news. Coalesced into one post.
  void wake() override {
    if (!wake_pending_.exchange(true))
      net::post(stream_.get_executor(), [self = shared_from_this()] {
        self->wake_pending_ = false;
        self->drain_generation();
      });
  }

 private:
  using Request = http::request<http::string_body>;

  void read_request() {
    parser_.emplace();
    parser_->body_limit(server_.options.max_body_bytes);
    stream_.expires_after(kIdleTimeout);
    http::async_read(stream_, buffer_, *parser_,
                     [self = shared_from_this()](beast::error_code ec, size_t) { self->on_read(ec); });
  }

  void on_read(beast::error_code ec) {
    if (ec == http::error::body_limit) {
      ApiError e = ApiError::invalid("the request body exceeds the limit of " +
                                         std::to_string(server_.options.max_body_bytes) + " bytes",
                                     "", "request_too_large");
      e.status = 413;
      keep_alive_ = false;
      discard_rest_ = true;
      return send_error(e, "", "");
    }
    if (ec) return finish_connection();
    request_ = parser_->release();
    keep_alive_ = request_.keep_alive() && !server_.shutting_down;
    stream_.expires_never();
    route();
  }

  void route() {
    const std::string target(request_.target());
    const std::string path = target.substr(0, target.find('?'));
    const auto method = request_.method();
    auto wrong_method = [&] {
      ApiError e = ApiError::invalid("method " + std::string(request_.method_string()) + " is not allowed on " + path);
      e.status = 405;
      send_error(e, "", path);
    };
    if (path == "/health") {
      if (method != http::verb::get) return wrong_method();
      return send(server_.shutting_down ? 503 : 200,
                  Json{{"status", server_.shutting_down ? "shutting_down" : "ok"}}.dump(), "application/json", "", path);
    }
    if (path == "/metrics") {
      if (method != http::verb::get) return wrong_method();
      std::vector<std::pair<std::string, engine::SchedulerStats>> stats;
      for (const ServedModel* m : server_.service.models()) stats.emplace_back(m->name, m->scheduler->stats());
      return send(200, server_.service.metrics().render(stats), "text/plain; version=0.0.4", "", path);
    }
    const bool messages = anthropic_path(path, "");
    const bool count_tokens = anthropic_path(path, "/count_tokens");
    const bool glm = path == "/api/paas/v4/chat/completions" || path == "/api/coding/paas/v4/chat/completions";
    dialect_ = messages || count_tokens ? Dialect::Anthropic : glm ? Dialect::Zhipu : Dialect::OpenAI;
    const bool chat = path == "/v1/chat/completions" || glm;
    const bool completion = path == "/v1/completions";
    const bool models = path == "/v1/models" || path.starts_with("/v1/models/");
    if (!chat && !completion && !models && !messages && !count_tokens) {
      if (server_.options.extra_routes) {
        const ExtraRequest extra{std::string(request_.method_string()), path,
                                 target.size() > path.size() ? target.substr(path.size() + 1) : "", credentials(),
                                 request_.body()};
        std::optional<ExtraResponse> reply;
        try {
          reply = server_.options.extra_routes(extra);
        } catch (const std::exception& e) {
          return send_error(ApiError{500, "server_error", e.what(), "", "internal_error", "", 0}, "", path);
        }
        if (reply) return send(reply->status, std::move(reply->body), reply->content_type.c_str(), "", path);
      }
      ApiError e = ApiError::invalid("Invalid URL (" + std::string(request_.method_string()) + " " + path + ")");
      e.status = 404;
      return send_error(e, "", path);
    }
    if (method != (models ? http::verb::get : http::verb::post)) return wrong_method();
    try {
      const Principal principal = authenticate();
      if (models) return list_models(principal, path);
      Json body = openai::parse_body(request_.body());
      GenerationRequest request = messages || count_tokens ? anthropic::parse_request(body, count_tokens)
                                  : glm                    ? zhipu::parse_request(body)
                                  : chat                   ? openai::parse_chat_request(body)
                                                           : openai::parse_completion_request(body);
      request.model = server_.options.model_aliases.resolve(request.model);
      model_ = request.model;
      if (count_tokens) {
        const int64_t n = server_.service.count_prompt_tokens(principal, request);
        return send(200, anthropic::count_tokens_json(n).dump(), "application/json", model_, path);
      }
      if (request.request_id.empty()) request.request_id = std::string(trim(request_["x-request-id"]));
      endpoint_ = path;
      generation_ = server_.service.start(principal, std::move(request), weak_from_this());
    } catch (const ApiError& e) {
      return send_error(e, model_, path);
    } catch (const std::exception& e) {
      return send_error(ApiError{500, "server_error", e.what(), "", "internal_error", "", 0}, model_, path);
    }
    first_event_ = true;
    watch_for_disconnect();
    if (generation_->request().stream) start_stream();
    drain_generation();
  }

  Credentials credentials() const {
    Credentials c;
    const std::string_view auth = trim(request_[http::field::authorization]);
    if (auth.size() > 7 && beast::iequals(auth.substr(0, 7), "bearer ")) c.bearer = std::string(trim(auth.substr(7)));
    // Zhipu's clients may send the key itself, with no scheme.
    else if (!auth.empty() && auth.find(' ') == std::string_view::npos) c.bearer = std::string(auth);
    c.api_key = std::string(trim(request_["x-api-key"]));
    return c;
  }

  Principal authenticate() {
    auto result = server_.service.access().authenticate(credentials());
    if (auto* r = std::get_if<Rejection>(&result)) throw ApiError::from(*r);
    return std::get<Principal>(std::move(result));
  }

  void list_models(const Principal& principal, const std::string& path) {
    std::vector<openai::ModelCard> cards;
    for (const ServedModel* m : server_.service.models())
      if (principal.may_use(m->name)) cards.push_back({m->name, m->created});
    if (path == "/v1/models") return send(200, openai::models_json(cards).dump(), "application/json", "", path);
    const std::string id = path.substr(std::string("/v1/models/").size());
    for (const auto& c : cards)
      if (c.id == id) return send(200, openai::model_json(c).dump(), "application/json", id, path);
    ApiError e = ApiError::invalid("The model `" + id + "` does not exist or you do not have access to it.", "model",
                                   "model_not_found");
    e.status = 404;
    send_error(e, id, path);
  }

  // --- plain responses ---

  void send(int status, std::string body, const char* content_type, const std::string& model, const std::string& path,
            int retry_after = 0) {
    server_.service.metrics().count_request(model, path, status);
    http::response<http::string_body> res{static_cast<http::status>(status), request_.version()};
    res.set(http::field::server, "tokenmill");
    res.set(http::field::content_type, content_type);
    if (retry_after > 0) res.set(http::field::retry_after, std::to_string(retry_after));
    res.keep_alive(keep_alive_);
    res.body() = std::move(body);
    res.prepare_payload();
    auto shared = std::make_shared<http::response<http::string_body>>(std::move(res));
    writing_ = true;
    http::async_write(stream_, *shared, [self = shared_from_this(), shared](beast::error_code ec, size_t) {
      self->writing_ = false;
      self->response_done(ec);
    });
  }

  void send_error(const ApiError& e, const std::string& model, const std::string& path) {
    const Json body = dialect_ == Dialect::Anthropic ? anthropic::error_json(e)
                      : dialect_ == Dialect::Zhipu   ? zhipu::error_json(e)
                                                     : openai::error_json(e);
    send(e.status, body.dump(-1, ' ', false, Json::error_handler_t::replace), "application/json", model, path,
         e.retry_after_seconds);
  }

  void response_done(beast::error_code ec) {
    generation_.reset();
    if (ec) return finish_connection();
    if (discard_rest_) return discard_then_close();
    if (!keep_alive_ || server_.shutting_down) return finish_connection();
    read_request();
    server_.check_drained();
  }

  // After a 413 the client may still be sending its body: read and drop it, so it sees the
  // response instead of a reset connection.
  void discard_then_close() {
    boost::system::error_code ec;
    stream_.socket().shutdown(tcp::socket::shutdown_send, ec);
    stream_.expires_after(std::chrono::seconds(10));
    auto scratch = std::make_shared<std::array<char, 65536>>();
    auto loop = std::make_shared<std::function<void(beast::error_code, size_t)>>();
    *loop = [self = shared_from_this(), scratch, loop](beast::error_code ec, size_t) {
      if (ec) {
        self->finish_connection();
        *loop = nullptr;  // breaks the cycle
        return;
      }
      self->stream_.async_read_some(net::buffer(*scratch), *loop);
    };
    stream_.async_read_some(net::buffer(*scratch), *loop);
  }

  void finish_connection() {
    close();
    server_.sessions.erase(shared_from_this());
    server_.check_drained();
  }

  // --- generations ---

  // The client closing its end (readable with nothing to read) means it is gone. Bytes of a
  // pipelined next request end the watch instead; they stay for the next read.
  void watch_for_disconnect() {
    stream_.socket().async_wait(tcp::socket::wait_read, [self = shared_from_this()](beast::error_code ec) {
      if (!self->generation_) return;
      char probe;
      const ssize_t n = ec ? 0 : ::recv(self->stream_.socket().native_handle(), &probe, 1, MSG_PEEK | MSG_DONTWAIT);
      if (n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK)) {
        self->client_gone_ = true;
        self->generation_->cancel();
      }
    });
  }

  void start_stream() {
    auto res = std::make_shared<http::response<http::empty_body>>(http::status::ok, request_.version());
    res->set(http::field::server, "tokenmill");
    res->set(http::field::content_type, "text/event-stream");
    res->set(http::field::cache_control, "no-cache");
    res->keep_alive(keep_alive_);
    res->chunked(true);
    auto serializer = std::make_shared<http::response_serializer<http::empty_body>>(*res);
    writing_ = true;
    http::async_write_header(stream_, *serializer, [self = shared_from_this(), res, serializer](beast::error_code ec, size_t) {
      self->writing_ = false;
      if (ec) return self->stream_failed();
      self->write_next();
    });
  }

  void drain_generation() {
    if (!generation_) return;
    const Generation::Update update = generation_->poll();
    const GenerationRequest& req = generation_->request();
    if (!req.stream) {
      if (!update.finished) return;
      const auto error = generation_->error();
      auto generation = std::move(generation_);
      if (client_gone_) return finish_connection();
      if (error) return send_error(*error, model_, endpoint_);
      const Json body = dialect_ == Dialect::Anthropic ? anthropic::response_json(generation->response())
                                                       : openai_json(openai::response_json(req, generation->response()), *generation);
      return send(200, body.dump(-1, ' ', false, Json::error_handler_t::replace), "application/json", model_, endpoint_);
    }
    if (dialect_ == Dialect::Anthropic) return drain_anthropic_stream(update);
    const GenerationResponse& header = generation_->response();
    if (first_event_) {
      first_event_ = false;
      if (req.endpoint == Endpoint::Chat) {
        for (int i = 0; i < req.n; ++i) {
          ChoiceDelta opening;
          opening.index = i;
          queue(sse_event(openai_json(openai::chunk_json(req, header, opening, true), *generation_)));
        }
      }
    }
    for (const ChoiceDelta& d : update.deltas) {
      Json chunk = openai_json(openai::chunk_json(req, header, d, false), *generation_);
      // Zhipu's chunk with finish_reason carries the usage, known only once every choice is done.
      if (dialect_ == Dialect::Zhipu && d.finish_reason) finish_chunks_.push_back(std::move(chunk));
      else queue(sse_event(chunk));
    }
    if (update.finished) {
      const auto error = generation_->error();
      if (dialect_ == Dialect::Zhipu && !finish_chunks_.empty() && !error)
        finish_chunks_.back()["usage"] = openai::usage_chunk_json(req, header)["usage"];
      for (const Json& chunk : finish_chunks_) queue(sse_event(chunk));
      finish_chunks_.clear();
      if (error) {
        queue(sse_event(dialect_ == Dialect::Zhipu ? zhipu::error_json(*error) : openai::error_json(*error)));
      } else if (req.include_usage) {
        queue(sse_event(openai_json(openai::usage_chunk_json(req, header), *generation_)));
      }
      queue("data: [DONE]\n\n");
      stream_done_ = true;
      server_.service.metrics().count_request(model_, endpoint_, 200);
    }
    write_next();
  }

  // OpenAI's JSON as the dialect sends it: Zhipu adds its request_id.
  Json openai_json(Json j, const Generation& g) const {
    if (dialect_ != Dialect::Zhipu) return j;
    return zhipu::from_openai(std::move(j), g.request(), g.response());
  }

  void drain_anthropic_stream(const Generation::Update& update) {
    const GenerationResponse& header = generation_->response();
    if (first_event_) {
      first_event_ = false;
      encoder_ = {};
      queue(encoder_.start(header));
    }
    for (const ChoiceDelta& d : update.deltas) queue(encoder_.delta(d));
    if (update.finished) {
      const auto error = generation_->error();
      queue(error ? encoder_.error(*error) : encoder_.finish(header));
      stream_done_ = true;
      server_.service.metrics().count_request(model_, endpoint_, 200);
    }
    write_next();
  }

  // An empty chunk would end the chunked body: nothing to send, nothing queued.
  void queue(std::string event) {
    if (!event.empty()) write_queue_.push_back(std::move(event));
  }

  // One chunk at a time; the final empty chunk after the last event.
  void write_next() {
    if (writing_) return;
    if (write_queue_.empty()) {
      if (!stream_done_) return;
      stream_done_ = false;
      writing_ = true;
      net::async_write(stream_, http::make_chunk_last(), [self = shared_from_this()](beast::error_code ec, size_t) {
        self->writing_ = false;
        self->response_done(ec);
      });
      return;
    }
    auto body = std::make_shared<std::string>(std::move(write_queue_.front()));
    write_queue_.pop_front();
    writing_ = true;
    net::async_write(stream_, http::make_chunk(net::buffer(*body)), [self = shared_from_this(), body](beast::error_code ec, size_t) {
      self->writing_ = false;
      if (ec) return self->stream_failed();
      self->write_next();
    });
  }

  void stream_failed() {
    if (generation_) generation_->cancel();
    write_queue_.clear();
    finish_chunks_.clear();
    stream_done_ = false;
    generation_.reset();
    finish_connection();
  }

  beast::tcp_stream stream_;
  Server::Impl& server_;
  beast::flat_buffer buffer_;
  std::optional<http::request_parser<http::string_body>> parser_;
  Request request_;
  bool keep_alive_ = true;
  bool discard_rest_ = false;
  std::string endpoint_, model_;
  std::shared_ptr<Generation> generation_;
  bool first_event_ = false;
  Dialect dialect_ = Dialect::OpenAI;
  anthropic::StreamEncoder encoder_;
  std::vector<Json> finish_chunks_;  // Zhipu: held until the usage is known
  bool client_gone_ = false;
  bool stream_done_ = false;
  bool writing_ = false;
  std::deque<std::string> write_queue_;
  std::atomic<bool> wake_pending_{false};
};

}  // namespace

void Server::Impl::accept() {
  acceptor.async_accept([this](beast::error_code ec, tcp::socket socket) {
    if (ec) return;  // closed for shutdown
    auto session = std::make_shared<Session>(std::move(socket), *this);
    sessions.insert(session);
    session->start();
    accept();
  });
}

void Server::Impl::begin_shutdown() {
  if (shutting_down) return;
  shutting_down = true;
  boost::system::error_code ec;
  acceptor.close(ec);
  signals.cancel(ec);
  service.stop_admitting();
  deadline = std::chrono::steady_clock::now() +
             std::chrono::milliseconds(static_cast<int64_t>(options.shutdown_grace_seconds * 1000));
  check_drained();
}

// While shutting down: idle connections are closed; once no request is in flight and every
// response is out, the I/O loop ends. Past the grace period the generations left are cancelled.
void Server::Impl::check_drained() {
  if (!shutting_down) return;
  for (auto it = sessions.begin(); it != sessions.end();) {
    auto s = *it++;
    if (s->idle()) {
      s->close();
      sessions.erase(s);
    }
  }
  if (sessions.empty() && service.in_flight() == 0) {
    drain_timer.cancel();
    io.stop();
    return;
  }
  if (!cancelled && std::chrono::steady_clock::now() >= deadline) {
    cancelled = true;
    service.cancel_all();
  }
  drain_timer.expires_after(std::chrono::milliseconds(50));
  drain_timer.async_wait([this](beast::error_code ec) {
    if (!ec) check_drained();
  });
}

Server::Server(Service& service, const ServerOptions& options) : impl_(std::make_unique<Impl>(service, options)) {}

Server::~Server() = default;

uint16_t Server::port() const { return impl_->acceptor.local_endpoint().port(); }

void Server::run() {
  if (impl_->options.handle_signals) {
    impl_->signals.add(SIGTERM);
    impl_->signals.add(SIGINT);
    impl_->signals.async_wait([this](beast::error_code ec, int) {
      if (!ec) impl_->begin_shutdown();
    });
  }
  impl_->accept();
  impl_->io.run();
  impl_->sessions.clear();
}

void Server::stop() {
  net::post(impl_->io, [this] { impl_->begin_shutdown(); });
}

}  // namespace tokenmill::api
