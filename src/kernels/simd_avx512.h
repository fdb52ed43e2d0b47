// 16-lane f32 vectors on AVX-512 F/BW/VL/DQ, in the shape ops_simd.h's templates expect.
// Include only from *_avx512.cpp files (they are compiled with those ISA flags).
#pragma once

// GCC 12's AVX-512 headers warn about their own _mm512_undefined_* values (GCC bug 105593).
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include <immintrin.h>
#pragma GCC diagnostic pop

#include <cstdint>

namespace tokenmill::kernels::simd {

struct Avx512 {
  using F = __m512;
  static constexpr int64_t kLanes = 16;

  static F zero() { return _mm512_setzero_ps(); }
  static F set1(float v) { return _mm512_set1_ps(v); }
  static F load(const float* p) { return _mm512_loadu_ps(p); }
  static void store(float* p, F v) { _mm512_storeu_ps(p, v); }

  // The first n lanes (0 < n < kLanes) of p; the others read nothing and are `fill`.
  static F load_tail(const float* p, int64_t n, F fill = zero()) {
    return _mm512_mask_loadu_ps(fill, tail_mask(n), p);
  }
  static void store_tail(float* p, F v, int64_t n) { _mm512_mask_storeu_ps(p, tail_mask(n), v); }
  // v with lanes n and up set to 0.
  static F first_lanes(F v, int64_t n) { return _mm512_maskz_mov_ps(tail_mask(n), v); }

  static F load_f16(const uint16_t* p) {
    return _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)));
  }
  static F load_f16_tail(const uint16_t* p, int64_t n) {
    return _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(tail_mask(n), p));
  }
  static float f16_to_f32(uint16_t h) { return _cvtsh_ss(h); }
  // kLanes int8 values as f32.
  static F load_i8(const int8_t* p) {
    const __m128i bytes = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p));
    return _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(bytes));
  }

  static F add(F a, F b) { return _mm512_add_ps(a, b); }
  static F sub(F a, F b) { return _mm512_sub_ps(a, b); }
  static F mul(F a, F b) { return _mm512_mul_ps(a, b); }
  static F div(F a, F b) { return _mm512_div_ps(a, b); }
  static F max(F a, F b) { return _mm512_max_ps(a, b); }
  static F min(F a, F b) { return _mm512_min_ps(a, b); }
  static F fmadd(F a, F b, F c) { return _mm512_fmadd_ps(a, b, c); }    // a*b + c
  static F fnmadd(F a, F b, F c) { return _mm512_fnmadd_ps(a, b, c); }  // c - a*b
  static F abs(F a) { return _mm512_andnot_ps(_mm512_set1_ps(-0.0f), a); }
  static F sign_bits(F a) { return _mm512_and_ps(_mm512_set1_ps(-0.0f), a); }
  static F xor_bits(F a, F b) { return _mm512_xor_ps(a, b); }
  static F round(F a) {
    return _mm512_roundscale_ps(a, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  }
  // 2^n for whole numbers n in [-126, 127].
  static F pow2(F n) {
    const __m512i e = _mm512_add_epi32(_mm512_cvtps_epi32(n), _mm512_set1_epi32(127));
    return _mm512_castsi512_ps(_mm512_slli_epi32(e, 23));
  }
  // v where x >= limit, 0 elsewhere (and where x is NaN).
  static F zero_below(F v, F x, F limit) {
    return _mm512_maskz_mov_ps(_mm512_cmp_ps_mask(x, limit, _CMP_GE_OQ), v);
  }
  // Swaps lanes 0<->1, 2<->3, ...
  static F swap_pairs(F a) { return _mm512_permute_ps(a, 0xb1); }

  static float reduce_add(F v) { return _mm512_reduce_add_ps(v); }
  static float reduce_max(F v) { return _mm512_reduce_max_ps(v); }
  static float first(F v) { return _mm512_cvtss_f32(v); }

 private:
  static __mmask16 tail_mask(int64_t n) { return static_cast<__mmask16>((1u << n) - 1u); }
};

}  // namespace tokenmill::kernels::simd
