// AVX-512 kernels with VNNI. This file is compiled with -mavx512f -mavx512bw -mavx512vl
// -mavx512dq -mavx512vnni on top of the AVX2 set, so the rule of kernels_avx2.cc applies here
// too. Nothing in it may be shared with another file (no inline functions from headers, no std
// templates), or the linker could keep this file's copy for a CPU without AVX-512. Everything is
// in an anonymous namespace or an intrinsic. The matrix products replace the AVX2 table's, and
// the other kernels are the AVX2 ones.
#if defined(__GNUC__) && !defined(__clang__)
// GCC 12's AVX-512 intrinsics (casts, inserts, conversions) start from an undefined vector that
// the instruction overwrites, and warn at their header lines that it may be used uninitialized.
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif
#include <immintrin.h>

#include <cstring>
#include <new>

#include "engine/kernels.h"

namespace sparkv::kernels {
namespace {

// Fully unrolls a loop over a tile's rows or tokens. GCC 12 keeps a tile's accumulator array in
// registers only when every loop over it (zeroing, update, reduction) is unrolled early, and
// otherwise stores each accumulator to the stack on every step of the inner product.
#define SPARKV_UNROLL _Pragma("GCC unroll 16")

inline int64_t Min(int64_t a, int64_t b) { return a < b ? a : b; }
inline int64_t Max(int64_t a, int64_t b) { return a > b ? a : b; }

// Two Q8 activation blocks (64 inputs) of one token, laid out for vpdpbusd. vpdpbusd multiplies
// unsigned by signed bytes, so the kernel feeds it the weights plus 128 (as unsigned) and these
// signed quants. bias_fix undoes the bias: lane i starts at -128 times the sum of quants 4i to
// 4i+3, so the instruction returns the exact dot product. d holds each
// block's scale in the eight lanes of that block.
struct alignas(64) ActPair {
  int8_t qs[64];
  int32_t bias_fix[16];
  float d[16];
};
static_assert(sizeof(ActPair) == 192, "one pair is three cache lines");

// The repacked activations of one token panel, per thread, grown as needed.
template <typename Pair>
class PairBuffer {
 public:
  PairBuffer() = default;
  PairBuffer(const PairBuffer&) = delete;
  PairBuffer& operator=(const PairBuffer&) = delete;
  ~PairBuffer() { Release(); }

  Pair* Get(int64_t n) {
    if (n > capacity_) {
      Release();
      data_ = static_cast<Pair*>(::operator new[](static_cast<size_t>(n) * sizeof(Pair), std::align_val_t{64}));
      capacity_ = n;
    }
    return data_;
  }

 private:
  void Release() {
    if (data_ != nullptr) ::operator delete[](data_, std::align_val_t{64});
    data_ = nullptr;
    capacity_ = 0;
  }

  Pair* data_ = nullptr;
  int64_t capacity_ = 0;
};

thread_local PairBuffer<ActPair> t_pairs;

// Bytes of repacked activations per token panel: a panel stays in L2 while every row block of
// the range passes over it, as kPanelBytes does in kernels_avx2.cc.
constexpr int64_t kPanelPairBytes = 512 * 1024;

// Repacks the n_blocks activation blocks of one token into (n_blocks + 1) / 2 pairs. An odd last
// block is paired with zeros, which add nothing to any product.
// Eight lanes of a, then eight of b.
inline __m512 Halves(float a, float b) {
  return _mm512_insertf32x8(_mm512_castps256_ps512(_mm256_set1_ps(a)), _mm256_set1_ps(b), 1);
}

// Loads blocks 2p and 2p + 1 of one token: their quants, and each block's scale in the eight
// lanes of that block. A missing second block reads as zeros.
inline void LoadBlockPair(const BlockQ8Act* x, int64_t n_blocks, int64_t p, __m512i* q, __m512* d) {
  const BlockQ8Act& first = x[2 * p];
  const bool has_second = 2 * p + 1 < n_blocks;
  const __m256i lo = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(first.qs));
  const __m256i hi =
      has_second ? _mm256_loadu_si256(reinterpret_cast<const __m256i*>(x[2 * p + 1].qs)) : _mm256_setzero_si256();
  *q = _mm512_inserti64x4(_mm512_castsi256_si512(lo), hi, 1);
  *d = Halves(first.d, has_second ? x[2 * p + 1].d : 0.0f);
}

void RepackToken(const BlockQ8Act* x, int64_t n_blocks, ActPair* out) {
  const __m512i ones = _mm512_set1_epi8(1);
  for (int64_t p = 0; 2 * p < n_blocks; ++p) {
    __m512i q;
    __m512 d;
    LoadBlockPair(x, n_blocks, p, &q, &d);
    _mm512_store_si512(out[p].qs, q);
    const __m512i sums = _mm512_dpbusd_epi32(_mm512_setzero_si512(), ones, q);
    _mm512_store_si512(out[p].bias_fix, _mm512_sub_epi32(_mm512_setzero_si512(), _mm512_slli_epi32(sums, 7)));
    _mm512_store_ps(out[p].d, d);
  }
}

// RB weight rows x TB tokens of a panel. Per pair of blocks, each (row, token) takes one vpdpbusd
// for 64 multiply-adds, one convert and two float operations for the scales. Each weight pair is
// loaded, biased and its scales expanded once for TB tokens.
template <int RB, int TB>
inline void TileQ8(const MatMulArgs& a, int64_t r0, const ActPair* pairs, int64_t n_pairs, int64_t panel_t0,
                   int64_t t0) {
  const uint8_t* w[RB];
  SPARKV_UNROLL
  for (int r = 0; r < RB; ++r) w[r] = a.w + (r0 + r) * a.w_row_bytes;
  __m512 acc[RB][TB];
  SPARKV_UNROLL
  for (int r = 0; r < RB; ++r) {
    SPARKV_UNROLL
    for (int t = 0; t < TB; ++t) acc[r][t] = _mm512_setzero_ps();
  }
  const __m512i bias = _mm512_set1_epi8(static_cast<char>(0x80));
  const int64_t n_blocks = a.n_in / kQ8BlockSize;
  for (int64_t p = 0; p < n_pairs; ++p) {
    const bool has_second = 2 * p + 1 < n_blocks;
    __m512i wq[RB];
    __m512 wd[RB];
    SPARKV_UNROLL
    for (int r = 0; r < RB; ++r) {
      const uint8_t* block = w[r] + 2 * p * static_cast<int64_t>(kQ8_0BlockBytes);
      const __m256i lo = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(block + 2));
      const __m256i hi = has_second
                             ? _mm256_loadu_si256(reinterpret_cast<const __m256i*>(block + kQ8_0BlockBytes + 2))
                             : _mm256_setzero_si256();
      wq[r] = _mm512_xor_si512(_mm512_inserti64x4(_mm512_castsi256_si512(lo), hi, 1), bias);
      uint16_t d_first;
      uint16_t d_second = 0;
      std::memcpy(&d_first, block, 2);
      if (has_second) std::memcpy(&d_second, block + kQ8_0BlockBytes, 2);
      const __m256i halves = _mm256_inserti128_si256(
          _mm256_castsi128_si256(_mm_set1_epi16(static_cast<short>(d_first))), _mm_set1_epi16(static_cast<short>(d_second)),
          1);
      wd[r] = _mm512_cvtph_ps(halves);
    }
    SPARKV_UNROLL
    for (int t = 0; t < TB; ++t) {
      const ActPair& x = pairs[(panel_t0 + t) * n_pairs + p];
      const __m512i xq = _mm512_load_si512(x.qs);
      const __m512i fix = _mm512_load_si512(x.bias_fix);
      const __m512 xd = _mm512_load_ps(x.d);
      SPARKV_UNROLL
      for (int r = 0; r < RB; ++r) {
        const __m512i dot = _mm512_dpbusd_epi32(fix, wq[r], xq);
        acc[r][t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(dot), _mm512_mul_ps(wd[r], xd), acc[r][t]);
      }
    }
  }
  SPARKV_UNROLL
  for (int r = 0; r < RB; ++r) {
    SPARKV_UNROLL
    for (int t = 0; t < TB; ++t) a.y[(t0 + t) * a.ldy + r0 + r] = _mm512_reduce_add_ps(acc[r][t]);
  }
}

// Every token of a panel for rows [r, r + RB): 6 tokens at a time, then the tail.
template <int RB>
void RowsOverPanel(const MatMulArgs& a, int64_t r, const ActPair* pairs, int64_t n_pairs, int64_t n_panel,
                   int64_t p0) {
  constexpr int kTokens = 6;
  int64_t t = 0;
  for (; t + kTokens <= n_panel; t += kTokens) TileQ8<RB, kTokens>(a, r, pairs, n_pairs, t, p0 + t);
  switch (n_panel - t) {
    case 5: TileQ8<RB, 5>(a, r, pairs, n_pairs, t, p0 + t); break;
    case 4: TileQ8<RB, 4>(a, r, pairs, n_pairs, t, p0 + t); break;
    case 3: TileQ8<RB, 3>(a, r, pairs, n_pairs, t, p0 + t); break;
    case 2: TileQ8<RB, 2>(a, r, pairs, n_pairs, t, p0 + t); break;
    case 1: TileQ8<RB, 1>(a, r, pairs, n_pairs, t, p0 + t); break;
    default: break;
  }
}

// Drives a product over repacked activation pairs: token panels of at most kPanelPairBytes,
// each repacked once by Kernel::Repack, then rows in blocks of kRows and the rest one by one.
template <typename Kernel>
void MatMulPairs(const MatMulArgs& a, PairBuffer<typename Kernel::Pair>& buffer) {
  using Pair = typename Kernel::Pair;
  const int64_t n_blocks = a.n_in / kQ8BlockSize;
  const int64_t n_pairs = (n_blocks + 1) / 2;
  if (n_pairs == 0 || a.n_tokens == 0 || a.row_begin >= a.row_end) {
    for (int64_t t = 0; t < a.n_tokens; ++t) {
      for (int64_t r = a.row_begin; r < a.row_end; ++r) a.y[t * a.ldy + r] = 0.0f;
    }
    return;
  }
  const int64_t token_bytes = n_pairs * static_cast<int64_t>(sizeof(Pair));
  const int64_t panel = Max(8, kPanelPairBytes / token_bytes / 8 * 8);
  Pair* pairs = buffer.Get(Min(panel, a.n_tokens) * n_pairs);
  constexpr int kRows = Kernel::kRows;
  const int64_t rows_end = a.row_begin + (a.row_end - a.row_begin) / kRows * kRows;
  for (int64_t p0 = 0; p0 < a.n_tokens; p0 += panel) {
    const int64_t n_panel = Min(a.n_tokens, p0 + panel) - p0;
    for (int64_t t = 0; t < n_panel; ++t) {
      const auto* x = reinterpret_cast<const BlockQ8Act*>(static_cast<const uint8_t*>(a.x) + (p0 + t) * a.x_row_bytes);
      Kernel::Repack(x, n_blocks, pairs + t * n_pairs);
    }
    for (int64_t r = a.row_begin; r < rows_end; r += kRows) {
      Kernel::template Rows<kRows>(a, r, pairs, n_pairs, n_panel, p0);
    }
    for (int64_t r = rows_end; r < a.row_end; ++r) Kernel::template Rows<1>(a, r, pairs, n_pairs, n_panel, p0);
  }
}

// 4 rows x 6 tokens: 24 accumulators, 4 weight pairs and their scales fill the 32 ZMM registers.
// Measured on one core of a Xeon (family 6, model 207), 896 x 4864 x 256 tokens: 58 GMAC/s,
// against 50 with 2 x 8, 52 with 5 x 4 and 38 for the AVX2 kernel.
struct Q8Kernel {
  using Pair = ActPair;
  static constexpr int kRows = 4;
  static void Repack(const BlockQ8Act* x, int64_t n_blocks, ActPair* out) { RepackToken(x, n_blocks, out); }
  template <int RB>
  static void Rows(const MatMulArgs& a, int64_t r, const ActPair* pairs, int64_t n_pairs, int64_t n_panel,
                   int64_t p0) {
    RowsOverPanel<RB>(a, r, pairs, n_pairs, n_panel, p0);
  }
};

void MatMulQ8_0(const MatMulArgs& a) { MatMulPairs<Q8Kernel>(a, t_pairs); }

// ---- Q4_0, Q4_K and Q6_K weights: unsigned codes ----
//
// These formats store each weight as an unsigned code c and per-group factors, so that
// w = scale * c - min: Q4_0 has c in [0, 15] with min = 8 * scale, Q4_K has nibbles with a
// 6-bit scale and min per 32 inputs, and Q6_K has 6-bit codes with min = 32 * scale per 16 inputs.
// vpdpbusd multiplies the unsigned codes by the signed activation quants as they are, so no bias
// is needed, and the mins take one more multiply-add with the activations' scaled block sums.

// Two Q8 activation blocks (64 inputs) of one token for the unsigned-code products: the quants,
// each block's scale in the eight lanes of that block, and per lane that scale times the sum of
// the lane's four quants.
struct alignas(64) ActPairSums {
  int8_t qs[64];
  float d[16];
  float d_sum[16];
};
static_assert(sizeof(ActPairSums) == 192, "one pair is three cache lines");

thread_local PairBuffer<ActPairSums> t_sum_pairs;

// Repacks the n_blocks activation blocks of one token into (n_blocks + 1) / 2 pairs. An odd last
// block is paired with zeros, which add nothing to any product.
void RepackTokenSums(const BlockQ8Act* x, int64_t n_blocks, ActPairSums* out) {
  const __m512i ones = _mm512_set1_epi8(1);
  for (int64_t p = 0; 2 * p < n_blocks; ++p) {
    __m512i q;
    __m512 d;
    LoadBlockPair(x, n_blocks, p, &q, &d);
    _mm512_store_si512(out[p].qs, q);
    _mm512_store_ps(out[p].d, d);
    const __m512i sums = _mm512_dpbusd_epi32(_mm512_setzero_si512(), ones, q);
    _mm512_store_ps(out[p].d_sum, _mm512_mul_ps(_mm512_cvtepi32_ps(sums), d));
  }
}

// The codes of one weight row's pair of blocks, with each lane's scale and min.
struct CodePair {
  __m512i code;
  __m512 scale;
  __m512 min;
};

inline float Half(const uint8_t* p) {
  uint16_t h;
  std::memcpy(&h, p, 2);
  return _cvtsh_ss(h);
}

struct CodesQ4_0 {
  static CodePair Run(const uint8_t* row, int64_t p, int64_t n_blocks) {
    const __m128i low4 = _mm_set1_epi8(0x0F);
    auto block_codes = [&](int64_t b) {
      const __m128i packed = _mm_loadu_si128(reinterpret_cast<const __m128i*>(row + b * kQ4_0BlockBytes + 2));
      return _mm256_set_m128i(_mm_and_si128(_mm_srli_epi16(packed, 4), low4), _mm_and_si128(packed, low4));
    };
    const bool has_second = 2 * p + 1 < n_blocks;
    const float d0 = Half(row + 2 * p * kQ4_0BlockBytes);
    const float d1 = has_second ? Half(row + (2 * p + 1) * kQ4_0BlockBytes) : 0.0f;
    const __m256i second = has_second ? block_codes(2 * p + 1) : _mm256_setzero_si256();
    const __m512 scale = Halves(d0, d1);
    return {_mm512_inserti64x4(_mm512_castsi256_si512(block_codes(2 * p)), second, 1), scale,
            _mm512_mul_ps(scale, _mm512_set1_ps(8.0f))};
  }
};

struct CodesQ4_K {
  static CodePair Run(const uint8_t* row, int64_t p, int64_t n_blocks) {
    (void)n_blocks;  // a multiple of 8
    const uint8_t* block = row + (p / 4) * static_cast<int64_t>(kQ4_KBlockBytes);
    const int c = static_cast<int>(p % 4);
    // Bytes [32c, 32c + 32) of the nibbles: sub-block 2c in the low, 2c + 1 in the high nibbles.
    const __m256i bytes = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(block + 16 + 32 * c));
    const __m256i low4 = _mm256_set1_epi8(0x0F);
    const __m512i code = _mm512_inserti64x4(_mm512_castsi256_si512(_mm256_and_si256(bytes, low4)),
                                            _mm256_and_si256(_mm256_srli_epi16(bytes, 4), low4), 1);
    const uint8_t* scales = block + 4;
    int scale[2], min[2];
    for (int k = 0; k < 2; ++k) {
      const int j = 2 * c + k;
      if (j < 4) {
        scale[k] = scales[j] & 63;
        min[k] = scales[j + 4] & 63;
      } else {
        scale[k] = (scales[j + 4] & 0xF) | ((scales[j - 4] >> 6) << 4);
        min[k] = (scales[j + 4] >> 4) | ((scales[j] >> 6) << 4);
      }
    }
    const float d = Half(block);
    const float d_min = Half(block + 2);
    return {code, Halves(d * static_cast<float>(scale[0]), d * static_cast<float>(scale[1])),
            Halves(d_min * static_cast<float>(min[0]), d_min * static_cast<float>(min[1]))};
  }
};

struct CodesQ6_K {
  static CodePair Run(const uint8_t* row, int64_t p, int64_t n_blocks) {
    (void)n_blocks;  // a multiple of 8
    const uint8_t* block = row + (p / 4) * static_cast<int64_t>(kQ6_KBlockBytes);
    // The pair holds 32-input blocks 2c and 2c + 1 of the super-block. Both take their low 4 bits
    // from the same 64 bytes of ql at one nibble shift. Their high 2 bits come from the same 32
    // bytes of qh, shifted by 2 * quarter0 and 2 * quarter0 + 2.
    const int c = static_cast<int>(p % 4);
    const int half = c / 2;
    const int quarter0 = 2 * (c % 2);
    const __m512i ql = _mm512_loadu_si512(block + 64 * half);
    const __m512i low = _mm512_and_si512(_mm512_srli_epi16(ql, 4 * (quarter0 / 2)), _mm512_set1_epi8(0x0F));
    const __m256i qh = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(block + 128 + 32 * half));
    const __m512i qh_both = _mm512_inserti64x4(_mm512_castsi256_si512(_mm256_srli_epi16(qh, 2 * quarter0)),
                                               _mm256_srli_epi16(qh, 2 * quarter0 + 2), 1);
    const __m512i high = _mm512_slli_epi16(_mm512_and_si512(qh_both, _mm512_set1_epi8(3)), 4);
    const __m512i code = _mm512_or_si512(low, high);
    // Four int8 scales, one per 16 inputs: lanes 0-3, 4-7, 8-11, 12-15.
    int32_t scales4;
    std::memcpy(&scales4, block + 192 + 8 * half + 2 * quarter0, 4);
    const __m512i spread = _mm512_permutexvar_epi32(_mm512_setr_epi32(0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3),
                                                    _mm512_cvtepi8_epi32(_mm_cvtsi32_si128(scales4)));
    const __m512 scale = _mm512_mul_ps(_mm512_cvtepi32_ps(spread), _mm512_set1_ps(Half(block + 208)));
    return {code, scale, _mm512_mul_ps(scale, _mm512_set1_ps(32.0f))};
  }
};

// RB weight rows x TB tokens of a panel. Per pair of blocks, each (row, token) takes one vpdpbusd
// for 64 multiply-adds, one convert and three float operations for the scales and mins. Each
// row's codes are decoded once for TB tokens.
template <typename Codes, int RB, int TB>
inline void TileCodes(const MatMulArgs& a, int64_t r0, const ActPairSums* pairs, int64_t n_pairs, int64_t panel_t0,
                      int64_t t0) {
  const uint8_t* w[RB];
  SPARKV_UNROLL
  for (int r = 0; r < RB; ++r) w[r] = a.w + (r0 + r) * a.w_row_bytes;
  __m512 acc[RB][TB];
  SPARKV_UNROLL
  for (int r = 0; r < RB; ++r) {
    SPARKV_UNROLL
    for (int t = 0; t < TB; ++t) acc[r][t] = _mm512_setzero_ps();
  }
  const int64_t n_blocks = a.n_in / kQ8BlockSize;
  for (int64_t p = 0; p < n_pairs; ++p) {
    CodePair codes[RB];
    SPARKV_UNROLL
    for (int r = 0; r < RB; ++r) codes[r] = Codes::Run(w[r], p, n_blocks);
    SPARKV_UNROLL
    for (int t = 0; t < TB; ++t) {
      const ActPairSums& x = pairs[(panel_t0 + t) * n_pairs + p];
      const __m512i xq = _mm512_load_si512(x.qs);
      const __m512 xd = _mm512_load_ps(x.d);
      const __m512 xd_sum = _mm512_load_ps(x.d_sum);
      SPARKV_UNROLL
      for (int r = 0; r < RB; ++r) {
        const __m512i dot = _mm512_dpbusd_epi32(_mm512_setzero_si512(), codes[r].code, xq);
        acc[r][t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(dot), _mm512_mul_ps(codes[r].scale, xd), acc[r][t]);
        acc[r][t] = _mm512_fnmadd_ps(codes[r].min, xd_sum, acc[r][t]);
      }
    }
  }
  SPARKV_UNROLL
  for (int r = 0; r < RB; ++r) {
    SPARKV_UNROLL
    for (int t = 0; t < TB; ++t) a.y[(t0 + t) * a.ldy + r0 + r] = _mm512_reduce_add_ps(acc[r][t]);
  }
}

template <typename Codes, int RB>
void CodeRowsOverPanel(const MatMulArgs& a, int64_t r, const ActPairSums* pairs, int64_t n_pairs, int64_t n_panel,
                       int64_t p0) {
  constexpr int kTokens = 4;
  int64_t t = 0;
  for (; t + kTokens <= n_panel; t += kTokens) TileCodes<Codes, RB, kTokens>(a, r, pairs, n_pairs, t, p0 + t);
  switch (n_panel - t) {
    case 3: TileCodes<Codes, RB, 3>(a, r, pairs, n_pairs, t, p0 + t); break;
    case 2: TileCodes<Codes, RB, 2>(a, r, pairs, n_pairs, t, p0 + t); break;
    case 1: TileCodes<Codes, RB, 1>(a, r, pairs, n_pairs, t, p0 + t); break;
    default: break;
  }
}

// 4 rows x 4 tokens: 16 accumulators and 4 rows of codes, scales and mins in the 32 ZMM registers.
template <typename Codes>
struct CodesKernel {
  using Pair = ActPairSums;
  static constexpr int kRows = 4;
  static void Repack(const BlockQ8Act* x, int64_t n_blocks, ActPairSums* out) { RepackTokenSums(x, n_blocks, out); }
  template <int RB>
  static void Rows(const MatMulArgs& a, int64_t r, const ActPairSums* pairs, int64_t n_pairs, int64_t n_panel,
                   int64_t p0) {
    CodeRowsOverPanel<Codes, RB>(a, r, pairs, n_pairs, n_panel, p0);
  }
};

template <typename Codes>
void MatMulCodes(const MatMulArgs& a) {
  MatMulPairs<CodesKernel<Codes>>(a, t_sum_pairs);
}

// ---- F32, F16 and BF16 weights x f32 activations ----

// 16 weights from element i, converted to f32; `mask` selects the lanes of a tail.
struct Wide32 {
  static __m512 Vec(const uint8_t* w, int64_t i, __mmask16 mask) {
    return _mm512_maskz_loadu_ps(mask, reinterpret_cast<const float*>(w) + i);
  }
};
struct Wide16 {
  static __m512 Vec(const uint8_t* w, int64_t i, __mmask16 mask) {
    return _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(mask, w + 2 * i));
  }
};
struct WideBf16 {
  static __m512 Vec(const uint8_t* w, int64_t i, __mmask16 mask) {
    const __m512i wide = _mm512_cvtepu16_epi32(_mm256_maskz_loadu_epi16(mask, w + 2 * i));
    return _mm512_castsi512_ps(_mm512_slli_epi32(wide, 16));
  }
};

// RB weight rows x TB tokens: each weight vector is loaded and converted once for TB tokens and
// each activation vector once for RB rows. The last n_in % 16 inputs take masked loads, whose
// zero lanes add nothing.
template <typename Load, int RB, int TB>
inline void TileWide(const MatMulArgs& a, int64_t r0, int64_t t0) {
  const uint8_t* w[RB];
  const float* x[TB];
  SPARKV_UNROLL
  for (int r = 0; r < RB; ++r) w[r] = a.w + (r0 + r) * a.w_row_bytes;
  SPARKV_UNROLL
  for (int t = 0; t < TB; ++t) {
    x[t] = reinterpret_cast<const float*>(static_cast<const uint8_t*>(a.x) + (t0 + t) * a.x_row_bytes);
  }
  __m512 acc[RB][TB];
  SPARKV_UNROLL
  for (int r = 0; r < RB; ++r) {
    SPARKV_UNROLL
    for (int t = 0; t < TB; ++t) acc[r][t] = _mm512_setzero_ps();
  }

  for (int64_t i = 0; i < a.n_in; i += 16) {
    const int64_t left = a.n_in - i;
    const __mmask16 mask = left >= 16 ? static_cast<__mmask16>(0xFFFF) : static_cast<__mmask16>((1u << left) - 1);
    __m512 xv[TB];
    SPARKV_UNROLL
    for (int t = 0; t < TB; ++t) xv[t] = _mm512_maskz_loadu_ps(mask, x[t] + i);
    SPARKV_UNROLL
    for (int r = 0; r < RB; ++r) {
      const __m512 wv = Load::Vec(w[r], i, mask);
      SPARKV_UNROLL
      for (int t = 0; t < TB; ++t) acc[r][t] = _mm512_fmadd_ps(wv, xv[t], acc[r][t]);
    }
  }

  SPARKV_UNROLL
  for (int r = 0; r < RB; ++r) {
    SPARKV_UNROLL
    for (int t = 0; t < TB; ++t) a.y[(t0 + t) * a.ldy + r0 + r] = _mm512_reduce_add_ps(acc[r][t]);
  }
}

// Every token of a panel for rows [r, r + RB): 6 tokens at a time, then the tail.
template <typename Load, int RB>
void WideRowsOverPanel(const MatMulArgs& a, int64_t r, int64_t p0, int64_t p1) {
  constexpr int kTokens = 6;
  int64_t t = p0;
  for (; t + kTokens <= p1; t += kTokens) TileWide<Load, RB, kTokens>(a, r, t);
  switch (p1 - t) {
    case 5: TileWide<Load, RB, 5>(a, r, t); break;
    case 4: TileWide<Load, RB, 4>(a, r, t); break;
    case 3: TileWide<Load, RB, 3>(a, r, t); break;
    case 2: TileWide<Load, RB, 2>(a, r, t); break;
    case 1: TileWide<Load, RB, 1>(a, r, t); break;
    default: break;
  }
}

// Token panels of at most 512 KiB of activations, so a panel stays in L2 while every 4-row block
// of the range passes over it. 4 rows x 6 tokens: 24 accumulators, 6 activation vectors and one
// weight vector fill the 32 ZMM registers.
template <typename Load>
void MatMulWide(const MatMulArgs& a) {
  constexpr int kRows = 4;
  const int64_t row_bytes = Max(1, static_cast<int64_t>(a.x_row_bytes));
  const int64_t panel = Max(6, kPanelPairBytes / row_bytes / 6 * 6);
  const int64_t rows_end = a.row_begin + (a.row_end - a.row_begin) / kRows * kRows;
  for (int64_t p0 = 0; p0 < a.n_tokens; p0 += panel) {
    const int64_t p1 = Min(a.n_tokens, p0 + panel);
    for (int64_t r = a.row_begin; r < rows_end; r += kRows) WideRowsOverPanel<Load, kRows>(a, r, p0, p1);
    for (int64_t r = rows_end; r < a.row_end; ++r) WideRowsOverPanel<Load, 1>(a, r, p0, p1);
  }
}

void MatMulF32(const MatMulArgs& a) { MatMulWide<Wide32>(a); }
void MatMulF16(const MatMulArgs& a) { MatMulWide<Wide16>(a); }
void MatMulBf16(const MatMulArgs& a) { MatMulWide<WideBf16>(a); }

void MatMulQ4_0(const MatMulArgs& a) { MatMulCodes<CodesQ4_0>(a); }
void MatMulQ4_K(const MatMulArgs& a) { MatMulCodes<CodesQ4_K>(a); }
void MatMulQ6_K(const MatMulArgs& a) { MatMulCodes<CodesQ6_K>(a); }

}  // namespace

namespace internal {

const KernelTable& Avx512Table() {
  static const KernelTable table = [] {
    KernelTable t = Avx2Table();
    t.name = "avx512-vnni";
    t.matmul_f32 = MatMulF32;
    t.matmul_f16 = MatMulF16;
    t.matmul_bf16 = MatMulBf16;
    t.matmul_q8_0 = MatMulQ8_0;
    t.matmul_q4_0 = MatMulQ4_0;
    t.matmul_q4_k = MatMulQ4_K;
    t.matmul_q6_k = MatMulQ6_K;
    return t;
  }();
  return table;
}

}  // namespace internal
}  // namespace sparkv::kernels
