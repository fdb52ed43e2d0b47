#include "tokenizer/tiktoken_vocab.h"

#include <charconv>
#include <algorithm>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>

#include "common/error.h"
#include "tokenizer/byte_level.h"
#include "tokenizer/string_index.h"

namespace tokenmill::tokenizer {
namespace {

std::optional<std::string> base64_decode(std::string_view in) {
  auto value = [](char c) -> int {
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '+') return 62;
    if (c == '/') return 63;
    return -1;
  };
  while (!in.empty() && in.back() == '=') in.remove_suffix(1);
  std::string out;
  uint32_t bits = 0;
  int n_bits = 0;
  for (char c : in) {
    const int v = value(c);
    if (v < 0) return std::nullopt;
    bits = (bits << 6) | static_cast<uint32_t>(v);
    n_bits += 6;
    if (n_bits >= 8) {
      n_bits -= 8;
      out += static_cast<char>((bits >> n_bits) & 0xFF);
    }
  }
  return out;
}

std::string byte_level(std::string_view bytes) {
  std::string out;
  append_byte_level(out, bytes);
  return out;
}

nlohmann::json read_json(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw Error(path + ": cannot open");
  try {
    return nlohmann::json::parse(in);
  } catch (const nlohmann::json::exception& e) {
    throw Error(path + ": not valid JSON: " + e.what());
  }
}

}  // namespace

std::vector<std::string> read_tiktoken_ranks(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Error(path + ": cannot open");
  std::vector<std::string> ranks;
  std::vector<bool> seen;
  std::string line;
  for (size_t line_number = 1; std::getline(in, line); ++line_number) {
    if (line.empty()) continue;
    const auto fail = [&](const std::string& why) {
      return Error(path + ":" + std::to_string(line_number) + ": " + why);
    };
    const size_t space = line.find(' ');
    if (space == std::string::npos) throw fail("expected 'base64 rank'");
    const auto bytes = base64_decode(std::string_view(line).substr(0, space));
    if (!bytes || bytes->empty()) throw fail("token is not non-empty base64");
    size_t rank = 0;
    const char* first = line.data() + space + 1;
    const char* last = line.data() + line.size();
    const auto [end, ec] = std::from_chars(first, last, rank);
    if (ec != std::errc() || end != last || rank > 10'000'000) throw fail("rank is not a number");
    if (rank >= ranks.size()) {
      ranks.resize(rank + 1);
      seen.resize(rank + 1);
    }
    if (seen[rank]) throw fail("rank " + std::to_string(rank) + " appears twice");
    seen[rank] = true;
    ranks[rank] = *bytes;
  }
  for (size_t r = 0; r < seen.size(); ++r)
    if (!seen[r]) throw Error(path + ": rank " + std::to_string(r) + " is missing");
  if (ranks.empty()) throw Error(path + ": no ranks");
  return ranks;
}

std::vector<std::string> merges_from_ranks(const std::vector<std::string>& ranks) {
  StringIndex rank_of(ranks.size());
  for (size_t r = 0; r < ranks.size(); ++r) rank_of.insert(ranks[r], static_cast<int32_t>(r));
  for (int b = 0; b < 256; ++b)
    if (rank_of.find(std::string(1, static_cast<char>(b))) < 0)
      throw Error("tiktoken ranks lack the single byte " + std::to_string(b) + ": not a byte-level vocabulary");

  struct Split {
    int32_t left_rank;
    int32_t right_rank;
    size_t at;
  };
  std::vector<std::string> merges;
  std::vector<Split> splits;
  for (const std::string& token : ranks) {
    splits.clear();
    for (size_t at = 1; at < token.size(); ++at) {
      const int32_t l = rank_of.find(std::string_view(token).substr(0, at));
      const int32_t r = rank_of.find(std::string_view(token).substr(at));
      if (l >= 0 && r >= 0) splits.push_back({l, r, at});
    }
    std::sort(splits.begin(), splits.end(), [](const Split& a, const Split& b) {
      return a.left_rank != b.left_rank ? a.left_rank < b.left_rank : a.right_rank < b.right_rank;
    });
    for (const Split& s : splits)
      merges.push_back(byte_level(std::string_view(token).substr(0, s.at)) + " " +
                       byte_level(std::string_view(token).substr(s.at)));
  }
  return merges;
}

Metadata glm4_tokenizer_metadata(const std::string& ranks_path, const std::string& tokenizer_config_path,
                                 uint32_t vocab_size) {
  const std::vector<std::string> ranks = read_tiktoken_ranks(ranks_path);
  if (ranks.size() > vocab_size)
    throw Error(ranks_path + ": " + std::to_string(ranks.size()) + " ranks do not fit a vocabulary of " +
                std::to_string(vocab_size));

  std::vector<std::string> tokens(vocab_size);
  std::vector<int32_t> types(vocab_size, static_cast<int32_t>(TokenType::Unused));
  for (size_t r = 0; r < ranks.size(); ++r) {
    tokens[r] = byte_level(ranks[r]);
    types[r] = static_cast<int32_t>(TokenType::Normal);
  }

  // Added tokens marked special are CONTROL; so are "<|...|>" ones that the config forgot to
  // mark (as the GGUF converter decides); the rest (<think>, <tool_call>, ...) are USER_DEFINED.
  const nlohmann::json config = read_json(tokenizer_config_path);
  const auto added = config.find("added_tokens_decoder");
  if (added == config.end() || !added->is_object())
    throw Error(tokenizer_config_path + ": no added_tokens_decoder object");
  std::map<std::string, uint32_t> id_of;
  for (const auto& [key, entry] : added->items()) {
    uint32_t id = 0;
    const auto [end, ec] = std::from_chars(key.data(), key.data() + key.size(), id);
    if (ec != std::errc() || end != key.data() + key.size() || id < ranks.size() || id >= vocab_size)
      throw Error(tokenizer_config_path + ": added token id '" + key + "' is not between " +
                  std::to_string(ranks.size()) + " and " + std::to_string(vocab_size - 1));
    if (!entry.is_object() || !entry.contains("content") || !entry["content"].is_string())
      throw Error(tokenizer_config_path + ": added token " + key + " has no content");
    const std::string content = entry["content"].get<std::string>();
    const bool special = entry.value("special", false);
    const bool looks_special = content.starts_with("<|") && content.ends_with("|>");
    tokens[id] = content;
    types[id] = static_cast<int32_t>(special || looks_special ? TokenType::Control : TokenType::UserDefined);
    id_of[content] = id;
  }
  for (uint32_t id = 0; id < vocab_size; ++id)
    if (types[id] == static_cast<int32_t>(TokenType::Unused)) tokens[id] = "[PAD" + std::to_string(id) + "]";

  auto special_id = [&](const std::string& content) {
    const auto it = id_of.find(content);
    if (it == id_of.end()) throw Error(tokenizer_config_path + ": the added tokens lack " + content);
    return gguf::Value(it->second);
  };

  Metadata metadata;
  metadata.emplace_back("tokenizer.ggml.model", "gpt2");
  metadata.emplace_back("tokenizer.ggml.pre", "glm4");
  metadata.emplace_back("tokenizer.ggml.tokens", gguf::make_array(gguf::ValueType::STRING, tokens));
  metadata.emplace_back("tokenizer.ggml.token_type", gguf::make_array(gguf::ValueType::I32, types));
  metadata.emplace_back("tokenizer.ggml.merges", gguf::make_array(gguf::ValueType::STRING, merges_from_ranks(ranks)));
  metadata.emplace_back("tokenizer.ggml.eos_token_id", special_id("<|endoftext|>"));
  metadata.emplace_back("tokenizer.ggml.padding_token_id", special_id("<|endoftext|>"));
  metadata.emplace_back("tokenizer.ggml.bos_token_id", special_id("[gMASK]"));
  metadata.emplace_back("tokenizer.ggml.eot_token_id", special_id("<|user|>"));
  metadata.emplace_back("tokenizer.ggml.unknown_token_id", special_id("<|endoftext|>"));
  metadata.emplace_back("tokenizer.ggml.eom_token_id", special_id("<|observation|>"));
  metadata.emplace_back("tokenizer.ggml.add_bos_token", false);
  return metadata;
}

}  // namespace tokenmill::tokenizer
