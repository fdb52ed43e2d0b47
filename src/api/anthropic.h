// The Anthropic Messages wire format (POST /v1/messages, /v1/messages/count_tokens): a request
// body is rewritten into the OpenAI chat shape and parsed by openai::parse_chat_request, so
// every field is validated once; responses, the streamed event sequence and errors are written
// back in Anthropic's JSON. Model-name aliases let clients that ask for claude-* names reach a
// served model.
#pragma once

#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "api/request.h"

namespace tokenmill::api::anthropic {

// `count_only`: the body of /v1/messages/count_tokens, where max_tokens is not required.
GenerationRequest parse_request(const nlohmann::ordered_json& body, bool count_only = false);

nlohmann::ordered_json response_json(const GenerationResponse& response);
nlohmann::ordered_json count_tokens_json(int64_t input_tokens);
nlohmann::ordered_json error_json(const ApiError& error);
// The error type Anthropic uses for an HTTP status (429 rate_limit_error, 529 overloaded_error, ...).
const char* error_type(int status);

// Turns one streamed choice into Anthropic's server-sent events: message_start and ping, then
// for each content block (thinking, text, tool_use) content_block_start, its deltas and
// content_block_stop, and at the end message_delta (stop_reason, usage) and message_stop.
class StreamEncoder {
 public:
  std::string start(const GenerationResponse& header);
  std::string delta(const ChoiceDelta& delta);
  std::string finish(const GenerationResponse& response);
  std::string error(const ApiError& error);

 private:
  enum class Block { None, Thinking, Text, Tool };
  std::string open(Block block);
  std::string close();

  Block open_ = Block::None;
  int index_ = -1;
  FinishReason finish_reason_ = FinishReason::Stop;
  std::string stop_sequence_;
};

// "claude-*=glm-4" style rules: the first pattern matching a requested model name (a trailing
// '*' matches any suffix) gives the served model's name.
class ModelAliases {
 public:
  void add(const std::string& rule);  // PATTERN=NAME; throws tokenmill::Error when malformed
  std::string resolve(const std::string& model) const;
  bool empty() const { return rules_.empty(); }

 private:
  std::vector<std::pair<std::string, std::string>> rules_;
};

}  // namespace tokenmill::api::anthropic
