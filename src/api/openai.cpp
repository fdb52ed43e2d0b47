#include "api/openai.h"

#include <algorithm>
#include <cmath>
#include <limits>

namespace tokenmill::api::openai {
namespace {

using Json = nlohmann::ordered_json;

// Typed access to optional request fields; a present field of the wrong type or out of range
// is an ApiError naming it.
class Fields {
 public:
  explicit Fields(const Json& body) : body_(body) {}

  const Json* get(const char* name) const {
    const auto it = body_.find(name);
    return it == body_.end() || it->is_null() ? nullptr : &*it;
  }

  std::optional<double> number(const char* name, double lo, double hi) const {
    const Json* v = get(name);
    if (!v) return std::nullopt;
    if (!v->is_number()) throw ApiError::invalid(std::string(name) + " must be a number", name);
    const double x = v->get<double>();
    if (!(x >= lo && x <= hi))
      throw ApiError::invalid(std::string(name) + " must be between " + format(lo) + " and " + format(hi) +
                                  ", got " + format(x),
                              name, "invalid_value");
    return x;
  }

  std::optional<int64_t> integer(const char* name, int64_t lo, int64_t hi) const {
    const Json* v = get(name);
    if (!v) return std::nullopt;
    if (!v->is_number_integer() && !(v->is_number_float() && std::floor(v->get<double>()) == v->get<double>()))
      throw ApiError::invalid(std::string(name) + " must be an integer", name);
    const double x = v->get<double>();
    if (!(x >= static_cast<double>(lo) && x <= static_cast<double>(hi)))
      throw ApiError::invalid(std::string(name) + " must be between " + std::to_string(lo) + " and " +
                                  std::to_string(hi) + ", got " + format(x),
                              name, "invalid_value");
    return v->is_number_integer() ? v->get<int64_t>() : static_cast<int64_t>(x);
  }

  std::optional<bool> boolean(const char* name) const {
    const Json* v = get(name);
    if (!v) return std::nullopt;
    if (!v->is_boolean()) throw ApiError::invalid(std::string(name) + " must be a boolean", name);
    return v->get<bool>();
  }

  std::optional<std::string> string(const char* name) const {
    const Json* v = get(name);
    if (!v) return std::nullopt;
    if (!v->is_string()) throw ApiError::invalid(std::string(name) + " must be a string", name);
    return v->get<std::string>();
  }

 private:
  static std::string format(double x) {
    Json j = x;
    if (std::floor(x) == x && std::fabs(x) < 1e15) j = static_cast<int64_t>(x);
    return j.dump();
  }

  const Json& body_;
};

// Text parts joined by newlines, as vLLM does for templates that expect a string.
Json content_text(const Json& content, const std::string& param) {
  if (content.is_null() || content.is_string()) return content;
  if (!content.is_array()) throw ApiError::invalid(param + " must be a string or an array of content parts", param);
  std::string text;
  for (size_t i = 0; i < content.size(); ++i) {
    const Json& part = content[i];
    const std::string where = param + "[" + std::to_string(i) + "]";
    if (!part.is_object() || !part.contains("type") || !part["type"].is_string())
      throw ApiError::invalid(where + " must be an object with a type", where);
    const std::string type = part["type"];
    if (type != "text")
      throw ApiError::invalid(where + ": content parts of type '" + type + "' are not supported (text only)", where);
    if (!part.contains("text") || !part["text"].is_string()) throw ApiError::invalid(where + ".text must be a string", where);
    if (!text.empty()) text += '\n';
    text += part["text"].get<std::string>();
  }
  return text;
}

// Assistant tool calls as chat templates read them: arguments as an object where the JSON
// string holds one (templates iterate over them), the original string otherwise.
Json template_tool_calls(const Json& calls, const std::string& param) {
  if (!calls.is_array()) throw ApiError::invalid(param + " must be an array", param);
  Json out = Json::array();
  for (size_t i = 0; i < calls.size(); ++i) {
    const std::string where = param + "[" + std::to_string(i) + "]";
    const Json& call = calls[i];
    if (!call.is_object() || !call.contains("function") || !call["function"].is_object())
      throw ApiError::invalid(where + " must have a function", where);
    const Json& fn = call["function"];
    if (!fn.contains("name") || !fn["name"].is_string()) throw ApiError::invalid(where + ".function.name must be a string", where);
    Json arguments = fn.contains("arguments") ? fn["arguments"] : Json::object();
    if (arguments.is_string()) {
      Json parsed = Json::parse(arguments.get<std::string>(), nullptr, false);
      if (parsed.is_object()) arguments = std::move(parsed);
    }
    Json c = {{"id", call.value("id", "")}, {"type", "function"}, {"function", {{"name", fn["name"]}, {"arguments", arguments}}}};
    out.push_back(std::move(c));
  }
  return out;
}

Json parse_messages(const Json* messages) {
  if (!messages) throw ApiError::invalid("messages is required", "messages");
  if (!messages->is_array() || messages->empty())
    throw ApiError::invalid("messages must be a non-empty array", "messages");
  Json out = Json::array();
  for (size_t i = 0; i < messages->size(); ++i) {
    const std::string where = "messages[" + std::to_string(i) + "]";
    const Json& m = (*messages)[i];
    if (!m.is_object()) throw ApiError::invalid(where + " must be an object", where);
    if (!m.contains("role") || !m["role"].is_string()) throw ApiError::invalid(where + ".role must be a string", where + ".role");
    std::string role = m["role"];
    if (role == "developer") role = "system";  // the templates know system prompts only
    if (role != "system" && role != "user" && role != "assistant" && role != "tool")
      throw ApiError::invalid(where + ".role must be one of system, developer, user, assistant, tool; got '" + role + "'",
                              where + ".role");
    Json msg = {{"role", role}};
    const Json content = m.contains("content") ? content_text(m["content"], where + ".content") : Json();
    if (content.is_null() && role != "assistant")
      throw ApiError::invalid(where + ".content is required", where + ".content");
    msg["content"] = content;
    if (role == "assistant") {
      if (m.contains("tool_calls") && !m["tool_calls"].is_null())
        msg["tool_calls"] = template_tool_calls(m["tool_calls"], where + ".tool_calls");
      if (m.contains("reasoning_content") && m["reasoning_content"].is_string())
        msg["reasoning_content"] = m["reasoning_content"];
      if (content.is_null() && !msg.contains("tool_calls"))
        throw ApiError::invalid(where + ": an assistant message needs content or tool_calls", where + ".content");
    }
    if (role == "tool") {
      if (!m.contains("tool_call_id") || !m["tool_call_id"].is_string())
        throw ApiError::invalid(where + ".tool_call_id must be a string", where + ".tool_call_id");
      msg["tool_call_id"] = m["tool_call_id"];
    }
    if (m.contains("name") && m["name"].is_string()) msg["name"] = m["name"];
    out.push_back(std::move(msg));
  }
  return out;
}

// OpenAI's rule for function names: 1 to 64 of a-z, A-Z, 0-9, '_' and '-'.
bool valid_function_name(const std::string& name) {
  return !name.empty() && name.size() <= 64 && std::all_of(name.begin(), name.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '-';
  });
}

void parse_tools(const Fields& f, GenerationRequest& r) {
  if (const Json* tools = f.get("tools")) {
    if (!tools->is_array()) throw ApiError::invalid("tools must be an array", "tools");
    for (size_t i = 0; i < tools->size(); ++i) {
      const std::string where = "tools[" + std::to_string(i) + "]";
      const Json& t = (*tools)[i];
      if (!t.is_object() || t.value("type", "") != "function" || !t.contains("function") || !t["function"].is_object())
        throw ApiError::invalid(where + " must be {\"type\": \"function\", \"function\": {...}}", where);
      const Json& fn = t["function"];
      const std::string name = fn.contains("name") && fn["name"].is_string() ? fn["name"].get<std::string>() : "";
      if (!valid_function_name(name))
        throw ApiError::invalid(where + ".function.name must be 1 to 64 letters, digits, _ or -", where + ".function.name");
      Json out_fn = {{"name", name}};
      if (fn.contains("description")) out_fn["description"] = fn["description"];
      if (fn.contains("parameters")) {
        if (!fn["parameters"].is_object())
          throw ApiError::invalid(where + ".function.parameters must be a JSON schema object", where + ".function.parameters");
        out_fn["parameters"] = fn["parameters"];
      } else {
        out_fn["parameters"] = {{"type", "object"}, {"properties", Json::object()}};
      }
      r.tools.push_back({{"type", "function"}, {"function", std::move(out_fn)}});
    }
  }
  const Json* choice = f.get("tool_choice");
  if (!choice) return;
  if (r.tools.empty()) throw ApiError::invalid("tool_choice is only allowed when tools are given", "tool_choice");
  if (choice->is_string()) {
    const std::string c = *choice;
    if (c == "auto") r.tool_choice = ToolChoice::Auto;
    else if (c == "none") r.tool_choice = ToolChoice::None;
    else if (c == "required") r.tool_choice = ToolChoice::Required;
    else throw ApiError::invalid("tool_choice must be none, auto, required or a function", "tool_choice");
    return;
  }
  if (!choice->is_object() || !choice->contains("function") || !(*choice)["function"].is_object() ||
      !(*choice)["function"].contains("name") || !(*choice)["function"]["name"].is_string())
    throw ApiError::invalid("tool_choice must be none, auto, required or {\"type\": \"function\", \"function\": {\"name\": ...}}",
                            "tool_choice");
  r.tool_choice = ToolChoice::Named;
  r.tool_name = (*choice)["function"]["name"];
  for (const Json& t : r.tools)
    if (t["function"]["name"] == r.tool_name) return;
  throw ApiError::invalid("tool_choice names function '" + r.tool_name + "', which is not in tools", "tool_choice");
}

void parse_response_format(const Fields& f, GenerationRequest& r) {
  const Json* format = f.get("response_format");
  if (!format) return;
  if (!format->is_object() || !format->contains("type") || !(*format)["type"].is_string())
    throw ApiError::invalid("response_format must be an object with a type", "response_format");
  const std::string type = (*format)["type"];
  if (type == "text") return;
  if (type == "json_object") {
    r.response_format.kind = ResponseFormat::Kind::JsonObject;
    r.response_format.schema = {{"type", "object"}};
    return;
  }
  if (type != "json_schema")
    throw ApiError::invalid("response_format.type must be text, json_object or json_schema", "response_format.type");
  const auto js = format->find("json_schema");
  if (js == format->end() || !js->is_object() || !js->contains("name") || !(*js)["name"].is_string())
    throw ApiError::invalid("response_format.json_schema must be an object with a name", "response_format.json_schema");
  const auto schema = js->find("schema");
  if (schema != js->end() && !schema->is_object() && !schema->is_boolean())
    throw ApiError::invalid("response_format.json_schema.schema must be a JSON schema object",
                            "response_format.json_schema.schema");
  r.response_format.kind = ResponseFormat::Kind::JsonSchema;
  r.response_format.schema = schema == js->end() ? nlohmann::json::object() : nlohmann::json::parse(schema->dump());
}

// The fields both endpoints share.
void parse_common(const Fields& f, GenerationRequest& r) {
  const auto model = f.string("model");
  if (!model || model->empty()) throw ApiError::invalid("model is required", "model");
  r.model = *model;
  constexpr int64_t kMaxTokens = std::numeric_limits<int32_t>::max();
  if (auto v = f.integer("max_tokens", 1, kMaxTokens)) r.max_tokens = *v;
  if (auto v = f.integer("max_completion_tokens", 1, kMaxTokens)) r.max_tokens = *v;
  if (auto v = f.number("temperature", 0, 2)) r.sampling.temperature = static_cast<float>(*v);
  if (auto v = f.number("top_p", 0, 1)) {
    if (*v == 0) throw ApiError::invalid("top_p must be greater than 0", "top_p", "invalid_value");
    r.sampling.top_p = static_cast<float>(*v);
  }
  if (auto v = f.integer("top_k", -1, std::numeric_limits<int32_t>::max())) r.sampling.top_k = static_cast<int32_t>(std::max<int64_t>(*v, 0));
  if (auto v = f.number("min_p", 0, 1)) r.sampling.min_p = static_cast<float>(*v);
  if (auto v = f.number("presence_penalty", -2, 2)) r.sampling.presence_penalty = static_cast<float>(*v);
  if (auto v = f.number("frequency_penalty", -2, 2)) r.sampling.frequency_penalty = static_cast<float>(*v);
  if (auto v = f.number("repetition_penalty", 0, 2)) {
    if (*v == 0) throw ApiError::invalid("repetition_penalty must be greater than 0", "repetition_penalty", "invalid_value");
    r.sampling.repetition_penalty = static_cast<float>(*v);
  }
  if (auto v = f.integer("seed", std::numeric_limits<int64_t>::min(), std::numeric_limits<int64_t>::max()))
    r.sampling.seed = static_cast<uint64_t>(*v);
  if (auto v = f.integer("n", 1, 16)) r.n = static_cast<int>(*v);
  if (const Json* stop = f.get("stop")) {
    if (stop->is_string()) {
      r.stop.push_back(*stop);
    } else if (stop->is_array() && stop->size() <= 4) {
      for (const Json& s : *stop) {
        if (!s.is_string()) throw ApiError::invalid("stop must be a string or an array of up to 4 strings", "stop");
        r.stop.push_back(s);
      }
    } else {
      throw ApiError::invalid("stop must be a string or an array of up to 4 strings", "stop");
    }
    std::erase_if(r.stop, [](const std::string& s) { return s.empty(); });
  }
  r.ignore_eos = f.boolean("ignore_eos").value_or(false);
  r.stream = f.boolean("stream").value_or(false);
  if (const Json* options = f.get("stream_options")) {
    if (!r.stream) throw ApiError::invalid("stream_options is only allowed when stream is true", "stream_options");
    if (!options->is_object()) throw ApiError::invalid("stream_options must be an object", "stream_options");
    r.include_usage = Fields(*options).boolean("include_usage").value_or(false);
  }
  parse_response_format(f, r);
  r.cache_salt = f.string("cache_salt").value_or("");
  r.user = f.string("user").value_or("");
  r.request_id = f.string("request_id").value_or("");
}

Json usage_json(const Usage& u) {
  return {{"prompt_tokens", u.prompt_tokens},
          {"completion_tokens", u.completion_tokens},
          {"total_tokens", u.prompt_tokens + u.completion_tokens},
          {"prompt_tokens_details", {{"cached_tokens", u.cached_tokens}}},
          {"completion_tokens_details", {{"reasoning_tokens", u.reasoning_tokens}}}};
}

Json tool_calls_json(const std::vector<ToolCallOut>& calls, bool with_index) {
  Json out = Json::array();
  for (const ToolCallOut& c : calls) {
    Json j;
    if (with_index) j["index"] = c.index;
    if (with_index && c.id.empty()) {  // the next piece of a streamed call's arguments
      j["function"] = {{"arguments", c.arguments}};
      out.push_back(std::move(j));
      continue;
    }
    j["id"] = c.id;
    j["type"] = "function";
    j["function"] = {{"name", c.name}, {"arguments", c.arguments}};
    out.push_back(std::move(j));
  }
  return out;
}

Json bytes_json(const std::string& bytes) {
  Json out = Json::array();
  for (unsigned char c : bytes) out.push_back(static_cast<int>(c));
  return out;
}

// Chat logprobs: {"content": [{token, logprob, bytes, top_logprobs: [...]}]}.
Json chat_logprobs_json(const std::vector<TokenLogprobOut>& tokens) {
  Json content = Json::array();
  for (const TokenLogprobOut& t : tokens) {
    Json top = Json::array();
    for (const TokenLogprobOut& alt : t.top)
      top.push_back({{"token", alt.token}, {"logprob", alt.logprob}, {"bytes", bytes_json(alt.bytes)}});
    content.push_back({{"token", t.token}, {"logprob", t.logprob}, {"bytes", bytes_json(t.bytes)}, {"top_logprobs", top}});
  }
  return {{"content", content}};
}

// Completions logprobs: parallel arrays, offsets into the choice's text.
Json completion_logprobs_json(const std::vector<TokenLogprobOut>& tokens, size_t first_offset) {
  Json text = Json::array(), lp = Json::array(), top = Json::array(), offsets = Json::array();
  size_t offset = first_offset;
  for (const TokenLogprobOut& t : tokens) {
    text.push_back(t.token);
    lp.push_back(t.logprob);
    Json alts = Json::object();
    for (const TokenLogprobOut& alt : t.top) alts[alt.token] = alt.logprob;
    top.push_back(alts);
    offsets.push_back(offset);
    offset += t.token.size();
  }
  return {{"tokens", text}, {"token_logprobs", lp}, {"top_logprobs", top}, {"text_offset", offsets}};
}

Json header(const GenerationResponse& response, const char* object) {
  return {{"id", response.id}, {"object", object}, {"created", response.created}, {"model", response.model}};
}

}  // namespace

Json parse_body(std::string_view body) {
  Json j = Json::parse(body, nullptr, false);
  if (j.is_discarded())
    throw ApiError::invalid(
        "We could not parse the JSON body of your request. The API expects a JSON payload; make sure the body "
        "is valid JSON.");
  if (!j.is_object()) throw ApiError::invalid("the request body must be a JSON object");
  return j;
}

GenerationRequest parse_chat_request(const Json& body) {
  const Fields f(body);
  GenerationRequest r;
  r.endpoint = Endpoint::Chat;
  parse_common(f, r);
  r.messages = parse_messages(f.get("messages"));
  parse_tools(f, r);
  r.logprobs = f.boolean("logprobs").value_or(false);
  if (auto v = f.integer("top_logprobs", 0, 20)) {
    if (!r.logprobs) throw ApiError::invalid("top_logprobs requires logprobs to be true", "top_logprobs");
    r.top_logprobs = static_cast<int>(*v);
  }
  if (const Json* kwargs = f.get("chat_template_kwargs")) {
    if (!kwargs->is_object()) throw ApiError::invalid("chat_template_kwargs must be an object", "chat_template_kwargs");
    r.template_kwargs = *kwargs;
  }
  return r;
}

GenerationRequest parse_completion_request(const Json& body) {
  const Fields f(body);
  GenerationRequest r;
  r.endpoint = Endpoint::Completion;
  parse_common(f, r);
  const Json* prompt = f.get("prompt");
  if (!prompt) throw ApiError::invalid("prompt is required", "prompt");
  const Json* single = prompt;
  // One prompt per request: a list holding exactly one string or one token list is accepted.
  if (prompt->is_array() && prompt->size() == 1 && ((*prompt)[0].is_string() || (*prompt)[0].is_array()))
    single = &(*prompt)[0];
  if (single->is_string()) {
    r.prompt = *single;
  } else if (single->is_array() && !single->empty() &&
             std::all_of(single->begin(), single->end(), [](const Json& t) { return t.is_number_integer(); })) {
    std::vector<int32_t> ids;
    for (const Json& t : *single) {
      const auto id = t.get<int64_t>();
      if (id < 0 || id > std::numeric_limits<int32_t>::max()) throw ApiError::invalid("prompt token ids must be non-negative", "prompt");
      ids.push_back(static_cast<int32_t>(id));
    }
    r.prompt_tokens = std::move(ids);
  } else {
    throw ApiError::invalid("prompt must be a string, a list of token ids, or a list holding one of them", "prompt");
  }
  r.echo = f.boolean("echo").value_or(false);
  if (auto v = f.integer("logprobs", 0, 5)) {
    r.logprobs = true;
    r.top_logprobs = static_cast<int>(*v);
  }
  if (auto v = f.integer("best_of", 1, 16); v && *v != r.n)
    throw ApiError::invalid("best_of must equal n (candidates are not ranked on the server)", "best_of");
  if (auto suffix = f.string("suffix"); suffix && !suffix->empty())
    throw ApiError::invalid("suffix is not supported", "suffix");
  return r;
}

const char* finish_reason_name(FinishReason reason) {
  switch (reason) {
    case FinishReason::Stop: return "stop";
    case FinishReason::Length: return "length";
    case FinishReason::ToolCalls: return "tool_calls";
    case FinishReason::Cancelled: return "stop";
    case FinishReason::Error: return "error";
  }
  return "stop";
}

Json response_json(const GenerationRequest& request, const GenerationResponse& response) {
  const bool chat = request.endpoint == Endpoint::Chat;
  Json j = header(response, chat ? "chat.completion" : "text_completion");
  Json choices = Json::array();
  for (const Choice& c : response.choices) {
    Json choice = {{"index", c.index}};
    if (chat) {
      Json message = {{"role", "assistant"}};
      message["content"] = c.content.empty() && !c.tool_calls.empty() ? Json() : Json(c.content);
      if (!c.reasoning.empty()) message["reasoning_content"] = c.reasoning;
      if (!c.tool_calls.empty()) message["tool_calls"] = tool_calls_json(c.tool_calls, false);
      choice["message"] = message;
      choice["logprobs"] = request.logprobs ? chat_logprobs_json(c.logprobs) : Json();
    } else {
      const std::string prefix = request.echo ? response.prompt_text : "";
      choice["text"] = prefix + c.content;
      choice["logprobs"] = request.logprobs ? completion_logprobs_json(c.logprobs, prefix.size()) : Json();
    }
    choice["finish_reason"] = finish_reason_name(c.finish_reason);
    choices.push_back(std::move(choice));
  }
  j["choices"] = choices;
  j["usage"] = usage_json(response.usage);
  return j;
}

Json chunk_json(const GenerationRequest& request, const GenerationResponse& response, const ChoiceDelta& d, bool first) {
  const bool chat = request.endpoint == Endpoint::Chat;
  Json j = header(response, chat ? "chat.completion.chunk" : "text_completion");
  Json choice = {{"index", d.index}};
  if (chat) {
    Json delta = Json::object();
    if (first) delta["role"] = "assistant";
    if (!d.content.empty() || (first && d.reasoning.empty() && d.tool_calls.empty())) delta["content"] = d.content;
    if (!d.reasoning.empty()) delta["reasoning_content"] = d.reasoning;
    if (!d.tool_calls.empty()) delta["tool_calls"] = tool_calls_json(d.tool_calls, true);
    choice["delta"] = delta;
    choice["logprobs"] = request.logprobs && !d.logprobs.empty() ? chat_logprobs_json(d.logprobs) : Json();
  } else {
    choice["text"] = (first && request.echo ? response.prompt_text : "") + d.content;
    choice["logprobs"] = request.logprobs && !d.logprobs.empty() ? completion_logprobs_json(d.logprobs, 0) : Json();
  }
  choice["finish_reason"] = d.finish_reason ? Json(finish_reason_name(*d.finish_reason)) : Json();
  j["choices"] = Json::array({choice});
  if (request.include_usage) j["usage"] = nullptr;
  return j;
}

Json usage_chunk_json(const GenerationRequest& request, const GenerationResponse& response) {
  Json j = header(response, request.endpoint == Endpoint::Chat ? "chat.completion.chunk" : "text_completion");
  j["choices"] = Json::array();
  j["usage"] = usage_json(response.usage);
  return j;
}

Json model_json(const ModelCard& m) {
  return {{"id", m.id}, {"object", "model"}, {"created", m.created}, {"owned_by", "tokenmill"}};
}

Json models_json(const std::vector<ModelCard>& models) {
  Json data = Json::array();
  for (const ModelCard& m : models) data.push_back(model_json(m));
  return {{"object", "list"}, {"data", data}};
}

// A provider's business code (Zhipu's "1113") takes the code member: Zhipu clients switch on
// error.code, and the type still classifies the error for OpenAI clients.
Json error_json(const ApiError& e) {
  const std::string& code = e.business_code.empty() ? e.code : e.business_code;
  Json error = {{"message", e.message},
                {"type", e.type},
                {"param", e.param.empty() ? Json() : Json(e.param)},
                {"code", code.empty() ? Json() : Json(code)}};
  for (const auto& [k, v] : e.details.items()) error[k] = v;
  return {{"error", error}};
}

}  // namespace tokenmill::api::openai
