// Constrained decoding to JSON that validates against a schema (response_format json_schema and
// json_object, forced tool calls). A schema is compiled into nodes; a byte-level pushdown
// matcher follows the output, and a token may come next only when its bytes keep the output a
// prefix of some valid document. The matcher also knows the fewest bytes that complete the
// document, so a token is refused when the tokens left could no longer close it: the output is
// whole, valid JSON even when max_tokens cuts a rambling model short.
//
// Supported: type (one or several), properties, required, additionalProperties, items, enum,
// const, anyOf / oneOf (as anyOf), allOf of one schema, $ref to #, #/$defs/... and
// #/definitions/...; annotations (title, description, default, examples, format, ...) are
// ignored. Keywords that would need more than this (pattern, minimum, minItems, ...) are
// rejected by compile(). Deliberately stricter than the schema: an object with `properties`
// and no `additionalProperties` gets only the declared properties, and whitespace between
// tokens is limited to short runs.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "engine/token_constraint.h"
#include "tokenizer/tokenizer.h"

namespace tokenmill::engine {

class JsonSchema {
 public:
  // Throws tokenmill::Error naming the unsupported or malformed part.
  static std::shared_ptr<const JsonSchema> compile(const nlohmann::json& schema);

  struct Node;
  const Node& node(int i) const;
  int root() const { return root_; }
  // Bytes of the shortest valid document: the fewest tokens a constrained output may need.
  int64_t min_length() const;

  ~JsonSchema();

 private:
  JsonSchema();
  friend class SchemaCompiler;
  std::vector<Node> nodes_;
  int root_ = 0;
};

// A model's tokens as byte strings in a trie, built once per model, so masking walks shared
// prefixes once. Control and unused tokens are not in it; end-of-generation tokens are listed.
class VocabularyIndex {
 public:
  explicit VocabularyIndex(const tokenizer::Tokenizer& tokenizer);

  struct TrieNode {
    std::vector<std::pair<uint8_t, int32_t>> children;  // byte, node index; sorted by byte
    std::vector<int32_t> tokens;                        // tokens whose bytes end here
  };
  const std::vector<TrieNode>& trie() const { return trie_; }
  std::span<const uint8_t> bytes(int32_t token) const;  // empty for tokens not in the trie
  const std::vector<int32_t>& end_tokens() const { return end_tokens_; }
  size_t size() const { return offsets_.size() - 1; }

 private:
  std::vector<TrieNode> trie_;
  std::vector<uint8_t> bytes_;
  std::vector<uint32_t> offsets_;  // token t's bytes: [offsets_[t], offsets_[t + 1])
  std::vector<int32_t> end_tokens_;
};

// The byte-level matcher, exposed for tests: feed bytes, ask whether the output is complete
// and how many bytes at least would complete it.
class JsonMatcher {
 public:
  explicit JsonMatcher(std::shared_ptr<const JsonSchema> schema);
  ~JsonMatcher();
  JsonMatcher(const JsonMatcher&);
  JsonMatcher& operator=(const JsonMatcher&);

  bool feed(uint8_t byte);  // false (and unchanged) when the byte cannot come next
  bool feed(std::span<const uint8_t> bytes);  // all or nothing
  bool complete() const;
  int64_t distance() const;  // fewest bytes that complete the document; 0 when complete

  struct State;

 private:
  std::shared_ptr<const JsonSchema> schema_;
  std::unique_ptr<State> state_;
};

std::unique_ptr<TokenConstraint> json_constraint(std::shared_ptr<const JsonSchema> schema,
                                                 std::shared_ptr<const VocabularyIndex> vocabulary);

}  // namespace tokenmill::engine
