// The real server on 127.0.0.1: routes, OpenAI-shaped errors with their status codes, SSE
// framing, graceful shutdown on SIGTERM; then the official openai npm SDK (openai_sdk.test.mjs)
// and @anthropic-ai/sdk (anthropic_sdk.test.mjs), and a 32-client streaming load (load_test.mjs)
// against it, when node and the SDKs are there.
#include <gtest/gtest.h>

#include <array>
#include <cstdio>
#include <filesystem>
#include <string>

#include <nlohmann/json.hpp>

#include "scripted_model.h"
#include "server_env.h"

namespace tokenmill::testing {
namespace {

using Json = nlohmann::json;

Json error_of(const HttpReply& r) {
  const Json j = Json::parse(r.body, nullptr, false);
  EXPECT_TRUE(j.is_object() && j.contains("error")) << r.body;
  return j.is_object() && j.contains("error") ? j["error"] : Json::object();
}

const std::string kChat = R"({"model":"tiny","messages":[{"role":"user","content":"hi"}],"max_tokens":4,"ignore_eos":true})";

TEST(Server, HealthModelsMetricsAndAChat) {
  // A second model in the same process, served for completions only (it has no template).
  const std::string qwen = synthetic_model(model::Arch::Qwen2, model::Preset::Tiny, "Q8_0");
  ServerProcess server(serve_tiny({"--model", "qwen=" + qwen}));
  ASSERT_GT(server.port(), 0) << server.log();
  const HttpReply health = http(server.port(), "GET", "/health");
  EXPECT_EQ(health.status, 200);
  EXPECT_EQ(Json::parse(health.body)["status"], "ok");
  const Json models = Json::parse(http(server.port(), "GET", "/v1/models").body);
  ASSERT_EQ(models["data"].size(), 2u);
  EXPECT_EQ(models["data"][0]["id"], "tiny");
  EXPECT_EQ(models["data"][1]["id"], "qwen");
  const HttpReply other = http(server.port(), "POST", "/v1/completions", R"({"model":"qwen","prompt":"x","max_tokens":3,"ignore_eos":true})");
  ASSERT_EQ(other.status, 200) << other.body;
  EXPECT_EQ(Json::parse(other.body)["usage"]["completion_tokens"], 3);
  const HttpReply no_template = http(server.port(), "POST", "/v1/chat/completions", R"({"model":"qwen","messages":[{"role":"user","content":"x"}]})");
  EXPECT_EQ(no_template.status, 400);
  EXPECT_EQ(error_of(no_template)["param"], "model");
  const HttpReply chat = http(server.port(), "POST", "/v1/chat/completions", kChat);
  ASSERT_EQ(chat.status, 200) << chat.body;
  const Json r = Json::parse(chat.body);
  EXPECT_EQ(r["object"], "chat.completion");
  EXPECT_EQ(r["usage"]["completion_tokens"], 4);
  const HttpReply metrics = http(server.port(), "GET", "/metrics");
  EXPECT_EQ(metrics.status, 200);
  for (const char* family : {"tokenmill_requests_total{model=\"tiny\",endpoint=\"/v1/chat/completions\",status=\"200\"} 1",
                             "tokenmill_completion_tokens_total{model=\"tiny\"} 4", "tokenmill_queue_depth{model=\"tiny\"} 0",
                             "tokenmill_kv_blocks_total{model=\"tiny\"}", "tokenmill_prefix_cache_hit_tokens_total",
                             "tokenmill_time_to_first_token_seconds_bucket{model=\"tiny\",le=\"+Inf\"} 1"})
    EXPECT_NE(metrics.body.find(family), std::string::npos) << family << "\n" << metrics.body;
}

// Serve options that shape every answer of a model: --max-output-tokens caps what a request
// asks for (finish_reason length), --stop ends the answer as its end-of-turn token would
// (finish_reason stop; Anthropic's end_turn, with no stop_sequence, which names only the
// request's own).
TEST(Server, ServedModelOutputCapAndStopText) {
  const std::string greedy = R"({"model":"tiny","messages":[{"role":"user","content":"hi"}],"max_tokens":24,"temperature":0,"chat_template_kwargs":{"enable_thinking":false}})";
  const std::string message = R"({"model":"tiny","max_tokens":32000,"messages":[{"role":"user","content":"hi"}]})";
  auto post = [&](ServerProcess& server, const std::string& path, const std::string& body) {
    const HttpReply r = http(server.port(), "POST", path, body);
    EXPECT_EQ(r.status, 200) << r.body;
    return Json::parse(r.body, nullptr, false);
  };
  auto chat = [&](ServerProcess& server, const std::string& body) { return post(server, "/v1/chat/completions", body); };
  std::string text;
  {
    ServerProcess plain(serve_tiny());
    ASSERT_GT(plain.port(), 0) << plain.log();
    text = chat(plain, greedy)["choices"][0]["message"]["content"];
  }
  {
    ServerProcess capped(serve_tiny({"--max-output-tokens", "5"}));
    ASSERT_GT(capped.port(), 0) << capped.log();
    const Json c = chat(capped, greedy);
    EXPECT_EQ(c["usage"]["completion_tokens"], 5);
    EXPECT_EQ(c["choices"][0]["finish_reason"], "length");
    EXPECT_EQ(text.rfind(c["choices"][0]["message"]["content"].get<std::string>(), 0), 0u) << "the same answer, cut";
    const Json m = post(capped, "/v1/messages", message);
    EXPECT_EQ(m["stop_reason"], "max_tokens");
    EXPECT_EQ(m["usage"]["output_tokens"], 5);
  }
  size_t at = 1;
  while (at < text.size() && !(text[at] > ' ' && text[at] < 127)) ++at;
  ASSERT_LT(at, text.size()) << "no printable character to stop on in " << text;
  const std::string stop(1, text[at]);
  ServerProcess server(serve_tiny({"--stop", "tiny=" + stop}));
  ASSERT_GT(server.port(), 0) << server.log();
  const Json s = chat(server, greedy);
  EXPECT_EQ(s["choices"][0]["finish_reason"], "stop");
  EXPECT_EQ(s["choices"][0]["message"]["content"], text.substr(0, text.find(stop)));
  const Json m = post(server, "/v1/messages", R"({"model":"tiny","max_tokens":100,"messages":[{"role":"user","content":"hi"}]})");
  const std::string said = m["content"][0]["text"];
  EXPECT_EQ(said.find(stop), std::string::npos) << m.dump();
  if (m["stop_reason"] != "max_tokens") {
    EXPECT_EQ(m["stop_reason"], "end_turn") << m.dump();  // not stop_sequence
  }
  EXPECT_TRUE(m["stop_sequence"].is_null());
  EXPECT_EQ(server.stop(SIGTERM), 0) << server.log();
  int code = 0;
  const std::string refused = run_capture(std::string(TOKENMILL_BINARY) + " serve --model tiny=" + tiny_model() +
                                              " --listen 127.0.0.1:0 --stop other=x",
                                          code);
  EXPECT_NE(code, 0);
  EXPECT_NE(refused.find("--stop names model 'other'"), std::string::npos) << refused;
}

TEST(Server, BadRequestsGetOpenAiErrorsAndStatusCodes) {
  ServerProcess server(serve_tiny({"--max-body", "4096"}));
  ASSERT_GT(server.port(), 0) << server.log();
  const int port = server.port();
  struct Case {
    std::string method, path, body;
    int status;
    std::string param, code;
  };
  const std::vector<Case> cases = {
      {"POST", "/v1/chat/completions", "{\"model\": ", 400, "", ""},
      {"POST", "/v1/chat/completions", "[1]", 400, "", ""},
      {"POST", "/v1/chat/completions", R"({"model":"nope","messages":[{"role":"user","content":"x"}]})", 404, "model", "model_not_found"},
      {"POST", "/v1/chat/completions", R"({"model":"tiny"})", 400, "messages", ""},
      {"POST", "/v1/chat/completions", R"({"model":"tiny","messages":[{"role":"robot","content":"x"}]})", 400, "messages[0].role", ""},
      {"POST", "/v1/chat/completions", R"({"model":"tiny","messages":[{"role":"user","content":"x"}],"top_p":0})", 400, "top_p", "invalid_value"},
      {"POST", "/v1/chat/completions", R"({"model":"tiny","messages":[{"role":"user","content":"x"}],"n":0})", 400, "n", "invalid_value"},
      {"POST", "/v1/chat/completions", R"({"model":"tiny","messages":[{"role":"user","content":"x"}],"max_tokens":"5"})", 400, "max_tokens", ""},
      {"POST", "/v1/chat/completions", R"({"model":"tiny","messages":[{"role":"user","content":"x"}],"stream_options":{}})", 400, "stream_options", ""},
      {"POST", "/v1/chat/completions", R"({"model":"tiny","messages":[{"role":"user","content":"x"}],"max_tokens":5000})", 400, "messages", "context_length_exceeded"},
      {"POST", "/v1/completions", R"({"model":"tiny","prompt":[1,2,99999]})", 400, "prompt", ""},
      {"POST", "/v1/completions", R"({"model":"tiny","prompt":"x","logprobs":9})", 400, "logprobs", "invalid_value"},
      {"POST", "/v1/chat/completions", std::string(5000, ' '), 413, "", "request_too_large"},
      {"GET", "/v1/chat/completions", "", 405, "", ""},
      {"POST", "/v1/nothing", "{}", 404, "", ""},
      {"GET", "/v1/models/nope", "", 404, "model", "model_not_found"},
  };
  for (const Case& c : cases) {
    const HttpReply r = http(port, c.method, c.path, c.body);
    EXPECT_EQ(r.status, c.status) << c.method << " " << c.path << " " << c.body.substr(0, 100) << "\n" << r.body;
    const Json e = error_of(r);
    EXPECT_TRUE(e.contains("message") && e["message"].is_string() && !e["message"].get<std::string>().empty()) << r.body;
    EXPECT_TRUE(e.contains("type") && e.contains("param") && e.contains("code")) << r.body;
    if (!c.param.empty()) {
      EXPECT_EQ(e["param"], c.param) << r.body;
    }
    if (!c.code.empty()) {
      EXPECT_EQ(e["code"], c.code) << r.body;
    }
  }
  // Still serving after all that.
  EXPECT_EQ(http(port, "POST", "/v1/chat/completions", kChat).status, 200);
}

// A stream in flight when SIGTERM arrives runs to its end; the server then exits 0. With no
// grace period, it is cancelled instead, and still ends as a well-formed stream.
TEST(Server, SigtermFinishesOrCancelsInFlightWorkAndExitsZero) {
  for (const bool grace : {true, false}) {
    ServerProcess server(serve_tiny({"--shutdown-grace", grace ? "30" : "0"}));
    ASSERT_GT(server.port(), 0) << server.log();
    Connection c(server.port());
    const std::string body = R"({"model":"tiny","prompt":"once","max_tokens":1500,"stream":true,"logprobs":0,"ignore_eos":true})";
    c.send("POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: " +
           std::to_string(body.size()) + "\r\n\r\n" + body);
    c.read_until("\"logprobs\"");  // generation has started
    EXPECT_EQ(server.stop(SIGTERM), 0) << server.log();
    const std::string all = c.read_until("data: [DONE]\n\n\r\n0\r\n\r\n");
    EXPECT_NE(all.find("Transfer-Encoding: chunked"), std::string::npos);
    EXPECT_NE(all.find("data: [DONE]\n\n\r\n0\r\n\r\n"), std::string::npos) << all.substr(all.size() > 300 ? all.size() - 300 : 0);
    EXPECT_EQ(all.find("\"finish_reason\":\"length\"") != std::string::npos, grace) << all.substr(all.size() > 600 ? all.size() - 600 : 0);
    EXPECT_FALSE(Connection(server.port()).ok());  // no longer listening
  }
}

// Runs an SDK test script under node against the tiny model (and the scripted "glm") served
// with `serve_args`.
void run_sdk_test(const std::string& modules_env, const std::string& modules, const std::string& script,
                  const std::vector<std::string>& serve_args = {}) {
  std::vector<std::string> args = serve_glm_tool_call();
  args.insert(args.end(), serve_args.begin(), serve_args.end());
  ServerProcess server(serve_tiny(args));
  ASSERT_GT(server.port(), 0) << server.log();
  int code = -1;
  const std::string out = run_capture(
      "TOKENMILL_URL=" + server.url() + " TOKENMILL_BIN=" + TOKENMILL_BINARY + " TOKENMILL_MODEL=" + tiny_model() +
          " TOKENMILL_TEMPLATE=" + kTemplate + " " + modules_env + "=" + modules + " node --test --test-reporter=spec " +
          TOKENMILL_SOURCE_DIR + "/tests/api/" + script,
      code);
  EXPECT_EQ(code, 0) << out;
  EXPECT_EQ(server.stop(SIGTERM), 0) << server.log();
}

TEST(OpenAiSdk, ChatCompletionsToolsJsonUsageErrorsCachingAndDisconnects) {
  const std::string modules = openai_modules();
  if (modules.empty()) GTEST_SKIP() << "node or the openai SDK is not installed (the build installs it into "
                                    << TOKENMILL_OPENAI_MODULES << " when npm can reach its registry)";
  run_sdk_test("OPENAI_MODULES", modules, "openai_sdk.test.mjs");
}

TEST(AnthropicSdk, MessagesStreamingToolsThinkingCountTokensAndErrors) {
  const std::string modules = anthropic_modules();
  if (modules.empty()) GTEST_SKIP() << "node or @anthropic-ai/sdk is not installed (the build installs it into "
                                    << TOKENMILL_ANTHROPIC_MODULES << " when npm can reach its registry)";
  run_sdk_test("ANTHROPIC_MODULES", modules, "anthropic_sdk.test.mjs", {"--model-alias", "claude-*=tiny"});
}

TEST(OpenAiSdk, ThirtyTwoConcurrentStreamsAllComplete) {
  const std::string modules = openai_modules();
  if (modules.empty()) GTEST_SKIP() << "node or the openai SDK is not installed";
  ServerProcess server(serve_tiny());
  ASSERT_GT(server.port(), 0) << server.log();
  int code = -1;
  const std::string out = run_capture("OPENAI_MODULES=" + modules + " node " + TOKENMILL_SOURCE_DIR +
                                          "/tests/api/load_test.mjs " + server.url() + " tiny 32 64 2",
                                      code);
  ASSERT_EQ(code, 0) << out;
  const Json results = Json::parse(out.substr(out.find('[')), nullptr, false);
  ASSERT_TRUE(results.is_array() && results.size() == 1) << out;
  EXPECT_EQ(results[0]["requests"], 64);
  EXPECT_EQ(results[0]["tokens"], 64 * 64);  // ignore_eos: every stream runs to max_tokens
  EXPECT_EQ(server.stop(SIGTERM), 0) << server.log();
}

}  // namespace
}  // namespace tokenmill::testing
