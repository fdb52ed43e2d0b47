// `tokenmill chat-template render|parse` end to end: exact bytes on stdout, the model's own
// template and BOS/EOS from a GGUF, the --chat-template override, and clear errors.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include <nlohmann/json.hpp>

#include "cli_helpers.h"
#include "gguf/writer.h"

namespace tokenmill::testing {
namespace {

namespace fs = std::filesystem;

class ChatTemplateCli : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("tokenmill-chat-cli-" + std::to_string(::getpid()));
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }

  std::string write(const std::string& name, const std::string& text) {
    const fs::path path = dir_ / name;
    std::ofstream(path, std::ios::binary) << text;
    return path.string();
  }

  // A tensor-less GGUF with a vocabulary and, optionally, a chat template.
  std::string model(const std::string& name, const std::string* chat_template) {
    gguf::Writer w;
    w.set("general.architecture", gguf::Value("llama"));
    w.set("tokenizer.ggml.tokens", gguf::make_array(gguf::ValueType::STRING, std::vector<std::string>{"<unk>", "<|bos|>", "<|eos|>"}));
    w.set("tokenizer.ggml.bos_token_id", gguf::Value(uint32_t{1}));
    w.set("tokenizer.ggml.eos_token_id", gguf::Value(uint32_t{2}));
    if (chat_template) w.set("tokenizer.chat_template", gguf::Value(*chat_template));
    const std::string path = (dir_ / name).string();
    w.write(path, [](size_t, uint8_t*) {});
    return path;
  }

  fs::path dir_;
};

const char* kTemplate =
    "{{ bos_token }}{% for m in messages %}<{{ m.role }}>{{ m.content }}{{ eos_token }}\n{% endfor %}"
    "{% if add_generation_prompt %}<assistant>{% endif %}";
const char* kConversation =
    R"({"messages": [{"role": "user", "content": "Hi \"there\" é"}], "add_generation_prompt": true, "bos_token": "B", "eos_token": "E"})";

TEST_F(ChatTemplateCli, RenderPrintsExactlyThePrompt) {
  const std::string tmpl = write("t.jinja", kTemplate);
  const std::string conv = write("conv.json", kConversation);
  const auto r = run_tokenmill("chat-template render --template '" + tmpl + "' --input '" + conv + "'");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "B<user>Hi \"there\" éE\n<assistant>");
  EXPECT_EQ(r.err, "");
}

TEST_F(ChatTemplateCli, RenderUsesTheModelsTemplateAndSpecialTokens) {
  const std::string tmpl = kTemplate;
  const std::string with = model("with.gguf", &tmpl);
  const std::string conv = write("conv.json", R"({"messages": [{"role": "user", "content": "x"}]})");
  auto r = run_tokenmill("chat-template render --model '" + with + "' --input '" + conv + "'");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "<|bos|><user>x<|eos|>\n");

  const std::string without = model("without.gguf", nullptr);
  r = run_tokenmill("chat-template render --model '" + without + "' --input '" + conv + "'");
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("has no chat template"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("--chat-template FILE"), std::string::npos) << r.err;

  const std::string other = write("other.jinja", "[{{ bos_token }}{{ messages[0].content }}]");
  r = run_tokenmill("chat-template render --model '" + without + "' --chat-template '" + other + "' --input '" + conv + "'");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "[<|bos|>x]");
}

TEST_F(ChatTemplateCli, RenderErrorsAreClear) {
  const std::string conv = write("conv.json", kConversation);
  const std::string broken = write("broken.jinja", "ok\n{% for m in messages %}{{ m.role }");
  auto r = run_tokenmill("chat-template render --template '" + broken + "' --input '" + conv + "'");
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("chat template line 2"), std::string::npos) << r.err;

  const std::string raising = write("raise.jinja", "{{ raise_exception('System role not supported') }}");
  r = run_tokenmill("chat-template render --template '" + raising + "' --input '" + conv + "'");
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("System role not supported"), std::string::npos) << r.err;

  const std::string bad_json = write("bad.json", "{\"messages\": [");
  r = run_tokenmill("chat-template render --template '" + broken + "' --input '" + bad_json + "'");
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("is not valid JSON"), std::string::npos) << r.err;
}

TEST_F(ChatTemplateCli, RenderDateIsFixedWithNow) {
  const std::string tmpl = write("date.jinja", "{{ strftime_now('%d %B %Y') }}");
  const std::string conv = write("conv.json", "{}");
  const auto r = run_tokenmill("chat-template render --template '" + tmpl + "' --input '" + conv + "' --now 2024-07-26");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "26 July 2024");
}

TEST_F(ChatTemplateCli, ParsePrintsTheAssistantMessage) {
  const std::string output = write("out.txt",
      "Need data.</think>Checking.<tool_call>get_weather<arg_key>city</arg_key><arg_value>Paris</arg_value>"
      "<arg_key>days</arg_key><arg_value>2</arg_value></tool_call>");
  const std::string tools = write("tools.json", R"([{"type": "function", "function": {"name": "get_weather",
      "parameters": {"type": "object", "properties": {"city": {"type": "string"}, "days": {"type": "integer"}}}}}])");
  const auto r = run_tokenmill("chat-template parse --format glm47 --thinking-open --input '" + output + "' --tools '" + tools + "'");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const auto j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j["content"], "Checking.");
  EXPECT_EQ(j["reasoning_content"], "Need data.");
  ASSERT_EQ(j["tool_calls"].size(), 1u);
  EXPECT_EQ(j["tool_calls"][0]["function"]["name"], "get_weather");
  EXPECT_EQ(nlohmann::json::parse(j["tool_calls"][0]["function"]["arguments"].get<std::string>()),
            nlohmann::json::parse(R"({"city": "Paris", "days": 2})"));

  const auto bad = run_tokenmill("chat-template parse --format nope --input '" + output + "'");
  EXPECT_EQ(bad.exit_code, 1);
  EXPECT_NE(bad.err.find("unknown chat output format"), std::string::npos) << bad.err;
}

}  // namespace
}  // namespace tokenmill::testing
