// GLM-4 tokenization end to end: the GGUF metadata built from GLM-4's tiktoken ranks and the
// GLM-4.5 added tokens (as `tokenmill make-model` writes it), and the ids our tokenizer gives
// from it, compared with js-tiktoken (npm) built from the same ranks, pattern and special tokens
// on a large generated corpus. Data: ../shared/tokenizers/glm4 (skipped when absent).
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "tokenizer/stream_decoder.h"
#include "tokenizer/tiktoken_vocab.h"
#include "tokenizer/tokenizer.h"
#include "tokenizer/utf8.h"
#include "tokenizer/text_corpus.h"

namespace tokenmill::tokenizer {
namespace {

namespace fs = std::filesystem;

const std::string kGlmDir = TOKENMILL_SOURCE_DIR "/../shared/tokenizers/glm4";
const std::string kRanks = kGlmDir + "/tokenizer.model";
const std::string kConfig = kGlmDir + "/glm-4.5-tokenizer_config.json";


const gguf::Value* find(const Metadata& metadata, const std::string& key) {
  for (const auto& [k, v] : metadata)
    if (k == key) return &v;
  return nullptr;
}

class Glm4 : public testing::Test {
 protected:
  static void SetUpTestSuite() {
    if (!fs::exists(kRanks) || !fs::exists(kConfig)) return;
    metadata_ = new Metadata(glm4_tokenizer_metadata(kRanks, kConfig));
    tokenizer_ = new Tokenizer(Tokenizer::from_metadata(*metadata_));
  }
  static void TearDownTestSuite() {
    delete tokenizer_;
    delete metadata_;
    tokenizer_ = nullptr;
    metadata_ = nullptr;
  }
  void SetUp() override {
    if (!tokenizer_) GTEST_SKIP() << "GLM-4 tokenizer data not found in " << kGlmDir;
  }

  static std::vector<std::string> added_token_texts() {
    std::vector<std::string> texts;
    for (TokenId id = 151329; id <= 151364; ++id) texts.push_back(tokenizer_->text(id));
    return texts;
  }

  static Metadata* metadata_;
  static Tokenizer* tokenizer_;
};
Metadata* Glm4::metadata_ = nullptr;
Tokenizer* Glm4::tokenizer_ = nullptr;

TEST_F(Glm4, MetadataIsThatOfAGlm45Gguf) {
  const Metadata& m = *metadata_;
  EXPECT_EQ(*find(m, "tokenizer.ggml.model")->as_string(), "gpt2");
  EXPECT_EQ(*find(m, "tokenizer.ggml.pre")->as_string(), "glm4");
  EXPECT_EQ(find(m, "tokenizer.ggml.tokens")->as_array()->items.size(), 151552u);
  EXPECT_EQ(find(m, "tokenizer.ggml.token_type")->as_array()->items.size(), 151552u);
  // Every split of a token into two tokens, as in GLM-4.5 GGUFs converted from tokenizer.json.
  EXPECT_EQ(find(m, "tokenizer.ggml.merges")->as_array()->items.size(), 318088u);
  EXPECT_EQ(find(m, "tokenizer.ggml.bos_token_id")->as_uint(), 151331u);
  EXPECT_EQ(find(m, "tokenizer.ggml.eos_token_id")->as_uint(), 151329u);
  EXPECT_EQ(find(m, "tokenizer.ggml.padding_token_id")->as_uint(), 151329u);
  EXPECT_EQ(find(m, "tokenizer.ggml.unknown_token_id")->as_uint(), 151329u);
  EXPECT_EQ(find(m, "tokenizer.ggml.eot_token_id")->as_uint(), 151336u);
  EXPECT_EQ(find(m, "tokenizer.ggml.eom_token_id")->as_uint(), 151338u);
  EXPECT_EQ(find(m, "tokenizer.ggml.add_bos_token")->as_bool(), false);

  const Tokenizer& t = *tokenizer_;
  EXPECT_EQ(t.size(), 151552u);
  EXPECT_EQ(t.text(0), "!");
  EXPECT_EQ(t.text(151329), "<|endoftext|>");
  EXPECT_EQ(t.type(151329), TokenType::Control);
  EXPECT_EQ(t.type(151360), TokenType::Control);      // /nothink is marked special
  EXPECT_EQ(t.type(151361), TokenType::Control);      // <|begin_of_box|> looks special
  EXPECT_EQ(t.type(151350), TokenType::UserDefined);  // <think>
  EXPECT_EQ(t.type(151359), TokenType::UserDefined);  // </arg_value>
  EXPECT_EQ(t.type(151365), TokenType::Unused);
  EXPECT_EQ(t.text(151551), "[PAD151551]");
  EXPECT_EQ(t.end_of_generation(), (std::vector<TokenId>{151329, 151336, 151338}));
  EXPECT_FALSE(t.adds_bos());
}

TEST_F(Glm4, ChatPromptTokens) {
  const Tokenizer& t = *tokenizer_;
  const std::vector<TokenId> ids = t.tokenize("[gMASK]<sop><|user|>\nHi<|assistant|>\n<think></think>");
  ASSERT_GE(ids.size(), 7u);
  EXPECT_EQ(ids[0], 151331);
  EXPECT_EQ(ids[1], 151333);
  EXPECT_EQ(ids[2], 151336);
  EXPECT_EQ(ids[ids.size() - 2], 151350);
  EXPECT_EQ(ids.back(), 151351);
  // Without special parsing control tokens are text, user-defined ones are still recognised.
  const std::vector<TokenId> plain = t.tokenize("<|user|><think>", false, false);
  EXPECT_EQ(plain.back(), 151350);
  EXPECT_EQ(std::count(plain.begin(), plain.end(), 151336), 0);
  EXPECT_EQ(t.detokenize(plain), "<|user|><think>");
  EXPECT_EQ(t.detokenize(ids), "\nHi\n<think></think>");
  EXPECT_EQ(t.detokenize(ids, /*render_special=*/true), "[gMASK]<sop><|user|>\nHi<|assistant|>\n<think></think>");
}

// Runs `command` and reports whether it exited with status 0.
bool run(const std::string& command) { return std::system(command.c_str()) == 0; }

std::string shell_quote(const std::string& s) {
  std::string q = "'";
  for (char c : s) q += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return q + "'";
}

TEST_F(Glm4, SameIdsAsJsTiktokenOnAGeneratedCorpus) {
  // js-tiktoken, pinned and installed by the build (tests/CMakeLists.txt).
  const fs::path node_modules = fs::path(TOKENMILL_JS_TIKTOKEN_MODULES) / "node_modules";
  if (!run("node --version > /dev/null 2>&1")) GTEST_SKIP() << "node is not installed";
  if (!fs::exists(node_modules / "js-tiktoken"))
    GTEST_SKIP() << "js-tiktoken is not installed in " << node_modules << " (the build installs it with npm)";

  // Real vocabulary words make the prose realistic. Left out: those with U+0085, U+180E or
  // U+FEFF, where JavaScript's \s differs from Unicode's White_Space (which the reference
  // tokenizers' regex engines and ours use).
  std::vector<std::string> words = corpus::vocabulary_words(*tokenizer_, 7);
  std::erase_if(words, [](const std::string& w) {
    return w.find("\xC2\x85") != std::string::npos || w.find("\xE1\xA0\x8E") != std::string::npos ||
           w.find("\xEF\xBB\xBF") != std::string::npos;
  });
  corpus::TextGenerator gen(20260501, words);
  const std::vector<std::string> specials = added_token_texts();
  std::vector<std::string> texts = {"", " ", "\n", "Hello world", "'s'S're'LL", "<|user|", "[gMASK][gMASK]"};
  size_t bytes = 0;
  while (bytes < 600'000) {
    texts.push_back(gen.any(specials));
    bytes += texts.back().size();
  }

  const std::string stem = "tokenmill-glm4-" + std::to_string(getpid());
  const fs::path corpus_path = fs::temp_directory_path() / (stem + "-corpus.json");
  const fs::path ids_path = fs::temp_directory_path() / (stem + "-ids.json");
  std::ofstream(corpus_path) << nlohmann::json(texts).dump();
  const std::string script = TOKENMILL_SOURCE_DIR "/tests/tokenizer/js_tiktoken_encode.cjs";
  ASSERT_TRUE(run("NODE_PATH=" + shell_quote(node_modules.string()) + " node " + shell_quote(script) + " " +
                  shell_quote(kRanks) + " " + shell_quote(kConfig) + " " + shell_quote(corpus_path.string()) + " " +
                  shell_quote(ids_path.string())))
      << "the js-tiktoken script failed";
  const nlohmann::json reference = nlohmann::json::parse(std::ifstream(ids_path));
  fs::remove(corpus_path);
  fs::remove(ids_path);

  for (const auto& [mode, parse_special] : {std::pair{"parse_special", true}, std::pair{"user_defined_only", false}}) {
    const auto& expected = reference.at(mode);
    ASSERT_EQ(expected.size(), texts.size());
    size_t mismatches = 0;
    for (size_t i = 0; i < texts.size(); ++i) {
      const std::vector<TokenId> ours = tokenizer_->tokenize(texts[i], false, parse_special);
      const auto theirs = expected[i].get<std::vector<TokenId>>();
      if (ours == theirs) continue;
      if (++mismatches <= 5) {
        const size_t at = std::mismatch(ours.begin(), ours.end(), theirs.begin(), theirs.end()).first - ours.begin();
        auto window = [&](const std::vector<TokenId>& ids) {
          std::string s;
          for (size_t k = at; k < std::min(ids.size(), at + 4); ++k)
            s += std::to_string(ids[k]) + " " + nlohmann::json(tokenizer_->piece(ids[k]))
                                                    .dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) + "  ";
          return s;
        };
        ADD_FAILURE() << mode << ": text " << nlohmann::json(texts[i]).dump() << "\n differs at token " << at
                      << "\n ours:   " << window(ours) << "\n theirs: " << window(theirs);
      }
    }
    EXPECT_EQ(mismatches, 0u) << mode << ": " << mismatches << " of " << texts.size() << " texts differ";
  }
}

}  // namespace
}  // namespace tokenmill::tokenizer
