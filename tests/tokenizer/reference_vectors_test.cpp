// The tokenizer test vectors shipped beside llama.cpp's vocab-only GGUFs (models/ggml-vocab-*):
// NAME.gguf.inp holds inputs separated by "\n__ggml_vocab_test__\n", NAME.gguf.out one line of
// space-separated expected ids per input, made by each model's Hugging Face tokenizer with BOS /
// EOS and special-token parsing off. Every vector of every vocabulary we support must match.
#include <gtest/gtest.h>

#include <atomic>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "gguf/file.h"
#include "tokenizer/tokenizer.h"

namespace tokenmill::tokenizer {
namespace {

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

struct Vector {
  std::string input;
  std::vector<TokenId> expected;
};

std::vector<Vector> read_vectors(const std::string& gguf_path) {
  const std::string inputs = read_file(gguf_path + ".inp");
  const std::string outputs = read_file(gguf_path + ".out");
  const std::string separator = "\n__ggml_vocab_test__\n";
  std::vector<Vector> vectors;
  for (size_t pos = 0; pos < inputs.size();) {
    size_t next = inputs.find(separator, pos);
    if (next == std::string::npos) next = inputs.size();
    vectors.push_back({inputs.substr(pos, next - pos), {}});
    pos = next == inputs.size() ? next : next + separator.size();
  }
  std::istringstream lines(outputs);
  std::string line;
  for (Vector& v : vectors) {
    if (!std::getline(lines, line)) break;
    std::istringstream ids(line);
    for (TokenId id; ids >> id;) v.expected.push_back(id);
  }
  return vectors;
}

class ReferenceVectors : public testing::TestWithParam<const char*> {};

TEST_P(ReferenceVectors, AllMatch) {
  const char* tree = std::getenv("TOKENMILL_LLAMA_TREE");
  if (!tree) GTEST_SKIP() << "TOKENMILL_LLAMA_TREE is not set: no llama.cpp tree with the vocab test vectors";
  const std::string path = std::string(tree) + "/models/ggml-vocab-" + GetParam() + ".gguf";
  const gguf::File file = gguf::File::open(path);
  const Tokenizer tokenizer = Tokenizer::from_gguf(file);
  const std::vector<Vector> vectors = read_vectors(path);
  ASSERT_GT(vectors.size(), 20u);
  for (const Vector& v : vectors) {
    EXPECT_EQ(tokenizer.tokenize(v.input, /*add_special=*/false, /*parse_special=*/false), v.expected)
        << "input: \"" << v.input << "\"";
  }
  // One tokenizer serves many request threads at once.
  std::vector<std::thread> threads;
  std::atomic<int> wrong{0};
  for (int i = 0; i < 4; ++i) {
    threads.emplace_back([&] {
      for (int round = 0; round < 20; ++round)
        for (const Vector& v : vectors)
          if (tokenizer.tokenize(v.input, false, false) != v.expected) ++wrong;
    });
  }
  for (std::thread& t : threads) t.join();
  EXPECT_EQ(wrong, 0);
}

INSTANTIATE_TEST_SUITE_P(Vocabularies, ReferenceVectors,
                         testing::Values("llama-bpe", "qwen2", "qwen35", "deepseek-llm", "deepseek-coder",
                                         "llama-spm", "gpt-2", "phi-3", "falcon", "mpt", "starcoder", "refact",
                                         "command-r"),
                         [](const testing::TestParamInfo<const char*>& info) {
                           std::string name = info.param;
                           for (char& c : name)
                             if (c == '-') c = '_';
                           return name;
                         });

}  // namespace
}  // namespace tokenmill::tokenizer
