// AVX2 + FMA + F16C kernels. This file is compiled with -mavx2 -mfma -mf16c, so it must not
// define or instantiate anything another file could share, such as inline functions from headers
// or std templates. The linker could otherwise keep this file's AVX2 copy for a caller on a CPU
// without AVX2. Everything here is in an anonymous namespace or an intrinsic.
#include <immintrin.h>

#include <cstring>

#include "engine/kernels.h"

namespace sparkv::kernels {
namespace {

// Fully unrolls a loop over a tile's rows or tokens. GCC 12 keeps a tile's accumulator array in
// registers only when every loop over it (zeroing, update, reduction) is unrolled early, and
// otherwise stores each accumulator to the stack on every step of the inner product.
#define SPARKV_UNROLL _Pragma("GCC unroll 16")

inline int64_t Min(int64_t a, int64_t b) { return a < b ? a : b; }
inline int64_t Max(int64_t a, int64_t b) { return a > b ? a : b; }

inline float HorizontalSum(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_shuffle_ps(s, s, 1));
  return _mm_cvtss_f32(s);
}

inline float HorizontalMax(__m256 v) {
  __m128 s = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_max_ps(s, _mm_movehl_ps(s, s));
  s = _mm_max_ss(s, _mm_shuffle_ps(s, s, 1));
  return _mm_cvtss_f32(s);
}

inline float HalfToFloat(uint16_t h) { return _cvtsh_ss(h); }

// exp(x) for x in [-86, 88], within the 1e-5 relative bound engine_kernels_test checks against
// std::exp. Inputs outside are clamped first, so very negative inputs give about 4e-38 instead of
// 0, which is harmless next to the 1.0 that a max-shifted softmax always contains.
// Range reduction x = n ln2 + r with |r| <= ln2/2, then a degree-7 Taylor polynomial for e^r
// (truncation error below 6e-9 relative) and 2^n added into the exponent bits.
inline __m256 Exp(__m256 x) {
  x = _mm256_min_ps(_mm256_max_ps(x, _mm256_set1_ps(-86.0f)), _mm256_set1_ps(88.0f));
  const __m256 n = _mm256_round_ps(_mm256_mul_ps(x, _mm256_set1_ps(1.44269504088896341f)),
                                   _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  __m256 r = _mm256_fnmadd_ps(n, _mm256_set1_ps(0.693359375f), x);  // ln2 split hi + lo
  r = _mm256_fnmadd_ps(n, _mm256_set1_ps(-2.12194440e-4f), r);
  __m256 p = _mm256_set1_ps(1.0f / 5040.0f);
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f / 720.0f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f / 120.0f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f / 24.0f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f / 6.0f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(0.5f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f));
  const __m256i exponent = _mm256_slli_epi32(_mm256_cvtps_epi32(n), 23);
  return _mm256_castsi256_ps(_mm256_add_epi32(_mm256_castps_si256(p), exponent));
}

// Scalar exp through the same vector code, so tails match the vector body.
inline float ExpOne(float x) { return _mm256_cvtss_f32(Exp(_mm256_set1_ps(x))); }

// ---- Matrix products over float-like weights ----

struct LoadF32 {
  static constexpr int64_t kBytes = 4;  // per weight
  static __m256 Vec(const uint8_t* w, int64_t i) { return _mm256_loadu_ps(reinterpret_cast<const float*>(w) + i); }
  static float One(const uint8_t* w, int64_t i) {
    float v;
    std::memcpy(&v, w + 4 * i, 4);
    return v;
  }
};

struct LoadF16 {
  static constexpr int64_t kBytes = 2;
  static __m256 Vec(const uint8_t* w, int64_t i) {
    return _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(w + 2 * i)));
  }
  static float One(const uint8_t* w, int64_t i) {
    uint16_t h;
    std::memcpy(&h, w + 2 * i, 2);
    return HalfToFloat(h);
  }
};

struct LoadBf16 {
  static constexpr int64_t kBytes = 2;
  static __m256 Vec(const uint8_t* w, int64_t i) {
    const __m256i wide = _mm256_cvtepu16_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(w + 2 * i)));
    return _mm256_castsi256_ps(_mm256_slli_epi32(wide, 16));
  }
  static float One(const uint8_t* w, int64_t i) {
    uint16_t h;
    std::memcpy(&h, w + 2 * i, 2);
    const uint32_t bits = static_cast<uint32_t>(h) << 16;
    float v;
    std::memcpy(&v, &bits, 4);
    return v;
  }
};

// Requests byte `offset` of each row of the next 4-row tile, the rows that follow the current
// tile's 4 (its first row at `row`). A decode step reads each weight once, and a tile's rows are
// too short for the hardware prefetcher to get ahead. The one-token tiles call this, and the
// Q8_0 tile for any token count, where the 64-token product measured no slower with it.
inline void PrefetchNextTile(const uint8_t* row, size_t row_bytes, int64_t offset) {
  SPARKV_UNROLL
  for (int r = 4; r < 8; ++r) {
    _mm_prefetch(reinterpret_cast<const char*>(row + r * static_cast<int64_t>(row_bytes) + offset), _MM_HINT_T0);
  }
}

// RB weight rows x TB tokens: each weight vector is loaded (and converted) once for TB tokens and
// each activation vector once for RB rows.
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
  __m256 acc[RB][TB];
  SPARKV_UNROLL
  for (int r = 0; r < RB; ++r) {
    SPARKV_UNROLL
    for (int t = 0; t < TB; ++t) acc[r][t] = _mm256_setzero_ps();
  }
  const int64_t n_vec = a.n_in & ~int64_t{7};
  for (int64_t i = 0; i < n_vec; i += 8) {
    if constexpr (RB == 4 && TB == 1) PrefetchNextTile(w[0], a.w_row_bytes, i * Load::kBytes);
    __m256 xv[TB];
    SPARKV_UNROLL
    for (int t = 0; t < TB; ++t) xv[t] = _mm256_loadu_ps(x[t] + i);
    SPARKV_UNROLL
    for (int r = 0; r < RB; ++r) {
      const __m256 wv = Load::Vec(w[r], i);
      SPARKV_UNROLL
      for (int t = 0; t < TB; ++t) acc[r][t] = _mm256_fmadd_ps(wv, xv[t], acc[r][t]);
    }
  }
  SPARKV_UNROLL
  for (int r = 0; r < RB; ++r) {
    SPARKV_UNROLL
    for (int t = 0; t < TB; ++t) {
      float sum = HorizontalSum(acc[r][t]);
      for (int64_t i = n_vec; i < a.n_in; ++i) sum += Load::One(w[r], i) * x[t][i];
      a.y[(t0 + t) * a.ldy + r0 + r] = sum;
    }
  }
}

// Byte cap on the activation rows of one token panel, so a panel stays in L2 (512 KiB per core
// here) while every 4-row weight block of the range passes over it. Weights then leave memory
// once per panel, and activations come from L2 rather than L3.
constexpr int64_t kPanelBytes = 160 * 1024;

// Tokens per panel: a multiple of `tile`, at least one tile.
inline int64_t PanelTokens(const MatMulArgs& a, int64_t tile) {
  const int64_t row_bytes = Max(1, static_cast<int64_t>(a.x_row_bytes));
  return Max(tile, kPanelBytes / row_bytes / tile * tile);
}

// Token panels, and inside one, rows in blocks of 4 and for each block every token of the panel,
// 3 at a time. The 12 accumulators, 3 activation vectors and one weight vector fill the 16 YMM
// registers, and each converted weight vector serves 3 tokens.
template <template <int, int> class Tile>
void MatMulTiled(const MatMulArgs& a) {
  const int64_t panel = PanelTokens(a, 3);
  for (int64_t p0 = 0; p0 < a.n_tokens; p0 += panel) {
    const int64_t p1 = Min(a.n_tokens, p0 + panel);
    int64_t r = a.row_begin;
    for (; r + 4 <= a.row_end; r += 4) {
      int64_t t = p0;
      for (; t + 3 <= p1; t += 3) Tile<4, 3>::Run(a, r, t);
      if (t + 2 <= p1) {
        Tile<4, 2>::Run(a, r, t);
        t += 2;
      }
      if (t < p1) Tile<4, 1>::Run(a, r, t);
    }
    for (; r < a.row_end; ++r) {
      int64_t t = p0;
      for (; t + 2 <= p1; t += 2) Tile<1, 2>::Run(a, r, t);
      if (t < p1) Tile<1, 1>::Run(a, r, t);
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

// ---- Q8_0 weights x Q8 activations ----

// Per block: |w| (unsigned) times x with w's sign moved onto it gives exact int16 pair sums
// (at most 2 * 128 * 127 = 32512, no saturation), then int32 lane sums, scaled in f32 by
// d_w * d_x exactly as the scalar reference groups it.
template <int RB, int TB>
struct TileQ8 {
  static void Run(const MatMulArgs& a, int64_t r0, int64_t t0) {
    const uint8_t* w[RB];
    const BlockQ8Act* x[TB];
    SPARKV_UNROLL
    for (int r = 0; r < RB; ++r) w[r] = a.w + (r0 + r) * a.w_row_bytes;
    SPARKV_UNROLL
    for (int t = 0; t < TB; ++t) {
      x[t] = reinterpret_cast<const BlockQ8Act*>(static_cast<const uint8_t*>(a.x) + (t0 + t) * a.x_row_bytes);
    }
    __m256 acc[RB][TB];
    SPARKV_UNROLL
    for (int r = 0; r < RB; ++r) {
      SPARKV_UNROLL
      for (int t = 0; t < TB; ++t) acc[r][t] = _mm256_setzero_ps();
    }
    const __m256i ones = _mm256_set1_epi16(1);
    const int64_t n_blocks = a.n_in / kQ8BlockSize;
    for (int64_t b = 0; b < n_blocks; ++b) {
      __m256i xq[TB];
      float xd[TB];
      SPARKV_UNROLL
      for (int t = 0; t < TB; ++t) {
        xq[t] = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(x[t][b].qs));
        xd[t] = x[t][b].d;
      }
      SPARKV_UNROLL
      for (int r = 0; r < RB; ++r) {
        const uint8_t* block = w[r] + b * kQ8_0BlockBytes;
        uint16_t d_bits;
        std::memcpy(&d_bits, block, 2);
        const float wd = HalfToFloat(d_bits);
        const __m256i wq = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(block + 2));
        const __m256i w_abs = _mm256_sign_epi8(wq, wq);
        SPARKV_UNROLL
        for (int t = 0; t < TB; ++t) {
          const __m256i pairs = _mm256_maddubs_epi16(w_abs, _mm256_sign_epi8(xq[t], wq));
          const __m256i quads = _mm256_madd_epi16(pairs, ones);
          acc[r][t] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(quads), _mm256_set1_ps(wd * xd[t]), acc[r][t]);
        }
      }
    }
    SPARKV_UNROLL
    for (int r = 0; r < RB; ++r) {
      SPARKV_UNROLL
      for (int t = 0; t < TB; ++t) a.y[(t0 + t) * a.ldy + r0 + r] = HorizontalSum(acc[r][t]);
    }
  }
};

// Q8_0 GEMM micro-kernel over four weight rows x TB tokens. Per block, each (row, token) pair
// gets its exact int32 lane sums as TileQ8 computes them. Two levels of hadd then fold the four
// rows into one vector [row 0..3 | row 0..3], each lane a sum of 4 of the 8 lanes. One convert
// and one FMA, by the four weight scales times the token's scale, then serve four rows.
// The integer multiplies stay the bottleneck (Zen 1 runs them on one 128-bit pipe), so this saves
// only the work around them: about 20 instead of 28 instructions per 4 x 32 multiply-adds.
template <int TB>
inline void TileQ8Rows4(const MatMulArgs& a, int64_t r0, int64_t t0) {
  const uint8_t* w0 = a.w + r0 * a.w_row_bytes;
  const uint8_t* w1 = w0 + a.w_row_bytes;
  const uint8_t* w2 = w1 + a.w_row_bytes;
  const uint8_t* w3 = w2 + a.w_row_bytes;
  const BlockQ8Act* x[TB];
  SPARKV_UNROLL
  for (int t = 0; t < TB; ++t) {
    x[t] = reinterpret_cast<const BlockQ8Act*>(static_cast<const uint8_t*>(a.x) + (t0 + t) * a.x_row_bytes);
  }
  __m256 acc[TB];
  SPARKV_UNROLL
  for (int t = 0; t < TB; ++t) acc[t] = _mm256_setzero_ps();
  const __m256i ones = _mm256_set1_epi16(1);
  const int64_t n_blocks = a.n_in / kQ8BlockSize;
  for (int64_t b = 0; b < n_blocks; ++b) {
    const int64_t at = b * static_cast<int64_t>(kQ8_0BlockBytes);
    PrefetchNextTile(w0, a.w_row_bytes, at);
    uint16_t d_bits[4];
    std::memcpy(&d_bits[0], w0 + at, 2);
    std::memcpy(&d_bits[1], w1 + at, 2);
    std::memcpy(&d_bits[2], w2 + at, 2);
    std::memcpy(&d_bits[3], w3 + at, 2);
    const __m128 d4 = _mm_cvtph_ps(_mm_setr_epi16(static_cast<short>(d_bits[0]), static_cast<short>(d_bits[1]),
                                                  static_cast<short>(d_bits[2]), static_cast<short>(d_bits[3]), 0, 0,
                                                  0, 0));
    const __m256 wd = _mm256_set_m128(d4, d4);
    const __m256i q0 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(w0 + at + 2));
    const __m256i q1 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(w1 + at + 2));
    const __m256i q2 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(w2 + at + 2));
    const __m256i q3 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(w3 + at + 2));
    const __m256i abs0 = _mm256_sign_epi8(q0, q0);
    const __m256i abs1 = _mm256_sign_epi8(q1, q1);
    const __m256i abs2 = _mm256_sign_epi8(q2, q2);
    const __m256i abs3 = _mm256_sign_epi8(q3, q3);

    SPARKV_UNROLL
    for (int t = 0; t < TB; ++t) {
      const __m256i xq = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(x[t][b].qs));
      const __m256i p0 = _mm256_madd_epi16(_mm256_maddubs_epi16(abs0, _mm256_sign_epi8(xq, q0)), ones);
      const __m256i p1 = _mm256_madd_epi16(_mm256_maddubs_epi16(abs1, _mm256_sign_epi8(xq, q1)), ones);
      const __m256i p2 = _mm256_madd_epi16(_mm256_maddubs_epi16(abs2, _mm256_sign_epi8(xq, q2)), ones);
      const __m256i p3 = _mm256_madd_epi16(_mm256_maddubs_epi16(abs3, _mm256_sign_epi8(xq, q3)), ones);
      const __m256i rows = _mm256_hadd_epi32(_mm256_hadd_epi32(p0, p1), _mm256_hadd_epi32(p2, p3));
      const __m256 scale = _mm256_mul_ps(wd, _mm256_broadcast_ss(&x[t][b].d));
      acc[t] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(rows), scale, acc[t]);
    }
  }
  SPARKV_UNROLL
  for (int t = 0; t < TB; ++t) {
    const __m128 sum = _mm_add_ps(_mm256_castps256_ps128(acc[t]), _mm256_extractf128_ps(acc[t], 1));
    _mm_storeu_ps(a.y + (t0 + t) * a.ldy + r0, sum);
  }
}

void MatMulQ8_0(const MatMulArgs& a) {
  constexpr int kTokens = 4;
  const int64_t panel = PanelTokens(a, kTokens);
  const int64_t rows4_end = a.row_begin + (a.row_end - a.row_begin) / 4 * 4;
  for (int64_t p0 = 0; p0 < a.n_tokens; p0 += panel) {
    const int64_t p1 = Min(a.n_tokens, p0 + panel);
    for (int64_t r = a.row_begin; r < rows4_end; r += 4) {
      int64_t t = p0;
      for (; t + kTokens <= p1; t += kTokens) TileQ8Rows4<kTokens>(a, r, t);
      switch (p1 - t) {
        case 3: TileQ8Rows4<3>(a, r, t); break;
        case 2: TileQ8Rows4<2>(a, r, t); break;
        case 1: TileQ8Rows4<1>(a, r, t); break;
        default: break;
      }
    }
    for (int64_t r = rows4_end; r < a.row_end; ++r) {
      int64_t t = p0;
      for (; t + 2 <= p1; t += 2) TileQ8<1, 2>::Run(a, r, t);
      if (t < p1) TileQ8<1, 1>::Run(a, r, t);
    }
  }
}

// ---- Q4_0, Q4_K and Q6_K weights x Q8 activations ----

// One 32-input block of a weight row, decoded to int8 values q. Its exact product with an
// activation block is sum_i q_i * xq_i * mult_i, where mult_i (int16) is mult16's lane i / 2,
// times scale, minus min_scale * sum_i xq_i. Decoding happens once per row and block and serves
// every token of a tile.
struct DecodedBlock {
  __m256i q;
  __m256i mult16;
  float scale;
  float min_scale;
};

inline __m256i Nibbles(__m256i bytes, int shift) {
  return _mm256_and_si256(_mm256_srli_epi16(bytes, shift), _mm256_set1_epi8(0x0F));
}

inline uint16_t LoadU16(const uint8_t* p) {
  uint16_t v;
  std::memcpy(&v, p, 2);
  return v;
}

struct DecodeQ4_0 {
  static constexpr bool kUnsigned = false;
  static constexpr bool kHasMin = false;
  static DecodedBlock Run(const uint8_t* w, int64_t b) {
    const uint8_t* block = w + b * kQ4_0BlockBytes;
    const __m128i packed = _mm_loadu_si128(reinterpret_cast<const __m128i*>(block + 2));
    const __m256i both = _mm256_set_m128i(_mm_srli_epi16(packed, 4), packed);
    const __m256i q = _mm256_sub_epi8(_mm256_and_si256(both, _mm256_set1_epi8(0x0F)), _mm256_set1_epi8(8));
    return {q, _mm256_set1_epi16(1), HalfToFloat(LoadU16(block)), 0.0f};
  }
};

// Sub-block scales and mins in the packing kernels.h describes for Q4_K.
inline void ScaleMinK4(const uint8_t* scales, int j, int* scale, int* min) {
  if (j < 4) {
    *scale = scales[j] & 63;
    *min = scales[j + 4] & 63;
  } else {
    *scale = (scales[j + 4] & 0xF) | ((scales[j - 4] >> 6) << 4);
    *min = (scales[j + 4] >> 4) | ((scales[j] >> 6) << 4);
  }
}

struct DecodeQ4_K {
  static constexpr bool kUnsigned = true;  // nibbles in [0, 15]: maddubs takes them as they are
  static constexpr bool kHasMin = true;
  static DecodedBlock Run(const uint8_t* w, int64_t b) {
    const int64_t super = b / (kQKBlockSize / kQ8BlockSize);
    const int j = static_cast<int>(b % (kQKBlockSize / kQ8BlockSize));
    const uint8_t* block = w + super * kQ4_KBlockBytes;
    int scale, min;
    ScaleMinK4(block + 4, j, &scale, &min);
    const __m256i bytes = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(block + 16 + 32 * (j / 2)));
    return {Nibbles(bytes, 4 * (j % 2)), _mm256_set1_epi16(static_cast<short>(scale)), HalfToFloat(LoadU16(block)),
            HalfToFloat(LoadU16(block + 2)) * static_cast<float>(min)};
  }
};

struct DecodeQ6_K {
  static constexpr bool kUnsigned = false;
  static constexpr bool kHasMin = false;
  static DecodedBlock Run(const uint8_t* w, int64_t b) {
    const int64_t super = b / (kQKBlockSize / kQ8BlockSize);
    const int k = static_cast<int>(b % (kQKBlockSize / kQ8BlockSize));
    const int half = k / 4, quarter = k % 4;
    const uint8_t* block = w + super * kQ6_KBlockBytes;
    const __m256i ql = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(block + 64 * half + 32 * (quarter % 2)));
    const __m256i qh = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(block + 128 + 32 * half));
    // The top 2 bits are masked to [0, 3] before the 16-bit shift, so nothing crosses a byte.
    const __m256i high = _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(qh, 2 * quarter), _mm256_set1_epi8(3)), 4);
    const __m256i q = _mm256_sub_epi8(_mm256_or_si256(Nibbles(ql, 4 * (quarter / 2)), high), _mm256_set1_epi8(32));
    const auto* scales = reinterpret_cast<const int8_t*>(block + 192) + 8 * half + 2 * quarter;
    // maddubs lanes 0-7 hold elements 0-15 (first sub-block), lanes 8-15 elements 16-31.
    const __m256i mult = _mm256_set_m128i(_mm_set1_epi16(scales[1]), _mm_set1_epi16(scales[0]));
    return {q, mult, HalfToFloat(LoadU16(block + 208)), 0.0f};
  }
};

// RB weight rows x TB tokens. Per block: exact int16 pair sums (maddubs; at most 2 * 32 * 127
// with the sign trick, 2 * 15 * 127 for unsigned nibbles), widened and multiplied by the integer
// sub-block scales (madd), converted once and scaled in f32. Mins use the token's block sum of xq,
// computed once per tile and shared by its RB rows.
template <typename Decode, int RB, int TB>
inline void TileQuant(const MatMulArgs& a, int64_t r0, int64_t t0) {
  const uint8_t* w[RB];
  const BlockQ8Act* x[TB];
  SPARKV_UNROLL
  for (int r = 0; r < RB; ++r) w[r] = a.w + (r0 + r) * a.w_row_bytes;
  SPARKV_UNROLL
  for (int t = 0; t < TB; ++t) {
    x[t] = reinterpret_cast<const BlockQ8Act*>(static_cast<const uint8_t*>(a.x) + (t0 + t) * a.x_row_bytes);
  }
  __m256 acc[RB][TB];
  SPARKV_UNROLL
  for (int r = 0; r < RB; ++r) {
    SPARKV_UNROLL
    for (int t = 0; t < TB; ++t) acc[r][t] = _mm256_setzero_ps();
  }
  const __m256i ones16 = _mm256_set1_epi16(1);
  const __m256i ones8 = _mm256_set1_epi8(1);
  const int64_t n_blocks = a.n_in / kQ8BlockSize;
  // Average bytes per 32-input block, enough to aim a prefetch (K-quant blocks share a header).
  const int64_t block_bytes = static_cast<int64_t>(a.w_row_bytes) / Max(n_blocks, 1);
  for (int64_t b = 0; b < n_blocks; ++b) {
    if constexpr (RB == 4 && TB == 1) PrefetchNextTile(w[0], a.w_row_bytes, b * block_bytes);
    __m256i xq[TB];
    __m256 xsum[TB];
    SPARKV_UNROLL
    for (int t = 0; t < TB; ++t) {
      xq[t] = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(x[t][b].qs));
      if constexpr (Decode::kHasMin) {
        xsum[t] = _mm256_cvtepi32_ps(_mm256_madd_epi16(_mm256_maddubs_epi16(ones8, xq[t]), ones16));
      }
    }
    SPARKV_UNROLL
    for (int r = 0; r < RB; ++r) {
      const DecodedBlock d = Decode::Run(w[r], b);
      const __m256i w_abs = Decode::kUnsigned ? d.q : _mm256_sign_epi8(d.q, d.q);
      SPARKV_UNROLL
      for (int t = 0; t < TB; ++t) {
        const __m256i x_signed = Decode::kUnsigned ? xq[t] : _mm256_sign_epi8(xq[t], d.q);
        const __m256i sums = _mm256_madd_epi16(_mm256_maddubs_epi16(w_abs, x_signed), d.mult16);
        acc[r][t] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(sums), _mm256_set1_ps(d.scale * x[t][b].d), acc[r][t]);
        if constexpr (Decode::kHasMin) {
          acc[r][t] = _mm256_fnmadd_ps(xsum[t], _mm256_set1_ps(d.min_scale * x[t][b].d), acc[r][t]);
        }
      }
    }
  }
  SPARKV_UNROLL
  for (int r = 0; r < RB; ++r) {
    SPARKV_UNROLL
    for (int t = 0; t < TB; ++t) a.y[(t0 + t) * a.ldy + r0 + r] = HorizontalSum(acc[r][t]);
  }
}

template <typename Decode>
struct QuantTiles {
  template <int RB, int TB>
  struct Tile {
    static void Run(const MatMulArgs& a, int64_t r, int64_t t) { TileQuant<Decode, RB, TB>(a, r, t); }
  };
};

void MatMulQ4_0(const MatMulArgs& a) { MatMulTiled<QuantTiles<DecodeQ4_0>::Tile>(a); }
void MatMulQ4_K(const MatMulArgs& a) { MatMulTiled<QuantTiles<DecodeQ4_K>::Tile>(a); }
void MatMulQ6_K(const MatMulArgs& a) { MatMulTiled<QuantTiles<DecodeQ6_K>::Tile>(a); }

void MatMulF32(const MatMulArgs& a) { MatMulTiled<TileF32>(a); }
void MatMulF16(const MatMulArgs& a) { MatMulTiled<TileF16>(a); }
void MatMulBf16(const MatMulArgs& a) { MatMulTiled<TileBf16>(a); }

// Same arithmetic as the reference (max|x|, /127, reciprocal, multiply, round half to even in the
// default MXCSR mode), so the output is bit-identical.
void QuantizeQ8Act(const float* x, int64_t n, BlockQ8Act* out) {
  const __m256 abs_mask = _mm256_castsi256_ps(_mm256_set1_epi32(0x7fffffff));
  for (int64_t b = 0; b < n / kQ8BlockSize; ++b) {
    const float* xb = x + b * kQ8BlockSize;
    __m256 v[4];
    __m256 amax = _mm256_setzero_ps();
    for (int j = 0; j < 4; ++j) {
      v[j] = _mm256_loadu_ps(xb + 8 * j);
      amax = _mm256_max_ps(amax, _mm256_and_ps(v[j], abs_mask));
    }
    const float d = HorizontalMax(amax) / 127.0f;
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    out[b].d = d;
    const __m256 scale = _mm256_set1_ps(id);
    __m256i q[4];
    for (int j = 0; j < 4; ++j) q[j] = _mm256_cvtps_epi32(_mm256_mul_ps(v[j], scale));
    // packs works within 128-bit lanes; the permute restores element order.
    const __m256i q16a = _mm256_packs_epi32(q[0], q[1]);
    const __m256i q16b = _mm256_packs_epi32(q[2], q[3]);
    const __m256i q8 = _mm256_packs_epi16(q16a, q16b);
    const __m256i ordered = _mm256_permutevar8x32_epi32(q8, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(out[b].qs), ordered);
  }
}

void RmsNorm(const float* x, const float* weight, int64_t n, float eps, float* out) {
  __m256 acc = _mm256_setzero_ps();
  const int64_t n_vec = n & ~int64_t{7};
  for (int64_t i = 0; i < n_vec; i += 8) {
    const __m256 v = _mm256_loadu_ps(x + i);
    acc = _mm256_fmadd_ps(v, v, acc);
  }
  float sum = HorizontalSum(acc);
  for (int64_t i = n_vec; i < n; ++i) sum += x[i] * x[i];
  const float scale = 1.0f / __builtin_sqrtf(sum / static_cast<float>(n) + eps);
  const __m256 s = _mm256_set1_ps(scale);
  for (int64_t i = 0; i < n_vec; i += 8) {
    _mm256_storeu_ps(out + i, _mm256_mul_ps(_mm256_mul_ps(_mm256_loadu_ps(x + i), s), _mm256_loadu_ps(weight + i)));
  }
  for (int64_t i = n_vec; i < n; ++i) out[i] = x[i] * scale * weight[i];
}

// Separate multiplies then add/subtract, as the reference rounds, so results are bit-identical.
void Rope(float* x, int n_head, int head_dim, int n_rot, const float* cos, const float* sin, bool neox) {
  const int half = n_rot / 2;
  const __m256i dup = _mm256_setr_epi32(0, 0, 1, 1, 2, 2, 3, 3);
  for (int h = 0; h < n_head; ++h) {
    float* v = x + static_cast<int64_t>(h) * head_dim;
    int i = 0;
    if (neox) {
      for (; i + 8 <= half; i += 8) {
        const __m256 a = _mm256_loadu_ps(v + i);
        const __m256 b = _mm256_loadu_ps(v + half + i);
        const __m256 c = _mm256_loadu_ps(cos + i);
        const __m256 s = _mm256_loadu_ps(sin + i);
        _mm256_storeu_ps(v + i, _mm256_sub_ps(_mm256_mul_ps(a, c), _mm256_mul_ps(b, s)));
        _mm256_storeu_ps(v + half + i, _mm256_add_ps(_mm256_mul_ps(b, c), _mm256_mul_ps(a, s)));
      }
    } else {
      for (; i + 4 <= half; i += 4) {
        const __m256 pairs = _mm256_loadu_ps(v + 2 * i);
        const __m256 c = _mm256_permutevar8x32_ps(_mm256_castps128_ps256(_mm_loadu_ps(cos + i)), dup);
        const __m256 s = _mm256_permutevar8x32_ps(_mm256_castps128_ps256(_mm_loadu_ps(sin + i)), dup);
        const __m256 swapped = _mm256_permute_ps(pairs, 0xB1);
        // Even lanes a*c - b*s, odd lanes b*c + a*s.
        _mm256_storeu_ps(v + 2 * i, _mm256_addsub_ps(_mm256_mul_ps(pairs, c), _mm256_mul_ps(swapped, s)));
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
  const __m256 s = _mm256_set1_ps(shift);
  __m256 acc = _mm256_setzero_ps();
  const int64_t n_vec = n & ~int64_t{7};
  for (int64_t i = 0; i < n_vec; i += 8) {
    const __m256 e = Exp(_mm256_sub_ps(_mm256_loadu_ps(x + i), s));
    _mm256_storeu_ps(x + i, e);
    acc = _mm256_add_ps(acc, e);
  }
  float sum = HorizontalSum(acc);
  for (int64_t i = n_vec; i < n; ++i) {
    x[i] = ExpOne(x[i] - shift);
    sum += x[i];
  }
  return sum;
}

void Softmax(float* x, int64_t n) {
  __m256 vmax = _mm256_set1_ps(x[0]);
  const int64_t n_vec = n & ~int64_t{7};
  for (int64_t i = 0; i < n_vec; i += 8) vmax = _mm256_max_ps(vmax, _mm256_loadu_ps(x + i));
  float max = HorizontalMax(vmax);
  for (int64_t i = n_vec; i < n; ++i) max = x[i] > max ? x[i] : max;
  const float inv = 1.0f / ExpShiftSum(x, n, max);
  const __m256 s = _mm256_set1_ps(inv);
  for (int64_t i = 0; i < n_vec; i += 8) _mm256_storeu_ps(x + i, _mm256_mul_ps(_mm256_loadu_ps(x + i), s));
  for (int64_t i = n_vec; i < n; ++i) x[i] *= inv;
}

void SiluMul(const float* gate, const float* up, int64_t n, float* out) {
  const __m256 one = _mm256_set1_ps(1.0f);
  const __m256 sign = _mm256_set1_ps(-0.0f);
  const int64_t n_vec = n & ~int64_t{7};
  for (int64_t i = 0; i < n_vec; i += 8) {
    const __m256 g = _mm256_loadu_ps(gate + i);
    const __m256 e = Exp(_mm256_xor_ps(g, sign));
    _mm256_storeu_ps(out + i, _mm256_mul_ps(_mm256_div_ps(g, _mm256_add_ps(one, e)), _mm256_loadu_ps(up + i)));
  }
  for (int64_t i = n_vec; i < n; ++i) {
    const float g = gate[i];
    out[i] = g / (1.0f + ExpOne(-g)) * up[i];
  }
}

void F16ToF32Row(const uint16_t* in, int64_t n, float* out) {
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    _mm256_storeu_ps(out + i, _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(in + i))));
  }
  for (; i < n; ++i) out[i] = HalfToFloat(in[i]);
}

void F32ToF16Row(const float* in, int64_t n, uint16_t* out) {
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    _mm_storeu_si128(reinterpret_cast<__m128i*>(out + i),
                     _mm256_cvtps_ph(_mm256_loadu_ps(in + i), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
  }
  for (; i < n; ++i) {
    const __m128i half = _mm_cvtps_ph(_mm_set_ss(in[i]), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    out[i] = static_cast<uint16_t>(_mm_extract_epi16(half, 0));
  }
}

float DotF32(const float* a, const float* b, int64_t n) {
  __m256 acc = _mm256_setzero_ps();
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) acc = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), acc);
  float sum = HorizontalSum(acc);
  for (; i < n; ++i) sum += a[i] * b[i];
  return sum;
}

float DotF32F16(const float* a, const uint16_t* b, int64_t n) {
  __m256 acc = _mm256_setzero_ps();
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    const __m256 bv = _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(b + i)));
    acc = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), bv, acc);
  }
  float sum = HorizontalSum(acc);
  for (; i < n; ++i) sum += a[i] * HalfToFloat(b[i]);
  return sum;
}

void AxpyF32(float alpha, const float* x, int64_t n, float* y) {
  const __m256 s = _mm256_set1_ps(alpha);
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    _mm256_storeu_ps(y + i, _mm256_fmadd_ps(s, _mm256_loadu_ps(x + i), _mm256_loadu_ps(y + i)));
  }
  for (; i < n; ++i) y[i] += alpha * x[i];
}

void AxpyF16(float alpha, const uint16_t* x, int64_t n, float* y) {
  const __m256 s = _mm256_set1_ps(alpha);
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    const __m256 xv = _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(x + i)));
    _mm256_storeu_ps(y + i, _mm256_fmadd_ps(s, xv, _mm256_loadu_ps(y + i)));
  }
  for (; i < n; ++i) y[i] += alpha * HalfToFloat(x[i]);
}

void Scale(float* x, int64_t n, float alpha) {
  const __m256 s = _mm256_set1_ps(alpha);
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) _mm256_storeu_ps(x + i, _mm256_mul_ps(_mm256_loadu_ps(x + i), s));
  for (; i < n; ++i) x[i] *= alpha;
}

// Row j of K or V as f32: f16 rows are converted once into `buffer` and then reused by every
// query head of the group.
inline const float* RowAsFloat(const float* row, int, float*) { return row; }
inline const float* RowAsFloat(const uint16_t* row, int head_dim, float* buffer) {
  F16ToF32Row(row, head_dim, buffer);
  return buffer;
}

// Attention kernels take keys in groups of 8 or 16. For scores, one transpose per group puts the
// 8 keys in the lanes (kt[d][8]), and every query row of the call then multiplies broadcast q[d]
// by kt[d], with no horizontal sums. Each lane adds its key's terms in the order of d, so a key's
// score does not depend on which group it falls in.
inline __m256 Load8(const float* x) { return _mm256_loadu_ps(x); }
inline __m256 Load8(const uint16_t* x) {
  return _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(x)));
}

// Transposes one 8 x 8 block: kt[(d0 + c) * 8 + i] = element d0 + c of row i. Rows at or beyond
// n_rows read as zeros.
template <typename T>
void TransposeBlock(const T* rows, int64_t stride, int n_rows, int d0, float* kt) {
  __m256 r[8];
  SPARKV_UNROLL
  for (int i = 0; i < 8; ++i) r[i] = i < n_rows ? Load8(rows + i * stride + d0) : _mm256_setzero_ps();
  // After two steps u[4g + e] contains, in 128-bit lane L, element 4L + e of rows 4g to 4g + 3.
  // Column 4L + e then joins lane L of u[e] and of u[4 + e].
  __m256 t[8], u[8];
  SPARKV_UNROLL
  for (int g = 0; g < 4; ++g) {
    t[2 * g] = _mm256_unpacklo_ps(r[2 * g], r[2 * g + 1]);
    t[2 * g + 1] = _mm256_unpackhi_ps(r[2 * g], r[2 * g + 1]);
  }
  SPARKV_UNROLL
  for (int g = 0; g < 2; ++g) {
    u[4 * g + 0] = _mm256_shuffle_ps(t[4 * g], t[4 * g + 2], 0x44);
    u[4 * g + 1] = _mm256_shuffle_ps(t[4 * g], t[4 * g + 2], 0xEE);
    u[4 * g + 2] = _mm256_shuffle_ps(t[4 * g + 1], t[4 * g + 3], 0x44);
    u[4 * g + 3] = _mm256_shuffle_ps(t[4 * g + 1], t[4 * g + 3], 0xEE);
  }
  SPARKV_UNROLL
  for (int e = 0; e < 4; ++e) {
    _mm256_store_ps(kt + (d0 + e) * 8, _mm256_permute2f128_ps(u[e], u[4 + e], 0x20));
    _mm256_store_ps(kt + (d0 + 4 + e) * 8, _mm256_permute2f128_ps(u[e], u[4 + e], 0x31));
  }
}

// Computes the scores of RB query rows against the 8 keys of kt and stores the first n_keys.
template <int RB>
void ScoreRows(const float* q, int head_dim, const float* kt, float scale, float* out, int ld, int n_keys) {
  __m256 acc[RB];
  SPARKV_UNROLL
  for (int r = 0; r < RB; ++r) acc[r] = _mm256_setzero_ps();
  for (int d = 0; d < head_dim; ++d) {
    const __m256 column = _mm256_load_ps(kt + d * 8);
    SPARKV_UNROLL
    for (int r = 0; r < RB; ++r) acc[r] = _mm256_fmadd_ps(_mm256_broadcast_ss(q + r * head_dim + d), column, acc[r]);
  }
  const __m256 s = _mm256_set1_ps(scale);
  SPARKV_UNROLL
  for (int r = 0; r < RB; ++r) {
    const __m256 row = _mm256_mul_ps(acc[r], s);
    if (n_keys == 8) {
      _mm256_storeu_ps(out + r * ld, row);
    } else {
      alignas(32) float lanes[8];
      _mm256_store_ps(lanes, row);
      for (int j = 0; j < n_keys; ++j) out[r * ld + j] = lanes[j];
    }
  }
}

template <typename T>
void AttnScores(const float* q, int n_q, int head_dim, const T* k, int64_t k_stride, int n_keys, float scale,
                float* scores, int ld) {
  if (head_dim % 8 != 0) {
    alignas(32) float buffer[kMaxHeadDim];
    for (int j = 0; j < n_keys; ++j) {
      const float* key = RowAsFloat(k + j * k_stride, head_dim, buffer);
      for (int r = 0; r < n_q; ++r) scores[r * ld + j] = scale * DotF32(q + r * head_dim, key, head_dim);
    }
    return;
  }
  alignas(32) float kt[kMaxHeadDim * 8];
  constexpr int kRows = 8;
  for (int j = 0; j < n_keys; j += 8) {
    const int n_group = n_keys - j < 8 ? n_keys - j : 8;
    for (int d0 = 0; d0 < head_dim; d0 += 8) TransposeBlock(k + j * k_stride, k_stride, n_group, d0, kt);
    int r = 0;
    for (; r + kRows <= n_q; r += kRows) {
      ScoreRows<kRows>(q + r * head_dim, head_dim, kt, scale, scores + r * ld + j, ld, n_group);
    }
    const float* qr = q + r * head_dim;
    float* out = scores + r * ld + j;
    switch (n_q - r) {
      case 7: ScoreRows<7>(qr, head_dim, kt, scale, out, ld, n_group); break;
      case 6: ScoreRows<6>(qr, head_dim, kt, scale, out, ld, n_group); break;
      case 5: ScoreRows<5>(qr, head_dim, kt, scale, out, ld, n_group); break;
      case 4: ScoreRows<4>(qr, head_dim, kt, scale, out, ld, n_group); break;
      case 3: ScoreRows<3>(qr, head_dim, kt, scale, out, ld, n_group); break;
      case 2: ScoreRows<2>(qr, head_dim, kt, scale, out, ld, n_group); break;
      case 1: ScoreRows<1>(qr, head_dim, kt, scale, out, ld, n_group); break;
      default: break;
    }
  }
}

// Adds p[r * ld + j] * row j, over the n_keys rows, to columns [0, 8 CB) of acc for RB query rows.
// The accumulators stay in registers across the keys, which are added in order, as in the scalar
// kernel.
template <int RB, int CB>
void ValueTile(const float* p, int ld, const float* rows, int64_t stride, int n_keys, float* acc, int head_dim) {
  __m256 a[RB][CB];
  SPARKV_UNROLL
  for (int r = 0; r < RB; ++r) {
    SPARKV_UNROLL
    for (int c = 0; c < CB; ++c) a[r][c] = _mm256_loadu_ps(acc + r * head_dim + 8 * c);
  }
  for (int j = 0; j < n_keys; ++j) {
    __m256 v[CB];
    SPARKV_UNROLL
    for (int c = 0; c < CB; ++c) v[c] = _mm256_loadu_ps(rows + j * stride + 8 * c);
    SPARKV_UNROLL
    for (int r = 0; r < RB; ++r) {
      const __m256 pr = _mm256_broadcast_ss(p + r * ld + j);
      SPARKV_UNROLL
      for (int c = 0; c < CB; ++c) a[r][c] = _mm256_fmadd_ps(pr, v[c], a[r][c]);
    }
  }
  SPARKV_UNROLL
  for (int r = 0; r < RB; ++r) {
    SPARKV_UNROLL
    for (int c = 0; c < CB; ++c) _mm256_storeu_ps(acc + r * head_dim + 8 * c, a[r][c]);
  }
}

template <int RB>
void ValueRows(const float* p, int ld, const float* rows, int64_t stride, int n_keys, float* acc, int head_dim) {
  constexpr int kColumns = 2;  // 4 rows x 2 blocks: 8 accumulators of the 16 registers
  int c = 0;
  for (; c + 8 * kColumns <= head_dim; c += 8 * kColumns) {
    ValueTile<RB, kColumns>(p, ld, rows + c, stride, n_keys, acc + c, head_dim);
  }
  if (c < head_dim) ValueTile<RB, 1>(p, ld, rows + c, stride, n_keys, acc + c, head_dim);
}

// Adds probabilities times value rows into acc. F16 rows are converted 16 keys at a time into a
// buffer that every query row then reads.
template <typename T>
void AttnValues(const float* p, int n_q, int ld, const T* v, int64_t v_stride, int n_keys, int head_dim, float* acc) {
  alignas(32) float buffer[16 * kMaxHeadDim];
  if (head_dim % 8 != 0) {
    for (int j = 0; j < n_keys; ++j) {
      const float* value = RowAsFloat(v + j * v_stride, head_dim, buffer);
      for (int r = 0; r < n_q; ++r) AxpyF32(p[r * ld + j], value, head_dim, acc + r * head_dim);
    }
    return;
  }
  constexpr int kRows = 4;
  for (int j = 0; j < n_keys; j += 16) {
    const int n_group = n_keys - j < 16 ? n_keys - j : 16;
    const float* rows;
    int64_t stride;
    if constexpr (sizeof(T) == sizeof(float)) {
      rows = v + j * v_stride;
      stride = v_stride;
    } else {
      for (int jj = 0; jj < n_group; ++jj) F16ToF32Row(v + (j + jj) * v_stride, head_dim, buffer + jj * head_dim);
      rows = buffer;
      stride = head_dim;
    }
    int r = 0;
    for (; r + kRows <= n_q; r += kRows) {
      ValueRows<kRows>(p + r * ld + j, ld, rows, stride, n_group, acc + r * head_dim, head_dim);
    }
    const float* pr = p + r * ld + j;
    float* ar = acc + r * head_dim;
    switch (n_q - r) {
      case 3: ValueRows<3>(pr, ld, rows, stride, n_group, ar, head_dim); break;
      case 2: ValueRows<2>(pr, ld, rows, stride, n_group, ar, head_dim); break;
      case 1: ValueRows<1>(pr, ld, rows, stride, n_group, ar, head_dim); break;
      default: break;
    }
  }
}

const KernelTable kAvx2Table = {
    .name = "avx2",
    .matmul_f32 = MatMulF32,
    .matmul_f16 = MatMulF16,
    .matmul_bf16 = MatMulBf16,
    .matmul_q8_0 = MatMulQ8_0,
    .matmul_q4_0 = MatMulQ4_0,
    .matmul_q4_k = MatMulQ4_K,
    .matmul_q6_k = MatMulQ6_K,
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

}  // namespace

namespace internal {
const KernelTable& Avx2Table() { return kAvx2Table; }
}  // namespace internal

}  // namespace sparkv::kernels
