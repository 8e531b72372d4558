// Every SIMD kernel against the scalar reference, over lengths around the vector width and
// misaligned starting addresses: the AVX2 and AVX-512 tables on x86-64, the NEON ones on aarch64
// (cross-built and run under qemu-aarch64 by scripts/test-aarch64.sh).
#include <gtest/gtest.h>

#if defined(__aarch64__)
#include <sys/auxv.h>
#endif

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <random>
#include <string>
#include <string_view>
#include <vector>

#include "common/f16.h"
#include "engine/kernels.h"
#include "gguf/gguf.h"
#include "model/synthetic.h"

namespace sparkv::kernels {
namespace {

const KernelTable& Scalar() { return ScalarKernels(); }

// Lengths below, at and across the 8-lane width, plus model-like sizes (172 = stories260K n_ff).
const int64_t kLengths[] = {1, 2, 3, 7, 8, 9, 15, 16, 17, 31, 33, 64, 100, 172, 257, 1000};
// Float offsets into an aligned buffer, so loads start 0, 4, 8, ... 28 bytes past a 32-byte line.
const int kMisalignments[] = {0, 1, 3, 7};

std::vector<float> RandomFloats(std::mt19937& rng, size_t n, float scale = 1.0f) {
  std::normal_distribution<float> dist(0.0f, scale);
  std::vector<float> v(n);
  for (float& x : v) x = dist(rng);
  return v;
}

// Float-accumulation kernels reorder sums (8 lanes, FMA), so a result may differ from the
// reference by a few ulp of the sum of |terms|: 1e-5 of that magnitude covers n up to ~1000 with
// margin while still catching any wrong element (an error of one term is ~1/n of it, far larger).
void ExpectCloseToSum(float got, float want, float abs_terms, const std::string& what) {
  EXPECT_NEAR(got, want, 1e-5f * abs_terms + 1e-6f) << what;
}

// The tables that SimdKernelTest checks entry by entry. Each runs only where it is built and the
// CPU has it: "avx2" on x86-64, "neon" on aarch64, and "neon-dotprod" on aarch64 CPUs with SDOT
// (it differs from "neon" in its quantized products only).
const KernelTable* TableNamed(std::string_view name) {
  if (name == "avx2") return Avx2Kernels();
  if (name == "neon") return NeonBaseKernels();
  const KernelTable* neon = NeonKernels();
  return neon != nullptr && neon->name == name ? neon : nullptr;
}

class SimdKernelTest : public ::testing::TestWithParam<std::string_view> {
 protected:
  void SetUp() override {
    table_ = TableNamed(GetParam());
    if (table_ == nullptr) GTEST_SKIP() << "table " << GetParam() << " is not built for or run by this CPU";
  }
  const KernelTable* table_ = nullptr;
  std::mt19937 rng_{12345};
};

// Test names take the table's name with '_' for '-', e.g. Tables/SimdKernelTest.RmsNorm.../neon_dotprod.
std::string TableTestName(const ::testing::TestParamInfo<std::string_view>& param) {
  std::string name(param.param);
  std::replace(name.begin(), name.end(), '-', '_');
  return name;
}

INSTANTIATE_TEST_SUITE_P(Tables, SimdKernelTest, ::testing::Values("avx2", "neon", "neon-dotprod"), TableTestName);

enum class Weights { kF32, kF16, kBf16, kQ8_0 };

// Builds a random matrix of `type` and checks avx2 against scalar on n_tokens rows of activations.
void CheckMatMul(const KernelTable& fast, Weights type, int64_t n_in, int64_t n_out, int64_t n_tokens,
                 int64_t row_begin, int64_t row_end, int misalign, std::mt19937& rng) {
  const std::vector<float> w_f32 = RandomFloats(rng, static_cast<size_t>(n_in * n_out), 0.5f);
  size_t row_bytes = 0;
  std::vector<uint8_t> w;
  std::vector<float> w_exact(w_f32.size());  // the values the kernel really multiplies
  switch (type) {
    case Weights::kF32:
      row_bytes = n_in * 4;
      w.resize(row_bytes * n_out + 64);
      std::memcpy(w.data() + misalign * 4, w_f32.data(), w_f32.size() * 4);
      w_exact = w_f32;
      break;
    case Weights::kF16:
    case Weights::kBf16:
      row_bytes = n_in * 2;
      w.resize(row_bytes * n_out + 64);
      for (size_t i = 0; i < w_f32.size(); ++i) {
        const uint16_t h = type == Weights::kF16 ? F32ToF16(w_f32[i]) : F32ToBf16(w_f32[i]);
        std::memcpy(w.data() + misalign * 2 + 2 * i, &h, 2);
        w_exact[i] = type == Weights::kF16 ? F16ToF32(h) : Bf16ToF32(h);
      }
      break;
    case Weights::kQ8_0: {
      row_bytes = n_in / 32 * kQ8_0BlockBytes;
      w.resize(row_bytes * n_out + 64);
      for (int64_t b = 0; b < n_in * n_out / 32; ++b) {
        uint8_t* block = w.data() + misalign + b * kQ8_0BlockBytes;
        float amax = 0;
        for (int i = 0; i < 32; ++i) amax = std::max(amax, std::fabs(w_f32[b * 32 + i]));
        const uint16_t d = F32ToF16(amax / 127.0f);
        std::memcpy(block, &d, 2);
        for (int i = 0; i < 32; ++i) {
          const float q = F16ToF32(d) != 0 ? std::nearbyint(w_f32[b * 32 + i] / F16ToF32(d)) : 0.0f;
          const auto qi = static_cast<int8_t>(std::clamp(q, -127.0f, 127.0f));
          block[2 + i] = static_cast<uint8_t>(qi);
          w_exact[b * 32 + i] = F16ToF32(d) * qi;
        }
      }
      break;
    }
  }
  const std::vector<float> x = RandomFloats(rng, static_cast<size_t>(n_tokens * n_in) + 8);
  std::vector<BlockQ8Act> xq(static_cast<size_t>(n_tokens * n_in / 32 + 1));

  MatMulArgs args;
  args.w = w.data() + (type == Weights::kQ8_0 ? misalign : misalign * (type == Weights::kF32 ? 4 : 2));
  args.w_row_bytes = row_bytes;
  args.n_in = n_in;
  args.n_tokens = n_tokens;
  args.ldy = n_out;
  args.row_begin = row_begin;
  args.row_end = row_end;
  if (type == Weights::kQ8_0) {
    Scalar().quantize_q8_act(x.data() + misalign, n_tokens * n_in, xq.data());
    args.x = xq.data();
    args.x_row_bytes = n_in / 32 * sizeof(BlockQ8Act);
  } else {
    args.x = x.data() + misalign;
    args.x_row_bytes = n_in * 4;
  }
  auto kernel_of = [type](const KernelTable& k) {
    switch (type) {
      case Weights::kF32: return k.matmul_f32;
      case Weights::kF16: return k.matmul_f16;
      case Weights::kBf16: return k.matmul_bf16;
      default: return k.matmul_q8_0;
    }
  };
  const float kSentinel = -12345.0f;
  std::vector<float> y_ref(static_cast<size_t>(n_tokens * n_out), kSentinel);
  std::vector<float> y_fast(y_ref.size(), kSentinel);
  args.y = y_ref.data();
  kernel_of(Scalar())(args);
  args.y = y_fast.data();
  kernel_of(fast)(args);

  for (int64_t t = 0; t < n_tokens; ++t) {
    for (int64_t r = 0; r < n_out; ++r) {
      const std::string what = "n_in " + std::to_string(n_in) + " token " + std::to_string(t) + " row " +
                               std::to_string(r) + " misalign " + std::to_string(misalign);
      const size_t at = static_cast<size_t>(t * n_out + r);
      if (r < row_begin || r >= row_end) {
        EXPECT_EQ(y_fast[at], kSentinel) << "wrote outside its rows: " << what;
        continue;
      }
      float abs_terms = 0.0f;
      for (int64_t i = 0; i < n_in; ++i) abs_terms += std::fabs(w_exact[r * n_in + i] * x[misalign + t * n_in + i]);
      ExpectCloseToSum(y_fast[at], y_ref[at], abs_terms, what);
    }
  }
}

TEST_P(SimdKernelTest, MatMulFloatWeightsMatchReference) {
  for (Weights type : {Weights::kF32, Weights::kF16, Weights::kBf16}) {
    for (int64_t n_in : {1, 7, 8, 9, 17, 64, 172}) {
      for (int64_t n_tokens : {1, 2, 3, 5}) {
        for (int misalign : {0, 1, 3}) CheckMatMul(*table_, type, n_in, 11, n_tokens, 0, 11, misalign, rng_);
      }
    }
  }
}

TEST_P(SimdKernelTest, MatMulQ8_0MatchesReference) {
  for (int64_t n_in : {32, 64, 96, 256}) {
    for (int64_t n_tokens : {1, 2, 3, 5}) {
      for (int misalign : {0, 1, 5}) CheckMatMul(*table_, Weights::kQ8_0, n_in, 9, n_tokens, 0, 9, misalign, rng_);
    }
  }
}

// The GEMM micro-kernels take 4 rows x 3 (AVX2 float), 4 (AVX2 Q8_0, NEON float) or 3 (NEON
// quantized) tokens. Token counts from 1 to 9 cover full tiles followed by every tail, and 13
// rows cover 4-row blocks plus a 1-row tail.
TEST_P(SimdKernelTest, MatMulTilesAndTailsMatchReference) {
  for (int64_t n_tokens = 1; n_tokens <= 9; ++n_tokens) {
    for (Weights type : {Weights::kF32, Weights::kF16, Weights::kBf16}) {
      CheckMatMul(*table_, type, 40, 13, n_tokens, 0, 13, static_cast<int>(n_tokens % 4), rng_);
    }
    CheckMatMul(*table_, Weights::kQ8_0, 96, 13, n_tokens, 0, 13, static_cast<int>(n_tokens % 6), rng_);
  }
}

// Row ranges that start and end inside a 4-row block, as the thread pool may hand out.
TEST_P(SimdKernelTest, MatMulUnalignedRowRangesMatchReference) {
  for (int64_t row_begin : {1, 2, 3, 5}) {
    for (int64_t row_end : {row_begin + 1, row_begin + 4, row_begin + 6, int64_t{14}}) {
      CheckMatMul(*table_, Weights::kF16, 24, 14, 5, row_begin, row_end, 1, rng_);
      CheckMatMul(*table_, Weights::kQ8_0, 64, 14, 6, row_begin, row_end, 3, rng_);
    }
  }
}

// Activation rows this wide make the kernels split the tokens into several L2-sized panels, so
// these check the panel seams. AVX2 panels hold 160 KiB (18 f32 tokens of 2048 inputs, 32 Q8
// tokens of 4096 inputs), NEON panels 128 KiB (16 and 27 tokens).
TEST_P(SimdKernelTest, MatMulAcrossTokenPanelsMatchesReference) {
  CheckMatMul(*table_, Weights::kF32, 2048, 5, 23, 0, 5, 1, rng_);
  CheckMatMul(*table_, Weights::kF16, 2048, 6, 41, 0, 6, 0, rng_);
  CheckMatMul(*table_, Weights::kQ8_0, 4096, 5, 37, 0, 5, 2, rng_);
  CheckMatMul(*table_, Weights::kQ8_0, 4096, 8, 70, 0, 8, 0, rng_);
}

TEST_P(SimdKernelTest, MatMulWritesOnlyItsRowRange) {
  CheckMatMul(*table_, Weights::kF32, 40, 13, 3, 3, 10, 0, rng_);
  CheckMatMul(*table_, Weights::kQ8_0, 64, 13, 3, 5, 6, 0, rng_);
}

// The AVX-512 VNNI table differs from the AVX2 one in its Q8_0 product. It takes 4 rows x 6
// tokens per tile and a pair of blocks per instruction. Its token panels hold 512 KiB of repacked
// activations (40 tokens of 4096 inputs).
class Avx512KernelTest : public ::testing::Test {
 protected:
  void SetUp() override {
    avx512_ = Avx512Kernels();
    if (avx512_ == nullptr) GTEST_SKIP() << "CPU lacks AVX-512 F/BW/VL/DQ/VNNI";
  }
  const KernelTable* avx512_ = nullptr;
  std::mt19937 rng_{54321};
};

TEST_F(Avx512KernelTest, MatMulFloatWeightsMatchReference) {
  // Lengths below, at and across 16 lanes take masked tails; 4 x 6 tiles leave row and token tails.
  for (Weights type : {Weights::kF32, Weights::kF16, Weights::kBf16}) {
    for (int64_t n_in : kLengths) {
      for (int misalign : kMisalignments) CheckMatMul(*avx512_, type, n_in, 9, 7, 0, 9, misalign, rng_);
    }
    for (int64_t n_tokens = 1; n_tokens <= 13; ++n_tokens) CheckMatMul(*avx512_, type, 48, 6, n_tokens, 1, 6, 1, rng_);
    // 2048 f32 inputs are 8 KiB per token, so a 512 KiB panel takes 60 tokens and 130 cross two seams.
    CheckMatMul(*avx512_, type, 2048, 5, 130, 0, 5, 0, rng_);
  }
}

TEST_F(Avx512KernelTest, MatMulQ8_0MatchesReference) {
  // Odd block counts (32, 96, 160 inputs) pair their last block with zeros.
  for (int64_t n_in : {32, 64, 96, 160, 256}) {
    for (int64_t n_tokens : {1, 2, 3, 5, 8, 9}) {
      for (int misalign : {0, 1, 5}) CheckMatMul(*avx512_, Weights::kQ8_0, n_in, 9, n_tokens, 0, 9, misalign, rng_);
    }
  }
}

TEST_F(Avx512KernelTest, Q8_0TailsMatchReference) {
  for (int64_t n_tokens = 1; n_tokens <= 17; ++n_tokens) {
    CheckMatMul(*avx512_, Weights::kQ8_0, 96, 13, n_tokens, 0, 13, static_cast<int>(n_tokens % 6), rng_);
  }
}

TEST_F(Avx512KernelTest, MatMulQ8_0RowRangesMatchReference) {
  for (int64_t row_begin : {0, 1, 2, 3, 5}) {
    for (int64_t row_end : {row_begin + 1, row_begin + 2, row_begin + 5, int64_t{14}}) {
      CheckMatMul(*avx512_, Weights::kQ8_0, 64, 14, 6, row_begin, row_end, 3, rng_);
    }
  }
}

TEST_F(Avx512KernelTest, MatMulQ8_0AcrossPanelsMatchesReference) {
  CheckMatMul(*avx512_, Weights::kQ8_0, 4096, 5, 37, 0, 5, 2, rng_);
  CheckMatMul(*avx512_, Weights::kQ8_0, 4096, 8, 97, 0, 8, 0, rng_);
}

TEST_F(Avx512KernelTest, OnlyMatrixProductsDiffer) {
  const KernelTable* avx2 = Avx2Kernels();
  ASSERT_NE(avx2, nullptr);
  EXPECT_EQ(avx512_->name, "avx512-vnni");
  EXPECT_NE(avx512_->matmul_q8_0, avx2->matmul_q8_0);
  EXPECT_NE(avx512_->matmul_q4_0, avx2->matmul_q4_0);
  EXPECT_NE(avx512_->matmul_q4_k, avx2->matmul_q4_k);
  EXPECT_NE(avx512_->matmul_q6_k, avx2->matmul_q6_k);
  EXPECT_NE(avx512_->matmul_f16, avx2->matmul_f16);
  EXPECT_EQ(avx512_->attn_scores_f16, avx2->attn_scores_f16);
  EXPECT_EQ(avx512_->rms_norm, avx2->rms_norm);
}

// ---- Q4_0, Q4_K, Q6_K ----

struct QuantType {
  gguf::TensorType type;
  int64_t block_elems;  // inputs per block
  size_t block_bytes;
  void (*quantize)(const float* source, int64_t n, uint8_t* out);
};

const QuantType kQuantTypes[] = {
    {gguf::TensorType::kQ4_0, 32, kQ4_0BlockBytes, QuantizeRowQ4_0},
    {gguf::TensorType::kQ4_K, 256, kQ4_KBlockBytes, QuantizeRowQ4_K},
    {gguf::TensorType::kQ6_K, 256, kQ6_KBlockBytes, QuantizeRowQ6_K},
};

auto QuantKernel(const KernelTable& k, gguf::TensorType type) {
  switch (type) {
    case gguf::TensorType::kQ4_0: return k.matmul_q4_0;
    case gguf::TensorType::kQ4_K: return k.matmul_q4_k;
    default: return k.matmul_q6_k;
  }
}

// A random [n_out][n_in] matrix of `qt` placed `misalign` bytes past an aligned start, activations
// quantized by the reference, and `fast` against the scalar reference on rows [row_begin, row_end).
// Tolerance as for the float kernels: 1e-5 of the sum of |dequantized weight * activation|, since
// only the f32 grouping of the per-block scales differs; a wrong nibble or scale moves a result by
// about one whole term.
void CheckQuantMatMul(const KernelTable& fast, const QuantType& qt, int64_t n_in, int64_t n_out, int64_t n_tokens,
                      int64_t row_begin, int64_t row_end, int misalign, std::mt19937& rng) {
  const std::vector<float> w_f32 = RandomFloats(rng, static_cast<size_t>(n_in * n_out), 0.5f);
  const size_t row_bytes = static_cast<size_t>(n_in / qt.block_elems) * qt.block_bytes;
  std::vector<uint8_t> storage(row_bytes * n_out + 64);
  uint8_t* w = storage.data() + misalign;
  std::vector<float> w_exact(w_f32.size());
  for (int64_t r = 0; r < n_out; ++r) {
    qt.quantize(w_f32.data() + r * n_in, n_in, w + r * row_bytes);
    ASSERT_TRUE(DequantizeRow(static_cast<uint32_t>(qt.type), w + r * row_bytes, n_in, w_exact.data() + r * n_in));
  }
  const std::vector<float> x = RandomFloats(rng, static_cast<size_t>(n_tokens * n_in));
  std::vector<BlockQ8Act> xq(static_cast<size_t>(n_tokens * n_in / 32));
  Scalar().quantize_q8_act(x.data(), n_tokens * n_in, xq.data());

  MatMulArgs args;
  args.w = w;
  args.w_row_bytes = row_bytes;
  args.n_in = n_in;
  args.x = xq.data();
  args.x_row_bytes = n_in / 32 * sizeof(BlockQ8Act);
  args.n_tokens = n_tokens;
  args.ldy = n_out;
  args.row_begin = row_begin;
  args.row_end = row_end;
  const float kSentinel = -12345.0f;
  std::vector<float> y_ref(static_cast<size_t>(n_tokens * n_out), kSentinel);
  std::vector<float> y_fast(y_ref.size(), kSentinel);
  args.y = y_ref.data();
  QuantKernel(Scalar(), qt.type)(args);
  args.y = y_fast.data();
  QuantKernel(fast, qt.type)(args);

  for (int64_t t = 0; t < n_tokens; ++t) {
    for (int64_t r = 0; r < n_out; ++r) {
      const std::string label = std::string(gguf::GetTypeTraits(qt.type)->name) + " n_in " + std::to_string(n_in) +
                               " token " + std::to_string(t) + " row " + std::to_string(r) + " misalign " +
                               std::to_string(misalign);
      const size_t at = static_cast<size_t>(t * n_out + r);
      if (r < row_begin || r >= row_end) {
        EXPECT_EQ(y_fast[at], kSentinel) << "wrote outside its rows: " << label;
        continue;
      }
      float abs_terms = 0.0f;
      for (int64_t i = 0; i < n_in; ++i) {
        abs_terms += std::fabs(w_exact[r * n_in + i] * xq[(t * n_in + i) / 32].d * xq[(t * n_in + i) / 32].qs[i % 32]);
      }
      ExpectCloseToSum(y_fast[at], y_ref[at], abs_terms, label);
    }
  }
}

// Every quantized type over block counts, token counts up to `max_tokens` and misalignments.
void CheckQuantTypes(const KernelTable& fast, int64_t max_tokens, std::mt19937& rng) {
  for (const QuantType& qt : kQuantTypes) {
    for (int64_t n_blocks : {1, 2, 3, 7}) {
      for (int64_t n_tokens = 1; n_tokens <= max_tokens; ++n_tokens) {
        for (int misalign : {0, 1, 5}) {
          CheckQuantMatMul(fast, qt, n_blocks * qt.block_elems, 9, n_tokens, 0, 9, misalign, rng);
        }
      }
    }
  }
}

// Every quantized type over row ranges, and `seam_tokens` tokens of 4096 inputs, which cross
// the kernel's token panels.
void CheckQuantRanges(const KernelTable& fast, int64_t seam_tokens, std::mt19937& rng) {
  for (const QuantType& qt : kQuantTypes) {
    for (int64_t row_begin : {1, 3, 5}) {
      for (int64_t row_end : {row_begin + 1, row_begin + 6, int64_t{14}}) {
        CheckQuantMatMul(fast, qt, 256, 14, 5, row_begin, row_end, 3, rng);
      }
    }
    CheckQuantMatMul(fast, qt, 4096, 5, seam_tokens, 0, 5, 2, rng);
  }
}

TEST_P(SimdKernelTest, MatMulQ4AndQ6KMatchReference) { CheckQuantTypes(*table_, 7, rng_); }

TEST_P(SimdKernelTest, MatMulQ4AndQ6KRangesMatchReference) {
  // 4096 inputs make 4608 bytes of activations per token, so a 160 KiB AVX2 panel takes 33 tokens
  // and a 128 KiB NEON panel 27, and 37 tokens cross the seam of either.
  CheckQuantRanges(*table_, 37, rng_);
}

// The AVX-512 products of the unsigned-code formats: odd Q4_0 block counts pair their last block
// with zeros, and 4 x 4 tiles leave row and token tails.
TEST_F(Avx512KernelTest, MatMulQ4AndQ6KMatchReference) { CheckQuantTypes(*avx512_, 9, rng_); }

TEST_F(Avx512KernelTest, MatMulQ4AndQ6KRangesMatchReference) {
  // 4096 inputs make 64 pairs of 192 bytes per token, so a 512 KiB panel takes 40 tokens and
  // 97 tokens cross two seams.
  CheckQuantRanges(*avx512_, 97, rng_);
}

// The scalar references against a plain f32 product of the dequantized weights and activations,
// which pins the block layouts of the references, DequantizeRow and the quantizers together.
TEST(KernelsTest, ScalarQ4AndQ6KProductsEqualDequantizedProducts) {
  std::mt19937 rng(11);
  for (const QuantType& qt : kQuantTypes) {
    const int64_t n_in = 512;
    const std::vector<float> w = RandomFloats(rng, n_in), x = RandomFloats(rng, n_in);
    std::vector<uint8_t> wq(static_cast<size_t>(n_in / qt.block_elems) * qt.block_bytes);
    qt.quantize(w.data(), n_in, wq.data());
    std::vector<float> w_deq(n_in);
    ASSERT_TRUE(DequantizeRow(static_cast<uint32_t>(qt.type), wq.data(), n_in, w_deq.data()));
    std::vector<BlockQ8Act> xq(n_in / 32);
    ScalarKernels().quantize_q8_act(x.data(), n_in, xq.data());
    double want = 0, abs_terms = 0;
    for (int64_t i = 0; i < n_in; ++i) {
      const double term = double{w_deq[i]} * xq[i / 32].d * xq[i / 32].qs[i % 32];
      want += term;
      abs_terms += std::fabs(term);
    }
    MatMulArgs args;
    args.w = wq.data();
    args.w_row_bytes = wq.size();
    args.n_in = n_in;
    args.x = xq.data();
    args.x_row_bytes = xq.size() * sizeof(BlockQ8Act);
    args.n_tokens = 1;
    float y = 0;
    args.y = &y;
    args.ldy = 1;
    args.row_end = 1;
    QuantKernel(ScalarKernels(), qt.type)(args);
    EXPECT_NEAR(y, want, 1e-5 * abs_terms + 1e-6) << gguf::GetTypeTraits(qt.type)->name;
  }
}

// Round to nearest keeps each weight within half a step of its source: Q4_0 steps are max|x|/7
// per 32, Q4_K (max - min)/15 per 32 (plus the 6-bit rounding of scale and min), Q6_K max|x|/31 per
// 16. Bounds here are the largest such step over the row, which a swapped nibble or a misplaced
// scale exceeds.
TEST(KernelsTest, QuantizersRoundTripThroughDequantizeRow) {
  std::mt19937 rng(5);
  for (const QuantType& qt : kQuantTypes) {
    const int64_t n = 1024;
    const std::vector<float> x = RandomFloats(rng, n);
    std::vector<uint8_t> q(static_cast<size_t>(n / qt.block_elems) * qt.block_bytes);
    qt.quantize(x.data(), n, q.data());
    std::vector<float> back(n);
    ASSERT_TRUE(DequantizeRow(static_cast<uint32_t>(qt.type), q.data(), n, back.data()));
    float max_abs = 0;
    for (float v : x) max_abs = std::max(max_abs, std::fabs(v));
    const float step = qt.type == gguf::TensorType::kQ4_0 ? max_abs / 7 : qt.type == gguf::TensorType::kQ4_K
                                                                              ? 2 * max_abs / 15
                                                                              : max_abs / 31;
    for (int64_t i = 0; i < n; ++i) {
      EXPECT_NEAR(back[i], x[i], step) << gguf::GetTypeTraits(qt.type)->name << " element " << i;
    }
  }
  std::vector<float> out(300);
  const std::vector<uint8_t> bytes(kQ4_KBlockBytes * 2, 0);
  EXPECT_FALSE(DequantizeRow(static_cast<uint32_t>(gguf::TensorType::kQ4_K), bytes.data(), 300, out.data()))
      << "300 is not a whole number of 256-element super-blocks";
}

TEST_P(SimdKernelTest, QuantizeQ8ActIsBitIdentical) {
  for (int64_t n : {32, 64, 320}) {
    for (int misalign : kMisalignments) {
      std::vector<float> x = RandomFloats(rng_, static_cast<size_t>(n) + 8, 3.0f);
      // A zero block checks the d = 0 path; an exact half checks round-half-even.
      if (n >= 64) std::fill(x.begin() + misalign + 32, x.begin() + misalign + 64, 0.0f);
      x[misalign] = 127.0f;
      x[misalign + 1] = 2.5f;
      std::vector<BlockQ8Act> ref(static_cast<size_t>(n / 32)), fast(ref.size());
      Scalar().quantize_q8_act(x.data() + misalign, n, ref.data());
      table_->quantize_q8_act(x.data() + misalign, n, fast.data());
      for (size_t b = 0; b < ref.size(); ++b) {
        EXPECT_EQ(ref[b].d, fast[b].d) << "block " << b;
        EXPECT_EQ(0, std::memcmp(ref[b].qs, fast[b].qs, 32)) << "block " << b;
      }
      EXPECT_EQ(ref[0].qs[1], 2) << "2.5 must round to even";
    }
  }
}

TEST_P(SimdKernelTest, RmsNormMatchesReference) {
  for (int64_t n : kLengths) {
    for (int misalign : kMisalignments) {
      const std::vector<float> x = RandomFloats(rng_, n + 8), w = RandomFloats(rng_, n + 8);
      std::vector<float> ref(n), fast(n);
      Scalar().rms_norm(x.data() + misalign, w.data() + misalign, n, 1e-5f, ref.data());
      table_->rms_norm(x.data() + misalign, w.data() + misalign, n, 1e-5f, fast.data());
      // Only the sum of squares is reordered: relative error of a few ulp in the scale.
      for (int64_t i = 0; i < n; ++i) EXPECT_NEAR(fast[i], ref[i], 1e-5f * std::fabs(ref[i]) + 1e-7f) << n << " " << i;
    }
  }
}

TEST_P(SimdKernelTest, RopeMatchesReferenceForBothLayouts) {
  for (bool neox : {false, true}) {
    for (int head_dim : {2, 8, 16, 24, 64, 128}) {
      for (int misalign : kMisalignments) {
        const int n_head = 3;
        const int half = head_dim / 2;
        std::vector<float> x = RandomFloats(rng_, n_head * head_dim + 8);
        std::vector<float> cos(half + 8), sin(half + 8);
        for (int i = 0; i < half; ++i) {
          cos[misalign + i] = std::cos(0.37f * (i + 1));
          sin[misalign + i] = std::sin(0.37f * (i + 1));
        }
        std::vector<float> ref(x), fast(x);
        Scalar().rope(ref.data() + misalign, n_head, head_dim, head_dim, cos.data() + misalign, sin.data() + misalign, neox);
        table_->rope(fast.data() + misalign, n_head, head_dim, head_dim, cos.data() + misalign, sin.data() + misalign, neox);
        // The vector body rounds like the reference, but the compiler may fuse a*c - b*s into one
        // FMA in a SIMD file's scalar tail (and on aarch64 anywhere, in the reference too), which
        // skips one product rounding: 1 ulp of |a| + |b|.
        for (int h = 0; h < n_head; ++h) {
          for (int i = 0; i < head_dim; ++i) {
            const int at = misalign + h * head_dim + i;
            const int partner = neox ? (i < half ? at + half : at - half) : (i % 2 == 0 ? at + 1 : at - 1);
            const float bound = 2.4e-7f * (std::fabs(x[at]) + std::fabs(x[partner]));
            EXPECT_NEAR(fast[at], ref[at], bound) << "neox " << neox << " head_dim " << head_dim << " i " << i;
          }
        }
        EXPECT_NE(ref, x) << "rotation changed nothing";
      }
    }
  }
}

TEST_P(SimdKernelTest, SoftmaxAndExpMatchReference) {
  for (int64_t n : kLengths) {
    for (int misalign : kMisalignments) {
      std::vector<float> x = RandomFloats(rng_, n + 8, 8.0f);
      x[misalign] = -100.0f;  // exercises the clamp at the bottom of the exp range
      std::vector<float> ref(x), fast(x);
      // The vector exp is a degree-7 polynomial with ~2 ulp error; probabilities in [0, 1] then
      // agree to 1e-6 absolute, and each to 1e-5 relative when not tiny.
      Scalar().softmax(ref.data() + misalign, n);
      table_->softmax(fast.data() + misalign, n);
      for (int64_t i = 0; i < n; ++i) {
        EXPECT_NEAR(fast[misalign + i], ref[misalign + i], 1e-5f * ref[misalign + i] + 1e-6f) << n << " " << i;
      }
      std::vector<float> e_ref(x), e_fast(x);
      const float s_ref = Scalar().exp_shift_sum(e_ref.data() + misalign, n, 1.5f);
      const float s_fast = table_->exp_shift_sum(e_fast.data() + misalign, n, 1.5f);
      EXPECT_NEAR(s_fast, s_ref, 1e-5f * s_ref + 1e-30f);  // clamp: exp(-101.5) gives 4e-38, not 8e-45
      for (int64_t i = 0; i < n; ++i) {
        EXPECT_NEAR(e_fast[misalign + i], e_ref[misalign + i], 1e-5f * e_ref[misalign + i] + 1e-30f);
      }
    }
  }
}

TEST_P(SimdKernelTest, SiluMulMatchesReference) {
  for (int64_t n : kLengths) {
    for (int misalign : kMisalignments) {
      const std::vector<float> g = RandomFloats(rng_, n + 8, 6.0f), u = RandomFloats(rng_, n + 8);
      std::vector<float> ref(n), fast(n);
      Scalar().silu_mul(g.data() + misalign, u.data() + misalign, n, ref.data());
      table_->silu_mul(g.data() + misalign, u.data() + misalign, n, fast.data());
      // exp error of ~2 ulp passes through 1/(1+e) with no growth: 1e-5 relative.
      for (int64_t i = 0; i < n; ++i) EXPECT_NEAR(fast[i], ref[i], 1e-5f * std::fabs(ref[i]) + 1e-7f);
    }
  }
}

TEST_P(SimdKernelTest, HalfConversionsAreBitIdentical) {
  std::vector<float> special = {0.0f, -0.0f, 1.0f, 65504.0f, 65520.0f, 1e-8f, 5.96e-8f, 6.1e-5f, -3.0e-6f,
                                INFINITY, -INFINITY, 0.333333f, 1.0009766f, 2049.0f};
  for (int64_t n : kLengths) {
    for (int misalign : kMisalignments) {
      std::vector<float> x = RandomFloats(rng_, n + 8, 100.0f);
      for (size_t i = 0; i < special.size() && i < static_cast<size_t>(n); ++i) x[misalign + i] = special[i];
      std::vector<uint16_t> h_ref(n + 8), h_fast(n + 8);
      Scalar().f32_to_f16(x.data() + misalign, n, h_ref.data() + misalign);
      table_->f32_to_f16(x.data() + misalign, n, h_fast.data() + misalign);
      EXPECT_EQ(h_ref, h_fast) << "n " << n;
      std::vector<float> f_ref(n), f_fast(n);
      Scalar().f16_to_f32(h_ref.data() + misalign, n, f_ref.data());
      table_->f16_to_f32(h_ref.data() + misalign, n, f_fast.data());
      EXPECT_EQ(0, std::memcmp(f_ref.data(), f_fast.data(), n * 4)) << "n " << n;
    }
  }
  // Every f16 bit pattern (NaNs compared by NaN-ness: payload rules differ only in quiet bits).
  std::vector<uint16_t> all(65536);
  for (int i = 0; i < 65536; ++i) all[i] = static_cast<uint16_t>(i);
  std::vector<float> ref(65536), fast(65536);
  Scalar().f16_to_f32(all.data(), 65536, ref.data());
  table_->f16_to_f32(all.data(), 65536, fast.data());
  for (int i = 0; i < 65536; ++i) {
    if (std::isnan(ref[i])) {
      EXPECT_TRUE(std::isnan(fast[i])) << i;
    } else {
      EXPECT_EQ(std::memcmp(&ref[i], &fast[i], 4), 0) << i;
    }
  }
}

TEST_P(SimdKernelTest, AttentionHelpersMatchReference) {
  for (int64_t n : kLengths) {
    for (int misalign : kMisalignments) {
      const std::vector<float> a = RandomFloats(rng_, n + 8), b = RandomFloats(rng_, n + 8);
      std::vector<uint16_t> bh(n + 8);
      float abs_terms = 0, abs_terms_h = 0;
      for (int64_t i = 0; i < n + 8; ++i) bh[i] = F32ToF16(b[i]);
      for (int64_t i = 0; i < n; ++i) {
        abs_terms += std::fabs(a[misalign + i] * b[misalign + i]);
        abs_terms_h += std::fabs(a[misalign + i] * F16ToF32(bh[misalign + i]));
      }
      ExpectCloseToSum(table_->dot_f32(a.data() + misalign, b.data() + misalign, n),
                       Scalar().dot_f32(a.data() + misalign, b.data() + misalign, n), abs_terms, "dot_f32");
      ExpectCloseToSum(table_->dot_f32_f16(a.data() + misalign, bh.data() + misalign, n),
                       Scalar().dot_f32_f16(a.data() + misalign, bh.data() + misalign, n), abs_terms_h, "dot_f32_f16");

      // axpy: one FMA per element instead of multiply then add: at most 1 ulp apart.
      std::vector<float> y_ref(b.begin(), b.begin() + n), y_fast(y_ref);
      Scalar().axpy_f32(0.7f, a.data() + misalign, n, y_ref.data());
      table_->axpy_f32(0.7f, a.data() + misalign, n, y_fast.data());
      Scalar().axpy_f16(-1.3f, bh.data() + misalign, n, y_ref.data());
      table_->axpy_f16(-1.3f, bh.data() + misalign, n, y_fast.data());
      Scalar().scale(y_ref.data(), n, 0.25f);
      table_->scale(y_fast.data(), n, 0.25f);
      for (int64_t i = 0; i < n; ++i) EXPECT_NEAR(y_fast[i], y_ref[i], 1e-6f * (std::fabs(y_ref[i]) + 1.0f));
    }
  }
}

// One tile of keys for a group of query heads, with rows strided as in the cache (other KV
// heads in between), through `table` and the scalar kernels. Same reordered-sum bound as the
// products: 1e-5 of the sum of |terms|. The sizes cover the tiles' tails: heads of 1 to 3
// blocks beyond a tile's width, 1 to 7 rows beyond a multiple of 8 (scores) and of 4 (values),
// and groups of 8 or 16 keys cut anywhere.
void CheckAttentionTiles(const KernelTable& table, std::mt19937& rng) {
  for (int head_dim : {4, 8, 12, 16, 48, 64, 80, 96, 128}) {
    for (int n_q : {1, 2, 7, 9, 28}) {
      for (int n_keys : {1, 5, 16, 33, 64}) {
        const int64_t stride = 3 * head_dim + 4;
        const std::vector<float> q = RandomFloats(rng, n_q * head_dim);
        const std::vector<float> kf = RandomFloats(rng, n_keys * stride);
        std::vector<uint16_t> kh(kf.size());
        for (size_t i = 0; i < kf.size(); ++i) kh[i] = F32ToF16(kf[i]);
        const int ld = 70;
        for (bool f16 : {false, true}) {
          std::vector<float> ref(n_q * ld, 0.0f), fast(n_q * ld, 0.0f);
          if (f16) {
            Scalar().attn_scores_f16(q.data(), n_q, head_dim, kh.data(), stride, n_keys, 0.125f, ref.data(), ld);
            table.attn_scores_f16(q.data(), n_q, head_dim, kh.data(), stride, n_keys, 0.125f, fast.data(), ld);
          } else {
            Scalar().attn_scores_f32(q.data(), n_q, head_dim, kf.data(), stride, n_keys, 0.125f, ref.data(), ld);
            table.attn_scores_f32(q.data(), n_q, head_dim, kf.data(), stride, n_keys, 0.125f, fast.data(), ld);
          }
          for (int r = 0; r < n_q; ++r) {
            for (int j = 0; j < n_keys; ++j) {
              float abs_terms = 0;
              for (int d = 0; d < head_dim; ++d) abs_terms += std::fabs(0.125f * q[r * head_dim + d] * kf[j * stride + d]);
              ExpectCloseToSum(fast[r * ld + j], ref[r * ld + j], abs_terms * 1.01f, "scores");
            }
          }

          // Values: probabilities in [0, 1] times V rows into existing accumulators.
          std::vector<float> p(n_q * ld);
          for (float& x : p) x = std::uniform_real_distribution<float>(0.0f, 1.0f)(rng);
          std::vector<float> acc_ref = RandomFloats(rng, n_q * head_dim), acc_fast(acc_ref);
          if (f16) {
            Scalar().attn_values_f16(p.data(), n_q, ld, kh.data(), stride, n_keys, head_dim, acc_ref.data());
            table.attn_values_f16(p.data(), n_q, ld, kh.data(), stride, n_keys, head_dim, acc_fast.data());
          } else {
            Scalar().attn_values_f32(p.data(), n_q, ld, kf.data(), stride, n_keys, head_dim, acc_ref.data());
            table.attn_values_f32(p.data(), n_q, ld, kf.data(), stride, n_keys, head_dim, acc_fast.data());
          }
          for (int r = 0; r < n_q; ++r) {
            for (int d = 0; d < head_dim; ++d) {
              float abs_terms = 1.0f;
              for (int j = 0; j < n_keys; ++j) abs_terms += std::fabs(p[r * ld + j] * kf[j * stride + d]);
              ExpectCloseToSum(acc_fast[r * head_dim + d], acc_ref[r * head_dim + d], abs_terms, "values");
            }
          }
        }
      }
    }
  }
}

TEST_P(SimdKernelTest, AttentionTilesMatchReference) { CheckAttentionTiles(*table_, rng_); }

TEST_F(Avx512KernelTest, AttentionTilesMatchReference) { CheckAttentionTiles(*avx512_, rng_); }

TEST(KernelsTest, ScalarQ8ProductEqualsDequantizedProduct) {
  // The reference itself against a plain f32 product of dequantized values.
  std::mt19937 rng(7);
  const int64_t n_in = 64;
  std::vector<float> w = RandomFloats(rng, n_in), x = RandomFloats(rng, n_in);
  std::vector<uint8_t> wq(2 * kQ8_0BlockBytes);
  for (int b = 0; b < 2; ++b) {
    const uint16_t d = F32ToF16(0.01f);
    std::memcpy(wq.data() + b * kQ8_0BlockBytes, &d, 2);
    for (int i = 0; i < 32; ++i) {
      wq[b * kQ8_0BlockBytes + 2 + i] = static_cast<uint8_t>(static_cast<int8_t>(std::clamp(std::nearbyint(w[b * 32 + i] / F16ToF32(d)), -127.0f, 127.0f)));
    }
  }
  std::vector<float> w_deq(n_in);
  ASSERT_TRUE(DequantizeRow(static_cast<uint32_t>(gguf::TensorType::kQ8_0), wq.data(), n_in, w_deq.data()));
  std::vector<BlockQ8Act> xq(2);
  ScalarKernels().quantize_q8_act(x.data(), n_in, xq.data());
  float want = 0;
  for (int64_t i = 0; i < n_in; ++i) want += w_deq[i] * xq[i / 32].d * xq[i / 32].qs[i % 32];
  MatMulArgs args;
  args.w = wq.data();
  args.w_row_bytes = wq.size();
  args.n_in = n_in;
  args.x = xq.data();
  args.x_row_bytes = 2 * sizeof(BlockQ8Act);
  args.n_tokens = 1;
  float y = 0;
  args.y = &y;
  args.ldy = 1;
  args.row_end = 1;
  ScalarKernels().matmul_q8_0(args);
  EXPECT_NEAR(y, want, 1e-5f * (std::fabs(want) + 1.0f));
}

TEST(KernelsTest, BestKernelsIsTheWidestTheCpuRuns) {
  const char* forced = std::getenv("SPARKV_KERNELS");
  if (forced != nullptr) {
    EXPECT_EQ(BestKernels().name, std::string(forced)) << "SPARKV_KERNELS names the table";
  } else if (Avx512Kernels() != nullptr) {
    EXPECT_EQ(BestKernels().name, "avx512-vnni");
  } else if (Avx2Kernels() != nullptr) {
    EXPECT_EQ(BestKernels().name, "avx2");
  } else if (NeonKernels() != nullptr) {
    EXPECT_EQ(BestKernels().name, NeonKernels()->name);
  } else {
    EXPECT_EQ(BestKernels().name, "scalar");
  }
}

#if defined(__aarch64__)
// On aarch64 the dispatch picks NEON, with SDOT exactly when the kernel reports it. The x86 tables
// are not even built. scripts/test-aarch64.sh runs this under emulated CPUs with and without
// dotprod and names the table each must pick in SPARKV_EXPECT_KERNELS, so a detection that always
// returns the same result fails one of the runs.
TEST(KernelsTest, Aarch64DispatchPicksNeon) {
  EXPECT_EQ(Avx2Kernels(), nullptr);
  EXPECT_EQ(Avx512Kernels(), nullptr);
  ASSERT_NE(NeonKernels(), nullptr);
  ASSERT_NE(NeonBaseKernels(), nullptr);
  const bool dotprod = (getauxval(AT_HWCAP) & HWCAP_ASIMDDP) != 0;
  EXPECT_EQ(NeonKernels()->name, dotprod ? "neon-dotprod" : "neon");
  EXPECT_EQ(NeonBaseKernels()->name, "neon");
  const char* forced = std::getenv("SPARKV_KERNELS");
  if (forced == nullptr) {
    EXPECT_EQ(BestKernels().name, NeonKernels()->name);
  }
  if (const char* expected = std::getenv("SPARKV_EXPECT_KERNELS")) {
    EXPECT_EQ(BestKernels().name, expected);
  }
}

TEST(KernelsTest, NeonTablesDifferOnlyInQuantizedProducts) {
  const KernelTable* base = NeonBaseKernels();
  const KernelTable* dot = TableNamed("neon-dotprod");
  if (dot == nullptr) GTEST_SKIP() << "CPU lacks SDOT";
  EXPECT_NE(dot->matmul_q8_0, base->matmul_q8_0);
  EXPECT_NE(dot->matmul_q4_0, base->matmul_q4_0);
  EXPECT_NE(dot->matmul_q4_k, base->matmul_q4_k);
  EXPECT_NE(dot->matmul_q6_k, base->matmul_q6_k);
  EXPECT_EQ(dot->matmul_f16, base->matmul_f16);
  EXPECT_EQ(dot->attn_scores_f16, base->attn_scores_f16);
  EXPECT_EQ(dot->rms_norm, base->rms_norm);
}
#endif

}  // namespace
}  // namespace sparkv::kernels
