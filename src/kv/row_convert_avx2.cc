// F16C bulk conversions, 8 elements per step with unaligned loads and stores, and the scalar
// reference for the tail. Compiled with -mavx2 -mfma -mf16c; row_convert.cc calls these only
// after checking the CPU.
#include <immintrin.h>

#include <cstdint>

#include "kv/row_convert.h"

namespace sparkv::internal {

void ConvertF16ToF32F16c(const uint8_t* f16, int64_t n, uint8_t* f32) {
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    const __m128i h = _mm_loadu_si128(reinterpret_cast<const __m128i*>(f16 + 2 * i));
    _mm256_storeu_ps(reinterpret_cast<float*>(f32 + 4 * i), _mm256_cvtph_ps(h));
  }
  ConvertF16ToF32Scalar(f16 + 2 * i, n - i, f32 + 4 * i);
}

void ConvertF32ToF16F16c(const uint8_t* f32, int64_t n, uint8_t* f16) {
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    const __m256 f = _mm256_loadu_ps(reinterpret_cast<const float*>(f32 + 4 * i));
    // Round to nearest even, the same rounding as the scalar F32ToF16.
    const __m128i h = _mm256_cvtps_ph(f, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    _mm_storeu_si128(reinterpret_cast<__m128i*>(f16 + 2 * i), h);
  }
  ConvertF32ToF16Scalar(f32 + 4 * i, n - i, f16 + 2 * i);
}

}  // namespace sparkv::internal
