// A real model quantized by llama.cpp's tools: stories260K in F32 and Q8_0 (../shared/models).
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <filesystem>

#include "gguf/file.h"
#include "kernels/formats.h"
#include "kernels/half.h"

namespace tokenmill::kernels {
namespace {

using gguf::TensorType;

std::string shared_model(const char* name) {
  return std::string(TOKENMILL_SOURCE_DIR) + "/../shared/models/" + name;
}

TEST(Stories260K, QuantizedTensorsMatchTheF32Model) {
  const auto q8_path = shared_model("stories260K-q8_0.gguf");
  const auto f32_path = shared_model("stories260K-f32.gguf");
  if (!std::filesystem::exists(q8_path) || !std::filesystem::exists(f32_path))
    GTEST_SKIP() << "../shared/models is absent: " << q8_path;
  const auto q8 = gguf::File::open(q8_path);
  const auto f32 = gguf::File::open(f32_path);

  int quantized = 0, converted = 0;
  for (const auto& t : q8.tensors()) {
    const gguf::TensorInfo* ref = f32.find_tensor(t.name);
    ASSERT_NE(ref, nullptr) << t.name;
    ASSERT_EQ(ref->type, TensorType::F32) << t.name;
    ASSERT_EQ(ref->shape, t.shape) << t.name;
    const int64_t row = static_cast<int64_t>(t.shape[0]);
    const uint64_t row_bytes = gguf::row_bytes(t.type, row);
    const auto* want = reinterpret_cast<const float*>(ref->data);
    std::vector<float> got(row);
    std::vector<uint8_t> again(row_bytes);
    for (uint64_t r = 0; r < t.n_rows(); ++r) {
      const uint8_t* bytes = t.data + r * row_bytes;
      dequantize_row(t.type, bytes, got.data(), row);
      const float* w = want + r * row;
      if (t.type == TensorType::F32) {
        for (int64_t i = 0; i < row; ++i) ASSERT_EQ(got[i], w[i]) << t.name;
        continue;
      }
      // llama-quantize made the file from the F32 model: quantizing its rows gives the same
      // bytes.
      quantize_row(t.type, w, again.data(), row);
      ASSERT_EQ(0, std::memcmp(again.data(), bytes, row_bytes)) << t.name << " row " << r;
      if (t.type == TensorType::F16) {  // rows whose length is no multiple of 32
        for (int64_t i = 0; i < row; ++i)
          ASSERT_LE(std::fabs(got[i] - w[i]), std::fabs(w[i]) / 2048 + 0x1p-25f) << t.name;
        ++converted;
        continue;
      }
      ASSERT_EQ(t.type, TensorType::Q8_0) << t.name;
      // Within half a step, plus the step's own rounding to half precision over 127 steps.
      for (int64_t i = 0; i < row; ++i) {
        const float d = f16_to_f32(static_cast<uint16_t>(bytes[34 * (i / 32)] | bytes[34 * (i / 32) + 1] << 8));
        ASSERT_LE(std::fabs(got[i] - w[i]), std::fabs(d) * (0.5f + 127.0f / 2048) + 1e-12f)
            << t.name << " row " << r << " element " << i;
      }
      // Quantizing the decoded values gives back the file's bytes.
      quantize_row(t.type, got.data(), again.data(), row);
      ASSERT_EQ(0, std::memcmp(again.data(), bytes, row_bytes)) << t.name << " row " << r;
      ++quantized;
    }
  }
  EXPECT_GT(quantized, 0);
  EXPECT_GT(converted, 0);
}

}  // namespace
}  // namespace tokenmill::kernels
