// The per-ISA op tables behind op_table(): scalar in ops_scalar.cpp, the vector ones in
// ops_avx2.cpp and ops_avx512.cpp. Internal to kernels/.
#pragma once

#include "kernels/attention.h"
#include "kernels/ops.h"

namespace tokenmill::kernels {

extern const OpTable scalar_op_table;
extern const OpTable avx2_op_table;
extern const OpTable avx512_op_table;

// The reference attention tile (attention.cpp): one key at a time, libm exp.
void attention_tile_scalar(const AttentionTile& tile);

}  // namespace tokenmill::kernels
