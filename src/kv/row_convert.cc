#include "kv/row_convert.h"

#include <cpuid.h>

#include "common/f16.h"

namespace sparkv::internal {

// Defined in row_convert_avx2.cc, compiled with -mf16c; call only when the CPU has F16C and AVX.
void ConvertF16ToF32F16c(const uint8_t* f16, int64_t n, uint8_t* f32);
void ConvertF32ToF16F16c(const uint8_t* f32, int64_t n, uint8_t* f16);

namespace {

// F16C and AVX in the CPU, and the OS saving YMM state. Through cpuid rather than
// __builtin_cpu_supports, which clang 14 does not accept for "f16c".
// NOTE: src/engine/kernels.cc has the same check (plus AVX2 and FMA) in a private function; one
// shared helper in src/common would serve both.
bool DetectF16c() {
  unsigned eax, ebx, ecx, edx;
  if (!__get_cpuid(1, &eax, &ebx, &ecx, &edx)) return false;
  const bool osxsave = (ecx >> 27) & 1;
  const bool avx = (ecx >> 28) & 1;
  const bool f16c = (ecx >> 29) & 1;
  if (!(osxsave && avx && f16c)) return false;
  uint32_t xcr0_lo, xcr0_hi;
  __asm__("xgetbv" : "=a"(xcr0_lo), "=d"(xcr0_hi) : "c"(0));
  return (xcr0_lo & 0x6) == 0x6;  // XMM and YMM state enabled
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
