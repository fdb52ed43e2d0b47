#include "api/zhipu.h"

#include "api/openai.h"

namespace tokenmill::api::zhipu {
namespace {

using Json = nlohmann::ordered_json;

// A string field of bounded length, or nothing.
std::string bounded_string(const Json& body, const char* name, size_t lo, size_t hi) {
  const auto it = body.find(name);
  if (it == body.end() || it->is_null()) return {};
  if (!it->is_string() || it->get<std::string>().size() < lo || it->get<std::string>().size() > hi) {
    ApiError e = ApiError::invalid(std::string(name) + " must be a string of " + std::to_string(lo) + " to " +
                                       std::to_string(hi) + " characters",
                                   name);
    e.business_code = "1214";  // Zhipu's "invalid ${field} parameter"
    throw e;
  }
  return *it;
}

// Zhipu's business codes for errors that carry none of their own.
const char* code_for_status(int status) {
  switch (status) {
    case 401: return "1000";  // authentication failed
    case 404: return "1211";  // model not found
    case 429: return "1302";  // too many requests
    case 503: return "1305";  // the model is overloaded
    default: return status >= 500 ? "500" : "1210";  // 1210: bad parameters
  }
}

}  // namespace

GenerationRequest parse_request(const Json& body) {
  Json chat = body;
  const std::string request_id = bounded_string(body, "request_id", 6, 64);
  const std::string user_id = bounded_string(body, "user_id", 6, 128);
  chat.erase("request_id");
  chat.erase("user_id");
  bool tool_stream = false;
  if (const auto it = body.find("tool_stream"); it != body.end() && !it->is_null()) {
    if (!it->is_boolean()) throw ApiError::invalid("tool_stream must be a boolean", "tool_stream");
    tool_stream = *it;
    chat.erase("tool_stream");
  }
  if (const auto thinking = body.find("thinking"); thinking != body.end() && !thinking->is_null()) {
    const std::string type = thinking->is_object() ? thinking->value("type", "") : "";
    if (type != "enabled" && type != "disabled")
      throw ApiError::invalid("thinking.type must be enabled or disabled", "thinking.type");
    chat["chat_template_kwargs"] = {{"enable_thinking", type == "enabled"}};
    chat.erase("thinking");
  }
  if (const auto sample = body.find("do_sample"); sample != body.end() && !sample->is_null()) {
    if (!sample->is_boolean()) throw ApiError::invalid("do_sample must be a boolean", "do_sample");
    if (!sample->get<bool>()) chat["temperature"] = 0;  // greedy, whatever temperature says
    chat.erase("do_sample");
  }
  GenerationRequest r = openai::parse_chat_request(chat);
  r.request_id = request_id;
  r.stream_tool_arguments = tool_stream;
  if (!user_id.empty()) r.user = user_id;
  return r;
}

Json from_openai(Json j, const GenerationRequest& request, const GenerationResponse& response) {
  j["request_id"] = request.request_id.empty() ? response.id : request.request_id;
  // Zhipu names a generation the server broke off "network_error" (OpenAI's shape here: "error").
  if (j.contains("choices"))
    for (Json& choice : j["choices"])
      if (choice.value("finish_reason", Json()) == "error") choice["finish_reason"] = "network_error";
  return j;
}

Json error_json(const ApiError& e) {
  return {{"error", {{"code", e.business_code.empty() ? code_for_status(e.status) : e.business_code}, {"message", e.message}}}};
}

}  // namespace tokenmill::api::zhipu
