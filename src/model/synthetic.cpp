#include "model/synthetic.h"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdio>
#include <exception>
#include <mutex>
#include <numbers>
#include <thread>

#include "common/error.h"
#include "common/progress.h"
#include "common/random.h"
#include "gguf/writer.h"
#include "kernels/formats.h"

namespace tokenmill::model {
namespace {

constexpr float kSqrt2 = 1.41421356f;

// Llama 3.2's RoPE scaling; the converter turns it into the rope_freqs tensor.
struct Llama3RopeScaling {
  double factor = 32;
  double low_freq_factor = 1;
  double high_freq_factor = 4;
  double original_context = 8192;
};

struct PresetRow {
  Arch arch;
  Preset preset;
  HParams hp;  // n_vocab filled in later
};

// Each family's real rope base and norm epsilon at every size; n_vocab comes from the vocabulary.
const std::vector<PresetRow> kPresets = {
    // Llama 3.2: tied embeddings, grouped-query attention, Llama 3 RoPE scaling in rope_freqs.
    {Arch::Llama, Preset::Tiny,
     {.n_ctx_train = 2048, .n_embd = 64, .n_block = 2, .n_head = 4, .n_head_kv = 2, .head_dim = 16, .n_rot = 16,
      .n_ff = 128, .rope_freq_base = 500000, .rms_eps = 1e-5f, .tied_embeddings = true, .has_rope_freqs = true}},
    {Arch::Llama, Preset::Small,
     {.n_ctx_train = 4096, .n_embd = 256, .n_block = 4, .n_head = 8, .n_head_kv = 2, .head_dim = 32, .n_rot = 32,
      .n_ff = 768, .rope_freq_base = 500000, .rms_eps = 1e-5f, .tied_embeddings = true, .has_rope_freqs = true}},
    {Arch::Llama, Preset::B1,  // Llama-3.2-1B
     {.n_ctx_train = 131072, .n_embd = 2048, .n_block = 16, .n_head = 32, .n_head_kv = 8, .head_dim = 64,
      .n_rot = 64, .n_ff = 8192, .rope_freq_base = 500000, .rms_eps = 1e-5f, .tied_embeddings = true,
      .has_rope_freqs = true}},
    // Qwen2.5: q/k/v biases, tied embeddings.
    {Arch::Qwen2, Preset::Tiny,
     {.n_ctx_train = 2048, .n_embd = 64, .n_block = 2, .n_head = 4, .n_head_kv = 2, .head_dim = 16, .n_rot = 16,
      .n_ff = 128, .rope_freq_base = 1e6f, .rms_eps = 1e-6f, .tied_embeddings = true}},
    {Arch::Qwen2, Preset::Small,
     {.n_ctx_train = 4096, .n_embd = 256, .n_block = 4, .n_head = 4, .n_head_kv = 2, .head_dim = 64, .n_rot = 64,
      .n_ff = 768, .rope_freq_base = 1e6f, .rms_eps = 1e-6f, .tied_embeddings = true}},
    {Arch::Qwen2, Preset::B1,  // Qwen2.5-1.5B
     {.n_ctx_train = 32768, .n_embd = 1536, .n_block = 28, .n_head = 12, .n_head_kv = 2, .head_dim = 128,
      .n_rot = 128, .n_ff = 8960, .rope_freq_base = 1e6f, .rms_eps = 1e-6f, .tied_embeddings = true}},
    // Qwen3: QK-norm; the head size is its own key, so q may be wider than the residual stream.
    {Arch::Qwen3, Preset::Tiny,
     {.n_ctx_train = 2048, .n_embd = 64, .n_block = 2, .n_head = 4, .n_head_kv = 2, .head_dim = 32, .n_rot = 32,
      .n_ff = 128, .rope_freq_base = 1e6f, .rms_eps = 1e-6f, .tied_embeddings = true}},
    {Arch::Qwen3, Preset::Small,
     {.n_ctx_train = 4096, .n_embd = 256, .n_block = 4, .n_head = 4, .n_head_kv = 2, .head_dim = 128,
      .n_rot = 128, .n_ff = 768, .rope_freq_base = 1e6f, .rms_eps = 1e-6f, .tied_embeddings = true}},
    {Arch::Qwen3, Preset::B1,  // Qwen3-1.7B
     {.n_ctx_train = 40960, .n_embd = 2048, .n_block = 28, .n_head = 16, .n_head_kv = 8, .head_dim = 128,
      .n_rot = 128, .n_ff = 6144, .rope_freq_base = 1e6f, .rms_eps = 1e-6f, .tied_embeddings = true}},
    // GLM-4-9B: q, k and v fused with one bias, gate and up fused, RoPE on half of each head,
    // separate output; q as wide as the residual stream (there is no head size key). The 1b
    // shape is GLM-4-9B's narrowed, with glm-4-9b-chat's rope base (10000 x rope_ratio 500)
    // and norm epsilon.
    {Arch::ChatGlm, Preset::Tiny,
     {.n_ctx_train = 2048, .n_embd = 64, .n_block = 2, .n_head = 4, .n_head_kv = 2, .head_dim = 16, .n_rot = 8,
      .n_ff = 128, .rope_freq_base = 10000, .rms_eps = 1e-5f}},
    {Arch::ChatGlm, Preset::Small,
     {.n_ctx_train = 4096, .n_embd = 256, .n_block = 4, .n_head = 4, .n_head_kv = 2, .head_dim = 64, .n_rot = 32,
      .n_ff = 512, .rope_freq_base = 10000, .rms_eps = 1e-5f}},
    {Arch::ChatGlm, Preset::B1,
     {.n_ctx_train = 131072, .n_embd = 2048, .n_block = 16, .n_head = 16, .n_head_kv = 2, .head_dim = 128,
      .n_rot = 64, .n_ff = 6144, .rope_freq_base = 5e6f, .rms_eps = 1.5625e-7f}},
    // GLM-4-0414: RoPE on half of each head, q/k/v biases, post-norms, gate and up fused.
    {Arch::Glm4, Preset::Tiny,
     {.n_ctx_train = 2048, .n_embd = 64, .n_block = 2, .n_head = 4, .n_head_kv = 2, .head_dim = 16, .n_rot = 8,
      .n_ff = 128, .rope_freq_base = 10000, .rms_eps = 1e-5f}},
    {Arch::Glm4, Preset::Small,
     {.n_ctx_train = 4096, .n_embd = 256, .n_block = 4, .n_head = 4, .n_head_kv = 2, .head_dim = 64, .n_rot = 32,
      .n_ff = 512, .rope_freq_base = 10000, .rms_eps = 1e-5f}},
    {Arch::Glm4, Preset::B1,
     {.n_ctx_train = 32768, .n_embd = 2048, .n_block = 16, .n_head = 16, .n_head_kv = 2, .head_dim = 128,
      .n_rot = 64, .n_ff = 6144, .rope_freq_base = 10000, .rms_eps = 1e-5f}},
    // GLM-4.5: a leading dense block, sigmoid routing with a score bias and scale 2.5, one shared
    // expert, QK-norm, half-rotary heads, and a trailing NextN block (counted in block_count).
    {Arch::Glm4Moe, Preset::Tiny,
     {.n_ctx_train = 2048, .n_embd = 64, .n_block = 3, .n_nextn = 1, .n_head = 4, .n_head_kv = 2, .head_dim = 16,
      .n_rot = 8, .n_ff = 128, .n_expert = 4, .n_expert_used = 2, .n_ff_exp = 32, .n_expert_shared = 1,
      .n_dense_lead = 1, .expert_gating = 2, .expert_weights_scale = 2.5f, .expert_weights_norm = true,
      .rope_freq_base = 1e6f, .rms_eps = 1e-5f}},
    {Arch::Glm4Moe, Preset::Small,
     {.n_ctx_train = 4096, .n_embd = 256, .n_block = 5, .n_nextn = 1, .n_head = 4, .n_head_kv = 2,
      .head_dim = 64, .n_rot = 32, .n_ff = 768, .n_expert = 4, .n_expert_used = 2, .n_ff_exp = 256,
      .n_expert_shared = 1, .n_dense_lead = 1, .expert_gating = 2, .expert_weights_scale = 2.5f,
      .expert_weights_norm = true, .rope_freq_base = 1e6f, .rms_eps = 1e-5f}},
    {Arch::Glm4Moe, Preset::B1,
     {.n_ctx_train = 131072, .n_embd = 2048, .n_block = 17, .n_nextn = 1, .n_head = 16, .n_head_kv = 4,
      .head_dim = 128, .n_rot = 64, .n_ff = 6144, .n_expert = 16, .n_expert_used = 4, .n_ff_exp = 768,
      .n_expert_shared = 1, .n_dense_lead = 1, .expert_gating = 2, .expert_weights_scale = 2.5f,
      .expert_weights_norm = true, .rope_freq_base = 1e6f, .rms_eps = 1e-5f}},
    // Qwen3-30B-A3B's layout: softmax routing, no shared expert, q wider than n_embd. The tiny
    // expert width 48 is no multiple of 32, so even Q4_0 / Q8_0 files fall back to F16 there; the
    // small preset has 8 experts, a count llama-quantize treats specially (Mixtral's).
    {Arch::Qwen3Moe, Preset::Tiny,
     {.n_ctx_train = 2048, .n_embd = 64, .n_block = 2, .n_head = 4, .n_head_kv = 2, .head_dim = 32, .n_rot = 32,
      .n_ff = 128, .n_expert = 4, .n_expert_used = 2, .n_ff_exp = 48, .rope_freq_base = 1e6f, .rms_eps = 1e-6f}},
    {Arch::Qwen3Moe, Preset::Small,
     {.n_ctx_train = 4096, .n_embd = 256, .n_block = 4, .n_head = 4, .n_head_kv = 2, .head_dim = 128,
      .n_rot = 128, .n_ff = 768, .n_expert = 8, .n_expert_used = 2, .n_ff_exp = 256, .rope_freq_base = 1e6f,
      .rms_eps = 1e-6f}},
    {Arch::Qwen3Moe, Preset::B1,
     {.n_ctx_train = 40960, .n_embd = 2048, .n_block = 16, .n_head = 32, .n_head_kv = 4, .head_dim = 128,
      .n_rot = 128, .n_ff = 6144, .n_expert = 16, .n_expert_used = 4, .n_ff_exp = 768, .rope_freq_base = 1e6f,
      .rms_eps = 1e-6f}},
};

// How a tensor's values are drawn: normal(mean, std), or computed (rope_freqs).
struct Init {
  float mean = 0;
  float std = 0;
  bool rope_freqs = false;
};

// Scales: the residual stream stays O(1) because each block's branches add about 1/sqrt(2 n_layer)
// of variance each; q and k projections give attention logits of std ~2 so softmax is peaked.
Init init_for(const TensorDesc& t, const HParams& hp) {
  const float embd = static_cast<float>(hp.n_embd);
  const float branch = 1.0f / std::sqrt(2.0f * static_cast<float>(hp.n_layer()));
  const float fan_in = static_cast<float>(t.shape[0]);
  // silu(g) * u has std ~0.6 for unit-normal g and u; the down projection undoes that.
  const float ffn_down = 1.6f * branch / std::sqrt(fan_in);
  using K = TensorKind;
  switch (t.kind) {
    // Unit-norm embedding rows. The output norm's gain of 3 makes logits of std ~3, while a tied
    // model's bonus for repeating its last token (its row dotted with itself) stays ~1 std.
    case K::TokenEmbd:
    case K::Output: return {0, 1.0f / std::sqrt(embd)};
    case K::OutputNorm: return {3, 0.3f};
    case K::RopeFreqs: return {0, 0, true};
    case K::AttnNorm:
    case K::FfnNorm:
    case K::FfnNormPostAttn:
    case K::NextnEnorm:
    case K::NextnHnorm:
    case K::NextnSharedHeadNorm: return {1, 0.1f};
    case K::AttnQNorm:
    case K::AttnKNorm: return {kSqrt2, 0.1f};  // unit-rms q and k, scaled: logits of std ~2
    case K::AttnQ:
    case K::AttnK: return {0, kSqrt2 / std::sqrt(embd)};  // q and k of std sqrt(2): logits ~2
    case K::AttnV: return {0, 1.0f / std::sqrt(embd)};
    case K::AttnQkv: return {0, kSqrt2 / std::sqrt(embd)};  // one scale: q and k's (v's rows a little wider)
    case K::AttnQBias:
    case K::AttnKBias:
    case K::AttnVBias:
    case K::AttnQkvBias: return {0, 0.1f};
    case K::AttnOut: return {0, branch / std::sqrt(fan_in)};
    case K::AttnPostNorm:
    case K::FfnPostNorm: return {branch, 0.1f * branch};  // these set the branch's size
    case K::FfnGate:
    case K::FfnUp:
    case K::FfnGateUp:
    case K::FfnGateExps:
    case K::FfnUpExps:
    case K::FfnGateShexp:
    case K::FfnUpShexp: return {0, 1.0f / std::sqrt(embd)};
    case K::FfnDown:
    case K::FfnDownShexp: return {0, ffn_down};
    case K::FfnDownExps: return {0, ffn_down / std::max(1.0f, hp.expert_weights_scale)};
    case K::FfnGateInp: return {0, 2.0f / std::sqrt(embd)};
    case K::ExpProbsBias: return {0, 0.05f};
    case K::NextnEhProj: return {0, 1.0f / std::sqrt(2.0f * embd)};
  }
  return {};
}

// Llama 3's per-frequency divisors: high frequencies unchanged, low ones divided by the factor,
// a smooth blend between.
std::vector<float> llama3_rope_freqs(const HParams& hp) {
  const Llama3RopeScaling s;
  const double low_wavelen = s.original_context / s.low_freq_factor;
  const double high_wavelen = s.original_context / s.high_freq_factor;
  std::vector<float> out;
  for (uint32_t i = 0; i < hp.n_rot; i += 2) {
    const double freq = 1.0 / std::pow(static_cast<double>(hp.rope_freq_base), static_cast<double>(i) / hp.n_rot);
    const double wavelen = 2 * std::numbers::pi / freq;
    if (wavelen < high_wavelen) {
      out.push_back(1);
    } else if (wavelen > low_wavelen) {
      out.push_back(static_cast<float>(s.factor));
    } else {
      const double smooth = (s.original_context / wavelen - s.low_freq_factor) / (s.high_freq_factor - s.low_freq_factor);
      out.push_back(static_cast<float>(1 / ((1 - smooth) / s.factor + smooth)));
    }
  }
  return out;
}

uint64_t mix(uint64_t x) { return Rng::splitmix64(x); }

uint64_t fnv1a(std::string_view s) {
  uint64_t h = 0xcbf29ce484222325ULL;
  for (unsigned char c : s) h = (h ^ c) * 0x100000001b3ULL;
  return h;
}

// Rows are generated in chunks of about this many values, each chunk from its own stream.
constexpr uint64_t kChunkValues = 1 << 16;

// Fills one tensor's bytes. Chunks are shared among `threads` threads (the caller's included),
// each adding its chunks' bytes to the progress bar.
class TensorFiller {
 public:
  TensorFiller(const TensorDesc& t, gguf::TensorType type, const HParams& hp, uint64_t seed)
      : type_(type), init_(init_for(t, hp)), ne0_(t.shape[0]) {
    n_rows_ = 1;
    for (size_t i = 1; i < t.shape.size(); ++i) n_rows_ *= t.shape[i];
    rows_per_chunk_ = std::max<uint64_t>(1, kChunkValues / ne0_);
    n_chunks_ = (n_rows_ + rows_per_chunk_ - 1) / rows_per_chunk_;
    row_bytes_ = gguf::row_bytes(type, ne0_);
    seed_ = mix(seed ^ fnv1a(t.name));
    if (init_.rope_freqs) rope_freqs_ = llama3_rope_freqs(hp);
  }

  void fill(uint8_t* out, unsigned threads, Progress* progress) {
    std::atomic<uint64_t> next{0};
    std::exception_ptr error;
    std::mutex error_mutex;
    auto work = [&] {
      std::vector<float> values;
      try {
        for (uint64_t c = next++; c < n_chunks_; c = next++) {
          const uint64_t bytes = fill_chunk(c, out, values);
          if (progress) progress->add(bytes);
        }
      } catch (...) {
        std::lock_guard lock(error_mutex);
        if (!error) error = std::current_exception();
        next = n_chunks_;
      }
    };
    std::vector<std::thread> helpers;
    const uint64_t n_helpers = std::min<uint64_t>(threads > 0 ? threads - 1 : 0, n_chunks_ - 1);
    for (uint64_t i = 0; i < n_helpers; ++i) helpers.emplace_back(work);
    work();
    for (auto& h : helpers) h.join();
    if (error) std::rethrow_exception(error);
  }

 private:
  // Returns the bytes written.
  uint64_t fill_chunk(uint64_t chunk, uint8_t* out, std::vector<float>& values) const {
    const uint64_t row0 = chunk * rows_per_chunk_;
    const uint64_t rows = std::min(rows_per_chunk_, n_rows_ - row0);
    values.resize(rows * ne0_);
    if (init_.rope_freqs) {
      values.assign(rope_freqs_.begin(), rope_freqs_.end());
    } else {
      Rng rng(mix(seed_ + chunk));
      for (float& v : values) v = init_.mean + init_.std * rng.normal();
    }
    for (uint64_t r = 0; r < rows; ++r)
      kernels::quantize_row(type_, values.data() + r * ne0_, out + (row0 + r) * row_bytes_,
                            static_cast<int64_t>(ne0_));
    return rows * row_bytes_;
  }

  gguf::TensorType type_;
  Init init_;
  uint64_t ne0_;
  uint64_t n_rows_ = 0;
  uint64_t rows_per_chunk_ = 1;
  uint64_t n_chunks_ = 0;
  uint64_t row_bytes_ = 0;
  uint64_t seed_ = 0;
  std::vector<float> rope_freqs_;
};

gguf::Value string_array(const std::vector<std::string>& xs) { return gguf::make_array(gguf::ValueType::STRING, xs); }

}  // namespace

std::optional<Preset> preset_from_name(std::string_view name) {
  for (Preset p : {Preset::Tiny, Preset::Small, Preset::B1})
    if (preset_name(p) == name) return p;
  return std::nullopt;
}

std::string_view preset_name(Preset preset) {
  switch (preset) {
    case Preset::Tiny: return "tiny";
    case Preset::Small: return "small";
    case Preset::B1: return "1b";
  }
  return "?";
}

HParams preset_hparams(Arch arch, Preset preset, uint32_t n_vocab) {
  for (const auto& row : kPresets) {
    if (row.arch != arch || row.preset != preset) continue;
    HParams hp = row.hp;
    hp.n_vocab = n_vocab;
    return hp;
  }
  throw Error("no preset " + std::string(preset_name(preset)) + " for " + std::string(arch_info(arch).name));
}

uint32_t Vocabulary::n_tokens() const {
  for (const auto& e : metadata)
    if (e.key == "tokenizer.ggml.tokens")
      if (const auto* a = e.value.as_array()) return static_cast<uint32_t>(a->items.size());
  return 0;
}

Vocabulary byte_vocabulary() {
  std::vector<std::string> tokens = {"<unk>", "<s>", "</s>"};
  std::vector<int32_t> types = {2, 3, 3};  // UNKNOWN, CONTROL, CONTROL
  for (int b = 0; b < 256; ++b) {
    char text[8];
    std::snprintf(text, sizeof text, "<0x%02X>", b);
    tokens.push_back(text);
    types.push_back(6);  // BYTE
  }
  Vocabulary v;
  v.metadata = {
      {"tokenizer.ggml.model", "llama"},
      {"tokenizer.ggml.pre", "default"},
      {"tokenizer.ggml.tokens", string_array(tokens)},
      {"tokenizer.ggml.scores", gguf::make_array(gguf::ValueType::F32, std::vector<float>(tokens.size(), 0.0f))},
      {"tokenizer.ggml.token_type", gguf::make_array(gguf::ValueType::I32, types)},
      {"tokenizer.ggml.bos_token_id", uint32_t{1}},
      {"tokenizer.ggml.eos_token_id", uint32_t{2}},
      {"tokenizer.ggml.unknown_token_id", uint32_t{0}},
      {"tokenizer.ggml.add_bos_token", true},
      {"tokenizer.ggml.add_eos_token", false},
  };
  return v;
}

Vocabulary vocabulary_from_gguf(const std::string& path) {
  const gguf::File file = gguf::File::open(path);
  Vocabulary v;
  for (const auto& e : file.metadata())
    if (e.key.starts_with("tokenizer.")) v.metadata.push_back(e);
  if (v.n_tokens() == 0) throw Error(path + ": no tokenizer.ggml.tokens array, so no vocabulary to copy");
  return v;
}

void write_synthetic_model(const SyntheticModel& model, const std::string& path, unsigned threads,
                           bool show_progress) {
  if (!model.file_type) throw Error("no file type given");
  const ArchInfo& arch = arch_info(model.arch);
  const HParams hp = preset_hparams(model.arch, model.preset, model.vocabulary.n_tokens());
  const std::vector<TensorDesc> tensors = model_tensors(arch, hp);
  const std::vector<gguf::TensorType> types = choose_tensor_types(*model.file_type, arch, hp, tensors);
  for (gguf::TensorType type : types)
    if (!kernels::can_quantize(type))
      throw Error("cannot write " + std::string(gguf::tensor_type_name(type)) + " tensors (needed by " +
                  std::string(model.file_type->name) + "): that block format has no quantizer yet");

  gguf::Writer writer;
  writer.set("general.architecture", std::string(arch.name));
  writer.set("general.type", "model");
  writer.set("general.name", "tokenmill synthetic " + std::string(arch.name) + " " +
                                 std::string(preset_name(model.preset)) + " seed " + std::to_string(model.seed));
  for (auto& e : hparam_metadata(arch, hp)) writer.set(e.key, std::move(e.value));
  writer.set("general.file_type", model.file_type->id);
  writer.set("general.quantization_version", uint32_t{2});  // the converter writes it for every file type
  for (const auto& e : model.vocabulary.metadata) writer.set(e.key, e.value);

  uint64_t total = 0;
  for (size_t i = 0; i < tensors.size(); ++i) {
    writer.add_tensor(tensors[i].name, types[i], tensors[i].shape);
    total += writer.tensors()[i].n_bytes;
  }
  std::optional<Progress> progress;
  if (show_progress) progress.emplace("writing " + path, total, true);
  writer.write(path, [&](size_t index, uint8_t* out) {
    TensorFiller(tensors[index], types[index], hp, model.seed).fill(out, threads, progress ? &*progress : nullptr);
  });
}

}  // namespace tokenmill::model
