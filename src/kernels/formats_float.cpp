// F32, F16 and BF16 rows: plain copies and the rounding conversions of half.h.
#include <cstring>

#include "kernels/format_codecs.h"
#include "kernels/half.h"

namespace tokenmill::kernels::codecs {
namespace {

template <float (*Widen)(uint16_t)>
void widen_row(const void* src, float* dst, int64_t n) {
  const auto* h = static_cast<const uint16_t*>(src);
  for (int64_t i = 0; i < n; ++i) dst[i] = Widen(h[i]);
}
template <uint16_t (*Narrow)(float)>
void narrow_row(const float* src, void* dst, int64_t n) {
  auto* h = static_cast<uint16_t*>(dst);
  for (int64_t i = 0; i < n; ++i) h[i] = Narrow(src[i]);
}

}  // namespace

void dequantize_f32(const void* src, float* dst, int64_t n) { std::memcpy(dst, src, n * sizeof(float)); }
void quantize_f32(const float* src, void* dst, int64_t n) { std::memcpy(dst, src, n * sizeof(float)); }
void dequantize_f16(const void* src, float* dst, int64_t n) { widen_row<f16_to_f32>(src, dst, n); }
void quantize_f16(const float* src, void* dst, int64_t n) { narrow_row<f32_to_f16>(src, dst, n); }
void dequantize_bf16(const void* src, float* dst, int64_t n) { widen_row<bf16_to_f32>(src, dst, n); }
void quantize_bf16(const float* src, void* dst, int64_t n) { narrow_row<f32_to_bf16>(src, dst, n); }

}  // namespace tokenmill::kernels::codecs
