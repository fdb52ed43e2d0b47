// The K-quant formats: 256-element super-blocks split into 16- or 32-element groups, each
// group with its own scale (and for Q2_K, Q4_K, Q5_K a min) stored in a few bits relative to
// the super-block's half-float d (and dmin). Q8_K is the activation format their dot products
// take; it is rounded exactly as the format's reference quantizer does.
//
// Every format here decodes the same way once its bit fields are unpacked into integer codes,
// group scales and mins (SuperBlockCodes in block_codes.h).
#include <cstring>
#include <type_traits>

#include "kernels/block_codes.h"
#include "kernels/format_codecs.h"
#include "kernels/half.h"
#include "kernels/scale_search.h"

namespace tokenmill::kernels {
namespace {

constexpr int kN = kSuperBlockSize;

// ---- Bit fields. Each layout maps an element (or group) index to a byte and a bit shift.

struct Slot {
  int byte;
  int shift;
};

// 2 bits: Q2_K and Q3_K codes, Q6_K's top bits.
Slot two_bit_slot(int e) { return {(e / 128) * 32 + e % 32, 2 * ((e % 128) / 32)}; }
// 1 bit: Q3_K's and Q5_K's top bit.
Slot one_bit_slot(int e) { return {e % 32, e / 32}; }
// 4 bits: Q4_K and Q5_K low bits.
Slot nibble_slot(int e) { return {(e / 64) * 32 + e % 32, 4 * ((e % 64) / 32)}; }
// 4 bits: Q6_K low bits, which pair element e with e + 64 rather than e + 32.
Slot q6_nibble_slot(int e) {
  const int r = e % 128;
  return {64 * (e / 128) + 32 * ((r / 32) % 2) + e % 32, 4 * (r / 64)};
}

// q[e] |= field(e) << at for every element.
template <int Bits>
void unpack_field(const uint8_t* bytes, Slot (*where)(int), int at, int* q) {
  for (int e = 0; e < kN; ++e) {
    const Slot s = where(e);
    q[e] |= ((bytes[s.byte] >> s.shift) & ((1 << Bits) - 1)) << at;
  }
}
// The inverse: stores bits at .. at + Bits - 1 of each code; size bytes are overwritten.
template <int Bits>
void pack_field(const int* q, Slot (*where)(int), int at, uint8_t* bytes, int size) {
  std::memset(bytes, 0, size);
  for (int e = 0; e < kN; ++e) {
    const Slot s = where(e);
    bytes[s.byte] |= static_cast<uint8_t>(((q[e] >> at) & ((1 << Bits) - 1)) << s.shift);
  }
}

// Q4_K / Q5_K: 6-bit scale and min of group g (of 8) in 12 bytes. Groups 0-3 keep both in the
// low 6 bits of bytes g and g + 4; groups 4-7 keep their low 4 bits in the nibbles of byte
// g + 4 and their top 2 bits in the spare top bits of bytes g - 4 (scale) and g (min).
void unpack_scale_min(const uint8_t* p, int g, int& scale, int& min) {
  if (g < 4) {
    scale = p[g] & 63;
    min = p[g + 4] & 63;
  } else {
    scale = (p[g + 4] & 15) | (p[g - 4] >> 6) << 4;
    min = (p[g + 4] >> 4) | (p[g] >> 6) << 4;
  }
}
void pack_scale_min(const uint8_t* scale, const uint8_t* min, uint8_t* p) {
  for (int g = 0; g < 4; ++g) {
    p[g] = static_cast<uint8_t>(scale[g] | (scale[g + 4] >> 4) << 6);
    p[g + 4] = static_cast<uint8_t>(min[g] | (min[g + 4] >> 4) << 6);
    p[g + 8] = static_cast<uint8_t>((scale[g + 4] & 15) | (min[g + 4] & 15) << 4);
  }
}

// Q3_K: 16 six-bit scales (stored + 32) in 12 bytes: low 4 bits in nibble g / 8 of byte g % 8,
// top 2 bits at bits 2 * (g / 4) of byte 8 + g % 4.
int unpack_q3_scale(const uint8_t* p, int g) {
  return ((p[g % 8] >> (4 * (g / 8))) & 15) | ((p[8 + g % 4] >> (2 * (g / 4))) & 3) << 4;
}
void pack_q3_scales(const int8_t* scale, uint8_t* p) {
  std::memset(p, 0, 12);
  for (int g = 0; g < 16; ++g) {
    const int stored = scale[g] + 32;
    p[g % 8] |= static_cast<uint8_t>((stored & 15) << (4 * (g / 8)));
    p[8 + g % 4] |= static_cast<uint8_t>((stored >> 4) << (2 * (g / 4)));
  }
}

// Codes start at zero, so the unpack() overloads below can OR their bit fields in.
void clear(SuperBlockCodes& c, int group, float d, float dmin) {
  for (int& v : c.q) v = 0;
  for (int& v : c.min) v = 0;
  c.group = group;
  c.d = d;
  c.dmin = dmin;
}
void centre(SuperBlockCodes& c, int bias) {
  for (int& v : c.q) v -= bias;
}

// ---- Quantizing weights.

// Formats with a min per group: x ~= d * scale[g] * q - dmin * min[g], q in 0..code_top.
struct AffineFormat {
  int group;
  int code_top;
  int scale_top;  // the group scales and mins have this many steps of d and dmin
  ScaleScan scan;
};

struct AffineBlock {
  uint16_t d, dmin;
  uint8_t scale[16], min[16];
  int q[kN];
};

// Groups are weighted towards their larger values (w = rms + |x|): errors there cost more in
// a matrix product than errors on values near zero.
AffineBlock encode_affine(const float* x, const AffineFormat& f) {
  const int groups = kN / f.group;
  float scales[16], mins[16], w[32];
  for (int g = 0; g < groups; ++g) {
    const float* xg = x + g * f.group;
    float sum_x2 = 0;
    for (int i = 0; i < f.group; ++i) sum_x2 += xg[i] * xg[i];
    const float rms = std::sqrt(sum_x2 / f.group);
    for (int i = 0; i < f.group; ++i) w[i] = rms + std::fabs(xg[i]);
    const AffineFit fit = fit_affine(xg, w, f.group, f.code_top, f.scan, false);
    scales[g] = fit.scale;
    mins[g] = -fit.offset;
  }
  AffineBlock b;
  b.d = f32_to_f16(quantize_unsigned_scales(scales, groups, f.scale_top, b.scale));
  b.dmin = f32_to_f16(quantize_unsigned_scales(mins, groups, f.scale_top, b.min));
  // Requantize against the scales as stored.
  const float d = f16_to_f32(b.d), dmin = f16_to_f32(b.dmin);
  for (int g = 0; g < groups; ++g) {
    const float step = d * b.scale[g], offset = dmin * b.min[g];
    const float inverse = step != 0 ? 1.0f / step : 0.0f;
    for (int i = g * f.group; i < (g + 1) * f.group; ++i)
      b.q[i] = static_cast<int>(clamp_round((x[i] + offset) * inverse, 0.0f, static_cast<float>(f.code_top)));
  }
  return b;
}

// Formats with signed group scales: x ~= d * scale[g] * q over 16-element groups.
struct SymmetricFormat {
  UniformGrid grid;
  int scale_lowest, scale_highest;
  ScaleScan scan;
};

struct SymmetricBlock {
  uint16_t d;
  int8_t scale[16];
  int q[kN];  // signed, grid.lowest .. grid.highest
};

// Weighted by x^2: the largest values of a group dominate both its error and its products.
SymmetricBlock encode_symmetric(const float* x, const SymmetricFormat& f) {
  constexpr int kGroup = 16;
  float scales[kN / kGroup], w[kGroup];
  for (int g = 0; g < kN / kGroup; ++g) {
    const float* xg = x + g * kGroup;
    for (int i = 0; i < kGroup; ++i) w[i] = xg[i] * xg[i];
    scales[g] = fit_scale(xg, w, kGroup, f.grid, f.scan);
  }
  SymmetricBlock b;
  b.d = f32_to_f16(quantize_signed_scales(scales, kN / kGroup, f.scale_lowest, f.scale_highest, b.scale));
  const float d = f16_to_f32(b.d);
  for (int g = 0; g < kN / kGroup; ++g) {
    const float step = d * b.scale[g];
    const float inverse = step != 0 ? 1.0f / step : 0.0f;
    for (int i = g * kGroup; i < (g + 1) * kGroup; ++i) b.q[i] = static_cast<int>(f.grid.level(x[i] * inverse));
  }
  return b;
}

// The scans step 0.2-0.3 grid steps: half as fine as the reference quantizer's costs under
// 0.2% in RMSE and doubles the speed (docs/kernels-formats.md).
constexpr AffineFormat kQ2K{16, 3, 15, {-0.6f, 0.2f, 7}};
constexpr AffineFormat kQ4K{32, 15, 63, {-1.0f, 0.2f, 11}};
constexpr AffineFormat kQ5K{32, 31, 63, {-0.6f, 0.2f, 7}};
constexpr SymmetricFormat kQ3K{{-4, 3}, -32, 31, {-0.9f, 0.3f, 7}};
constexpr SymmetricFormat kQ6K{{-32, 31}, -128, 127, {-0.9f, 0.3f, 7}};

// Q4_K and Q5_K differ only in Q5_K's fifth bit.
template <class Block>
void unpack_q45_k(const Block& b, SuperBlockCodes& c) {
  clear(c, 32, f16_to_f32(b.d), f16_to_f32(b.dmin));
  unpack_field<4>(b.qs, nibble_slot, 0, c.q);
  if constexpr (std::is_same_v<Block, BlockQ5_K>) unpack_field<1>(b.qh, one_bit_slot, 4, c.q);
  for (int g = 0; g < 8; ++g) unpack_scale_min(b.scales, g, c.scale[g], c.min[g]);
}

template <class Block>
void quantize_q45_k(const float* src, void* dst, int64_t n) {
  constexpr bool kFiveBits = std::is_same_v<Block, BlockQ5_K>;
  auto* b = static_cast<Block*>(dst);
  for (int64_t i = 0; i < n / kN; ++i, src += kN) {
    const AffineBlock a = encode_affine(src, kFiveBits ? kQ5K : kQ4K);
    b[i].d = a.d;
    b[i].dmin = a.dmin;
    pack_scale_min(a.scale, a.min, b[i].scales);
    pack_field<4>(a.q, nibble_slot, 0, b[i].qs, sizeof(b[i].qs));
    if constexpr (kFiveBits) pack_field<1>(a.q, one_bit_slot, 4, b[i].qh, sizeof(b[i].qh));
  }
}

}  // namespace

void unpack(const BlockQ2_K& b, SuperBlockCodes& c) {
  clear(c, 16, f16_to_f32(b.d), f16_to_f32(b.dmin));
  unpack_field<2>(b.qs, two_bit_slot, 0, c.q);
  for (int g = 0; g < 16; ++g) {
    c.scale[g] = b.scales[g] & 15;
    c.min[g] = b.scales[g] >> 4;
  }
}

void unpack(const BlockQ3_K& b, SuperBlockCodes& c) {
  clear(c, 16, f16_to_f32(b.d), 0.0f);
  unpack_field<2>(b.qs, two_bit_slot, 0, c.q);
  unpack_field<1>(b.hmask, one_bit_slot, 2, c.q);
  centre(c, 4);
  for (int g = 0; g < 16; ++g) c.scale[g] = unpack_q3_scale(b.scales, g) - 32;
}

void unpack(const BlockQ4_K& b, SuperBlockCodes& c) { unpack_q45_k(b, c); }
void unpack(const BlockQ5_K& b, SuperBlockCodes& c) { unpack_q45_k(b, c); }

void unpack(const BlockQ6_K& b, SuperBlockCodes& c) {
  clear(c, 16, f16_to_f32(b.d), 0.0f);
  unpack_field<4>(b.ql, q6_nibble_slot, 0, c.q);
  unpack_field<2>(b.qh, two_bit_slot, 4, c.q);
  centre(c, 32);
  for (int g = 0; g < 16; ++g) c.scale[g] = b.scales[g];
}

void unpack(const BlockQ8_K& b, SuperBlockCodes& c) {
  clear(c, 16, b.d, 0.0f);
  for (int e = 0; e < kN; ++e) c.q[e] = b.qs[e];
  for (int& v : c.scale) v = 1;
}

namespace codecs {

void dequantize_q2_k(const void* src, float* dst, int64_t n) { decode_blocks<BlockQ2_K, SuperBlockCodes>(src, dst, n); }
void quantize_q2_k(const float* src, void* dst, int64_t n) {
  auto* b = static_cast<BlockQ2_K*>(dst);
  for (int64_t i = 0; i < n / kN; ++i, src += kN) {
    const AffineBlock a = encode_affine(src, kQ2K);
    b[i].d = a.d;
    b[i].dmin = a.dmin;
    for (int g = 0; g < 16; ++g) b[i].scales[g] = static_cast<uint8_t>(a.scale[g] | a.min[g] << 4);
    pack_field<2>(a.q, two_bit_slot, 0, b[i].qs, sizeof(b[i].qs));
  }
}

void dequantize_q3_k(const void* src, float* dst, int64_t n) { decode_blocks<BlockQ3_K, SuperBlockCodes>(src, dst, n); }
void quantize_q3_k(const float* src, void* dst, int64_t n) {
  auto* b = static_cast<BlockQ3_K*>(dst);
  for (int64_t i = 0; i < n / kN; ++i, src += kN) {
    SymmetricBlock s = encode_symmetric(src, kQ3K);
    for (int& v : s.q) v += 4;
    b[i].d = s.d;
    pack_q3_scales(s.scale, b[i].scales);
    pack_field<2>(s.q, two_bit_slot, 0, b[i].qs, sizeof(b[i].qs));
    pack_field<1>(s.q, one_bit_slot, 2, b[i].hmask, sizeof(b[i].hmask));
  }
}

void dequantize_q4_k(const void* src, float* dst, int64_t n) { decode_blocks<BlockQ4_K, SuperBlockCodes>(src, dst, n); }
void quantize_q4_k(const float* src, void* dst, int64_t n) { quantize_q45_k<BlockQ4_K>(src, dst, n); }
void dequantize_q5_k(const void* src, float* dst, int64_t n) { decode_blocks<BlockQ5_K, SuperBlockCodes>(src, dst, n); }
void quantize_q5_k(const float* src, void* dst, int64_t n) { quantize_q45_k<BlockQ5_K>(src, dst, n); }

void dequantize_q6_k(const void* src, float* dst, int64_t n) { decode_blocks<BlockQ6_K, SuperBlockCodes>(src, dst, n); }
void quantize_q6_k(const float* src, void* dst, int64_t n) {
  auto* b = static_cast<BlockQ6_K*>(dst);
  for (int64_t i = 0; i < n / kN; ++i, src += kN) {
    SymmetricBlock s = encode_symmetric(src, kQ6K);
    for (int& v : s.q) v += 32;
    b[i].d = s.d;
    std::memcpy(b[i].scales, s.scale, sizeof(b[i].scales));
    pack_field<4>(s.q, q6_nibble_slot, 0, b[i].ql, sizeof(b[i].ql));
    pack_field<2>(s.q, two_bit_slot, 4, b[i].qh, sizeof(b[i].qh));
  }
}

void dequantize_q8_k(const void* src, float* dst, int64_t n) { decode_blocks<BlockQ8_K, SuperBlockCodes>(src, dst, n); }

// d = -extreme / 127 where extreme is the (first) value of largest magnitude, so that value
// becomes exactly -127; q = round(x / d), ties to even.
void quantize_q8_k(const float* src, void* dst, int64_t n) {
  auto* b = static_cast<BlockQ8_K*>(dst);
  for (int64_t i = 0; i < n / kN; ++i, src += kN) {
    float extreme = 0, magnitude = 0;
    for (int e = 0; e < kN; ++e) {
      if (std::fabs(src[e]) > magnitude) {
        magnitude = std::fabs(src[e]);
        extreme = src[e];
      }
    }
    const float inverse = magnitude != 0 ? -127.0f / extreme : 0.0f;
    for (int e = 0; e < kN; ++e) b[i].qs[e] = static_cast<int8_t>(clamp_round(inverse * src[e], -128.0f, 127.0f));
    for (int g = 0; g < 16; ++g) {
      int sum = 0;
      for (int e = 16 * g; e < 16 * (g + 1); ++e) sum += b[i].qs[e];
      b[i].bsums[g] = static_cast<int16_t>(sum);
    }
    b[i].d = magnitude != 0 ? 1.0f / inverse : 0.0f;
  }
}

}  // namespace codecs
}  // namespace tokenmill::kernels
