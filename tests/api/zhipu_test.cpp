// Zhipu BigModel v4 over raw HTTP against the real server: GLM's request fields, request_id
// in responses and stream chunks, usage with cached_tokens, reasoning_content, the coding
// plan's path, and errors in {"error": {"code": "1xxx", "message"}} form.
#include <gtest/gtest.h>

#include <string>

#include <nlohmann/json.hpp>

#include "server_env.h"

namespace tokenmill::testing {
namespace {

using Json = nlohmann::json;

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
  std::vector<Json> chunks;
  for (size_t at = r.body.find("data: "); at != std::string::npos; at = r.body.find("data: ", at + 1)) {
    const std::string data = r.body.substr(at + 6, r.body.find("\n\n", at) - at - 6);
    if (data != "[DONE]") chunks.push_back(Json::parse(data));
  }
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
