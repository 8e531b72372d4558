// Row conversions between cache rows (f32 or f16, possibly unaligned) and codec buffers, shared by
// the codecs. Scalar, through the reference conversions of common/f16.h.
// NOTE: f16 <-> f32 conversion dominates the f16 codec on f32 caches; an F16C path in a
// *_avx2.cc file with a run-time CPU check is the next step if the codec benchmark shows it.
#pragma once

#include <cstdint>
#include <cstring>

#include "common/f16.h"
#include "common/kv_slice.h"

namespace sparkv::internal {

// row: [n] elements of `elem`; out: [n] f32.
inline void RowToF32(KvElemType elem, const uint8_t* row, int64_t n, float* out) {
  if (elem == KvElemType::kF32) {
    std::memcpy(out, row, static_cast<size_t>(n) * sizeof(float));
    return;
  }
  for (int64_t i = 0; i < n; ++i) {
    uint16_t h;
    std::memcpy(&h, row + 2 * i, 2);
    out[i] = F16ToF32(h);
  }
}

// row: [n] elements of `elem`; out: [n] f16, little-endian bytes.
inline void RowToF16(KvElemType elem, const uint8_t* row, int64_t n, uint8_t* out) {
  if (elem == KvElemType::kF16) {
    std::memcpy(out, row, static_cast<size_t>(n) * 2);
    return;
  }
  for (int64_t i = 0; i < n; ++i) {
    float f;
    std::memcpy(&f, row + 4 * i, 4);
    const uint16_t h = F32ToF16(f);
    std::memcpy(out + 2 * i, &h, 2);
  }
}

// f16: [n] f16, little-endian bytes; row: [n] elements of `elem`.
inline void F16ToRow(const uint8_t* f16, int64_t n, KvElemType elem, uint8_t* row) {
  if (elem == KvElemType::kF16) {
    std::memcpy(row, f16, static_cast<size_t>(n) * 2);
    return;
  }
  for (int64_t i = 0; i < n; ++i) {
    uint16_t h;
    std::memcpy(&h, f16 + 2 * i, 2);
    const float f = F16ToF32(h);
    std::memcpy(row + 4 * i, &f, 4);
  }
}

// values: [n] f32; row: [n] elements of `elem` (f16 rounds to nearest even).
inline void F32ToRow(const float* values, int64_t n, KvElemType elem, uint8_t* row) {
  if (elem == KvElemType::kF32) {
    std::memcpy(row, values, static_cast<size_t>(n) * sizeof(float));
    return;
  }
  for (int64_t i = 0; i < n; ++i) {
    const uint16_t h = F32ToF16(values[i]);
    std::memcpy(row + 2 * i, &h, 2);
  }
}

}  // namespace sparkv::internal
