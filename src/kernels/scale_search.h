// The searches the weight quantizers share: for a group of values, find the scale (and for
// the formats with an offset, the offset) that minimise the weighted squared error once each
// value is rounded to the format's grid. The quantizers then round these to the block's stored
// precision and quantize every value against the stored scale, which is what decoders see.
//
// Sums run in kLanes fixed partial sums added in a fixed order, so the compiler can keep them
// in vector registers without reassociating: results are the same bytes on every machine.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>

namespace tokenmill::kernels {

inline constexpr int kLanes = 4;  // one SSE register; group sizes are multiples of this
inline constexpr int kMaxCandidates = 32;  // scans longer than this are cut short

inline float add_lanes(const float (&lanes)[kLanes]) { return (lanes[0] + lanes[1]) + (lanes[2] + lanes[3]); }

// Round to nearest, ties to even, for |v| < 2^22: adding 1.5 * 2^23 pushes the fraction out of
// the mantissa. Stays in float so that loops using it vectorise.
inline float round_even(float v) {
  constexpr float kShift = 12582912.0f;
  return (v + kShift) - kShift;
}

// The integer nearest to v within [lo, hi]. NaN gives lo, so corrupt input never reaches an
// out-of-range conversion.
inline float clamp_round(float v, float lo, float hi) {
  return round_even(std::min(hi, std::max(lo, v)));
}

// Round to nearest, ties away from zero (the C library's roundf), for |v| < 2^22; NaN gives -127
// and the result is clamped to +-127: the rounding of the 8-bit activation formats.
inline float round_to_int8(float v) {
  const float clamped = std::min(127.0f, std::max(-127.0f, v));
  const float even = round_even(clamped);
  // Only an exact tie can round differently; v +- 0.5 is then an exact integer.
  return std::fabs(clamped - even) == 0.5f ? clamped + std::copysign(0.5f, clamped) : even;
}

// Candidate stretches: the group's extreme value is mapped to the grid's end plus each of
// first, first + step, ..., count values in all. Trying a few slightly longer and shorter
// grids than the plain max/extreme fit finds a smaller total error for most groups.
struct ScaleScan {
  float first;
  float step;
  int count;
};

// Integer levels lowest..highest (lowest = -highest - 1 for the two's-complement-like grids).
struct UniformGrid {
  float lowest, highest;
  float level(float v) const { return clamp_round(v, lowest, highest); }
};

// Best signed scale s for x ~= s * level(x / s) under weights w, over the candidates that map the
// largest-magnitude value to grid.lowest + offset. Zero for an all-(nearly-)zero group.
template <class Grid>
float fit_scale(const float* x, const float* w, int n, const Grid& grid, ScaleScan scan) {
  float extreme = 0, magnitude = 0;
  for (int i = 0; i < n; ++i) {
    if (std::fabs(x[i]) > magnitude) {
      magnitude = std::fabs(x[i]);
      extreme = x[i];
    }
  }
  if (magnitude < 1e-15f) return 0.0f;
  // Pass 1: each candidate's rounding, reduced to the sums its least-squares scale needs.
  // Candidates are independent, so their loops overlap in the CPU.
  float sums_xq[kMaxCandidates], sums_qq[kMaxCandidates];
  const int count = std::min(scan.count, kMaxCandidates);
  for (int k = 0; k < count; ++k) {
    const float inverse = (grid.lowest + scan.first + scan.step * k) / extreme;
    float sxq[kLanes] = {}, sqq[kLanes] = {};
    for (int i = 0; i < n; i += kLanes) {
      for (int j = 0; j < kLanes; ++j) {
        const float q = grid.level(inverse * x[i + j]);
        const float wq = w[i + j] * q;
        sxq[j] += wq * x[i + j];
        sqq[j] += wq * q;
      }
    }
    sums_xq[k] = add_lanes(sxq);
    sums_qq[k] = add_lanes(sqq);
  }
  // Pass 2: with the least-squares scale sxq / sqq the error is sum(w x^2) - sxq^2 / sqq, so
  // the best candidate maximises that fraction.
  // Compared as cross products: no division per candidate.
  int best = -1;
  for (int k = 0; k < count; ++k) {
    if (sums_qq[k] > 0 &&
        (best < 0 || sums_xq[k] * sums_xq[k] * sums_qq[best] > sums_xq[best] * sums_xq[best] * sums_qq[k]))
      best = k;
  }
  return best < 0 ? 0.0f : sums_xq[best] / sums_qq[best];
}

// x ~= scale * q + offset with q in 0..top.
struct AffineFit {
  float scale = 0;
  float offset = 0;
};

// Best scale and offset under weights w, over candidates that map the value range onto
// top + offset steps; each candidate's rounding is refitted by weighted least squares. The
// K-quants store the offset as a non-negative "min" to subtract, so for them
// allow_positive_offset is false and the fitted offset is capped at zero.
AffineFit fit_affine(const float* x, const float* w, int n, int top, ScaleScan scan,
                     bool allow_positive_offset);

// Rounds non-negative values v[0..n) to integers 0..top times one shared step; returns the
// step (0 when every value is 0).
float quantize_unsigned_scales(const float* v, int n, int top, uint8_t* q);

// Rounds signed values to integers lowest..highest times one shared step, the value of largest
// magnitude landing on lowest (the grid's longer side); returns the step, which takes that
// value's opposite sign.
float quantize_signed_scales(const float* v, int n, int lowest, int highest, int8_t* q);

}  // namespace tokenmill::kernels
