#include "tokenizer/chat_parse.h"

#include <algorithm>
#include <optional>

#include "common/error.h"
#include "tokenizer/jinja_template.h"
#include "tokenizer/jinja_text.h"
#include "tokenizer/utf8.h"

namespace tokenmill {

namespace {

using nlohmann::ordered_json;

constexpr std::string_view kThinkOpen = "<think>";
constexpr std::string_view kThinkClose = "</think>";
constexpr std::string_view kToolOpen = "<tool_call>";
constexpr std::string_view kToolClose = "</tool_call>";
constexpr std::string_view kPythonTag = "<|python_tag|>";

const std::pair<ChatFormat, const char*> kFormatNames[] = {
    {ChatFormat::Plain, "plain"}, {ChatFormat::Glm45, "glm45"},   {ChatFormat::Glm47, "glm47"},
    {ChatFormat::Hermes, "hermes"}, {ChatFormat::Llama3, "llama3"},
};

std::string trim(std::string_view s) { return jinja::strip(s, nullptr, jinja::StripSide::Both); }

bool starts_with(std::string_view s, std::string_view prefix) { return s.substr(0, prefix.size()) == prefix; }

// The longest end of `text` that could be the start of one of `tags`: held back while
// streaming, because the next piece may complete the tag.
size_t partial_tag_length(std::string_view text, std::initializer_list<std::string_view> tags) {
  size_t longest = 0;
  for (std::string_view tag : tags) {
    if (tag.empty()) continue;
    for (size_t n = std::min(text.size(), tag.size() - 1); n > longest; --n) {
      if (text.substr(text.size() - n) == tag.substr(0, n)) {
        longest = n;
        break;
      }
    }
  }
  return longest;
}

bool uses_xml_tool_calls(ChatFormat f) { return f == ChatFormat::Glm45 || f == ChatFormat::Glm47 || f == ChatFormat::Hermes; }

// The JSON Schema type of a tool's parameter, or "" when the request does not say.
std::string parameter_type(const ordered_json& tools, const std::string& tool, const std::string& parameter) {
  if (!tools.is_array()) return "";
  for (const auto& t : tools) {
    const ordered_json& fn = t.contains("function") ? t["function"] : t;
    if (!fn.is_object() || fn.value("name", "") != tool) continue;
    const auto props = fn.find("parameters");
    if (props == fn.end() || !props->is_object() || !props->contains("properties")) return "";
    const ordered_json& p = (*props)["properties"];
    if (!p.is_object() || !p.contains(parameter) || !p[parameter].is_object()) return "";
    const ordered_json& type = p[parameter].contains("type") ? p[parameter]["type"] : ordered_json();
    if (type.is_string()) return type.get<std::string>();
    return "";
  }
  return "";
}

// JSON text of a string; invalid UTF-8 (a model can emit any bytes) becomes U+FFFD.
std::string string_json(std::string_view s) { return ordered_json(tokenizer::repair_utf8(s)).dump(); }

// A GLM argument value as JSON text: raw text for string parameters, JSON for the others; a
// value that is not valid JSON (or whose type is unknown and is not JSON) stays a string.
std::string value_json(std::string_view raw, const std::string& type) {
  if (type != "string") {
    const ordered_json parsed = ordered_json::parse(raw, nullptr, false);
    if (!parsed.is_discarded()) return parsed.dump();
  }
  return string_json(raw);
}

// The longest start of `text` that more bytes cannot change as UTF-8: it stops before an
// incomplete character at the end.
size_t complete_utf8_prefix(std::string_view text) {
  size_t n = 0;
  while (n < text.size()) {
    const tokenizer::Utf8Step step = tokenizer::utf8_step(text.substr(n));
    if (step.status == tokenizer::Utf8Status::Incomplete) break;
    n += step.length;
  }
  return n;
}

constexpr std::string_view kArgKey = "<arg_key>";
constexpr std::string_view kArgKeyClose = "</arg_key>";
constexpr std::string_view kArgValue = "<arg_value>";
constexpr std::string_view kArgValueClose = "</arg_value>";

// How the body of a call (the text after <tool_call>) ends.
enum class BodyEnd { More, Tag, Output };  // the output may go on / </tool_call> / end of output

// A GLM call: NAME [ws] (<arg_key>K</arg_key> [ws] <arg_value>V</arg_value> [ws])*, read as far
// as `body` makes it certain, so that reading a longer body only appends to the arguments.
// Nothing when the body is not a call, or (BodyEnd::More) not yet known to be one.
std::optional<ToolCall> read_glm_call(std::string_view body, BodyEnd end, const ordered_json& tools) {
  const size_t name_end = std::min(body.find('<'), body.size());
  if (name_end == body.size() ? end != BodyEnd::Tag : !starts_with(body.substr(name_end), kArgKey)) return std::nullopt;
  ToolCall call{trim(body.substr(0, name_end)), "{"};
  if (call.name.empty() || call.name.find_first_of(">\n") != std::string::npos) return std::nullopt;
  const bool closed = end != BodyEnd::More;
  std::vector<std::string> keys;
  size_t pos = name_end;
  const auto skip_space = [&] {
    while (pos < body.size() && jinja::is_space(static_cast<unsigned char>(body[pos]))) ++pos;
  };
  // A malformed part ends the arguments; the rest of the call is dropped.
  const auto done = [&] {
    if (closed) call.arguments += '}';
    return call;
  };
  while (true) {
    skip_space();
    if (!starts_with(body.substr(pos), kArgKey)) return done();  // the end, or malformed
    const size_t key_end = body.find(kArgKeyClose, pos + kArgKey.size());
    if (key_end == std::string_view::npos) return done();
    const std::string key = trim(body.substr(pos + kArgKey.size(), key_end - pos - kArgKey.size()));
    pos = key_end + kArgKeyClose.size();
    skip_space();
    if (!starts_with(body.substr(pos), kArgValue)) return done();
    pos += kArgValue.size();
    // A value missing its </arg_value> runs to the end of the call.
    const size_t value_end = std::min(body.find(kArgValueClose, pos), body.size());
    std::string_view raw = body.substr(pos, value_end - pos);
    const bool value_closed = value_end < body.size() || closed;
    const std::string type = parameter_type(tools, call.name, key);
    if (std::find(keys.begin(), keys.end(), key) == keys.end()) {  // a repeated key is dropped
      call.arguments += (keys.empty() ? "" : ",") + string_json(key) + ":";
      keys.push_back(key);
      if (value_closed) {
        call.arguments += value_json(raw, type);
      } else if (type == "string") {  // streams: all but what may be the start of a closing tag
        raw.remove_suffix(partial_tag_length(raw, {kArgValueClose, kToolClose}));
        std::string text = string_json(raw.substr(0, complete_utf8_prefix(raw)));
        text.pop_back();  // the closing quote comes with the rest of the value
        call.arguments += text;
      }
    }
    if (value_end == body.size()) return done();
    pos = value_end + kArgValueClose.size();
  }
}

// {"name": ..., "arguments"|"parameters": {...}} (Hermes and Llama 3).
bool parse_json_call(std::string_view body, ToolCall& call) {
  const ordered_json parsed = ordered_json::parse(body, nullptr, false);
  if (parsed.is_discarded() || !parsed.is_object() || !parsed.contains("name") || !parsed["name"].is_string()) return false;
  call.name = parsed["name"].get<std::string>();
  ordered_json arguments = parsed.contains("arguments") ? parsed["arguments"] : parsed.value("parameters", ordered_json::object());
  if (arguments.is_string()) {  // some models send the arguments as a JSON string
    arguments = ordered_json::parse(arguments.get<std::string>(), nullptr, false);
  }
  if (!arguments.is_object()) return false;
  call.arguments = arguments.dump();
  return true;
}

struct Parsed {
  ChatMessage message;
  bool last_call_open = false;  // the last tool call is still being generated
};

// Parses `text`. When `final` is false the text may stop anywhere, and only what more text
// cannot change is returned: a partial tag, a tool call not yet known to be one, the uncertain
// end of an open call's arguments and trailing whitespace are held back. That makes every
// partial result a prefix of the final one.
Parsed parse(std::string_view text, const ChatParseOptions& options, bool final) {
  Parsed parsed;
  ChatMessage& message = parsed.message;
  const bool xml_calls = uses_xml_tool_calls(options.format);
  size_t pos = 0;
  bool reasoning = options.reasoning && options.thinking_open;
  if (options.reasoning && !reasoning) {
    const size_t start = text.find_first_not_of(" \t\r\n");
    const std::string_view head = start == std::string_view::npos ? std::string_view() : text.substr(start);
    if (starts_with(head, kThinkOpen)) {
      reasoning = true;
      pos = start + kThinkOpen.size();
    } else if (!final && !head.empty() && starts_with(kThinkOpen, head)) {
      return parsed;  // "<thi": not yet known whether reasoning follows
    }
  }
  std::string content, thought;
  while (true) {
    std::string& sink = reasoning ? thought : content;
    const size_t call_at = xml_calls ? text.find(kToolOpen, pos) : std::string_view::npos;
    const size_t think_end = reasoning ? text.find(kThinkClose, pos) : std::string_view::npos;
    if (think_end != std::string_view::npos && think_end < call_at) {
      sink += text.substr(pos, think_end - pos);
      pos = think_end + kThinkClose.size();
      reasoning = false;
      continue;
    }
    if (call_at == std::string_view::npos) {
      std::string_view rest = text.substr(pos);
      if (!final) rest.remove_suffix(partial_tag_length(rest, {xml_calls ? kToolOpen : "", reasoning ? kThinkClose : ""}));
      sink += rest;
      break;
    }
    // A tool call, in the content or (GLM models do this) before </think>.
    sink += text.substr(pos, call_at - pos);
    const size_t close = text.find(kToolClose, call_at);
    const size_t body_at = call_at + kToolOpen.size();
    const std::string_view body = text.substr(body_at, std::min(close, text.size()) - body_at);
    const BodyEnd end = close != std::string_view::npos ? BodyEnd::Tag : final ? BodyEnd::Output : BodyEnd::More;
    std::optional<ToolCall> call;
    if (options.format != ChatFormat::Hermes) {
      call = read_glm_call(body, end, options.tools);
    } else if (end == BodyEnd::Tag) {
      call.emplace();
      if (!parse_json_call(trim(body), *call)) call.reset();
    }
    if (call) message.tool_calls.push_back(std::move(*call));
    if (close == std::string_view::npos) {  // the call runs to the end of the text
      parsed.last_call_open = call && end == BodyEnd::More;
      if (final && !call) sink += text.substr(call_at);
      break;
    }
    if (!call) sink += text.substr(call_at, close + kToolClose.size() - call_at);
    pos = close + kToolClose.size();
  }
  message.reasoning_content = trim(thought);
  message.content = trim(content);
  if (options.format == ChatFormat::Llama3) {
    std::string_view reply = message.content;
    const bool tagged = starts_with(reply, kPythonTag);
    if (tagged) reply.remove_prefix(kPythonTag.size());
    const bool maybe_call = tagged || starts_with(trim(reply), "{") || (!reply.empty() && starts_with(kPythonTag, reply));
    ToolCall call;
    if (final && maybe_call && parse_json_call(trim(reply), call)) {
      message.tool_calls.push_back(std::move(call));
      message.content.clear();
    } else if (!final && maybe_call) {
      message.content.clear();  // a JSON reply may be a tool call: wait for the whole of it
    }
  }
  return parsed;
}

}  // namespace

std::string chat_format_name(ChatFormat format) {
  for (const auto& [f, name] : kFormatNames) {
    if (f == format) return name;
  }
  return "plain";
}

ChatFormat chat_format_from_name(const std::string& name) {
  for (const auto& [f, n] : kFormatNames) {
    if (name == n) return f;
  }
  throw Error("unknown chat output format '" + name + "' (known: " + chat_format_names() + ")");
}

std::string chat_format_names() {
  std::string names;
  for (const auto& [f, name] : kFormatNames) names += (names.empty() ? "" : ", ") + std::string(name);
  return names;
}

bool prompt_opens_thinking(std::string_view prompt) {
  const size_t open = prompt.rfind(kThinkOpen);
  if (open == std::string_view::npos) return false;
  const size_t close = prompt.rfind(kThinkClose);
  if (close != std::string_view::npos && close > open) return false;
  return trim(prompt.substr(open + kThinkOpen.size())).empty();
}

ChatParseOptions detect_chat_format(const std::string& source) {
  ChatParseOptions options;
  if (source.find("<arg_key>") != std::string::npos) {
    options.format = source.find("<tool_call>{function-name}<arg_key>") != std::string::npos ? ChatFormat::Glm47 : ChatFormat::Glm45;
  } else if (source.find("<tool_call>") != std::string::npos) {
    options.format = ChatFormat::Hermes;
  } else if (source.find("<|start_header_id|>") != std::string::npos && source.find("parameters") != std::string::npos) {
    options.format = ChatFormat::Llama3;
  }
  options.reasoning = source.find("<think>") != std::string::npos || source.find("</think>") != std::string::npos;
  if (options.reasoning) {
    try {
      const ordered_json sample = {{"messages", {{{"role", "user"}, {"content", "Hi"}}}},
                                   {"add_generation_prompt", true}, {"enable_thinking", true},
                                   {"bos_token", ""}, {"eos_token", ""}};
      options.thinking_open = prompt_opens_thinking(jinja::Template(source).render(sample));
    } catch (const Error&) {
      options.thinking_open = false;  // a template that cannot render a sample: decide per request
    }
  }
  return options;
}

ordered_json ChatMessage::to_json() const {
  ordered_json out = {{"role", "assistant"}, {"content", content}};
  if (!reasoning_content.empty()) out["reasoning_content"] = reasoning_content;
  if (!tool_calls.empty()) {
    ordered_json calls = ordered_json::array();
    for (const ToolCall& call : tool_calls) {
      calls.push_back({{"type", "function"}, {"function", {{"name", call.name}, {"arguments", call.arguments}}}});
    }
    out["tool_calls"] = calls;
  }
  return out;
}

ChatMessage parse_chat_output(std::string_view text, const ChatParseOptions& options) {
  return parse(text, options, true).message;
}

ChatDelta ChatStreamParser::feed(std::string_view chunk) {
  text_ += chunk;
  const Parsed stable = parse(text_, options_, false);
  return advance(stable.message, stable.last_call_open);
}

ChatDelta ChatStreamParser::finish() { return advance(parse(text_, options_, true).message, false); }

ChatDelta ChatStreamParser::advance(const ChatMessage& stable, bool last_call_open) {
  // Each stable result extends the previous one, so the new part is what lies past it.
  ChatDelta delta;
  const auto tail = [](const std::string& now, std::string& emitted, std::string& out) {
    if (now.size() > emitted.size() && now.compare(0, emitted.size(), emitted) == 0) {
      out = now.substr(emitted.size());
      emitted = now;
    }
  };
  tail(stable.content, emitted_.content, delta.content);
  tail(stable.reasoning_content, emitted_.reasoning_content, delta.reasoning_content);
  for (size_t i = calls_closed_; i < stable.tool_calls.size(); ++i) {
    ToolCallDelta piece;
    piece.index = i;
    piece.opens = i == emitted_.tool_calls.size();
    if (piece.opens) {
      piece.name = stable.tool_calls[i].name;
      emitted_.tool_calls.push_back({piece.name, ""});
    }
    tail(stable.tool_calls[i].arguments, emitted_.tool_calls[i].arguments, piece.arguments);
    piece.closes = !(last_call_open && i + 1 == stable.tool_calls.size());
    if (piece.closes) calls_closed_ = i + 1;
    if (piece.opens || piece.closes || !piece.arguments.empty()) delta.tool_calls.push_back(std::move(piece));
  }
  return delta;
}

}  // namespace tokenmill
