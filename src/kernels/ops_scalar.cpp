// The reference ops: the plainest loops that say what each op means, with sums in double and
// libm's exp/tanh/erf. The vector tables are tested against these.
#include <cmath>
#include <cstdint>

#include "kernels/op_tables.h"

namespace tokenmill::kernels {
namespace {

double sum_squares(const float* x, int64_t n) {
  double ss = 0.0;
  for (int64_t i = 0; i < n; ++i) ss += static_cast<double>(x[i]) * x[i];
  return ss;
}

void rms_norm(const float* x, const float* weight, float* y, int64_t n, float eps) {
  const float scale = static_cast<float>(1.0 / std::sqrt(sum_squares(x, n) / n + eps));
  for (int64_t i = 0; i < n; ++i) y[i] = x[i] * scale * (weight ? weight[i] : 1.0f);
}

void layer_norm(const float* x, const float* weight, const float* bias, float* y, int64_t n,
                float eps) {
  double mean = 0.0;
  for (int64_t i = 0; i < n; ++i) mean += x[i];
  mean /= n;
  double var = 0.0;
  for (int64_t i = 0; i < n; ++i) var += (x[i] - mean) * (x[i] - mean);
  const double inv = 1.0 / std::sqrt(var / n + eps);
  for (int64_t i = 0; i < n; ++i) {
    const float v = static_cast<float>((x[i] - mean) * inv);
    y[i] = v * (weight ? weight[i] : 1.0f) + (bias ? bias[i] : 0.0f);
  }
}

void rope(float* x, int64_t n_heads, int64_t head_dim, RopeMode mode, int64_t n_rot,
          const float* cos, const float* sin) {
  // Element i of a pair rotates with element i + step: its neighbour, or half a rotation on.
  const int64_t step = mode == RopeMode::normal ? 1 : n_rot / 2;
  for (int64_t h = 0; h < n_heads; ++h) {
    float* r = x + h * head_dim;
    for (int64_t i = 0; i < n_rot; ++i) {
      const bool first_of_pair = mode == RopeMode::normal ? i % 2 == 0 : i < step;
      if (!first_of_pair) continue;
      const int64_t j = i + step;
      const float a = r[i];
      const float b = r[j];
      r[i] = a * cos[i] + b * sin[i];
      r[j] = b * cos[j] + a * sin[j];
    }
  }
}

void softmax(const float* x, float* y, int64_t n) {
  float max = -INFINITY;
  for (int64_t i = 0; i < n; ++i) max = std::fmax(max, x[i]);
  double sum = 0.0;
  for (int64_t i = 0; i < n; ++i) {
    y[i] = std::exp(x[i] - max);
    sum += y[i];
  }
  const float inv = static_cast<float>(1.0 / sum);
  for (int64_t i = 0; i < n; ++i) y[i] *= inv;
}

float silu_one(float x) { return x / (1.0f + std::exp(-x)); }

void silu(const float* x, float* y, int64_t n) {
  for (int64_t i = 0; i < n; ++i) y[i] = silu_one(x[i]);
}

void gelu_tanh(const float* x, float* y, int64_t n) {
  constexpr float kSqrt2OverPi = 0.7978845608028654f;
  for (int64_t i = 0; i < n; ++i) {
    const float v = x[i];
    y[i] = 0.5f * v * (1.0f + std::tanh(kSqrt2OverPi * (v + 0.044715f * v * v * v)));
  }
}

void gelu_erf(const float* x, float* y, int64_t n) {
  for (int64_t i = 0; i < n; ++i) y[i] = 0.5f * x[i] * (1.0f + std::erf(x[i] * 0.7071067811865476f));
}

void swiglu(const float* gate, const float* up, float* y, int64_t n) {
  for (int64_t i = 0; i < n; ++i) y[i] = silu_one(gate[i]) * up[i];
}

void add(const float* a, const float* b, float* y, int64_t n) {
  for (int64_t i = 0; i < n; ++i) y[i] = a[i] + b[i];
}

void mul(const float* a, const float* b, float* y, int64_t n) {
  for (int64_t i = 0; i < n; ++i) y[i] = a[i] * b[i];
}

void scale(const float* x, float s, float* y, int64_t n) {
  for (int64_t i = 0; i < n; ++i) y[i] = x[i] * s;
}

float sum(const float* x, int64_t n) {
  double s = 0.0;
  for (int64_t i = 0; i < n; ++i) s += x[i];
  return static_cast<float>(s);
}

}  // namespace

constinit const OpTable scalar_op_table = {
    .rms_norm = rms_norm,
    .layer_norm = layer_norm,
    .rope = rope,
    .softmax = softmax,
    .silu = silu,
    .gelu_tanh = gelu_tanh,
    .gelu_erf = gelu_erf,
    .swiglu = swiglu,
    .add = add,
    .mul = mul,
    .scale = scale,
    .sum = sum,
    .attention_tile = attention_tile_scalar,
};

}  // namespace tokenmill::kernels
