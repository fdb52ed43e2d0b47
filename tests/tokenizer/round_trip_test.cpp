// Property tests over every byte-level BPE vocabulary we have (llama.cpp's vocab-only GGUFs and
// GLM-4): for valid UTF-8, detokenize(tokenize(s)) == s; for arbitrary bytes, tokenizing never
// fails and decodes to the input with ill-formed sequences replaced by U+FFFD.
#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <cstdlib>
#include <filesystem>

#include "gguf/file.h"
#include "tokenizer/text_corpus.h"
#include "tokenizer/tiktoken_vocab.h"
#include "tokenizer/tokenizer.h"
#include "tokenizer/utf8.h"

namespace tokenmill::tokenizer {
namespace {

// Some vocabularies (Falcon, StarCoder) lack tokens for a few bytes; the reference tokenizers
// drop such bytes, so text containing them cannot come back and is left out.
bool representable(const std::array<bool, 256>& has_byte, std::string_view text) {
  return std::all_of(text.begin(), text.end(), [&](char c) { return has_byte[static_cast<uint8_t>(c)]; });
}

void check_round_trips(const Tokenizer& t, uint64_t seed) {
  std::array<bool, 256> has_byte{};
  for (TokenId id = 0; id < static_cast<TokenId>(t.size()); ++id)
    if (t.type(id) == TokenType::Normal && t.piece(id).size() == 1) has_byte[static_cast<uint8_t>(t.piece(id)[0])] = true;

  Rng rng(seed);
  corpus::TextGenerator gen(seed, corpus::vocabulary_words(t, 97));
  int checked = 0;
  for (int i = 0; i < 400; ++i) {
    const std::string text = i % 2 ? corpus::random_valid_utf8(rng, rng.next_u64() % 200) : gen.any({});
    if (!representable(has_byte, text)) continue;
    ASSERT_EQ(t.detokenize(t.tokenize(text, false, false)), text);
    ++checked;
  }
  EXPECT_GT(checked, 150);
  for (int i = 0; i < 400; ++i) {
    const std::string bytes = corpus::random_bytes(rng, rng.next_u64() % 200);
    std::vector<TokenId> ids;
    ASSERT_NO_THROW(ids = t.tokenize(bytes, true, true));
    const std::string decoded = t.detokenize(t.tokenize(bytes, false, false));
    if (representable(has_byte, repair_utf8(bytes))) ASSERT_EQ(decoded, repair_utf8(bytes));
    else ASSERT_TRUE(is_valid_utf8(decoded));
  }
}

class ByteLevelRoundTrip : public testing::TestWithParam<const char*> {};

TEST_P(ByteLevelRoundTrip, TokenizeThenDetokenizeGivesTheText) {
  const char* tree = std::getenv("TOKENMILL_LLAMA_TREE");
  if (!tree) GTEST_SKIP() << "TOKENMILL_LLAMA_TREE is not set: no llama.cpp tree with the vocab GGUFs";
  const std::string path = std::string(tree) + "/models/ggml-vocab-" + GetParam() + ".gguf";
  check_round_trips(Tokenizer::from_gguf(gguf::File::open(path)), 11);
}

INSTANTIATE_TEST_SUITE_P(Vocabularies, ByteLevelRoundTrip,
                         testing::Values("llama-bpe", "qwen2", "qwen35", "deepseek-llm", "deepseek-coder", "gpt-2",
                                         "falcon", "mpt", "starcoder", "refact", "command-r"),
                         [](const testing::TestParamInfo<const char*>& info) {
                           std::string name = info.param;
                           for (char& c : name)
                             if (c == '-') c = '_';
                           return name;
                         });

TEST(Glm4RoundTrip, TokenizeThenDetokenizeGivesTheText) {
  const std::string dir = TOKENMILL_SOURCE_DIR "/../shared/tokenizers/glm4";
  if (!std::filesystem::exists(dir + "/tokenizer.model")) GTEST_SKIP() << "GLM-4 tokenizer data not found in " << dir;
  check_round_trips(Tokenizer::from_metadata(glm4_tokenizer_metadata(dir + "/tokenizer.model",
                                                                     dir + "/glm-4.5-tokenizer_config.json")),
                    12);
}

}  // namespace
}  // namespace tokenmill::tokenizer
