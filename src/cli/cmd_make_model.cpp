// `tokenmill make-model --arch A --preset P --quant Q [--vocab V] [--seed N] -o OUT`: writes a
// synthetic model with a real model's layout and seeded random weights (see docs/models.md).
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <memory>
#include <string>

#include "cli/commands.h"
#include "common/error.h"
#include "model/synthetic.h"

namespace tokenmill::cli {
namespace {

struct MakeModelArgs {
  std::string arch;
  std::string preset;
  std::string quant;
  std::string vocab;
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

// A .gguf file lends its tokenizer.* keys; anything else would be a tiktoken ranks file, which
// the tokenizer subsystem will turn into tokenizer.* metadata.
model::Vocabulary load_vocabulary(const std::string& path) {
  if (path.empty()) return model::byte_vocabulary();
  if (path.ends_with(".gguf")) return model::vocabulary_from_gguf(path);
  throw Error("--vocab " + path + ": tiktoken rank files are not supported yet; give a .gguf vocabulary");
}

// A one-line bar redrawn in place; only when stderr is a terminal, so logs stay clean.
class ProgressBar {
 public:
  explicit ProgressBar(bool enabled) : enabled_(enabled) {}
  void update(uint64_t done, uint64_t total) {
    if (!enabled_ || total == 0) return;
    const int percent = static_cast<int>(done * 100 / total);
    if (percent == last_percent_) return;
    last_percent_ = percent;
    constexpr int kWidth = 40;
    const int filled = percent * kWidth / 100;
    std::fprintf(stderr, "\r[%s%s] %3d%%", std::string(filled, '#').c_str(),
                 std::string(kWidth - filled, ' ').c_str(), percent);
    if (done == total) std::fputc('\n', stderr);
    std::fflush(stderr);
  }

 private:
  bool enabled_;
  int last_percent_ = -1;
};

void make_model(const MakeModelArgs& args) {
  const auto arch = model::arch_from_name(args.arch);
  if (!arch) throw Error("--arch " + args.arch + ": unknown architecture (one of " + arch_names() + ")");
  const auto preset = model::preset_from_name(args.preset);
  if (!preset) throw Error("--preset " + args.preset + ": unknown preset (one of tiny, small, 1b)");
  const model::FileType* file_type = model::find_file_type(args.quant);
  if (!file_type) throw Error("--quant " + args.quant + ": unknown file type (one of " + file_type_names() + ")");
  if (args.threads == 0) throw Error("--threads must be at least 1");

  model::SyntheticModel m{*arch, *preset, file_type, load_vocabulary(args.vocab), args.seed};
  ProgressBar bar(isatty(STDERR_FILENO) != 0);
  const auto start = std::chrono::steady_clock::now();
  model::write_synthetic_model(m, args.output, args.threads,
                               [&bar](uint64_t done, uint64_t total) { bar.update(done, total); });
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
                  "Vocabulary: a GGUF file whose tokenizer.* keys are copied (default: 256 byte tokens)");
  cmd->add_option("--seed", args->seed, "Random seed (same seed, same bytes)")->capture_default_str();
  cmd->add_option("--threads", args->threads, "Quantization threads")->capture_default_str();
  cmd->add_option("-o,--output", args->output, "Output .gguf path")->required();
  cmd->callback([args] { make_model(*args); });
}

}  // namespace tokenmill::cli
