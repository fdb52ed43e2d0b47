#include "model/arch.h"

#include <algorithm>
#include <map>

#include "common/error.h"

namespace tokenmill::model {
namespace {

// Hyper-parameter keys, named as in the GGUF specification. Which of them an architecture
// writes follows convert_hf_to_gguf.py for the reference checkpoint of each family.
constexpr HParamKey kBlockCount{"block_count", &HParams::n_block, true};
constexpr HParamKey kContextLength{"context_length", &HParams::n_ctx_train, true};
constexpr HParamKey kEmbeddingLength{"embedding_length", &HParams::n_embd, true};
constexpr HParamKey kFeedForwardLength{"feed_forward_length", &HParams::n_ff};
constexpr HParamKey kHeadCount{"attention.head_count", &HParams::n_head, true};
constexpr HParamKey kHeadCountKv{"attention.head_count_kv", &HParams::n_head_kv};
constexpr HParamKey kRopeFreqBase{"rope.freq_base", &HParams::rope_freq_base};
constexpr HParamKey kRmsEps{"attention.layer_norm_rms_epsilon", &HParams::rms_eps, true};
constexpr HParamKey kExpertCount{"expert_count", &HParams::n_expert, true};
constexpr HParamKey kExpertUsedCount{"expert_used_count", &HParams::n_expert_used, true};
constexpr HParamKey kKeyLength{"attention.key_length", &HParams::head_dim};
constexpr HParamKey kValueLength{"attention.value_length", &HParams::head_dim};
constexpr HParamKey kVocabSize{"vocab_size", &HParams::n_vocab};
constexpr HParamKey kRopeDimensionCount{"rope.dimension_count", &HParams::n_rot};
constexpr HParamKey kExpertFeedForwardLength{"expert_feed_forward_length", &HParams::n_ff_exp, true};
constexpr HParamKey kExpertSharedCount{"expert_shared_count", &HParams::n_expert_shared, true};
constexpr HParamKey kLeadingDenseBlockCount{"leading_dense_block_count", &HParams::n_dense_lead};
constexpr HParamKey kExpertGatingFunc{"expert_gating_func", &HParams::expert_gating};
constexpr HParamKey kExpertWeightsScale{"expert_weights_scale", &HParams::expert_weights_scale};
constexpr HParamKey kExpertWeightsNorm{"expert_weights_norm", &HParams::expert_weights_norm};
constexpr HParamKey kNextnPredictLayers{"nextn_predict_layers", &HParams::n_nextn};

using K = TensorKind;

// Indexed by TensorKind; names and shapes as llama.cpp's loader expects them.
const std::vector<TensorSpec> kTensorSpecs = {
    {K::TokenEmbd, "token_embd.weight", Scope::Global, {Dim::Embd, Dim::Vocab}},
    {K::OutputNorm, "output_norm.weight", Scope::Global, {Dim::Embd}},
    {K::Output, "output.weight", Scope::Global, {Dim::Embd, Dim::Vocab}, Condition::Untied},
    {K::RopeFreqs, "rope_freqs.weight", Scope::Global, {Dim::RotHalf}, Condition::RopeFreqs},
    {K::AttnNorm, "attn_norm.weight", Scope::Block, {Dim::Embd}},
    {K::AttnQ, "attn_q.weight", Scope::Block, {Dim::Embd, Dim::QDim}},
    {K::AttnK, "attn_k.weight", Scope::Block, {Dim::Embd, Dim::KvDim}},
    {K::AttnV, "attn_v.weight", Scope::Block, {Dim::Embd, Dim::KvDim}},
    {K::AttnQBias, "attn_q.bias", Scope::Block, {Dim::QDim}},
    {K::AttnKBias, "attn_k.bias", Scope::Block, {Dim::KvDim}},
    {K::AttnVBias, "attn_v.bias", Scope::Block, {Dim::KvDim}},
    {K::AttnQkv, "attn_qkv.weight", Scope::Block, {Dim::Embd, Dim::QkvDim}},
    {K::AttnQkvBias, "attn_qkv.bias", Scope::Block, {Dim::QkvDim}},
    {K::AttnQNorm, "attn_q_norm.weight", Scope::Block, {Dim::HeadDim}},
    {K::AttnKNorm, "attn_k_norm.weight", Scope::Block, {Dim::HeadDim}},
    {K::AttnOut, "attn_output.weight", Scope::Block, {Dim::QDim, Dim::Embd}},
    {K::AttnPostNorm, "post_attention_norm.weight", Scope::Block, {Dim::Embd}},
    {K::FfnNorm, "ffn_norm.weight", Scope::Block, {Dim::Embd}},
    {K::FfnNormPostAttn, "post_attention_norm.weight", Scope::Block, {Dim::Embd}},
    {K::FfnGate, "ffn_gate.weight", Scope::DenseBlock, {Dim::Embd, Dim::Ff}},
    {K::FfnUp, "ffn_up.weight", Scope::DenseBlock, {Dim::Embd, Dim::Ff}},
    {K::FfnDown, "ffn_down.weight", Scope::DenseBlock, {Dim::Ff, Dim::Embd}},
    {K::FfnGateUp, "ffn_up.weight", Scope::DenseBlock, {Dim::Embd, Dim::Ff2}},
    {K::FfnPostNorm, "post_ffw_norm.weight", Scope::Block, {Dim::Embd}},
    {K::FfnGateInp, "ffn_gate_inp.weight", Scope::MoeBlock, {Dim::Embd, Dim::Expert}},
    {K::ExpProbsBias, "exp_probs_b.bias", Scope::MoeBlock, {Dim::Expert}},
    {K::FfnGateExps, "ffn_gate_exps.weight", Scope::MoeBlock, {Dim::Embd, Dim::FfExp, Dim::Expert}},
    {K::FfnUpExps, "ffn_up_exps.weight", Scope::MoeBlock, {Dim::Embd, Dim::FfExp, Dim::Expert}},
    {K::FfnDownExps, "ffn_down_exps.weight", Scope::MoeBlock, {Dim::FfExp, Dim::Embd, Dim::Expert}},
    {K::FfnGateShexp, "ffn_gate_shexp.weight", Scope::MoeBlock, {Dim::Embd, Dim::FfShexp}, Condition::SharedExpert},
    {K::FfnUpShexp, "ffn_up_shexp.weight", Scope::MoeBlock, {Dim::Embd, Dim::FfShexp}, Condition::SharedExpert},
    {K::FfnDownShexp, "ffn_down_shexp.weight", Scope::MoeBlock, {Dim::FfShexp, Dim::Embd}, Condition::SharedExpert},
    {K::NextnEhProj, "nextn.eh_proj.weight", Scope::NextnBlock, {Dim::Embd2, Dim::Embd}},
    {K::NextnEnorm, "nextn.enorm.weight", Scope::NextnBlock, {Dim::Embd}},
    {K::NextnHnorm, "nextn.hnorm.weight", Scope::NextnBlock, {Dim::Embd}},
    {K::NextnSharedHeadNorm, "nextn.shared_head_norm.weight", Scope::NextnBlock, {Dim::Embd}},
};

// Keys every transformer here writes first, in the converter's order.
std::vector<HParamKey> common_keys(std::initializer_list<HParamKey> more) {
  std::vector<HParamKey> keys = {kBlockCount, kContextLength, kEmbeddingLength, kFeedForwardLength,
                                 kHeadCount,  kHeadCountKv,   kRopeFreqBase,    kRmsEps};
  keys.insert(keys.end(), more);
  return keys;
}

const std::vector<ArchInfo> kArchs = {
    {Arch::Llama, "llama",
     common_keys({kKeyLength, kValueLength, kVocabSize, kRopeDimensionCount}),
     {K::TokenEmbd, K::OutputNorm, K::Output, K::RopeFreqs, K::AttnNorm, K::AttnQ, K::AttnK, K::AttnV,
      K::AttnOut, K::FfnNorm, K::FfnGate, K::FfnUp, K::FfnDown}},
    // Qwen2.5's config has no head_dim, so no key/value length keys.
    {Arch::Qwen2, "qwen2", common_keys({}),
     {K::TokenEmbd, K::OutputNorm, K::Output, K::AttnNorm, K::AttnQ, K::AttnK, K::AttnV, K::AttnQBias,
      K::AttnKBias, K::AttnVBias, K::AttnOut, K::FfnNorm, K::FfnGate, K::FfnUp, K::FfnDown}},
    {Arch::Qwen3, "qwen3", common_keys({kKeyLength, kValueLength}),
     {K::TokenEmbd, K::OutputNorm, K::Output, K::AttnNorm, K::AttnQ, K::AttnK, K::AttnV, K::AttnQNorm,
      K::AttnKNorm, K::AttnOut, K::FfnNorm, K::FfnGate, K::FfnUp, K::FfnDown}},
    // GLM-4-9B (and ChatGLM3): q, k and v fused with their bias, gate and up fused, RoPE on half
    // of each head. The converter writes no head size; it is embedding_length / head_count.
    {Arch::ChatGlm, "chatglm",
     {kContextLength, kEmbeddingLength, kFeedForwardLength, kBlockCount, kHeadCount, kHeadCountKv, kRmsEps,
      kRopeDimensionCount, kRopeFreqBase},
     {K::TokenEmbd, K::OutputNorm, K::Output, K::AttnNorm, K::AttnQkv, K::AttnQkvBias, K::AttnOut, K::FfnNorm,
      K::FfnGateUp, K::FfnDown}},
    {Arch::Glm4, "glm4", common_keys({kKeyLength, kValueLength, kRopeDimensionCount}),
     {K::TokenEmbd, K::OutputNorm, K::Output, K::AttnNorm, K::AttnQ, K::AttnK, K::AttnV, K::AttnQBias,
      K::AttnKBias, K::AttnVBias, K::AttnOut, K::AttnPostNorm, K::FfnNorm, K::FfnGateUp, K::FfnDown,
      K::FfnPostNorm}},
    {Arch::Glm4Moe, "glm4moe",
     common_keys({kExpertCount, kExpertUsedCount, kKeyLength, kValueLength, kRopeDimensionCount,
                  kExpertFeedForwardLength, kExpertSharedCount, kLeadingDenseBlockCount, kExpertGatingFunc,
                  kExpertWeightsScale, kExpertWeightsNorm, kNextnPredictLayers}),
     {K::TokenEmbd, K::OutputNorm, K::Output, K::AttnNorm, K::AttnQ, K::AttnK, K::AttnV, K::AttnQBias,
      K::AttnKBias, K::AttnVBias, K::AttnQNorm, K::AttnKNorm, K::AttnOut, K::FfnNormPostAttn, K::FfnGate,
      K::FfnUp, K::FfnDown, K::FfnGateInp, K::ExpProbsBias, K::FfnGateExps, K::FfnUpExps, K::FfnDownExps,
      K::FfnGateShexp, K::FfnUpShexp, K::FfnDownShexp, K::NextnEhProj, K::NextnEnorm, K::NextnHnorm,
      K::NextnSharedHeadNorm}},
    {Arch::Qwen3Moe, "qwen3moe",
     common_keys({kExpertCount, kExpertUsedCount, kKeyLength, kValueLength,
                  HParamKey{kExpertFeedForwardLength.suffix, kExpertFeedForwardLength.field, false}}),
     {K::TokenEmbd, K::OutputNorm, K::Output, K::AttnNorm, K::AttnQ, K::AttnK, K::AttnV, K::AttnQNorm,
      K::AttnKNorm, K::AttnOut, K::FfnNorm, K::FfnGateInp, K::FfnGateExps, K::FfnUpExps, K::FfnDownExps}},
};

bool has_kind(const ArchInfo& arch, TensorKind kind) {
  return std::find(arch.tensors.begin(), arch.tensors.end(), kind) != arch.tensors.end();
}

bool has_key(const ArchInfo& arch, const HParamKey& key) {
  return std::any_of(arch.keys.begin(), arch.keys.end(), [&](const HParamKey& k) { return k.suffix == key.suffix; });
}

uint64_t resolve(Dim dim, const HParams& hp) {
  switch (dim) {
    case Dim::Embd: return hp.n_embd;
    case Dim::Embd2: return 2ull * hp.n_embd;
    case Dim::Vocab: return hp.n_vocab;
    case Dim::QDim: return hp.q_dim();
    case Dim::KvDim: return hp.kv_dim();
    case Dim::QkvDim: return hp.qkv_dim();
    case Dim::HeadDim: return hp.head_dim;
    case Dim::RotHalf: return hp.n_rot / 2;
    case Dim::Ff: return hp.n_ff;
    case Dim::Ff2: return 2ull * hp.n_ff;
    case Dim::FfExp: return hp.n_ff_exp;
    case Dim::FfShexp: return uint64_t{hp.n_ff_exp} * hp.n_expert_shared;
    case Dim::Expert: return hp.n_expert;
  }
  return 0;
}

bool condition_holds(Condition c, const HParams& hp) {
  switch (c) {
    case Condition::Always: return true;
    case Condition::Untied: return !hp.tied_embeddings;
    case Condition::SharedExpert: return hp.n_expert_shared > 0;
    case Condition::RopeFreqs: return hp.has_rope_freqs;
  }
  return false;
}

bool in_scope(Scope scope, uint32_t block, const HParams& hp) {
  switch (scope) {
    case Scope::Global: return false;
    case Scope::Block: return true;
    case Scope::DenseBlock: return !hp.is_moe_block(block);
    case Scope::MoeBlock: return hp.is_moe_block(block);
    case Scope::NextnBlock: return block >= hp.n_layer();
  }
  return false;
}

void require(bool ok, const ArchInfo& arch, const std::string& what) {
  if (!ok) throw Error(std::string(arch.name) + " hyper-parameters: " + what);
}

}  // namespace

std::span<const ArchInfo> all_archs() { return kArchs; }

const ArchInfo& arch_info(Arch arch) {
  for (const auto& a : kArchs)
    if (a.arch == arch) return a;
  throw Error("unknown architecture id");
}

std::optional<Arch> arch_from_name(std::string_view name) {
  for (const auto& a : kArchs)
    if (a.name == name) return a.arch;
  return std::nullopt;
}

const TensorSpec& tensor_spec(TensorKind kind) { return kTensorSpecs.at(static_cast<size_t>(kind)); }

void validate(const ArchInfo& arch, const HParams& hp) {
  require(hp.n_vocab > 0 && hp.n_embd > 0 && hp.n_head > 0 && hp.head_dim > 0 && hp.n_ctx_train > 0,
          arch, "vocabulary, embedding, heads, head size and context must be non-zero");
  require(hp.n_block > hp.n_nextn, arch, "needs at least one block that is not a NextN block");
  require(hp.n_head_kv > 0 && hp.n_head % hp.n_head_kv == 0, arch,
          "head_count must be a multiple of head_count_kv");
  require(hp.n_rot % 2 == 0 && hp.n_rot > 0 && hp.n_rot <= hp.head_dim, arch,
          "rotary dimensions must be even and at most the head size");
  // Without a key_length key the head size is embedding_length / head_count; a remainder would
  // leave q narrower than the residual stream, which these files' attn_output cannot take.
  require(has_key(arch, kKeyLength) || hp.q_dim() == hp.n_embd, arch,
          "embedding_length must be a multiple of head_count (the file gives no attention.key_length)");
  // llama.cpp rejects partial RoPE for llama files.
  require(arch.arch != Arch::Llama || hp.n_rot == hp.head_dim, arch, "rope.dimension_count must equal the head size");
  const bool moe = has_kind(arch, TensorKind::FfnGateInp);
  require(moe == (hp.n_expert > 0), arch, moe ? "expert_count must be non-zero" : "this architecture has no experts");
  if (moe)
    require(hp.n_expert_used > 0 && hp.n_expert_used <= hp.n_expert && hp.n_ff_exp > 0 &&
                hp.n_dense_lead <= hp.n_layer(),
            arch, "expert_used_count must be 1..expert_count, the expert width non-zero, and the dense "
                  "blocks no more than the blocks");
  const bool any_dense = !moe || hp.n_dense_lead > 0;
  require(!any_dense || hp.n_ff > 0, arch, "feed_forward_length must be non-zero");
  require(hp.n_nextn == 0 || has_kind(arch, TensorKind::NextnEhProj), arch, "this architecture has no NextN blocks");
  require(!hp.has_rope_freqs || has_kind(arch, TensorKind::RopeFreqs), arch, "this architecture has no rope_freqs");
  require(hp.n_expert_shared == 0 || has_kind(arch, TensorKind::FfnGateShexp), arch,
          "this architecture has no shared experts");
}

std::vector<TensorDesc> model_tensors(const ArchInfo& arch, const HParams& hp) {
  validate(arch, hp);
  std::vector<TensorDesc> out;
  auto add = [&](const TensorSpec& spec, int block) {
    TensorDesc t{std::string(spec.name), spec.kind, block, {}};
    if (block >= 0) t.name = "blk." + std::to_string(block) + "." + t.name;
    for (Dim d : spec.dims) t.shape.push_back(resolve(d, hp));
    out.push_back(std::move(t));
  };
  for (TensorKind kind : arch.tensors) {
    const TensorSpec& spec = tensor_spec(kind);
    if (!condition_holds(spec.condition, hp)) continue;
    if (spec.scope == Scope::Global) {
      add(spec, -1);
      continue;
    }
    for (uint32_t b = 0; b < hp.n_block; ++b)
      if (in_scope(spec.scope, b, hp)) add(spec, static_cast<int>(b));
  }
  std::sort(out.begin(), out.end(), [](const TensorDesc& a, const TensorDesc& b) {
    return a.block != b.block ? a.block < b.block : a.name < b.name;
  });
  return out;
}

std::vector<gguf::MetadataEntry> hparam_metadata(const ArchInfo& arch, const HParams& hp) {
  std::vector<gguf::MetadataEntry> out;
  for (const auto& key : arch.keys) {
    gguf::Value value;
    std::visit([&](auto field) { value = gguf::Value(hp.*field); }, key.field);
    out.push_back({std::string(arch.name) + "." + std::string(key.suffix), std::move(value)});
  }
  return out;
}

HParams read_hparams(const gguf::File& file, const ArchInfo& arch) {
  HParams hp;
  std::map<const void*, std::string> read_by;  // field -> the key that set it, to catch conflicts
  for (const auto& key : arch.keys) {
    const std::string name = std::string(arch.name) + "." + std::string(key.suffix);
    const gguf::Value* value = file.find(name);
    if (!value) {
      if (key.required) throw gguf::FormatError(file.path() + ": missing key " + name);
      continue;
    }
    std::visit(
        [&](auto field) {
          using T = std::remove_reference_t<decltype(hp.*field)>;
          T x{};
          if constexpr (std::is_same_v<T, bool>) {
            const auto b = value->as_bool();
            if (!b) throw gguf::FormatError(file.path() + ": key " + name + " must be a bool");
            x = *b;
          } else if constexpr (std::is_same_v<T, float>) {
            const auto f = value->as_float();
            if (!f) throw gguf::FormatError(file.path() + ": key " + name + " must be a number");
            x = static_cast<float>(*f);
          } else {
            const auto u = value->as_uint();
            if (!u || *u > UINT32_MAX)
              throw gguf::FormatError(file.path() + ": key " + name + " must be an unsigned 32-bit integer");
            x = static_cast<T>(*u);
          }
          const void* field_id = &(hp.*field);
          if (auto it = read_by.find(field_id); it != read_by.end() && hp.*field != x)
            throw gguf::FormatError(file.path() + ": keys " + it->second + " and " + name +
                                    " disagree (tokenmill needs them equal)");
          read_by.emplace(field_id, name);
          hp.*field = x;
        },
        key.field);
  }
  // llama.cpp's defaults for keys a file may leave out.
  if (!file.find(std::string(arch.name) + "." + std::string(kHeadCountKv.suffix))) hp.n_head_kv = hp.n_head;
  if (hp.head_dim == 0 && hp.n_head > 0) hp.head_dim = hp.n_embd / hp.n_head;
  if (hp.n_rot == 0) hp.n_rot = hp.head_dim;
  if (const gguf::Array* tokens = file.get_array("tokenizer.ggml.tokens"))
    hp.n_vocab = static_cast<uint32_t>(tokens->items.size());
  hp.tied_embeddings = file.find_tensor("output.weight") == nullptr;
  hp.has_rope_freqs = file.find_tensor("rope_freqs.weight") != nullptr;
  return hp;
}

}  // namespace tokenmill::model
