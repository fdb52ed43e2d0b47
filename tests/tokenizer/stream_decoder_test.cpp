// Streaming detokenization: complete characters only, held-back partial characters, immediate
// U+FFFD for bytes that can never complete, and no stalls on garbage (random-weight models).
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "common/error.h"
#include "common/random.h"
#include "tokenizer/stream_decoder.h"
#include "tokenizer/synthetic_vocab.h"
#include "tokenizer/utf8.h"

namespace tokenmill::tokenizer {
namespace {

const std::string kFffd = "\xEF\xBF\xBD";

// Byte b is token b in the synthetic byte-level vocabulary; 256 is a control token.
Tokenizer bytes_vocab() {
  return Tokenizer::from_metadata(synthetic::byte_level({}, {{"<|end|>", TokenType::Control}}));
}

TEST(StreamDecoder, HoldsAPartialCharacterUntilItCompletes) {
  const Tokenizer t = bytes_vocab();
  StreamDecoder d(t);
  EXPECT_EQ(d.push('a'), "a");
  EXPECT_EQ(d.push(0xE4), "");
  EXPECT_EQ(d.push(0xB8), "");
  EXPECT_EQ(d.push(0xAD), "\xE4\xB8\xAD");
  EXPECT_EQ(d.finish(), "");
}

TEST(StreamDecoder, ReplacesBytesThatCannotCompleteAtOnce) {
  const Tokenizer t = bytes_vocab();
  StreamDecoder d(t);
  EXPECT_EQ(d.push(0xFF), kFffd);
  EXPECT_EQ(d.push(0xE4), "");
  EXPECT_EQ(d.push('A'), kFffd + "A");
  EXPECT_EQ(d.push(0xF0), "");
  EXPECT_EQ(d.push(0x9F), "");
  EXPECT_EQ(d.finish(), kFffd);
  EXPECT_EQ(d.push('b'), "b");
}

TEST(StreamDecoder, ControlTokensOnlyWhenRendered) {
  const Tokenizer t = bytes_vocab();
  StreamDecoder quiet(t);
  EXPECT_EQ(quiet.push(256), "");
  StreamDecoder loud(t, /*render_special=*/true);
  EXPECT_EQ(loud.push(256), "<|end|>");
  EXPECT_THROW(quiet.push(257), Error);
}

TEST(StreamDecoder, SentencePieceDropsTheLeadingSpaceOnce) {
  const Tokenizer t = Tokenizer::from_metadata(
      synthetic::sentencepiece({{"\xE2\x96\x81" "a", -1}, {"\xE2\x96\x81" "b", -1}}));
  StreamDecoder d(t);
  EXPECT_EQ(d.push(1), "");  // BOS, not rendered
  EXPECT_EQ(d.push(259), "a");
  EXPECT_EQ(d.push(260), " b");
}

// Random token ids, as a model with random weights emits: every push returns valid UTF-8, and at
// any moment at most one partial character (3 bytes) is held back.
TEST(StreamDecoder, NeverStallsOnRandomTokens) {
  const Tokenizer t = bytes_vocab();
  Rng rng(7);
  StreamDecoder d(t, true);
  std::string pieces;
  std::string out;
  for (int i = 0; i < 3000; ++i) {
    const auto id = static_cast<TokenId>(rng.next_u64() % t.size());
    pieces += t.piece(id);
    const std::string text = d.push(id);
    ASSERT_TRUE(is_valid_utf8(text));
    out += text;
    StreamDecoder ended = d;
    const std::string rest = ended.finish();
    ASSERT_LE(rest.size(), kFffd.size());
    ASSERT_EQ(out + rest, repair_utf8(pieces));
  }
}

}  // namespace
}  // namespace tokenmill::tokenizer
