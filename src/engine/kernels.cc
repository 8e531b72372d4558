// Scalar reference kernels and the run-time choice of kernel table.
#include "engine/kernels.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>

#include "common/cpu.h"
#include "common/f16.h"
#include "common/log.h"
#include "gguf/gguf.h"

namespace sparkv::kernels {
namespace {

template <typename LoadWeight>
void MatMulScalar(const MatMulArgs& a, LoadWeight load) {
  for (int64_t t = 0; t < a.n_tokens; ++t) {
    const float* x = reinterpret_cast<const float*>(static_cast<const uint8_t*>(a.x) + t * a.x_row_bytes);
    for (int64_t r = a.row_begin; r < a.row_end; ++r) {
      const uint8_t* w = a.w + r * a.w_row_bytes;
      float sum = 0.0f;
      for (int64_t i = 0; i < a.n_in; ++i) sum += load(w, i) * x[i];
      a.y[t * a.ldy + r] = sum;
    }
  }
}

void MatMulF32(const MatMulArgs& a) {
  MatMulScalar(a, [](const uint8_t* w, int64_t i) {
    float v;
    std::memcpy(&v, w + i * 4, 4);
    return v;
  });
}

void MatMulF16(const MatMulArgs& a) {
  MatMulScalar(a, [](const uint8_t* w, int64_t i) {
    uint16_t h;
    std::memcpy(&h, w + i * 2, 2);
    return F16ToF32(h);
  });
}

void MatMulBf16(const MatMulArgs& a) {
  MatMulScalar(a, [](const uint8_t* w, int64_t i) {
    uint16_t h;
    std::memcpy(&h, w + i * 2, 2);
    return Bf16ToF32(h);
  });
}

uint16_t LoadU16(const uint8_t* p) {
  uint16_t v;
  std::memcpy(&v, p, 2);
  return v;
}

// The quantized products below share one shape: per 32-input block an exact int32 dot product of
// the weight's integer values with the activation's int8 values, scaled in f32 by the block's
// scales and summed over the row.
template <typename BlockDot>
void MatMulQuantized(const MatMulArgs& a, BlockDot block_dot) {
  const int64_t n_blocks = a.n_in / kQ8BlockSize;
  for (int64_t t = 0; t < a.n_tokens; ++t) {
    const auto* x = reinterpret_cast<const BlockQ8Act*>(static_cast<const uint8_t*>(a.x) + t * a.x_row_bytes);
    for (int64_t r = a.row_begin; r < a.row_end; ++r) {
      const uint8_t* w = a.w + r * a.w_row_bytes;
      float sum = 0.0f;
      for (int64_t b = 0; b < n_blocks; ++b) sum += block_dot(w, b, x[b]);
      a.y[t * a.ldy + r] = sum;
    }
  }
}

// Q8_0 block b: d * sum(q * xq), times the activation scale.
float BlockDotQ8_0(const uint8_t* w, int64_t b, const BlockQ8Act& x) {
  const uint8_t* block = w + b * kQ8_0BlockBytes;
  const auto* qs = reinterpret_cast<const int8_t*>(block + 2);
  int32_t sumi = 0;
  for (int i = 0; i < kQ8BlockSize; ++i) sumi += static_cast<int32_t>(qs[i]) * x.qs[i];
  return static_cast<float>(sumi) * (F16ToF32(LoadU16(block)) * x.d);
}

// Q4_0 block b: d * sum((nibble - 8) * xq), times the activation scale.
float BlockDotQ4_0(const uint8_t* w, int64_t b, const BlockQ8Act& x) {
  const uint8_t* block = w + b * kQ4_0BlockBytes;
  const uint8_t* qs = block + 2;
  int32_t sumi = 0;
  for (int i = 0; i < 16; ++i) {
    sumi += ((qs[i] & 0xF) - 8) * x.qs[i];
    sumi += ((qs[i] >> 4) - 8) * x.qs[i + 16];
  }
  return static_cast<float>(sumi) * (F16ToF32(LoadU16(block)) * x.d);
}

// Q4_K sub-block j of a super-block: d * scale_j * sum(nibble * xq) - dmin * min_j * sum(xq),
// times the activation scale.
float BlockDotQ4_K(const uint8_t* w, int64_t b, const BlockQ8Act& x) {
  const int64_t super = b / (kQKBlockSize / kQ8BlockSize);
  const int j = static_cast<int>(b % (kQKBlockSize / kQ8BlockSize));
  const uint8_t* block = w + super * kQ4_KBlockBytes;
  uint8_t scale, min;
  Q4KScaleMin(block + 4, j, &scale, &min);
  const uint8_t* qs = block + 16 + 32 * (j / 2);
  const int shift = 4 * (j % 2);
  int32_t sumi = 0, sumx = 0;
  for (int i = 0; i < 32; ++i) {
    sumi += ((qs[i] >> shift) & 0xF) * x.qs[i];
    sumx += x.qs[i];
  }
  const float d = F16ToF32(LoadU16(block));
  const float dmin = F16ToF32(LoadU16(block + 2));
  return x.d * (d * static_cast<float>(scale) * static_cast<float>(sumi) -
                dmin * static_cast<float>(min) * static_cast<float>(sumx));
}

// Q6_K: 32-input block k of a super-block is quarter k % 4 of half k / 4, and holds two 16-element
// sub-blocks with their own int8 scales.
float BlockDotQ6_K(const uint8_t* w, int64_t b, const BlockQ8Act& x) {
  const int64_t super = b / (kQKBlockSize / kQ8BlockSize);
  const int k = static_cast<int>(b % (kQKBlockSize / kQ8BlockSize));
  const int half = k / 4;
  const int quarter = k % 4;
  const uint8_t* block = w + super * kQ6_KBlockBytes;
  const uint8_t* ql = block + 64 * half + 32 * (quarter % 2);
  const uint8_t* qh = block + 128 + 32 * half;
  const auto* scales = reinterpret_cast<const int8_t*>(block + 192) + 8 * half + 2 * quarter;
  const int low_shift = 4 * (quarter / 2);
  const int high_shift = 2 * quarter;
  int32_t sumi[2] = {0, 0};
  for (int i = 0; i < 32; ++i) {
    const int q = (((ql[i] >> low_shift) & 0xF) | (((qh[i] >> high_shift) & 3) << 4)) - 32;
    sumi[i / 16] += q * x.qs[i];
  }
  const int32_t isum = scales[0] * sumi[0] + scales[1] * sumi[1];
  return static_cast<float>(isum) * (F16ToF32(LoadU16(block + 208)) * x.d);
}

void MatMulQ8_0(const MatMulArgs& a) { MatMulQuantized(a, BlockDotQ8_0); }
void MatMulQ4_0(const MatMulArgs& a) { MatMulQuantized(a, BlockDotQ4_0); }
void MatMulQ4_K(const MatMulArgs& a) { MatMulQuantized(a, BlockDotQ4_K); }
void MatMulQ6_K(const MatMulArgs& a) { MatMulQuantized(a, BlockDotQ6_K); }

void QuantizeQ8Act(const float* x, int64_t n, BlockQ8Act* out) {
  for (int64_t b = 0; b < n / kQ8BlockSize; ++b) {
    const float* xb = x + b * kQ8BlockSize;
    float amax = 0.0f;
    for (int i = 0; i < kQ8BlockSize; ++i) amax = std::max(amax, std::fabs(xb[i]));
    const float d = amax / 127.0f;
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    out[b].d = d;
    for (int i = 0; i < kQ8BlockSize; ++i) {
      out[b].qs[i] = static_cast<int8_t>(std::nearbyint(xb[i] * id));
    }
  }
}

void RmsNorm(const float* x, const float* weight, int64_t n, float eps, float* out) {
  float sum = 0.0f;
  for (int64_t i = 0; i < n; ++i) sum += x[i] * x[i];
  const float scale = 1.0f / std::sqrt(sum / static_cast<float>(n) + eps);
  for (int64_t i = 0; i < n; ++i) out[i] = x[i] * scale * weight[i];
}

void Rope(float* x, int n_head, int head_dim, int n_rot, const float* cos, const float* sin, bool neox) {
  const int half = n_rot / 2;
  for (int h = 0; h < n_head; ++h) {
    float* v = x + static_cast<int64_t>(h) * head_dim;
    for (int i = 0; i < half; ++i) {
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
  float sum = 0.0f;
  for (int64_t i = 0; i < n; ++i) {
    x[i] = std::exp(x[i] - shift);
    sum += x[i];
  }
  return sum;
}

void Softmax(float* x, int64_t n) {
  float max = x[0];
  for (int64_t i = 1; i < n; ++i) max = std::max(max, x[i]);
  const float inv = 1.0f / ExpShiftSum(x, n, max);
  for (int64_t i = 0; i < n; ++i) x[i] *= inv;
}

void SiluMul(const float* gate, const float* up, int64_t n, float* out) {
  for (int64_t i = 0; i < n; ++i) {
    const float g = gate[i];
    out[i] = g / (1.0f + std::exp(-g)) * up[i];
  }
}

void F16ToF32Row(const uint16_t* in, int64_t n, float* out) {
  for (int64_t i = 0; i < n; ++i) out[i] = F16ToF32(in[i]);
}

void F32ToF16Row(const float* in, int64_t n, uint16_t* out) {
  for (int64_t i = 0; i < n; ++i) out[i] = F32ToF16(in[i]);
}

float DotF32(const float* a, const float* b, int64_t n) {
  float sum = 0.0f;
  for (int64_t i = 0; i < n; ++i) sum += a[i] * b[i];
  return sum;
}

float DotF32F16(const float* a, const uint16_t* b, int64_t n) {
  float sum = 0.0f;
  for (int64_t i = 0; i < n; ++i) sum += a[i] * F16ToF32(b[i]);
  return sum;
}

void AxpyF32(float alpha, const float* x, int64_t n, float* y) {
  for (int64_t i = 0; i < n; ++i) y[i] += alpha * x[i];
}

void AxpyF16(float alpha, const uint16_t* x, int64_t n, float* y) {
  for (int64_t i = 0; i < n; ++i) y[i] += alpha * F16ToF32(x[i]);
}

void Scale(float* x, int64_t n, float alpha) {
  for (int64_t i = 0; i < n; ++i) x[i] *= alpha;
}

template <typename T, typename Dot>
void AttnScores(const float* q, int n_q, int head_dim, const T* k, int64_t k_stride, int n_keys, float scale,
                float* scores, int ld, Dot dot) {
  for (int j = 0; j < n_keys; ++j) {
    for (int r = 0; r < n_q; ++r) scores[r * ld + j] = scale * dot(q + r * head_dim, k + j * k_stride, head_dim);
  }
}

void AttnScoresF32(const float* q, int n_q, int head_dim, const float* k, int64_t k_stride, int n_keys, float scale,
                   float* scores, int ld) {
  AttnScores(q, n_q, head_dim, k, k_stride, n_keys, scale, scores, ld, DotF32);
}

void AttnScoresF16(const float* q, int n_q, int head_dim, const uint16_t* k, int64_t k_stride, int n_keys,
                   float scale, float* scores, int ld) {
  AttnScores(q, n_q, head_dim, k, k_stride, n_keys, scale, scores, ld, DotF32F16);
}

void AttnValuesF32(const float* p, int n_q, int ld, const float* v, int64_t v_stride, int n_keys, int head_dim,
                   float* acc) {
  for (int j = 0; j < n_keys; ++j) {
    for (int r = 0; r < n_q; ++r) AxpyF32(p[r * ld + j], v + j * v_stride, head_dim, acc + r * head_dim);
  }
}

void AttnValuesF16(const float* p, int n_q, int ld, const uint16_t* v, int64_t v_stride, int n_keys, int head_dim,
                   float* acc) {
  for (int j = 0; j < n_keys; ++j) {
    for (int r = 0; r < n_q; ++r) AxpyF16(p[r * ld + j], v + j * v_stride, head_dim, acc + r * head_dim);
  }
}

const KernelTable kScalarTable = {
    .name = "scalar",
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
    .attn_scores_f32 = AttnScoresF32,
    .attn_scores_f16 = AttnScoresF16,
    .attn_values_f32 = AttnValuesF32,
    .attn_values_f16 = AttnValuesF16,
};


}  // namespace

const KernelTable& ScalarKernels() { return kScalarTable; }

void Q4KScaleMin(const uint8_t* scales, int j, uint8_t* scale, uint8_t* min) {
  // Sub-blocks 0-3 keep 6 bits in bytes [0, 8); sub-blocks 4-7 keep their low 4 bits in bytes
  // [8, 12) and their top 2 bits in the top bits of bytes [0, 8).
  if (j < 4) {
    *scale = scales[j] & 63;
    *min = scales[j + 4] & 63;
  } else {
    *scale = static_cast<uint8_t>((scales[j + 4] & 0xF) | ((scales[j - 4] >> 6) << 4));
    *min = static_cast<uint8_t>((scales[j + 4] >> 4) | ((scales[j] >> 6) << 4));
  }
}

// Each target compiles only its own SIMD files (cmake/Module.cmake), so the tables of the others
// are absent rather than rejected at run time.
const KernelTable* Avx2Kernels() {
#if defined(__x86_64__)
  static const bool supported = sparkv::CpuHasAvx2();
  return supported ? &internal::Avx2Table() : nullptr;
#else
  return nullptr;
#endif
}

const KernelTable* Avx512Kernels() {
#if defined(__x86_64__)
  static const bool supported = sparkv::CpuHasAvx512Vnni();
  return supported ? &internal::Avx512Table() : nullptr;
#else
  return nullptr;
#endif
}

const KernelTable* NeonKernels() {
#if defined(__aarch64__)
  static const bool dotprod = internal::CpuHasDotprod();
  return &internal::NeonTable(dotprod);
#else
  return nullptr;
#endif
}

const KernelTable* NeonBaseKernels() {
#if defined(__aarch64__)
  return &internal::NeonTable(false);
#else
  return nullptr;
#endif
}

const KernelTable& BestKernels() {
  static const KernelTable* const best = [] {
    const char* forced = std::getenv("SPARKV_KERNELS");
    const bool scalar_only = forced != nullptr && std::strcmp(forced, "scalar") == 0;
    const bool avx2_only = forced != nullptr && std::strcmp(forced, "avx2") == 0;
    const bool neon_only = forced != nullptr && std::strcmp(forced, "neon") == 0;
    const KernelTable* table = &kScalarTable;
    if (!scalar_only) {
      if (const KernelTable* neon = neon_only ? NeonBaseKernels() : NeonKernels()) table = neon;
      if (const KernelTable* avx2 = Avx2Kernels()) table = avx2;
      if (!avx2_only) {
        if (const KernelTable* avx512 = Avx512Kernels()) table = avx512;
      }
    }
    SPARKV_LOG_INFO("engine kernels: %.*s", static_cast<int>(table->name.size()), table->name.data());
    return table;
  }();
  return *best;
}

bool DequantizeRow(uint32_t type, const uint8_t* row, int64_t n, float* out) {
  switch (static_cast<gguf::TensorType>(type)) {
    case gguf::TensorType::kF32:
      std::memcpy(out, row, static_cast<size_t>(n) * 4);
      return true;
    case gguf::TensorType::kF16:
      for (int64_t i = 0; i < n; ++i) {
        uint16_t h;
        std::memcpy(&h, row + 2 * i, 2);
        out[i] = F16ToF32(h);
      }
      return true;
    case gguf::TensorType::kBF16:
      for (int64_t i = 0; i < n; ++i) {
        uint16_t h;
        std::memcpy(&h, row + 2 * i, 2);
        out[i] = Bf16ToF32(h);
      }
      return true;
    case gguf::TensorType::kQ8_0:
      if (n % kQ8BlockSize != 0) return false;
      for (int64_t b = 0; b < n / kQ8BlockSize; ++b) {
        const uint8_t* block = row + b * kQ8_0BlockBytes;
        uint16_t d_bits;
        std::memcpy(&d_bits, block, 2);
        const float d = F16ToF32(d_bits);
        const auto* qs = reinterpret_cast<const int8_t*>(block + 2);
        for (int i = 0; i < kQ8BlockSize; ++i) out[b * kQ8BlockSize + i] = d * static_cast<float>(qs[i]);
      }
      return true;
    case gguf::TensorType::kQ4_0:
      if (n % kQ8BlockSize != 0) return false;
      for (int64_t b = 0; b < n / kQ8BlockSize; ++b) {
        const uint8_t* block = row + b * kQ4_0BlockBytes;
        const float d = F16ToF32(LoadU16(block));
        float* y = out + b * kQ8BlockSize;
        for (int i = 0; i < 16; ++i) {
          y[i] = d * static_cast<float>((block[2 + i] & 0xF) - 8);
          y[i + 16] = d * static_cast<float>((block[2 + i] >> 4) - 8);
        }
      }
      return true;
    case gguf::TensorType::kQ4_K:
      if (n % kQKBlockSize != 0) return false;
      for (int64_t b = 0; b < n / kQKBlockSize; ++b) {
        const uint8_t* block = row + b * kQ4_KBlockBytes;
        const float d = F16ToF32(LoadU16(block));
        const float dmin = F16ToF32(LoadU16(block + 2));
        for (int j = 0; j < 8; ++j) {
          uint8_t scale, min;
          Q4KScaleMin(block + 4, j, &scale, &min);
          const uint8_t* qs = block + 16 + 32 * (j / 2);
          float* y = out + b * kQKBlockSize + 32 * j;
          for (int i = 0; i < 32; ++i) {
            y[i] = d * scale * static_cast<float>((qs[i] >> (4 * (j % 2))) & 0xF) - dmin * min;
          }
        }
      }
      return true;
    case gguf::TensorType::kQ6_K:
      if (n % kQKBlockSize != 0) return false;
      for (int64_t b = 0; b < n / kQKBlockSize; ++b) {
        const uint8_t* block = row + b * kQ6_KBlockBytes;
        const float d = F16ToF32(LoadU16(block + 208));
        const auto* scales = reinterpret_cast<const int8_t*>(block + 192);
        for (int k = 0; k < 8; ++k) {
          const int half = k / 4, quarter = k % 4;
          const uint8_t* ql = block + 64 * half + 32 * (quarter % 2);
          const uint8_t* qh = block + 128 + 32 * half;
          float* y = out + b * kQKBlockSize + 32 * k;
          for (int i = 0; i < 32; ++i) {
            const int q = (((ql[i] >> (4 * (quarter / 2))) & 0xF) | (((qh[i] >> (2 * quarter)) & 3) << 4)) - 32;
            y[i] = d * static_cast<float>(scales[8 * half + 2 * quarter + i / 16] * q);
          }
        }
      }
      return true;
    default:
      return false;
  }
}

}  // namespace sparkv::kernels
