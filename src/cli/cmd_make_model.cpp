// `tokenmill make-model --arch A --preset P --quant Q [--vocab V] [--seed N] -o OUT`: writes a
// synthetic model with a real model's layout and seeded random weights (see docs/models.md).
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "cli/commands.h"
#include "common/error.h"
#include "model/synthetic.h"
#include "tokenizer/tiktoken_vocab.h"

namespace tokenmill::cli {
namespace {

namespace fs = std::filesystem;

struct MakeModelArgs {
  std::string arch;
  std::string preset;
  std::string quant;
  std::string vocab;
  std::string vocab_config;
  uint64_t seed = 1;
  unsigned threads = 2;
  std::string output;
};

std::string arch_names() {
  std::string s;
  for (const auto& a : model::all_archs()) s += (s.empty() ? "" : ", ") + std::string(a.name);
  return s;
}

std::string file_type_names() {
  std::string s;
  for (const auto& ft : model::file_types()) s += (s.empty() ? "" : ", ") + std::string(ft.name);
  return s;
}

// The added-tokens file that goes with a tiktoken ranks file: --vocab-config, or the one
// "*tokenizer_config.json" beside the ranks.
std::string tokenizer_config_for(const std::string& ranks_path, const std::string& given) {
  if (!given.empty()) return given;
  std::vector<std::string> found;
  const fs::path dir = fs::path(ranks_path).parent_path();
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(dir.empty() ? fs::path(".") : dir, ec))
    if (entry.path().filename().string().ends_with("tokenizer_config.json")) found.push_back(entry.path().string());
  if (found.size() != 1)
    throw Error("--vocab " + ranks_path + ": a tiktoken ranks file needs its tokenizer_config.json (added tokens); " +
                (found.empty() ? "none" : "several") + " found beside it, so give --vocab-config");
  return found.front();
}

// A .gguf file lends its tokenizer.* keys; anything else is taken for a tiktoken ranks file
// (GLM-4's tokenizer.model), turned into the metadata a real GLM-4.5 GGUF carries.
model::Vocabulary load_vocabulary(const MakeModelArgs& args) {
  if (args.vocab.empty()) {
    if (!args.vocab_config.empty()) throw Error("--vocab-config needs --vocab (a tiktoken ranks file)");
    return model::byte_vocabulary();
  }
  if (args.vocab.ends_with(".gguf")) return model::vocabulary_from_gguf(args.vocab);
  model::Vocabulary v;
  for (auto& [key, value] :
       tokenizer::glm4_tokenizer_metadata(args.vocab, tokenizer_config_for(args.vocab, args.vocab_config)))
    v.metadata.push_back({std::move(key), std::move(value)});
  return v;
}

void make_model(const MakeModelArgs& args) {
  const auto arch = model::arch_from_name(args.arch);
  if (!arch) throw Error("--arch " + args.arch + ": unknown architecture (one of " + arch_names() + ")");
  const auto preset = model::preset_from_name(args.preset);
  if (!preset) throw Error("--preset " + args.preset + ": unknown preset (one of tiny, small, 1b)");
  const model::FileType* file_type = model::find_file_type(args.quant);
  if (!file_type) throw Error("--quant " + args.quant + ": unknown file type (one of " + file_type_names() + ")");
  if (args.threads == 0) throw Error("--threads must be at least 1");

  model::SyntheticModel m{*arch, *preset, file_type, load_vocabulary(args), args.seed};
  const auto start = std::chrono::steady_clock::now();
  model::write_synthetic_model(m, args.output, args.threads, /*show_progress=*/true);
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  std::fprintf(stderr, "wrote %s (%s %s %s, %u tokens) in %.1f s\n", args.output.c_str(), args.arch.c_str(),
               args.preset.c_str(), std::string(file_type->name).c_str(), m.vocabulary.n_tokens(), seconds);
}

}  // namespace

void register_make_model(CLI::App& app) {
  auto* cmd = app.add_subcommand("make-model", "Write a synthetic model with a real model's layout and random weights");
  auto args = std::make_shared<MakeModelArgs>();
  cmd->add_option("--arch", args->arch, "Architecture: " + arch_names())->required();
  cmd->add_option("--preset", args->preset, "Size: tiny (unit tests), small (K-quant shapes), 1b (benchmarks)")
      ->required();
  cmd->add_option("--quant", args->quant, "File type: " + file_type_names())->required();
  cmd->add_option("--vocab", args->vocab,
                  "Vocabulary: a GGUF file whose tokenizer.* keys are copied, or a tiktoken ranks file "
                  "(GLM-4's tokenizer.model); default: 256 byte tokens");
  cmd->add_option("--vocab-config", args->vocab_config,
                  "tokenizer_config.json with the added tokens of a tiktoken --vocab (default: the one beside it)");
  cmd->add_option("--seed", args->seed, "Random seed (same seed, same bytes)")->capture_default_str();
  cmd->add_option("--threads", args->threads, "Quantization threads")->capture_default_str();
  cmd->add_option("-o,--output", args->output, "Output .gguf path")->required();
  cmd->callback([args] { make_model(*args); });
}

}  // namespace tokenmill::cli
