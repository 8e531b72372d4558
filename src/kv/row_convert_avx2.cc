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

uint16_t AddLevelRowsAvx2(const uint8_t* symbols, int64_t n, int64_t n_rows,
                          const uint8_t* reference, uint16_t offset, uint8_t* out,
                          int64_t out_stride) {
  const __m256i offset16 = _mm256_set1_epi16(static_cast<int16_t>(offset));
  const __m256i low_byte = _mm256_set1_epi16(0xff);
  const int64_t full = n - n % 32;
  __m256i seen = _mm256_setzero_si256();
  uint16_t tail_seen = 0;
  for (int64_t t = 0; t < n_rows; ++t) {
    const uint8_t* row = symbols + t * n;
    uint8_t* levels = out + t * out_stride;
    for (int64_t c = 0; c < full; c += 32) {
      const __m256i symbol_bytes = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(row + c));
      const __m256i reference_bytes = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(reference + c));
      // Sums of bytes [0, 16) and [16, 32) in 16 bits.
      const __m256i first = _mm256_sub_epi16(
          _mm256_add_epi16(_mm256_cvtepu8_epi16(_mm256_castsi256_si128(symbol_bytes)),
                           _mm256_cvtepu8_epi16(_mm256_castsi256_si128(reference_bytes))),
          offset16);
      const __m256i second = _mm256_sub_epi16(
          _mm256_add_epi16(_mm256_cvtepu8_epi16(_mm256_extracti128_si256(symbol_bytes, 1)),
                           _mm256_cvtepu8_epi16(_mm256_extracti128_si256(reference_bytes, 1))),
          offset16);
      seen = _mm256_or_si256(seen, _mm256_or_si256(first, second));
      // Keeping the low bytes makes the saturating pack exact. It packs within 128-bit halves,
      // so the quadwords come out in the order 0, 2, 1, 3.
      const __m256i packed = _mm256_packus_epi16(_mm256_and_si256(first, low_byte),
                                                 _mm256_and_si256(second, low_byte));
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(levels + c),
                          _mm256_permute4x64_epi64(packed, 0xd8));
    }
    if (full < n) {
      tail_seen |= AddLevelRowsScalar(row + full, n - full, 1, reference + full, offset,
                                      levels + full, out_stride);
    }
  }
  // The OR of the sixteen 16-bit lanes.
  __m128i folded = _mm_or_si128(_mm256_castsi256_si128(seen), _mm256_extracti128_si256(seen, 1));
  folded = _mm_or_si128(folded, _mm_srli_si128(folded, 8));
  folded = _mm_or_si128(folded, _mm_srli_si128(folded, 4));
  folded = _mm_or_si128(folded, _mm_srli_si128(folded, 2));
  return static_cast<uint16_t>(_mm_cvtsi128_si32(folded)) | tail_seen;
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
