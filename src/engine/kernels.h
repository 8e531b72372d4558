// Numeric kernels of the forward pass, each with a scalar reference and SIMD versions picked at
// run time. The scalar table is the specification: every SIMD entry is tested against it.
//
// Matrix products take a weight matrix in its GGUF layout (row r = the n_in weights of output r)
// and a batch of activation rows, and compute y[t][r] = dot(w[r], x[t]) for a range of rows. The
// SIMD versions tile rows x tokens inside L2-sized token panels, so each weight row is read from
// memory once per panel (160 KiB of activations) however many tokens the panel contains. Prefill
// runs them as GEMM, and decode (a batch of one) as GEMV.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

namespace sparkv::kernels {

inline constexpr int kQ8BlockSize = 32;            // elements per Q8_0 block
inline constexpr size_t kQ8_0BlockBytes = 34;      // GGUF Q8_0: f16 scale, then 32 int8
// GGUF Q4_0: f16 scale d, then 16 bytes. Byte i contains element i in its low nibble and element
// i + 16 in its high nibble, each meaning d * (nibble - 8).
inline constexpr size_t kQ4_0BlockBytes = 18;
// K-quant super-blocks of 256 elements.
inline constexpr int kQKBlockSize = 256;
// GGUF Q4_K: f16 d, f16 dmin, 12 bytes of 6-bit (scale, min) pairs for 8 sub-blocks of 32, then
// 128 bytes of nibbles. Element = d * scale_j * nibble - dmin * min_j. Bytes [32c, 32c + 32) of
// the nibbles contain sub-block 2c in their low and sub-block 2c + 1 in their high nibbles.
inline constexpr size_t kQ4_KBlockBytes = 144;
// GGUF Q6_K: 128 bytes of low 4 bits (ql), 64 bytes of high 2 bits (qh), 16 int8 scales (one per
// 16 elements), then f16 d. Element = d * scale * (6-bit value - 32).
inline constexpr size_t kQ6_KBlockBytes = 210;

// Activations quantized for a Q8_0 product: one block per 32 inputs. The scale stays f32 (GGUF
// weights store f16) because activations are quantized afresh each call and never stored.
struct BlockQ8Act {
  float d;                   // x[i] ~= d * qs[i]
  int8_t qs[kQ8BlockSize];   // in [-127, 127]
};

struct MatMulArgs {
  const uint8_t* w = nullptr;  // [n_out][w_row_bytes]; only rows [row_begin, row_end) are read
  size_t w_row_bytes = 0;
  int64_t n_in = 0;            // inputs per row; a multiple of 32 for Q8_0/Q4_0, 256 for K-quants
  // [n_tokens] rows, x_row_bytes apart: f32 [n_in] for F32/F16/BF16 weights, BlockQ8Act
  // [n_in / 32] for the quantized weights (Q8_0, Q4_0, Q4_K, Q6_K).
  const void* x = nullptr;
  size_t x_row_bytes = 0;
  int64_t n_tokens = 0;
  float* y = nullptr;          // y[t * ldy + r] for t in [0, n_tokens), r in [row_begin, row_end)
  int64_t ldy = 0;
  int64_t row_begin = 0;
  int64_t row_end = 0;
};

struct KernelTable {
  std::string_view name;  // "scalar", "avx2", "avx512-vnni", "neon", "neon-dotprod"

  void (*matmul_f32)(const MatMulArgs& args);
  void (*matmul_f16)(const MatMulArgs& args);
  void (*matmul_bf16)(const MatMulArgs& args);
  void (*matmul_q8_0)(const MatMulArgs& args);  // x holds BlockQ8Act rows, as for the three below
  void (*matmul_q4_0)(const MatMulArgs& args);
  void (*matmul_q4_k)(const MatMulArgs& args);
  void (*matmul_q6_k)(const MatMulArgs& args);

  // REQUIRES: n % 32 == 0. d = max|x| / 127, qs = round-half-even(x / d).
  void (*quantize_q8_act)(const float* x, int64_t n, BlockQ8Act* out);

  // out[i] = x[i] * weight[i] / sqrt(mean(x^2) + eps); out may equal x.
  void (*rms_norm)(const float* x, const float* weight, int64_t n, float eps, float* out);

  // Rotates the first n_rot dimensions of each of n_head heads (each head_dim floats) in place.
  // cos/sin: [n_rot / 2] angles of this position. neox=false pairs (2i, 2i+1), neox=true pairs
  // (i, i + n_rot/2).
  void (*rope)(float* x, int n_head, int head_dim, int n_rot, const float* cos, const float* sin,
               bool neox);

  void (*softmax)(float* x, int64_t n);  // in place; n >= 1
  // x[i] = exp(x[i] - shift) in place; returns the sum of the new x.
  float (*exp_shift_sum)(float* x, int64_t n, float shift);
  // out[i] = silu(gate[i]) * up[i]; out may equal gate or up.
  void (*silu_mul)(const float* gate, const float* up, int64_t n, float* out);

  void (*f16_to_f32)(const uint16_t* in, int64_t n, float* out);
  void (*f32_to_f16)(const float* in, int64_t n, uint16_t* out);  // round to nearest even

  // Attention inner loops: a query row against K rows, and probabilities times V rows.
  float (*dot_f32)(const float* a, const float* b, int64_t n);
  float (*dot_f32_f16)(const float* a, const uint16_t* b, int64_t n);
  void (*axpy_f32)(float alpha, const float* x, int64_t n, float* y);   // y += alpha * x
  void (*axpy_f16)(float alpha, const uint16_t* x, int64_t n, float* y);
  void (*scale)(float* x, int64_t n, float alpha);                      // x *= alpha

  // Attention over one tile of keys for the n_q query heads that share a KV head.
  // scores[r * ld + j] = scale * dot(q[r], key j), q: [n_q][head_dim], key j at k + j * k_stride.
  void (*attn_scores_f32)(const float* q, int n_q, int head_dim, const float* k, int64_t k_stride,
                          int n_keys, float scale, float* scores, int ld);
  void (*attn_scores_f16)(const float* q, int n_q, int head_dim, const uint16_t* k, int64_t k_stride,
                          int n_keys, float scale, float* scores, int ld);
  // acc[r] += sum over j of p[r * ld + j] * value j, acc: [n_q][head_dim], value j at v + j * v_stride.
  void (*attn_values_f32)(const float* p, int n_q, int ld, const float* v, int64_t v_stride, int n_keys,
                          int head_dim, float* acc);
  void (*attn_values_f16)(const float* p, int n_q, int ld, const uint16_t* v, int64_t v_stride,
                          int n_keys, int head_dim, float* acc);
};

// Largest head_dim the attention kernels take (they convert one f16 row into a stack buffer).
inline constexpr int kMaxHeadDim = 512;

// The reference implementation; runs everywhere.
const KernelTable& ScalarKernels();

// AVX2 + FMA + F16C kernels, or nullptr when this CPU (or its OS) lacks them.
const KernelTable* Avx2Kernels();

// The AVX2 table with an AVX-512 VNNI Q8_0 product, or nullptr when this CPU (or its OS) lacks
// AVX-512 F, BW, VL, DQ or VNNI.
const KernelTable* Avx512Kernels();

// NEON kernels for aarch64, or nullptr on other targets. "neon-dotprod" when the CPU has the
// ARMv8.2 dot product instructions (SDOT, AT_HWCAP bit HWCAP_ASIMDDP), else "neon", whose
// quantized products multiply int8 values by widening them to int16.
const KernelTable* NeonKernels();

// The "neon" table even on a CPU with SDOT, or nullptr on other targets.
const KernelTable* NeonBaseKernels();

// The fastest table this CPU runs, chosen once. SPARKV_KERNELS=scalar, avx2 or neon in the
// environment forces that table (scalar for debugging numerics, the others to compare with it).
const KernelTable& BestKernels();

// Dequantizes one row of a GGUF weight of type `type` (a gguf::TensorType number: F32, F16, BF16,
// Q8_0, Q4_0, Q4_K, Q6_K) into f32; used for embedding lookups. Returns false for another type or
// an n that is not a whole number of the type's blocks.
bool DequantizeRow(uint32_t type, const uint8_t* row, int64_t n, float* out);

// The (scale, min) pair of sub-block j in [0, 8) of a Q4_K super-block, from its 12 scale bytes.
void Q4KScaleMin(const uint8_t* scales, int j, uint8_t* scale, uint8_t* min);

namespace internal {
// Defined in kernels_avx2.cc and kernels_avx512.cc (x86-64 builds only). Callers must check the
// CPU first.
const KernelTable& Avx2Table();
const KernelTable& Avx512Table();
// Defined in kernels_neon.cc (aarch64 builds only). The dotprod table needs a CPU with SDOT.
const KernelTable& NeonTable(bool dotprod);
bool CpuHasDotprod();
}  // namespace internal

}  // namespace sparkv::kernels
