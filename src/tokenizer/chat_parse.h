// Model output back into an assistant message: content, reasoning_content and structured
// tool_calls, for whole texts and while streaming. The format comes from the model's chat
// template (detect_chat_format):
//   - reasoning: <think>...</think>, also when the generation prompt already opened <think>
//     (the output then starts inside it), and when a model calls a tool before closing it;
//   - GLM-4.5/4.6: <tool_call>NAME\n<arg_key>K</arg_key>\n<arg_value>V</arg_value>\n</tool_call>
//     and GLM-4.7 (the same without newlines, zero-argument calls <tool_call>NAME</tool_call>);
//   - Qwen3/Hermes: <tool_call>\n{"name": ..., "arguments": {...}}\n</tool_call>;
//   - Llama 3: the whole reply is {"name": ..., "parameters": {...}} (maybe after <|python_tag|>).
// Argument values of the XML forms are typed by the request's tool schema: strings raw, other
// types parsed as JSON. The streaming parser never emits a partial tag as content, and its
// deltas add up to exactly what parsing the whole text gives, tool-call arguments included.
//
// A GLM call streams: it is a call from the moment its name is followed by <arg_key> (or it
// closes), and its arguments come as they become certain — `{"key":` at each <arg_value>,
// string values as JSON-escaped text while they are generated, other values when they close,
// `}` at </tool_call>. For that to add up to the whole parse, the whole parse reads a started
// call the same way: a malformed part ends its arguments (the rest of the call is dropped), a
// repeated key is dropped, a value missing </arg_value> runs to the end of the call, and a call
// cut off by the end of the output is closed there. Hermes calls are re-serialised by the
// whole parse (the raw text is not kept byte for byte), so they come whole when closed, as
// Llama 3's whole-reply calls do.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

namespace tokenmill {

enum class ChatFormat { Plain, Glm45, Glm47, Hermes, Llama3 };

std::string chat_format_name(ChatFormat format);
ChatFormat chat_format_from_name(const std::string& name);  // throws Error for unknown names
std::string chat_format_names();                            // "plain, glm45, ..."

struct ChatParseOptions {
  ChatFormat format = ChatFormat::Plain;
  bool reasoning = false;      // split <think>...</think> into reasoning_content
  bool thinking_open = false;  // the prompt ends inside <think>: output starts as reasoning
  nlohmann::ordered_json tools = nlohmann::ordered_json::array();  // the request's tools
};

// Format and reasoning handling for a template, found by rendering a sample conversation with
// thinking enabled. A server sets thinking_open per request from the prompt it actually
// rendered (prompt_opens_thinking), since enable_thinking=false closes the block in most templates.
ChatParseOptions detect_chat_format(const std::string& template_source);
// Does this rendered prompt end inside an open <think> block?
bool prompt_opens_thinking(std::string_view prompt);

struct ToolCall {
  std::string name;
  std::string arguments;  // a JSON object, as text (OpenAI's form)
  bool operator==(const ToolCall&) const = default;
};

struct ChatMessage {
  std::string content;
  std::string reasoning_content;
  std::vector<ToolCall> tool_calls;

  nlohmann::ordered_json to_json() const;
  bool operator==(const ChatMessage&) const = default;
};

ChatMessage parse_chat_output(std::string_view text, const ChatParseOptions& options);

// The next piece of a streamed tool call: the first piece of a call opens it (its name), the
// last closes it; its pieces' arguments add up to the call's arguments.
struct ToolCallDelta {
  size_t index = 0;  // the call's position among the message's tool calls
  bool opens = false;
  bool closes = false;
  std::string name;       // set when it opens
  std::string arguments;  // the next fragment of the arguments' text
  bool operator==(const ToolCallDelta&) const = default;
};

// What one piece of streamed output adds.
struct ChatDelta {
  std::string content;
  std::string reasoning_content;
  std::vector<ToolCallDelta> tool_calls;
  bool empty() const { return content.empty() && reasoning_content.empty() && tool_calls.empty(); }
};

class ChatStreamParser {
 public:
  explicit ChatStreamParser(ChatParseOptions options) : options_(std::move(options)) {}

  ChatDelta feed(std::string_view chunk);  // more output text
  ChatDelta finish();                      // end of output: flushes what was held back
  // Everything emitted so far (the last tool call may still be open).
  const ChatMessage& message() const { return emitted_; }

 private:
  ChatDelta advance(const ChatMessage& stable, bool last_call_open);

  ChatParseOptions options_;
  std::string text_;
  ChatMessage emitted_;
  size_t calls_closed_ = 0;
};

}  // namespace tokenmill
