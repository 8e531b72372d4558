// The AVX-512 rANS decoder. One 512-bit register contains the eight states of two streams (lanes
// 0-7 and 8-15), so one gather, multiply and compare decode sixteen symbols.
//
// Up to kMaxInterleaveAvx512 streams (four registers) step together, so that their dependency
// chains overlap. Each stream keeps the scalar decoder's order (symbol i on state i % 8, refills
// in ascending state order), so the output is the same byte for byte.
//
// A gather has one base address, so the second stream's table is reached through an index
// offset, its distance from the first table in entries. Tables too far apart for a 32-bit index
// are decoded as single streams in 256-bit registers, with the same step.
//
// Compiled with the AVX-512 flags, and rans.cc calls it only when HasAvx512Decoder(). As in
// src/engine/kernels_avx512.cc, nothing here may be shared with another file (no std templates,
// no inline functions from headers other than intrinsics), or the linker could keep this file's
// copy for a CPU without AVX-512. So this file only steps plain cursors, and rans.cc reads the
// headers, decodes the tails and builds the statuses.
#if defined(__GNUC__) && !defined(__clang__)
// GCC 12's AVX-512 intrinsics (casts, inserts, gathers) start from an undefined vector that the
// instruction overwrites, and warn at their header lines that it may be used uninitialized.
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif
#include <immintrin.h>

#include <climits>
#include <cstddef>
#include <cstdint>

#include "kv/rans_internal.h"

namespace sparkv::rans::internal_rans {
namespace {

static_assert(kStates == 8, "a 256-bit half holds the eight states of a stream");

inline size_t Min(size_t a, size_t b) { return a < b ? a : b; }

// How many steps of eight symbols `cursor` may still take without a bounds check. A step takes
// at most eight words (16 bytes), and its word load reads exactly 16 bytes.
inline size_t SafeSteps(const StreamCursor& cursor) {
  return Min((cursor.n - cursor.i) / kStates, static_cast<size_t>(cursor.end - cursor.in) / 16);
}

// The index offset that makes `b`'s slots reachable from `a`'s as the gather base, or false when
// the distance does not fit a 32-bit index (with room for the slot added to it).
bool TableOffset(const StreamCursor& a, const StreamCursor& b, int32_t* offset) {
  const auto distance = static_cast<intptr_t>(reinterpret_cast<uintptr_t>(b.slots) -
                                              reinterpret_cast<uintptr_t>(a.slots));
  if (distance % 4 != 0) return false;
  const intptr_t entries = distance / 4;
  if (entries < INT32_MIN || entries > INT32_MAX - static_cast<intptr_t>(kRansTotal)) return false;
  *offset = static_cast<int32_t>(entries);
  return true;
}

// The next eight words at `in`, zero-extended, moved to the states in `need` in ascending order.
inline __m256i RefillWords(const uint8_t* in, __mmask8 need) {
  const __m256i words = _mm256_cvtepu16_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(in)));
  return _mm256_maskz_expand_epi32(need, words);
}

// One step of two streams in one register: decodes eight symbols of each into out_a[0, 8) and
// out_b[0, 8), refills the states that fell below 2^16, and advances in_a and in_b past the words
// taken. `offset` is 0 in lanes 0-7 and the second table's TableOffset in lanes 8-15.
inline __m512i StepPair(__m512i state, const int* slots, __m512i offset, const uint8_t*& in_a,
                        const uint8_t*& in_b, uint8_t* out_a, uint8_t* out_b) {
  const __m512i index =
      _mm512_add_epi32(_mm512_and_si512(state, _mm512_set1_epi32(kRansTotal - 1)), offset);
  const __m512i entry = _mm512_i32gather_epi32(index, slots, 4);
  const __m512i freq = _mm512_add_epi32(
      _mm512_and_si512(_mm512_srli_epi32(entry, 8), _mm512_set1_epi32(0xfff)), _mm512_set1_epi32(1));
  const __m512i bias = _mm512_srli_epi32(entry, 20);
  state = _mm512_add_epi32(_mm512_mullo_epi32(freq, _mm512_srli_epi32(state, kScaleBits)), bias);

  const __m128i symbols = _mm512_cvtepi32_epi8(entry);
  _mm_storel_epi64(reinterpret_cast<__m128i*>(out_a), symbols);
  _mm_storel_epi64(reinterpret_cast<__m128i*>(out_b), _mm_unpackhi_epi64(symbols, symbols));

  const __mmask16 need = _mm512_cmplt_epu32_mask(state, _mm512_set1_epi32(kRansLow));
  const auto need_a = static_cast<__mmask8>(need);
  const auto need_b = static_cast<__mmask8>(need >> 8);
  const __m512i words = _mm512_inserti64x4(_mm512_zextsi256_si512(RefillWords(in_a, need_a)),
                                           RefillWords(in_b, need_b), 1);
  in_a += 2 * __builtin_popcount(need_a);
  in_b += 2 * __builtin_popcount(need_b);
  return _mm512_mask_or_epi32(state, need, _mm512_slli_epi32(state, 16), words);
}

// One step of a single stream in a 256-bit register, as StepPair does for each half.
inline __m256i StepSingle(__m256i state, const int* slots, const uint8_t*& in, uint8_t* out) {
  const __m256i entry =
      _mm256_i32gather_epi32(slots, _mm256_and_si256(state, _mm256_set1_epi32(kRansTotal - 1)), 4);
  const __m256i freq = _mm256_add_epi32(
      _mm256_and_si256(_mm256_srli_epi32(entry, 8), _mm256_set1_epi32(0xfff)), _mm256_set1_epi32(1));
  const __m256i bias = _mm256_srli_epi32(entry, 20);
  state = _mm256_add_epi32(_mm256_mullo_epi32(freq, _mm256_srli_epi32(state, kScaleBits)), bias);

  _mm_storel_epi64(reinterpret_cast<__m128i*>(out), _mm256_cvtepi32_epi8(entry));

  const __mmask8 need = _mm256_cmplt_epu32_mask(state, _mm256_set1_epi32(kRansLow));
  const __m256i words = RefillWords(in, need);
  in += 2 * __builtin_popcount(need);
  return _mm256_mask_or_epi32(state, need, _mm256_slli_epi32(state, 16), words);
}

inline __m256i LoadStates(const StreamCursor& cursor) {
  return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(cursor.x));
}

inline void StoreStates(__m256i state, StreamCursor& cursor) {
  _mm256_storeu_si256(reinterpret_cast<__m256i*>(cursor.x), state);
}

// Steps P pairs (cursors[2j] and cursors[2j + 1] share a register, offsets[j] reaches the second
// table) and S single streams (cursors[2P + k]) together until one of them has no safe step
// left. The fields are copied into locals because stores through `out` may alias any escaped
// memory and would force reloads.
template <int P, int S>
void StepTogether(StreamCursor* const* cursors, const int32_t* offsets) {
  constexpr int kCount = 2 * P + S;
  const uint8_t* in[kCount];
  uint8_t* out[kCount];
  const int* slots[kCount];
  __m512i pair_state[P > 0 ? P : 1];
  __m512i pair_offset[P > 0 ? P : 1];
  __m256i single_state[S > 0 ? S : 1];
  size_t steps = SIZE_MAX;
  for (int k = 0; k < kCount; ++k) {
    slots[k] = reinterpret_cast<const int*>(cursors[k]->slots);
    in[k] = cursors[k]->in;
    out[k] = cursors[k]->out + cursors[k]->i;
    steps = Min(steps, SafeSteps(*cursors[k]));
  }
  for (int j = 0; j < P; ++j) {
    pair_state[j] = _mm512_inserti64x4(_mm512_zextsi256_si512(LoadStates(*cursors[2 * j])),
                                       LoadStates(*cursors[2 * j + 1]), 1);
    pair_offset[j] = _mm512_inserti64x4(_mm512_setzero_si512(), _mm256_set1_epi32(offsets[j]), 1);
  }
  for (int k = 0; k < S; ++k) single_state[k] = LoadStates(*cursors[2 * P + k]);

  // SafeSteps assumes the worst case of 16 bytes per step. Real steps take far fewer, so the bound
  // is recomputed until it reaches zero.
  size_t total = 0;
  while (steps > 0) {
    for (size_t s = 0; s < steps; ++s) {
      for (int j = 0; j < P; ++j) {
        pair_state[j] = StepPair(pair_state[j], slots[2 * j], pair_offset[j], in[2 * j],
                                 in[2 * j + 1], out[2 * j], out[2 * j + 1]);
        out[2 * j] += kStates;
        out[2 * j + 1] += kStates;
      }
      for (int k = 0; k < S; ++k) {
        single_state[k] = StepSingle(single_state[k], slots[2 * P + k], in[2 * P + k], out[2 * P + k]);
        out[2 * P + k] += kStates;
      }
    }
    total += steps;
    steps = SIZE_MAX;
    for (int k = 0; k < kCount; ++k) {
      const size_t symbols_left = cursors[k]->n - cursors[k]->i - total * kStates;
      const auto bytes_left = static_cast<size_t>(cursors[k]->end - in[k]);
      steps = Min(steps, Min(symbols_left / kStates, bytes_left / 16));
    }
  }
  for (int k = 0; k < kCount; ++k) {
    cursors[k]->in = in[k];
    cursors[k]->i += total * kStates;
  }
  for (int j = 0; j < P; ++j) {
    StoreStates(_mm512_castsi512_si256(pair_state[j]), *cursors[2 * j]);
    StoreStates(_mm512_extracti64x4_epi64(pair_state[j], 1), *cursors[2 * j + 1]);
  }
  for (int k = 0; k < S; ++k) StoreStates(single_state[k], *cursors[2 * P + k]);
}

constexpr int kMaxPairs = kMaxInterleaveAvx512 / 2;
constexpr int kMaxSingles = 2;

// StepTogether<P, S> for a round of n_pairs <= kMaxPairs pairs and n_singles <= kMaxSingles
// singles.
void StepRound(int n_pairs, int n_singles, StreamCursor* const* cursors, const int32_t* offsets) {
  static_assert(kMaxPairs == 4 && kMaxSingles == 2, "the cases list zero to four pairs");
  switch (n_pairs * 4 + n_singles) {
    case 0 * 4 + 1: return StepTogether<0, 1>(cursors, offsets);
    case 0 * 4 + 2: return StepTogether<0, 2>(cursors, offsets);
    case 1 * 4 + 0: return StepTogether<1, 0>(cursors, offsets);
    case 1 * 4 + 1: return StepTogether<1, 1>(cursors, offsets);
    case 1 * 4 + 2: return StepTogether<1, 2>(cursors, offsets);
    case 2 * 4 + 0: return StepTogether<2, 0>(cursors, offsets);
    case 2 * 4 + 1: return StepTogether<2, 1>(cursors, offsets);
    case 2 * 4 + 2: return StepTogether<2, 2>(cursors, offsets);
    case 3 * 4 + 0: return StepTogether<3, 0>(cursors, offsets);
    case 3 * 4 + 1: return StepTogether<3, 1>(cursors, offsets);
    case 3 * 4 + 2: return StepTogether<3, 2>(cursors, offsets);
    case 4 * 4 + 0: return StepTogether<4, 0>(cursors, offsets);
    case 4 * 4 + 1: return StepTogether<4, 1>(cursors, offsets);
    default: return StepTogether<4, 2>(cursors, offsets);
  }
}

}  // namespace

void StepStreamsAvx512(StreamCursor* cursors, int count) {
  // The cursors that still have a safe step, in order. Each round pairs neighbours whose tables
  // one gather reaches and runs up to kMaxSingles others alone (any further ones wait for a later
  // round). A round ends when one of its cursors runs out, and that cursor is dropped, so every
  // round makes progress and removes at least one cursor.
  StreamCursor* active[kMaxInterleaveAvx512];
  int n_active = 0;
  for (int k = 0; k < count && k < kMaxInterleaveAvx512; ++k) {
    if (SafeSteps(cursors[k]) > 0) active[n_active++] = &cursors[k];
  }
  while (n_active > 0) {
    StreamCursor* order[2 * kMaxPairs + kMaxSingles];
    StreamCursor* single[kMaxSingles];
    int32_t offsets[kMaxPairs];
    int n_pairs = 0, n_singles = 0;
    for (int k = 0; k < n_active; ++k) {
      if (n_pairs < kMaxPairs && k + 1 < n_active &&
          TableOffset(*active[k], *active[k + 1], &offsets[n_pairs])) {
        order[2 * n_pairs] = active[k];
        order[2 * n_pairs + 1] = active[k + 1];
        ++n_pairs;
        ++k;
      } else if (n_singles < kMaxSingles) {
        single[n_singles++] = active[k];
      }
    }
    for (int k = 0; k < n_singles; ++k) order[2 * n_pairs + k] = single[k];
    StepRound(n_pairs, n_singles, order, offsets);
    int kept = 0;
    for (int k = 0; k < n_active; ++k) {
      if (SafeSteps(*active[k]) > 0) active[kept++] = active[k];
    }
    n_active = kept;
  }
}

}  // namespace sparkv::rans::internal_rans
