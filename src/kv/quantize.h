// Asymmetric uniform quantization shared by q4 and the ans family: a group of values is stored as
// an f16 minimum `lo`, an f16 `step` and integers q in [0, n_levels - 1]; q decodes to lo + q * step.
//
// The encoder rounds lo down to an f16 (lo <= min) and step up to the smallest f16 with
// lo + (n_levels - 1) * step >= max, so every value of the group lies within step / 2 of a level:
// the error bound per element is step / 2 plus f32 rounding of the product.
#pragma once

#include <algorithm>
#include <cstdint>
#include <cstring>

#include "common/f16.h"

namespace sparkv::internal {

inline constexpr uint16_t kF16Infinity = 0x7c00;

struct MinStep {
  uint16_t lo = 0;    // f16 bits, finite
  uint16_t step = 0;  // f16 bits, finite and non-negative
};

// The f16 nearest to `value` from below; >= kF16Infinity in magnitude bits when there is none.
inline uint16_t F16AtOrBelow(float value) {
  uint16_t h = F32ToF16(value);
  if (F16ToF32(h) > value) {
    if (h == 0) return 0x8001;          // smallest negative subnormal
    if (h == 0x8000) return 0x8001;
    h = (h & 0x8000) ? static_cast<uint16_t>(h + 1) : static_cast<uint16_t>(h - 1);
  }
  return h;
}

// Picks lo and step for values in [min, max] with n_levels levels. False when min or max is not
// finite or the group does not fit the f16 range.
inline bool ChooseMinStep(float min, float max, int n_levels, MinStep* out) {
  if (!(min >= -65504.0f && max <= 65504.0f && min <= max)) return false;  // also rejects NaN
  const uint16_t lo = F16AtOrBelow(min);
  if ((lo & 0x7fff) >= kF16Infinity) return false;

  // In double, max - lo and the division are exact enough that the rounded-up f16 step really
  // reaches max: the f16 step then carries the only rounding, and it rounds up.
  const double minimum_step = (static_cast<double>(max) - F16ToF32(lo)) / (n_levels - 1);
  uint16_t step = F32ToF16(static_cast<float>(minimum_step));
  while (F16ToF32(step) < minimum_step) ++step;  // positive f16 bit patterns increase with value
  if (step >= kF16Infinity) return false;
  *out = MinStep{lo, step};
  return true;
}

// The level of `value`: round((value - lo) / step), clamped to [0, n_levels - 1]. `inverse` is
// 1 / step, or 0 for a zero step.
inline int QuantizeLevel(float value, float lo, float inverse, int n_levels) {
  // Adding and subtracting 1.5 * 2^23 rounds to the nearest integer, ties to even, without a
  // library call, for |x| < 2^22; larger values are clamped anyway.
  constexpr float kRound = 12582912.0f;
  const float x = std::clamp((value - lo) * inverse, 0.0f, static_cast<float>(n_levels - 1));
  return static_cast<int>((x + kRound) - kRound);
}

// Reads a little-endian u16 at p.
inline uint16_t LoadU16(const uint8_t* p) {
  uint16_t v;
  std::memcpy(&v, p, 2);
  return v;
}

inline void StoreU16(uint8_t* p, uint16_t v) { std::memcpy(p, &v, 2); }

}  // namespace sparkv::internal
