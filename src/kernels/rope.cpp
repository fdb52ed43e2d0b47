// RoPE coefficients for one position, with linear scaling, per-pair frequency factors and
// YaRN. The maths follows the YaRN paper and its reference implementation (as in ggml's
// rope_yarn): pair i of n_rot rotates by pos * base^(-2i/n_rot) / factor[i]; YaRN blends the
// interpolated angle (times freq_scale) with the extrapolated one, fully extrapolating the
// fast pairs below the correction range and interpolating the slow ones above it.
#include <algorithm>
#include <cmath>
#include <numbers>

#include "common/error.h"
#include "kernels/ops.h"

namespace tokenmill::kernels {
namespace {

// The pair index whose wavelength fits n_rotations times into the training context.
double yarn_correction_dim(const RopeConfig& c, double n_rotations) {
  return c.n_rot * std::log(c.n_ctx_orig / (n_rotations * 2.0 * std::numbers::pi)) /
         (2.0 * std::log(static_cast<double>(c.freq_base)));
}

void validate(const RopeConfig& c) {
  if (c.n_rot <= 0 || c.n_rot % 2 != 0) {
    throw Error("RoPE: n_rot must be a positive even number, got " + std::to_string(c.n_rot));
  }
  if (!(c.freq_base > 0.0f) || !(c.freq_scale > 0.0f)) {
    throw Error("RoPE: freq_base and freq_scale must be positive");
  }
  if (c.ext_factor != 0.0f && c.n_ctx_orig <= 0) {
    throw Error("RoPE: YaRN (ext_factor != 0) needs the original context length n_ctx_orig");
  }
}

}  // namespace

void rope_rotation(const RopeConfig& c, int64_t pos, float* cos, float* sin) {
  validate(c);
  const int half = c.n_rot / 2;
  double low = 0.0, high = 0.0;  // YaRN correction range, in pair indices
  double mscale = c.attn_factor;
  if (c.ext_factor != 0.0f) {
    low = std::max(0.0, std::floor(yarn_correction_dim(c, c.beta_fast)));
    high = std::min(c.n_rot - 1.0, std::ceil(yarn_correction_dim(c, c.beta_slow)));
    mscale *= 1.0 + 0.1 * std::log(1.0 / c.freq_scale);
  }
  for (int i = 0; i < half; ++i) {
    double extrapolated = static_cast<double>(pos) * std::pow(static_cast<double>(c.freq_base),
                                                              -2.0 * i / c.n_rot);
    if (c.freq_factors) extrapolated /= c.freq_factors[i];
    const double interpolated = c.freq_scale * extrapolated;
    double theta = interpolated;
    if (c.ext_factor != 0.0f) {
      const double ramp = 1.0 - std::clamp((i - low) / std::max(0.001, high - low), 0.0, 1.0);
      const double mix = ramp * c.ext_factor;
      theta = interpolated * (1.0 - mix) + extrapolated * mix;
    }
    const auto co = static_cast<float>(std::cos(theta) * mscale);
    const auto si = static_cast<float>(std::sin(theta) * mscale);
    const int first = c.mode == RopeMode::normal ? 2 * i : i;
    const int second = c.mode == RopeMode::normal ? 2 * i + 1 : i + half;
    cos[first] = co;
    cos[second] = co;
    sin[first] = -si;
    sin[second] = si;
  }
}

}  // namespace tokenmill::kernels
