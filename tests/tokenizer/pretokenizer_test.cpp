// Pre-tokenizer splitting: the regex semantics the reference tokenizers have (Unicode
// White_Space for \s, Unicode case folding for (?i)), multi-stage splitting, and inputs long
// enough to stress the regex engine.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "common/error.h"
#include "tokenizer/pretokenizer.h"

namespace tokenmill::tokenizer {
namespace {

std::vector<std::string> split(const Pretokenizer& p, std::string_view text) {
  std::vector<std::string_view> words;
  p.split(text, words);
  return {words.begin(), words.end()};
}

TEST(Pretokenizer, Llama3Words) {
  const Pretokenizer p = Pretokenizer::for_name("llama-bpe");
  EXPECT_TRUE(p.ignore_merges());
  EXPECT_TRUE(p.adds_bos_by_default());
  EXPECT_EQ(split(p, "Hello world's 12345  x\n\n"),
            (std::vector<std::string>{"Hello", " world", "'s", " ", "123", "45", " ", " x", "\n\n"}));
  EXPECT_EQ(split(p, ""), std::vector<std::string>{});
}

TEST(Pretokenizer, ContractionsFoldCaseAsUnicodeDoes) {
  const Pretokenizer p = Pretokenizer::for_name("glm4");
  EXPECT_EQ(split(p, "IT'S"), (std::vector<std::string>{"IT", "'S"}));
  // U+017F LATIN SMALL LETTER LONG S folds to 's', as in the Rust and Oniguruma engines.
  EXPECT_EQ(split(p, "it'\xC5\xBF"), (std::vector<std::string>{"it", "'\xC5\xBF"}));
}

TEST(Pretokenizer, WhiteSpaceIsUnicodesProperty) {
  const Pretokenizer p = Pretokenizer::for_name("qwen2");
  // U+0085 is White_Space.
  EXPECT_EQ(split(p, "a\xC2\x85\xC2\x85" "b"), (std::vector<std::string>{"a", "\xC2\x85", "\xC2\x85" "b"}));
  // U+180E is not (PCRE2's own \s would say it is).
  EXPECT_EQ(split(p, "a\xE1\xA0\x8E\xE1\xA0\x8E" "b"),
            (std::vector<std::string>{"a", "\xE1\xA0\x8E\xE1\xA0\x8E", "b"}));
}

TEST(Pretokenizer, StagesSplitThePiecesOfEarlierStages) {
  const Pretokenizer p = Pretokenizer::for_name("deepseek-llm");
  EXPECT_FALSE(p.ignore_merges());
  EXPECT_EQ(split(p, "Hello \xE4\xB8\x96\xE7\x95\x8C" "123\n"),
            (std::vector<std::string>{"Hello", " ", "\xE4\xB8\x96\xE7\x95\x8C", "123", "\n"}));
}

TEST(Pretokenizer, DeepSeekV3SplitsDigitsAndHanFirst) {
  const Pretokenizer p = Pretokenizer::for_name("deepseek-v3");
  EXPECT_EQ(split(p, "Hello, \xE4\xB8\x96\xE7\x95\x8C" "12345!"),
            (std::vector<std::string>{"Hello", ",", " ", "\xE4\xB8\x96\xE7\x95\x8C", "123", "45", "!"}));
  EXPECT_EQ(split(p, "a.net"), (std::vector<std::string>{"a", ".net"}));
}

TEST(Pretokenizer, UnknownNameIsAnError) {
  try {
    Pretokenizer::for_name("no-such-pre");
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("no-such-pre"), std::string::npos);
    EXPECT_NE(std::string(e.what()).find("glm4"), std::string::npos);
  }
}

TEST(Pretokenizer, WhiteSpaceRewrite) {
  EXPECT_EQ(with_unicode_white_space("a\\sb").find("\\s"), std::string::npos);
  EXPECT_EQ(with_unicode_white_space("\\s").front(), '[');
  EXPECT_EQ(with_unicode_white_space("\\S").substr(0, 2), "[^");
  const std::string in_class = with_unicode_white_space("[^\\s\\p{L}]");
  EXPECT_EQ(in_class.substr(0, 4), "[^\\t");
  EXPECT_EQ(in_class.substr(in_class.size() - 6), "\\p{L}]");
  EXPECT_EQ(with_unicode_white_space("\\\\s"), "\\\\s");  // an escaped backslash, then 's'
  EXPECT_EQ(with_unicode_white_space("[]\\s]").substr(0, 3), "[]\\");
}

TEST(Pretokenizer, LongRunsSplitCompletely) {
  const std::vector<std::string> runs = {std::string(1 << 20, ' '), std::string(1 << 20, 'a'),
                                         std::string(1 << 20, '7'), std::string(1 << 20, '\n'),
                                         [] {
                                           std::string s;
                                           for (int i = 0; i < (1 << 18); ++i) s += "\xE4\xB8\xAD";
                                           return s;
                                         }()};
  for (const char* pre : {"llama3", "qwen2", "qwen35", "deepseek-llm", "deepseek-coder", "deepseek-v3", "gpt-2",
                          "starcoder", "falcon"}) {
    const Pretokenizer p = Pretokenizer::for_name(pre);
    for (const std::string& text : runs) {
      std::vector<std::string_view> words;
      p.split(text, words);
      size_t total = 0;
      for (std::string_view w : words) {
        EXPECT_EQ(w.data(), text.data() + total) << pre;
        total += w.size();
      }
      EXPECT_EQ(total, text.size()) << pre;
    }
  }
}

}  // namespace
}  // namespace tokenmill::tokenizer
