// The AVX-512 dot products: dot_simd.h with the byte products of VNNI's vpdpbusd, on 256-bit
// vectors (AVX-512 VL): the rows are read once per call, so wider registers would mainly add
// shuffles for the per-group scales.
#include "kernels/dot_simd.h"

namespace tokenmill::kernels {
namespace {

struct Vnni {
  static __m256i dot4(__m256i acc, __m256i u, __m256i s) { return _mm256_dpbusd_epi32(acc, u, s); }
};

}  // namespace

constinit const DotTable avx512_dot_table = dot_simd::make_dot_table<Vnni>();

}  // namespace tokenmill::kernels
