// The AVX2 dot products: dot_simd.h with the byte products built from maddubs and madd.
#include "kernels/dot_simd.h"

namespace tokenmill::kernels {
namespace {

struct Avx2 {
  static __m256i dot4(__m256i acc, __m256i u, __m256i s) {
    return _mm256_add_epi32(acc, _mm256_madd_epi16(_mm256_maddubs_epi16(u, s), _mm256_set1_epi16(1)));
  }
};

}  // namespace

constinit const DotTable avx2_dot_table = dot_simd::make_dot_table<Avx2>();

}  // namespace tokenmill::kernels
