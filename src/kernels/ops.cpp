// Choosing the op table for an ISA, and top-k.
#include "kernels/ops.h"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <string>

#include "common/error.h"
#include "kernels/op_tables.h"

namespace tokenmill::kernels {

const OpTable& op_table(Isa isa) {
  if (!isa_supported(isa, cpu_features())) {
    throw Error("kernel path " + std::string(isa_name(isa)) + " is not supported by this CPU");
  }
  switch (isa) {
    case Isa::scalar:
      return scalar_op_table;
    case Isa::avx2:
      return avx2_op_table;
    case Isa::avx512:
      return avx512_op_table;
  }
  throw Error("unknown kernel path");
}

const OpTable& ops() {
  static const OpTable& table = op_table(active_isa());
  return table;
}

void top_k(const float* x, int64_t n, int64_t k, int32_t* indices) {
  if (k <= 0 || k > n) {
    throw Error("top_k: k = " + std::to_string(k) + " must be in 1.." + std::to_string(n));
  }
  // Larger first, NaN after every number, ties by index: a strict order, so sorting is valid.
  auto before = [x](int32_t a, int32_t b) {
    const bool a_nan = std::isnan(x[a]), b_nan = std::isnan(x[b]);
    if (a_nan != b_nan) return b_nan;
    if (!a_nan && x[a] != x[b]) return x[a] > x[b];
    return a < b;
  };
  std::vector<int32_t> order(n);
  std::iota(order.begin(), order.end(), 0);
  std::partial_sort(order.begin(), order.begin() + k, order.end(), before);
  std::copy_n(order.begin(), k, indices);
}

}  // namespace tokenmill::kernels
