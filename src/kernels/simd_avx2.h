// 8-lane f32 vectors on AVX2 + FMA + F16C, in the shape ops_simd.h's templates expect.
// Include only from *_avx2.cpp files (they are compiled with those ISA flags).
#pragma once

#include <immintrin.h>

#include <cstdint>

namespace tokenmill::kernels::simd {

struct Avx2 {
  using F = __m256;
  static constexpr int64_t kLanes = 8;

  static F zero() { return _mm256_setzero_ps(); }
  static F set1(float v) { return _mm256_set1_ps(v); }
  static F load(const float* p) { return _mm256_loadu_ps(p); }
  static void store(float* p, F v) { _mm256_storeu_ps(p, v); }

  // The first n lanes (0 < n < kLanes) of p; the others read nothing and are `fill`.
  static F load_tail(const float* p, int64_t n, F fill = zero()) {
    const __m256i m = tail_mask(n);
    return _mm256_blendv_ps(fill, _mm256_maskload_ps(p, m), _mm256_castsi256_ps(m));
  }
  static void store_tail(float* p, F v, int64_t n) { _mm256_maskstore_ps(p, tail_mask(n), v); }
  // v with lanes n and up set to 0.
  static F first_lanes(F v, int64_t n) { return _mm256_and_ps(v, _mm256_castsi256_ps(tail_mask(n))); }

  static F load_f16(const uint16_t* p) {
    return _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
  }
  static F load_f16_tail(const uint16_t* p, int64_t n) {
    alignas(16) uint16_t buf[8] = {};
    for (int64_t i = 0; i < n; ++i) buf[i] = p[i];
    return _mm256_cvtph_ps(_mm_load_si128(reinterpret_cast<const __m128i*>(buf)));
  }
  static float f16_to_f32(uint16_t h) { return _cvtsh_ss(h); }
  // kLanes int8 values as f32.
  static F load_i8(const int8_t* p) {
    const __m128i bytes = _mm_loadl_epi64(reinterpret_cast<const __m128i*>(p));
    return _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(bytes));
  }

  static F add(F a, F b) { return _mm256_add_ps(a, b); }
  static F sub(F a, F b) { return _mm256_sub_ps(a, b); }
  static F mul(F a, F b) { return _mm256_mul_ps(a, b); }
  static F div(F a, F b) { return _mm256_div_ps(a, b); }
  static F max(F a, F b) { return _mm256_max_ps(a, b); }
  static F min(F a, F b) { return _mm256_min_ps(a, b); }
  static F fmadd(F a, F b, F c) { return _mm256_fmadd_ps(a, b, c); }    // a*b + c
  static F fnmadd(F a, F b, F c) { return _mm256_fnmadd_ps(a, b, c); }  // c - a*b
  static F abs(F a) { return _mm256_andnot_ps(_mm256_set1_ps(-0.0f), a); }
  static F sign_bits(F a) { return _mm256_and_ps(_mm256_set1_ps(-0.0f), a); }
  static F xor_bits(F a, F b) { return _mm256_xor_ps(a, b); }
  static F round(F a) { return _mm256_round_ps(a, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC); }
  // 2^n for whole numbers n in [-126, 127].
  static F pow2(F n) {
    const __m256i e = _mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127));
    return _mm256_castsi256_ps(_mm256_slli_epi32(e, 23));
  }
  // v where x >= limit, 0 elsewhere (and where x is NaN).
  static F zero_below(F v, F x, F limit) {
    return _mm256_and_ps(v, _mm256_cmp_ps(x, limit, _CMP_GE_OQ));
  }
  // Swaps lanes 0<->1, 2<->3, ...
  static F swap_pairs(F a) { return _mm256_permute_ps(a, 0xb1); }

  static float reduce_add(F v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
  }
  static float reduce_max(F v) {
    __m128 s = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_max_ps(s, _mm_movehl_ps(s, s));
    s = _mm_max_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
  }
  static float first(F v) { return _mm256_cvtss_f32(v); }

 private:
  static __m256i tail_mask(int64_t n) {
    return _mm256_cmpgt_epi32(_mm256_set1_epi32(static_cast<int>(n)),
                              _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
  }
};

}  // namespace tokenmill::kernels::simd
