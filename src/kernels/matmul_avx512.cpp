// The AVX-512 matmul kernels: matmul_simd.h over 16-lane vectors and the VNNI tiles of
// matmul_vnni.h. Compiled with AVX-512 flags.
#include "kernels/matmul_simd.h"
#include "kernels/matmul_vnni.h"
#include "kernels/simd_avx512.h"

namespace tokenmill::kernels {

constinit const MatmulKernels avx512_matmul_kernels = simd::make_matmul_kernels<simd::Avx512>(vnni::make_quant_tiles());

}  // namespace tokenmill::kernels
