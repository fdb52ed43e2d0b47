// Claude Code (@anthropic-ai/claude-code, the native CLI the build installs from npm) against
// the metered server: `claude -p` with ANTHROPIC_BASE_URL pointing at tokenmill and a tokenmill
// key as ANTHROPIC_AUTH_TOKEN completes without a protocol error, every request it sends is
// answered without an error, and its usage lands in the ledger.
//
// Claude Code sends its whole system prompt and tool list (tens of thousands of tokens), so the
// model is a tiny Qwen2 with the real Qwen2 BPE vocabulary (a quarter of the tokens the byte
// vocabulary would need) and the Qwen2.5 template, which renders tools; the context is raised to
// hold the prompt, and --max-output-tokens caps the 32000 tokens Claude Code asks for. A random
// model almost never writes its end-of-turn token, and Claude Code treats an answer cut at
// max_tokens as unfinished (it asks the model to resume, three times, then fails), so the
// served model's turn also ends at common text (--stop): the answer ends as end_turn.
// Needs TOKENMILL_LLAMA_TREE (vocabulary and template); skips without it or without the CLI.
#include <gtest/gtest.h>

#include <unistd.h>

#include <filesystem>
#include <regex>

#include <nlohmann/json.hpp>

#include "server_env.h"
#include "store/open_store.h"

namespace tokenmill::testing {
namespace {

using Json = nlohmann::json;

std::string claude_binary() {
  const char* given = std::getenv("TOKENMILL_CLAUDE_CODE_MODULES");
  const std::string bin = std::string(given ? given : TOKENMILL_CLAUDE_CODE_MODULES) + "/node_modules/.bin/claude";
  return std::filesystem::exists(bin) ? bin : "";
}

std::string quoted(const std::string& s) { return "'" + s + "'"; }

TEST(ClaudeCode, PrintModeCompletesAgainstTheServer) {
  const std::string claude = claude_binary();
  if (claude.empty())
    GTEST_SKIP() << "@anthropic-ai/claude-code is not installed (the build installs it into "
                 << TOKENMILL_CLAUDE_CODE_MODULES << " when npm can reach its registry)";
  const char* tree = std::getenv("TOKENMILL_LLAMA_TREE");
  if (!tree) GTEST_SKIP() << "TOKENMILL_LLAMA_TREE is not set (the Qwen2 vocabulary and template come from it)";

  const auto dir = std::filesystem::temp_directory_path() / ("tokenmill-claude-code-" + std::to_string(::getpid()));
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir / "home");
  const std::string model = (dir / "qwen2-tiny.gguf").string();
  const std::string db = "sqlite:" + (dir / "ledger.db").string();
  int code = -1;
  std::string out = run_capture(std::string(TOKENMILL_BINARY) + " make-model --arch qwen2 --preset tiny --quant F32 --vocab " +
                                    std::string(tree) + "/models/ggml-vocab-qwen2.gguf -o " + model,
                                code);
  ASSERT_EQ(code, 0) << out;
  auto admin = [&](const std::string& args) {
    const std::string reply = run_capture(std::string(TOKENMILL_BINARY) + " admin --db " + db + " --json " + args, code);
    EXPECT_EQ(code, 0) << args << ": " << reply;
    return Json::parse(reply, nullptr, false);
  };
  admin("prices set --model qwen --input 1 --output 2");
  admin("tenants create coder");
  admin("balance top-up --tenant coder --amount 100");
  const std::string key = admin("keys create --tenant coder")["key"];

  ServerProcess server({"--model", "qwen=" + model, "--chat-template",
                        "qwen=" + std::string(tree) + "/models/templates/Qwen-Qwen2.5-7B-Instruct.jinja", "--db", db,
                        "--model-alias", "claude-*=qwen", "--threads", "2", "--context", "65536", "--kv-budget",
                        "131072tokens", "--max-output-tokens", "16", "--stop", "qwen=a", "--stop", "qwen=e", "--stop",
                        "qwen=o", "--stop", "qwen= "});
  ASSERT_GT(server.port(), 0) << server.log();

  // Offline and self-contained: a fresh HOME, no telemetry, update checks or other traffic.
  const std::string env = "env -i PATH=/usr/bin:/bin HOME=" + quoted((dir / "home").string()) +
                          " ANTHROPIC_BASE_URL=" + server.url() + " ANTHROPIC_AUTH_TOKEN=" + quoted(key) +
                          " ANTHROPIC_MODEL=claude-sonnet-4-5 ANTHROPIC_SMALL_FAST_MODEL=claude-haiku-4-5"
                          " CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC=1 DISABLE_TELEMETRY=1 DISABLE_AUTOUPDATER=1"
                          " DISABLE_ERROR_REPORTING=1 API_TIMEOUT_MS=600000 ";
  out = run_capture("cd " + quoted((dir / "home").string()) + " && " + env + "timeout 600 " + claude +
                        " -p hello --max-turns 1 --output-format json",
                    code);
  const std::string metrics = http(server.port(), "GET", "/metrics").body;
  std::string requests;  // what Claude Code asked for, by endpoint and status
  const std::regex line(R"re(tokenmill_requests_total\{[^}]*endpoint="([^"]*)",status="(\d+)"\} (\d+))re");
  for (std::sregex_iterator it(metrics.begin(), metrics.end(), line), end; it != end; ++it) {
    requests += (*it)[1].str() + " " + (*it)[2].str() + " x" + (*it)[3].str() + "\n";
    EXPECT_EQ((*it)[2].str(), "200") << "Claude Code got an error from " << (*it)[1].str();
  }
  std::cout << "Claude Code's requests:\n" << requests;
  ASSERT_EQ(code, 0) << out << "\n" << server.log();
  const size_t brace = out.find('{');
  ASSERT_NE(brace, std::string::npos) << out;
  const Json result = Json::parse(out.substr(brace), nullptr, false);
  ASSERT_TRUE(result.is_object()) << out;
  EXPECT_EQ(result["type"], "result") << out;
  EXPECT_EQ(result["is_error"], false) << out;
  EXPECT_NE(requests.find("/v1/messages 200"), std::string::npos) << requests;

  // Its usage is in the ledger, one record per message request.
  EXPECT_EQ(server.stop(SIGTERM), 0) << server.log();
  {
    const auto store = store::open_store(db);
    maas::UsageFilter filter;
    filter.tenant_id = store->find_tenant("coder")->id;
    const auto records = store->ledger(filter);
    EXPECT_FALSE(records.empty());
    for (const maas::LedgerRecord& r : records) {
      EXPECT_GT(r.tokens.prompt, 1000) << "Claude Code's prompt is long";
      EXPECT_LE(r.tokens.output, 16);
    }
  }
  std::error_code ignored;
  std::filesystem::remove_all(dir, ignored);
}

}  // namespace
}  // namespace tokenmill::testing
