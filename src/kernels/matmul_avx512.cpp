// The AVX-512 matmul kernels: matmul_simd.h over 16-lane vectors. Compiled with AVX-512 flags.
#include "kernels/matmul_simd.h"
#include "kernels/simd_avx512.h"

namespace tokenmill::kernels {

constinit const MatmulKernels avx512_matmul_kernels = simd::make_matmul_kernels<simd::Avx512>();

}  // namespace tokenmill::kernels
