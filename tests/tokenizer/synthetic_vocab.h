// Small vocabularies built in memory, so tokenizer behaviour can be tested exactly without data
// files: a byte-level BPE vocabulary (256 byte tokens, then merged tokens, then added tokens) and
// a SentencePiece one (<unk> <s> </s>, 256 byte-fallback tokens, then scored pieces).
#pragma once

#include <cstdio>
#include <string>
#include <utility>
#include <vector>

#include "tokenizer/byte_level.h"
#include "tokenizer/tokenizer.h"

namespace tokenmill::tokenizer::synthetic {

struct AddedToken {
  std::string text;
  TokenType type;
};

inline std::string byte_level_text(std::string_view raw) {
  std::string s;
  append_byte_level(s, raw);
  return s;
}

// Token ids: byte b is b; merges[i] makes token 256 + i; added token j is 256 + merges + j.
inline Metadata byte_level(const std::vector<std::pair<std::string, std::string>>& merges,
                           const std::vector<AddedToken>& added = {}, const std::string& pre = "gpt-2") {
  std::vector<std::string> tokens;
  std::vector<int32_t> types;
  for (int b = 0; b < 256; ++b) {
    tokens.push_back(byte_level_text(std::string(1, static_cast<char>(b))));
    types.push_back(static_cast<int32_t>(TokenType::Normal));
  }
  std::vector<std::string> merge_lines;
  for (const auto& [left, right] : merges) {
    tokens.push_back(byte_level_text(left + right));
    types.push_back(static_cast<int32_t>(TokenType::Normal));
    merge_lines.push_back(byte_level_text(left) + " " + byte_level_text(right));
  }
  for (const AddedToken& a : added) {
    tokens.push_back(a.text);
    types.push_back(static_cast<int32_t>(a.type));
  }
  return {
      {"tokenizer.ggml.model", "gpt2"},
      {"tokenizer.ggml.pre", pre},
      {"tokenizer.ggml.tokens", gguf::make_array(gguf::ValueType::STRING, tokens)},
      {"tokenizer.ggml.token_type", gguf::make_array(gguf::ValueType::I32, types)},
      {"tokenizer.ggml.merges", gguf::make_array(gguf::ValueType::STRING, merge_lines)},
  };
}

// Token ids: 0 <unk>, 1 <s>, 2 </s>, 3 + b the byte b, then `pieces` (text with "▁", score).
inline Metadata sentencepiece(const std::vector<std::pair<std::string, float>>& pieces,
                              const std::vector<AddedToken>& added = {}) {
  std::vector<std::string> tokens = {"<unk>", "<s>", "</s>"};
  std::vector<int32_t> types = {static_cast<int32_t>(TokenType::Unknown), static_cast<int32_t>(TokenType::Control),
                                static_cast<int32_t>(TokenType::Control)};
  std::vector<float> scores = {0, 0, 0};
  for (int b = 0; b < 256; ++b) {
    char text[8];
    std::snprintf(text, sizeof text, "<0x%02X>", b);
    tokens.push_back(text);
    types.push_back(static_cast<int32_t>(TokenType::Byte));
    scores.push_back(0);
  }
  for (const auto& [text, score] : pieces) {
    tokens.push_back(text);
    types.push_back(static_cast<int32_t>(TokenType::Normal));
    scores.push_back(score);
  }
  for (const AddedToken& a : added) {
    tokens.push_back(a.text);
    types.push_back(static_cast<int32_t>(a.type));
    scores.push_back(0);
  }
  return {
      {"tokenizer.ggml.model", "llama"},
      {"tokenizer.ggml.tokens", gguf::make_array(gguf::ValueType::STRING, tokens)},
      {"tokenizer.ggml.token_type", gguf::make_array(gguf::ValueType::I32, types)},
      {"tokenizer.ggml.scores", gguf::make_array(gguf::ValueType::F32, scores)},
      {"tokenizer.ggml.bos_token_id", uint32_t{1}},
      {"tokenizer.ggml.eos_token_id", uint32_t{2}},
      {"tokenizer.ggml.unknown_token_id", uint32_t{0}},
  };
}

// `metadata` with `key` set to `value` (replaced when present).
inline Metadata with(Metadata metadata, const std::string& key, gguf::Value value) {
  for (auto& [k, v] : metadata) {
    if (k == key) {
      v = std::move(value);
      return metadata;
    }
  }
  metadata.emplace_back(key, std::move(value));
  return metadata;
}

inline Metadata without(Metadata metadata, const std::string& key) {
  std::erase_if(metadata, [&](const auto& kv) { return kv.first == key; });
  return metadata;
}

}  // namespace tokenmill::tokenizer::synthetic
