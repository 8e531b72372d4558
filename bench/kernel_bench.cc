// Matrix products of every weight type with each kernel table the CPU runs, on one thread.
//
// A 2048 x 2048 weight matrix (the TinyLlama shape's attention projections) times 64 activation
// rows, one micro-batch of a prefill. The counter GMAC/s is multiply-adds per CPU second / 1e9.
// BM_MatVec is a decode step: one token through 32768 x 2048 weights, with weight bytes read per
// CPU second beside it.
//
// BM_Attention runs one work item of the engine: scores, then probabilities times values, for the
// query rows of 4 tokens and one KV head over 2048 cached f16 keys in tiles of 64. The head
// shapes are those of Qwen2.5-0.5B (7 query heads per KV head, 64 wide) and Qwen3-0.6B (2 of 128).
#include <benchmark/benchmark.h>

#include <cstring>
#include <random>
#include <string>
#include <tuple>
#include <vector>

#include "common/f16.h"
#include "engine/kernels.h"
#include "model/synthetic.h"

namespace sparkv {
namespace {

using kernels::KernelTable;

constexpr int64_t kInputs = 2048;
constexpr int64_t kOutputs = 2048;
constexpr int64_t kTokens = 64;
constexpr int64_t kDecodeOutputs = 32768;  // 2048 x 32768: 71 MiB of Q8_0, 128 MiB of F16

enum class Type { kF32, kF16, kBf16, kQ8_0, kQ4_0, kQ4_K, kQ6_K };

size_t RowBytes(Type type) {
  switch (type) {
    case Type::kF32: return kInputs * 4;
    case Type::kF16:
    case Type::kBf16: return kInputs * 2;
    case Type::kQ8_0: return kInputs / 32 * kernels::kQ8_0BlockBytes;
    case Type::kQ4_0: return kInputs / 32 * kernels::kQ4_0BlockBytes;
    case Type::kQ4_K: return kInputs / 256 * kernels::kQ4_KBlockBytes;
    case Type::kQ6_K: return kInputs / 256 * kernels::kQ6_KBlockBytes;
  }
  return 0;
}

std::vector<uint8_t> MakeWeights(Type type, const std::vector<float>& values, int64_t n_outputs) {
  const size_t row_bytes = RowBytes(type);
  std::vector<uint8_t> out(row_bytes * n_outputs);
  for (int64_t r = 0; r < n_outputs; ++r) {
    const float* row = values.data() + r * kInputs;
    uint8_t* destination = out.data() + r * row_bytes;
    switch (type) {
      case Type::kF32: std::memcpy(destination, row, row_bytes); break;
      case Type::kF16:
      case Type::kBf16:
        for (int64_t i = 0; i < kInputs; ++i) {
          const uint16_t h = type == Type::kF16 ? F32ToF16(row[i]) : F32ToBf16(row[i]);
          std::memcpy(destination + 2 * i, &h, 2);
        }
        break;
      case Type::kQ8_0: QuantizeRowQ8_0(row, kInputs, destination); break;
      case Type::kQ4_0: QuantizeRowQ4_0(row, kInputs, destination); break;
      case Type::kQ4_K: QuantizeRowQ4_K(row, kInputs, destination); break;
      case Type::kQ6_K: QuantizeRowQ6_K(row, kInputs, destination); break;
    }
  }
  return out;
}

auto KernelOf(const KernelTable& table, Type type) {
  switch (type) {
    case Type::kF32: return table.matmul_f32;
    case Type::kF16: return table.matmul_f16;
    case Type::kBf16: return table.matmul_bf16;
    case Type::kQ8_0: return table.matmul_q8_0;
    case Type::kQ4_0: return table.matmul_q4_0;
    case Type::kQ4_K: return table.matmul_q4_k;
    case Type::kQ6_K: return table.matmul_q6_k;
  }
  return table.matmul_f32;
}

void BM_MatMul(benchmark::State& state, const KernelTable* table, Type type, int64_t n_outputs, int64_t n_tokens) {
  if (table == nullptr) {
    state.SkipWithError("this CPU does not run the table");
    return;
  }
  std::mt19937 rng(1);
  std::normal_distribution<float> normal(0.0f, 0.5f);
  std::vector<float> values(kInputs * n_outputs);
  for (float& v : values) v = normal(rng);
  std::vector<float> x(n_tokens * kInputs);
  for (float& v : x) v = normal(rng);
  std::vector<kernels::BlockQ8Act> xq(n_tokens * kInputs / 32);
  kernels::ScalarKernels().quantize_q8_act(x.data(), n_tokens * kInputs, xq.data());
  const std::vector<uint8_t> w = MakeWeights(type, values, n_outputs);
  std::vector<float> y(n_tokens * n_outputs);

  kernels::MatMulArgs args;
  args.w = w.data();
  args.w_row_bytes = RowBytes(type);
  args.n_in = kInputs;
  const bool float_weights = type == Type::kF32 || type == Type::kF16 || type == Type::kBf16;
  args.x = float_weights ? static_cast<const void*>(x.data()) : static_cast<const void*>(xq.data());
  args.x_row_bytes = float_weights ? kInputs * 4 : kInputs / 32 * sizeof(kernels::BlockQ8Act);
  args.n_tokens = n_tokens;
  args.y = y.data();
  args.ldy = n_outputs;
  args.row_begin = 0;
  args.row_end = n_outputs;
  const auto kernel = KernelOf(*table, type);
  for (auto _ : state) {
    kernel(args);
    benchmark::DoNotOptimize(y.data());
  }
  state.counters["GMAC/s"] = benchmark::Counter(static_cast<double>(kInputs * n_outputs * n_tokens) * 1e-9,
                                                benchmark::Counter::kIsIterationInvariantRate);
  state.counters["weights GB/s"] = benchmark::Counter(static_cast<double>(w.size()) * 1e-9,
                                                      benchmark::Counter::kIsIterationInvariantRate);
}

void BM_Attention(benchmark::State& state, const KernelTable* table, int n_rep, int head_dim) {
  if (table == nullptr) {
    state.SkipWithError("this CPU does not run the table");
    return;
  }
  constexpr int kKeys = 2048, kTile = 64, kBlockTokens = 4, kHeadsKv = 2;
  const int rows = kBlockTokens * n_rep;
  const int64_t stride = int64_t{kHeadsKv} * head_dim;  // elements per cache row (one position)
  std::mt19937 rng(2);
  std::normal_distribution<float> normal(0.0f, 0.5f);
  std::vector<uint16_t> k(kKeys * stride), v(kKeys * stride);
  for (uint16_t& h : k) h = F32ToF16(normal(rng));
  for (uint16_t& h : v) h = F32ToF16(normal(rng));
  std::vector<float> q(rows * head_dim);
  for (float& x : q) x = normal(rng);
  std::vector<float> scores(rows * kTile), acc(rows * head_dim);
  for (auto _ : state) {
    for (int j0 = 0; j0 < kKeys; j0 += kTile) {
      table->attn_scores_f16(q.data(), rows, head_dim, k.data() + j0 * stride, stride, kTile, 0.125f, scores.data(),
                             kTile);
      // Scaled scores replace the probabilities, because the kernels' cost does not depend on them.
      table->scale(scores.data(), rows * kTile, 1.0f / 64);
      table->attn_values_f16(scores.data(), rows, kTile, v.data() + j0 * stride, stride, kTile, head_dim, acc.data());
    }
    benchmark::DoNotOptimize(acc.data());
  }
  state.counters["GMAC/s"] = benchmark::Counter(2.0 * rows * head_dim * kKeys * 1e-9,
                                                benchmark::Counter::kIsIterationInvariantRate);
}

void RegisterAll() {
  const std::pair<const char*, Type> types[] = {{"f32", Type::kF32},   {"f16", Type::kF16},   {"bf16", Type::kBf16},
                                                {"q8_0", Type::kQ8_0}, {"q4_0", Type::kQ4_0}, {"q4_k", Type::kQ4_K},
                                                {"q6_k", Type::kQ6_K}};
  const std::pair<const char*, const KernelTable*> tables[] = {{"avx2", kernels::Avx2Kernels()},
                                                               {"avx512", kernels::Avx512Kernels()}};
  for (const auto& [type_name, type] : types) {
    for (const auto& [table_name, table] : tables) {
      benchmark::RegisterBenchmark((std::string("BM_MatMul/") + type_name + "/" + table_name).c_str(), BM_MatMul,
                                   table, type, kOutputs, kTokens)
          ->Unit(benchmark::kMillisecond)
          ->MeasureProcessCPUTime();
    }
  }
  // Decode: one token through a matrix far larger than the last-level cache, so the rate is
  // bounded by memory, as in a real decode step.
  for (const auto& [type_name, type] : types) {
    for (const auto& [table_name, table] : tables) {
      benchmark::RegisterBenchmark((std::string("BM_MatVec/") + type_name + "/" + table_name).c_str(), BM_MatMul,
                                   table, type, kDecodeOutputs, 1)
          ->Unit(benchmark::kMillisecond)
          ->MeasureProcessCPUTime();
    }
  }
  const std::tuple<const char*, int, int> heads[] = {{"qwen2.5", 7, 64}, {"qwen3", 2, 128}};
  for (const auto& [shape, n_rep, head_dim] : heads) {
    for (const auto& [table_name, table] : tables) {
      benchmark::RegisterBenchmark((std::string("BM_Attention/") + shape + "/" + table_name).c_str(), BM_Attention,
                                   table, n_rep, head_dim)
          ->Unit(benchmark::kMicrosecond)
          ->MeasureProcessCPUTime();
    }
  }
}

const int kRegistered = (RegisterAll(), 0);

}  // namespace
}  // namespace sparkv
