// Zhipu BigModel v4 over raw HTTP against the real server: GLM's request fields, request_id
// in responses and stream chunks, usage with cached_tokens, reasoning_content, the coding
// plan's path, and errors in {"error": {"code": "1xxx", "message"}} form.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "api/zhipu.h"
#include "scripted_model.h"
#include "server_env.h"

namespace tokenmill::testing {
namespace {

using Json = nlohmann::json;

// The data lines of an SSE body, parsed, without [DONE].
std::vector<Json> sse_chunks(const std::string& body) {
  std::vector<Json> chunks;
  for (size_t at = body.find("data: "); at != std::string::npos; at = body.find("data: ", at + 1)) {
    const std::string data = body.substr(at + 6, body.find("\n\n", at) - at - 6);
    if (data != "[DONE]") chunks.push_back(Json::parse(data));
  }
  return chunks;
}

// The tool_calls entries of a streamed reply's chunks, in order.
std::vector<Json> streamed_tool_calls(int port, const Json& request) {
  const HttpReply r = http(port, "POST", "/api/paas/v4/chat/completions", request.dump());
  EXPECT_EQ(r.status, 200) << r.body;
  std::vector<Json> calls;
  for (const Json& c : sse_chunks(r.body))
    if (c["choices"][0]["delta"].contains("tool_calls"))
      for (const Json& call : c["choices"][0]["delta"]["tool_calls"]) calls.push_back(call);
  return calls;
}

// The arguments of one call streamed in `pieces`: the first with the call's id and name, the
// rest only arguments.
std::string joined_arguments(const std::vector<Json>& pieces, const std::string& name) {
  EXPECT_FALSE(pieces.empty());
  if (pieces.empty()) return "";
  EXPECT_EQ(pieces[0]["function"]["name"], name);
  EXPECT_TRUE(pieces[0]["id"].is_string());
  std::string joined;
  for (size_t i = 0; i < pieces.size(); ++i) {
    EXPECT_EQ(pieces[i]["index"], 0);
    if (i > 0) {
      EXPECT_FALSE(pieces[i].contains("id") || pieces[i]["function"].contains("name")) << pieces[i].dump();
    }
    joined += pieces[i]["function"]["arguments"].get<std::string>();
  }
  return joined;
}

TEST(Zhipu, ChatCompletionWithGlmFieldsCarriesRequestIdUsageAndReasoning) {
  ServerProcess server(serve_tiny());
  ASSERT_GT(server.port(), 0) << server.log();
  const Json body = {{"model", "tiny"}, {"max_tokens", 4}, {"request_id", "req-000001"}, {"user_id", "user-123456"},
                     {"do_sample", false}, {"tool_stream", true}, {"thinking", {{"type", "enabled"}}},
                     {"messages", {{{"role", "user"}, {"content", "hi"}}}}};
  const HttpReply r = http(server.port(), "POST", "/api/paas/v4/chat/completions", body.dump());
  ASSERT_EQ(r.status, 200) << r.body;
  const Json j = Json::parse(r.body);
  EXPECT_EQ(j["request_id"], "req-000001");
  EXPECT_EQ(j["usage"]["completion_tokens"], 4);
  EXPECT_TRUE(j["usage"]["prompt_tokens_details"]["cached_tokens"].is_number());
  // The template opens <think> when thinking is enabled: the output is reasoning.
  EXPECT_TRUE(j["choices"][0]["message"]["reasoning_content"].is_string()) << r.body;
  EXPECT_EQ(j["usage"]["completion_tokens_details"]["reasoning_tokens"], 4);

  // do_sample false is greedy: the same answer again, now from the coding plan's path.
  Json second = body;
  second["request_id"] = "req-000002";
  const HttpReply again = http(server.port(), "POST", "/api/coding/paas/v4/chat/completions", second.dump());
  ASSERT_EQ(again.status, 200) << again.body;
  EXPECT_EQ(Json::parse(again.body)["choices"][0]["message"], j["choices"][0]["message"]);
  EXPECT_EQ(server.stop(SIGTERM), 0) << server.log();
}

TEST(Zhipu, StreamChunksCarryRequestIdAndUsageComesLast) {
  ServerProcess server(serve_tiny());
  ASSERT_GT(server.port(), 0) << server.log();
  const Json body = {{"model", "tiny"}, {"max_tokens", 3}, {"stream", true}, {"thinking", {{"type", "disabled"}}},
                     {"messages", {{{"role", "user"}, {"content", "hi"}}}}};
  const HttpReply r = http(server.port(), "POST", "/api/paas/v4/chat/completions", body.dump());
  ASSERT_EQ(r.status, 200) << r.body;
  const std::vector<Json> chunks = sse_chunks(r.body);
  ASSERT_GE(chunks.size(), 2u) << r.body;
  for (const Json& c : chunks) EXPECT_EQ(c["request_id"], chunks[0]["id"]);  // none given: the response id
  // As Zhipu streams: only the last chunk has a finish_reason, and it carries the usage too.
  for (size_t i = 0; i + 1 < chunks.size(); ++i) {
    EXPECT_FALSE(chunks[i].contains("usage")) << chunks[i].dump();
    EXPECT_TRUE(chunks[i]["choices"][0]["finish_reason"].is_null()) << chunks[i].dump();
  }
  const Json& last = chunks.back();
  EXPECT_EQ(last["choices"][0]["finish_reason"], "length") << last.dump();
  EXPECT_EQ(last["usage"]["completion_tokens"], 3);
  EXPECT_EQ(last["usage"]["total_tokens"], last["usage"]["prompt_tokens"].get<int>() + 3);
  EXPECT_TRUE(last["usage"]["prompt_tokens_details"]["cached_tokens"].is_number());
  EXPECT_EQ(last["usage"]["completion_tokens_details"]["reasoning_tokens"], 0);
  EXPECT_NE(r.body.find("data: [DONE]"), std::string::npos);
  EXPECT_EQ(server.stop(SIGTERM), 0) << server.log();
}

// tool_stream: a forced call's arguments arrive in pieces as they are generated (the first
// with the call's id and name, the rest only arguments) and add up to the whole call, which
// without tool_stream comes in one chunk.
TEST(Zhipu, ToolStreamSendsArgumentsAsTheyAreGenerated) {
  ServerProcess server(serve_tiny());
  ASSERT_GT(server.port(), 0) << server.log();
  Json body = {{"model", "tiny"}, {"max_tokens", 64}, {"stream", true}, {"temperature", 0},
               {"messages", {{{"role", "user"}, {"content", "weather?"}}}},
               {"tools", {{{"type", "function"},
                           {"function", {{"name", "get_weather"},
                                         {"parameters", {{"type", "object"},
                                                         {"properties", {{"city", {{"type", "string"}}}}},
                                                         {"required", {"city"}}}}}}}}},
               {"tool_choice", {{"type", "function"}, {"function", {{"name", "get_weather"}}}}}};
  const std::vector<Json> whole = streamed_tool_calls(server.port(), body);
  ASSERT_EQ(whole.size(), 1u);
  const Json args = Json::parse(whole[0]["function"]["arguments"].get<std::string>());
  EXPECT_TRUE(args["city"].is_string());

  body["tool_stream"] = true;
  const std::vector<Json> pieces = streamed_tool_calls(server.port(), body);
  ASSERT_GT(pieces.size(), 2u);
  EXPECT_EQ(Json::parse(joined_arguments(pieces, "get_weather")), args);  // greedy: the same call

  // Not streamed, tool_stream changes nothing: the call is whole in the message.
  body["stream"] = false;
  const HttpReply r = http(server.port(), "POST", "/api/paas/v4/chat/completions", body.dump());
  ASSERT_EQ(r.status, 200) << r.body;
  const Json message = Json::parse(r.body)["choices"][0]["message"];
  EXPECT_EQ(Json::parse(message["tool_calls"][0]["function"]["arguments"].get<std::string>()), args);
  EXPECT_EQ(server.stop(SIGTERM), 0) << server.log();
}

// A generation the server broke off ends with Zhipu's finish_reason, in chunks and responses.
// A call in the model's own format (GLM's <tool_call> tags, from a model scripted to make one):
// with tool_stream its arguments come in pieces as the tokens are generated, adding up to the
// message's arguments byte for byte; without, the call comes whole in one chunk.
TEST(Zhipu, ToolStreamSendsModelFormatCallsInPieces) {
  ServerProcess server(serve_tiny(serve_glm_tool_call()));
  ASSERT_GT(server.port(), 0) << server.log();
  Json body = {{"model", "glm"}, {"max_tokens", 64}, {"stream", true}, {"do_sample", false},
               {"messages", {{{"role", "user"}, {"content", "weather?"}}}},
               {"tools", {{{"type", "function"},
                           {"function", {{"name", "get_weather"},
                                         {"parameters", {{"type", "object"},
                                                         {"properties", {{"city", {{"type", "string"}}}, {"days", {{"type", "integer"}}}}}}}}}}}}};
  const std::string arguments = R"({"city":"San Francisco by the bay","days":14})";
  body["stream"] = false;
  const HttpReply r = http(server.port(), "POST", "/api/paas/v4/chat/completions", body.dump());
  ASSERT_EQ(r.status, 200) << r.body;
  const Json choice = Json::parse(r.body)["choices"][0];
  EXPECT_EQ(choice["finish_reason"], "tool_calls");
  EXPECT_EQ(choice["message"]["tool_calls"][0]["function"]["arguments"], arguments);

  body["stream"] = true;
  const std::vector<Json> whole = streamed_tool_calls(server.port(), body);
  ASSERT_EQ(whole.size(), 1u);
  EXPECT_EQ(whole[0]["function"]["arguments"], arguments);

  body["tool_stream"] = true;
  const std::vector<Json> pieces = streamed_tool_calls(server.port(), body);
  EXPECT_GT(pieces.size(), 5u);  // the city grows token by token
  EXPECT_EQ(joined_arguments(pieces, "get_weather"), arguments);
  EXPECT_EQ(server.stop(SIGTERM), 0) << server.log();
}

TEST(Zhipu, FailedGenerationFinishesWithNetworkError) {
  api::GenerationRequest req;
  req.request_id = "req-123456";
  api::GenerationResponse resp;
  resp.id = "chatcmpl-1";
  const nlohmann::ordered_json chunk = {{"id", "chatcmpl-1"},
                                        {"choices", {{{"index", 0}, {"delta", Json::object()}, {"finish_reason", "error"}},
                                                     {{"index", 1}, {"delta", Json::object()}, {"finish_reason", "stop"}},
                                                     {{"index", 2}, {"delta", Json::object()}, {"finish_reason", nullptr}}}}};
  const nlohmann::ordered_json out = api::zhipu::from_openai(chunk, req, resp);
  EXPECT_EQ(out["request_id"], "req-123456");
  EXPECT_EQ(out["choices"][0]["finish_reason"], "network_error");
  EXPECT_EQ(out["choices"][1]["finish_reason"], "stop");
  EXPECT_TRUE(out["choices"][2]["finish_reason"].is_null());
}

TEST(Zhipu, ErrorsCarryBusinessCodes) {
  ServerProcess server(serve_tiny());
  ASSERT_GT(server.port(), 0) << server.log();
  auto error = [&](const Json& body, int status) {
    const HttpReply r = http(server.port(), "POST", "/api/paas/v4/chat/completions", body.dump());
    EXPECT_EQ(r.status, status) << r.body;
    const Json j = Json::parse(r.body, nullptr, false);
    EXPECT_TRUE(j.is_object() && j.contains("error") && j["error"].size() == 2) << r.body;
    return j.is_object() && j.contains("error") ? j["error"] : Json::object();
  };
  const Json hi = {{{"role", "user"}, {"content", "hi"}}};
  EXPECT_EQ(error({{"model", "nope"}, {"messages", hi}}, 404)["code"], "1211");
  const Json short_id = error({{"model", "tiny"}, {"request_id", "abc"}, {"messages", hi}}, 400);
  EXPECT_EQ(short_id["code"], "1214");  // "invalid ${field} parameter"
  EXPECT_NE(short_id["message"].get<std::string>().find("request_id"), std::string::npos);
  EXPECT_EQ(error({{"model", "tiny"}, {"request_id", std::string(65, 'r')}, {"messages", hi}}, 400)["code"], "1214");
  EXPECT_EQ(error({{"model", "tiny"}, {"user_id", "u1"}, {"messages", hi}}, 400)["code"], "1214");
  EXPECT_EQ(error({{"model", "tiny"}, {"user_id", std::string(129, 'u')}, {"messages", hi}}, 400)["code"], "1214");
  EXPECT_EQ(error({{"model", "tiny"}, {"user_id", 12345678}, {"messages", hi}}, 400)["code"], "1214");
  EXPECT_EQ(error({{"model", "tiny"}, {"thinking", {{"type", "maybe"}}}, {"messages", hi}}, 400)["code"], "1210");
  EXPECT_EQ(error({{"model", "tiny"}, {"do_sample", "no"}, {"messages", hi}}, 400)["code"], "1210");
  EXPECT_EQ(server.stop(SIGTERM), 0) << server.log();
}

}  // namespace
}  // namespace tokenmill::testing
