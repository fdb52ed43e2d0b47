// UTF-8 decoding and repair. The expected replacements are Unicode's "maximal subpart" rule, the
// output of Python's bytes.decode("utf-8", "replace") and of WHATWG's TextDecoder.
#include <gtest/gtest.h>

#include "tokenizer/utf8.h"

namespace tokenmill::tokenizer {
namespace {

const std::string kFffd = "\xEF\xBF\xBD";

TEST(Utf8, StepDecodesWellFormedCharacters) {
  const Utf8Step a = utf8_step("A");
  EXPECT_EQ(a.status, Utf8Status::Valid);
  EXPECT_EQ(a.length, 1u);
  EXPECT_EQ(a.codepoint, 0x41u);
  const Utf8Step han = utf8_step("\xE4\xB8\xAD");
  EXPECT_EQ(han.status, Utf8Status::Valid);
  EXPECT_EQ(han.length, 3u);
  EXPECT_EQ(han.codepoint, 0x4E2Du);
  const Utf8Step emoji = utf8_step("\xF0\x9F\x98\x80");
  EXPECT_EQ(emoji.length, 4u);
  EXPECT_EQ(emoji.codepoint, 0x1F600u);
  EXPECT_EQ(utf8_step("\xF4\x8F\xBF\xBF").codepoint, 0x10FFFFu);
}

TEST(Utf8, StepReportsIncompleteAndInvalidSequences) {
  EXPECT_EQ(utf8_step("\xE4\xB8").status, Utf8Status::Incomplete);
  EXPECT_EQ(utf8_step("\xE4\xB8").length, 2u);
  EXPECT_EQ(utf8_step("\xF0").status, Utf8Status::Incomplete);
  const Utf8Step truncated = utf8_step("\xE4\xB8\x41");
  EXPECT_EQ(truncated.status, Utf8Status::Invalid);
  EXPECT_EQ(truncated.length, 2u);
  EXPECT_EQ(utf8_step("\x80").status, Utf8Status::Invalid);
  EXPECT_EQ(utf8_step("\xC0\x80").length, 1u);  // overlong: C0 can never start a character
  EXPECT_EQ(utf8_step("\xED\xA0\x80").length, 1u);  // a surrogate
  EXPECT_EQ(utf8_step("\xF4\x90\x80\x80").length, 1u);  // above U+10FFFF
  EXPECT_EQ(utf8_step("\xFF").status, Utf8Status::Invalid);
}

TEST(Utf8, RepairReplacesEachMaximalSubpartOnce) {
  EXPECT_EQ(repair_utf8("\xE4\xB8" "A"), kFffd + "A");
  EXPECT_EQ(repair_utf8("\xED\xA0\x80"), kFffd + kFffd + kFffd);
  EXPECT_EQ(repair_utf8("\xF0\x9F\x98"), kFffd);
  EXPECT_EQ(repair_utf8("\xC0\x80"), kFffd + kFffd);
  EXPECT_EQ(repair_utf8("\xE0\x80\x80"), kFffd + kFffd + kFffd);
  EXPECT_EQ(repair_utf8("\xF4\x90\x80\x80"), kFffd + kFffd + kFffd + kFffd);
  EXPECT_EQ(repair_utf8("a\xFF" "b"), "a" + kFffd + "b");
  EXPECT_EQ(repair_utf8("\xE1\x80\xE1\x80\x80"), kFffd + "\xE1\x80\x80");
  EXPECT_EQ(repair_utf8("valid \xE4\xB8\xAD text"), "valid \xE4\xB8\xAD text");
  EXPECT_EQ(repair_utf8(""), "");
}

TEST(Utf8, Validity) {
  EXPECT_TRUE(is_valid_utf8(""));
  EXPECT_TRUE(is_valid_utf8("ascii and \xE4\xB8\xAD and \xF0\x9F\x98\x80"));
  EXPECT_FALSE(is_valid_utf8("\xE4\xB8"));
  EXPECT_FALSE(is_valid_utf8("\xED\xBF\xBF"));
  EXPECT_FALSE(is_valid_utf8("\xC1\xBF"));
}

TEST(Utf8, AppendEncodesEveryLength) {
  std::string s;
  for (uint32_t cp : {0x24u, 0xA2u, 0x20ACu, 0x10348u}) append_utf8(s, cp);
  EXPECT_EQ(s, "\x24\xC2\xA2\xE2\x82\xAC\xF0\x90\x8D\x88");
}

}  // namespace
}  // namespace tokenmill::tokenizer
