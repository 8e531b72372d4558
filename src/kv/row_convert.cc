#include "kv/row_convert.h"

#include "common/cpu.h"
#include "common/f16.h"

namespace sparkv::internal {

// Defined in row_convert_avx2.cc, compiled with -mf16c; call only when the CPU has F16C and AVX.
void ConvertF16ToF32F16c(const uint8_t* f16, int64_t n, uint8_t* f32);
void ConvertF32ToF16F16c(const uint8_t* f32, int64_t n, uint8_t* f16);
// Likewise, with lo and step already in f32 ([width] each). Call only when HasAvx2().
void DequantizeRowsAvx2(const uint8_t* levels, const float* lo, const float* step, int64_t width,
                        int64_t n_tokens, KvElemType elem, uint8_t* out, int64_t row_bytes);
// Likewise, for AddLevelRows. Call only when HasAvx2().
uint16_t AddLevelRowsAvx2(const uint8_t* symbols, int64_t n, int64_t n_rows,
                          const uint8_t* reference, uint16_t offset, uint8_t* out,
                          int64_t out_stride);
// Likewise, for JoinF16Planes. Call only when HasAvx2().
void JoinF16PlanesAvx2(const uint8_t* low, const uint8_t* high, int64_t n, KvElemType elem,
                       uint8_t* row);


bool HasAvx2() { return CpuHasAvx2(); }

bool HasF16cConversion() { return CpuHasF16c(); }

void ConvertF16ToF32Scalar(const uint8_t* f16, int64_t n, uint8_t* f32) {
  for (int64_t i = 0; i < n; ++i) {
    uint16_t h;
    std::memcpy(&h, f16 + 2 * i, 2);
    const float f = F16ToF32(h);
    std::memcpy(f32 + 4 * i, &f, 4);
  }
}

void ConvertF32ToF16Scalar(const uint8_t* f32, int64_t n, uint8_t* f16) {
  for (int64_t i = 0; i < n; ++i) {
    float f;
    std::memcpy(&f, f32 + 4 * i, 4);
    const uint16_t h = F32ToF16(f);
    std::memcpy(f16 + 2 * i, &h, 2);
  }
}

void ConvertF16ToF32(const uint8_t* f16, int64_t n, uint8_t* f32) {
  if (HasF16cConversion()) {
    ConvertF16ToF32F16c(f16, n, f32);
  } else {
    ConvertF16ToF32Scalar(f16, n, f32);
  }
}

void ConvertF32ToF16(const uint8_t* f32, int64_t n, uint8_t* f16) {
  if (HasF16cConversion()) {
    ConvertF32ToF16F16c(f32, n, f16);
  } else {
    ConvertF32ToF16Scalar(f32, n, f16);
  }
}

}  // namespace sparkv::internal

namespace sparkv::internal {
namespace {

// params: lo [width] f16 then step [width] f16; lo and step: [width] f32 each.
void ParamsToF32(const uint8_t* params, int64_t width, float* lo, float* step) {
  for (int64_t c = 0; c < width; ++c) {
    uint16_t h;
    std::memcpy(&h, params + 2 * c, 2);
    lo[c] = F16ToF32(h);
    std::memcpy(&h, params + 2 * (width + c), 2);
    step[c] = F16ToF32(h);
  }
}

}  // namespace

void DequantizeRowsScalar(const uint8_t* levels, const uint8_t* params, int64_t width,
                          int64_t n_tokens, KvElemType elem, uint8_t* out, int64_t row_bytes) {
  std::vector<float> lo(width), step(width), row(width);  // [width] f32
  ParamsToF32(params, width, lo.data(), step.data());
  auto* row_bytes_f32 = reinterpret_cast<uint8_t*>(row.data());
  for (int64_t t = 0; t < n_tokens; ++t) {
    const uint8_t* q = levels + t * width;
    for (int64_t c = 0; c < width; ++c) row[c] = lo[c] + static_cast<float>(q[c]) * step[c];
    if (elem == KvElemType::kF32) {
      std::memcpy(out + t * row_bytes, row_bytes_f32, static_cast<size_t>(width) * 4);
    } else {
      ConvertF32ToF16Scalar(row_bytes_f32, width, out + t * row_bytes);
    }
  }
}

void DequantizeRows(const uint8_t* levels, const uint8_t* params, int64_t width, int64_t n_tokens,
                    KvElemType elem, uint8_t* out, int64_t row_bytes) {
  if (!HasAvx2()) {
    DequantizeRowsScalar(levels, params, width, n_tokens, elem, out, row_bytes);
    return;
  }
  std::vector<float> lo(width), step(width);  // [width] f32
  ParamsToF32(params, width, lo.data(), step.data());
  DequantizeRowsAvx2(levels, lo.data(), step.data(), width, n_tokens, elem, out, row_bytes);
}

uint16_t AddLevelRowsScalar(const uint8_t* symbols, int64_t n, int64_t n_rows,
                            const uint8_t* reference, uint16_t offset, uint8_t* out,
                            int64_t out_stride) {
  // In 16 bits, which vectorize twice as wide as int.
  uint16_t seen = 0;
  for (int64_t t = 0; t < n_rows; ++t) {
    for (int64_t c = 0; c < n; ++c) {
      const auto q = static_cast<uint16_t>(symbols[t * n + c] + reference[c] - offset);
      seen |= q;
      out[t * out_stride + c] = static_cast<uint8_t>(q);
    }
  }
  return seen;
}

uint16_t AddLevelRows(const uint8_t* symbols, int64_t n, int64_t n_rows, const uint8_t* reference,
                      uint16_t offset, uint8_t* out, int64_t out_stride) {
  if (HasAvx2()) return AddLevelRowsAvx2(symbols, n, n_rows, reference, offset, out, out_stride);
  return AddLevelRowsScalar(symbols, n, n_rows, reference, offset, out, out_stride);
}

void JoinF16PlanesScalar(const uint8_t* low, const uint8_t* high, int64_t n, KvElemType elem,
                         uint8_t* row) {
  for (int64_t i = 0; i < n; ++i) {
    const auto h = static_cast<uint16_t>(high[i] << 8 | low[i]);
    if (elem == KvElemType::kF16) {
      std::memcpy(row + 2 * i, &h, 2);
    } else {
      const float f = F16ToF32(h);
      std::memcpy(row + 4 * i, &f, 4);
    }
  }
}

void JoinF16Planes(const uint8_t* low, const uint8_t* high, int64_t n, KvElemType elem,
                   uint8_t* row) {
  if (HasAvx2()) {
    JoinF16PlanesAvx2(low, high, n, elem, row);
  } else {
    JoinF16PlanesScalar(low, high, n, elem, row);
  }
}

}  // namespace sparkv::internal
