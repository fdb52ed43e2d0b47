// A model ready to run: the GGUF file memory-mapped, every tensor the architecture table lists
// found and checked against its expected shape and a type the kernels can use, and the
// settings that make one architecture differ from another (RoPE pairing and scaling, router)
// derived from the file's metadata. The forward pass (forward.h) reads only this.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "gguf/file.h"
#include "kernels/matmul.h"
#include "kernels/ops.h"
#include "model/arch.h"

namespace tokenmill::model {

// One tensor of the model: its bytes in the mapping, plus an f32 copy of 1-D tensors (norm
// weights, biases) made at load time, whatever type the file stores them in.
struct Weight {
  const gguf::TensorInfo* info = nullptr;  // null when this model does not have the tensor
  std::vector<float> values;               // 1-D tensors only

  explicit operator bool() const { return info != nullptr; }
  const float* data() const { return values.empty() ? nullptr : values.data(); }
  // A 2-D tensor as a matrix: ne[1] rows of ne[0].
  kernels::WeightMatrix matrix() const;
  // Slice e of a 3-D tensor (one expert's matrix).
  kernels::WeightMatrix slice(int64_t e) const;
};

// How a mixture-of-experts layer turns router logits into expert weights.
struct Routing {
  enum class Gating { Softmax, Sigmoid };
  Gating gating = Gating::Softmax;
  bool normalize = false;  // divide the chosen experts' weights by their sum
  float scale = 1.0f;      // then multiply them by this
};

using LoadProgress = std::function<void(uint64_t done, uint64_t total)>;

class Model {
 public:
  // Opens and validates; throws tokenmill::Error (gguf::FormatError for malformed metadata)
  // naming the file and the first problem. `progress`, if given, is called while the weights
  // are read into memory.
  static Model load(const std::string& path, const LoadProgress& progress = {});

  const gguf::File& file() const { return file_; }
  const ArchInfo& arch() const { return *arch_; }
  const HParams& hparams() const { return hp_; }
  // The RoPE settings of every layer (freq_factors points into this model).
  const kernels::RopeConfig& rope() const { return rope_; }
  const Routing& routing() const { return routing_; }
  float attention_scale() const { return attention_scale_; }

  const Weight& global(TensorKind kind) const;             // an empty Weight when absent
  const Weight& block(int block, TensorKind kind) const;   // likewise
  // The output head: output.weight, or the token embeddings when they are tied.
  const Weight& output() const;

  // Bytes of weights one decoded token reads: every matrix of the blocks that run and the output
  // head, counting only expert_used_count experts of each mixture. The bound on decode speed.
  uint64_t bytes_per_token() const;

 private:
  Model() = default;

  gguf::File file_;
  const ArchInfo* arch_ = nullptr;
  HParams hp_;
  kernels::RopeConfig rope_;
  Routing routing_;
  float attention_scale_ = 1.0f;
  std::map<TensorKind, Weight> globals_;
  std::vector<std::map<TensorKind, Weight>> blocks_;
};

// The RoPE settings a file asks for: pairing by architecture; base, linear / YaRN scaling and
// the original context from the "{arch}.rope.*" keys, as llama.cpp reads them. Throws
// gguf::FormatError for scaling types we do not implement (longrope) or unknown ones.
kernels::RopeConfig read_rope_config(const gguf::File& file, const ArchInfo& arch, const HParams& hp);

}  // namespace tokenmill::model
