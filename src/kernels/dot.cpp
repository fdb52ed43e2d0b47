#include "kernels/dot.h"

#include <string>

#include "common/error.h"
#include "kernels/dot_tables.h"

namespace tokenmill::kernels {

using gguf::TensorType;

namespace {

[[noreturn]] void no_dot_product(TensorType weight) {
  const auto info = gguf::tensor_type_info(static_cast<uint32_t>(weight));
  throw Error("no dot product for weights of type " +
              (info ? std::string(info->name) : "id " + std::to_string(static_cast<uint32_t>(weight))));
}

}  // namespace

TensorType dot_activation_type(TensorType weight) {
  switch (weight) {
    case TensorType::F32: case TensorType::F16: case TensorType::BF16:
      return TensorType::F32;
    case TensorType::Q4_0: case TensorType::Q4_1: case TensorType::Q5_0: case TensorType::Q5_1:
    case TensorType::Q8_0: case TensorType::IQ4_NL:
      return TensorType::Q8_0;
    case TensorType::Q2_K: case TensorType::Q3_K: case TensorType::Q4_K: case TensorType::Q5_K:
    case TensorType::Q6_K: case TensorType::IQ4_XS:
      return TensorType::Q8_K;
    default:
      no_dot_product(weight);
  }
}

const DotTable& dot_table(Isa isa) {
  if (!isa_supported(isa, cpu_features()))
    throw Error("kernel path " + std::string(isa_name(isa)) + " is not supported by this CPU");
  switch (isa) {
    case Isa::scalar: return scalar_dot_table;
    case Isa::avx2: return avx2_dot_table;
    case Isa::avx512: return avx512_dot_table;
  }
  throw Error("unknown kernel path");
}

const DotTable& dots() {
  static const DotTable& table = dot_table(active_isa());
  return table;
}

DotFn DotTable::find(TensorType weight) const {
  switch (weight) {
    case TensorType::F32: return f32;
    case TensorType::F16: return f16;
    case TensorType::BF16: return bf16;
    case TensorType::Q4_0: return q4_0;
    case TensorType::Q4_1: return q4_1;
    case TensorType::Q5_0: return q5_0;
    case TensorType::Q5_1: return q5_1;
    case TensorType::Q8_0: return q8_0;
    case TensorType::IQ4_NL: return iq4_nl;
    case TensorType::Q2_K: return q2_k;
    case TensorType::Q3_K: return q3_k;
    case TensorType::Q4_K: return q4_k;
    case TensorType::Q5_K: return q5_k;
    case TensorType::Q6_K: return q6_k;
    case TensorType::IQ4_XS: return iq4_xs;
    default: no_dot_product(weight);
  }
}

}  // namespace tokenmill::kernels
