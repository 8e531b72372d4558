// The AVX2 rANS decoder: the eight states of a stream live in one register and step together,
// which is exactly the scalar decoder's order (symbol i on state i % 8, refills in ascending
// state order). Compiled with -mavx2; rans::Decode calls it only when the CPU has AVX2.
#include <immintrin.h>

#include <array>
#include <cstring>

#include "kv/rans.h"
#include "kv/rans_internal.h"

namespace sparkv::rans {
namespace {

static_assert(kStates == 8, "one AVX2 register holds the eight states");

// For each mask of states that need a word (bit k for state k), the index of the word each state
// takes among the next eight: the number of needing states before it. Entries of states that do
// not refill are unused.
struct RefillTable {
  std::array<std::array<uint8_t, 8>, 256> index{};
  constexpr RefillTable() {
    for (int mask = 0; mask < 256; ++mask) {
      int words_before = 0;
      for (int k = 0; k < 8; ++k) {
        index[mask][k] = static_cast<uint8_t>(words_before);
        words_before += (mask >> k) & 1;
      }
    }
  }
};
constexpr RefillTable kRefill;

}  // namespace

Status DecodeAvx2(std::span<const uint8_t> stream, const DecodeTable& table,
                  std::span<uint8_t> symbols, std::string_view label) {
  std::array<uint32_t, kStates> x;
  SPARKV_RETURN_IF_ERROR(internal_rans::ReadStates(stream, label, x));

  const auto* const slots = reinterpret_cast<const int*>(table.slots());
  const uint8_t* in = stream.data() + kStreamHeaderBytes;
  const uint8_t* const end = stream.data() + stream.size();
  const size_t n = symbols.size();
  uint8_t* const out = symbols.data();

  const __m256i slot_mask = _mm256_set1_epi32(kRansTotal - 1);
  const __m256i field_mask = _mm256_set1_epi32(0xfff);
  const __m256i one = _mm256_set1_epi32(1);
  const __m256i zero = _mm256_setzero_si256();
  // Byte 0 of each 32-bit lane to the front of its 128-bit half.
  const __m256i first_bytes = _mm256_setr_epi8(0, 4, 8, 12, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1,
                                               -1, -1, 0, 4, 8, 12, -1, -1, -1, -1, -1, -1, -1,
                                               -1, -1, -1, -1, -1);
  __m256i state = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(x.data()));

  // A group of eight symbols takes at most eight words and the load below reads exactly 16
  // bytes, so the loop runs while 16 bytes remain. The tail checks every word.
  size_t i = 0;
  for (; i + kStates <= n && end - in >= 2 * kStates; i += kStates) {
    const __m256i entry =
        _mm256_i32gather_epi32(slots, _mm256_and_si256(state, slot_mask), 4);
    const __m256i freq = _mm256_add_epi32(_mm256_and_si256(_mm256_srli_epi32(entry, 8), field_mask), one);
    const __m256i bias = _mm256_srli_epi32(entry, 20);
    state = _mm256_add_epi32(_mm256_mullo_epi32(freq, _mm256_srli_epi32(state, kScaleBits)), bias);

    const __m256i bytes = _mm256_shuffle_epi8(entry, first_bytes);
    const uint32_t low = static_cast<uint32_t>(_mm_cvtsi128_si32(_mm256_castsi256_si128(bytes)));
    const uint32_t high = static_cast<uint32_t>(_mm_cvtsi128_si32(_mm256_extracti128_si256(bytes, 1)));
    const uint64_t eight = static_cast<uint64_t>(high) << 32 | low;
    std::memcpy(out + i, &eight, 8);

    // States below 2^16 take the next words in ascending state order.
    const __m256i need = _mm256_cmpeq_epi32(_mm256_srli_epi32(state, 16), zero);
    const int mask = _mm256_movemask_ps(_mm256_castsi256_ps(need));
    const __m256i words =
        _mm256_cvtepu16_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(in)));
    uint64_t index_bytes;
    std::memcpy(&index_bytes, kRefill.index[mask].data(), 8);
    const __m256i index = _mm256_cvtepu8_epi32(_mm_cvtsi64_si128(static_cast<int64_t>(index_bytes)));
    const __m256i refilled =
        _mm256_or_si256(_mm256_slli_epi32(state, 16), _mm256_permutevar8x32_epi32(words, index));
    state = _mm256_blendv_epi8(state, refilled, need);
    in += 2 * __builtin_popcount(static_cast<unsigned>(mask));
  }
  _mm256_storeu_si256(reinterpret_cast<__m256i*>(x.data()), state);
  return internal_rans::DecodeTail(in, end, stream.size(), table.slots(), x, i, symbols, label);
}

}  // namespace sparkv::rans
