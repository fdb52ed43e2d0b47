// The transformer's non-matmul ops on f32 rows: norms, RoPE, softmax, activations,
// element-wise arithmetic, and the per-tile attention kernel (driven by attention.h).
//
// Each op exists once per ISA path, gathered in an OpTable. The scalar table is the reference
// (plain loops, libm functions); the vector tables compute the same thing and are tested
// against it. Callers take the active table once (`const OpTable& k = ops();`) and call
// through it. Unless an op says otherwise, outputs may alias inputs element for element.
#pragma once

#include <cstdint>

#include "kernels/cpu_features.h"

namespace tokenmill::kernels {

struct AttentionTile;  // attention.h

// How RoPE pairs up the dimensions it rotates: `normal` rotates (2i, 2i+1) (GGUF Llama and
// most models), `neox` rotates (i, i + n_rot/2) (GPT-NeoX, Qwen, many HF conversions).
enum class RopeMode { normal, neox };

struct RopeConfig {
  RopeMode mode = RopeMode::normal;
  int n_rot = 0;            // dimensions rotated (even, <= head_dim); the rest pass through
  float freq_base = 10000.0f;
  float freq_scale = 1.0f;  // 1 / linear scaling factor (position interpolation)
  // Optional n_rot/2 divisors of each pair's frequency (llama3's rope_freqs tensor).
  const float* freq_factors = nullptr;
  // YaRN (active when ext_factor != 0): blend interpolated and extrapolated angles between
  // the correction dims found from beta_fast/beta_slow and the training context n_ctx_orig.
  float ext_factor = 0.0f;
  float attn_factor = 1.0f;  // scales cos and sin (YaRN multiplies in its own mscale too)
  float beta_fast = 32.0f;
  float beta_slow = 1.0f;
  int n_ctx_orig = 0;
};

// The rotation at one position, once per token and shared by every head and layer: cos[n_rot]
// and sin[n_rot] laid out so that, for every rotated element i with partner p(i),
//   out[i] = x[i] * cos[i] + x[p(i)] * sin[i]
// (sin carries the sign: -sin(theta) on the first element of a pair, +sin(theta) on the second).
// Angles are computed in double. Throws tokenmill::Error for an invalid config.
void rope_rotation(const RopeConfig& config, int64_t pos, float* cos, float* sin);

struct OpTable {
  // y = x / sqrt(mean(x^2) + eps) * weight; weight may be null (all ones).
  void (*rms_norm)(const float* x, const float* weight, float* y, int64_t n, float eps);
  // y = (x - mean) / sqrt(var + eps) * weight + bias; weight and bias may be null.
  void (*layer_norm)(const float* x, const float* weight, const float* bias, float* y, int64_t n,
                     float eps);
  // Rotates the first n_rot dims of each of n_heads consecutive heads of x in place, with the
  // coefficients from rope_rotation().
  void (*rope)(float* x, int64_t n_heads, int64_t head_dim, RopeMode mode, int64_t n_rot,
               const float* cos, const float* sin);
  // y = exp(x - max) / sum; a row must hold at least one finite value.
  void (*softmax)(const float* x, float* y, int64_t n);
  void (*silu)(const float* x, float* y, int64_t n);       // x * sigmoid(x)
  void (*gelu_tanh)(const float* x, float* y, int64_t n);  // tanh approximation
  void (*gelu_erf)(const float* x, float* y, int64_t n);   // exact: x/2 * (1 + erf(x/sqrt 2))
  void (*swiglu)(const float* gate, const float* up, float* y, int64_t n);  // silu(gate) * up
  void (*add)(const float* a, const float* b, float* y, int64_t n);
  void (*mul)(const float* a, const float* b, float* y, int64_t n);
  void (*scale)(const float* x, float s, float* y, int64_t n);
  float (*sum)(const float* x, int64_t n);
  void (*attention_tile)(const AttentionTile& tile);
};

// The table for one path; throws tokenmill::Error when this CPU lacks it.
const OpTable& op_table(Isa isa);
// The table of active_isa().
const OpTable& ops();

// Indices of the k largest of x[0..n), largest first; equal values keep index order and NaN
// ranks below everything. For MoE routing, where n is the expert count (tens to hundreds), so
// one scalar version serves every path. Throws tokenmill::Error unless 0 < k <= n.
void top_k(const float* x, int64_t n, int64_t k, int32_t* indices);

}  // namespace tokenmill::kernels
