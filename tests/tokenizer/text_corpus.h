// Deterministic generators of varied text for tokenizer tests: English, Chinese, code, emoji
// sequences, whitespace runs, numbers, many scripts, and raw random code points.
//
// Characters are drawn only from blocks fully assigned since Unicode 14 or earlier, the version of
// the PCRE2 we build with: engines on newer Unicode tables (V8's) would classify later additions
// differently, which is a difference in Unicode data, not in tokenization.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/random.h"
#include "tokenizer/tokenizer.h"
#include "tokenizer/utf8.h"

namespace tokenmill::tokenizer::corpus {

struct CodepointRange {
  uint32_t first;
  uint32_t last;
};

class TextGenerator {
 public:
  // `words`: real vocabulary pieces (e.g. " the", "中国") mixed into the prose.
  TextGenerator(uint64_t seed, std::vector<std::string> words) : rng_(seed), words_(std::move(words)) {}

  uint32_t below(uint32_t n) { return static_cast<uint32_t>(rng_.next_u64() % n); }
  bool chance(uint32_t percent) { return below(100) < percent; }

  void append_from(std::string& out, std::initializer_list<CodepointRange> ranges) {
    std::vector<CodepointRange> r(ranges);
    const CodepointRange& range = r[below(static_cast<uint32_t>(r.size()))];
    append_utf8(out, range.first + below(range.last - range.first + 1));
  }

  std::string english() {
    static const char* const kContractions[] = {"'s", "'t", "'re", "'ve", "'m", "'ll", "'d", "'S", "'T",
                                                "'RE", "'Ve", "'M", "'LL", "'D", "'x", "'"};
    static const char* const kPunctuation[] = {".", ",", "!", "?", ";", ":", " -", " --", "...", "\"", " (", ")"};
    std::string s;
    const uint32_t n = 3 + below(40);
    for (uint32_t i = 0; i < n; ++i) {
      if (!words_.empty() && chance(70)) {
        s += words_[below(static_cast<uint32_t>(words_.size()))];
      } else {
        s += ' ';
        for (uint32_t k = 1 + below(12); k > 0; --k) append_from(s, {{'a', 'z'}, {'A', 'Z'}});
      }
      if (chance(8)) s += kContractions[below(std::size(kContractions))];
      if (chance(12)) s += kPunctuation[below(std::size(kPunctuation))];
      if (chance(5)) s += chance(50) ? "\n" : "\n\n";
    }
    return s;
  }

  std::string chinese() {
    std::string s;
    const uint32_t n = 2 + below(60);
    for (uint32_t i = 0; i < n; ++i) {
      if (!words_.empty() && chance(40)) s += words_[below(static_cast<uint32_t>(words_.size()))];
      else append_from(s, {{0x4E00, 0x9FA5}});
      if (chance(10)) append_from(s, {{0x3001, 0x3002}, {0xFF01, 0xFF01}, {0xFF0C, 0xFF0C}, {0xFF1F, 0xFF1F}, {0x300A, 0x300B}, {0x201C, 0x201D}});
      if (chance(4)) s += chance(50) ? " apple " : std::to_string(below(100000));
    }
    return s;
  }

  std::string code() {
    static const char* const kTokens[] = {
        "int", "return", "const", "auto", "std::vector<int>", "for", "(", ")", "{", "}", "[", "]", ";", "=", "==",
        "!=", "<=", "->", "::", "+=", "&&", "||", "//", "/*", "*/", "#include", "<stdio.h>", "\"str\"", "'c'",
        "0x1F", "3.14", "1e-9", "x_1", "camelCase", "snake_case", "__init__", "def", "self.", "lambda", "=>",
        "`tmpl`", "$var", "@decorator", "%d", "\\n", "<div>", "</div>", "SELECT * FROM t;", "i++", "--j"};
    std::string s;
    const uint32_t lines = 1 + below(12);
    for (uint32_t l = 0; l < lines; ++l) {
      const uint32_t indent = below(4);
      for (uint32_t k = 0; k < indent; ++k) s += chance(70) ? "    " : "\t";
      for (uint32_t k = 1 + below(10); k > 0; --k) {
        s += kTokens[below(std::size(kTokens))];
        if (chance(60)) s += ' ';
      }
      s += chance(85) ? "\n" : (chance(50) ? "\r\n" : "\n\n");
    }
    return s;
  }

  std::string emoji() {
    std::string s;
    const uint32_t n = 1 + below(12);
    for (uint32_t i = 0; i < n; ++i) {
      append_from(s, {{0x1F300, 0x1F5FF}, {0x1F600, 0x1F64F}, {0x1F680, 0x1F6C5}, {0x2600, 0x26FF}, {0x2700, 0x27BF}});
      if (chance(20)) append_utf8(s, 0xFE0F);                      // emoji presentation selector
      if (chance(15)) append_from(s, {{0x1F3FB, 0x1F3FF}});        // skin tone
      if (chance(20)) {                                             // ZWJ sequence
        append_utf8(s, 0x200D);
        append_from(s, {{0x1F466, 0x1F469}, {0x2640, 0x2642}});
      }
      if (chance(10)) {                                             // a flag
        append_from(s, {{0x1F1E6, 0x1F1FF}});
        append_from(s, {{0x1F1E6, 0x1F1FF}});
      }
      if (chance(30)) s += ' ';
    }
    return s;
  }

  std::string whitespace() {
    std::string s;
    const uint32_t n = 1 + below(10);
    for (uint32_t i = 0; i < n; ++i) {
      const uint32_t run = 1 + below(chance(10) ? 40 : 4);
      for (uint32_t k = 0; k < run; ++k)
        append_from(s, {{' ', ' '}, {' ', ' '}, {'\t', '\n'}, {'\r', '\r'}, {0x0B, 0x0C}, {0xA0, 0xA0}, {0x3000, 0x3000},
                        {0x2000, 0x200A}, {0x2028, 0x2029}, {0x1680, 0x1680}, {0x202F, 0x202F}, {0x205F, 0x205F}});
      if (chance(70)) s += chance(50) ? "word" : "x";
    }
    return s;
  }

  std::string numbers() {
    std::string s;
    const uint32_t n = 1 + below(10);
    for (uint32_t i = 0; i < n; ++i) {
      const uint32_t digits = 1 + below(20);
      for (uint32_t k = 0; k < digits; ++k) {
        if (chance(90)) s += static_cast<char>('0' + below(10));
        else append_from(s, {{0x0660, 0x0669}, {0xFF10, 0xFF19}, {0x00B2, 0x00B3}, {0x00BC, 0x00BE}, {0x2460, 0x2473}});
      }
      static const char* const kSeparators[] = {" ", ".", ",", "-", "+", "/", ":", "e", "%", "$", " x ", "\n"};
      s += kSeparators[below(std::size(kSeparators))];
    }
    return s;
  }

  std::string scripts() {
    std::string s;
    const uint32_t n = 1 + below(30);
    for (uint32_t i = 0; i < n; ++i) {
      const uint32_t len = 1 + below(8);
      const uint32_t script = below(10);
      for (uint32_t k = 0; k < len; ++k) {
        switch (script) {
          case 0: append_from(s, {{0x0410, 0x044F}}); break;                                    // Cyrillic
          case 1: append_from(s, {{0x0391, 0x03A1}, {0x03A3, 0x03A9}, {0x03B1, 0x03C9}}); break;  // Greek
          case 2: append_from(s, {{0x0621, 0x063A}, {0x0641, 0x064A}, {0x064B, 0x0652}}); break;  // Arabic
          case 3: append_from(s, {{0x05D0, 0x05EA}}); break;                                    // Hebrew
          case 4: append_from(s, {{0x0905, 0x0939}, {0x093E, 0x094C}}); break;                  // Devanagari
          case 5: append_from(s, {{0x0E01, 0x0E3A}, {0x0E40, 0x0E4E}}); break;                  // Thai
          case 6: append_from(s, {{0xAC00, 0xD7A3}}); break;                                    // Hangul
          case 7: append_from(s, {{0x3041, 0x3096}, {0x30A1, 0x30FA}}); break;                  // kana
          case 8: append_from(s, {{0x00C0, 0x00FF}, {0x0100, 0x017E}}); break;                  // Latin
          default:                                                                             // combining
            append_from(s, {{'a', 'z'}});
            append_from(s, {{0x0300, 0x036F}});
        }
      }
      s += chance(70) ? " " : (chance(50) ? "'s " : "\n");
    }
    return s;
  }

  // Arbitrary code points from the ranges above plus ASCII and symbols, with no structure.
  std::string chaos() {
    std::string s;
    const uint32_t n = 1 + below(80);
    for (uint32_t i = 0; i < n; ++i)
      append_from(s, {{0x20, 0x7E}, {0x09, 0x0D}, {0xA0, 0xFF}, {0x0100, 0x017E}, {0x0300, 0x036F}, {0x0391, 0x03A1},
                      {0x0410, 0x044F}, {0x0621, 0x064A}, {0x0905, 0x094C}, {0x2010, 0x2027}, {0x2030, 0x205E},
                      {0x2190, 0x21FF}, {0x2200, 0x22FF}, {0x3001, 0x3011}, {0x3041, 0x3096}, {0x4E00, 0x9FA5},
                      {0xAC00, 0xD7A3}, {0xFF01, 0xFF5E}, {0x1F300, 0x1F64F}, {0x1D400, 0x1D4FF}});
    return s;
  }

  // Texts that contain `specials` (added-token strings) whole, cut short, and glued to words.
  std::string with_specials(const std::vector<std::string>& specials) {
    std::string s;
    const uint32_t n = 1 + below(8);
    for (uint32_t i = 0; i < n; ++i) {
      const std::string& sp = specials[below(static_cast<uint32_t>(specials.size()))];
      if (chance(15)) s += sp.substr(0, 1 + below(static_cast<uint32_t>(sp.size())));
      else s += sp;
      if (chance(50)) s += below(2) ? english() : chinese();
      if (chance(20)) s += "\n";
    }
    return s;
  }

  std::string any(const std::vector<std::string>& specials) {
    switch (below(specials.empty() ? 9 : 10)) {
      case 0: return english();
      case 1: return chinese();
      case 2: return code();
      case 3: return emoji();
      case 4: return whitespace();
      case 5: return numbers();
      case 6: return scripts();
      case 7: return chaos();
      case 8: return english() + chinese() + code() + emoji();
      default: return with_specials(specials);
    }
  }

 private:
  Rng rng_;
  std::vector<std::string> words_;
};

// Every `stride`-th token's text that is whole UTF-8: real words (" the", "中国", "ArrayAdapter")
// for TextGenerator.
inline std::vector<std::string> vocabulary_words(const Tokenizer& tokenizer, TokenId stride) {
  std::vector<std::string> words;
  for (TokenId id = 0; id < static_cast<TokenId>(tokenizer.size()); id += stride) {
    const std::string& piece = tokenizer.piece(id);
    if (tokenizer.type(id) == TokenType::Normal && !piece.empty() && is_valid_utf8(piece)) words.push_back(piece);
  }
  return words;
}

// English prose, Chinese prose and source code in turn, about `bytes` long.
inline std::string mixed_text(TextGenerator& gen, size_t bytes) {
  std::string s;
  while (s.size() < bytes) s += gen.english() + gen.chinese() + gen.code();
  return s;
}

// Random code points of any plane (no surrogates), weighted towards ASCII: valid UTF-8 that
// follows no pattern at all.
inline std::string random_valid_utf8(Rng& rng, size_t n_codepoints) {
  std::string s;
  for (size_t i = 0; i < n_codepoints; ++i) {
    const uint64_t r = rng.next_u64();
    uint32_t cp;
    switch (r % 4) {
      case 0: cp = static_cast<uint32_t>((r >> 8) % 0x80); break;
      case 1: cp = static_cast<uint32_t>((r >> 8) % 0x800); break;
      case 2: cp = static_cast<uint32_t>((r >> 8) % 0x10000); break;
      default: cp = static_cast<uint32_t>((r >> 8) % 0x110000); break;
    }
    if (cp >= 0xD800 && cp <= 0xDFFF) cp = 0xFFFD;
    append_utf8(s, cp);
  }
  return s;
}

// Random bytes, mostly ill-formed UTF-8: stray continuation bytes, truncated and overlong
// sequences, encoded surrogates, bytes F5..FF.
inline std::string random_bytes(Rng& rng, size_t n) {
  std::string s;
  for (size_t i = 0; i < n; ++i) s += static_cast<char>(rng.next_u64() & 0xFF);
  return s;
}

}  // namespace tokenmill::tokenizer::corpus
