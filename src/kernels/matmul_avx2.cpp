// The AVX2 matmul kernels: matmul_simd.h over 8-lane vectors. Compiled with AVX2 flags.
#include "kernels/matmul_simd.h"
#include "kernels/simd_avx2.h"

namespace tokenmill::kernels {

constinit const MatmulKernels avx2_matmul_kernels = simd::make_matmul_kernels<simd::Avx2>();

}  // namespace tokenmill::kernels
