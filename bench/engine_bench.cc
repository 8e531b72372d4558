// Prefill throughput per chunk and decode throughput of the engine.
//
// stories260K (converted from the shared data folder) always runs: 512 positions in chunks of 64,
// like the llama.cpp figures beside the data. Set SPARKV_BENCH_GGUF to a GGUF path (for example a
// synthetic TinyLlama-shape Q8_0 model from `sparkv model synth`) to also measure that model with
// 2048 positions in chunks of 256. Rates are tokens per second (items_per_second).
#include <benchmark/benchmark.h>

#include <cstdlib>
#include <filesystem>
#include <map>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "common/log.h"
#include "engine/engine.h"
#include "model/llama2c.h"
#include "model/model.h"

namespace sparkv {
namespace {

// $SPARKV_DATA, else the shared data folder beside the checkout (as CMake's SPARKV_DATA_DIR).
std::string DataDir() {
  if (const char* dir = std::getenv("SPARKV_DATA")) return dir;
  return (std::filesystem::path(__FILE__).parent_path() / ".." / ".." / "shared" / "data").string();
}

std::string Stories260KGguf() {
  static const std::string path = [] {
    const std::string out = (std::filesystem::temp_directory_path() / "sparkv-bench-stories260K.gguf").string();
    const Status status = ConvertLlama2c(DataDir() + "/models/stories260K.bin", "", out);
    if (!status.ok()) std::fprintf(stderr, "converting stories260K failed: %s\n", status.ToString().c_str());
    return out;
  }();
  return path;
}

struct Setup {
  std::unique_ptr<Model> model;
  std::map<int, std::unique_ptr<Engine>> engines;  // by thread count
};

Setup* GetSetup(const std::string& path) {
  static std::map<std::string, std::unique_ptr<Setup>> setups;
  auto& setup = setups[path];
  if (!setup) {
    auto model = Model::Load(path);
    if (!model.ok()) {
      std::fprintf(stderr, "loading %s failed: %s\n", path.c_str(), model.status().ToString().c_str());
      return nullptr;
    }
    setup = std::make_unique<Setup>();
    setup->model = std::move(model).value();
  }
  return setup.get();
}

Engine* GetEngine(const std::string& path, int n_threads, int32_t n_positions, int32_t n_batch) {
  Setup* setup = GetSetup(path);
  if (setup == nullptr) return nullptr;
  auto& engine = setup->engines[n_threads];
  if (!engine) {
    EngineOptions options;
    options.n_threads = n_threads;
    options.n_positions = n_positions;
    options.n_batch = n_batch;
    auto created = Engine::Create(*setup->model, options);
    if (!created.ok()) {
      std::fprintf(stderr, "engine: %s\n", created.status().ToString().c_str());
      return nullptr;
    }
    engine = std::move(created).value();
  }
  return engine.get();
}

std::vector<TokenId> RandomTokens(int32_t n, int32_t n_vocab) {
  std::mt19937 rng(1);
  std::uniform_int_distribution<TokenId> dist(3, n_vocab - 1);
  std::vector<TokenId> tokens(static_cast<size_t>(n));
  for (TokenId& t : tokens) t = dist(rng);
  return tokens;
}

// Times the prefill of chunk `chunk_index` ([chunk * index, chunk * (index + 1))) with every
// earlier position resident; the chunk's rows are rewritten on every iteration.
void PrefillChunk(benchmark::State& state, const std::string& path, int32_t n_positions, int32_t chunk) {
  SetLogLevel(LogLevel::kWarn);
  const int n_threads = static_cast<int>(state.range(0));
  const int32_t index = static_cast<int32_t>(state.range(1));
  Engine* engine = GetEngine(path, n_threads, n_positions, chunk);
  if (engine == nullptr) {
    state.SkipWithError("model or engine unavailable");
    return;
  }
  const std::vector<TokenId> tokens = RandomTokens(n_positions, engine->hparams().n_vocab);
  const Position begin = index * chunk;
  if (!engine->kv_cache().IsResident(0, begin)) {
    if (!engine->Prefill(std::span(tokens).subspan(0, begin), 0, nullptr).ok()) {
      state.SkipWithError("prefill of the earlier chunks failed");
      return;
    }
  }
  std::vector<float> logits;
  for (auto _ : state) {
    const Status status = engine->Prefill(std::span(tokens).subspan(begin, chunk), begin, &logits);
    if (!status.ok()) state.SkipWithError(status.ToString().c_str());
    benchmark::DoNotOptimize(logits.data());
  }
  state.SetItemsProcessed(state.iterations() * chunk);
}

// Decode steps after a 16-token prompt, as the llama.cpp figures measure.
void DecodeStep(benchmark::State& state, const std::string& path, int32_t n_positions, int32_t chunk) {
  SetLogLevel(LogLevel::kWarn);
  const int n_threads = static_cast<int>(state.range(0));
  Engine* engine = GetEngine(path, n_threads, n_positions, chunk);
  if (engine == nullptr) {
    state.SkipWithError("model or engine unavailable");
    return;
  }
  const std::vector<TokenId> tokens = RandomTokens(48, engine->hparams().n_vocab);
  if (!engine->Prefill(std::span(tokens).subspan(0, 16), 0, nullptr).ok()) {
    state.SkipWithError("prompt prefill failed");
    return;
  }
  std::vector<float> logits;
  Position pos = 16;
  for (auto _ : state) {
    if (!engine->Decode(tokens[pos], pos, &logits).ok()) state.SkipWithError("decode failed");
    pos = pos + 1 < 48 ? pos + 1 : 16;  // positions 16..47, like 32 generated tokens
  }
  state.SetItemsProcessed(state.iterations());
}

void BM_Stories260KPrefillChunk64(benchmark::State& state) { PrefillChunk(state, Stories260KGguf(), 512, 64); }
void BM_Stories260KDecode(benchmark::State& state) { DecodeStep(state, Stories260KGguf(), 512, 64); }
BENCHMARK(BM_Stories260KPrefillChunk64)->ArgsProduct({{1, 2}, {0, 3, 7}})->ArgNames({"threads", "chunk"});
BENCHMARK(BM_Stories260KDecode)->Arg(1)->Arg(2)->ArgName("threads");

std::string ExternalModel() {
  const char* path = std::getenv("SPARKV_BENCH_GGUF");
  return path != nullptr ? path : "";
}

void BM_ModelPrefillChunk256(benchmark::State& state) {
  if (ExternalModel().empty()) {
    state.SkipWithError("set SPARKV_BENCH_GGUF to a model path");
    return;
  }
  PrefillChunk(state, ExternalModel(), 2048, 256);
}
void BM_ModelDecode(benchmark::State& state) {
  if (ExternalModel().empty()) {
    state.SkipWithError("set SPARKV_BENCH_GGUF to a model path");
    return;
  }
  DecodeStep(state, ExternalModel(), 2048, 256);
}
BENCHMARK(BM_ModelPrefillChunk256)->ArgsProduct({{2}, {0, 3, 7}})->ArgNames({"threads", "chunk"})
    ->Unit(benchmark::kMillisecond)->MinTime(2.0);
BENCHMARK(BM_ModelDecode)->Arg(2)->ArgName("threads")->Unit(benchmark::kMillisecond);

}  // namespace
}  // namespace sparkv
