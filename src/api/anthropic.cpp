#include "api/anthropic.h"

#include "api/openai.h"
#include "common/error.h"

namespace tokenmill::api::anthropic {
namespace {

using Json = nlohmann::ordered_json;

const Json* member(const Json& object, const char* name) {
  const auto it = object.find(name);
  return it == object.end() || it->is_null() ? nullptr : &*it;
}

// A string, or text blocks joined by newlines (system prompts and tool results).
std::string block_text(const Json& content, const std::string& param) {
  if (content.is_string()) return content;
  if (!content.is_array()) throw ApiError::invalid(param + " must be a string or an array of content blocks", param);
  std::string text;
  for (size_t i = 0; i < content.size(); ++i) {
    const Json& b = content[i];
    const std::string where = param + "[" + std::to_string(i) + "]";
    if (!b.is_object() || b.value("type", "") != "text" || !b.contains("text") || !b["text"].is_string())
      throw ApiError::invalid(where + " must be a text block", where);
    if (!text.empty()) text += '\n';
    text += b["text"].get<std::string>();
  }
  return text;
}

// One Anthropic message becomes one or more chat messages: a user turn's tool_result blocks
// become tool messages (before its text, which follows them in the conversation), an
// assistant turn's thinking and tool_use blocks its reasoning_content and tool_calls.
void add_message(const Json& m, const std::string& where, Json& out) {
  if (!m.is_object()) throw ApiError::invalid(where + " must be an object", where);
  const std::string role = m.contains("role") && m["role"].is_string() ? m["role"].get<std::string>() : "";
  if (role != "user" && role != "assistant" && role != "system")
    throw ApiError::invalid(where + ".role must be user, assistant or system", where + ".role");
  const Json* content = member(m, "content");
  if (!content) throw ApiError::invalid(where + ".content is required", where + ".content");
  if (role == "system") {  // claude-code sends system turns between the others
    out.push_back({{"role", "system"}, {"content", block_text(*content, where + ".content")}});
    return;
  }
  if (content->is_string()) {
    out.push_back({{"role", role}, {"content", *content}});
    return;
  }
  if (!content->is_array()) throw ApiError::invalid(where + ".content must be a string or an array", where + ".content");
  std::string text, reasoning;
  Json tool_calls = Json::array();
  for (size_t i = 0; i < content->size(); ++i) {
    const Json& b = (*content)[i];
    const std::string at = where + ".content[" + std::to_string(i) + "]";
    const std::string type = b.is_object() && b.contains("type") && b["type"].is_string() ? b["type"].get<std::string>() : "";
    if (type == "text") {
      if (!b.contains("text") || !b["text"].is_string()) throw ApiError::invalid(at + ".text must be a string", at);
      if (!text.empty()) text += '\n';
      text += b["text"].get<std::string>();
    } else if (type == "thinking" && role == "assistant") {
      reasoning += b.value("thinking", "");
    } else if (type == "redacted_thinking" && role == "assistant") {
      // Opaque to us: nothing to show the model.
    } else if (type == "tool_use" && role == "assistant") {
      if (!b.contains("name") || !b["name"].is_string()) throw ApiError::invalid(at + ".name must be a string", at);
      tool_calls.push_back({{"id", b.value("id", "")},
                            {"type", "function"},
                            {"function", {{"name", b["name"]}, {"arguments", b.contains("input") ? b["input"] : Json::object()}}}});
    } else if (type == "tool_result" && role == "user") {
      if (!b.contains("tool_use_id") || !b["tool_use_id"].is_string())
        throw ApiError::invalid(at + ".tool_use_id must be a string", at);
      const Json* result = member(b, "content");
      out.push_back({{"role", "tool"}, {"tool_call_id", b["tool_use_id"]}, {"content", result ? block_text(*result, at + ".content") : ""}});
    } else {
      throw ApiError::invalid(at + ": content blocks of type '" + type + "' are not supported in " + role + " messages", at);
    }
  }
  if (role == "user" && text.empty()) return;  // only tool results
  Json msg = {{"role", role}, {"content", text.empty() && !tool_calls.empty() ? Json() : Json(text)}};
  if (!reasoning.empty()) msg["reasoning_content"] = reasoning;
  if (!tool_calls.empty()) msg["tool_calls"] = std::move(tool_calls);
  out.push_back(std::move(msg));
}

Json chat_tools(const Json& tools) {
  if (!tools.is_array()) throw ApiError::invalid("tools must be an array", "tools");
  Json out = Json::array();
  for (size_t i = 0; i < tools.size(); ++i) {
    const Json& t = tools[i];
    const std::string where = "tools[" + std::to_string(i) + "]";
    if (!t.is_object() || !t.contains("name") || !t.contains("input_schema"))
      throw ApiError::invalid(where + " must be a custom tool with a name and an input_schema (server tools are not supported)", where);
    Json fn = {{"name", t["name"]}, {"parameters", t["input_schema"]}};
    if (t.contains("description")) fn["description"] = t["description"];
    out.push_back({{"type", "function"}, {"function", std::move(fn)}});
  }
  return out;
}

Json chat_tool_choice(const Json& choice) {
  const std::string type = choice.is_object() && choice.contains("type") && choice["type"].is_string() ? choice["type"].get<std::string>() : "";
  if (type == "auto") return "auto";
  if (type == "any") return "required";
  if (type == "none") return "none";
  if (type == "tool" && choice.contains("name") && choice["name"].is_string())
    return {{"type", "function"}, {"function", {{"name", choice["name"]}}}};
  throw ApiError::invalid("tool_choice must be {\"type\": auto | any | none | tool (with a name)}", "tool_choice");
}

const char* stop_reason(FinishReason reason, const std::string& stop_sequence) {
  if (reason == FinishReason::Stop && !stop_sequence.empty()) return "stop_sequence";
  switch (reason) {
    case FinishReason::Length: return "max_tokens";
    case FinishReason::ToolCalls: return "tool_use";
    default: return "end_turn";
  }
}

std::string message_id(const std::string& id) {
  const auto dash = id.find('-');
  return "msg_" + (dash == std::string::npos ? id : id.substr(dash + 1));
}

Json usage_json(const Usage& u) {
  return {{"input_tokens", u.prompt_tokens - u.cached_tokens},
          {"cache_creation_input_tokens", 0},
          {"cache_read_input_tokens", u.cached_tokens},
          {"output_tokens", u.completion_tokens}};
}

Json tool_use_json(const ToolCallOut& c) {
  Json input = Json::parse(c.arguments, nullptr, false);
  if (!input.is_object()) input = Json::object();
  return {{"type", "tool_use"}, {"id", c.id}, {"name", c.name}, {"input", input}};
}

std::string event(const char* name, const Json& data) {
  return std::string("event: ") + name + "\ndata: " + data.dump(-1, ' ', false, Json::error_handler_t::replace) + "\n\n";
}

}  // namespace

GenerationRequest parse_request(const Json& body, bool count_only) {
  Json chat = Json::object();
  const Json* model = member(body, "model");
  if (!model || !model->is_string() || model->get<std::string>().empty()) throw ApiError::invalid("model: Field required", "model");
  chat["model"] = *model;
  if (const Json* max_tokens = member(body, "max_tokens")) chat["max_tokens"] = *max_tokens;
  else if (!count_only) throw ApiError::invalid("max_tokens: Field required", "max_tokens");
  for (const char* name : {"temperature", "top_p", "top_k", "stream"})
    if (const Json* v = member(body, name)) chat[name] = *v;
  if (const Json* v = member(body, "stop_sequences")) chat["stop"] = *v;
  if (const Json* metadata = member(body, "metadata"); metadata && metadata->is_object())
    if (const Json* user = member(*metadata, "user_id")) chat["user"] = *user;

  Json messages = Json::array();
  if (const Json* system = member(body, "system")) messages.push_back({{"role", "system"}, {"content", block_text(*system, "system")}});
  const Json* turns = member(body, "messages");
  if (!turns || !turns->is_array() || turns->empty()) throw ApiError::invalid("messages must be a non-empty array", "messages");
  for (size_t i = 0; i < turns->size(); ++i) add_message((*turns)[i], "messages[" + std::to_string(i) + "]", messages);
  chat["messages"] = std::move(messages);
  if (const Json* tools = member(body, "tools"); tools && !tools->empty()) {
    chat["tools"] = chat_tools(*tools);
    if (const Json* choice = member(body, "tool_choice")) chat["tool_choice"] = chat_tool_choice(*choice);
  }
  // Anthropic's models think only when asked; templates that think by default are told not to.
  bool thinking_on = false;
  if (const Json* thinking = member(body, "thinking")) {
    const std::string type = thinking->is_object() ? thinking->value("type", "") : "";
    if (type != "enabled" && type != "disabled" && type != "adaptive")
      throw ApiError::invalid("thinking.type must be enabled, adaptive or disabled", "thinking.type");
    if (type == "enabled" && (!thinking->contains("budget_tokens") || !(*thinking)["budget_tokens"].is_number_integer()))
      throw ApiError::invalid("thinking.budget_tokens: Field required", "thinking.budget_tokens");
    thinking_on = type != "disabled";  // adaptive: the model may think, as the template decides
  }
  chat["chat_template_kwargs"] = {{"enable_thinking", thinking_on}};
  return openai::parse_chat_request(chat);
}

Json response_json(const GenerationResponse& response) {
  Json content = Json::array();
  FinishReason reason = FinishReason::Stop;
  std::string stop_sequence;
  if (!response.choices.empty()) {
    const Choice& c = response.choices[0];
    reason = c.finish_reason;
    stop_sequence = c.stop_sequence;
    if (!c.reasoning.empty()) content.push_back({{"type", "thinking"}, {"thinking", c.reasoning}, {"signature", ""}});
    if (!c.content.empty() || c.tool_calls.empty()) content.push_back({{"type", "text"}, {"text", c.content}});
    for (const ToolCallOut& call : c.tool_calls) content.push_back(tool_use_json(call));
  }
  return {{"id", message_id(response.id)},
          {"type", "message"},
          {"role", "assistant"},
          {"model", response.model},
          {"content", content},
          {"stop_reason", stop_reason(reason, stop_sequence)},
          {"stop_sequence", stop_sequence.empty() ? Json() : Json(stop_sequence)},
          {"usage", usage_json(response.usage)}};
}

Json count_tokens_json(int64_t input_tokens) { return {{"input_tokens", input_tokens}}; }

const char* error_type(int status) {
  switch (status) {
    case 401: return "authentication_error";
    case 402: return "billing_error";
    case 403: return "permission_error";
    case 404: return "not_found_error";
    case 413: return "request_too_large";
    case 429: return "rate_limit_error";
    case 503:
    case 529: return "overloaded_error";
    default: return status >= 500 ? "api_error" : "invalid_request_error";
  }
}

Json error_json(const ApiError& e) {
  return {{"type", "error"}, {"error", {{"type", error_type(e.status)}, {"message", e.message}}}};
}

std::string StreamEncoder::start(const GenerationResponse& header) {
  Json message = response_json(header);
  message["content"] = Json::array();
  message["stop_reason"] = nullptr;
  message["usage"]["output_tokens"] = 0;
  return event("message_start", {{"type", "message_start"}, {"message", message}}) + event("ping", {{"type", "ping"}});
}

std::string StreamEncoder::open(Block block) {
  if (open_ == block) return {};
  std::string out = close();
  open_ = block;
  ++index_;
  const Json start = block == Block::Thinking ? Json{{"type", "thinking"}, {"thinking", ""}, {"signature", ""}}
                                              : Json{{"type", "text"}, {"text", ""}};
  return out + event("content_block_start", {{"type", "content_block_start"}, {"index", index_}, {"content_block", start}});
}

std::string StreamEncoder::close() {
  if (open_ == Block::None) return {};
  std::string out;
  if (open_ == Block::Thinking)  // clients keep the signature to send the block back; we check none
    out = event("content_block_delta", {{"type", "content_block_delta"}, {"index", index_}, {"delta", {{"type", "signature_delta"}, {"signature", ""}}}});
  open_ = Block::None;
  return out + event("content_block_stop", {{"type", "content_block_stop"}, {"index", index_}});
}

std::string StreamEncoder::delta(const ChoiceDelta& d) {
  std::string out;
  if (!d.reasoning.empty()) {
    out += open(Block::Thinking);
    out += event("content_block_delta", {{"type", "content_block_delta"}, {"index", index_}, {"delta", {{"type", "thinking_delta"}, {"thinking", d.reasoning}}}});
  }
  if (!d.content.empty()) {
    out += open(Block::Text);
    out += event("content_block_delta", {{"type", "content_block_delta"}, {"index", index_}, {"delta", {{"type", "text_delta"}, {"text", d.content}}}});
  }
  // A call opens a tool_use block (empty input); its arguments follow as input_json_delta
  // pieces, in as many events as they came in, until another block starts or the message ends.
  for (const ToolCallOut& call : d.tool_calls) {
    if (!call.id.empty()) {
      out += close();
      open_ = Block::Tool;
      ++index_;
      Json block = tool_use_json(call);
      block["input"] = Json::object();
      out += event("content_block_start", {{"type", "content_block_start"}, {"index", index_}, {"content_block", block}});
    }
    if (!call.arguments.empty())
      out += event("content_block_delta", {{"type", "content_block_delta"}, {"index", index_}, {"delta", {{"type", "input_json_delta"}, {"partial_json", call.arguments}}}});
  }
  if (d.finish_reason) {
    finish_reason_ = *d.finish_reason;
    stop_sequence_ = d.stop_sequence;
  }
  return out;
}

std::string StreamEncoder::finish(const GenerationResponse& response) {
  std::string out = index_ < 0 ? open(Block::Text) : "";  // every message has at least one block
  out += close();
  out += event("message_delta", {{"type", "message_delta"},
                                 {"delta",
                                  {{"stop_reason", stop_reason(finish_reason_, stop_sequence_)},
                                   {"stop_sequence", stop_sequence_.empty() ? Json() : Json(stop_sequence_)}}},
                                 {"usage", usage_json(response.usage)}});
  return out + event("message_stop", {{"type", "message_stop"}});
}

std::string StreamEncoder::error(const ApiError& e) { return event("error", error_json(e)); }

void ModelAliases::add(const std::string& rule) {
  const auto eq = rule.find('=');
  if (eq == std::string::npos || eq == 0 || eq + 1 == rule.size())
    throw Error("--model-alias: expected PATTERN=NAME (e.g. 'claude-*=glm-4'), got '" + rule + "'");
  rules_.emplace_back(rule.substr(0, eq), rule.substr(eq + 1));
}

std::string ModelAliases::resolve(const std::string& model) const {
  for (const auto& [pattern, name] : rules_) {
    const bool prefix = pattern.ends_with('*');
    if (prefix ? model.starts_with(pattern.substr(0, pattern.size() - 1)) : model == pattern) return name;
  }
  return model;
}

}  // namespace tokenmill::api::anthropic
