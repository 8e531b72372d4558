#include "kv/row_convert.h"

#include "common/f16.h"

namespace sparkv::internal {

// Defined in row_convert_avx2.cc, compiled with -mf16c; call only when the CPU has F16C and AVX.
void ConvertF16ToF32F16c(const uint8_t* f16, int64_t n, uint8_t* f32);
void ConvertF32ToF16F16c(const uint8_t* f32, int64_t n, uint8_t* f16);

namespace {

bool DetectF16c() {
  __builtin_cpu_init();
  return __builtin_cpu_supports("f16c") && __builtin_cpu_supports("avx");
}

}  // namespace

bool HasF16cConversion() {
  static const bool has_f16c = DetectF16c();
  return has_f16c;
}

void ConvertF16ToF32Scalar(const uint8_t* f16, int64_t n, uint8_t* f32) {
  for (int64_t i = 0; i < n; ++i) {
    uint16_t h;
    std::memcpy(&h, f16 + 2 * i, 2);
    const float f = F16ToF32(h);
    std::memcpy(f32 + 4 * i, &f, 4);
  }
}

void ConvertF32ToF16Scalar(const uint8_t* f32, int64_t n, uint8_t* f16) {
  for (int64_t i = 0; i < n; ++i) {
    float f;
    std::memcpy(&f, f32 + 4 * i, 4);
    const uint16_t h = F32ToF16(f);
    std::memcpy(f16 + 2 * i, &h, 2);
  }
}

void ConvertF16ToF32(const uint8_t* f16, int64_t n, uint8_t* f32) {
  if (HasF16cConversion()) {
    ConvertF16ToF32F16c(f16, n, f32);
  } else {
    ConvertF16ToF32Scalar(f16, n, f32);
  }
}

void ConvertF32ToF16(const uint8_t* f32, int64_t n, uint8_t* f16) {
  if (HasF16cConversion()) {
    ConvertF32ToF16F16c(f32, n, f16);
  } else {
    ConvertF32ToF16Scalar(f32, n, f16);
  }
}

}  // namespace sparkv::internal
