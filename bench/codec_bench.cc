// Encode and decode throughput of every registered codec on one realistic chunk: 22 layers x
// 256 tokens x 256-wide K and V rows (TinyLlama-1.1B: 4 KV heads of 64). Throughput counts bytes of the
// reconstructed cache (2 per element for an f16 cache, 4 for f32), on one thread.
#include <benchmark/benchmark.h>

#include <algorithm>
#include <cstdint>
#include <random>
#include <vector>

#include "common/f16.h"
#include "kv/codec.h"
#include "kv/rans.h"

namespace sparkv {
namespace {

constexpr int32_t kLayers = 22;
constexpr int32_t kHeads = 4;
constexpr int32_t kHeadDim = 64;
constexpr int32_t kTokens = 256;

// A cache chunk with normal values whose spread varies per channel, as real K rows do.
struct BenchCache {
  std::vector<std::vector<uint8_t>> blocks;  // [2 * n_layer][n_tokens * row_width * elem bytes]
  KvSlice slice;

  explicit BenchCache(KvElemType elem) {
    slice.elem = elem;
    slice.n_layer = kLayers;
    slice.n_head_kv = kHeads;
    slice.head_dim = kHeadDim;
    slice.begin = 512;
    slice.end = 512 + kTokens;
    std::mt19937 rng(42);
    std::normal_distribution<float> normal(0.0f, 1.0f);
    const int64_t n = static_cast<int64_t>(kTokens) * slice.row_width();
    blocks.assign(2 * kLayers, std::vector<uint8_t>(slice.layer_bytes()));
    for (auto& block : blocks) {
      for (int64_t i = 0; i < n; ++i) {
        const float value = normal(rng) * (1.0f + static_cast<float>(i % slice.row_width() % 7));
        if (elem == KvElemType::kF32) {
          std::memcpy(block.data() + 4 * i, &value, 4);
        } else {
          const uint16_t h = F32ToF16(value);
          std::memcpy(block.data() + 2 * i, &h, 2);
        }
      }
    }
    for (int32_t l = 0; l < kLayers; ++l) {
      slice.k.push_back(blocks[2 * l].data());
      slice.v.push_back(blocks[2 * l + 1].data());
    }
  }

  int64_t bytes() const { return 2 * static_cast<int64_t>(kLayers) * slice.layer_bytes(); }
};

void SetCounters(benchmark::State& state, const BenchCache& cache, size_t payload_bytes) {
  state.SetBytesProcessed(state.iterations() * cache.bytes());
  state.counters["payload_MB"] = static_cast<double>(payload_bytes) / 1e6;
  state.counters["bits_per_elem"] =
      8.0 * static_cast<double>(payload_bytes) /
      (2.0 * kLayers * kTokens * static_cast<double>(cache.slice.row_width()));
}

// Arguments: codec id, cache element type (0 = f32, 1 = f16).
void BM_Encode(benchmark::State& state) {
  const Codec* codec = FindCodec(static_cast<CodecId>(state.range(0)));
  const BenchCache source(static_cast<KvElemType>(state.range(1)));
  size_t payload_bytes = 0;
  for (auto _ : state) {
    Result<std::vector<uint8_t>> payload = codec->Encode(source.slice);
    if (!payload.ok()) {
      state.SkipWithError(payload.status().ToString().c_str());
      return;
    }
    payload_bytes = payload->size();
    benchmark::DoNotOptimize(payload->data());
  }
  SetCounters(state, source, payload_bytes);
  state.SetLabel(std::string(codec->name()) + (state.range(1) == 1 ? " from f16" : " from f32"));
}

void BM_Decode(benchmark::State& state) {
  const Codec* codec = FindCodec(static_cast<CodecId>(state.range(0)));
  const KvElemType elem = static_cast<KvElemType>(state.range(1));
  const BenchCache source(elem);
  BenchCache destination(elem);
  Result<std::vector<uint8_t>> payload = codec->Encode(source.slice);
  if (!payload.ok()) {
    state.SkipWithError(payload.status().ToString().c_str());
    return;
  }
  for (auto _ : state) {
    const Status status = codec->Decode(*payload, destination.slice);
    if (!status.ok()) {
      state.SkipWithError(status.ToString().c_str());
      return;
    }
    benchmark::ClobberMemory();
  }
  SetCounters(state, destination, payload->size());
  state.SetLabel(std::string(codec->name()) + (state.range(1) == 1 ? " into f16" : " into f32"));
}

// Every codec of the registry, from and into f16 and f32 caches.
void EveryCodec(benchmark::internal::Benchmark* benchmark) {
  for (const Codec* codec : AllCodecs()) {
    for (int elem : {1, 0}) benchmark->Args({static_cast<int64_t>(codec->id()), elem});
  }
}

BENCHMARK(BM_Encode)->Apply(EveryCodec)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_Decode)->Apply(EveryCodec)->Unit(benchmark::kMillisecond);

// Parallel decode of the same chunk. Arguments: codec id, threads. Throughput counts bytes of
// the f16 cache per second of wall time (real time), since the work spreads over threads.
void BM_DecodeParallel(benchmark::State& state) {
  const Codec* codec = FindCodec(static_cast<CodecId>(state.range(0)));
  const auto n_threads = static_cast<int>(state.range(1));
  const BenchCache source(KvElemType::kF16);
  BenchCache destination(KvElemType::kF16);
  Result<std::vector<uint8_t>> payload = codec->Encode(source.slice);
  if (!payload.ok()) {
    state.SkipWithError(payload.status().ToString().c_str());
    return;
  }
  for (auto _ : state) {
    const Status status = codec->DecodeParallel(*payload, destination.slice, n_threads);
    if (!status.ok()) {
      state.SkipWithError(status.ToString().c_str());
      return;
    }
    benchmark::ClobberMemory();
  }
  SetCounters(state, destination, payload->size());
  state.SetLabel(std::string(codec->name()) + " into f16, " + std::to_string(n_threads) + " threads");
}
BENCHMARK(BM_DecodeParallel)
    ->ArgsProduct({{static_cast<int64_t>(CodecId::kF16Ans), static_cast<int64_t>(CodecId::kAns4)},
                   {1, 2}})
    ->UseRealTime()
    ->Unit(benchmark::kMillisecond);

// The rANS decoders alone on 64 Ki symbols of a geometric distribution: symbols per second.
// Arguments: decoder (0 = scalar, 1 = AVX2), success probability in percent (higher = more skew).
void BM_RansDecode(benchmark::State& state) {
  const bool avx2 = state.range(0) == 1;
  if (avx2 && !rans::HasAvx2Decoder()) {
    state.SkipWithError("this CPU has no AVX2");
    return;
  }
  std::mt19937 rng(5);
  std::geometric_distribution<int> geometric(static_cast<double>(state.range(1)) / 100.0);
  std::vector<uint8_t> symbols(1 << 16);
  for (auto& s : symbols) s = static_cast<uint8_t>(std::min(geometric(rng), 30));
  const rans::FrequencyTable table = rans::NormalizeCounts(rans::CountSymbols(symbols, 31));
  std::vector<uint8_t> stream;
  rans::Encode(symbols, table, stream);
  const rans::DecodeTable decode_table(table);
  std::vector<uint8_t> decoded(symbols.size());
  for (auto _ : state) {
    const Status status = avx2 ? rans::DecodeAvx2(stream, decode_table, decoded, "bench")
                               : rans::DecodeScalar(stream, decode_table, decoded, "bench");
    if (!status.ok()) {
      state.SkipWithError(status.ToString().c_str());
      return;
    }
    benchmark::DoNotOptimize(decoded.data());
  }
  state.SetItemsProcessed(state.iterations() * static_cast<int64_t>(symbols.size()));
  state.counters["bits_per_symbol"] = 8.0 * static_cast<double>(stream.size()) / symbols.size();
  state.SetLabel(avx2 ? "avx2" : "scalar");
}
BENCHMARK(BM_RansDecode)->ArgsProduct({{0, 1}, {20, 50, 80}});

// DecodeStreams on several streams of 64 Ki symbols (p = 0.5), each with its own table, as the
// codecs call it: symbols per second over all streams. Arguments: decoder (0 = scalar,
// 1 = AVX2, 2 = AVX-512), streams.
void BM_RansDecodeStreams(benchmark::State& state) {
  const int64_t decoder = state.range(0);
  if (decoder == 1 && !rans::HasAvx2Decoder()) {
    state.SkipWithError("this CPU has no AVX2");
    return;
  }
  if (decoder == 2 && !rans::HasAvx512Decoder()) {
    state.SkipWithError("this CPU has no AVX-512 F, BW, VL, DQ and VNNI");
    return;
  }

  const auto n_streams = static_cast<size_t>(state.range(1));
  std::vector<std::vector<uint8_t>> streams(n_streams), decoded(n_streams);
  std::vector<rans::DecodeTable> tables;
  std::vector<rans::StreamJob> jobs;
  for (size_t k = 0; k < n_streams; ++k) {
    std::mt19937 rng(static_cast<uint32_t>(7 + k));
    std::geometric_distribution<int> geometric(0.5);
    std::vector<uint8_t> symbols(1 << 16);
    for (auto& s : symbols) s = static_cast<uint8_t>(std::min(geometric(rng), 30));
    const rans::FrequencyTable table = rans::NormalizeCounts(rans::CountSymbols(symbols, 31));
    rans::Encode(symbols, table, streams[k]);
    tables.emplace_back(table);
    decoded[k].resize(symbols.size());
  }
  for (size_t k = 0; k < n_streams; ++k) jobs.push_back({streams[k], &tables[k], decoded[k], "bench"});

  std::vector<Status> statuses(n_streams);
  for (auto _ : state) {
    if (decoder == 2) {
      rans::DecodeStreamsAvx512(jobs, statuses);
    } else if (decoder == 1) {
      rans::DecodeStreamsAvx2(jobs, statuses);
    } else {
      rans::DecodeStreamsScalar(jobs, statuses);
    }
    for (const Status& status : statuses) {
      if (!status.ok()) {
        state.SkipWithError(status.ToString().c_str());
        return;
      }
    }
    benchmark::ClobberMemory();
  }
  state.SetItemsProcessed(state.iterations() * static_cast<int64_t>(n_streams << 16));
  const char* const names[] = {"scalar, ", "avx2, ", "avx512, "};
  state.SetLabel(names[decoder] + std::to_string(n_streams) + " streams");
}
BENCHMARK(BM_RansDecodeStreams)->ArgsProduct({{0, 1, 2}, {1, 2, 4, 8, 16}});

}  // namespace
}  // namespace sparkv
