#include "kv/row_convert.h"

#include <cpuid.h>

#include "common/f16.h"

namespace sparkv::internal {

// Defined in row_convert_avx2.cc, compiled with -mf16c; call only when the CPU has F16C and AVX.
void ConvertF16ToF32F16c(const uint8_t* f16, int64_t n, uint8_t* f32);
void ConvertF32ToF16F16c(const uint8_t* f32, int64_t n, uint8_t* f16);
// Likewise, with lo and step already in f32 ([width] each). Call only when HasAvx2().
void DequantizeRowsAvx2(const uint8_t* levels, const float* lo, const float* step, int64_t width,
                        int64_t n_tokens, KvElemType elem, uint8_t* out, int64_t row_bytes);

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

// DetectF16c plus AVX2 (cpuid leaf 7, EBX bit 5) and FMA (leaf 1, ECX bit 12).
bool DetectAvx2() {
  if (!DetectF16c()) return false;
  unsigned eax, ebx, ecx, edx;
  if (!__get_cpuid(1, &eax, &ebx, &ecx, &edx) || ((ecx >> 12) & 1) == 0) return false;
  if (!__get_cpuid_count(7, 0, &eax, &ebx, &ecx, &edx)) return false;
  return (ebx >> 5) & 1;
}

}  // namespace

bool HasAvx2() {
  static const bool has_avx2 = DetectAvx2();
  return has_avx2;
}

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

namespace sparkv::internal {
namespace {

// params: lo [width] f16 then step [width] f16; lo and step: [width] f32 each.
void ParamsToF32(const uint8_t* params, int64_t width, float* lo, float* step) {
  for (int64_t c = 0; c < width; ++c) {
    uint16_t h;
    std::memcpy(&h, params + 2 * c, 2);
    lo[c] = F16ToF32(h);
    std::memcpy(&h, params + 2 * (width + c), 2);
    step[c] = F16ToF32(h);
  }
}

}  // namespace

void DequantizeRowsScalar(const uint8_t* levels, const uint8_t* params, int64_t width,
                          int64_t n_tokens, KvElemType elem, uint8_t* out, int64_t row_bytes) {
  std::vector<float> lo(width), step(width), row(width);  // [width] f32
  ParamsToF32(params, width, lo.data(), step.data());
  auto* row_bytes_f32 = reinterpret_cast<uint8_t*>(row.data());
  for (int64_t t = 0; t < n_tokens; ++t) {
    const uint8_t* q = levels + t * width;
    for (int64_t c = 0; c < width; ++c) row[c] = lo[c] + static_cast<float>(q[c]) * step[c];
    if (elem == KvElemType::kF32) {
      std::memcpy(out + t * row_bytes, row_bytes_f32, static_cast<size_t>(width) * 4);
    } else {
      ConvertF32ToF16Scalar(row_bytes_f32, width, out + t * row_bytes);
    }
  }
}

void DequantizeRows(const uint8_t* levels, const uint8_t* params, int64_t width, int64_t n_tokens,
                    KvElemType elem, uint8_t* out, int64_t row_bytes) {
  if (!HasAvx2()) {
    DequantizeRowsScalar(levels, params, width, n_tokens, elem, out, row_bytes);
    return;
  }
  std::vector<float> lo(width), step(width);  // [width] f32
  ParamsToF32(params, width, lo.data(), step.data());
  DequantizeRowsAvx2(levels, lo.data(), step.data(), width, n_tokens, elem, out, row_bytes);
}

}  // namespace sparkv::internal
