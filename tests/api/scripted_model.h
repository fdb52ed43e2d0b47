// A model that always answers with the same text, for server tests that need a particular
// output (a tool call in the model's own format) from a real forward pass. The tiny synthetic
// model gets the text's pieces as added tokens, its blocks' output projections zeroed (each
// block then adds nothing to the residual stream) and untied embeddings crafted so that greedy
// decoding walks the pieces in order: every original token embeds as e0 and piece i as e(i+1);
// the output row of piece i reads e(i), that of </s> the last piece's.
#pragma once

#include <string>
#include <vector>

#include "model/model_files.h"

namespace tokenmill::testing {

inline std::string scripted_model(const std::string& name, const std::vector<std::string>& pieces) {
  const gguf::File f = gguf::File::open(synthetic_model(model::Arch::Llama, model::Preset::Tiny, "F32"));
  gguf::Writer w;
  uint64_t n_vocab = 0;
  for (const auto& e : f.metadata()) {
    if (e.key == "general.alignment") continue;
    gguf::Value value = e.value;
    if (gguf::Array* a = std::get_if<gguf::Array>(&value.v)) {
      for (const std::string& piece : pieces) {
        if (e.key == "tokenizer.ggml.tokens") a->items.emplace_back(piece);
        if (e.key == "tokenizer.ggml.token_type") a->items.emplace_back(int32_t{4});  // USER_DEFINED: kept as is
        if (e.key == "tokenizer.ggml.scores") a->items.emplace_back(0.0f);
      }
      if (e.key == "tokenizer.ggml.tokens") n_vocab = a->items.size();
    }
    w.set(e.key, value);
  }
  const uint64_t n_embd = f.find_tensor("token_embd.weight")->shape[0];
  const uint64_t first_piece = n_vocab - pieces.size();
  std::vector<const gguf::TensorInfo*> copied;
  for (const auto& t : f.tensors()) {
    if (t.name == "token_embd.weight") continue;
    w.add_tensor(t.name, t.type, t.shape);
    copied.push_back(&t);
  }
  w.add_tensor("token_embd.weight", gguf::TensorType::F32, {n_embd, n_vocab});
  w.add_tensor("output.weight", gguf::TensorType::F32, {n_embd, n_vocab});
  const std::string path = (test_dir() / (name + ".gguf")).string();
  w.write(path, [&](size_t i, uint8_t* out) {
    const auto& t = w.tensors()[i];
    float* x = reinterpret_cast<float*>(out);
    const uint64_t n = t.n_bytes / sizeof(float);
    if (i < copied.size()) {
      const bool silenced = t.name.ends_with("attn_output.weight") || t.name.ends_with("ffn_down.weight");
      std::copy_n(copied[i]->data, t.n_bytes, out);
      if (silenced) std::fill_n(x, n, 0.0f);
      if (t.name == "output_norm.weight") std::fill_n(x, n, 1.0f);
      return;
    }
    std::fill_n(x, n, 0.0f);
    for (uint64_t token = 0; token < n_vocab; ++token) {
      const bool piece = token >= first_piece;
      if (t.name == "token_embd.weight") {
        x[token * n_embd + (piece ? token - first_piece + 1 : 0)] = 1.0f;
      } else if (piece) {  // output.weight: piece i follows what embeds as e(i)
        x[token * n_embd + (token - first_piece)] = 10.0f;
      }
    }
    if (t.name == "output.weight") x[2 * n_embd + pieces.size()] = 10.0f;  // </s> after the last piece
  });
  return path;
}

// A GLM-4.7-format model whose every answer is one get_weather call, its arguments spread over
// several tokens: {"city":"San Francisco by the bay","days":14} when days is an integer.
inline const std::string kGlmTemplate = std::string(TOKENMILL_SOURCE_DIR) + "/tests/api/glm_tools.jinja";

inline std::string glm_tool_call_model() {
  return scripted_model("glm-tool-call", {"<tool_call>get_weather<arg_key>city</arg_key><arg_value>", "San", " Fran", "cisco",
                                          " by", " the", " bay", "</arg_value><arg_key>days</arg_key><arg_value>", "1",
                                          "4", "</arg_value></tool_call>"});
}

inline std::vector<std::string> serve_glm_tool_call() {
  return {"--model", "glm=" + glm_tool_call_model(), "--chat-template", "glm=" + kGlmTemplate};
}

}  // namespace tokenmill::testing
