// `tokenmill tokenize` and `tokenmill detokenize` on llama.cpp's vocab-only GGUFs: the flags
// reach the tokenizer, -f reads raw bytes, ids survive a round trip, bad input is an error.
#include <gtest/gtest.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

namespace {

struct Result {
  int status;
  std::string out;
};

// Runs the tokenmill binary with `args` (already shell-quoted), capturing stdout.
Result tokenmill(const std::string& args) {
  const std::string command = std::string(TOKENMILL_BINARY) + " " + args + " 2>/dev/null";
  FILE* pipe = popen(command.c_str(), "r");
  Result r{-1, {}};
  if (!pipe) return r;
  char buf[4096];
  for (size_t n; (n = fread(buf, 1, sizeof buf, pipe)) > 0;) r.out.append(buf, n);
  r.status = pclose(pipe);
  return r;
}

class TokenizeCommand : public testing::Test {
 protected:
  void SetUp() override {
    const char* tree = std::getenv("TOKENMILL_LLAMA_TREE");
    if (!tree) GTEST_SKIP() << "TOKENMILL_LLAMA_TREE is not set: no llama.cpp tree with the vocab GGUFs";
    llama3_ = std::string(tree) + "/models/ggml-vocab-llama-bpe.gguf";
    spm_ = std::string(tree) + "/models/ggml-vocab-llama-spm.gguf";
  }
  std::string llama3_;
  std::string spm_;
};

TEST_F(TokenizeCommand, FlagsReachTheTokenizer) {
  EXPECT_EQ(tokenmill("tokenize --json " + llama3_ + " -p 'Hello world<|eot_id|>'").out, "[128000,9906,1917,128009]\n");
  EXPECT_EQ(tokenmill("tokenize --json --no-add-special " + llama3_ + " -p 'Hello world'").out, "[9906,1917]\n");
  const Result plain = tokenmill("tokenize --json --no-add-special --no-parse-special " + llama3_ + " -p '<|eot_id|>'");
  EXPECT_EQ(plain.status, 0);
  EXPECT_EQ(plain.out.find("128009"), std::string::npos);
  EXPECT_EQ(tokenmill("tokenize --json " + spm_ + " -p 'Hello'").out.substr(0, 3), "[1,");
}

TEST_F(TokenizeCommand, PrintsIdsWithTheirPieces) {
  const Result r = tokenmill("tokenize " + llama3_ + " -p 'Hello world'");
  EXPECT_EQ(r.status, 0);
  EXPECT_EQ(r.out, "128000 -> '<|begin_of_text|>'\n  9906 -> 'Hello'\n  1917 -> ' world'\n");
}

TEST_F(TokenizeCommand, FileBytesAndRoundTrip) {
  const auto path = std::filesystem::temp_directory_path() / "tokenmill_tokenize_test.txt";
  std::ofstream(path, std::ios::binary) << "line one\n\xE4\xB8\xAD\xE6\x96\x87\t end\n";
  const Result ids = tokenmill("tokenize --json --no-add-special " + llama3_ + " -f " + path.string());
  ASSERT_EQ(ids.status, 0);
  std::filesystem::remove(path);
  const std::string list = ids.out.substr(0, ids.out.size() - 1);
  EXPECT_EQ(tokenmill("detokenize " + llama3_ + " '" + list + "'").out, "line one\n\xE4\xB8\xAD\xE6\x96\x87\t end\n");
  EXPECT_EQ(tokenmill("detokenize " + llama3_ + " 128000 9906").out, "<|begin_of_text|>Hello");
}

TEST_F(TokenizeCommand, BadInputIsAnError) {
  EXPECT_NE(tokenmill("tokenize " + llama3_).status, 0);                       // no text
  EXPECT_NE(tokenmill("tokenize " + llama3_ + " -p a -f /dev/null").status, 0);  // both
  EXPECT_NE(tokenmill("detokenize " + llama3_ + " 99999999").status, 0);         // outside the vocabulary
  EXPECT_NE(tokenmill("detokenize " + llama3_ + " 12x").status, 0);
  EXPECT_NE(tokenmill("tokenize /nonexistent.gguf -p a").status, 0);
}

}  // namespace
