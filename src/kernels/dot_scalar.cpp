// The reference dot products: float rows element by element; quantized rows unpacked block by
// block (block_codes.h), exact integer sums per group, then one float expression per block.
#include "kernels/block_codes.h"
#include "kernels/dot_tables.h"
#include "kernels/half.h"

namespace tokenmill::kernels {
namespace {

float identity(float x) { return x; }

template <class T, float (*Widen)(T)>
float dot_floats(const void* weight_row, const void* activation_row, int64_t n) {
  const auto* w = static_cast<const T*>(weight_row);
  const auto* a = static_cast<const float*>(activation_row);
  float sum = 0;
  for (int64_t i = 0; i < n; ++i) sum += Widen(w[i]) * a[i];
  return sum;
}

// 32-element blocks against Q8_0: d_w d_a sum(q a) + m d_a sum(a).
template <class Block>
float dot_blocks(const void* weight_row, const void* activation_row, int64_t n) {
  const auto* w = static_cast<const Block*>(weight_row);
  const auto* a = static_cast<const BlockQ8_0*>(activation_row);
  BlockCodes c;
  float sum = 0;
  for (int64_t i = 0; i < n / kBlockSize; ++i) {
    unpack(w[i], c);
    int sum_qa = 0, sum_a = 0;
    for (int j = 0; j < kBlockSize; ++j) {
      sum_qa += c.q[j] * a[i].qs[j];
      sum_a += a[i].qs[j];
    }
    const float da = f16_to_f32(a[i].d);
    sum += c.d * da * static_cast<float>(sum_qa);
    if (c.has_min) sum += c.m * da * static_cast<float>(sum_a);
  }
  return sum;
}

// Super-blocks against Q8_K: d_a (d sum_g scale_g sum(q a) - dmin sum_g min_g sum(a)).
template <class Block>
float dot_super_blocks(const void* weight_row, const void* activation_row, int64_t n) {
  const auto* w = static_cast<const Block*>(weight_row);
  const auto* a = static_cast<const BlockQ8_K*>(activation_row);
  SuperBlockCodes c;
  float sum = 0;
  for (int64_t i = 0; i < n / kSuperBlockSize; ++i) {
    unpack(w[i], c);
    int sum_q = 0, sum_min = 0;
    for (int g = 0; g < kSuperBlockSize / c.group; ++g) {
      int sum_qa = 0, sum_a = 0;
      for (int e = g * c.group; e < (g + 1) * c.group; ++e) {
        sum_qa += c.q[e] * a[i].qs[e];
        sum_a += a[i].qs[e];
      }
      sum_q += c.scale[g] * sum_qa;
      sum_min += c.min[g] * sum_a;
    }
    sum += a[i].d * (c.d * static_cast<float>(sum_q) - c.dmin * static_cast<float>(sum_min));
  }
  return sum;
}

}  // namespace

constinit const DotTable scalar_dot_table = {
    dot_floats<float, identity>,    dot_floats<uint16_t, f16_to_f32>, dot_floats<uint16_t, bf16_to_f32>,
    dot_blocks<BlockQ4_0>,          dot_blocks<BlockQ4_1>,          dot_blocks<BlockQ5_0>,
    dot_blocks<BlockQ5_1>,          dot_blocks<BlockQ8_0>,          dot_blocks<BlockIQ4_NL>,
    dot_super_blocks<BlockQ2_K>,    dot_super_blocks<BlockQ3_K>,    dot_super_blocks<BlockQ4_K>,
    dot_super_blocks<BlockQ5_K>,    dot_super_blocks<BlockQ6_K>,    dot_super_blocks<BlockIQ4_XS>,
};

}  // namespace tokenmill::kernels
