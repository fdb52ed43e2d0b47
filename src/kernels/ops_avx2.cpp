// The AVX2 op table: ops_simd.h over 8-lane vectors. Compiled with AVX2/FMA/F16C flags.
#include "kernels/op_tables.h"
#include "kernels/ops_simd.h"
#include "kernels/simd_avx2.h"

namespace tokenmill::kernels {

constinit const OpTable avx2_op_table = simd::make_op_table<simd::Avx2>();

}  // namespace tokenmill::kernels
