// The wire-format-neutral request and response: every API (OpenAI today; Anthropic Messages and
// Zhipu v4 later) translates its JSON into a GenerationRequest, the service runs it, and the
// translator turns the resulting events back into its own JSON. Chat messages and tools stay in
// the OpenAI shape — the shape chat templates are written against — with content normalised to
// text and tool-call arguments parsed into objects; everything else is plain fields.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "api/access.h"
#include "engine/sampler.h"

namespace tokenmill::api {

// An error for the client, in the terms every wire format needs (OpenAI's type/code/param).
struct ApiError {
  int status = 400;
  std::string type = "invalid_request_error";
  std::string message;
  std::string param;  // the offending request field, empty if none
  std::string code;   // empty if none
  std::string business_code;  // provider-specific code from an Access rejection
  int retry_after_seconds = 0;
  nlohmann::json details = nlohmann::json::object();  // more members of the error object

  static ApiError invalid(std::string message, std::string param = {}, std::string code = {});
  static ApiError from(const Rejection& r);
};

enum class Endpoint { Chat, Completion };

enum class ToolChoice { Auto, None, Required, Named };

struct ResponseFormat {
  enum class Kind { Text, JsonObject, JsonSchema };
  Kind kind = Kind::Text;
  nlohmann::json schema;  // JsonSchema
};

struct GenerationRequest {
  Endpoint endpoint = Endpoint::Chat;
  std::string model;

  // Chat: [{"role", "content" (text), "tool_calls", "tool_call_id", "name", "reasoning_content"}].
  nlohmann::ordered_json messages = nlohmann::ordered_json::array();
  // [{"type": "function", "function": {"name", "description", "parameters"}}]
  nlohmann::ordered_json tools = nlohmann::ordered_json::array();
  ToolChoice tool_choice = ToolChoice::Auto;
  std::string tool_name;  // ToolChoice::Named
  nlohmann::ordered_json template_kwargs = nlohmann::ordered_json::object();  // enable_thinking, ...

  // Completion: text, or token ids given directly.
  std::string prompt;
  std::optional<std::vector<int32_t>> prompt_tokens;
  bool echo = false;

  std::optional<int64_t> max_tokens;  // unset: what the context leaves
  engine::SamplingParams sampling;
  std::vector<std::string> stop;
  bool ignore_eos = false;  // generate max_tokens whatever the model says (benchmarks)
  int n = 1;
  bool logprobs = false;
  int top_logprobs = 0;
  ResponseFormat response_format;
  bool stream = false;
  // Streamed tool calls send their arguments in pieces as they are generated, as OpenAI's and
  // Anthropic's APIs do (a call in the model's format, or a named forced call); false sends
  // each call whole once it closed (Zhipu without tool_stream).
  bool stream_tool_arguments = true;
  bool include_usage = false;
  std::string cache_salt;
  std::string user;
  // The client's id for this request (Zhipu's request_id field, or the X-Request-Id header):
  // the usage ledger's key. Empty: the response id is used.
  std::string request_id;
};

struct ToolCallOut {
  int index = 0;  // position among the choice's tool calls
  std::string id;  // empty: more arguments of the call at `index`, streamed piecewise
  std::string name;
  std::string arguments;  // a JSON object as text (or the next piece of it)
};

struct TokenLogprobOut {
  std::string token;  // the token's text (invalid UTF-8 repaired)
  std::string bytes;  // its exact bytes
  float logprob = 0;
  std::vector<TokenLogprobOut> top;
};

enum class FinishReason { Stop, Length, ToolCalls, Cancelled, Error };

// What one choice adds in one streamed event; a final delta carries finish_reason.
struct ChoiceDelta {
  int index = 0;
  std::string content;
  std::string reasoning;
  std::vector<ToolCallOut> tool_calls;
  std::vector<TokenLogprobOut> logprobs;
  std::optional<FinishReason> finish_reason;
  std::string stop_sequence;  // with finish_reason Stop: the stop sequence that ended it, if one did
};

struct Choice {
  int index = 0;
  std::string content;
  std::string reasoning;
  std::vector<ToolCallOut> tool_calls;
  std::vector<TokenLogprobOut> logprobs;
  FinishReason finish_reason = FinishReason::Stop;
  std::string stop_sequence;  // finish_reason Stop because of this stop sequence
};

struct GenerationResponse {
  std::string id;
  int64_t created = 0;  // unix seconds
  std::string model;
  std::vector<Choice> choices;
  Usage usage;
  std::string prompt_text;  // completions with echo
};

}  // namespace tokenmill::api
