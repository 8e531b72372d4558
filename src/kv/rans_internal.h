// Pieces shared by the scalar decoder (rans.cc) and the AVX2 one (rans_avx2.cc). Codecs use
// rans.h instead.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>

#include "kv/rans.h"

namespace sparkv::rans::internal_rans {

// Checks the state header of `stream` and loads the start states into x.
Status ReadStates(std::span<const uint8_t> stream, std::string_view label,
                  std::array<uint32_t, kStates>& x);

// Decodes symbols [i, n) one at a time with a bounds check before every word, reading from `in`
// up to `end`, the end of a stream of stream_size bytes. Then checks that the stream is used up
// and every state is back at kRansLow. Both decoders finish with it.
Status DecodeTail(const uint8_t* in, const uint8_t* end, size_t stream_size, const uint32_t* slots,
                  std::array<uint32_t, kStates>& x, size_t i, std::span<uint8_t> symbols,
                  std::string_view label);

// A stream in the middle of decoding, for the AVX-512 decoder: plain data, so that
// rans_avx512.cc needs nothing from other files but intrinsics.
struct StreamCursor {
  const uint32_t* slots = nullptr;  // DecodeTable::slots()
  const uint8_t* in = nullptr;      // the next word
  const uint8_t* end = nullptr;     // the end of the stream
  uint8_t* out = nullptr;           // symbol 0 of the stream
  size_t i = 0;                     // symbols decoded so far
  size_t n = 0;                     // symbols to decode
  uint32_t x[kStates] = {};         // the states
};

// Decodes cursors[0, count) (count <= kMaxInterleaveAvx512) together, eight symbols per stream
// and step, as long as a step cannot pass the end of a stream or of its symbols. Leaves each
// cursor where DecodeTail continues it. REQUIRES HasAvx512Decoder(). Defined in rans_avx512.cc.
void StepStreamsAvx512(StreamCursor* cursors, int count);

}  // namespace sparkv::rans::internal_rans
