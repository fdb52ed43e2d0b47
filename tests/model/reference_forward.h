// An independent, deliberately naive forward pass for the model tests: every weight dequantized
// to f32, plain loops, no KV cache (each position attends over the whole prefix recomputed),
// tensors and metadata read by their GGUF names, each family's graph written out from its
// reference description. It shares no code with src/model/ beyond the GGUF reader and the
// scalar dequantizers, so a mistake in the forward pass cannot hide in both.
#pragma once

#include <cstdint>
#include <vector>

#include "gguf/file.h"

namespace tokenmill::testing {

// Logits after every position of `tokens` (the model reads them from position 0 on). Keys and
// values are rounded through `kv_type` as a KV cache of that type stores them: with quantized
// activations, even half-precision rounding of the cache moves some activations across a
// rounding boundary, so a comparison must round the same way to be tight.
std::vector<std::vector<float>> reference_logits(const gguf::File& file, const std::vector<int32_t>& tokens,
                                                 gguf::TensorType kv_type = gguf::TensorType::F32);

}  // namespace tokenmill::testing
