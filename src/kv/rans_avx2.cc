// The AVX2 rANS decoder: the eight states of a stream live in one register and step together,
// which is exactly the scalar decoder's order (symbol i on state i % 8, refills in ascending
// state order). Compiled with -mavx2; rans::Decode calls it only when the CPU has AVX2.
//
// One step of eight states is a long dependency chain (gather, multiply, compare, refill), and the
// next step of the same stream cannot start before it ends. DecodeStreamsAvx2 therefore steps up
// to kMaxInterleave independent streams in one loop, so that their chains overlap.
#include <immintrin.h>

#include <algorithm>
#include <array>
#include <cstring>
#include <vector>

#include "kv/rans.h"
#include "kv/rans_internal.h"

namespace sparkv::rans {
namespace {

static_assert(kStates == 8, "one AVX2 register holds the eight states");

// For each mask of states that need a word (bit k for state k), the index of the word each state
// takes among the next eight: the number of needing states before it, one u32 per state so that
// a single load gives the permutation. Entries of states that do not refill are unused.
struct RefillTable {
  alignas(32) std::array<std::array<uint32_t, 8>, 256> index{};
  constexpr RefillTable() {
    for (int mask = 0; mask < 256; ++mask) {
      uint32_t words_before = 0;
      for (int k = 0; k < 8; ++k) {
        index[mask][k] = words_before;
        words_before += (mask >> k) & 1;
      }
    }
  }
};
constexpr RefillTable kRefill;

// A stream being decoded: where its next word and next symbol go, and how far it may run.
struct Lane {
  const int* slots = nullptr;  // DecodeTable::slots()
  const uint8_t* in = nullptr;
  const uint8_t* end = nullptr;
  uint8_t* out = nullptr;  // symbol i of the stream
  size_t i = 0;            // symbols decoded so far
  size_t n = 0;            // symbols to decode
  __m256i state;
};

// Returns how many steps of eight symbols `lane` may still take without a bounds check. A step
// takes at most eight words (16 bytes), and its word load reads exactly 16 bytes.
inline size_t SafeSteps(const Lane& lane) {
  return std::min((lane.n - lane.i) / kStates, static_cast<size_t>(lane.end - lane.in) / 16);
}

// Decodes eight symbols into out[0, 8), refills the states that fell below 2^16 from `in`, and
// advances `in` past the words taken. Returns the new states.
inline __m256i Step(__m256i state, const int* slots, const uint8_t*& in, uint8_t* out) {
  const __m256i slot_mask = _mm256_set1_epi32(kRansTotal - 1);
  const __m256i field_mask = _mm256_set1_epi32(0xfff);
  const __m256i one = _mm256_set1_epi32(1);
  const __m256i zero = _mm256_setzero_si256();
  // Byte 0 of each 32-bit lane to the front of its 128-bit half.
  const __m256i first_bytes = _mm256_setr_epi8(0, 4, 8, 12, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1,
                                               -1, -1, 0, 4, 8, 12, -1, -1, -1, -1, -1, -1, -1,
                                               -1, -1, -1, -1, -1);

  const __m256i entry = _mm256_i32gather_epi32(slots, _mm256_and_si256(state, slot_mask), 4);
  const __m256i freq =
      _mm256_add_epi32(_mm256_and_si256(_mm256_srli_epi32(entry, 8), field_mask), one);
  const __m256i bias = _mm256_srli_epi32(entry, 20);
  state = _mm256_add_epi32(_mm256_mullo_epi32(freq, _mm256_srli_epi32(state, kScaleBits)), bias);

  const __m256i bytes = _mm256_shuffle_epi8(entry, first_bytes);
  const uint32_t low = static_cast<uint32_t>(_mm_cvtsi128_si32(_mm256_castsi256_si128(bytes)));
  const uint32_t high =
      static_cast<uint32_t>(_mm_cvtsi128_si32(_mm256_extracti128_si256(bytes, 1)));
  const uint64_t eight = static_cast<uint64_t>(high) << 32 | low;
  std::memcpy(out, &eight, 8);

  // States below 2^16 take the next words in ascending state order.
  const __m256i need = _mm256_cmpeq_epi32(_mm256_srli_epi32(state, 16), zero);
  const int mask = _mm256_movemask_ps(_mm256_castsi256_ps(need));
  const __m256i words =
      _mm256_cvtepu16_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(in)));
  const __m256i index =
      _mm256_load_si256(reinterpret_cast<const __m256i*>(kRefill.index[mask].data()));
  const __m256i refilled =
      _mm256_or_si256(_mm256_slli_epi32(state, 16), _mm256_permutevar8x32_epi32(words, index));
  in += 2 * __builtin_popcount(static_cast<unsigned>(mask));
  return _mm256_blendv_epi8(state, refilled, need);
}

// Steps the K lanes together until one of them has no safe step left. The fields are copied into
// locals because stores through `out` may alias any escaped memory and would force reloads.
template <int K>
void StepTogether(Lane* const* lanes) {
  std::array<const int*, K> slots;
  std::array<const uint8_t*, K> in;
  std::array<uint8_t*, K> out;
  __m256i state[K];
  size_t steps = SIZE_MAX;
  for (int k = 0; k < K; ++k) {
    slots[k] = lanes[k]->slots;
    in[k] = lanes[k]->in;
    out[k] = lanes[k]->out + lanes[k]->i;
    state[k] = lanes[k]->state;
    steps = std::min(steps, SafeSteps(*lanes[k]));
  }
  // SafeSteps assumes the worst case of 16 bytes per step. Real steps take far fewer, so the bound
  // is recomputed until it reaches zero.
  size_t total = 0;
  while (steps > 0) {
    for (size_t s = 0; s < steps; ++s) {
      for (int k = 0; k < K; ++k) {
        state[k] = Step(state[k], slots[k], in[k], out[k]);
        out[k] += kStates;
      }
    }
    total += steps;
    steps = SIZE_MAX;
    for (int k = 0; k < K; ++k) {
      const size_t symbols_left = lanes[k]->n - lanes[k]->i - total * kStates;
      const auto bytes_left = static_cast<size_t>(lanes[k]->end - in[k]);
      steps = std::min({steps, symbols_left / kStates, bytes_left / 16});
    }
  }
  for (int k = 0; k < K; ++k) {
    lanes[k]->in = in[k];
    lanes[k]->i += total * kStates;
    lanes[k]->state = state[k];
  }
}

// Runs the lanes in `active` together, dropping each one as it runs out of safe steps.
void StepAll(std::vector<Lane*> active) {
  static_assert(kMaxInterleave == 2, "StepAll dispatches one or two lanes");
  while (!active.empty()) {
    if (active.size() == 2) {
      StepTogether<2>(active.data());
    } else {
      StepTogether<1>(active.data());
    }
    std::erase_if(active, [](const Lane* lane) { return SafeSteps(*lane) == 0; });
  }
}

}  // namespace

void DecodeStreamsAvx2(std::span<const StreamJob> jobs, std::span<Status> statuses) {
  for (size_t begin = 0; begin < jobs.size(); begin += kMaxInterleave) {
    const size_t count = std::min<size_t>(kMaxInterleave, jobs.size() - begin);
    std::array<Lane, kMaxInterleave> lanes;
    std::vector<Lane*> active;
    for (size_t k = 0; k < count; ++k) {
      const StreamJob& job = jobs[begin + k];
      std::array<uint32_t, kStates> x;
      statuses[begin + k] = internal_rans::ReadStates(job.stream, job.label, x);
      if (!statuses[begin + k].ok()) continue;
      Lane& lane = lanes[k];
      lane.slots = reinterpret_cast<const int*>(job.table->slots());
      lane.in = job.stream.data() + kStreamHeaderBytes;
      lane.end = job.stream.data() + job.stream.size();
      lane.out = job.symbols.data();
      lane.n = job.symbols.size();
      lane.state = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(x.data()));
      active.push_back(&lane);
    }
    StepAll(active);
    for (size_t k = 0; k < count; ++k) {
      if (!statuses[begin + k].ok()) continue;
      const StreamJob& job = jobs[begin + k];
      const Lane& lane = lanes[k];
      std::array<uint32_t, kStates> x;
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(x.data()), lane.state);
      statuses[begin + k] = internal_rans::DecodeTail(lane.in, lane.end, job.stream.size(),
                                                      job.table->slots(), x, lane.i, job.symbols,
                                                      job.label);
    }
  }
}

Status DecodeAvx2(std::span<const uint8_t> stream, const DecodeTable& table,
                  std::span<uint8_t> symbols, std::string_view label) {
  const StreamJob job{stream, &table, symbols, label};
  Status status;
  DecodeStreamsAvx2(std::span(&job, 1), std::span(&status, 1));
  return status;
}

}  // namespace sparkv::rans
