// Synthetic models: files with the exact layout of a real model of a given architecture (keys,
// tensor names, shapes, per-tensor types, a real tokenizer), filled with seeded random weights.
// They let tests and benchmarks run every architecture and quantization without downloading
// checkpoints. The weights are scaled so a forward pass stays finite and attention is far from
// uniform (so RoPE and masking errors change the output); docs/models.md lists the presets and
// the scales.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "gguf/file.h"
#include "model/arch.h"
#include "model/quant_policy.h"

namespace tokenmill::model {

// tiny: loads in milliseconds, for unit tests (rows are not multiples of 256, so the quantizer's
// fallback types appear). small: every row a multiple of 256, for K-quant paths. b1: the
// benchmark shape of each family (Llama-3.2-1B, Qwen2.5-1.5B, Qwen3-1.7B, ...).
enum class Preset { Tiny, Small, B1 };

std::optional<Preset> preset_from_name(std::string_view name);  // "tiny", "small", "1b"
std::string_view preset_name(Preset preset);

// The preset's hyper-parameters for a vocabulary of n_vocab tokens.
HParams preset_hparams(Arch arch, Preset preset, uint32_t n_vocab);

// The tokenizer.* metadata a model file carries.
struct Vocabulary {
  std::vector<gguf::MetadataEntry> metadata;
  uint32_t n_tokens() const;  // length of tokenizer.ggml.tokens
};

// A SentencePiece-style ("llama") vocabulary of <unk>, <s>, </s> and the 256 byte tokens <0xXX>:
// enough to encode any text, so tests need no vocabulary file.
Vocabulary byte_vocabulary();

// Every tokenizer.* key of a GGUF file (a vocab-only file or a whole model). Throws
// tokenmill::Error if it has no token list.
Vocabulary vocabulary_from_gguf(const std::string& path);

struct SyntheticModel {
  Arch arch = Arch::Llama;
  Preset preset = Preset::Tiny;
  const FileType* file_type = nullptr;
  Vocabulary vocabulary;
  uint64_t seed = 0;
};

// Writes the model. Each tensor's values come from random streams seeded by (seed, tensor name,
// row chunk), so the bytes depend on the seed only, not on `threads` or tensor order. With
// `show_progress`, a progress bar is drawn on stderr if it is a terminal. Throws tokenmill::Error
// when a chosen tensor type cannot be quantized or the file cannot be written.
void write_synthetic_model(const SyntheticModel& model, const std::string& path, unsigned threads = 2,
                           bool show_progress = false);

}  // namespace tokenmill::model
