#include "reference_forward.h"

#include <algorithm>
#include <cmath>
#include <map>
#include <numeric>
#include <stdexcept>
#include <string>

#include "kernels/dot.h"
#include "kernels/formats.h"

namespace tokenmill::testing {
namespace {

using Vec = std::vector<float>;

// A tensor as f32 with its GGUF shape (ne[0] first), and the activation format the kernels pair
// its stored type with (F32 for float weights).
struct Tensor {
  std::vector<uint64_t> shape;
  Vec data;
  gguf::TensorType activation_type = gguf::TensorType::F32;
};

class Reference {
 public:
  Reference(const gguf::File& f, gguf::TensorType kv_type) : f_(f), arch_(f.architecture()), kv_type_(kv_type) {
    n_embd_ = uint_key("embedding_length");
    n_layer_ = uint_key("block_count") - uint_key("nextn_predict_layers", 0);
    n_head_ = uint_key("attention.head_count");
    n_head_kv_ = uint_key("attention.head_count_kv", n_head_);
    head_dim_ = uint_key("attention.key_length", n_embd_ / n_head_);
    n_rot_ = uint_key("rope.dimension_count", head_dim_);
    eps_ = float_key("attention.layer_norm_rms_epsilon");
    base_ = float_key("rope.freq_base", 10000.0);
    n_ctx_train_ = uint_key("context_length");
    n_expert_used_ = uint_key("expert_used_count", 0);
    // RoPE pairs neighbours in the Llama, GLM-4-9B and GLM-4-0414 graphs, halves (GPT-NeoX style) in the Qwen
    // families and GLM-4.5.
    neox_ = arch_ == "qwen2" || arch_ == "qwen3" || arch_ == "qwen3moe" || arch_ == "glm4moe";
  }

  std::vector<Vec> run(const std::vector<int32_t>& tokens) {
    const size_t n = tokens.size();
    const Tensor& embd = tensor("token_embd.weight");
    std::vector<Vec> x(n);
    for (size_t t = 0; t < n; ++t)
      x[t] = Vec(embd.data.begin() + tokens[t] * n_embd_, embd.data.begin() + (tokens[t] + 1) * n_embd_);
    for (uint64_t l = 0; l < n_layer_; ++l) layer(l, x);
    const Tensor& out = has("output.weight") ? tensor("output.weight") : embd;
    std::vector<Vec> logits;
    for (auto& row : x) logits.push_back(matvec(out, rms_norm(row, tensor("output_norm.weight").data)));
    return logits;
  }

 private:
  std::string key(const std::string& suffix) const { return arch_ + "." + suffix; }
  uint64_t uint_key(const std::string& suffix) const {
    if (auto v = f_.get_uint(key(suffix))) return *v;
    throw std::runtime_error("reference: missing " + key(suffix));
  }
  uint64_t uint_key(const std::string& suffix, uint64_t fallback) const {
    return f_.get_uint(key(suffix)).value_or(fallback);
  }
  double float_key(const std::string& suffix) const {
    if (auto v = f_.get_float(key(suffix))) return *v;
    throw std::runtime_error("reference: missing " + key(suffix));
  }
  double float_key(const std::string& suffix, double fallback) const {
    return f_.get_float(key(suffix)).value_or(fallback);
  }

  bool has(const std::string& name) const { return f_.find_tensor(name) != nullptr; }
  static std::string blk(uint64_t l, const std::string& name) { return "blk." + std::to_string(l) + "." + name; }

  const Tensor& tensor(const std::string& name) {
    auto it = cache_.find(name);
    if (it != cache_.end()) return it->second;
    const gguf::TensorInfo* info = f_.find_tensor(name);
    if (!info) throw std::runtime_error("reference: missing tensor " + name);
    Tensor t{info->shape, Vec(info->n_elements())};
    const bool is_float = info->type == gguf::TensorType::F32 || info->type == gguf::TensorType::F16 ||
                          info->type == gguf::TensorType::BF16;
    if (!is_float && info->shape.size() > 1) t.activation_type = kernels::dot_activation_type(info->type);
    const uint64_t row = info->shape[0];
    const uint64_t row_bytes = gguf::row_bytes(info->type, row);
    for (uint64_t r = 0; r < info->n_rows(); ++r)
      kernels::dequantize_row(info->type, info->data + r * row_bytes, t.data.data() + r * row, static_cast<int64_t>(row));
    return cache_.emplace(name, std::move(t)).first->second;
  }

  // y = W x for a 2-D tensor, or for matrix `slice` of a 3-D one. Quantized weights multiply
  // activations rounded to their paired 8-bit format, as the integer dot products do.
  static Vec matvec(const Tensor& w, Vec x, uint64_t slice = 0) {
    const uint64_t cols = w.shape[0], rows = w.shape[1];
    round_through(w.activation_type, x);
    Vec y(rows);
    const float* base = w.data.data() + slice * rows * cols;
    for (uint64_t r = 0; r < rows; ++r) {
      double s = 0;
      for (uint64_t c = 0; c < cols; ++c) s += static_cast<double>(base[r * cols + c]) * x[c];
      y[r] = static_cast<float>(s);
    }
    return y;
  }

  // x as it reads back after being stored as `type`.
  static void round_through(gguf::TensorType type, Vec& x) {
    if (type == gguf::TensorType::F32) return;
    std::vector<uint8_t> q(gguf::row_bytes(type, x.size()));
    kernels::quantize_row(type, x.data(), q.data(), static_cast<int64_t>(x.size()));
    kernels::dequantize_row(type, q.data(), x.data(), static_cast<int64_t>(x.size()));
  }

  Vec rms_norm(const Vec& x, const Vec& w) const {
    double ss = 0;
    for (float v : x) ss += static_cast<double>(v) * v;
    const double scale = 1.0 / std::sqrt(ss / x.size() + eps_);
    Vec y(x.size());
    for (size_t i = 0; i < x.size(); ++i) y[i] = static_cast<float>(x[i] * scale * w[i]);
    return y;
  }

  static float silu(float x) { return x / (1.0f + std::exp(-x)); }

  // Rotates the first n_rot dimensions of every head of v for position pos.
  void rope(Vec& v, uint64_t n_heads, uint64_t pos) {
    const std::string type = f_.get_string(key("rope.scaling.type")).value_or("linear");
    const double factor = float_key("rope.scaling.factor", 0.0);
    const double scale = (factor == 0.0 || type == "none") ? 1.0 : 1.0 / factor;
    const Vec* freq_div = has("rope_freqs.weight") ? &tensor("rope_freqs.weight").data : nullptr;
    const uint64_t half = n_rot_ / 2;
    // YaRN (arXiv:2309.00071): pairs that turn often within the original context keep their
    // angle, slow ones are interpolated, with a linear ramp between; cos and sin grow by
    // 0.1 ln(factor) + 1.
    double low = 0, high = 0, magnitude = 1;
    if (type == "yarn") {
      const double orig = static_cast<double>(uint_key("rope.scaling.original_context_length", n_ctx_train_));
      auto dim_for = [&](double rotations) {
        return n_rot_ * std::log(orig / (rotations * 2 * M_PI)) / (2 * std::log(base_));
      };
      low = std::max(0.0, std::floor(dim_for(32)));
      high = std::min(static_cast<double>(n_rot_ - 1), std::ceil(dim_for(1)));
      magnitude = 0.1 * std::log(factor) + 1.0;
    }
    for (uint64_t h = 0; h < n_heads; ++h) {
      float* x = v.data() + h * head_dim_;
      for (uint64_t i = 0; i < half; ++i) {
        double freq = std::pow(static_cast<double>(base_), -2.0 * i / n_rot_);
        if (freq_div) freq /= (*freq_div)[i];
        double theta = pos * freq * scale;
        if (type == "yarn") {
          const double ramp = std::clamp((i - low) / std::max(0.001, high - low), 0.0, 1.0);
          theta = pos * freq * scale * ramp + pos * freq * (1 - ramp);
        }
        const double c = std::cos(theta) * magnitude, s = std::sin(theta) * magnitude;
        const uint64_t a = neox_ ? i : 2 * i, b = neox_ ? i + half : 2 * i + 1;
        const double xa = x[a], xb = x[b];
        x[a] = static_cast<float>(xa * c - xb * s);
        x[b] = static_cast<float>(xa * s + xb * c);
      }
    }
  }

  Vec project(uint64_t l, const std::string& name, const Vec& h) {
    Vec y = matvec(tensor(blk(l, name + ".weight")), h);
    if (has(blk(l, name + ".bias"))) {
      const Vec& b = tensor(blk(l, name + ".bias")).data;
      for (size_t i = 0; i < y.size(); ++i) y[i] += b[i];
    }
    return y;
  }

  void head_norm(Vec& v, uint64_t n_heads, const Vec& w) {
    for (uint64_t h = 0; h < n_heads; ++h) {
      Vec head(v.begin() + h * head_dim_, v.begin() + (h + 1) * head_dim_);
      head = rms_norm(head, w);
      std::copy(head.begin(), head.end(), v.begin() + h * head_dim_);
    }
  }

  void layer(uint64_t l, std::vector<Vec>& x) {
    const size_t n = x.size();
    std::vector<Vec> q(n), k(n), v(n);
    for (size_t t = 0; t < n; ++t) {
      const Vec h = rms_norm(x[t], tensor(blk(l, "attn_norm.weight")).data);
      if (has(blk(l, "attn_qkv.weight"))) {
        // GLM-4-9B: one projection whose rows are all query heads, then key heads, then value heads.
        const Vec all = project(l, "attn_qkv", h);
        const uint64_t nq = n_head_ * head_dim_, nkv = n_head_kv_ * head_dim_;
        q[t].assign(all.begin(), all.begin() + nq);
        k[t].assign(all.begin() + nq, all.begin() + nq + nkv);
        v[t].assign(all.begin() + nq + nkv, all.end());
      } else {
        q[t] = project(l, "attn_q", h);
        k[t] = project(l, "attn_k", h);
        v[t] = project(l, "attn_v", h);
      }
      if (has(blk(l, "attn_q_norm.weight"))) head_norm(q[t], n_head_, tensor(blk(l, "attn_q_norm.weight")).data);
      if (has(blk(l, "attn_k_norm.weight"))) head_norm(k[t], n_head_kv_, tensor(blk(l, "attn_k_norm.weight")).data);
      rope(q[t], n_head_, t);
      rope(k[t], n_head_kv_, t);
      round_through(kv_type_, k[t]);
      round_through(kv_type_, v[t]);
    }
    const uint64_t group = n_head_ / n_head_kv_;
    for (size_t t = 0; t < n; ++t) {
      Vec att(n_head_ * head_dim_, 0.0f);
      for (uint64_t hq = 0; hq < n_head_; ++hq) {
        const uint64_t hk = hq / group;
        std::vector<double> score(t + 1);
        for (size_t j = 0; j <= t; ++j) {
          double s = 0;
          for (uint64_t i = 0; i < head_dim_; ++i) s += static_cast<double>(q[t][hq * head_dim_ + i]) * k[j][hk * head_dim_ + i];
          score[j] = s / std::sqrt(static_cast<double>(head_dim_));
        }
        const double mx = *std::max_element(score.begin(), score.end());
        double sum = 0;
        for (double& s : score) sum += s = std::exp(s - mx);
        for (size_t j = 0; j <= t; ++j)
          for (uint64_t i = 0; i < head_dim_; ++i)
            att[hq * head_dim_ + i] += static_cast<float>(score[j] / sum * v[j][hk * head_dim_ + i]);
      }
      Vec o = matvec(tensor(blk(l, "attn_output.weight")), att);
      // GLM-4 normalises the attention output; GLM-4.5 uses the same name for its pre-FFN norm.
      if (arch_ == "glm4") o = rms_norm(o, tensor(blk(l, "post_attention_norm.weight")).data);
      for (uint64_t i = 0; i < n_embd_; ++i) x[t][i] += o[i];

      const std::string ffn_norm = arch_ == "glm4moe" ? "post_attention_norm.weight" : "ffn_norm.weight";
      const Vec h = rms_norm(x[t], tensor(blk(l, ffn_norm)).data);
      Vec f = has(blk(l, "ffn_gate_inp.weight")) ? moe(l, h) : dense(l, h, "");
      if (arch_ == "glm4") f = rms_norm(f, tensor(blk(l, "post_ffw_norm.weight")).data);
      for (uint64_t i = 0; i < n_embd_; ++i) x[t][i] += f[i];
    }
  }

  // down(silu(gate h) * up h); GLM-4 and GLM-4-9B store gate and up as one matrix, gate rows first.
  Vec dense(uint64_t l, const Vec& h, const std::string& suffix) {
    Vec gate, up;
    if (!has(blk(l, "ffn_gate" + suffix + ".weight"))) {
      const Vec both = matvec(tensor(blk(l, "ffn_up.weight")), h);
      gate.assign(both.begin(), both.begin() + both.size() / 2);
      up.assign(both.begin() + both.size() / 2, both.end());
    } else {
      gate = matvec(tensor(blk(l, "ffn_gate" + suffix + ".weight")), h);
      up = matvec(tensor(blk(l, "ffn_up" + suffix + ".weight")), h);
    }
    for (size_t i = 0; i < gate.size(); ++i) gate[i] = silu(gate[i]) * up[i];
    return matvec(tensor(blk(l, "ffn_down" + suffix + ".weight")), gate);
  }

  Vec moe(uint64_t l, const Vec& h) {
    Vec p = matvec(tensor(blk(l, "ffn_gate_inp.weight")), h);
    const uint64_t gating = uint_key("expert_gating_func", arch_ == "glm4moe" ? 2 : 1);
    if (gating == 2) {
      for (float& s : p) s = 1.0f / (1.0f + std::exp(-s));
    } else {
      const float mx = *std::max_element(p.begin(), p.end());
      double sum = 0;
      for (float& s : p) sum += s = std::exp(s - mx);
      for (float& s : p) s = static_cast<float>(s / sum);
    }
    Vec choice = p;
    if (has(blk(l, "exp_probs_b.bias"))) {
      const Vec& b = tensor(blk(l, "exp_probs_b.bias")).data;
      for (size_t e = 0; e < choice.size(); ++e) choice[e] += b[e];
    }
    std::vector<int> order(p.size());
    std::iota(order.begin(), order.end(), 0);
    std::stable_sort(order.begin(), order.end(), [&](int a, int b) { return choice[a] > choice[b]; });
    order.resize(n_expert_used_);
    double sum = 0;
    for (int e : order) sum += p[e];
    const bool normalize = arch_ == "qwen3moe" || f_.get_bool(key("expert_weights_norm")).value_or(false);
    const double scale = float_key("expert_weights_scale", 0.0) == 0.0 ? 1.0 : float_key("expert_weights_scale", 0.0);
    Vec out(n_embd_, 0.0f);
    if (has(blk(l, "ffn_gate_shexp.weight"))) out = dense(l, h, "_shexp");
    for (int e : order) {
      const double weight = (normalize ? p[e] / std::max(sum, 6.103515625e-5) : p[e]) * scale;
      Vec gate = matvec(tensor(blk(l, "ffn_gate_exps.weight")), h, e);
      const Vec up = matvec(tensor(blk(l, "ffn_up_exps.weight")), h, e);
      for (size_t i = 0; i < gate.size(); ++i) gate[i] = silu(gate[i]) * up[i];
      const Vec down = matvec(tensor(blk(l, "ffn_down_exps.weight")), gate, e);
      for (uint64_t i = 0; i < n_embd_; ++i) out[i] += static_cast<float>(weight * down[i]);
    }
    return out;
  }

  const gguf::File& f_;
  std::string arch_;
  gguf::TensorType kv_type_;
  uint64_t n_embd_, n_layer_, n_head_, n_head_kv_, head_dim_, n_rot_, n_ctx_train_, n_expert_used_;
  double eps_, base_;
  bool neox_;
  std::map<std::string, Tensor> cache_;
};

}  // namespace

std::vector<std::vector<float>> reference_logits(const gguf::File& file, const std::vector<int32_t>& tokens,
                                                 gguf::TensorType kv_type) {
  return Reference(file, kv_type).run(tokens);
}

}  // namespace tokenmill::testing
