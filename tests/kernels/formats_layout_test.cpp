// Decoding of hand-built blocks. Each test writes blocks byte by byte from the GGUF format
// specification (raw offsets, not the library's structs) with seeded random codes, works out
// every element's value itself and asks for exact equality. A second test compares digests of
// llama.cpp's decoding of seeded random blocks, so the layouts agree with the reference
// implementation, not just with this file's reading of the specification.
#include <gtest/gtest.h>

#include <cstring>

#include "common/error.h"
#include "format_test_util.h"

namespace tokenmill::kernels {
namespace {

using gguf::TensorType;

constexpr uint16_t kHalfOne = 0x3C00, kHalfHalf = 0x3800, kHalfQuarter = 0x3400,
                   kHalfMinusOne = 0xBC00, kHalfTwo = 0x4000, kHalfEighth = 0x3000,
                   kHalfMinusHalf = 0xB800;

// Values of those half-precision bit patterns.
float half_value(uint16_t h) {
  switch (h) {
    case kHalfOne: return 1.0f;
    case kHalfHalf: return 0.5f;
    case kHalfQuarter: return 0.25f;
    case kHalfMinusOne: return -1.0f;
    case kHalfTwo: return 2.0f;
    case kHalfEighth: return 0.125f;
    case kHalfMinusHalf: return -0.5f;
  }
  ADD_FAILURE() << "no value for half " << h;
  return 0;
}

// The non-linear 4-bit levels, as the specification lists them.
constexpr int kLevels[16] = {-127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113};

struct Bytes {
  std::vector<uint8_t> data;
  explicit Bytes(size_t size) : data(size, 0) {}
  void u16(size_t at, uint16_t v) {
    data[at] = v & 255;
    data[at + 1] = v >> 8;
  }
  void or_bits(size_t at, int shift, int value) { data[at] |= static_cast<uint8_t>(value << shift); }
};

std::vector<int> random_codes(int n, int count, uint64_t seed) {
  Rng rng(seed);
  std::vector<int> c(n);
  for (auto& v : c) v = static_cast<int>(rng.next_u64() % count);
  return c;
}

void expect_decodes_to(TensorType type, const Bytes& b, const std::vector<float>& expected) {
  std::vector<float> got(expected.size());
  dequantize_row(type, b.data.data(), got.data(), static_cast<int64_t>(got.size()));
  for (size_t e = 0; e < expected.size(); ++e)
    ASSERT_EQ(got[e], expected[e]) << gguf::tensor_type_name(type) << " element " << e;
}

TEST(BlockLayout, FloatFormats) {
  Bytes f16(10);
  const uint16_t halves[5] = {0x3C00, 0xC000, 0x7BFF, 0x0001, 0x8000};
  for (int i = 0; i < 5; ++i) f16.u16(2 * i, halves[i]);
  expect_decodes_to(TensorType::F16, f16, {1.0f, -2.0f, 65504.0f, std::ldexp(1.0f, -24), -0.0f});

  Bytes bf16(6);
  bf16.u16(0, 0x3F80);
  bf16.u16(2, 0xC0A0);
  bf16.u16(4, 0x4049);
  expect_decodes_to(TensorType::BF16, bf16, {1.0f, -5.0f, 3.140625f});

  // Rounding to nearest: 1/3 is 0x3555 in half precision, 0x3EAB in bfloat16.
  const std::vector<float> third = {1.0f / 3};
  EXPECT_EQ(testing::quantize(TensorType::F16, third), (std::vector<uint8_t>{0x55, 0x35}));
  EXPECT_EQ(testing::quantize(TensorType::BF16, third), (std::vector<uint8_t>{0xAB, 0x3E}));
  const std::vector<float> values = {1.5f, -0.0f, 1e30f};
  EXPECT_EQ(testing::dequantize(TensorType::F32, testing::quantize(TensorType::F32, values), 3), values);
}

// Legacy blocks of 32: element j < 16 in the low nibble of byte j of qs, j + 16 in the high.
TEST(BlockLayout, Q4_0AndQ4_1) {
  const auto c = random_codes(64, 16, 1);
  Bytes q40(36), q41(40);
  std::vector<float> want40(64), want41(64);
  const uint16_t d[2] = {kHalfHalf, kHalfMinusOne}, m[2] = {kHalfMinusOne, kHalfQuarter};
  for (int blk = 0; blk < 2; ++blk) {
    q40.u16(18 * blk, d[blk]);
    q41.u16(20 * blk, d[blk]);
    q41.u16(20 * blk + 2, m[blk]);
    for (int j = 0; j < 32; ++j) {
      const int code = c[32 * blk + j];
      q40.or_bits(18 * blk + 2 + j % 16, 4 * (j / 16), code);
      q41.or_bits(20 * blk + 4 + j % 16, 4 * (j / 16), code);
      want40[32 * blk + j] = static_cast<float>(code - 8) * half_value(d[blk]);
      want41[32 * blk + j] = static_cast<float>(code) * half_value(d[blk]) + half_value(m[blk]);
    }
  }
  expect_decodes_to(TensorType::Q4_0, q40, want40);
  expect_decodes_to(TensorType::Q4_1, q41, want41);
}

// The fifth bit of element j is bit j of the little-endian 32-bit qh.
TEST(BlockLayout, Q5_0AndQ5_1) {
  const auto c = random_codes(64, 32, 2);
  Bytes q50(44), q51(48);
  std::vector<float> want50(64), want51(64);
  const uint16_t d[2] = {kHalfTwo, kHalfEighth}, m[2] = {kHalfMinusHalf, kHalfOne};
  for (int blk = 0; blk < 2; ++blk) {
    q50.u16(22 * blk, d[blk]);
    q51.u16(24 * blk, d[blk]);
    q51.u16(24 * blk + 2, m[blk]);
    for (int j = 0; j < 32; ++j) {
      const int code = c[32 * blk + j];
      q50.or_bits(22 * blk + 2 + j / 8, j % 8, code >> 4);
      q50.or_bits(22 * blk + 6 + j % 16, 4 * (j / 16), code & 15);
      q51.or_bits(24 * blk + 4 + j / 8, j % 8, code >> 4);
      q51.or_bits(24 * blk + 8 + j % 16, 4 * (j / 16), code & 15);
      want50[32 * blk + j] = static_cast<float>(code - 16) * half_value(d[blk]);
      want51[32 * blk + j] = static_cast<float>(code) * half_value(d[blk]) + half_value(m[blk]);
    }
  }
  expect_decodes_to(TensorType::Q5_0, q50, want50);
  expect_decodes_to(TensorType::Q5_1, q51, want51);
}

TEST(BlockLayout, Q8_0AndQ8_1) {
  const auto c = random_codes(64, 256, 3);
  Bytes q80(68), q81(72);
  std::vector<float> want(64);
  const uint16_t d[2] = {kHalfEighth, kHalfMinusHalf};
  for (int blk = 0; blk < 2; ++blk) {
    q80.u16(34 * blk, d[blk]);
    q81.u16(36 * blk, d[blk]);
    q81.u16(36 * blk + 2, kHalfTwo);  // the sum field plays no part in decoding
    for (int j = 0; j < 32; ++j) {
      const int value = c[32 * blk + j] - 128;
      q80.data[34 * blk + 2 + j] = static_cast<uint8_t>(value);
      q81.data[36 * blk + 4 + j] = static_cast<uint8_t>(value);
      want[32 * blk + j] = static_cast<float>(value) * half_value(d[blk]);
    }
  }
  expect_decodes_to(TensorType::Q8_0, q80, want);
  expect_decodes_to(TensorType::Q8_1, q81, want);
}

// K-quant 2-bit planes: element e at bits 2 * ((e % 128) / 32) of byte (e / 128) * 32 + e % 32.
TEST(BlockLayout, Q2_K) {
  const auto c = random_codes(512, 4, 4);
  const auto scales = random_codes(32, 256, 5);
  Bytes b(168);
  std::vector<float> want(512);
  for (int blk = 0; blk < 2; ++blk) {
    const size_t base = 84 * blk;
    const uint16_t d = blk ? kHalfHalf : kHalfOne, dmin = blk ? kHalfTwo : kHalfQuarter;
    b.u16(base + 80, d);
    b.u16(base + 82, dmin);
    for (int g = 0; g < 16; ++g) b.data[base + g] = static_cast<uint8_t>(scales[16 * blk + g]);
    for (int e = 0; e < 256; ++e) {
      const int code = c[256 * blk + e], sc = scales[16 * blk + e / 16];
      b.or_bits(base + 16 + (e / 128) * 32 + e % 32, 2 * ((e % 128) / 32), code);
      want[256 * blk + e] = half_value(d) * static_cast<float>(sc & 15) * static_cast<float>(code) -
                            half_value(dmin) * static_cast<float>(sc >> 4);
    }
  }
  expect_decodes_to(TensorType::Q2_K, b, want);
}

// Q3_K: 2-bit planes plus a high-bit mask (bit e / 32 of hmask[e % 32]); value = code - 4.
// Scale s (6 bits, stored + 32): low nibble s / 8 of byte s % 8, top bits 2 * (s / 4) of
// byte 8 + s % 4.
TEST(BlockLayout, Q3_K) {
  const auto c = random_codes(512, 8, 6);
  const auto scales = random_codes(32, 64, 7);
  Bytes b(220);
  std::vector<float> want(512);
  for (int blk = 0; blk < 2; ++blk) {
    const size_t base = 110 * blk;
    const uint16_t d = blk ? kHalfMinusHalf : kHalfQuarter;
    b.u16(base + 108, d);
    for (int s = 0; s < 16; ++s) {
      const int sc = scales[16 * blk + s];
      b.or_bits(base + 96 + s % 8, 4 * (s / 8), sc & 15);
      b.or_bits(base + 96 + 8 + s % 4, 2 * (s / 4), sc >> 4);
    }
    for (int e = 0; e < 256; ++e) {
      const int code = c[256 * blk + e];
      b.or_bits(base + 32 + (e / 128) * 32 + e % 32, 2 * ((e % 128) / 32), code & 3);
      b.or_bits(base + e % 32, e / 32, code >> 2);
      want[256 * blk + e] = half_value(d) * static_cast<float>(scales[16 * blk + e / 16] - 32) *
                            static_cast<float>(code - 4);
    }
  }
  expect_decodes_to(TensorType::Q3_K, b, want);
}

// Q4_K / Q5_K: 6-bit scale and min per 32 elements in 12 bytes (groups 0-3 in the low 6 bits
// of bytes g and g + 4; groups 4-7 in the nibbles of byte g + 4 with top bits in bits 6-7 of
// bytes g - 4 and g). Nibble (e % 64) / 32 of qs byte (e / 64) * 32 + e % 32; Q5_K's fifth
// bit is bit e / 32 of qh[e % 32].
void write_scale_min(Bytes& b, size_t at, int g, int scale, int min) {
  if (g < 4) {
    b.or_bits(at + g, 0, scale);
    b.or_bits(at + g + 4, 0, min);
  } else {
    b.or_bits(at + g + 4, 0, scale & 15);
    b.or_bits(at + g + 4, 4, min & 15);
    b.or_bits(at + g - 4, 6, scale >> 4);
    b.or_bits(at + g, 6, min >> 4);
  }
}

TEST(BlockLayout, Q4_KAndQ5_K) {
  const auto c = random_codes(512, 32, 8);
  const auto sm = random_codes(32, 64, 9);
  Bytes q4(288), q5(352);
  std::vector<float> want4(512), want5(512);
  for (int blk = 0; blk < 2; ++blk) {
    const size_t b4 = 144 * blk, b5 = 176 * blk;
    const uint16_t d = blk ? kHalfTwo : kHalfEighth, dmin = blk ? kHalfHalf : kHalfOne;
    q4.u16(b4, d);
    q4.u16(b4 + 2, dmin);
    q5.u16(b5, d);
    q5.u16(b5 + 2, dmin);
    for (int g = 0; g < 8; ++g) {
      write_scale_min(q4, b4 + 4, g, sm[16 * blk + g], sm[16 * blk + 8 + g]);
      write_scale_min(q5, b5 + 4, g, sm[16 * blk + g], sm[16 * blk + 8 + g]);
    }
    for (int e = 0; e < 256; ++e) {
      const int code = c[256 * blk + e], g = e / 32;
      const float step = half_value(d) * static_cast<float>(sm[16 * blk + g]);
      const float offset = half_value(dmin) * static_cast<float>(sm[16 * blk + 8 + g]);
      q4.or_bits(b4 + 16 + (e / 64) * 32 + e % 32, 4 * ((e % 64) / 32), code & 15);
      q5.or_bits(b5 + 48 + (e / 64) * 32 + e % 32, 4 * ((e % 64) / 32), code & 15);
      q5.or_bits(b5 + 16 + e % 32, e / 32, code >> 4);
      want4[256 * blk + e] = step * static_cast<float>(code & 15) - offset;
      want5[256 * blk + e] = step * static_cast<float>(code) - offset;
    }
  }
  expect_decodes_to(TensorType::Q4_K, q4, want4);
  expect_decodes_to(TensorType::Q5_K, q5, want5);
}

// Q6_K: in each half h of 128, element 32k + l takes nibble k / 2 of ql[64h + 32(k % 2) + l]
// and bits 2k of qh[32h + l] on top; value = code - 32, signed 8-bit scale per 16 elements.
TEST(BlockLayout, Q6_K) {
  const auto c = random_codes(512, 64, 10);
  const auto scales = random_codes(32, 256, 11);
  Bytes b(420);
  std::vector<float> want(512);
  for (int blk = 0; blk < 2; ++blk) {
    const size_t base = 210 * blk;
    const uint16_t d = blk ? kHalfMinusOne : kHalfEighth;
    b.u16(base + 208, d);
    for (int g = 0; g < 16; ++g) b.data[base + 192 + g] = static_cast<uint8_t>(scales[16 * blk + g] - 128);
    for (int e = 0; e < 256; ++e) {
      const int code = c[256 * blk + e], h = e / 128, k = (e % 128) / 32, l = e % 32;
      b.or_bits(base + 64 * h + 32 * (k % 2) + l, 4 * (k / 2), code & 15);
      b.or_bits(base + 128 + 32 * h + l, 2 * k, code >> 4);
      want[256 * blk + e] = half_value(d) * static_cast<float>(scales[16 * blk + e / 16] - 128) *
                            static_cast<float>(code - 32);
    }
  }
  expect_decodes_to(TensorType::Q6_K, b, want);
}

TEST(BlockLayout, Q8_K) {
  const auto c = random_codes(512, 256, 12);
  Bytes b(584);
  std::vector<float> want(512);
  const float d[2] = {0.375f, -3.0f};
  for (int blk = 0; blk < 2; ++blk) {
    std::memcpy(&b.data[292 * blk], &d[blk], 4);  // a little-endian float
    for (int e = 0; e < 256; ++e) {
      b.data[292 * blk + 4 + e] = static_cast<uint8_t>(c[256 * blk + e] - 128);
      want[256 * blk + e] = d[blk] * static_cast<float>(c[256 * blk + e] - 128);
    }
  }
  expect_decodes_to(TensorType::Q8_K, b, want);
}

// IQ4_NL: Q4_0's nibble order, values from the level table. IQ4_XS: 6-bit scales (stored + 32)
// with low nibble s % 2 of scales_l[s / 2] and top bits 2s of the 16-bit scales_h.
TEST(BlockLayout, IQ4_NLAndIQ4_XS) {
  const auto c = random_codes(512, 16, 13);
  const auto scales = random_codes(16, 64, 14);
  Bytes nl(288), xs(272);
  std::vector<float> want_nl(512), want_xs(512);
  for (int blk = 0; blk < 16; ++blk) {
    const uint16_t d = blk % 2 ? kHalfQuarter : kHalfMinusHalf;
    nl.u16(18 * blk, d);
    for (int j = 0; j < 32; ++j) {
      const int code = c[32 * blk + j];
      nl.or_bits(18 * blk + 2 + j % 16, 4 * (j / 16), code);
      want_nl[32 * blk + j] = half_value(d) * static_cast<float>(kLevels[code]);
    }
  }
  for (int blk = 0; blk < 2; ++blk) {
    const size_t base = 136 * blk;
    const uint16_t d = blk ? kHalfTwo : kHalfEighth;
    xs.u16(base, d);
    for (int s = 0; s < 8; ++s) {
      const int sc = scales[8 * blk + s];
      xs.or_bits(base + 4 + s / 2, 4 * (s % 2), sc & 15);
      xs.or_bits(base + 2 + (2 * s) / 8, (2 * s) % 8, sc >> 4);
    }
    for (int e = 0; e < 256; ++e) {
      const int code = c[256 * blk + e], s = e / 32, j = e % 32;
      xs.or_bits(base + 8 + 16 * s + j % 16, 4 * (j / 16), code);
      want_xs[256 * blk + e] = half_value(d) * static_cast<float>(scales[8 * blk + s] - 32) *
                               static_cast<float>(kLevels[code]);
    }
  }
  expect_decodes_to(TensorType::IQ4_NL, nl, want_nl);
  expect_decodes_to(TensorType::IQ4_XS, xs, want_xs);
}

// Digests of llama.cpp's decoding (its to-float conversions, node-llama-cpp 3.22.1's tree) of
// 1024 elements of random bytes per format, with the top exponent bit of every scale cleared
// so all scales are finite.
TEST(BlockLayout, DecodesLikeTheReferenceImplementation) {
  struct Case {
    TensorType type;
    uint64_t digest;
  };
  const Case cases[] = {
      {TensorType::F16, 0x2abef12eaa82ea66ull},    {TensorType::BF16, 0x51ae9569c48614dbull},
      {TensorType::Q4_0, 0x43f8af02e3d5c6c6ull},   {TensorType::Q4_1, 0x2ed5aa0fecdb8ca8ull},
      {TensorType::Q5_0, 0xee6d520a0be00e5eull},   {TensorType::Q5_1, 0xa88877383e74418eull},
      {TensorType::Q8_0, 0x6a86181f28c03102ull},   {TensorType::Q2_K, 0x5e9a8b064068a67dull},
      {TensorType::Q3_K, 0x1cc63262c91bf04eull},   {TensorType::Q4_K, 0x3810ae5eead6b3deull},
      {TensorType::Q5_K, 0x7de80619763a341bull},   {TensorType::Q6_K, 0xbc8b6f4162258ffeull},
      {TensorType::Q8_K, 0xa0e8bed022682ed7ull},   {TensorType::IQ4_NL, 0xaf6c939da6bf7e03ull},
      {TensorType::IQ4_XS, 0x4c53f32d901fbf8full},
  };
  // Byte offsets of each block's half-float scales.
  auto half_offsets = [](TensorType t) -> std::vector<int> {
    switch (t) {
      case TensorType::Q4_1: case TensorType::Q5_1: case TensorType::Q4_K: case TensorType::Q5_K:
        return {0, 2};
      case TensorType::Q2_K: return {80, 82};
      case TensorType::Q3_K: return {108};
      case TensorType::Q6_K: return {208};
      case TensorType::Q8_K: return {2};  // the high half of its float
      default: return {0};                // F16/BF16 elements, Q4_0, Q5_0, Q8_0, IQ4
    }
  };
  for (const auto& c : cases) {
    const auto& info = gguf::tensor_type_info(c.type);
    const int64_t n = 1024;
    Rng rng(2024);
    std::vector<uint8_t> bytes(gguf::row_bytes(c.type, n));
    for (auto& b : bytes) b = static_cast<uint8_t>(rng.next_u64());
    for (size_t block = 0; block < bytes.size(); block += info.block_bytes)
      for (int at : half_offsets(c.type)) bytes[block + at + 1] &= 0xBF;
    const auto x = testing::dequantize(c.type, bytes, n);
    EXPECT_EQ(testing::fnv1a(x.data(), x.size() * sizeof(float)), c.digest) << info.name;
  }
}

}  // namespace
}  // namespace tokenmill::kernels
