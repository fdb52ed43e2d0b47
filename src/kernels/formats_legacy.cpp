// The legacy 32-element block formats: Q4_0, Q4_1, Q5_0, Q5_1 (weights) and Q8_0, Q8_1
// (activations, and Q8_0 weights). Weight blocks get an unweighted least-squares scale search;
// the 8-bit formats round exactly as the format's reference quantizer does, since dot products
// and tests against other implementations rely on those bytes.
#include <cstring>

#include "kernels/block_codes.h"
#include "kernels/format_codecs.h"
#include "kernels/half.h"
#include "kernels/scale_search.h"

namespace tokenmill::kernels {
namespace {

constexpr int kHalf = kBlockSize / 2;

// 4-bit codes: element j < 16 in the low nibble of qs[j], j + 16 in the high nibble.
void unpack_nibbles(const uint8_t* qs, int* q) {
  for (int j = 0; j < kHalf; ++j) {
    q[j] = qs[j] & 15;
    q[j + kHalf] = qs[j] >> 4;
  }
}
// The fifth bit of element j is bit j of qh, read as a little-endian 32-bit word.
void add_fifth_bits(const uint8_t* qh, int* q) {
  uint32_t bits;
  std::memcpy(&bits, qh, 4);
  for (int j = 0; j < kBlockSize; ++j) q[j] |= ((bits >> j) & 1) << 4;
}
void pack_nibbles(const int* q, uint8_t* qs) {
  for (int j = 0; j < kHalf; ++j) qs[j] = static_cast<uint8_t>((q[j] & 15) | (q[j + kHalf] & 15) << 4);
}
void pack_fifth_bits(const int* q, uint8_t* qh) {
  uint32_t bits = 0;
  for (int j = 0; j < kBlockSize; ++j) bits |= static_cast<uint32_t>((q[j] >> 4) & 1) << j;
  std::memcpy(qh, &bits, 4);
}

void centre(int* q, int bias) {
  for (int j = 0; j < kBlockSize; ++j) q[j] -= bias;
}

// The scan the legacy weight formats use: the extreme value mapped anywhere from 0.9 steps
// short of the grid's end to 0.9 steps past it.
constexpr ScaleScan kLegacyScan{-0.9f, 0.3f, 7};
constexpr float kUnitWeights[kBlockSize] = {1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
                                            1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1};

// Symmetric weights: codes 0..2^bits - 1 standing for q - 2^(bits-1). Returns the stored d.
uint16_t encode_symmetric(const float* x, int bits, int* q) {
  const float half_range = static_cast<float>(1 << (bits - 1));
  const UniformGrid grid{-half_range, half_range - 1};
  const uint16_t d = f32_to_f16(fit_scale(x, kUnitWeights, kBlockSize, grid, kLegacyScan));
  const float stored = f16_to_f32(d);
  const float inverse = stored != 0 ? 1.0f / stored : 0.0f;
  for (int j = 0; j < kBlockSize; ++j)
    q[j] = static_cast<int>(grid.level(x[j] * inverse) + half_range);
  return d;
}

// Scale and offset weights: codes 0..2^bits - 1. Writes the stored d and m.
void encode_affine(const float* x, int bits, int* q, uint16_t& d, uint16_t& m) {
  const int top = (1 << bits) - 1;
  const AffineFit fit = fit_affine(x, kUnitWeights, kBlockSize, top, kLegacyScan, true);
  d = f32_to_f16(fit.scale);
  m = f32_to_f16(fit.offset);
  const float scale = f16_to_f32(d), offset = f16_to_f32(m);
  const float inverse = scale != 0 ? 1.0f / scale : 0.0f;
  for (int j = 0; j < kBlockSize; ++j)
    q[j] = static_cast<int>(clamp_round((x[j] - offset) * inverse, 0.0f, static_cast<float>(top)));
}

// The 8-bit rounding: d = max|x| / 127, q = round(x / d) with ties away from zero. Returns d
// before it is stored as a half (Q8_1's sum uses that value).
float encode_int8(const float* x, int8_t* q) {
  float amax = 0;
  for (int j = 0; j < kBlockSize; ++j) amax = std::max(amax, std::fabs(x[j]));
  const float d = amax / 127;
  const float inverse = d != 0 ? 1.0f / d : 0.0f;
  for (int j = 0; j < kBlockSize; ++j) q[j] = static_cast<int8_t>(round_to_int8(x[j] * inverse));
  return d;
}

// Q4_0, Q4_1, Q5_0 and Q5_1 differ in two ways: a fifth bit (qh) and a min (m).
template <class Block>
constexpr bool kHasFifthBit = requires(Block b) { b.qh; };
template <class Block>
constexpr bool kHasMin = requires(Block b) { b.m; };

template <class Block>
void unpack_4_or_5_bits(const Block& b, BlockCodes& c) {
  unpack_nibbles(b.qs, c.q);
  if constexpr (kHasFifthBit<Block>) add_fifth_bits(b.qh, c.q);
  c.d = f16_to_f32(b.d);
  c.has_min = kHasMin<Block>;
  if constexpr (kHasMin<Block>) {
    c.m = f16_to_f32(b.m);
  } else {
    c.m = 0;
    centre(c.q, kHasFifthBit<Block> ? 16 : 8);
  }
}

template <class Block>
void quantize_4_or_5_bits(const float* src, void* dst, int64_t n) {
  constexpr int kBits = kHasFifthBit<Block> ? 5 : 4;
  auto* b = static_cast<Block*>(dst);
  int q[kBlockSize];
  for (int64_t i = 0; i < n / kBlockSize; ++i, src += kBlockSize) {
    if constexpr (kHasMin<Block>)
      encode_affine(src, kBits, q, b[i].d, b[i].m);
    else
      b[i].d = encode_symmetric(src, kBits, q);
    pack_nibbles(q, b[i].qs);
    if constexpr (kHasFifthBit<Block>) pack_fifth_bits(q, b[i].qh);
  }
}

template <class Block>
void unpack_8_bits(const Block& b, BlockCodes& c) {
  for (int j = 0; j < kBlockSize; ++j) c.q[j] = b.qs[j];
  c.d = f16_to_f32(b.d);
  c.m = 0;
  c.has_min = false;
}

}  // namespace

void unpack(const BlockQ4_0& b, BlockCodes& c) { unpack_4_or_5_bits(b, c); }
void unpack(const BlockQ4_1& b, BlockCodes& c) { unpack_4_or_5_bits(b, c); }
void unpack(const BlockQ5_0& b, BlockCodes& c) { unpack_4_or_5_bits(b, c); }
void unpack(const BlockQ5_1& b, BlockCodes& c) { unpack_4_or_5_bits(b, c); }
void unpack(const BlockQ8_0& b, BlockCodes& c) { unpack_8_bits(b, c); }
void unpack(const BlockQ8_1& b, BlockCodes& c) { unpack_8_bits(b, c); }

namespace codecs {

void dequantize_q4_0(const void* src, float* dst, int64_t n) { decode_blocks<BlockQ4_0, BlockCodes>(src, dst, n); }
void quantize_q4_0(const float* src, void* dst, int64_t n) { quantize_4_or_5_bits<BlockQ4_0>(src, dst, n); }
void dequantize_q4_1(const void* src, float* dst, int64_t n) { decode_blocks<BlockQ4_1, BlockCodes>(src, dst, n); }
void quantize_q4_1(const float* src, void* dst, int64_t n) { quantize_4_or_5_bits<BlockQ4_1>(src, dst, n); }
void dequantize_q5_0(const void* src, float* dst, int64_t n) { decode_blocks<BlockQ5_0, BlockCodes>(src, dst, n); }
void quantize_q5_0(const float* src, void* dst, int64_t n) { quantize_4_or_5_bits<BlockQ5_0>(src, dst, n); }
void dequantize_q5_1(const void* src, float* dst, int64_t n) { decode_blocks<BlockQ5_1, BlockCodes>(src, dst, n); }
void quantize_q5_1(const float* src, void* dst, int64_t n) { quantize_4_or_5_bits<BlockQ5_1>(src, dst, n); }

void dequantize_q8_0(const void* src, float* dst, int64_t n) { decode_blocks<BlockQ8_0, BlockCodes>(src, dst, n); }
void quantize_q8_0(const float* src, void* dst, int64_t n) {
  auto* b = static_cast<BlockQ8_0*>(dst);
  for (int64_t i = 0; i < n / kBlockSize; ++i, src += kBlockSize) b[i].d = f32_to_f16(encode_int8(src, b[i].qs));
}

void dequantize_q8_1(const void* src, float* dst, int64_t n) { decode_blocks<BlockQ8_1, BlockCodes>(src, dst, n); }
void quantize_q8_1(const float* src, void* dst, int64_t n) {
  auto* b = static_cast<BlockQ8_1*>(dst);
  for (int64_t i = 0; i < n / kBlockSize; ++i, src += kBlockSize) {
    const float d = encode_int8(src, b[i].qs);
    int sum = 0;
    for (int j = 0; j < kBlockSize; ++j) sum += b[i].qs[j];
    b[i].d = f32_to_f16(d);
    b[i].s = f32_to_f16(static_cast<float>(sum) * d);
  }
}

}  // namespace codecs
}  // namespace tokenmill::kernels
