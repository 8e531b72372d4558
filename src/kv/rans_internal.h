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

}  // namespace sparkv::rans::internal_rans
