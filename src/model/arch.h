// model/: what a model is — per-architecture descriptions (hyper-parameter keys, tensor names
// and shapes), the per-tensor quantization policy, and synthetic model generation. Depends on
// kernels/, gguf/ and common/.
//
// This file describes each supported architecture as data: which "{arch}.*" keys hold its
// hyper-parameters (with the value types llama.cpp's converter writes), and which tensors a
// file of that architecture holds, with names and shapes derived from the hyper-parameters.
// The synthetic-model generator writes files from these tables and the model loader reads
// them back through the same tables, so the two cannot drift apart.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "gguf/file.h"

namespace tokenmill::model {

enum class Arch { Llama, Qwen2, Qwen3, ChatGlm, Glm4, Glm4Moe, Qwen3Moe };

struct HParams {
  uint32_t n_vocab = 0;
  uint32_t n_ctx_train = 0;
  uint32_t n_embd = 0;
  uint32_t n_block = 0;   // "block_count": every block in the file, NextN blocks included
  uint32_t n_nextn = 0;   // trailing NextN (multi-token prediction) blocks, stored but not run
  uint32_t n_head = 0;
  uint32_t n_head_kv = 0;
  uint32_t head_dim = 0;  // key and value length per head
  uint32_t n_rot = 0;     // rotary dimensions per head (less than head_dim for partial RoPE)
  uint32_t n_ff = 0;      // dense feed-forward width
  uint32_t n_expert = 0;
  uint32_t n_expert_used = 0;
  uint32_t n_ff_exp = 0;         // width of one routed expert
  uint32_t n_expert_shared = 0;  // shared experts, each n_ff_exp wide, fused into one FFN
  uint32_t n_dense_lead = 0;     // leading blocks of an MoE model that have a dense FFN
  uint32_t expert_gating = 0;    // 1 softmax, 2 sigmoid (the file's numbering)
  float expert_weights_scale = 0;
  bool expert_weights_norm = false;
  float rope_freq_base = 10000;
  float rms_eps = 1e-5f;
  bool tied_embeddings = false;  // no output.weight: token_embd doubles as the output head
  // The file holds rope_freqs: per-frequency divisors (Llama 3's RoPE scaling, which the
  // converter bakes into this tensor instead of writing keys).
  bool has_rope_freqs = false;

  uint32_t n_layer() const { return n_block - n_nextn; }  // blocks that run
  uint32_t q_dim() const { return n_head * head_dim; }
  uint32_t kv_dim() const { return n_head_kv * head_dim; }
  uint32_t qkv_dim() const { return q_dim() + 2 * kv_dim(); }
  bool is_moe_block(uint32_t block) const { return n_expert > 0 && block >= n_dense_lead; }
};

// One hyper-parameter key: the part after "{arch}." and the field it holds. The field's C++
// type fixes the GGUF value type (u32, f32 or bool), as the converter writes it. Keys that are
// not required have llama.cpp's defaults when absent.
struct HParamKey {
  std::string_view suffix;
  std::variant<uint32_t HParams::*, float HParams::*, bool HParams::*> field;
  bool required = false;
};

// Every tensor a supported architecture can hold, by meaning (not by file name: GLM-4.5 calls
// its pre-FFN norm "post_attention_norm", GLM-4 uses that name for a real post-norm).
enum class TensorKind {
  TokenEmbd, OutputNorm, Output, RopeFreqs,
  AttnNorm, AttnQ, AttnK, AttnV, AttnQBias, AttnKBias, AttnVBias,
  AttnQkv, AttnQkvBias,  // q, k and v fused into one attn_qkv of q_dim + 2*kv_dim rows (GLM-4-9B)
  AttnQNorm, AttnKNorm, AttnOut,
  AttnPostNorm,       // normalises the attention output before the residual add (GLM-4)
  FfnNorm,
  FfnNormPostAttn,    // the pre-FFN norm under GLM-4.5's name post_attention_norm
  FfnGate, FfnUp, FfnDown,
  FfnGateUp,          // gate and up fused into one ffn_up of width 2*n_ff (GLM-4)
  FfnPostNorm,        // normalises the FFN output before the residual add (GLM-4)
  FfnGateInp,         // the MoE router
  ExpProbsBias,       // per-expert bias added to the router scores when choosing experts
  FfnGateExps, FfnUpExps, FfnDownExps,
  FfnGateShexp, FfnUpShexp, FfnDownShexp,
  NextnEhProj, NextnEnorm, NextnHnorm, NextnSharedHeadNorm,
};

// Which blocks hold a tensor.
enum class Scope {
  Global,      // once per model, outside the blocks
  Block,       // every block, NextN blocks included
  DenseBlock,  // blocks with a dense FFN (all of them in a dense model)
  MoeBlock,    // blocks with a mixture-of-experts FFN
  NextnBlock,  // NextN blocks only
};

// A symbolic dimension, resolved against HParams.
enum class Dim { Embd, Embd2, Vocab, QDim, KvDim, QkvDim, HeadDim, RotHalf, Ff, Ff2, FfExp, FfShexp, Expert };

// Tensors that only some models of an architecture have.
enum class Condition { Always, Untied, SharedExpert, RopeFreqs };

struct TensorSpec {
  TensorKind kind;
  std::string_view name;  // full name for Global, else the part after "blk.N."
  Scope scope;
  std::vector<Dim> dims;  // ne[0] first
  Condition condition = Condition::Always;
};

struct ArchInfo {
  Arch arch;
  std::string_view name;               // general.architecture
  std::vector<HParamKey> keys;         // in the order the converter writes them
  std::vector<TensorKind> tensors;     // every tensor kind this architecture's files hold
};

std::span<const ArchInfo> all_archs();
const ArchInfo& arch_info(Arch arch);
std::optional<Arch> arch_from_name(std::string_view name);
const TensorSpec& tensor_spec(TensorKind kind);

// A concrete tensor of one model.
struct TensorDesc {
  std::string name;
  TensorKind kind;
  int block;  // -1 for global tensors
  std::vector<uint64_t> shape;
};

// Throws tokenmill::Error naming the first inconsistency (heads not divisible, odd rotary
// dimensions, experts without a router width, ...).
void validate(const ArchInfo& arch, const HParams& hp);

// All tensors of a model, ordered as llama.cpp's quantizer writes them: global tensors by name,
// then block by block, each block's tensors by name.
std::vector<TensorDesc> model_tensors(const ArchInfo& arch, const HParams& hp);

// The "{arch}.*" hyper-parameter entries, in the converter's order.
std::vector<gguf::MetadataEntry> hparam_metadata(const ArchInfo& arch, const HParams& hp);

// Reads the hyper-parameters back from a file of this architecture: keys absent from the file
// keep llama.cpp's defaults (n_rot = head_dim = n_embd / n_head, and so on); n_vocab comes from
// the token list; tied_embeddings from the absence of output.weight. Throws gguf::FormatError
// for missing required keys or keys of the wrong type.
HParams read_hparams(const gguf::File& file, const ArchInfo& arch);

}  // namespace tokenmill::model
