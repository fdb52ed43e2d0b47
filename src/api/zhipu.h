// The Zhipu BigModel v4 wire format (POST /api/paas/v4/chat/completions, also under
// /api/coding/paas/v4): GLM's request fields (thinking, do_sample, request_id, user_id,
// tool_stream) are rewritten into the OpenAI chat shape and parsed by openai::parse_chat_request;
// responses are OpenAI's plus request_id; a stream's chunk with finish_reason also carries the
// usage (there is no separate usage chunk); errors are {"error": {"code": "1xxx", "message"}}
// with Zhipu's business codes.
#pragma once

#include <nlohmann/json.hpp>

#include "api/request.h"

namespace tokenmill::api::zhipu {

GenerationRequest parse_request(const nlohmann::ordered_json& body);

// Zhipu's JSON for `openai_json` (a response or a stream chunk): OpenAI's with request_id, and
// finish_reason "network_error" for a generation that failed.
nlohmann::ordered_json from_openai(nlohmann::ordered_json openai_json, const GenerationRequest& request,
                                   const GenerationResponse& response);

nlohmann::ordered_json error_json(const ApiError& error);

}  // namespace tokenmill::api::zhipu
