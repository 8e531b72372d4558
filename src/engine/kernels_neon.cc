// NEON kernels for aarch64, built only for aarch64 targets (cmake/Module.cmake). Advanced SIMD and
// the f16 <-> f32 conversions are in every aarch64 CPU, so this file needs no -march flag.
//
// The one optional extension used is the ARMv8.2 dot product (SDOT, vdotq_s32) in the quantized
// matrix products. kernels_neon_quant.inc is compiled twice below: once with widening multiplies
// for every CPU, and once under a dotprod target pragma. NeonTable() returns the second only when
// AT_HWCAP reports HWCAP_ASIMDDP. Everything is in an anonymous namespace, so no code built for
// dotprod can be shared with a caller in another file.
//
// Every KernelTable entry has a NEON version here, and none falls back to the scalar table.
// NOTE: these kernels have only run under qemu-aarch64. The tile shapes and the panel size are
// reasoned from register counts and common L2 sizes, not measured on an Arm core.
#include <arm_neon.h>
#include <sys/auxv.h>

#include <cstring>

#include "engine/kernels.h"

namespace sparkv::kernels {
namespace {

// Fully unrolls a loop over a tile's rows or tokens, so the accumulator arrays stay in registers.
#define SPARKV_UNROLL _Pragma("GCC unroll 16")

inline int64_t Min(int64_t a, int64_t b) { return a < b ? a : b; }
inline int64_t Max(int64_t a, int64_t b) { return a > b ? a : b; }

inline uint16_t LoadU16(const uint8_t* p) {
  uint16_t v;
  std::memcpy(&v, p, 2);
  return v;
}

// Converts one f16 value to f32 with the instruction the vector code uses (FCVTL, exact).
inline float HalfToFloat(uint16_t h) { return vgetq_lane_f32(vcvt_f32_f16(vreinterpret_f16_u16(vdup_n_u16(h))), 0); }

// Loads four f16 values from p (any 2-byte alignment) as f32.
inline float32x4_t LoadHalf4(const uint16_t* p) { return vcvt_f32_f16(vreinterpret_f16_u16(vld1_u16(p))); }

// Computes exp(x) for x in [-86, 88] within the 1e-5 relative bound that engine_kernels_test
// checks against std::exp, after clamping x to that range. It splits x = n ln2 + r with
// |r| <= ln2/2 (ln2 as a high part exact in 9 bits plus a low part). e^r comes from a degree-7
// Taylor polynomial (truncation below 8e-9 relative), and 2^n is added into the exponent field,
// which stays normal for n in [-124, 127].
inline float32x4_t Exp(float32x4_t x) {
  x = vminq_f32(vmaxq_f32(x, vdupq_n_f32(-86.0f)), vdupq_n_f32(88.0f));
  const float32x4_t n = vrndnq_f32(vmulq_n_f32(x, 1.44269504088896341f));
  float32x4_t r = vfmsq_n_f32(x, n, 0.693359375f);
  r = vfmsq_n_f32(r, n, -2.12194440e-4f);
  float32x4_t p = vdupq_n_f32(1.0f / 5040.0f);
  p = vfmaq_f32(vdupq_n_f32(1.0f / 720.0f), p, r);
  p = vfmaq_f32(vdupq_n_f32(1.0f / 120.0f), p, r);
  p = vfmaq_f32(vdupq_n_f32(1.0f / 24.0f), p, r);
  p = vfmaq_f32(vdupq_n_f32(1.0f / 6.0f), p, r);
  p = vfmaq_f32(vdupq_n_f32(0.5f), p, r);
  p = vfmaq_f32(vdupq_n_f32(1.0f), p, r);
  p = vfmaq_f32(vdupq_n_f32(1.0f), p, r);
  const int32x4_t exponent = vshlq_n_s32(vcvtq_s32_f32(n), 23);
  return vreinterpretq_f32_s32(vaddq_s32(vreinterpretq_s32_f32(p), exponent));
}

// Computes exp of one value through the vector code, so tails match the vector body.
inline float ExpOne(float x) { return vgetq_lane_f32(Exp(vdupq_n_f32(x)), 0); }

// ---- Tiling shared by every matrix product ----

// Byte cap on the activation rows of one token panel. Every 4-row weight block of the range
// passes over the panel, so weights leave memory once per panel while activations come from L2.
// 128 KiB leaves room in the private L2 of Cortex-A76 and later big cores (256 KiB to 1 MiB).
constexpr int64_t kPanelBytes = 128 * 1024;

// Returns the tokens per panel: a multiple of `tile`, at least one tile.
inline int64_t PanelTokens(const MatMulArgs& a, int64_t tile) {
  const int64_t row_bytes = Max(1, static_cast<int64_t>(a.x_row_bytes));
  return Max(tile, kPanelBytes / row_bytes / tile * tile);
}

// Runs tokens [t, t_end) of one row block: full TB tiles, then the tail with one smaller tile.
template <template <int, int> class Tile, int RB, int TB>
inline void RunTokens(const MatMulArgs& a, int64_t r, int64_t t, int64_t t_end) {
  for (; t + TB <= t_end; t += TB) Tile<RB, TB>::Run(a, r, t);
  if constexpr (TB > 1) {
    if (t < t_end) RunTokens<Tile, RB, TB - 1>(a, r, t, t_end);
  }
}

// Walks the token panels. Inside one, rows go in blocks of 4, and each block takes every token of
// the panel, TB at a time. Rows left over go one at a time.
template <template <int, int> class Tile, int TB>
void MatMulTiled(const MatMulArgs& a) {
  const int64_t panel = PanelTokens(a, TB);
  for (int64_t p0 = 0; p0 < a.n_tokens; p0 += panel) {
    const int64_t p1 = Min(a.n_tokens, p0 + panel);
    int64_t r = a.row_begin;
    for (; r + 4 <= a.row_end; r += 4) RunTokens<Tile, 4, TB>(a, r, p0, p1);
    for (; r < a.row_end; ++r) RunTokens<Tile, 1, TB>(a, r, p0, p1);
  }
}

// ---- Matrix products over float-like weights ----

struct LoadF32 {
  static float32x4_t Vec(const uint8_t* w, int64_t i) { return vld1q_f32(reinterpret_cast<const float*>(w) + i); }
  static float One(const uint8_t* w, int64_t i) {
    float v;
    std::memcpy(&v, w + 4 * i, 4);
    return v;
  }
};

struct LoadF16 {
  static float32x4_t Vec(const uint8_t* w, int64_t i) { return LoadHalf4(reinterpret_cast<const uint16_t*>(w) + i); }
  static float One(const uint8_t* w, int64_t i) { return HalfToFloat(LoadU16(w + 2 * i)); }
};

// bf16 is the top half of an f32: widen each value by 16 bits to the left.
struct LoadBf16 {
  static float32x4_t Vec(const uint8_t* w, int64_t i) {
    return vreinterpretq_f32_u32(vshll_n_u16(vld1_u16(reinterpret_cast<const uint16_t*>(w) + i), 16));
  }
  static float One(const uint8_t* w, int64_t i) {
    const uint32_t bits = static_cast<uint32_t>(LoadU16(w + 2 * i)) << 16;
    float v;
    std::memcpy(&v, &bits, 4);
    return v;
  }
};

// Computes RB weight rows x TB tokens, 4 inputs per step. Each weight vector is loaded (and
// converted) once for TB tokens, and each activation vector once for RB rows.
template <typename Load, int RB, int TB>
inline void TileFloat(const MatMulArgs& a, int64_t r0, int64_t t0) {
  const uint8_t* w[RB];
  const float* x[TB];
  SPARKV_UNROLL
  for (int r = 0; r < RB; ++r) w[r] = a.w + (r0 + r) * a.w_row_bytes;
  SPARKV_UNROLL
  for (int t = 0; t < TB; ++t) {
    x[t] = reinterpret_cast<const float*>(static_cast<const uint8_t*>(a.x) + (t0 + t) * a.x_row_bytes);
  }

  float32x4_t acc[RB][TB];
  SPARKV_UNROLL
  for (int r = 0; r < RB; ++r) {
    SPARKV_UNROLL
    for (int t = 0; t < TB; ++t) acc[r][t] = vdupq_n_f32(0.0f);
  }

  const int64_t n_vec = a.n_in & ~int64_t{3};
  for (int64_t i = 0; i < n_vec; i += 4) {
    float32x4_t xv[TB];
    SPARKV_UNROLL
    for (int t = 0; t < TB; ++t) xv[t] = vld1q_f32(x[t] + i);
    SPARKV_UNROLL
    for (int r = 0; r < RB; ++r) {
      const float32x4_t wv = Load::Vec(w[r], i);
      SPARKV_UNROLL
      for (int t = 0; t < TB; ++t) acc[r][t] = vfmaq_f32(acc[r][t], wv, xv[t]);
    }
  }

  SPARKV_UNROLL
  for (int r = 0; r < RB; ++r) {
    SPARKV_UNROLL
    for (int t = 0; t < TB; ++t) {
      float sum = vaddvq_f32(acc[r][t]);
      for (int64_t i = n_vec; i < a.n_in; ++i) sum += Load::One(w[r], i) * x[t][i];
      a.y[(t0 + t) * a.ldy + r0 + r] = sum;
    }
  }
}

template <int RB, int TB>
struct TileF32 {
  static void Run(const MatMulArgs& a, int64_t r, int64_t t) { TileFloat<LoadF32, RB, TB>(a, r, t); }
};
template <int RB, int TB>
struct TileF16 {
  static void Run(const MatMulArgs& a, int64_t r, int64_t t) { TileFloat<LoadF16, RB, TB>(a, r, t); }
};
template <int RB, int TB>
struct TileBf16 {
  static void Run(const MatMulArgs& a, int64_t r, int64_t t) { TileFloat<LoadBf16, RB, TB>(a, r, t); }
};

// 4 rows x 4 tokens: 16 accumulators, 4 activation and 1 weight register of the 32.
constexpr int kFloatTokens = 4;

void MatMulF32(const MatMulArgs& a) { MatMulTiled<TileF32, kFloatTokens>(a); }
void MatMulF16(const MatMulArgs& a) { MatMulTiled<TileF16, kFloatTokens>(a); }
void MatMulBf16(const MatMulArgs& a) { MatMulTiled<TileBf16, kFloatTokens>(a); }

// ---- Quantized weight blocks ----

// One 32-input block of a weight row as int8 codes: lo contains inputs 0-15, hi inputs 16-31. Its
// product with an activation block is scale * sum(code * xq) - min_scale * sum(xq), where for
// kTwoScales formats each 16-input half's sum is first multiplied by its integer mult_lo/mult_hi.
// Decoding happens once per row and block and serves every token of a tile.
struct DecodedBlock {
  int8x16_t lo;
  int8x16_t hi;
  float scale;
  float min_scale;
  int32_t mult_lo;
  int32_t mult_hi;
};

struct DecodeQ8_0 {
  static constexpr bool kTwoScales = false;
  static constexpr bool kHasMin = false;
  static DecodedBlock Run(const uint8_t* w, int64_t b) {
    const uint8_t* block = w + b * kQ8_0BlockBytes;
    const auto* qs = reinterpret_cast<const int8_t*>(block + 2);
    return {vld1q_s8(qs), vld1q_s8(qs + 16), HalfToFloat(LoadU16(block)), 0.0f, 0, 0};
  }
};

// Byte i contains input i in its low nibble and input i + 16 in its high one, each meaning
// nibble - 8.
struct DecodeQ4_0 {
  static constexpr bool kTwoScales = false;
  static constexpr bool kHasMin = false;
  static DecodedBlock Run(const uint8_t* w, int64_t b) {
    const uint8_t* block = w + b * kQ4_0BlockBytes;
    const uint8x16_t bytes = vld1q_u8(block + 2);
    const int8x16_t eight = vdupq_n_s8(8);
    const int8x16_t lo = vsubq_s8(vreinterpretq_s8_u8(vandq_u8(bytes, vdupq_n_u8(0x0F))), eight);
    const int8x16_t hi = vsubq_s8(vreinterpretq_s8_u8(vshrq_n_u8(bytes, 4)), eight);
    return {lo, hi, HalfToFloat(LoadU16(block)), 0.0f, 0, 0};
  }
};

// Sub-block j of a Q4_K super-block, with the (scale, min) unpacking of Q4KScaleMin (which the
// tests pin to the reference) inlined: it runs once per row and block.
struct DecodeQ4_K {
  static constexpr bool kTwoScales = false;
  static constexpr bool kHasMin = true;
  static DecodedBlock Run(const uint8_t* w, int64_t b) {
    const int64_t super = b / (kQKBlockSize / kQ8BlockSize);
    const int j = static_cast<int>(b % (kQKBlockSize / kQ8BlockSize));
    const uint8_t* block = w + super * kQ4_KBlockBytes;
    const uint8_t* scales = block + 4;
    int scale, min;
    if (j < 4) {
      scale = scales[j] & 63;
      min = scales[j + 4] & 63;
    } else {
      scale = (scales[j + 4] & 0xF) | ((scales[j - 4] >> 6) << 4);
      min = (scales[j + 4] >> 4) | ((scales[j] >> 6) << 4);
    }
    const uint8_t* qs = block + 16 + 32 * (j / 2);
    uint8x16_t lo = vld1q_u8(qs);
    uint8x16_t hi = vld1q_u8(qs + 16);
    if (j % 2 == 0) {
      lo = vandq_u8(lo, vdupq_n_u8(0x0F));
      hi = vandq_u8(hi, vdupq_n_u8(0x0F));
    } else {
      lo = vshrq_n_u8(lo, 4);
      hi = vshrq_n_u8(hi, 4);
    }
    const float d = HalfToFloat(LoadU16(block));
    const float dmin = HalfToFloat(LoadU16(block + 2));
    return {vreinterpretq_s8_u8(lo), vreinterpretq_s8_u8(hi), d * static_cast<float>(scale),
            dmin * static_cast<float>(min), 0, 0};
  }
};

// 32-input block k of a Q6_K super-block is quarter k % 4 of half k / 4: 4 bits from ql (low or
// high nibbles), 2 bits from qh, minus 32, and one int8 scale per 16 inputs.
struct DecodeQ6_K {
  static constexpr bool kTwoScales = true;
  static constexpr bool kHasMin = false;
  static DecodedBlock Run(const uint8_t* w, int64_t b) {
    const int64_t super = b / (kQKBlockSize / kQ8BlockSize);
    const int k = static_cast<int>(b % (kQKBlockSize / kQ8BlockSize));
    const int half = k / 4;
    const int quarter = k % 4;
    const uint8_t* block = w + super * kQ6_KBlockBytes;
    const uint8_t* ql = block + 64 * half + 32 * (quarter % 2);
    const uint8_t* qh = block + 128 + 32 * half;
    const auto* scales = reinterpret_cast<const int8_t*>(block + 192) + 8 * half + 2 * quarter;
    // Shifts by a run-time count: vshlq_u8 by a negative count shifts right.
    const int8x16_t low_shift = vdupq_n_s8(static_cast<int8_t>(-4 * (quarter / 2)));
    const int8x16_t high_shift = vdupq_n_s8(static_cast<int8_t>(-2 * quarter));
    const uint8x16_t mask4 = vdupq_n_u8(0x0F);
    const uint8x16_t mask2 = vdupq_n_u8(3);
    const int8x16_t bias = vdupq_n_s8(32);
    int8x16_t codes[2];
    for (int part = 0; part < 2; ++part) {
      const uint8x16_t low = vandq_u8(vshlq_u8(vld1q_u8(ql + 16 * part), low_shift), mask4);
      const uint8x16_t high = vandq_u8(vshlq_u8(vld1q_u8(qh + 16 * part), high_shift), mask2);
      codes[part] = vsubq_s8(vreinterpretq_s8_u8(vorrq_u8(low, vshlq_n_u8(high, 4))), bias);
    }
    return {codes[0], codes[1], HalfToFloat(LoadU16(block + 208)), 0.0f, scales[0], scales[1]};
  }
};

// ---- Quantized products: widening multiplies, for every aarch64 CPU ----

namespace widening {

// SMULL/SMULL2 give int16 products (at most 128 * 127 in magnitude: no overflow), and SADALP adds
// their neighbouring pairs into the int32 lanes.
inline int32x4_t Dot16(int32x4_t acc, int8x16_t a, int8x16_t b) {
  acc = vpadalq_s16(acc, vmull_s8(vget_low_s8(a), vget_low_s8(b)));
  return vpadalq_s16(acc, vmull_high_s8(a, b));
}

#include "engine/kernels_neon_quant.inc"

}  // namespace widening

// ---- Quantized products: SDOT, for CPUs with the dot product extension ----

#pragma GCC push_options
#pragma GCC target("arch=armv8.2-a+dotprod")
namespace dotprod {

// SDOT adds the four products of each group of 4 int8 lanes into one int32 lane.
inline int32x4_t Dot16(int32x4_t acc, int8x16_t a, int8x16_t b) { return vdotq_s32(acc, a, b); }

#include "engine/kernels_neon_quant.inc"

}  // namespace dotprod
#pragma GCC pop_options

// ---- Row kernels ----

// Quantizes with the reference's arithmetic (max|x|, /127, reciprocal, multiply, round half to
// even with FCVTNS), so the output is bit-identical. The saturating narrows never clip, because
// |x * id| <= 127.
void QuantizeQ8Act(const float* x, int64_t n, BlockQ8Act* out) {
  for (int64_t b = 0; b < n / kQ8BlockSize; ++b) {
    const float* xb = x + b * kQ8BlockSize;
    float32x4_t v[8];
    float32x4_t amax = vdupq_n_f32(0.0f);
    for (int j = 0; j < 8; ++j) {
      v[j] = vld1q_f32(xb + 4 * j);
      amax = vmaxq_f32(amax, vabsq_f32(v[j]));
    }
    const float d = vmaxvq_f32(amax) / 127.0f;
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    out[b].d = d;
    int16x8_t q16[4];
    for (int j = 0; j < 4; ++j) {
      const int32x4_t q0 = vcvtnq_s32_f32(vmulq_n_f32(v[2 * j], id));
      const int32x4_t q1 = vcvtnq_s32_f32(vmulq_n_f32(v[2 * j + 1], id));
      q16[j] = vcombine_s16(vqmovn_s32(q0), vqmovn_s32(q1));
    }
    vst1q_s8(out[b].qs, vcombine_s8(vqmovn_s16(q16[0]), vqmovn_s16(q16[1])));
    vst1q_s8(out[b].qs + 16, vcombine_s8(vqmovn_s16(q16[2]), vqmovn_s16(q16[3])));
  }
}

void RmsNorm(const float* x, const float* weight, int64_t n, float eps, float* out) {
  float32x4_t acc0 = vdupq_n_f32(0.0f), acc1 = vdupq_n_f32(0.0f);
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    const float32x4_t v0 = vld1q_f32(x + i), v1 = vld1q_f32(x + i + 4);
    acc0 = vfmaq_f32(acc0, v0, v0);
    acc1 = vfmaq_f32(acc1, v1, v1);
  }
  for (; i + 4 <= n; i += 4) {
    const float32x4_t v = vld1q_f32(x + i);
    acc0 = vfmaq_f32(acc0, v, v);
  }
  float sum = vaddvq_f32(vaddq_f32(acc0, acc1));
  for (; i < n; ++i) sum += x[i] * x[i];
  const float scale = 1.0f / __builtin_sqrtf(sum / static_cast<float>(n) + eps);
  i = 0;
  for (; i + 4 <= n; i += 4) {
    vst1q_f32(out + i, vmulq_f32(vmulq_n_f32(vld1q_f32(x + i), scale), vld1q_f32(weight + i)));
  }
  for (; i < n; ++i) out[i] = x[i] * scale * weight[i];
}

// Rotates with separate multiplies, then a subtract or add, in the reference's order.
void Rope(float* x, int n_head, int head_dim, int n_rot, const float* cos, const float* sin, bool neox) {
  const int half = n_rot / 2;
  for (int h = 0; h < n_head; ++h) {
    float* v = x + static_cast<int64_t>(h) * head_dim;
    int i = 0;
    if (neox) {
      for (; i + 4 <= half; i += 4) {
        const float32x4_t a = vld1q_f32(v + i);
        const float32x4_t b = vld1q_f32(v + half + i);
        const float32x4_t c = vld1q_f32(cos + i);
        const float32x4_t s = vld1q_f32(sin + i);
        vst1q_f32(v + i, vsubq_f32(vmulq_f32(a, c), vmulq_f32(b, s)));
        vst1q_f32(v + half + i, vaddq_f32(vmulq_f32(b, c), vmulq_f32(a, s)));
      }
    } else {
      // LD2 splits 4 pairs into their first and second elements, and ST2 interleaves them back.
      for (; i + 4 <= half; i += 4) {
        float32x4x2_t pairs = vld2q_f32(v + 2 * i);
        const float32x4_t a = pairs.val[0];
        const float32x4_t b = pairs.val[1];
        const float32x4_t c = vld1q_f32(cos + i);
        const float32x4_t s = vld1q_f32(sin + i);
        pairs.val[0] = vsubq_f32(vmulq_f32(a, c), vmulq_f32(b, s));
        pairs.val[1] = vaddq_f32(vmulq_f32(b, c), vmulq_f32(a, s));
        vst2q_f32(v + 2 * i, pairs);
      }
    }
    for (; i < half; ++i) {
      const int i0 = neox ? i : 2 * i;
      const int i1 = neox ? i + half : 2 * i + 1;
      const float a = v[i0];
      const float b = v[i1];
      v[i0] = a * cos[i] - b * sin[i];
      v[i1] = b * cos[i] + a * sin[i];
    }
  }
}

float ExpShiftSum(float* x, int64_t n, float shift) {
  const float32x4_t s = vdupq_n_f32(shift);
  float32x4_t acc = vdupq_n_f32(0.0f);
  int64_t i = 0;
  for (; i + 4 <= n; i += 4) {
    const float32x4_t e = Exp(vsubq_f32(vld1q_f32(x + i), s));
    vst1q_f32(x + i, e);
    acc = vaddq_f32(acc, e);
  }
  float sum = vaddvq_f32(acc);
  for (; i < n; ++i) {
    x[i] = ExpOne(x[i] - shift);
    sum += x[i];
  }
  return sum;
}

void Softmax(float* x, int64_t n) {
  float32x4_t vmax = vdupq_n_f32(x[0]);
  int64_t i = 0;
  for (; i + 4 <= n; i += 4) vmax = vmaxq_f32(vmax, vld1q_f32(x + i));
  float max = vmaxvq_f32(vmax);
  for (; i < n; ++i) max = x[i] > max ? x[i] : max;
  const float inv = 1.0f / ExpShiftSum(x, n, max);
  i = 0;
  for (; i + 4 <= n; i += 4) vst1q_f32(x + i, vmulq_n_f32(vld1q_f32(x + i), inv));
  for (; i < n; ++i) x[i] *= inv;
}

void SiluMul(const float* gate, const float* up, int64_t n, float* out) {
  const float32x4_t one = vdupq_n_f32(1.0f);
  int64_t i = 0;
  for (; i + 4 <= n; i += 4) {
    const float32x4_t g = vld1q_f32(gate + i);
    const float32x4_t e = Exp(vnegq_f32(g));
    vst1q_f32(out + i, vmulq_f32(vdivq_f32(g, vaddq_f32(one, e)), vld1q_f32(up + i)));
  }
  for (; i < n; ++i) {
    const float g = gate[i];
    out[i] = g / (1.0f + ExpOne(-g)) * up[i];
  }
}

// FCVTL and FCVTN convert exactly and round to nearest even (the default FPCR mode), as the
// reference does, so both directions are bit-identical to it on every non-NaN value.
void F16ToF32Row(const uint16_t* in, int64_t n, float* out) {
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    const float16x8_t h = vreinterpretq_f16_u16(vld1q_u16(in + i));
    vst1q_f32(out + i, vcvt_f32_f16(vget_low_f16(h)));
    vst1q_f32(out + i + 4, vcvt_high_f32_f16(h));
  }
  for (; i < n; ++i) out[i] = HalfToFloat(in[i]);
}

void F32ToF16Row(const float* in, int64_t n, uint16_t* out) {
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    const float16x8_t h = vcvt_high_f16_f32(vcvt_f16_f32(vld1q_f32(in + i)), vld1q_f32(in + i + 4));
    vst1q_u16(out + i, vreinterpretq_u16_f16(h));
  }
  for (; i < n; ++i) {
    const float16x4_t h = vcvt_f16_f32(vdupq_n_f32(in[i]));
    out[i] = vget_lane_u16(vreinterpret_u16_f16(h), 0);
  }
}

// Four accumulators of 4 lanes hide the FMA latency.
float DotF32(const float* a, const float* b, int64_t n) {
  float32x4_t acc[4] = {vdupq_n_f32(0.0f), vdupq_n_f32(0.0f), vdupq_n_f32(0.0f), vdupq_n_f32(0.0f)};
  int64_t i = 0;
  for (; i + 16 <= n; i += 16) {
    for (int k = 0; k < 4; ++k) acc[k] = vfmaq_f32(acc[k], vld1q_f32(a + i + 4 * k), vld1q_f32(b + i + 4 * k));
  }
  for (; i + 4 <= n; i += 4) acc[0] = vfmaq_f32(acc[0], vld1q_f32(a + i), vld1q_f32(b + i));
  float sum = vaddvq_f32(vaddq_f32(vaddq_f32(acc[0], acc[1]), vaddq_f32(acc[2], acc[3])));
  for (; i < n; ++i) sum += a[i] * b[i];
  return sum;
}

float DotF32F16(const float* a, const uint16_t* b, int64_t n) {
  float32x4_t acc0 = vdupq_n_f32(0.0f), acc1 = vdupq_n_f32(0.0f);
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    const float16x8_t h = vreinterpretq_f16_u16(vld1q_u16(b + i));
    acc0 = vfmaq_f32(acc0, vld1q_f32(a + i), vcvt_f32_f16(vget_low_f16(h)));
    acc1 = vfmaq_f32(acc1, vld1q_f32(a + i + 4), vcvt_high_f32_f16(h));
  }
  for (; i + 4 <= n; i += 4) acc0 = vfmaq_f32(acc0, vld1q_f32(a + i), LoadHalf4(b + i));
  float sum = vaddvq_f32(vaddq_f32(acc0, acc1));
  for (; i < n; ++i) sum += a[i] * HalfToFloat(b[i]);
  return sum;
}

void AxpyF32(float alpha, const float* x, int64_t n, float* y) {
  int64_t i = 0;
  for (; i + 4 <= n; i += 4) vst1q_f32(y + i, vfmaq_n_f32(vld1q_f32(y + i), vld1q_f32(x + i), alpha));
  for (; i < n; ++i) y[i] += alpha * x[i];
}

void AxpyF16(float alpha, const uint16_t* x, int64_t n, float* y) {
  int64_t i = 0;
  for (; i + 4 <= n; i += 4) vst1q_f32(y + i, vfmaq_n_f32(vld1q_f32(y + i), LoadHalf4(x + i), alpha));
  for (; i < n; ++i) y[i] += alpha * HalfToFloat(x[i]);
}

void Scale(float* x, int64_t n, float alpha) {
  int64_t i = 0;
  for (; i + 4 <= n; i += 4) vst1q_f32(x + i, vmulq_n_f32(vld1q_f32(x + i), alpha));
  for (; i < n; ++i) x[i] *= alpha;
}

// Returns row j of K or V as f32. f16 rows are converted once into `buffer` and then reused by
// every query head of the group.
inline const float* RowAsFloat(const float* row, int, float*) { return row; }
inline const float* RowAsFloat(const uint16_t* row, int head_dim, float* buffer) {
  F16ToF32Row(row, head_dim, buffer);
  return buffer;
}

// Computes scores for 4 keys at a time. The 4 rows are converted once, each query head keeps one
// accumulator per key, and two pairwise adds (FADDP) give its 4 scores in one vector. A last
// group of fewer than 4 keys repeats its first row in the missing slots and keeps only the real
// scores, so a key's score is computed the same way wherever the tile ends.
template <typename T>
void AttnScores(const float* q, int n_q, int head_dim, const T* k, int64_t k_stride, int n_keys, float scale,
                float* scores, int ld) {
  float buffer[4 * kMaxHeadDim];
  int j = 0;
  if (head_dim % 4 == 0) {
    for (; j < n_keys; j += 4) {
      const int n_group = n_keys - j < 4 ? n_keys - j : 4;
      const float* rows[4];
      for (int jj = 0; jj < n_group; ++jj) rows[jj] = RowAsFloat(k + (j + jj) * k_stride, head_dim, buffer + jj * head_dim);
      for (int jj = n_group; jj < 4; ++jj) rows[jj] = rows[0];
      for (int r = 0; r < n_q; ++r) {
        const float* qr = q + r * head_dim;
        float32x4_t acc[4] = {vdupq_n_f32(0.0f), vdupq_n_f32(0.0f), vdupq_n_f32(0.0f), vdupq_n_f32(0.0f)};
        for (int d = 0; d < head_dim; d += 4) {
          const float32x4_t qv = vld1q_f32(qr + d);
          for (int jj = 0; jj < 4; ++jj) acc[jj] = vfmaq_f32(acc[jj], qv, vld1q_f32(rows[jj] + d));
        }
        const float32x4_t group =
            vmulq_n_f32(vpaddq_f32(vpaddq_f32(acc[0], acc[1]), vpaddq_f32(acc[2], acc[3])), scale);
        if (n_group == 4) {
          vst1q_f32(scores + r * ld + j, group);
        } else {
          float lanes[4];
          vst1q_f32(lanes, group);
          for (int jj = 0; jj < n_group; ++jj) scores[r * ld + j + jj] = lanes[jj];
        }
      }
    }
  }
  for (; j < n_keys; ++j) {
    const float* key = RowAsFloat(k + j * k_stride, head_dim, buffer);
    for (int r = 0; r < n_q; ++r) scores[r * ld + j] = scale * DotF32(q + r * head_dim, key, head_dim);
  }
}

// Adds the weighted value rows per 4-wide column block of the head. Every query head accumulates
// over the keys in registers (two chains to hide the FMA latency) and touches its accumulator
// row once. f16 rows are converted once per key for all query heads.
template <typename T>
void AttnValues(const float* p, int n_q, int ld, const T* v, int64_t v_stride, int n_keys, int head_dim, float* acc) {
  float buffer[kMaxHeadDim];
  if (head_dim % 4 != 0 || n_keys > 64) {
    for (int j = 0; j < n_keys; ++j) {
      const float* value = RowAsFloat(v + j * v_stride, head_dim, buffer);
      for (int r = 0; r < n_q; ++r) AxpyF32(p[r * ld + j], value, head_dim, acc + r * head_dim);
    }
    return;
  }
  float32x4_t column[64];  // [n_keys] one 4-wide block of each value row
  for (int d = 0; d < head_dim; d += 4) {
    for (int j = 0; j < n_keys; ++j) column[j] = vld1q_f32(RowAsFloat(v + j * v_stride + d, 4, buffer));
    for (int r = 0; r < n_q; ++r) {
      const float* pr = p + r * ld;
      float32x4_t a0 = vld1q_f32(acc + r * head_dim + d);
      float32x4_t a1 = vdupq_n_f32(0.0f);
      int j = 0;
      for (; j + 2 <= n_keys; j += 2) {
        a0 = vfmaq_n_f32(a0, column[j], pr[j]);
        a1 = vfmaq_n_f32(a1, column[j + 1], pr[j + 1]);
      }
      if (j < n_keys) a0 = vfmaq_n_f32(a0, column[j], pr[j]);
      vst1q_f32(acc + r * head_dim + d, vaddq_f32(a0, a1));
    }
  }
}

using MatMulFn = void (*)(const MatMulArgs&);

// The two tables differ only in their quantized products.
constexpr KernelTable MakeTable(std::string_view name, MatMulFn q8_0, MatMulFn q4_0, MatMulFn q4_k, MatMulFn q6_k) {
  return {
      .name = name,
      .matmul_f32 = MatMulF32,
      .matmul_f16 = MatMulF16,
      .matmul_bf16 = MatMulBf16,
      .matmul_q8_0 = q8_0,
      .matmul_q4_0 = q4_0,
      .matmul_q4_k = q4_k,
      .matmul_q6_k = q6_k,
      .quantize_q8_act = QuantizeQ8Act,
      .rms_norm = RmsNorm,
      .rope = Rope,
      .softmax = Softmax,
      .exp_shift_sum = ExpShiftSum,
      .silu_mul = SiluMul,
      .f16_to_f32 = F16ToF32Row,
      .f32_to_f16 = F32ToF16Row,
      .dot_f32 = DotF32,
      .dot_f32_f16 = DotF32F16,
      .axpy_f32 = AxpyF32,
      .axpy_f16 = AxpyF16,
      .scale = Scale,
      .attn_scores_f32 = AttnScores<float>,
      .attn_scores_f16 = AttnScores<uint16_t>,
      .attn_values_f32 = AttnValues<float>,
      .attn_values_f16 = AttnValues<uint16_t>,
  };
}

constexpr KernelTable kNeonTable = MakeTable("neon", widening::MatMulQ8_0, widening::MatMulQ4_0,
                                             widening::MatMulQ4_K, widening::MatMulQ6_K);
constexpr KernelTable kNeonDotprodTable = MakeTable("neon-dotprod", dotprod::MatMulQ8_0, dotprod::MatMulQ4_0,
                                                    dotprod::MatMulQ4_K, dotprod::MatMulQ6_K);

}  // namespace

namespace internal {

const KernelTable& NeonTable(bool dotprod) { return dotprod ? kNeonDotprodTable : kNeonTable; }

// Linux sets HWCAP_ASIMDDP in AT_HWCAP when the CPU implements SDOT for user space. Under
// qemu-user the bit follows the emulated CPU model (-cpu).
bool CpuHasDotprod() { return (getauxval(AT_HWCAP) & HWCAP_ASIMDDP) != 0; }

}  // namespace internal

}  // namespace sparkv::kernels
