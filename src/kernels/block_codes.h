// The integers inside a quantized block, unpacked. Decoding (formats_*.cpp) turns them into
// floats and the scalar dot products (dot_scalar.cpp) multiply them with activation codes, so
// both follow one reading of each layout. The unpack() overloads live next to their format's
// quantizer in formats_legacy.cpp, formats_kquants.cpp and formats_iquants.cpp.
#pragma once

#include <cstdint>

#include "kernels/block_layouts.h"

namespace tokenmill::kernels {

// A 32-element block: x[j] = d * q[j] + m, where only Q4_1 and Q5_1 have an m. q is the
// integer the scale multiplies (already centred: Q4_0's code - 8; IQ4_NL's table level).
struct BlockCodes {
  int q[kBlockSize];
  float d;
  float m;  // 0 when !has_min
  bool has_min;
};

// A 256-element super-block of groups: x[e] = (d * scale[g]) * q[e] - dmin * min[g] for the
// group g = e / group that holds e. Formats without mins have min[] = 0 and dmin = 0.
struct SuperBlockCodes {
  int q[kSuperBlockSize];
  int scale[16];
  int min[16];
  int group;  // 16 or 32 elements
  float d;
  float dmin;
};

void unpack(const BlockQ4_0& b, BlockCodes& c);
void unpack(const BlockQ4_1& b, BlockCodes& c);
void unpack(const BlockQ5_0& b, BlockCodes& c);
void unpack(const BlockQ5_1& b, BlockCodes& c);
void unpack(const BlockQ8_0& b, BlockCodes& c);
void unpack(const BlockQ8_1& b, BlockCodes& c);
void unpack(const BlockIQ4_NL& b, BlockCodes& c);
void unpack(const BlockQ2_K& b, SuperBlockCodes& c);
void unpack(const BlockQ3_K& b, SuperBlockCodes& c);
void unpack(const BlockQ4_K& b, SuperBlockCodes& c);
void unpack(const BlockQ5_K& b, SuperBlockCodes& c);
void unpack(const BlockQ6_K& b, SuperBlockCodes& c);
void unpack(const BlockQ8_K& b, SuperBlockCodes& c);
void unpack(const BlockIQ4_XS& b, SuperBlockCodes& c);

// The decoding rules above, with the float operations in the order the format defines them
// (it matters for bit-exact results: (d * scale) * q, then the min term subtracted).
inline void decode(const BlockCodes& c, float* x) {
  for (int j = 0; j < kBlockSize; ++j)
    x[j] = c.has_min ? static_cast<float>(c.q[j]) * c.d + c.m : static_cast<float>(c.q[j]) * c.d;
}
inline void decode(const SuperBlockCodes& c, float* x) {
  for (int g = 0; g < kSuperBlockSize / c.group; ++g) {
    const float step = c.d * static_cast<float>(c.scale[g]), offset = c.dmin * static_cast<float>(c.min[g]);
    for (int e = g * c.group; e < (g + 1) * c.group; ++e) x[e] = step * static_cast<float>(c.q[e]) - offset;
  }
}

// Row decoding for any block type with an unpack() overload.
template <class Block, class Codes>
void decode_blocks(const void* src, float* dst, int64_t n) {
  constexpr int kElements = sizeof(Codes::q) / sizeof(int);
  const auto* blocks = static_cast<const Block*>(src);
  Codes codes;
  for (int64_t i = 0; i < n / kElements; ++i, dst += kElements) {
    unpack(blocks[i], codes);
    decode(codes, dst);
  }
}

}  // namespace tokenmill::kernels
