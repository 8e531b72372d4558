// Bulk f16 <-> f32 conversion for the codecs, and row copies between cache rows (f32 or f16,
// possibly unaligned) and codec buffers. Every pointer is a byte pointer because cache rows and
// payload offsets need not be aligned to their element size.
#pragma once

#include <cstdint>
#include <cstring>
#include <vector>

#include "common/kv_slice.h"

namespace sparkv::internal {

// f16: [n] binary16; f32: [n] float. Both little-endian bytes. Uses F16C when the CPU has it,
// otherwise the scalar reference; both round to nearest even and agree on every non-NaN value.
void ConvertF16ToF32(const uint8_t* f16, int64_t n, uint8_t* f32);
void ConvertF32ToF16(const uint8_t* f32, int64_t n, uint8_t* f16);

// The scalar references, through common/f16.h.
void ConvertF16ToF32Scalar(const uint8_t* f16, int64_t n, uint8_t* f32);
void ConvertF32ToF16Scalar(const uint8_t* f32, int64_t n, uint8_t* f16);

// True when ConvertF16ToF32 and ConvertF32ToF16 use F16C on this CPU.
bool HasF16cConversion();

// True when the CPU has AVX2, FMA and F16C and the OS saves YMM state: what *_avx2.cc files
// are compiled for.
bool HasAvx2();

// row: [n] elements of `elem`; out: [n] f32.
inline void RowToF32(KvElemType elem, const uint8_t* row, int64_t n, float* out) {
  auto* out_bytes = reinterpret_cast<uint8_t*>(out);
  if (elem == KvElemType::kF32) {
    std::memcpy(out_bytes, row, static_cast<size_t>(n) * sizeof(float));
  } else {
    ConvertF16ToF32(row, n, out_bytes);
  }
}

// row: [n] elements of `elem`; out: [n] f16 bytes.
inline void RowToF16(KvElemType elem, const uint8_t* row, int64_t n, uint8_t* out) {
  if (elem == KvElemType::kF16) {
    std::memcpy(out, row, static_cast<size_t>(n) * 2);
  } else {
    ConvertF32ToF16(row, n, out);
  }
}

// f16: [n] f16 bytes; row: [n] elements of `elem`.
inline void F16ToRow(const uint8_t* f16, int64_t n, KvElemType elem, uint8_t* row) {
  if (elem == KvElemType::kF16) {
    std::memcpy(row, f16, static_cast<size_t>(n) * 2);
  } else {
    ConvertF16ToF32(f16, n, row);
  }
}

// Reconstructs rows of min-step levels (kv/quantize.h) straight into cache rows.
// levels: [n_tokens][width] u8. params: lo [width] f16 then step [width] f16, little-endian bytes.
// Row t goes to out + t * row_bytes as [width] elements of `elem`. Element (t, c) is
// lo[c] + levels[t][c] * step[c] in f32, a product then a sum (no fused multiply-add), then
// rounded to nearest even for an f16 cache. Uses AVX2 when the CPU has it; the scalar reference
// gives the same bytes.
void DequantizeRows(const uint8_t* levels, const uint8_t* params, int64_t width, int64_t n_tokens,
                    KvElemType elem, uint8_t* out, int64_t row_bytes);
void DequantizeRowsScalar(const uint8_t* levels, const uint8_t* params, int64_t width,
                          int64_t n_tokens, KvElemType elem, uint8_t* out, int64_t row_bytes);

// Joins f16 values split into byte planes and writes them as cache elements: element i is the
// f16 high[i] << 8 | low[i]. low, high: [n] bytes; row: [n] elements of `elem`. Uses AVX2 when
// the CPU has it; the scalar reference gives the same bytes.
void JoinF16Planes(const uint8_t* low, const uint8_t* high, int64_t n, KvElemType elem,
                   uint8_t* row);
void JoinF16PlanesScalar(const uint8_t* low, const uint8_t* high, int64_t n, KvElemType elem,
                         uint8_t* row);

// Turns rows of ans symbols into levels against one reference row: out[t * out_stride + c] is
// the low byte of the 16-bit sum symbols[t * n + c] + reference[c] - offset. Returns the OR of
// all sums, so the caller checks the range of every row at once. symbols: [n_rows][n] bytes.
// reference: [n] bytes, possibly a row of `out` that this call does not write. Uses AVX2 when
// the CPU has it; the scalar reference gives the same bytes and result.
uint16_t AddLevelRows(const uint8_t* symbols, int64_t n, int64_t n_rows, const uint8_t* reference,
                      uint16_t offset, uint8_t* out, int64_t out_stride);
uint16_t AddLevelRowsScalar(const uint8_t* symbols, int64_t n, int64_t n_rows,
                            const uint8_t* reference, uint16_t offset, uint8_t* out,
                            int64_t out_stride);

// values: [n] f32; row: [n] elements of `elem` (f16 rounds to nearest even).
inline void F32ToRow(const float* values, int64_t n, KvElemType elem, uint8_t* row) {
  const auto* value_bytes = reinterpret_cast<const uint8_t*>(values);
  if (elem == KvElemType::kF32) {
    std::memcpy(row, value_bytes, static_cast<size_t>(n) * sizeof(float));
  } else {
    ConvertF32ToF16(value_bytes, n, row);
  }
}

}  // namespace sparkv::internal
