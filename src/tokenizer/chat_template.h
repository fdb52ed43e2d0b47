// Where a model's chat template comes from, and the variables it is rendered with. A GGUF
// carries the template as the metadata key tokenizer.chat_template; a model without one needs
// --chat-template FILE, and gets a clear error rather than a guessed format.
#pragma once

#include <optional>
#include <string>

#include <nlohmann/json.hpp>

#include "gguf/file.h"
#include "tokenizer/jinja_template.h"

namespace tokenmill {

// The template text: the override file when given, else the model's own; throws Error naming
// the model and the --chat-template option when neither exists.
std::string load_chat_template(const gguf::File& model, const std::optional<std::string>& override_path);
std::string read_template_file(const std::string& path);

// The model's BOS/EOS token texts (tokenizer.ggml.bos_token_id / eos_token_id into the token
// list), filled into `variables` where the request does not set bos_token / eos_token.
void add_special_tokens(const gguf::File& model, nlohmann::ordered_json& variables);

}  // namespace tokenmill
