// The byte layout of one block of each quantized format, as the GGUF format defines it. Scales
// are IEEE half floats stored as raw bits (see half.h) except Q8_K's, which is a float. The
// comments give each format's decoding rule; element e counts from the start of the block.
// Shared by the scalar codecs (formats_*.cpp) and the dot-product kernels.
#pragma once

#include <cstdint>
#include <cstring>

namespace tokenmill::kernels {

inline constexpr int kBlockSize = 32;        // legacy formats and IQ4_NL
inline constexpr int kSuperBlockSize = 256;  // K-quants, IQ4_XS and Q8_K

// 4-bit and 5-bit legacy blocks: element e < 16 sits in the low nibble of qs[e], element
// e + 16 in the high nibble. The 5-bit formats keep the fifth bit of element e in bit e of qh
// (read as a little-endian 32-bit word).
struct BlockQ4_0 {  // x = d * (q - 8)
  uint16_t d;
  uint8_t qs[16];
};
struct BlockQ4_1 {  // x = d * q + m
  uint16_t d, m;
  uint8_t qs[16];
};
struct BlockQ5_0 {  // x = d * (q - 16)
  uint16_t d;
  uint8_t qh[4];
  uint8_t qs[16];
};
struct BlockQ5_1 {  // x = d * q + m
  uint16_t d, m;
  uint8_t qh[4];
  uint8_t qs[16];
};
struct BlockQ8_0 {  // x = d * q
  uint16_t d;
  int8_t qs[32];
};
struct BlockQ8_1 {  // x = d * q; s = d * sum(q), precomputed for dot products with offsets
  uint16_t d, s;
  int8_t qs[32];
};

// 2-bit planes (Q2_K, Q3_K low bits): element e is bits 2*((e % 128) / 32) of
// qs[(e / 128) * 32 + e % 32]. Sub-blocks are 16 elements: sub-block e / 16.
struct BlockQ2_K {  // x = d * (scales[s] & 15) * q - dmin * (scales[s] >> 4)
  uint8_t scales[16];
  uint8_t qs[64];
  uint16_t d, dmin;
};
// Third bit of element e: bit (e / 32) of hmask[e % 32]; q = low2 + 4 * bit - 4.
// The 16 six-bit signed scales (stored + 32): low 4 bits of scale s are nibble (s / 8) of
// scales[s % 8]; high 2 bits are bits 2 * (s / 4) of scales[8 + s % 4].
struct BlockQ3_K {  // x = d * (scale[s] - 32) * q
  uint8_t hmask[32];
  uint8_t qs[64];
  uint8_t scales[12];
  uint16_t d;
};
// Eight 32-element sub-blocks with 6-bit scale and min each, packed in 12 bytes (see
// unpack_scale_min in formats_kquants.cpp). Nibbles: element e is nibble ((e % 64) / 32) of
// qs[(e / 64) * 32 + e % 32]. Q5_K adds bit (e / 32) of qh[e % 32] as the fifth bit.
struct BlockQ4_K {  // x = d * scale[s] * q - dmin * min[s], s = e / 32
  uint16_t d, dmin;
  uint8_t scales[12];
  uint8_t qs[128];
};
struct BlockQ5_K {
  uint16_t d, dmin;
  uint8_t scales[12];
  uint8_t qh[32];
  uint8_t qs[128];
};
// 6-bit values in two halves of 128: within half h, element 32 * k + l (k < 4, l < 32) takes
// nibble (k / 2) of ql[64 * h + 32 * (k % 2) + l] and bits 2 * k of qh[32 * h + l] as its
// top two bits. Sixteen 16-element sub-blocks with signed 8-bit scales.
struct BlockQ6_K {  // x = d * scales[e / 16] * (q - 32)
  uint8_t ql[128];
  uint8_t qh[64];
  int8_t scales[16];
  uint16_t d;
};
// The activation format the K-quant dot products use; bsums[g] = sum of qs[16g .. 16g + 15].
struct BlockQ8_K {  // x = d * q
  float d;
  int8_t qs[256];
  int16_t bsums[16];
};

// Non-linear 4-bit: the nibble indexes a fixed table of 16 levels (kIq4Levels), same nibble
// order as Q4_0 within each 32 elements.
struct BlockIQ4_NL {  // x = d * level[q]
  uint16_t d;
  uint8_t qs[16];
};
// Eight 32-element sub-blocks with 6-bit scales (stored + 32): low 4 bits are nibble (s % 2)
// of scales_l[s / 2], high 2 bits are bits 2 * s of scales_h.
struct BlockIQ4_XS {  // x = d * (scale[s] - 32) * level[q]
  uint16_t d;
  uint16_t scales_h;
  uint8_t scales_l[4];
  uint8_t qs[128];
};

static_assert(sizeof(BlockQ4_0) == 18 && sizeof(BlockQ4_1) == 20 && sizeof(BlockQ5_0) == 22 &&
              sizeof(BlockQ5_1) == 24 && sizeof(BlockQ8_0) == 34 && sizeof(BlockQ8_1) == 36);
static_assert(sizeof(BlockQ2_K) == 84 && sizeof(BlockQ3_K) == 110 && sizeof(BlockQ4_K) == 144 &&
              sizeof(BlockQ5_K) == 176 && sizeof(BlockQ6_K) == 210 && sizeof(BlockQ8_K) == 292);
static_assert(sizeof(BlockIQ4_NL) == 18 && sizeof(BlockIQ4_XS) == 136);

// Q4_K / Q5_K's eight 6-bit scales and mins, each as the bytes of a 64-bit word in group
// order: groups 0-3 in the low 6 bits of bytes g (scale) and g + 4 (min), groups 4-7 in the
// nibbles of byte g + 4 with their top bits in bits 6-7 of bytes g - 4 (scale) and g (min).
// Static, so that the ISA-flagged files that use it each keep their own copy (see
// kernels/CMakeLists.txt).
struct ScalesMins {
  uint64_t scales, mins;
};
static inline ScalesMins q45_k_scales(const uint8_t* p) {
  uint32_t w[3];
  std::memcpy(w, p, 12);
  const uint32_t six = 0x3F3F3F3F, low = 0x0F0F0F0F, top = 0x03030303;
  const uint64_t scales_hi = (w[2] & low) | (w[0] >> 6 & top) << 4;
  const uint64_t mins_hi = (w[2] >> 4 & low) | (w[1] >> 6 & top) << 4;
  return {(w[0] & six) | scales_hi << 32, (w[1] & six) | mins_hi << 32};
}

// The IQ4 levels: denser near zero, where most weights are.
inline constexpr int8_t kIq4Levels[16] = {-127, -104, -83, -65, -49, -35, -22, -10,
                                          1,    13,   25,  38,  53,  69,  89,  113};

}  // namespace tokenmill::kernels
