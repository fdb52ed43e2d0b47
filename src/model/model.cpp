#include "model/model.h"

#include <cmath>
#include <set>
#include <string>

#include "common/error.h"
#include "kernels/formats.h"

namespace tokenmill::model {
namespace {

using gguf::FormatError;
using kernels::RopeMode;

// What the architecture tables leave to the runtime: how RoPE pairs dimensions (as each
// family's reference implementation does) and how its router is configured when the file
// does not say.
struct ArchRuntime {
  Arch arch;
  RopeMode rope_mode;
  Routing::Gating default_gating;
  bool always_normalize;  // the reference normalises the top-k weights unconditionally
};

constexpr ArchRuntime kArchRuntime[] = {
    {Arch::Llama, RopeMode::normal, Routing::Gating::Softmax, false},
    {Arch::Qwen2, RopeMode::neox, Routing::Gating::Softmax, false},
    {Arch::Qwen3, RopeMode::neox, Routing::Gating::Softmax, false},
    {Arch::ChatGlm, RopeMode::normal, Routing::Gating::Softmax, false},
    {Arch::Glm4, RopeMode::normal, Routing::Gating::Softmax, false},
    {Arch::Glm4Moe, RopeMode::neox, Routing::Gating::Sigmoid, false},
    {Arch::Qwen3Moe, RopeMode::neox, Routing::Gating::Softmax, true},
};

const ArchRuntime& runtime_of(Arch arch) {
  for (const auto& r : kArchRuntime)
    if (r.arch == arch) return r;
  throw Error("no runtime settings for this architecture");
}

std::string shape_string(const std::vector<uint64_t>& shape) {
  std::string s = "[";
  for (size_t i = 0; i < shape.size(); ++i) s += (i ? ", " : "") + std::to_string(shape[i]);
  return s + "]";
}

// Whether a tensor name is "blk.N...." with N a block that does not run (a NextN block).
bool in_nextn_block(const std::string& name, const HParams& hp) {
  if (name.rfind("blk.", 0) != 0) return false;
  uint64_t block = 0;
  size_t i = 4;
  for (; i < name.size() && i < 14 && name[i] >= '0' && name[i] <= '9'; ++i) block = block * 10 + (name[i] - '0');
  return i > 4 && block >= hp.n_layer();
}

Routing read_routing(const ArchInfo& arch, const HParams& hp, const std::string& path) {
  const ArchRuntime& rt = runtime_of(arch.arch);
  Routing r;
  switch (hp.expert_gating) {
    case 0: r.gating = rt.default_gating; break;
    case 1: r.gating = Routing::Gating::Softmax; break;
    case 2: r.gating = Routing::Gating::Sigmoid; break;
    default:
      throw FormatError(path + ": " + std::string(arch.name) + ".expert_gating_func " +
                        std::to_string(hp.expert_gating) + " is not 1 (softmax) or 2 (sigmoid)");
  }
  r.normalize = rt.always_normalize || hp.expert_weights_norm;
  r.scale = hp.expert_weights_scale == 0.0f ? 1.0f : hp.expert_weights_scale;
  return r;
}

// Reads every page of the weights once, so the first tokens do not stall on the disk.
void prefault(const gguf::File& file, const LoadProgress& progress) {
  const uint64_t total = file.total_bytes();
  uint64_t done = 0;
  volatile uint8_t sink = 0;
  for (const auto& t : file.tensors()) {
    for (uint64_t off = 0; off < t.n_bytes; off += 4096) sink = sink + t.data[off];
    done += t.n_bytes;
    progress(done, total);
  }
  progress(total, total);
}

}  // namespace

kernels::WeightMatrix Weight::matrix() const {
  return kernels::WeightMatrix{info->type, info->data, static_cast<int64_t>(info->n_rows()),
                               static_cast<int64_t>(info->shape[0])};
}

kernels::WeightMatrix Weight::slice(int64_t e) const {
  kernels::WeightMatrix m{info->type, nullptr, static_cast<int64_t>(info->shape[1]),
                          static_cast<int64_t>(info->shape[0])};
  m.data = info->data + e * m.n_rows * m.row_bytes();
  return m;
}

kernels::RopeConfig read_rope_config(const gguf::File& file, const ArchInfo& arch, const HParams& hp) {
  const std::string prefix = std::string(arch.name) + ".rope.";
  kernels::RopeConfig c;
  c.mode = runtime_of(arch.arch).rope_mode;
  c.n_rot = static_cast<int>(hp.n_rot);
  c.freq_base = hp.rope_freq_base;
  const std::string type = file.get_string(prefix + "scaling.type").value_or("linear");
  if (type != "none" && type != "linear" && type != "yarn")
    throw FormatError(file.path() + ": " + prefix + "scaling.type '" + type +
                      "' is not supported (none, linear and yarn are)");
  const double factor =
      file.get_float(prefix + "scaling.factor").value_or(file.get_float(prefix + "scale_linear").value_or(0.0));
  if (factor < 0.0 || !std::isfinite(factor))
    throw FormatError(file.path() + ": " + prefix + "scaling.factor must be a positive number");
  c.freq_scale = (factor == 0.0 || type == "none") ? 1.0f : static_cast<float>(1.0 / factor);
  c.n_ctx_orig = static_cast<int>(file.get_uint(prefix + "scaling.original_context_length").value_or(hp.n_ctx_train));
  c.attn_factor = static_cast<float>(file.get_float(prefix + "scaling.attn_factor").value_or(1.0));
  if (type == "yarn") {
    c.ext_factor = 1.0f;
    // The kernel multiplies in YaRN's magnitude correction 1 + 0.1 ln(factor) itself.
    c.beta_fast = static_cast<float>(file.get_float(prefix + "scaling.yarn_beta_fast").value_or(32.0));
    c.beta_slow = static_cast<float>(file.get_float(prefix + "scaling.yarn_beta_slow").value_or(1.0));
  }
  return c;
}

Model Model::load(const std::string& path, const LoadProgress& progress) {
  Model m;
  m.file_ = gguf::File::open(path);
  const std::string arch_name = m.file_.architecture();
  const auto arch = arch_from_name(arch_name);
  if (!arch) {
    std::string known;
    for (const auto& a : all_archs()) known += (known.empty() ? "" : ", ") + std::string(a.name);
    throw Error(path + ": architecture '" + arch_name + "' is not supported (supported: " + known + ")");
  }
  m.arch_ = &arch_info(*arch);
  m.hp_ = read_hparams(m.file_, *m.arch_);
  try {
    validate(*m.arch_, m.hp_);
  } catch (const Error& e) {
    throw FormatError(path + ": " + e.what());
  }

  m.blocks_.resize(m.hp_.n_block);
  std::set<std::string> expected;
  for (const TensorDesc& desc : model_tensors(*m.arch_, m.hp_)) {
    expected.insert(desc.name);
    const gguf::TensorInfo* info = m.file_.find_tensor(desc.name);
    if (!info) throw FormatError(path + ": missing tensor " + desc.name);
    if (info->shape != desc.shape)
      throw FormatError(path + ": tensor " + desc.name + " has shape " + shape_string(info->shape) + ", expected " +
                        shape_string(desc.shape));
    const bool usable = desc.shape.size() == 1 ? kernels::can_dequantize(info->type) : kernels::matmul_supports(info->type);
    if (!usable)
      throw FormatError(path + ": tensor " + desc.name + " has type " +
                        std::string(gguf::tensor_type_name(info->type)) + ", which tokenmill cannot compute with");
    Weight w{info, {}};
    if (desc.shape.size() == 1) {
      w.values.resize(desc.shape[0]);
      kernels::dequantize_row(info->type, info->data, w.values.data(), static_cast<int64_t>(desc.shape[0]));
    }
    auto& slot = desc.block < 0 ? m.globals_ : m.blocks_[desc.block];
    slot.emplace(desc.kind, std::move(w));
  }
  // A tensor the table does not know would change the computation if it mattered; refuse
  // rather than silently ignore it. NextN blocks never run, so their extras are harmless.
  for (const auto& t : m.file_.tensors())
    if (!expected.count(t.name) && !in_nextn_block(t.name, m.hp_))
      throw FormatError(path + ": unexpected tensor " + t.name + " for a " + arch_name + " model");

  m.rope_ = read_rope_config(m.file_, *m.arch_, m.hp_);
  if (const Weight& f = m.global(TensorKind::RopeFreqs)) m.rope_.freq_factors = f.data();
  m.routing_ = read_routing(*m.arch_, m.hp_, path);
  m.attention_scale_ = 1.0f / std::sqrt(static_cast<float>(m.hp_.head_dim));
  if (progress) prefault(m.file_, progress);
  return m;
}

const Weight& Model::global(TensorKind kind) const {
  static const Weight kAbsent;
  const auto it = globals_.find(kind);
  return it == globals_.end() ? kAbsent : it->second;
}

const Weight& Model::block(int b, TensorKind kind) const {
  static const Weight kAbsent;
  const auto& tensors = blocks_.at(b);
  const auto it = tensors.find(kind);
  return it == tensors.end() ? kAbsent : it->second;
}

const Weight& Model::output() const {
  const Weight& out = global(TensorKind::Output);
  return out ? out : global(TensorKind::TokenEmbd);
}

uint64_t Model::bytes_per_token() const {
  uint64_t bytes = output().info->n_bytes;
  for (uint32_t b = 0; b < hp_.n_layer(); ++b)
    for (const auto& [kind, w] : blocks_[b]) {
      if (w.info->shape.size() == 2) bytes += w.info->n_bytes;
      if (w.info->shape.size() == 3) bytes += w.info->n_bytes / hp_.n_expert * hp_.n_expert_used;
    }
  return bytes;
}

}  // namespace tokenmill::model
