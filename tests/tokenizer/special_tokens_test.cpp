// Splitting added tokens out of raw text: leftmost first, longest at that position, and
// control tokens only when special parsing is on.
#include <gtest/gtest.h>

#include "tokenizer/special_tokens.h"

namespace tokenmill::tokenizer {
namespace {

TEST(SpecialTokenMatcher, LeftmostThenLongest) {
  SpecialTokenMatcher m;
  m.add("AB", 1, true);
  m.add("BCD", 2, true);
  m.add("<a>", 3, false);
  m.add("<a>b", 4, false);
  // "BCD" is longer but "AB" starts first.
  auto hit = m.find("xABCD", 0, true);
  ASSERT_TRUE(hit);
  EXPECT_EQ(hit->position, 1u);
  EXPECT_EQ(hit->length, 2u);
  EXPECT_EQ(hit->id, 1);
  // At one position the longest wins.
  hit = m.find("x<a>bc", 0, true);
  ASSERT_TRUE(hit);
  EXPECT_EQ(hit->id, 4);
  EXPECT_EQ(hit->length, 4u);
  // Search starts at `from`.
  hit = m.find("ABxAB", 1, true);
  ASSERT_TRUE(hit);
  EXPECT_EQ(hit->position, 3u);
  EXPECT_FALSE(m.find("xyz", 0, true));
  EXPECT_FALSE(m.find("", 0, true));
  EXPECT_FALSE(m.find("<a", 0, true));
}

TEST(SpecialTokenMatcher, ControlTokensOnlyWithSpecialParsing) {
  SpecialTokenMatcher m;
  m.add("<|user|>", 10, false);
  m.add("<think>", 11, true);
  m.add("<|user|>x", 12, true);
  EXPECT_EQ(m.find("a<|user|>b", 0, true)->id, 10);
  EXPECT_FALSE(m.find("a<|user|>b", 0, false));
  // Without special parsing the user-defined token that starts at the same place still matches.
  EXPECT_EQ(m.find("<|user|>x", 0, false)->id, 12);
  const auto hit = m.find("<|user|><think>", 0, false);
  ASSERT_TRUE(hit);
  EXPECT_EQ(hit->id, 11);
  EXPECT_EQ(hit->position, 8u);
}

TEST(SpecialTokenMatcher, FirstTokenKeepsADuplicatedText) {
  SpecialTokenMatcher m;
  m.add("<s>", 1, false);
  m.add("<s>", 7, false);
  EXPECT_EQ(m.find("<s>", 0, true)->id, 1);
}

}  // namespace
}  // namespace tokenmill::tokenizer
