// AVX2 unpacking of b-bit fields for the group-quantized codecs (q10; kv/group_quant.h has the
// layout). Compiled with -mavx2; group_quant.cc calls it only when the CPU has AVX2.
#include <immintrin.h>

#include <cstdint>

#include "kv/group_quant.h"

namespace sparkv::internal {

int64_t UnpackRowAvx2(const uint8_t* in, int64_t n, int bits, FieldCode code, const float* scales,
                      float* row) {
  // Eight fields start at a byte boundary (8 * bits bits) and fit in 16 bytes for bits <= 16.
  // Both 128-bit halves get the same 16 bytes, and each 32-bit lane k picks the bytes of field
  // k from bit k * bits on, shifts the field down and masks it.
  alignas(32) int8_t shuffle[32];
  alignas(32) int32_t shift[8];
  for (int k = 0; k < 8; ++k) {
    const int first_bit = k * bits;
    const int last_byte = (first_bit + bits - 1) / 8;
    for (int j = 0; j < 4; ++j) {
      const int byte = first_bit / 8 + j;
      shuffle[4 * k + j] = static_cast<int8_t>(byte <= last_byte ? byte : -1);
    }
    shift[k] = first_bit % 8;
  }
  const __m256i byte_index = _mm256_load_si256(reinterpret_cast<const __m256i*>(shuffle));
  const __m256i shift_count = _mm256_load_si256(reinterpret_cast<const __m256i*>(shift));
  const __m256i mask = _mm256_set1_epi32((1 << bits) - 1);
  const __m256i q_max = _mm256_set1_epi32((1 << (bits - 1)) - 1);
  const __m128i sign_shift = _mm_cvtsi32_si128(32 - bits);

  const int64_t row_bytes = (n * bits + 7) / 8;
  int64_t i = 0;
  for (; i + 8 <= n && i * bits / 8 + 16 <= row_bytes; i += 8) {
    const __m128i bytes = _mm_loadu_si128(reinterpret_cast<const __m128i*>(in + i * bits / 8));
    const __m256i both = _mm256_broadcastsi128_si256(bytes);
    const __m256i field =
        _mm256_and_si256(_mm256_srlv_epi32(_mm256_shuffle_epi8(both, byte_index), shift_count), mask);
    const __m256i q = code == FieldCode::kOffset
                          ? _mm256_sub_epi32(field, q_max)
                          : _mm256_sra_epi32(_mm256_sll_epi32(field, sign_shift), sign_shift);
    // Eight fields from a multiple of 8 lie in one group of kQuantGroup = 32.
    const __m256 scale = _mm256_set1_ps(scales[i / kQuantGroup]);
    _mm256_storeu_ps(row + i, _mm256_mul_ps(_mm256_cvtepi32_ps(q), scale));
  }
  return i;
}

}  // namespace sparkv::internal
