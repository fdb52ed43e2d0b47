// The OpenAI wire format: request bodies of /v1/chat/completions and /v1/completions into a
// GenerationRequest (every bad field is an ApiError naming it, as OpenAI's API answers), and
// responses, stream chunks, model lists and errors back into OpenAI's JSON.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "api/request.h"

namespace tokenmill::api::openai {

// Throws ApiError for a body that is not a JSON object.
nlohmann::ordered_json parse_body(std::string_view body);

GenerationRequest parse_chat_request(const nlohmann::ordered_json& body);
GenerationRequest parse_completion_request(const nlohmann::ordered_json& body);

nlohmann::ordered_json response_json(const GenerationRequest& request, const GenerationResponse& response);
// One stream event for one choice's delta; `first` adds the assistant role (chat).
nlohmann::ordered_json chunk_json(const GenerationRequest& request, const GenerationResponse& header,
                                  const ChoiceDelta& delta, bool first);
// The last event with stream_options.include_usage: no choices, the usage.
nlohmann::ordered_json usage_chunk_json(const GenerationRequest& request, const GenerationResponse& response);

struct ModelCard {
  std::string id;
  int64_t created = 0;
};
nlohmann::ordered_json models_json(const std::vector<ModelCard>& models);
nlohmann::ordered_json model_json(const ModelCard& model);

nlohmann::ordered_json error_json(const ApiError& error);

const char* finish_reason_name(FinishReason reason);

}  // namespace tokenmill::api::openai
