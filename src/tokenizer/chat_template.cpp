#include "tokenizer/chat_template.h"

#include <fstream>
#include <sstream>

#include "common/error.h"

namespace tokenmill {

std::string read_template_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Error("cannot read chat template file '" + path + "'");
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

std::string load_chat_template(const gguf::File& model, const std::optional<std::string>& override_path) {
  if (override_path) return read_template_file(*override_path);
  if (auto source = model.get_string("tokenizer.chat_template")) return *source;
  throw Error("model '" + model.path() +
              "' has no chat template (GGUF key tokenizer.chat_template); pass one with --chat-template FILE");
}

void add_special_tokens(const gguf::File& model, nlohmann::ordered_json& variables) {
  const gguf::Array* tokens = model.get_array("tokenizer.ggml.tokens");
  if (!tokens) return;
  for (const char* which : {"bos", "eos"}) {
    const std::string variable = std::string(which) + "_token";
    if (variables.contains(variable)) continue;
    const auto id = model.get_uint(std::string("tokenizer.ggml.") + which + "_token_id");
    if (!id || *id >= tokens->items.size()) continue;
    if (const auto* text = std::get_if<std::string>(&tokens->items[*id].v)) variables[variable] = *text;
  }
}

}  // namespace tokenmill
