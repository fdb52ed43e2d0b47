#include "kernels/formats.h"

#include <array>
#include <string>

#include "common/error.h"
#include "kernels/format_codecs.h"

namespace tokenmill::kernels {
namespace {

using gguf::TensorType;

struct Codec {
  TensorType type;
  void (*dequantize)(const void* src, float* dst, int64_t n);
  void (*quantize)(const float* src, void* dst, int64_t n);
};

constexpr std::array kCodecs = {
    Codec{TensorType::F32, codecs::dequantize_f32, codecs::quantize_f32},
    Codec{TensorType::F16, codecs::dequantize_f16, codecs::quantize_f16},
    Codec{TensorType::BF16, codecs::dequantize_bf16, codecs::quantize_bf16},
    Codec{TensorType::Q4_0, codecs::dequantize_q4_0, codecs::quantize_q4_0},
    Codec{TensorType::Q4_1, codecs::dequantize_q4_1, codecs::quantize_q4_1},
    Codec{TensorType::Q5_0, codecs::dequantize_q5_0, codecs::quantize_q5_0},
    Codec{TensorType::Q5_1, codecs::dequantize_q5_1, codecs::quantize_q5_1},
    Codec{TensorType::Q8_0, codecs::dequantize_q8_0, codecs::quantize_q8_0},
    Codec{TensorType::Q8_1, codecs::dequantize_q8_1, codecs::quantize_q8_1},
    Codec{TensorType::Q2_K, codecs::dequantize_q2_k, codecs::quantize_q2_k},
    Codec{TensorType::Q3_K, codecs::dequantize_q3_k, codecs::quantize_q3_k},
    Codec{TensorType::Q4_K, codecs::dequantize_q4_k, codecs::quantize_q4_k},
    Codec{TensorType::Q5_K, codecs::dequantize_q5_k, codecs::quantize_q5_k},
    Codec{TensorType::Q6_K, codecs::dequantize_q6_k, codecs::quantize_q6_k},
    Codec{TensorType::Q8_K, codecs::dequantize_q8_k, codecs::quantize_q8_k},
    Codec{TensorType::IQ4_NL, codecs::dequantize_iq4_nl, codecs::quantize_iq4_nl},
    Codec{TensorType::IQ4_XS, codecs::dequantize_iq4_xs, codecs::quantize_iq4_xs},
};

const Codec* find_codec(TensorType type) {
  for (const auto& codec : kCodecs)
    if (codec.type == type) return &codec;
  return nullptr;
}

std::string type_label(TensorType type) {
  if (auto info = gguf::tensor_type_info(static_cast<uint32_t>(type))) return std::string(info->name);
  return "type id " + std::to_string(static_cast<uint32_t>(type));
}

// The codec for a row of n elements, or an Error saying why there is none.
const Codec& codec_for_row(TensorType type, int64_t n, const char* action) {
  const Codec* codec = find_codec(type);
  if (!codec) throw Error("cannot " + std::string(action) + " tensors of type " + type_label(type));
  const int64_t block = gguf::tensor_type_info(type).block_elements;
  if (n < 0 || n % block != 0)
    throw Error("cannot " + std::string(action) + " a row of " + std::to_string(n) + " " +
                type_label(type) + " values: not a whole number of " + std::to_string(block) +
                "-element blocks");
  return *codec;
}

}  // namespace

bool can_dequantize(TensorType type) { return find_codec(type) != nullptr; }
bool can_quantize(TensorType type) { return find_codec(type) != nullptr; }

void dequantize_row(TensorType type, const void* src, float* dst, int64_t n) {
  codec_for_row(type, n, "dequantize").dequantize(src, dst, n);
}

void quantize_row(TensorType type, const float* src, void* dst, int64_t n) {
  codec_for_row(type, n, "quantize").quantize(src, dst, n);
}

}  // namespace tokenmill::kernels
