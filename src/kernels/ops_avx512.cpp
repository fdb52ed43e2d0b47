// The AVX-512 op table: ops_simd.h over 16-lane vectors. Compiled with AVX-512 flags.
#include "kernels/op_tables.h"
#include "kernels/ops_simd.h"
#include "kernels/simd_avx512.h"

namespace tokenmill::kernels {

constinit const OpTable avx512_op_table = simd::make_op_table<simd::Avx512>();

}  // namespace tokenmill::kernels
