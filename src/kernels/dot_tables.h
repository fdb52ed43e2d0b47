// The per-ISA dot tables behind dot_table(): scalar in dot_scalar.cpp, the vector ones in
// dot_avx2.cpp and dot_avx512.cpp. Internal to kernels/.
#pragma once

#include "kernels/dot.h"

namespace tokenmill::kernels {

extern const DotTable scalar_dot_table;
extern const DotTable avx2_dot_table;
extern const DotTable avx512_dot_table;

}  // namespace tokenmill::kernels
