// F16C bulk conversions, 8 elements per step with unaligned loads and stores, and the scalar
// reference for the tail. Compiled with -mavx2 -mfma -mf16c; row_convert.cc calls these only
// after checking the CPU.
#include <immintrin.h>

#include <cstdint>
#include <cstring>

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

namespace {

// Eight elements of a row: lo + q * step. The empty asm keeps the product in a register, so the
// compiler cannot fuse it with the sum (-mfma allows that) and the result matches the scalar
// reference bit for bit.
inline __m256 Dequantize8(const uint8_t* q, const float* lo, const float* step) {
  const __m128i q8 = _mm_loadl_epi64(reinterpret_cast<const __m128i*>(q));
  __m256 product = _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(q8)), _mm256_loadu_ps(step));
  __asm__("" : "+x"(product));
  return _mm256_add_ps(_mm256_loadu_ps(lo), product);
}

inline void Store8(__m256 values, KvElemType elem, uint8_t* out) {
  if (elem == KvElemType::kF32) {
    _mm256_storeu_ps(reinterpret_cast<float*>(out), values);
  } else {
    _mm_storeu_si128(reinterpret_cast<__m128i*>(out),
                     _mm256_cvtps_ph(values, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
  }
}

}  // namespace

void DequantizeRowsAvx2(const uint8_t* levels, const float* lo, const float* step, int64_t width,
                        int64_t n_tokens, KvElemType elem, uint8_t* out, int64_t row_bytes) {
  const int64_t elem_bytes = elem == KvElemType::kF32 ? 4 : 2;
  const int64_t full = width - width % 8;
  // The last width % 8 channels go through padded copies, so they take the same arithmetic.
  alignas(32) float lo_tail[8] = {}, step_tail[8] = {};
  std::memcpy(lo_tail, lo + full, static_cast<size_t>(width - full) * 4);
  std::memcpy(step_tail, step + full, static_cast<size_t>(width - full) * 4);
  for (int64_t t = 0; t < n_tokens; ++t) {
    const uint8_t* q = levels + t * width;
    uint8_t* row = out + t * row_bytes;
    for (int64_t c = 0; c < full; c += 8) Store8(Dequantize8(q + c, lo + c, step + c), elem, row + c * elem_bytes);
    if (full < width) {
      uint8_t q_tail[8] = {};
      alignas(32) uint8_t row_tail[32];
      std::memcpy(q_tail, q + full, static_cast<size_t>(width - full));
      Store8(Dequantize8(q_tail, lo_tail, step_tail), elem, row_tail);
      std::memcpy(row + full * elem_bytes, row_tail, static_cast<size_t>((width - full) * elem_bytes));
    }
  }
}

void JoinF16PlanesAvx2(const uint8_t* low, const uint8_t* high, int64_t n, KvElemType elem,
                       uint8_t* row) {
  const size_t elem_bytes = elem == KvElemType::kF16 ? 2 : 4;
  int64_t i = 0;
  for (; i + 32 <= n; i += 32) {
    const __m256i l = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(low + i));
    const __m256i h = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(high + i));
    // Interleaving works within 128-bit halves: a contains elements [0, 8) and [16, 24), and b
    // contains [8, 16) and [24, 32).
    const __m256i a = _mm256_unpacklo_epi8(l, h);
    const __m256i b = _mm256_unpackhi_epi8(l, h);
    const __m128i f16[4] = {_mm256_castsi256_si128(a), _mm256_castsi256_si128(b),
                            _mm256_extracti128_si256(a, 1), _mm256_extracti128_si256(b, 1)};
    uint8_t* out = row + i * elem_bytes;
    for (int k = 0; k < 4; ++k) {
      if (elem == KvElemType::kF16) {
        _mm_storeu_si128(reinterpret_cast<__m128i*>(out + 16 * k), f16[k]);
      } else {
        _mm256_storeu_ps(reinterpret_cast<float*>(out + 32 * k), _mm256_cvtph_ps(f16[k]));
      }
    }
  }
  JoinF16PlanesScalar(low + i, high + i, n - i, elem, row + i * elem_bytes);
}

}  // namespace sparkv::internal
