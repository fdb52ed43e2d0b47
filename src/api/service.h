// Running a GenerationRequest, whatever wire format it came in: the served models (weights,
// tokenizer, chat template, scheduler), turning a request into prompt tokens (chat template,
// tokenizer), admission through Access, one engine sequence per choice, and the output path
// back — streaming detokenization, stop sequences, reasoning and tool-call parsing, forced tool
// calls and JSON output through constrained decoding — into ChoiceDeltas and a final
// GenerationResponse with usage. Knows nothing of HTTP: the server polls a Generation when its
// listener is woken.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "api/access.h"
#include "api/metrics.h"
#include "api/request.h"
#include "engine/engine.h"
#include "engine/json_schema.h"
#include "model/model.h"
#include "tokenizer/chat_parse.h"
#include "tokenizer/jinja_template.h"
#include "tokenizer/tokenizer.h"

namespace tokenmill::api {

struct ServedModel {
  std::string name;
  int64_t created = 0;  // unix seconds at load
  model::Model model;
  tokenizer::Tokenizer tokenizer;
  std::optional<jinja::Template> chat_template;  // none: chat requests are refused
  ChatParseOptions chat_format;
  nlohmann::ordered_json special_tokens;  // bos_token / eos_token for the template
  std::shared_ptr<const engine::VocabularyIndex> vocabulary;  // for constrained decoding
  engine::Scheduler* scheduler = nullptr;
  // The most tokens one choice may generate, whatever a request asks for (it then ends with
  // finish_reason length); 0: what the context leaves. Clients such as coding agents ask for
  // tens of thousands by default.
  int64_t max_output_tokens = 0;
  // Text at which the model's answers end, as at its end-of-turn token (finish_reason stop,
  // Anthropic's end_turn); for models that need more than their vocabulary's end tokens.
  std::vector<std::string> stop;
};

// Loads a GGUF model; the chat template is `chat_template_path` when given, else the model's
// own (none is fine: the model then serves completions only).
std::unique_ptr<ServedModel> load_served_model(const std::string& name, const std::string& path,
                                               const std::string& chat_template_path = {});

// Woken (from the engine thread) when a Generation has news; must return quickly.
class GenerationListener {
 public:
  virtual ~GenerationListener() = default;
  virtual void wake() = 0;
};

// One request in flight.
class Generation {
 public:
  struct Update {
    std::vector<ChoiceDelta> deltas;
    bool finished = false;
  };
  virtual ~Generation() = default;
  virtual Update poll() = 0;  // what happened since the last poll; any thread
  virtual const GenerationRequest& request() const = 0;
  // id, created and model at once; choices and usage once poll() reported finished.
  virtual const GenerationResponse& response() const = 0;
  virtual void cancel() = 0;  // the client went away
  // Set when the generation failed after it started (the engine could not run it).
  virtual std::optional<ApiError> error() const = 0;
};

class Service {
 public:
  Service(engine::Engine& engine, Access& access, Metrics& metrics);

  // Before the engine starts.
  void add(std::unique_ptr<ServedModel> model, const engine::SchedulerConfig& config);
  const ServedModel* find(const std::string& name) const;
  std::vector<const ServedModel*> models() const;
  Access& access() { return access_; }
  Metrics& metrics() { return metrics_; }

  // Validates the request against the model (context, template, tools), admits it and queues
  // its sequences. Throws ApiError.
  // The prompt tokens a chat request would take (Anthropic's count_tokens). Throws ApiError.
  int64_t count_prompt_tokens(const Principal& principal, const GenerationRequest& request) const;

  std::shared_ptr<Generation> start(const Principal& principal, GenerationRequest request,
                                    std::weak_ptr<GenerationListener> listener);

  // Requests started and not yet finished.
  int64_t in_flight() const { return *in_flight_; }
  // New requests are refused (503) from now on.
  void stop_admitting() { admitting_ = false; }
  // Cancels every request in flight (the end of a shutdown's grace period).
  void cancel_all();

 private:
  const ServedModel& allowed_model(const Principal& principal, const std::string& name) const;

  engine::Engine& engine_;
  Access& access_;
  Metrics& metrics_;
  std::vector<std::unique_ptr<ServedModel>> models_;
  std::shared_ptr<std::atomic<int64_t>> in_flight_ = std::make_shared<std::atomic<int64_t>>(0);
  std::atomic<bool> admitting_{true};
};

}  // namespace tokenmill::api
