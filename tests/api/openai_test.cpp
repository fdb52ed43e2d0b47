// The OpenAI translation on its own: requests normalised into the neutral GenerationRequest
// (roles, content parts, tool-call arguments for templates, parameters), every bad field an
// ApiError naming it, and responses and stream chunks in OpenAI's shapes.
#include "api/openai.h"

#include <gtest/gtest.h>

namespace tokenmill::api {
namespace {

using Json = nlohmann::ordered_json;

GenerationRequest chat(const char* body) { return openai::parse_chat_request(openai::parse_body(body)); }

ApiError chat_error(const std::string& body) {
  try {
    chat(body.c_str());
  } catch (const ApiError& e) {
    return e;
  }
  ADD_FAILURE() << "no error for " << body;
  return {};
}

TEST(OpenAiRequest, NormalisesMessagesForChatTemplates) {
  const GenerationRequest r = chat(R"({
    "model": "m",
    "messages": [
      {"role": "developer", "content": "be terse"},
      {"role": "user", "content": [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}]},
      {"role": "assistant", "content": null, "tool_calls": [{"id": "c1", "type": "function",
        "function": {"name": "f", "arguments": "{\"x\": 1}"}}]},
      {"role": "tool", "tool_call_id": "c1", "content": "42"}
    ],
    "max_completion_tokens": 7, "temperature": 0.5, "top_k": -1, "seed": -3, "stop": "END",
    "stream": true, "stream_options": {"include_usage": true}, "logprobs": true, "top_logprobs": 3,
    "chat_template_kwargs": {"enable_thinking": false}, "cache_salt": "s1"
  })");
  EXPECT_EQ(r.messages[0]["role"], "system");
  EXPECT_EQ(r.messages[1]["content"], "a\nb");
  EXPECT_TRUE(r.messages[2]["content"].is_null());
  EXPECT_EQ(r.messages[2]["tool_calls"][0]["function"]["arguments"], Json({{"x", 1}}));  // an object for templates
  EXPECT_EQ(r.messages[3]["tool_call_id"], "c1");
  EXPECT_EQ(r.max_tokens, 7);
  EXPECT_FLOAT_EQ(r.sampling.temperature, 0.5f);
  EXPECT_EQ(r.sampling.top_k, 0);
  EXPECT_EQ(r.sampling.seed, static_cast<uint64_t>(int64_t{-3}));
  EXPECT_EQ(r.stop, std::vector<std::string>{"END"});
  EXPECT_TRUE(r.stream && r.include_usage && r.logprobs);
  EXPECT_EQ(r.top_logprobs, 3);
  EXPECT_EQ(r.template_kwargs["enable_thinking"], false);
  EXPECT_EQ(r.cache_salt, "s1");
}

TEST(OpenAiRequest, ToolsToolChoiceAndResponseFormat) {
  const GenerationRequest r = chat(R"({"model": "m", "messages": [{"role": "user", "content": "x"}],
    "tools": [{"type": "function", "function": {"name": "get_w", "parameters": {"type": "object"}}},
              {"type": "function", "function": {"name": "noargs"}}],
    "tool_choice": {"type": "function", "function": {"name": "get_w"}},
    "response_format": {"type": "json_schema", "json_schema": {"name": "n", "schema": {"type": "object"}}}})");
  EXPECT_EQ(r.tool_choice, ToolChoice::Named);
  EXPECT_EQ(r.tool_name, "get_w");
  EXPECT_EQ(r.tools[1]["function"]["parameters"]["type"], "object");  // filled in when absent
  EXPECT_EQ(r.response_format.kind, ResponseFormat::Kind::JsonSchema);
  EXPECT_EQ(r.response_format.schema["type"], "object");
}

TEST(OpenAiRequest, EveryBadFieldIsNamed) {
  const std::string msgs = R"("messages": [{"role": "user", "content": "x"}])";
  auto with = [&](const std::string& field) { return "{\"model\": \"m\", " + msgs + ", " + field + "}"; };
  const std::vector<std::pair<std::string, std::string>> cases = {
      {with(R"("temperature": 2.5)"), "temperature"},
      {with(R"("top_p": 1.5)"), "top_p"},
      {with(R"("presence_penalty": -3)"), "presence_penalty"},
      {with(R"("max_tokens": 0)"), "max_tokens"},
      {with(R"("max_tokens": 1.5)"), "max_tokens"},
      {with(R"("n": 17)"), "n"},
      {with(R"("stop": ["a", "b", "c", "d", "e"])"), "stop"},
      {with(R"("stop": 3)"), "stop"},
      {with(R"("top_logprobs": 2)"), "top_logprobs"},
      {with(R"("logprobs": "yes")"), "logprobs"},
      {with(R"("tools": [{"type": "function", "function": {"name": "bad name"}}])"), "tools[0].function.name"},
      {with(R"("tool_choice": "auto")"), "tool_choice"},
      {with(R"("tools": [{"type": "function", "function": {"name": "f"}}], "tool_choice": {"type": "function", "function": {"name": "g"}})"), "tool_choice"},
      {with(R"("response_format": {"type": "xml"})"), "response_format.type"},
      {with(R"("response_format": {"type": "json_schema"})"), "response_format.json_schema"},
      {with(R"("chat_template_kwargs": [])"), "chat_template_kwargs"},
      {R"({"messages": [{"role": "user", "content": "x"}]})", "model"},
      {R"({"model": "m", "messages": [{"role": "user", "content": [{"type": "image_url"}]}]})", "messages[0].content[0]"},
      {R"({"model": "m", "messages": [{"role": "tool", "content": "x"}]})", "messages[0].tool_call_id"},
      {R"({"model": "m", "messages": [{"role": "assistant"}]})", "messages[0].content"},
  };
  for (const auto& [body, param] : cases) {
    const ApiError e = chat_error(body);
    EXPECT_EQ(e.status, 400) << body;
    EXPECT_EQ(e.type, "invalid_request_error") << body;
    EXPECT_EQ(e.param, param) << body << ": " << e.message;
    EXPECT_FALSE(e.message.empty());
  }
  EXPECT_THROW(openai::parse_body("{"), ApiError);
  EXPECT_THROW(openai::parse_body("[]"), ApiError);
}

TEST(OpenAiRequest, CompletionPrompts) {
  auto completion = [](const char* body) { return openai::parse_completion_request(openai::parse_body(body)); };
  EXPECT_EQ(completion(R"({"model": "m", "prompt": "hi"})").prompt, "hi");
  EXPECT_EQ(completion(R"({"model": "m", "prompt": ["hi"]})").prompt, "hi");
  EXPECT_EQ(*completion(R"({"model": "m", "prompt": [1, 2, 3]})").prompt_tokens, (std::vector<int32_t>{1, 2, 3}));
  EXPECT_EQ(*completion(R"({"model": "m", "prompt": [[4, 5]]})").prompt_tokens, (std::vector<int32_t>{4, 5}));
  const GenerationRequest r = completion(R"({"model": "m", "prompt": "x", "logprobs": 2, "echo": true})");
  EXPECT_TRUE(r.logprobs && r.echo);
  EXPECT_EQ(r.top_logprobs, 2);
  EXPECT_THROW(completion(R"({"model": "m", "prompt": ["a", "b"]})"), ApiError);
  EXPECT_THROW(completion(R"({"model": "m", "prompt": [-1]})"), ApiError);
  EXPECT_THROW(completion(R"({"model": "m", "prompt": "x", "best_of": 3})"), ApiError);
}

TEST(OpenAiResponse, ShapesOfResponsesChunksAndErrors) {
  GenerationRequest req = chat(R"({"model": "m", "messages": [{"role": "user", "content": "x"}], "n": 2,
                                   "stream": true, "stream_options": {"include_usage": true}})");
  GenerationResponse resp{"chatcmpl-1", 100, "m", {}, {10, 4, 7, 3}, ""};
  Choice text{0, "hello", "hmm", {}, {}, FinishReason::Stop, ""};
  Choice call{1, "", "", {{0, "call_1", "f", "{}"}}, {}, FinishReason::ToolCalls, ""};
  resp.choices = {text, call};
  const Json j = openai::response_json(req, resp);
  EXPECT_EQ(j["object"], "chat.completion");
  EXPECT_EQ(j["choices"][0]["message"]["content"], "hello");
  EXPECT_EQ(j["choices"][0]["message"]["reasoning_content"], "hmm");
  EXPECT_TRUE(j["choices"][1]["message"]["content"].is_null());
  EXPECT_EQ(j["choices"][1]["message"]["tool_calls"][0]["function"]["name"], "f");
  EXPECT_EQ(j["choices"][1]["finish_reason"], "tool_calls");
  EXPECT_EQ(j["usage"], Json::parse(R"({"prompt_tokens": 10, "completion_tokens": 7, "total_tokens": 17,
      "prompt_tokens_details": {"cached_tokens": 4}, "completion_tokens_details": {"reasoning_tokens": 3}})"));

  ChoiceDelta d{1, "", "", {{0, "call_1", "f", "{\"a\":1}"}}, {}, FinishReason::ToolCalls, ""};
  const Json chunk = openai::chunk_json(req, resp, d, false);
  EXPECT_EQ(chunk["object"], "chat.completion.chunk");
  EXPECT_EQ(chunk["choices"][0]["index"], 1);
  EXPECT_EQ(chunk["choices"][0]["delta"]["tool_calls"][0]["index"], 0);
  EXPECT_EQ(chunk["choices"][0]["finish_reason"], "tool_calls");
  EXPECT_TRUE(chunk["usage"].is_null());
  const Json first = openai::chunk_json(req, resp, ChoiceDelta{}, true);
  EXPECT_EQ(first["choices"][0]["delta"], Json::parse(R"({"role": "assistant", "content": ""})"));
  const Json usage = openai::usage_chunk_json(req, resp);
  EXPECT_TRUE(usage["choices"].empty());
  EXPECT_EQ(usage["usage"]["total_tokens"], 17);

  ApiError e = ApiError::invalid("bad", "temperature", "invalid_value");
  EXPECT_EQ(openai::error_json(e), Json::parse(R"({"error": {"message": "bad", "type": "invalid_request_error",
      "param": "temperature", "code": "invalid_value"}})"));
  e.param.clear();
  EXPECT_TRUE(openai::error_json(e)["error"]["param"].is_null());
}

}  // namespace
}  // namespace tokenmill::api
