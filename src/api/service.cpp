#include "api/service.h"

#include <algorithm>
#include <chrono>
#include <ctime>
#include <random>

#include "common/error.h"
#include "tokenizer/chat_template.h"
#include "tokenizer/jinja_error.h"
#include "tokenizer/stream_decoder.h"
#include "tokenizer/utf8.h"

namespace tokenmill::api {
namespace {

using Json = nlohmann::ordered_json;

std::string random_id(const char* prefix) {
  static constexpr char kAlphabet[] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
  thread_local std::mt19937_64 rng{std::random_device{}()};
  std::string id = prefix;
  for (int i = 0; i < 24; ++i) id += kAlphabet[rng() % (sizeof kAlphabet - 1)];
  return id;
}

uint64_t random_seed() {
  thread_local std::mt19937_64 rng{std::random_device{}()};
  return rng();
}

// Text released as it is generated, except what might be the start of a stop sequence; once
// a stop sequence appears, the text before it is the last released. The request's stop
// sequences come with the served model's own end-of-turn strings; only the request's are
// reported as the one that stopped the text.
class StopMatcher {
 public:
  StopMatcher(std::vector<std::string> requested, const std::vector<std::string>& model_stops)
      : stops_(std::move(requested)), requested_(stops_.size()) {
    stops_.insert(stops_.end(), model_stops.begin(), model_stops.end());
  }

  // Returns the text that can be released; sets `hit` when a stop sequence completed.
  std::string feed(std::string_view text, bool& hit) {
    held_ += text;
    size_t first = std::string::npos;
    for (const std::string& s : stops_) first = std::min(first, held_.find(s));
    if (first != std::string::npos) {
      hit = true;
      for (size_t i = 0; i < requested_; ++i)
        if (held_.find(stops_[i]) == first) {
          matched_ = stops_[i];  // the first listed of those ending the text earliest
          break;
        }
      std::string out = held_.substr(0, first);
      held_.clear();
      return out;
    }
    size_t keep = 0;
    for (const std::string& s : stops_)
      for (size_t l = std::min(s.size() - 1, held_.size()); l > keep; --l)
        if (held_.compare(held_.size() - l, l, s, 0, l) == 0) {
          keep = l;
          break;
        }
    std::string out = held_.substr(0, held_.size() - keep);
    held_.erase(0, held_.size() - keep);
    return out;
  }
  std::string flush() { return std::exchange(held_, {}); }
  // The requested stop sequence that ended the text; empty while none has.
  const std::string& matched() const { return matched_; }

 private:
  std::vector<std::string> stops_;
  size_t requested_;  // stops_ begins with the request's
  std::string held_;
  std::string matched_;
};

// Which generated tokens are reasoning: those produced while a <think> block is open — the
// prompt may have opened it, or the output starts with it — the tags' own tokens included.
class ReasoningCounter {
 public:
  explicit ReasoningCounter(bool open) : open_(open), decided_(open) {}

  // Takes the next token's text; returns how many tokens (this one, and those held while
  // undecided) turn out to be reasoning.
  int64_t count(std::string_view text) {
    const bool was_open = open_;
    text_ += text;
    if (!decided_) {  // does the output begin with <think>?
      ++undecided_;
      const size_t start = text_.find_first_not_of(" \t\r\n");
      if (start == std::string::npos || text_.size() - start < 7) return 0;
      decided_ = true;
      open_ = text_.compare(start, 7, "<think>") == 0;
      scan_ = start + 7;
      if (!open_) {
        undecided_ = 0;
        return 0;
      }
    }
    const int64_t held = std::exchange(undecided_, 0);
    if (open_) {
      if (text_.find("</think>", scan_) != std::string::npos) {
        open_ = false;
        text_.clear();  // nothing more to look for
      } else if (text_.size() > 8) {
        scan_ = text_.size() - 8;  // a tag may straddle two tokens
      }
    }
    return held > 0 ? held : (was_open || open_) ? 1 : 0;
  }

 private:
  bool open_;
  bool decided_;
  int64_t undecided_ = 0;
  std::string text_;
  size_t scan_ = 0;
};

enum class OutputMode { Text, Chat, Json, ForcedTool };

class GenerationImpl;

// One choice's output path, called by the scheduler on the engine thread.
class ChoiceSink final : public engine::SequenceSink {
 public:
  ChoiceSink(std::shared_ptr<GenerationImpl> owner, int index, const ServedModel& model, OutputMode mode,
             const ChatParseOptions& chat, bool reasoning, bool logprobs, std::vector<std::string> stops,
             std::string forced_tool, bool stream_tool_arguments)
      : owner_(std::move(owner)), model_(model), mode_(mode), decoder_(model.tokenizer), stops_(std::move(stops), model.stop),
        parser_(chat), reasoning_(chat.thinking_open), count_reasoning_(reasoning), logprobs_(logprobs),
        forced_tool_(std::move(forced_tool)),
        stream_arguments_(stream_tool_arguments && (mode == OutputMode::Chat || !forced_tool_.empty())) {
    choice_.index = index;
  }

  bool on_token(const engine::GeneratedToken& token) override;
  void on_finish(const engine::SequenceReport& report) override;

 private:
  ChoiceDelta route(const std::string& text);
  ChoiceDelta from_chat(const ChatDelta& c);
  void add(ChoiceDelta& into, const ChoiceDelta& d);
  TokenLogprobOut logprob_entry(int32_t token, float logprob) const;

  std::shared_ptr<GenerationImpl> owner_;
  const ServedModel& model_;
  OutputMode mode_;
  tokenizer::StreamDecoder decoder_;
  StopMatcher stops_;
  ChatStreamParser parser_;
  ReasoningCounter reasoning_;
  bool count_reasoning_;
  bool logprobs_;
  std::string forced_tool_;  // ForcedTool: the function's name, or empty when the output names it
  // Tool-call arguments are sent as they are generated — a named forced call's output is its
  // arguments; a call in the model's format comes in the chat parser's pieces — the first piece
  // opening the call (its id and name), the rest carrying no id. Otherwise a call is sent
  // whole once it closed.
  bool stream_arguments_;
  bool call_opened_ = false;
  ToolCallOut open_call_;  // Chat, not streaming arguments: the call being put together
  bool stopped_ = false;
  int64_t reasoning_tokens_ = 0;
  std::string raw_;  // Json / ForcedTool: the whole output, parsed at the end
  Choice choice_;
};

class GenerationImpl final : public Generation, public std::enable_shared_from_this<GenerationImpl> {
 public:
  GenerationImpl(GenerationRequest request, const ServedModel& model, Metrics& metrics,
                 std::weak_ptr<GenerationListener> listener, std::shared_ptr<std::atomic<int64_t>> in_flight)
      : request_(std::move(request)), model_(model), metrics_(metrics), listener_(std::move(listener)),
        in_flight_(std::move(in_flight)), started_(std::chrono::steady_clock::now()) {
    ++*in_flight_;
    response_.choices.resize(request_.n);
    reports_.resize(request_.n);
    reasoning_.resize(request_.n);
  }
  ~GenerationImpl() override {
    if (!finished_) --*in_flight_;
  }

  Update poll() override {
    std::lock_guard lock(mutex_);
    Update u;
    u.deltas.swap(pending_);
    u.finished = finished_;
    return u;
  }
  const GenerationRequest& request() const override { return request_; }
  const GenerationResponse& response() const override { return response_; }
  std::optional<ApiError> error() const override {
    std::lock_guard lock(mutex_);
    return error_;
  }
  void cancel() override {
    disconnected_ = true;
    for (uint64_t id : sequences_) model_.scheduler->cancel(id);
  }

  GenerationResponse& header() { return response_; }
  void set_ticket(std::unique_ptr<Ticket> t) { ticket_ = std::move(t); }
  void add_sequence(uint64_t id) { sequences_.push_back(id); }

  void push(ChoiceDelta d) {
    {
      std::lock_guard lock(mutex_);
      pending_.push_back(std::move(d));
    }
    wake();
  }

  void choice_done(Choice choice, ChoiceDelta last, const engine::SequenceReport& report, int64_t reasoning_tokens) {
    bool all_done;
    {
      std::lock_guard lock(mutex_);
      const int i = choice.index;
      response_.choices[i] = std::move(choice);
      reports_[i] = report;
      reasoning_[i] = reasoning_tokens;
      pending_.push_back(std::move(last));
      if (report.reason == engine::FinishReason::Error && !error_) {
        error_ = ApiError{500, "server_error", "generation failed: " + report.error, "", "generation_failed", "", 0};
      }
      all_done = ++done_ == request_.n;
      if (all_done) settle();
    }
    wake();
  }

 private:
  // Usage counts the prompt once however many choices share it, as OpenAI's API does.
  void settle() {
    Usage& u = response_.usage;
    u.prompt_tokens = reports_[0].prompt_tokens;
    u.cached_tokens = reports_[0].cached_tokens;
    Outcome outcome = Outcome::Completed;
    for (int i = 0; i < request_.n; ++i) {
      u.completion_tokens += reports_[i].completion_tokens;
      u.reasoning_tokens += reasoning_[i];
      if (reports_[i].reason == engine::FinishReason::Error) outcome = Outcome::Error;
    }
    if (disconnected_) outcome = Outcome::ClientDisconnected;
    Timings t;
    t.queued_seconds = reports_[0].queued_seconds;
    t.time_to_first_token = reports_[0].first_token_seconds;
    t.total_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - started_).count();
    if (ticket_) ticket_->settle(u, outcome, t);
    metrics_.observe_generation(model_.name, u, t, outcome);
    finished_ = true;
    --*in_flight_;
  }

  void wake() {
    if (auto l = listener_.lock()) l->wake();
  }

  GenerationRequest request_;
  const ServedModel& model_;
  Metrics& metrics_;
  std::weak_ptr<GenerationListener> listener_;
  std::shared_ptr<std::atomic<int64_t>> in_flight_;
  std::chrono::steady_clock::time_point started_;
  std::vector<uint64_t> sequences_;
  std::unique_ptr<Ticket> ticket_;
  std::atomic<bool> disconnected_{false};

  mutable std::mutex mutex_;
  std::vector<ChoiceDelta> pending_;
  GenerationResponse response_;
  std::vector<engine::SequenceReport> reports_;
  std::vector<int64_t> reasoning_;
  std::optional<ApiError> error_;
  int done_ = 0;
  bool finished_ = false;
};

TokenLogprobOut ChoiceSink::logprob_entry(int32_t token, float logprob) const {
  TokenLogprobOut t;
  t.bytes = model_.tokenizer.piece(token);
  t.token = tokenizer::repair_utf8(t.bytes);
  t.logprob = logprob;
  return t;
}

// A tool call, or the next piece of the arguments of the last one.
void append_call(std::vector<ToolCallOut>& calls, const ToolCallOut& c) {
  if (c.id.empty() && !calls.empty() && calls.back().index == c.index) calls.back().arguments += c.arguments;
  else calls.push_back(c);
}

void ChoiceSink::add(ChoiceDelta& into, const ChoiceDelta& d) {
  into.content += d.content;
  into.reasoning += d.reasoning;
  for (const ToolCallOut& c : d.tool_calls) append_call(into.tool_calls, c);
  choice_.content += d.content;
  choice_.reasoning += d.reasoning;
  for (const ToolCallOut& c : d.tool_calls) append_call(choice_.tool_calls, c);
}

// Released text to where it belongs: the chat parser (content, reasoning, tool calls), or
// straight to content. JSON output streams as content and is also kept whole.
ChoiceDelta ChoiceSink::route(const std::string& text) {
  ChoiceDelta d;
  if (text.empty()) return d;
  switch (mode_) {
    case OutputMode::Text:
      d.content = text;
      break;
    case OutputMode::Json:
      d.content = text;
      raw_ += text;
      break;
    case OutputMode::ForcedTool:
      raw_ += text;  // a tool call is sent whole, at the end, unless its arguments stream
      if (stream_arguments_) {
        d.tool_calls.push_back({0, call_opened_ ? "" : random_id("call_"), call_opened_ ? "" : forced_tool_, text});
        call_opened_ = true;
      }
      break;
    case OutputMode::Chat:
      d = from_chat(parser_.feed(text));
      break;
  }
  return d;
}

ChoiceDelta ChoiceSink::from_chat(const ChatDelta& c) {
  ChoiceDelta d;
  d.content = c.content;
  d.reasoning = c.reasoning_content;
  for (const ToolCallDelta& piece : c.tool_calls) {
    const int index = static_cast<int>(piece.index);
    if (stream_arguments_) {
      d.tool_calls.push_back(piece.opens ? ToolCallOut{index, random_id("call_"), piece.name, piece.arguments}
                                         : ToolCallOut{index, "", "", piece.arguments});
      continue;
    }
    if (piece.opens) open_call_ = {index, random_id("call_"), piece.name, ""};
    open_call_.arguments += piece.arguments;
    if (piece.closes) d.tool_calls.push_back(open_call_);
  }
  return d;
}

bool ChoiceSink::on_token(const engine::GeneratedToken& token) {
  ChoiceDelta d;
  d.index = choice_.index;
  if (logprobs_) {
    TokenLogprobOut entry = logprob_entry(token.token, token.logprob);
    for (const engine::TokenLogprob& alt : token.top) entry.top.push_back(logprob_entry(alt.token, alt.logprob));
    choice_.logprobs.push_back(entry);
    d.logprobs.push_back(std::move(entry));
  }
  const std::string text = decoder_.push(token.token);
  if (count_reasoning_) reasoning_tokens_ += reasoning_.count(text);
  add(d, route(stops_.feed(text, stopped_)));
  if (!d.content.empty() || !d.reasoning.empty() || !d.tool_calls.empty() || !d.logprobs.empty())
    owner_->push(std::move(d));
  return !stopped_;
}

void ChoiceSink::on_finish(const engine::SequenceReport& report) {
  ChoiceDelta last;
  last.index = choice_.index;
  if (!stopped_) {
    bool hit = false;
    add(last, route(stops_.feed(decoder_.finish(), hit)));
    if (!hit) add(last, route(stops_.flush()));
  }
  if (mode_ == OutputMode::Chat) add(last, from_chat(parser_.finish()));
  if (mode_ == OutputMode::ForcedTool && !call_opened_) {
    ChoiceDelta d;
    ToolCallOut call{0, random_id("call_"), forced_tool_, raw_};
    if (forced_tool_.empty()) {  // {"name": ..., "arguments": {...}}
      const nlohmann::json j = nlohmann::json::parse(raw_, nullptr, false);
      if (j.is_object() && j.contains("name") && j["name"].is_string() && j.contains("arguments")) {
        call.name = j["name"];
        call.arguments = j["arguments"].dump();
      }
    }
    d.tool_calls.push_back(std::move(call));
    add(last, d);
  }
  using R = engine::FinishReason;
  switch (report.reason) {
    case R::EndOfGeneration:
    case R::Sink:
      choice_.finish_reason = choice_.tool_calls.empty() ? FinishReason::Stop : FinishReason::ToolCalls;
      break;
    case R::Length:
    case R::ContextFull:
      choice_.finish_reason = FinishReason::Length;
      break;
    case R::Cancelled:
      choice_.finish_reason = FinishReason::Cancelled;
      break;
    case R::Error:
      choice_.finish_reason = FinishReason::Error;
      break;
  }
  last.finish_reason = choice_.finish_reason;
  if (choice_.finish_reason == FinishReason::Stop) last.stop_sequence = choice_.stop_sequence = stops_.matched();
  owner_->choice_done(std::move(choice_), std::move(last), report, reasoning_tokens_);
  owner_.reset();
}

// The tool call forced by tool_choice, as a schema: the named function's parameters, or
// {"name", "arguments"} of any tool when one is required.
nlohmann::json forced_tool_schema(const GenerationRequest& r) {
  if (r.tool_choice == ToolChoice::Named) {
    for (const Json& t : r.tools)
      if (t["function"]["name"] == r.tool_name) return nlohmann::json::parse(t["function"]["parameters"].dump());
  }
  nlohmann::json any = nlohmann::json::array();
  for (const Json& t : r.tools) {
    any.push_back({{"type", "object"},
                   {"properties",
                    {{"name", {{"const", t["function"]["name"]}}},
                     {"arguments", nlohmann::json::parse(t["function"]["parameters"].dump())}}},
                   {"required", {"name", "arguments"}},
                   {"additionalProperties", false}});
  }
  return {{"anyOf", any}};
}

ApiError context_error(int64_t context, int64_t prompt, std::optional<int64_t> max_tokens, const char* param) {
  std::string message = "This model's maximum context length is " + std::to_string(context) + " tokens. However, ";
  if (max_tokens)
    message += "you requested " + std::to_string(prompt + *max_tokens) + " tokens (" + std::to_string(prompt) +
               " in the " + param + ", " + std::to_string(*max_tokens) + " in the completion).";
  else
    message += "your " + std::string(param) + " resulted in " + std::to_string(prompt) + " tokens.";
  message += " Please reduce the length of the " + std::string(param) + " or the completion.";
  return ApiError::invalid(message, param, "context_length_exceeded");
}

}  // namespace

std::unique_ptr<ServedModel> load_served_model(const std::string& name, const std::string& path,
                                               const std::string& chat_template_path) {
  model::Model m = model::Model::load(path);
  tokenizer::Tokenizer tok = tokenizer::Tokenizer::from_gguf(m.file());
  auto served = std::unique_ptr<ServedModel>(new ServedModel{name, static_cast<int64_t>(std::time(nullptr)),
                                                             std::move(m), std::move(tok), std::nullopt, {},
                                                             Json::object(), nullptr, nullptr, 0, {}});
  const bool has_template = !chat_template_path.empty() || served->model.file().get_string("tokenizer.chat_template");
  if (has_template) {
    const std::string text = load_chat_template(
        served->model.file(), chat_template_path.empty() ? std::nullopt : std::optional(chat_template_path));
    served->chat_template.emplace(text);
    served->chat_format = detect_chat_format(text);
  }
  add_special_tokens(served->model.file(), served->special_tokens);
  served->vocabulary = std::make_shared<engine::VocabularyIndex>(served->tokenizer);
  return served;
}

Service::Service(engine::Engine& engine, Access& access, Metrics& metrics)
    : engine_(engine), access_(access), metrics_(metrics) {}

void Service::add(std::unique_ptr<ServedModel> model, const engine::SchedulerConfig& config) {
  model->scheduler = &engine_.add(model->name, model->model, model->tokenizer, config);
  models_.push_back(std::move(model));
}

const ServedModel* Service::find(const std::string& name) const {
  for (const auto& m : models_)
    if (m->name == name) return m.get();
  return nullptr;
}

std::vector<const ServedModel*> Service::models() const {
  std::vector<const ServedModel*> out;
  for (const auto& m : models_) out.push_back(m.get());
  return out;
}

void Service::cancel_all() {
  for (const auto& m : models_) m->scheduler->close(true);
}

namespace {

std::string render_chat(const ServedModel& model, const GenerationRequest& request) {
  if (!model.chat_template)
    throw ApiError::invalid("model `" + model.name +
                                "` has no chat template; use /v1/completions, or serve it with --chat-template",
                            "model");
  Json vars = model.special_tokens;
  vars["messages"] = request.messages;
  if (!request.tools.empty() && request.tool_choice != ToolChoice::None) vars["tools"] = request.tools;
  vars["add_generation_prompt"] = true;
  for (const auto& [k, v] : request.template_kwargs.items()) vars[k] = v;
  try {
    return model.chat_template->render(vars);
  } catch (const Error& e) {
    throw ApiError::invalid(std::string("the chat template cannot render these messages: ") + e.what(), "messages");
  }
}

std::vector<int32_t> tokenize_chat(const ServedModel& model, const std::string& prompt_text) {
  const std::string bos = model.special_tokens.value("bos_token", "");
  return model.tokenizer.tokenize(prompt_text, bos.empty() || !prompt_text.starts_with(bos), true);
}

}  // namespace

const ServedModel& Service::allowed_model(const Principal& principal, const std::string& name) const {
  const ServedModel* model = find(name);
  if (!model || !principal.may_use(name)) {
    ApiError e = ApiError::invalid("The model `" + name + "` does not exist or you do not have access to it.",
                                   "model", "model_not_found");
    e.status = 404;
    throw e;
  }
  return *model;
}

int64_t Service::count_prompt_tokens(const Principal& principal, const GenerationRequest& request) const {
  const ServedModel& model = allowed_model(principal, request.model);
  return static_cast<int64_t>(tokenize_chat(model, render_chat(model, request)).size());
}

std::shared_ptr<Generation> Service::start(const Principal& principal, GenerationRequest request,
                                           std::weak_ptr<GenerationListener> listener) {
  if (!admitting_) {
    ApiError e{503, "server_error", "the server is shutting down", "", "service_unavailable", "", 0};
    throw e;
  }
  const ServedModel* model = &allowed_model(principal, request.model);
  const bool chat = request.endpoint == Endpoint::Chat;
  const char* prompt_param = chat ? "messages" : "prompt";

  // The prompt, and how the output is read back.
  OutputMode mode = OutputMode::Text;
  ChatParseOptions chat_options;
  bool count_reasoning = false;
  std::vector<int32_t> prompt;
  std::string prompt_text;
  if (chat) {
    prompt_text = render_chat(*model, request);
    prompt = tokenize_chat(*model, prompt_text);
    mode = OutputMode::Chat;
    chat_options = model->chat_format;
    chat_options.thinking_open = chat_options.reasoning && prompt_opens_thinking(prompt_text);
    if (request.tool_choice != ToolChoice::None) chat_options.tools = request.tools;
    count_reasoning = chat_options.reasoning;
  } else if (request.prompt_tokens) {
    prompt = *request.prompt_tokens;
    for (int32_t t : prompt)
      if (static_cast<size_t>(t) >= model->tokenizer.size())
        throw ApiError::invalid("prompt token id " + std::to_string(t) + " is outside the vocabulary", "prompt");
    prompt_text = model->tokenizer.detokenize(prompt);
  } else {
    prompt_text = request.prompt;
    prompt = model->tokenizer.tokenize(prompt_text, true, true);
  }
  if (prompt.empty()) throw ApiError::invalid("the prompt is empty", prompt_param);

  std::shared_ptr<const engine::JsonSchema> schema;
  std::string forced_tool;
  try {
    if (chat && (request.tool_choice == ToolChoice::Required || request.tool_choice == ToolChoice::Named)) {
      mode = OutputMode::ForcedTool;
      forced_tool = request.tool_choice == ToolChoice::Named ? request.tool_name : "";
      schema = engine::JsonSchema::compile(forced_tool_schema(request));
    } else if (request.response_format.kind != ResponseFormat::Kind::Text) {
      mode = OutputMode::Json;
      schema = engine::JsonSchema::compile(request.response_format.schema);
    }
  } catch (const Error& e) {
    throw ApiError::invalid(e.what(), mode == OutputMode::ForcedTool ? "tools" : "response_format");
  }
  if (schema) {
    count_reasoning = false;  // the output is the document from its first token
    // Every token of a constrained output may carry a single byte.
    if (request.max_tokens && *request.max_tokens < schema->min_length())
      throw ApiError::invalid("max_tokens is " + std::to_string(*request.max_tokens) + ", but the shortest " +
                                  (mode == OutputMode::ForcedTool ? "tool call" : "document") + " the schema allows needs " +
                                  std::to_string(schema->min_length()) + " tokens",
                              "max_tokens", "invalid_value");
  }

  const int64_t context = model->scheduler->context_length();
  const auto n_prompt = static_cast<int64_t>(prompt.size());
  std::optional<int64_t> asked = request.max_tokens;
  if (asked && model->max_output_tokens > 0) asked = std::min(*asked, model->max_output_tokens);
  if (n_prompt >= context || (asked && n_prompt + *asked > context))
    throw context_error(context, n_prompt, asked, prompt_param);
  int64_t max_tokens = asked.value_or(context - n_prompt);
  if (model->max_output_tokens > 0) max_tokens = std::min(max_tokens, model->max_output_tokens);

  auto generation = std::make_shared<GenerationImpl>(request, *model, metrics_, std::move(listener), in_flight_);
  GenerationResponse& header = generation->header();
  header.id = random_id(chat ? "chatcmpl-" : "cmpl-");
  header.created = static_cast<int64_t>(std::time(nullptr));
  header.model = model->name;
  header.prompt_text = prompt_text;
  header.usage.prompt_tokens = n_prompt;  // for stream openings; the final usage replaces it

  const std::string& request_id = request.request_id.empty() ? header.id : request.request_id;
  auto admitted = access_.admit(principal, {request_id, model->name, n_prompt, max_tokens * request.n});
  if (auto* rejection = std::get_if<Rejection>(&admitted)) throw ApiError::from(*rejection);
  generation->set_ticket(std::move(std::get<std::unique_ptr<Ticket>>(admitted)));

  const uint64_t seed = request.sampling.seed != 0 ? request.sampling.seed : random_seed();
  for (int i = 0; i < request.n; ++i) {
    engine::SequenceRequest seq;
    seq.prompt = prompt;
    seq.max_tokens = max_tokens;
    seq.sampling = request.sampling;
    seq.sampling.seed = seed + static_cast<uint64_t>(i);
    seq.top_logprobs = request.logprobs ? request.top_logprobs : -1;
    seq.ignore_eos = request.ignore_eos;
    // Tenants never share cached prefixes; within one, cache_salt partitions further.
    seq.cache_salt = principal.cache_salt + '\x1f' + request.cache_salt;
    if (schema) seq.constraint = engine::json_constraint(schema, model->vocabulary);
    auto sink = std::make_shared<ChoiceSink>(generation, i, *model, mode, chat_options, count_reasoning,
                                             request.logprobs, request.stop, forced_tool,
                                             request.stream && request.stream_tool_arguments);
    try {
      generation->add_sequence(model->scheduler->submit(std::move(seq), std::move(sink)));
    } catch (const engine::QueueFull& e) {
      generation->cancel();
      ApiError err{503, "server_error", std::string("the server is busy: ") + e.what() + "; retry later", "",
                   "server_overloaded", "", 1};
      throw err;
    } catch (const Error& e) {
      generation->cancel();
      throw ApiError::invalid(e.what(), prompt_param);
    }
  }
  return generation;
}

}  // namespace tokenmill::api
