// gguf/: the GGUF container format — tensor element types, metadata values, the validating
// reader (memory-mapped, split files) and the writer. Depends only on common/.
//
// This file is the table of tensor element types as numbered in the GGUF specification: how
// many elements one block holds and how many bytes it takes. Decoding the blocks is kernels/'s
// job; the container only needs sizes to validate offsets and extents.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string_view>

namespace tokenmill::gguf {

enum class TensorType : uint32_t {
  F32 = 0,
  F16 = 1,
  Q4_0 = 2,
  Q4_1 = 3,
  Q5_0 = 6,
  Q5_1 = 7,
  Q8_0 = 8,
  Q8_1 = 9,
  Q2_K = 10,
  Q3_K = 11,
  Q4_K = 12,
  Q5_K = 13,
  Q6_K = 14,
  Q8_K = 15,
  IQ2_XXS = 16,
  IQ2_XS = 17,
  IQ3_XXS = 18,
  IQ1_S = 19,
  IQ4_NL = 20,
  IQ3_S = 21,
  IQ2_S = 22,
  IQ4_XS = 23,
  I8 = 24,
  I16 = 25,
  I32 = 26,
  I64 = 27,
  F64 = 28,
  IQ1_M = 29,
  BF16 = 30,
  TQ1_0 = 34,
  TQ2_0 = 35,
  MXFP4 = 39,
  NVFP4 = 40,
  Q1_0 = 41,
  Q2_0 = 42,
};

struct TensorTypeInfo {
  TensorType type;
  std::string_view name;  // as printed by tools and accepted on the command line ("Q4_K")
  uint32_t block_elements;
  uint32_t block_bytes;
};

// The table entry for a raw type id, or nullopt when the id names no type the format defines
// (including ids whose support was removed from the format).
std::optional<TensorTypeInfo> tensor_type_info(uint32_t id);
const TensorTypeInfo& tensor_type_info(TensorType type);
std::string_view tensor_type_name(TensorType type);
std::optional<TensorType> tensor_type_from_name(std::string_view name);  // case-insensitive

// Bytes taken by a row of n elements; n must be a multiple of the block size.
inline uint64_t row_bytes(TensorType type, uint64_t n) {
  const auto& info = tensor_type_info(type);
  return n / info.block_elements * info.block_bytes;
}

}  // namespace tokenmill::gguf
