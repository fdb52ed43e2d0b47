// Tokenizer behaviour on small in-memory vocabularies: BPE merge order, SentencePiece scores and
// byte fallback, added tokens, BOS / EOS, end-of-generation sets, decoding, and clear errors for
// metadata we cannot serve.
#include <gtest/gtest.h>

#include <algorithm>
#include <string>
#include <vector>

#include "common/error.h"
#include "tokenizer/synthetic_vocab.h"
#include "tokenizer/tokenizer.h"

namespace tokenmill::tokenizer {
namespace {

using Ids = std::vector<TokenId>;
using synthetic::AddedToken;

TEST(BytePairEncoding, LowestRankMergesFirst) {
  EXPECT_EQ(Tokenizer::from_metadata(synthetic::byte_level({{"a", "b"}, {"b", "c"}})).tokenize("abc"),
            (Ids{256, 'c'}));
  EXPECT_EQ(Tokenizer::from_metadata(synthetic::byte_level({{"b", "c"}, {"a", "b"}})).tokenize("abc"),
            (Ids{'a', 256}));
  EXPECT_EQ(Tokenizer::from_metadata(synthetic::byte_level({{"a", "b"}, {"ab", "c"}})).tokenize("abc"), (Ids{257}));
}

TEST(BytePairEncoding, EqualRanksMergeLeftmostFirst) {
  const Tokenizer t = Tokenizer::from_metadata(synthetic::byte_level({{"a", "a"}}));
  EXPECT_EQ(t.tokenize("aaa"), (Ids{256, 'a'}));
  EXPECT_EQ(t.tokenize("aaaa"), (Ids{256, 256}));
}

TEST(BytePairEncoding, MergesStayInsideWords) {
  const Tokenizer t = Tokenizer::from_metadata(synthetic::byte_level({{"a", "b"}, {"b", " "}}));
  EXPECT_EQ(t.tokenize("ab ab"), (Ids{256, ' ', 256}));
}

TEST(BytePairEncoding, IgnoreMergesEmitsWholeTokenWords) {
  const std::vector<AddedToken> added = {{"xyz", TokenType::Normal}};
  const Metadata llama3 = synthetic::byte_level({}, added, "llama-bpe");
  EXPECT_EQ(Tokenizer::from_metadata(synthetic::with(llama3, "tokenizer.ggml.add_bos_token", false)).tokenize("xyz"),
            (Ids{256}));
  EXPECT_EQ(Tokenizer::from_metadata(synthetic::byte_level({}, added, "gpt-2")).tokenize("xyz"), (Ids{'x', 'y', 'z'}));
}

TEST(BytePairEncoding, AddedTokens) {
  const Tokenizer t = Tokenizer::from_metadata(
      synthetic::byte_level({}, {{"<|im_end|>", TokenType::Control}, {"<tool>", TokenType::UserDefined}}));
  EXPECT_EQ(t.tokenize("a<|im_end|>b<tool>"), (Ids{'a', 256, 'b', 257}));
  // Without special parsing the control token's text is ordinary text; the user-defined token
  // is still recognised.
  const Ids got = t.tokenize("a<|im_end|>b<tool>", true, false);
  EXPECT_EQ(t.detokenize(got), "a<|im_end|>b<tool>");
  EXPECT_EQ(std::count(got.begin(), got.end(), 256), 0);
  EXPECT_EQ(got.back(), 257);
  EXPECT_EQ(t.detokenize(Ids{'a', 256, 'b'}), "ab");
  EXPECT_EQ(t.detokenize(Ids{'a', 256, 'b'}, true), "a<|im_end|>b");
}

TEST(BytePairEncoding, InvalidUtf8IsReadAsReplacementCharacters) {
  const Tokenizer t = Tokenizer::from_metadata(synthetic::byte_level({}));
  EXPECT_EQ(t.tokenize("a\xFF" "b"), t.tokenize("a\xEF\xBF\xBD" "b"));
  EXPECT_EQ(t.detokenize(t.tokenize("\xE4\xB8")), "\xEF\xBF\xBD");
}

TEST(BytePairEncoding, BosEosAndEndOfGeneration) {
  Metadata m = synthetic::byte_level({}, {{"<|begin|>", TokenType::Control}, {"<|end_of_text|>", TokenType::Control},
                                          {"<|eot_id|>", TokenType::Control}, {"<|eom_id|>", TokenType::Control}});
  m = synthetic::with(m, "tokenizer.ggml.bos_token_id", uint32_t{256});
  m = synthetic::with(m, "tokenizer.ggml.eos_token_id", uint32_t{257});
  const Tokenizer plain = Tokenizer::from_metadata(m);
  EXPECT_FALSE(plain.adds_bos());
  EXPECT_EQ(plain.tokenize("a"), (Ids{'a'}));
  // EOT and EOM found by their texts, as in Llama 3 files that do not name them.
  EXPECT_EQ(plain.special().eot, 258);
  EXPECT_EQ(plain.special().eom, 259);
  EXPECT_EQ(plain.end_of_generation(), (Ids{257, 258, 259}));
  EXPECT_TRUE(plain.is_end_of_generation(258));
  EXPECT_FALSE(plain.is_end_of_generation('a'));

  m = synthetic::with(m, "tokenizer.ggml.add_bos_token", true);
  m = synthetic::with(m, "tokenizer.ggml.add_eos_token", true);
  const Tokenizer both = Tokenizer::from_metadata(m);
  EXPECT_EQ(both.tokenize("a"), (Ids{256, 'a', 257}));
  EXPECT_EQ(both.tokenize("a", false), (Ids{'a'}));
  EXPECT_EQ(both.tokenize(""), (Ids{256, 257}));
  // Llama 3 files without add_bos_token add BOS.
  const Tokenizer llama3 = Tokenizer::from_metadata(
      synthetic::with(synthetic::without(m, "tokenizer.ggml.add_bos_token"), "tokenizer.ggml.pre", "llama-bpe"));
  EXPECT_TRUE(llama3.adds_bos());
}

TEST(SentencePiece, HighestScoreMergesFirst) {
  auto pieces = [&](std::vector<std::pair<std::string, float>> extra) {
    std::vector<std::pair<std::string, float>> all = {{"\xE2\x96\x81", -10}, {"a", -10}, {"b", -10}, {"c", -10}};
    all.insert(all.end(), extra.begin(), extra.end());
    return Tokenizer::from_metadata(synthetic::sentencepiece(all));
  };
  // Ids: 259 "▁", 260 a, 261 b, 262 c, 263 first extra, 264 second extra. BOS (1) is added.
  EXPECT_EQ(pieces({{"ab", -5}, {"bc", -1}}).tokenize("abc"), (Ids{1, 259, 260, 264}));
  EXPECT_EQ(pieces({{"ab", -1}, {"bc", -5}}).tokenize("abc"), (Ids{1, 259, 263, 262}));
  EXPECT_EQ(pieces({{"\xE2\x96\x81" "a", -1}}).tokenize("a a", false), (Ids{263, 263}));
  EXPECT_TRUE(pieces({}).adds_space_prefix());
}

TEST(SentencePiece, ByteFallbackAndUnknown) {
  const Tokenizer t = Tokenizer::from_metadata(synthetic::sentencepiece({{"\xE2\x96\x81", -1}}));
  // "é" (C3 A9) has no piece: its bytes' tokens are 3 + byte.
  EXPECT_EQ(t.tokenize("\xC3\xA9", false), (Ids{259, 3 + 0xC3, 3 + 0xA9}));
  EXPECT_EQ(t.detokenize(t.tokenize("\xC3\xA9", false)), "\xC3\xA9");
}

TEST(SentencePiece, SpacePrefixAndItsRemoval) {
  const std::vector<std::pair<std::string, float>> pieces = {{"\xE2\x96\x81", -1}, {"a", -1}, {"\xE2\x96\x81" "a", -0.5}};
  const Tokenizer t = Tokenizer::from_metadata(synthetic::sentencepiece(pieces));
  EXPECT_EQ(t.tokenize("a", false), (Ids{261}));
  EXPECT_EQ(t.detokenize(Ids{1, 261, 261}), "a a");
  EXPECT_EQ(t.detokenize(Ids{259, 261}), " a");
  // Text after an added token gets the prefix again.
  EXPECT_EQ(t.tokenize("<s>a", false, true), (Ids{1, 261}));
  const Tokenizer no_prefix = Tokenizer::from_metadata(
      synthetic::with(synthetic::sentencepiece(pieces), "tokenizer.ggml.add_space_prefix", false));
  EXPECT_EQ(no_prefix.tokenize("a", false), (Ids{260}));
  EXPECT_EQ(no_prefix.detokenize(Ids{261}), " a");
}

void expect_error(const Metadata& m, const std::string& words) {
  try {
    Tokenizer::from_metadata(m);
    ADD_FAILURE() << "expected an error mentioning " << words;
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(words), std::string::npos) << e.what();
  }
}

TEST(TokenizerMetadata, ClearErrors) {
  const Metadata good = synthetic::byte_level({{"a", "b"}});
  expect_error(synthetic::with(good, "tokenizer.ggml.model", "bert"), "'bert'");
  expect_error(synthetic::with(good, "tokenizer.ggml.pre", "mystery"), "'mystery'");
  expect_error(synthetic::without(good, "tokenizer.ggml.pre"), "tokenizer.ggml.pre");
  expect_error(synthetic::without(good, "tokenizer.ggml.merges"), "tokenizer.ggml.merges");
  expect_error(synthetic::without(good, "tokenizer.ggml.tokens"), "tokenizer.ggml.tokens");
  expect_error(synthetic::without(good, "tokenizer.ggml.model"), "tokenizer.ggml.model");
  expect_error(synthetic::with(good, "tokenizer.ggml.bos_token_id", uint32_t{9999}), "9999");
  expect_error(synthetic::with(good, "tokenizer.ggml.add_bos_token", true), "BOS");
  expect_error(synthetic::with(good, "tokenizer.ggml.token_type", gguf::make_array(gguf::ValueType::I32, std::vector<int32_t>{1})),
               "token_type");
  expect_error(synthetic::with(good, "tokenizer.ggml.merges", gguf::make_array(gguf::ValueType::I32, std::vector<int32_t>{1})),
               "merges");
}

TEST(TokenizerMetadata, DecodingRejectsIdsOutsideTheVocabulary) {
  const Tokenizer t = Tokenizer::from_metadata(synthetic::byte_level({}));
  EXPECT_THROW(t.detokenize(Ids{256}), Error);
  EXPECT_THROW(t.detokenize(Ids{-1}), Error);
}

}  // namespace
}  // namespace tokenmill::tokenizer
