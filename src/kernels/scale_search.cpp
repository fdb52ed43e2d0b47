#include "kernels/scale_search.h"

#include <limits>

namespace tokenmill::kernels {

AffineFit fit_affine(const float* x, const float* w, int n, int top, ScaleScan scan,
                     bool allow_positive_offset) {
  float lo = x[0], hi = x[0], sum_w = 0, sum_x = 0;
  for (int i = 0; i < n; ++i) {
    lo = std::min(lo, x[i]);
    hi = std::max(hi, x[i]);
    sum_w += w[i];
    sum_x += w[i] * x[i];
  }
  if (!allow_positive_offset) lo = std::min(lo, 0.0f);
  if (!(hi > lo)) return {0.0f, lo};  // constant group: the offset alone reproduces it

  // Pass 1: each candidate's rounding, reduced to the sums its least-squares fit needs.
  // Candidates are independent, so their loops overlap in the CPU.
  float sums_q[kMaxCandidates], sums_qq[kMaxCandidates], sums_xq[kMaxCandidates];
  const int count = std::min(scan.count, kMaxCandidates);
  const float max_level = static_cast<float>(top);
  for (int k = 0; k < count; ++k) {
    const float inverse = (max_level + scan.first + scan.step * k) / (hi - lo);
    float sq[kLanes] = {}, sqq[kLanes] = {}, sxq[kLanes] = {};
    for (int i = 0; i < n; i += kLanes) {
      for (int j = 0; j < kLanes; ++j) {
        const float q = clamp_round((x[i + j] - lo) * inverse, 0.0f, max_level);
        const float wq = w[i + j] * q;
        sq[j] += wq;
        sqq[j] += wq * q;
        sxq[j] += wq * x[i + j];
      }
    }
    sums_q[k] = add_lanes(sq);
    sums_qq[k] = add_lanes(sqq);
    sums_xq[k] = add_lanes(sxq);
  }
  // Pass 2: solve each and keep the smallest error. The plain min/max fit stands when no
  // candidate gives a solvable system.
  AffineFit best{(hi - lo) / top, lo};
  double best_error = std::numeric_limits<double>::infinity();
  for (int k = 0; k < count; ++k) {
    const double s_q = sums_q[k], s_qq = sums_qq[k], s_xq = sums_xq[k];
    // Normal equations of min over (a, b) of sum w (a q + b - x)^2.
    const double det = sum_w * s_qq - s_q * s_q;
    if (!(det > 0)) continue;
    double a = (sum_w * s_xq - sum_x * s_q) / det;
    double b = (s_qq * sum_x - s_q * s_xq) / det;
    if (b > 0 && !allow_positive_offset) {
      b = 0;
      a = s_xq / s_qq;
    }
    // At a least-squares solution the error is sum(w x^2) - a sum(w x q) - b sum(w x); the
    // first term is the same for every candidate.
    const double error = -(a * s_xq + b * sum_x);
    if (error < best_error) {
      best_error = error;
      best = {static_cast<float>(a), static_cast<float>(b)};
    }
  }
  return best;
}

float quantize_unsigned_scales(const float* v, int n, int top, uint8_t* q) {
  float max = 0;
  for (int i = 0; i < n; ++i) max = std::max(max, v[i]);
  const float inverse = max > 0 ? top / max : 0.0f;
  for (int i = 0; i < n; ++i)
    q[i] = static_cast<uint8_t>(clamp_round(inverse * v[i], 0.0f, static_cast<float>(top)));
  return max / top;
}

float quantize_signed_scales(const float* v, int n, int lowest, int highest, int8_t* q) {
  float extreme = 0, magnitude = 0;
  for (int i = 0; i < n; ++i) {
    if (std::fabs(v[i]) > magnitude) {
      magnitude = std::fabs(v[i]);
      extreme = v[i];
    }
  }
  const float inverse = magnitude > 0 ? lowest / extreme : 0.0f;
  for (int i = 0; i < n; ++i)
    q[i] = static_cast<int8_t>(clamp_round(inverse * v[i], static_cast<float>(lowest),
                                           static_cast<float>(highest)));
  return magnitude > 0 ? extreme / lowest : 0.0f;
}

}  // namespace tokenmill::kernels
