// Block formats: conversion between f32 and every supported tensor type, row by row. These
// are the scalar definitions of each format (the specification in code); fast paths live in
// the matmul kernels, which are tested against these.
#pragma once

#include <cstdint>

#include "gguf/tensor_type.h"

namespace tokenmill::kernels {

bool can_dequantize(gguf::TensorType type);
bool can_quantize(gguf::TensorType type);

// n must be a multiple of the type's block size. Throw tokenmill::Error for unsupported types.
void dequantize_row(gguf::TensorType type, const void* src, float* dst, int64_t n);
void quantize_row(gguf::TensorType type, const float* src, void* dst, int64_t n);

}  // namespace tokenmill::kernels
