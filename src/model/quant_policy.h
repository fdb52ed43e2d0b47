// File types ("Q4_K_M", "Q8_0", ...) and the tensor type each tensor of a model gets under one.
// The choice follows what llama.cpp's tools produce, so synthetic files look like real ones:
// F32 / F16 / BF16 as convert_hf_to_gguf.py writes them, quantized types as llama-quantize makes
// them from an F16 conversion without an importance matrix (its mixture rules per tensor role
// and layer, then its fallbacks for rows that do not divide into the chosen type's blocks).
#pragma once

#include <cstdint>
#include <span>
#include <string_view>
#include <vector>

#include "gguf/tensor_type.h"
#include "model/arch.h"

namespace tokenmill::model {

struct FileType {
  std::string_view name;        // as llama-quantize spells it: "Q4_K_M"
  uint32_t id;                  // general.file_type
  gguf::TensorType base_type;   // the type most weight matrices get
};

// The file types we can produce: the float types and the legacy and K-quant mixtures (not the
// IQ types, which need an importance matrix).
std::span<const FileType> file_types();
const FileType* find_file_type(std::string_view name);  // case-insensitive; nullptr if unknown

// The type of each tensor, in the order given. The rules for quantized types depend on tensor
// order (llama-quantize counts attn_v tensors as it meets them); they are applied in the
// quantizer's own order whatever the order of `tensors`.
std::vector<gguf::TensorType> choose_tensor_types(const FileType& file_type, const ArchInfo& arch,
                                                  const HParams& hp, const std::vector<TensorDesc>& tensors);

}  // namespace tokenmill::model
