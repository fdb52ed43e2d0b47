// The non-linear 4-bit formats IQ4_NL (32-element blocks, one half-float scale) and IQ4_XS
// (256-element super-blocks with a 6-bit scale per 32 elements). Both store indices into the
// fixed table kIq4Levels rather than evenly spaced integers.
#include <array>

#include "kernels/block_codes.h"
#include "kernels/format_codecs.h"
#include "kernels/half.h"
#include "kernels/scale_search.h"

namespace tokenmill::kernels {
namespace {

// Nearest-level lookup. Every midpoint between adjacent levels is a multiple of 0.5, so the
// nearest level (the upper one on a tie) depends only on floor(2v): one table entry per value
// of floor(2v) between the end levels.
constexpr int kLowest = kIq4Levels[0], kHighest = kIq4Levels[15];
constexpr int kHalfSteps = 2 * (kHighest - kLowest) + 1;

constexpr std::array<uint8_t, kHalfSteps> make_nearest_table() {
  std::array<uint8_t, kHalfSteps> table{};
  for (int t = 0; t < kHalfSteps; ++t) {
    const int twice_v = t + 2 * kLowest;  // the table entry covers 2v in [twice_v, twice_v + 1)
    int index = 0;
    while (index < 15 && twice_v >= kIq4Levels[index] + kIq4Levels[index + 1]) ++index;
    table[t] = static_cast<uint8_t>(index);
  }
  return table;
}
constexpr auto kNearest = make_nearest_table();

struct Iq4Grid {
  float lowest = kLowest;
  static int index(float v) {
    const float clamped = std::min(static_cast<float>(kHighest), std::max(static_cast<float>(kLowest), v));
    // In double, 2v - 2 * kLowest is exact, so truncation is an exact floor.
    return kNearest[static_cast<int>(2.0 * clamped - 2.0 * kLowest)];
  }
  float level(float v) const { return kIq4Levels[index(v)]; }
};

// The levels reach 127 on the negative side: scan the extreme value onto -127 +- 7.
constexpr ScaleScan kIq4Scan{-7.0f, 2.0f, 8};

// Weighted by x^2, as the K-quants with signed scales are.
float fit_group(const float* x) {
  float w[kBlockSize];
  for (int j = 0; j < kBlockSize; ++j) w[j] = x[j] * x[j];
  return fit_scale(x, w, kBlockSize, Iq4Grid{}, kIq4Scan);
}

// Nibbles in Q4_0 order within each 32 elements.
void encode_group(const float* x, float step, uint8_t* qs) {
  const float inverse = step != 0 ? 1.0f / step : 0.0f;
  for (int j = 0; j < kBlockSize / 2; ++j)
    qs[j] = static_cast<uint8_t>(Iq4Grid::index(x[j] * inverse) | Iq4Grid::index(x[j + 16] * inverse) << 4);
}
void unpack_levels(const uint8_t* qs, int* q) {
  for (int j = 0; j < kBlockSize / 2; ++j) {
    q[j] = kIq4Levels[qs[j] & 15];
    q[j + 16] = kIq4Levels[qs[j] >> 4];
  }
}

constexpr int kXsGroups = kSuperBlockSize / kBlockSize;

}  // namespace

void unpack(const BlockIQ4_NL& b, BlockCodes& c) {
  unpack_levels(b.qs, c.q);
  c.d = f16_to_f32(b.d);
  c.m = 0;
  c.has_min = false;
}

void unpack(const BlockIQ4_XS& b, SuperBlockCodes& c) {
  c.group = kBlockSize;
  c.d = f16_to_f32(b.d);
  c.dmin = 0;
  for (int g = 0; g < kXsGroups; ++g) {
    unpack_levels(b.qs + 16 * g, c.q + kBlockSize * g);
    c.scale[g] = (((b.scales_l[g / 2] >> (4 * (g % 2))) & 15) | ((b.scales_h >> (2 * g)) & 3) << 4) - 32;
    c.min[g] = 0;
  }
}

namespace codecs {

void dequantize_iq4_nl(const void* src, float* dst, int64_t n) { decode_blocks<BlockIQ4_NL, BlockCodes>(src, dst, n); }
void quantize_iq4_nl(const float* src, void* dst, int64_t n) {
  auto* b = static_cast<BlockIQ4_NL*>(dst);
  for (int64_t i = 0; i < n / kBlockSize; ++i, src += kBlockSize) {
    b[i].d = f32_to_f16(fit_group(src));
    encode_group(src, f16_to_f32(b[i].d), b[i].qs);
  }
}

void dequantize_iq4_xs(const void* src, float* dst, int64_t n) { decode_blocks<BlockIQ4_XS, SuperBlockCodes>(src, dst, n); }
void quantize_iq4_xs(const float* src, void* dst, int64_t n) {
  auto* b = static_cast<BlockIQ4_XS*>(dst);
  for (int64_t i = 0; i < n / kSuperBlockSize; ++i, src += kSuperBlockSize) {
    float scales[kXsGroups];
    for (int g = 0; g < kXsGroups; ++g) scales[g] = fit_group(src + kBlockSize * g);
    int8_t q[kXsGroups];
    b[i].d = f32_to_f16(quantize_signed_scales(scales, kXsGroups, -32, 31, q));
    b[i].scales_h = 0;
    b[i].scales_l[0] = b[i].scales_l[1] = b[i].scales_l[2] = b[i].scales_l[3] = 0;
    const float d = f16_to_f32(b[i].d);
    for (int g = 0; g < kXsGroups; ++g) {
      const int stored = q[g] + 32;
      b[i].scales_l[g / 2] |= static_cast<uint8_t>((stored & 15) << (4 * (g % 2)));
      b[i].scales_h |= static_cast<uint16_t>((stored >> 4) << (2 * g));
      encode_group(src + kBlockSize * g, d * static_cast<float>(q[g]), b[i].qs + 16 * g);
    }
  }
}

}  // namespace codecs
}  // namespace tokenmill::kernels
