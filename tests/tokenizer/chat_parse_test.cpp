// Output parsers: every format parsed whole, streamed one character at a time and in random
// chunks; the streamed deltas must add up to the whole-text result — each tool call's argument
// fragments to exactly its arguments — and no delta may carry a partial tag as content or
// reasoning.
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <set>

#include "common/random.h"
#include "tokenizer/chat_parse.h"
#include "tokenizer/chat_template.h"
#include "tokenizer/utf8.h"

namespace tokenmill {
namespace {

using nlohmann::ordered_json;

const ordered_json kTools = ordered_json::parse(R"([
  {"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object", "properties": {
    "city": {"type": "string"}, "zip": {"type": "string"}, "days": {"type": "integer"},
    "hourly": {"type": "boolean"}, "extra": {"type": "object"}}}}},
  {"type": "function", "function": {"name": "get_time", "parameters": {"type": "object", "properties": {}}}}
])");

ChatParseOptions options(ChatFormat format, bool reasoning = false, bool thinking_open = false) {
  ChatParseOptions o;
  o.format = format;
  o.reasoning = reasoning;
  o.thinking_open = thinking_open;
  o.tools = kTools;
  return o;
}

ChatMessage message(std::string content, std::string reasoning = "", std::vector<ToolCall> calls = {}) {
  return ChatMessage{std::move(content), std::move(reasoning), std::move(calls)};
}

// Streams `text` in the given pieces and checks each delta; returns the accumulated message.
ChatMessage stream(const std::string& text, const std::vector<size_t>& cuts, const ChatParseOptions& o,
                   const ChatMessage& whole) {
  ChatStreamParser parser(o);
  ChatMessage sum;
  std::set<size_t> closed;
  const auto add = [&](const ChatDelta& d) {
    sum.content += d.content;
    sum.reasoning_content += d.reasoning_content;
    for (const ToolCallDelta& piece : d.tool_calls) {
      // A call opens once, in order, and gets no pieces after it closed.
      EXPECT_EQ(piece.opens, piece.index == sum.tool_calls.size()) << "call " << piece.index;
      if (piece.opens) sum.tool_calls.push_back({piece.name, ""});
      ASSERT_LT(piece.index, sum.tool_calls.size());
      EXPECT_EQ(closed.count(piece.index), 0u) << "a piece after the call closed";
      if (piece.closes) closed.insert(piece.index);
      sum.tool_calls[piece.index].arguments += piece.arguments;
    }
    for (size_t i = 0; i < sum.tool_calls.size(); ++i) {  // nothing emitted is taken back
      ASSERT_LT(i, whole.tool_calls.size()) << "a call the whole parse does not have";
      EXPECT_EQ(sum.tool_calls[i].name, whole.tool_calls[i].name);
      EXPECT_EQ(whole.tool_calls[i].arguments.compare(0, sum.tool_calls[i].arguments.size(), sum.tool_calls[i].arguments), 0)
          << "arguments so far: " << sum.tool_calls[i].arguments;
    }
    // What was emitted so far is always a prefix of the final answer: nothing is taken back,
    // so no half-received tag ever reached the client as text.
    EXPECT_EQ(whole.content.compare(0, sum.content.size(), sum.content), 0) << "content so far: " << sum.content;
    EXPECT_EQ(whole.reasoning_content.compare(0, sum.reasoning_content.size(), sum.reasoning_content), 0)
        << "reasoning so far: " << sum.reasoning_content;
    EXPECT_EQ(parser.message(), sum);
  };
  size_t from = 0;
  for (size_t cut : cuts) {
    add(parser.feed(std::string_view(text).substr(from, cut - from)));
    from = cut;
  }
  add(parser.feed(std::string_view(text).substr(from)));
  add(parser.finish());
  EXPECT_EQ(closed.size(), sum.tool_calls.size()) << "every call closes";
  return sum;
}

// The whole-text result must be `expected`, and so must every way of streaming it.
void check(const std::string& text, const ChatParseOptions& o, const ChatMessage& expected) {
  const ChatMessage whole = parse_chat_output(text, o);
  EXPECT_EQ(whole.to_json().dump(), expected.to_json().dump());
  std::vector<size_t> every_char;
  for (size_t i = 1; i < text.size(); ++i) every_char.push_back(i);
  EXPECT_EQ(stream(text, every_char, o, whole), whole) << "streamed one character at a time";
  Rng rng(text.size());
  for (int trial = 0; trial < 20; ++trial) {
    std::vector<size_t> cuts;
    for (size_t at = 1 + rng.next_u64() % 7; at < text.size(); at += 1 + rng.next_u64() % 9) cuts.push_back(at);
    EXPECT_EQ(stream(text, cuts, o, whole), whole) << "streamed in random chunks, trial " << trial;
  }
}

TEST(ChatParse, PlainTextIsContent) {
  check("Hello <b>world</b>, 1 < 2 and <tool is not a tag", options(ChatFormat::Plain), message("Hello <b>world</b>, 1 < 2 and <tool is not a tag"));
}

TEST(ChatParse, ReasoningBlock) {
  check("<think>\nLet me think.\n</think>\n\nThe answer is 4.", options(ChatFormat::Plain, true),
        message("The answer is 4.", "Let me think."));
  // Without reasoning enabled, <think> is ordinary text.
  check("<think>x</think>y", options(ChatFormat::Plain), message("<think>x</think>y"));
}

TEST(ChatParse, GenerationPromptAlreadyOpenedThink) {
  check("The user wants 4.\n</think>\n4", options(ChatFormat::Plain, true, true), message("4", "The user wants 4."));
  // A reply cut off before </think> is all reasoning.
  check("Still thinking about it", options(ChatFormat::Plain, true, true), message("", "Still thinking about it"));
}

TEST(ChatParse, Glm45ToolCallTypedBySchema) {
  const std::string text =
      "I will check.\n<tool_call>get_weather\n<arg_key>city</arg_key>\n<arg_value>New York</arg_value>\n"
      "<arg_key>zip</arg_key>\n<arg_value>10001</arg_value>\n<arg_key>days</arg_key>\n<arg_value>3</arg_value>\n"
      "<arg_key>hourly</arg_key>\n<arg_value>true</arg_value>\n<arg_key>extra</arg_key>\n"
      "<arg_value>{\"units\": \"metric\"}</arg_value>\n</tool_call>";
  check(text, options(ChatFormat::Glm45, true),
        message("I will check.", "",
                {{"get_weather", R"({"city":"New York","zip":"10001","days":3,"hourly":true,"extra":{"units":"metric"}})"}}));
}

TEST(ChatParse, Glm47CompactFormAndZeroArgumentCalls) {
  const std::string text =
      "Checking both.</think><tool_call>get_weather<arg_key>city</arg_key><arg_value>Rome</arg_value></tool_call>"
      "<tool_call>get_time</tool_call>";
  check(text, options(ChatFormat::Glm47, true, true),
        message("", "Checking both.", {{"get_weather", R"({"city":"Rome"})"}, {"get_time", "{}"}}));
}

TEST(ChatParse, ToolCallBeforeClosingThink) {
  // GLM models sometimes call a tool inside the reasoning block; the call is still a call and
  // the reasoning around it stays reasoning.
  const std::string text =
      "<think>I need the weather.<tool_call>get_weather<arg_key>city</arg_key><arg_value>Oslo</arg_value>"
      "</tool_call>Then summarise.</think>Here it is.";
  check(text, options(ChatFormat::Glm47, true),
        message("Here it is.", "I need the weather.Then summarise.", {{"get_weather", R"({"city":"Oslo"})"}}));
}

TEST(ChatParse, UnknownToolValuesAreJsonWhenTheyParse) {
  check("<tool_call>lookup<arg_key>n</arg_key><arg_value>42</arg_value><arg_key>q</arg_key><arg_value>plain text</arg_value>"
        "<arg_key>o</arg_key><arg_value>{\"a\": [1, 2]}</arg_value></tool_call>",
        options(ChatFormat::Glm47), message("", "", {{"lookup", R"({"n":42,"q":"plain text","o":{"a":[1,2]}})"}}));
}

TEST(ChatParse, MalformedOrUnclosedCallsStayText) {
  check("<tool_call><arg_key>k</arg_key><arg_value>v</arg_value></tool_call>", options(ChatFormat::Glm45),
        message("<tool_call><arg_key>k</arg_key><arg_value>v</arg_value></tool_call>"));
  check("Calling <tool_call>get_time", options(ChatFormat::Glm45), message("Calling <tool_call>get_time"));
  check("ends with a partial tag <tool_ca", options(ChatFormat::Glm45), message("ends with a partial tag <tool_ca"));
}

TEST(ChatParse, HermesJsonToolCalls) {
  const std::string text =
      "<think>\nNeed two calls.\n</think>\n\n<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Paris\"}}\n"
      "</tool_call>\n<tool_call>\n{\"name\": \"get_time\", \"arguments\": {}}\n</tool_call>";
  check(text, options(ChatFormat::Hermes, true),
        message("", "Need two calls.", {{"get_weather", R"({"city":"Paris"})"}, {"get_time", "{}"}}));
  check("<tool_call>\n{\"name\": \"get_weather\", \"arguments\": \"{\\\"city\\\": \\\"Lima\\\"}\"}\n</tool_call>",
        options(ChatFormat::Hermes), message("", "", {{"get_weather", R"({"city":"Lima"})"}}));
  check("<tool_call>not json</tool_call>", options(ChatFormat::Hermes), message("<tool_call>not json</tool_call>"));
}

TEST(ChatParse, Llama3JsonReply) {
  check("{\"name\": \"get_weather\", \"parameters\": {\"city\": \"Paris\", \"days\": 2}}", options(ChatFormat::Llama3),
        message("", "", {{"get_weather", R"({"city":"Paris","days":2})"}}));
  check("<|python_tag|>{\"name\": \"get_time\", \"parameters\": {}}", options(ChatFormat::Llama3),
        message("", "", {{"get_time", "{}"}}));
  check("{braces} but not a call", options(ChatFormat::Llama3), message("{braces} but not a call"));
  check("It is sunny.", options(ChatFormat::Llama3), message("It is sunny."));
}

// The pieces of call 0 when `text` is streamed one character at a time.
std::vector<ToolCallDelta> pieces_of_first_call(const std::string& text, const ChatParseOptions& o) {
  ChatStreamParser parser(o);
  std::vector<ToolCallDelta> pieces;
  const auto take = [&](const ChatDelta& d) {
    for (const ToolCallDelta& p : d.tool_calls)
      if (p.index == 0) pieces.push_back(p);
  };
  for (char c : text) take(parser.feed(std::string(1, c)));
  take(parser.finish());
  return pieces;
}

TEST(ChatParse, GlmArgumentsStreamAsTheyAreGenerated) {
  const std::string text =
      "<tool_call>get_weather\n<arg_key>city</arg_key>\n<arg_value>Say \"hi\" \\ to\n日本 😀 a<b</arg_value>\n"
      "<arg_key>days</arg_key>\n<arg_value> 3 </arg_value>\n</tool_call>";
  const std::string arguments = R"({"city":"Say \"hi\" \\ to\n日本 😀 a<b","days":3})";
  check(text, options(ChatFormat::Glm45), message("", "", {{"get_weather", arguments}}));
  const std::vector<ToolCallDelta> pieces = pieces_of_first_call(text, options(ChatFormat::Glm45));
  ASSERT_GT(pieces.size(), 20u);
  EXPECT_TRUE(pieces.front().opens);
  EXPECT_EQ(pieces.front().name, "get_weather");
  EXPECT_EQ(pieces.front().arguments, "{");  // the call is certain at its first <arg_key>
  EXPECT_TRUE(pieces.back().closes);
  EXPECT_EQ(pieces.back().arguments, "}");  // at </tool_call>
  std::string joined;
  std::vector<std::string> fragments;
  for (const ToolCallDelta& p : pieces) {
    EXPECT_TRUE(tokenizer::is_valid_utf8(p.arguments)) << "a split character: " << p.arguments;
    joined += p.arguments;
    fragments.push_back(p.arguments);
  }
  EXPECT_EQ(joined, arguments);
  // Escapes and characters come whole; the integer only once its value closed.
  for (const char* whole : {"\\\"", "\\\\", "\\n", "日", "😀", "\"city\":\"", ",\"days\":", "3"})
    EXPECT_NE(std::find(fragments.begin(), fragments.end(), whole), fragments.end()) << whole;
}

TEST(ChatParse, StartedGlmCallsReadAsTheyStream) {
  // A malformed part ends the arguments; the rest of the call is dropped.
  check("<tool_call>lookup<arg_key>n</arg_key><arg_value>1</arg_value>junk<arg_key>q</arg_key><arg_value>2</arg_value></tool_call>after",
        options(ChatFormat::Glm47), message("after", "", {{"lookup", R"({"n":1})"}}));
  // A repeated key is dropped (its first value was already sent).
  check("<tool_call>lookup<arg_key>n</arg_key><arg_value>1</arg_value><arg_key>n</arg_key><arg_value>2</arg_value></tool_call>",
        options(ChatFormat::Glm47), message("", "", {{"lookup", R"({"n":1})"}}));
  // A value missing </arg_value> runs to the end of the call.
  check("<tool_call>get_weather<arg_key>city</arg_key><arg_value>Rome</tool_call>", options(ChatFormat::Glm47),
        message("", "", {{"get_weather", R"({"city":"Rome"})"}}));
  // A call cut off by the end of the output is closed there.
  check("<tool_call>get_weather\n<arg_key>city</arg_key>\n<arg_value>Ro", options(ChatFormat::Glm45),
        message("", "", {{"get_weather", R"({"city":"Ro"})"}}));
  check("<tool_call>get_weather<arg_key>days</arg_key><arg_value>1", options(ChatFormat::Glm47),
        message("", "", {{"get_weather", R"({"days":1})"}}));
  // Before its first <arg_key> a call is not certain: a bare name at the end stays text.
  check("<tool_call>get_weather<arg_ke", options(ChatFormat::Glm47), message("<tool_call>get_weather<arg_ke"));
}

// Random model outputs in every format, some malformed or cut off, each streamed in many ways.
std::string random_output(ChatFormat format, Rng& rng) {
  const auto pick = [&](std::initializer_list<const char*> from) {
    return std::string(*(from.begin() + rng.next_u64() % from.size()));
  };
  const auto text = [&] {
    std::string t;
    for (int n = static_cast<int>(rng.next_u64() % 4); n > 0; --n)
      t += pick({"Sure. ", "a < b ", "<tool", "\n", "é😀 ", "</think", "{", "ok"});
    return t;
  };
  std::string out;
  if (rng.next_u64() % 3 == 0) out += "<think>" + text() + "</think>";
  if (format == ChatFormat::Llama3) {
    out += rng.next_u64() % 2 ? pick({"<|python_tag|>", ""}) + R"({"name": "get_weather", "parameters": {"city": "Oslo", "days": 2}})"
                              : text();
  }
  for (int calls = static_cast<int>(rng.next_u64() % 4); calls > 0 && format != ChatFormat::Llama3; --calls) {
    out += text() + "<tool_call>";
    const std::string name = pick({"get_weather", "get_time", "lookup", ""});
    if (format == ChatFormat::Hermes) {
      out += "\n{\"name\": \"" + name + "\", \"arguments\": " + pick({R"({"city": "Paris"})", "{}", R"({"days": 2, "x": [1, 2]})", R"("{\"a\": 1}")", "[1"}) + "}\n";
    } else {
      const char* sep = format == ChatFormat::Glm45 ? "\n" : "";
      out += name + sep;
      for (int args = static_cast<int>(rng.next_u64() % 4); args > 0; --args) {
        out += "<arg_key>" + pick({"city", "zip", "days", "hourly", "extra", "q", "n"}) + "</arg_key>" + sep + "<arg_value>" +
               pick({"New York", "10001", " 3 ", "true", R"({"units": "metric"})", "a \"quoted\" \\ back\nslash",
                     "日本語 😀", "x < y </arg_val z", "", "[1, 2", "</tool_ca"}) +
               "</arg_value>" + sep;
        if (rng.next_u64() % 8 == 0) out += pick({"junk", "<arg_value>", "<arg_key>k"});
      }
    }
    out += "</tool_call>";
  }
  out += text();
  if (rng.next_u64() % 4 == 0) {  // cut off anywhere between characters (the decoder sends whole ones)
    size_t cut = rng.next_u64() % (out.size() + 1);
    while (cut < out.size() && (static_cast<unsigned char>(out[cut]) & 0xC0) == 0x80) ++cut;
    out.resize(cut);
  }
  return out;
}

TEST(ChatParse, RandomOutputsStreamToTheirWholeParse) {
  Rng rng(2026);
  for (ChatFormat f : {ChatFormat::Glm45, ChatFormat::Glm47, ChatFormat::Hermes, ChatFormat::Llama3}) {
    for (int i = 0; i < 60; ++i) {
      const std::string text = random_output(f, rng);
      SCOPED_TRACE(chat_format_name(f) + ": " + text);
      for (bool reasoning : {false, true}) check(text, options(f, reasoning), parse_chat_output(text, options(f, reasoning)));
    }
  }
}

TEST(ChatParse, FormatNames) {
  for (ChatFormat f : {ChatFormat::Plain, ChatFormat::Glm45, ChatFormat::Glm47, ChatFormat::Hermes, ChatFormat::Llama3}) {
    EXPECT_EQ(chat_format_from_name(chat_format_name(f)), f);
  }
  EXPECT_THROW(chat_format_from_name("nope"), Error);
}

TEST(ChatParse, PromptOpensThinking) {
  EXPECT_TRUE(prompt_opens_thinking("<|assistant|><think>"));
  EXPECT_TRUE(prompt_opens_thinking("<｜Assistant｜><think>\n"));
  EXPECT_FALSE(prompt_opens_thinking("<|assistant|></think>"));
  EXPECT_FALSE(prompt_opens_thinking("<|assistant|>\n<think></think>"));
  EXPECT_FALSE(prompt_opens_thinking("<|im_start|>assistant\n"));
}

// Format detection on the real templates (npm bundle and ../shared).
TEST(ChatParse, DetectsFormatsFromRealTemplates) {
  const char* tree = std::getenv("TOKENMILL_LLAMA_TREE");
  const std::string shared = std::string(TOKENMILL_SOURCE_DIR) + "/../shared/templates/";
  if (!tree || !std::filesystem::exists(shared)) GTEST_SKIP() << "needs TOKENMILL_LLAMA_TREE and ../shared/templates";
  const std::string bundle = std::string(tree) + "/models/templates/";
  struct Expect {
    std::string path;
    ChatFormat format;
    bool reasoning, thinking_open;
  };
  const Expect expectations[] = {
      {shared + "GLM-4.5.jinja", ChatFormat::Glm45, true, false},
      {bundle + "GLM-4.6.jinja", ChatFormat::Glm45, true, false},
      {bundle + "GLM-4.7-Flash.jinja", ChatFormat::Glm47, true, true},
      {bundle + "Qwen-Qwen3-0.6B.jinja", ChatFormat::Hermes, true, false},
      {shared + "Qwen3-30B-A3B.jinja", ChatFormat::Hermes, true, false},
      {bundle + "meta-llama-Llama-3.1-8B-Instruct.jinja", ChatFormat::Llama3, false, false},
      {bundle + "deepseek-ai-DeepSeek-R1-Distill-Qwen-32B.jinja", ChatFormat::Plain, true, true},
  };
  for (const Expect& e : expectations) {
    SCOPED_TRACE(e.path);
    const ChatParseOptions o = detect_chat_format(read_template_file(e.path));
    EXPECT_EQ(chat_format_name(o.format), chat_format_name(e.format));
    EXPECT_EQ(o.reasoning, e.reasoning);
    EXPECT_EQ(o.thinking_open, e.thinking_open);
  }
}

}  // namespace
}  // namespace tokenmill
