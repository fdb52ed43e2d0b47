// Tokenizer speed: bytes of text tokenized per second on one thread, and how long building a
// tokenizer takes. Text is generated (tests/tokenizer/text_corpus.h): English prose, Chinese
// prose and source code in turn, built from real vocabulary words plus random ones.
// GLM-4 data comes from ../shared; Llama 3 from $TOKENMILL_LLAMA_TREE (skipped when absent).
#include <benchmark/benchmark.h>

#include <cstdlib>
#include <filesystem>
#include <memory>

#include "gguf/file.h"
#include "tokenizer/text_corpus.h"
#include "tokenizer/tiktoken_vocab.h"
#include "tokenizer/tokenizer.h"

namespace tokenmill::tokenizer {
namespace {

const std::string kGlmDir = TOKENMILL_SOURCE_DIR "/../shared/tokenizers/glm4";

const Metadata* glm4_metadata() {
  static const std::unique_ptr<Metadata> m = [] {
    if (!std::filesystem::exists(kGlmDir + "/tokenizer.model")) return std::unique_ptr<Metadata>();
    return std::make_unique<Metadata>(
        glm4_tokenizer_metadata(kGlmDir + "/tokenizer.model", kGlmDir + "/glm-4.5-tokenizer_config.json"));
  }();
  return m.get();
}

std::string llama3_path() {
  const char* tree = std::getenv("TOKENMILL_LLAMA_TREE");
  return tree ? std::string(tree) + "/models/ggml-vocab-llama-bpe.gguf" : "";
}

const Tokenizer* tokenizer(const std::string& name) {
  static const std::unique_ptr<Tokenizer> glm4 = [] {
    const Metadata* m = glm4_metadata();
    return m ? std::make_unique<Tokenizer>(Tokenizer::from_metadata(*m)) : nullptr;
  }();
  static const std::unique_ptr<Tokenizer> llama3 = []() -> std::unique_ptr<Tokenizer> {
    const std::string path = llama3_path();
    if (path.empty()) return nullptr;
    return std::make_unique<Tokenizer>(Tokenizer::from_gguf(gguf::File::open(path)));
  }();
  return name == "glm4" ? glm4.get() : llama3.get();
}

enum class Text { Mixed, English, Chinese, Code };

void BM_Tokenize(benchmark::State& state, const std::string& name, Text kind) {
  const Tokenizer* t = tokenizer(name);
  if (!t) return state.SkipWithError("tokenizer data not found");
  corpus::TextGenerator gen(1, corpus::vocabulary_words(*t, 7));
  std::string text;
  constexpr size_t kBytes = 1 << 20;
  switch (kind) {
    case Text::Mixed: text = corpus::mixed_text(gen, kBytes); break;
    case Text::English: while (text.size() < kBytes) text += gen.english(); break;
    case Text::Chinese: while (text.size() < kBytes) text += gen.chinese(); break;
    case Text::Code: while (text.size() < kBytes) text += gen.code(); break;
  }
  size_t tokens = 0;
  for (auto _ : state) {
    const std::vector<TokenId> ids = t->tokenize(text, false, false);
    tokens = ids.size();
    benchmark::DoNotOptimize(ids.data());
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * text.size()));
  state.counters["bytes/token"] = static_cast<double>(text.size()) / static_cast<double>(tokens);
}
BENCHMARK_CAPTURE(BM_Tokenize, glm4_mixed, std::string("glm4"), Text::Mixed)->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(BM_Tokenize, glm4_english, std::string("glm4"), Text::English)->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(BM_Tokenize, glm4_chinese, std::string("glm4"), Text::Chinese)->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(BM_Tokenize, glm4_code, std::string("glm4"), Text::Code)->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(BM_Tokenize, llama3_mixed, std::string("llama3"), Text::Mixed)->Unit(benchmark::kMillisecond);

void BM_Detokenize(benchmark::State& state) {
  const Tokenizer* t = tokenizer("glm4");
  if (!t) return state.SkipWithError("tokenizer data not found");
  corpus::TextGenerator gen(2, corpus::vocabulary_words(*t, 7));
  const std::string text = corpus::mixed_text(gen, 1 << 20);
  const std::vector<TokenId> ids = t->tokenize(text, false, false);
  for (auto _ : state) benchmark::DoNotOptimize(t->detokenize(ids).size());
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * text.size()));
}
BENCHMARK(BM_Detokenize)->Unit(benchmark::kMillisecond);

// Building the GLM-4 tokenizer from its GGUF metadata (151552 tokens, 318088 merges).
void BM_BuildGlm4FromMetadata(benchmark::State& state) {
  const Metadata* m = glm4_metadata();
  if (!m) return state.SkipWithError("GLM-4 data not found");
  for (auto _ : state) benchmark::DoNotOptimize(Tokenizer::from_metadata(*m).size());
}
BENCHMARK(BM_BuildGlm4FromMetadata)->Unit(benchmark::kMillisecond);

// Opening Llama 3's vocab-only GGUF (128256 tokens, 280147 merges) and building its tokenizer.
void BM_LoadLlama3Gguf(benchmark::State& state) {
  const std::string path = llama3_path();
  if (path.empty()) return state.SkipWithError("TOKENMILL_LLAMA_TREE is not set");
  for (auto _ : state) benchmark::DoNotOptimize(Tokenizer::from_gguf(gguf::File::open(path)).size());
}
BENCHMARK(BM_LoadLlama3Gguf)->Unit(benchmark::kMillisecond);

}  // namespace
}  // namespace tokenmill::tokenizer

BENCHMARK_MAIN();
