// A chat template, parsed once and rendered per request. This is the engine's public face:
//
//   jinja::Template tmpl(gguf_chat_template_text);
//   std::string prompt = tmpl.render({{"messages", ...}, {"add_generation_prompt", true}});
//
// Rendering follows the semantics Hugging Face uses for chat templates (Jinja2 with
// trim_blocks and lstrip_blocks, loop controls, tojson as Python's json.dumps, raise_exception,
// strftime_now); docs/chat-templates.md lists where and why the output can differ from
// @huggingface/jinja.
#pragma once

#include <ctime>
#include <optional>
#include <string>

#include <nlohmann/json.hpp>

#include "tokenizer/jinja_ast.h"

namespace tokenmill::jinja {

struct RenderOptions {
  // The time strftime_now() formats; the local time at render when unset.
  std::optional<std::tm> now;
};

class Template {
 public:
  // Parses; throws TemplateError naming line and column.
  explicit Template(std::string source);

  // Every key of `variables` becomes a template variable (messages, tools, bos_token, ...).
  // Throws TemplateError, with the line and column, when evaluation fails or the template calls
  // raise_exception().
  std::string render(const nlohmann::ordered_json& variables, const RenderOptions& options = {}) const;

  const std::string& source() const { return source_; }

 private:
  std::string source_;
  Body body_;
};

}  // namespace tokenmill::jinja
