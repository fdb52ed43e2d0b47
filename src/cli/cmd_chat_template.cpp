// `tokenmill chat-template render|parse`: the chat-template engine and the output parsers from
// the command line, for checking a model's prompt format by hand and for scripted comparisons.
//
//   render (--model MODEL [--chat-template FILE] | --template FILE) --input CONV.json [--now DATE]
//     prints exactly the prompt, nothing else. Every key of CONV.json (messages, tools,
//     add_generation_prompt, enable_thinking, bos_token, ...) is a template variable; with
//     --model, bos_token and eos_token default to the model's.
//   parse (--model MODEL | --template FILE | --format NAME) --input OUTPUT.txt [--tools TOOLS.json]
//     prints {"role", "content", "reasoning_content", "tool_calls"} as JSON.
#include <cstdio>
#include <ctime>
#include <fstream>
#include <optional>
#include <sstream>
#include <string>

#include <nlohmann/json.hpp>

#include "cli/commands.h"
#include "common/error.h"
#include "gguf/file.h"
#include "tokenizer/chat_parse.h"
#include "tokenizer/chat_template.h"
#include "tokenizer/jinja_template.h"

namespace tokenmill::cli {
namespace {

struct TemplateSource {
  std::string model;
  std::string chat_template;  // overrides the model's own template
  std::string template_file;  // a template without a model
};

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Error("cannot read '" + path + "'");
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

nlohmann::ordered_json read_json(const std::string& path) {
  try {
    return nlohmann::ordered_json::parse(read_file(path));
  } catch (const nlohmann::json::parse_error& e) {
    throw Error("'" + path + "' is not valid JSON: " + e.what());
  }
}

// The template text, and the model's BOS/EOS texts filled into `variables` when from a model.
std::string template_text(const TemplateSource& source, nlohmann::ordered_json* variables) {
  if (!source.template_file.empty()) return read_template_file(source.template_file);
  const gguf::File model = gguf::File::open(source.model);
  if (variables) add_special_tokens(model, *variables);
  return load_chat_template(model, source.chat_template.empty() ? std::nullopt : std::optional(source.chat_template));
}

std::tm parse_time(const std::string& text) {
  std::tm tm{};
  int year = 0, month = 0, day = 0, hour = 0, minute = 0, second = 0;
  const int fields = std::sscanf(text.c_str(), "%d-%d-%dT%d:%d:%d", &year, &month, &day, &hour, &minute, &second);
  if (fields != 3 && fields < 5) throw Error("--now expects YYYY-MM-DD or YYYY-MM-DDTHH:MM[:SS], got '" + text + "'");
  tm.tm_year = year - 1900;
  tm.tm_mon = month - 1;
  tm.tm_mday = day;
  tm.tm_hour = hour;
  tm.tm_min = minute;
  tm.tm_sec = second;
  const std::time_t t = timegm(&tm);  // normalises, and fills the weekday and day of the year
  gmtime_r(&t, &tm);
  return tm;
}

void add_source_options(CLI::App* command, TemplateSource& source) {
  auto* model = command->add_option("--model", source.model, "GGUF model whose tokenizer.chat_template is used");
  auto* override_file = command->add_option("--chat-template", source.chat_template,
                                            "template file used instead of the model's own")->needs(model);
  auto* file = command->add_option("--template", source.template_file, "Jinja chat template file (no model)");
  model->excludes(file);
  override_file->excludes(file);
}

}  // namespace

void register_chat_template(CLI::App& app) {
  auto* group = app.add_subcommand("chat-template", "Render chat templates and parse model output");
  group->require_subcommand(1);

  auto* render = group->add_subcommand("render", "Print the prompt a chat template makes of a conversation");
  static TemplateSource render_source;
  static std::string render_input, render_now;
  add_source_options(render, render_source);
  render->add_option("--input", render_input, "CONV.json: messages, tools, add_generation_prompt, ...")->required();
  render->add_option("--now", render_now, "the date strftime_now() sees (default: now)");
  render->callback([] {
    if (render_source.model.empty() && render_source.template_file.empty()) throw Error("give --model or --template");
    nlohmann::ordered_json variables = read_json(render_input);
    if (!variables.is_object()) throw Error("'" + render_input + "' must hold a JSON object");
    const jinja::Template tmpl(template_text(render_source, &variables));
    jinja::RenderOptions options;
    if (!render_now.empty()) options.now = parse_time(render_now);
    const std::string prompt = tmpl.render(variables, options);
    std::fwrite(prompt.data(), 1, prompt.size(), stdout);
  });

  auto* parse = group->add_subcommand("parse", "Split model output into content, reasoning and tool calls");
  static TemplateSource parse_source;
  static std::string parse_input, parse_tools, parse_format;
  static bool thinking_open = false;
  add_source_options(parse, parse_source);
  parse->add_option("--format", parse_format, "output format, when no template is given: " + chat_format_names());
  parse->add_option("--input", parse_input, "the model's raw output text")->required();
  parse->add_option("--tools", parse_tools, "JSON list of the request's tools (types the arguments)");
  parse->add_flag("--thinking-open", thinking_open, "the prompt already opened <think> (output starts inside it)");
  parse->callback([] {
    ChatParseOptions options;
    if (!parse_format.empty()) {
      options.format = chat_format_from_name(parse_format);
      options.reasoning = true;  // without a template to tell, a <think> block is reasoning
    } else if (!parse_source.model.empty() || !parse_source.template_file.empty()) {
      options = detect_chat_format(template_text(parse_source, nullptr));
    } else {
      throw Error("give --model, --template or --format");
    }
    if (thinking_open) options.reasoning = options.thinking_open = true;
    if (!parse_tools.empty()) options.tools = read_json(parse_tools);
    const ChatMessage message = parse_chat_output(read_file(parse_input), options);
    std::printf("%s\n", message.to_json().dump(2).c_str());
  });
}

}  // namespace tokenmill::cli
