// Planner run time on TinyLlama-shaped inputs: 256-token chunks, four codec levels, costs of a
// small CPU. Prints, per strategy and chunk count, the time one Solve() takes; for the exact
// planner also its largest front, the candidates it expanded, the certified gap to the optimum
// and the TTFT relative to the unlimited solve, per work budget.
#include <benchmark/benchmark.h>

#include <random>
#include <string>
#include <vector>

#include "plan/exact_planner.h"
#include "plan/planner.h"

namespace sparkv {
namespace {

// TinyLlama 1.1B on 2 cores: about 2.5 ms per token of weights plus an attention term; an f16 KV
// chunk of 256 tokens is 22 layers * 2 * 4 heads * 64 dims * 2 bytes * 256 = 5.8 MB. Each chunk
// compresses a little differently (+-15%); decode of the entropy-coded level is slow.
PlanInput TinyLlamaInput(int n_chunks, bool varying_bandwidth, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<double> jitter(0.85, 1.15);
  PlanInput in;
  in.compute = {2.5e-3, 2e-8, 0.01};
  in.query_seconds = 0.1;
  struct Codec {
    const char* name;
    double ratio;
    double decode_s_per_byte;
  };
  const Codec codecs[] = {{"f16", 1.0, 2e-10}, {"q8", 0.53, 1e-9}, {"q4", 0.28, 2e-9}, {"q4z", 0.2, 2e-8}};
  const double f16_bytes = 22.0 * 2 * 4 * 64 * 2 * 256;
  for (int j = 0; j < n_chunks; ++j) {
    ChunkSpec c{j, 256 * j, 256 * (j + 1), {}};
    for (int l = 0; l < 4; ++l) {
      const auto bytes = static_cast<uint64_t>(f16_bytes * codecs[l].ratio * (l == 0 ? 1.0 : jitter(rng)));
      c.levels.push_back({codecs[l].name, bytes, codecs[l].decode_s_per_byte * bytes, l});
    }
    in.chunks.push_back(std::move(c));
  }
  // Around the crossover: an f16 chunk takes about as long to fetch as to compute.
  const double crossover = f16_bytes / in.compute.ChunkSeconds(0, 256);
  if (varying_bandwidth) {
    std::vector<double> rates;
    for (int i = 0; i < 20; ++i) rates.push_back(crossover * (i % 5 == 4 ? 0.1 : jitter(rng) * 1.5));
    in.bandwidth = BandwidthModel::Trace(rates, 0.5, true).value();
  } else {
    in.bandwidth = BandwidthModel::Constant(crossover);
  }
  in.request_overhead_s = 0.01;
  return in;
}

void BM_Strategy(benchmark::State& state, const std::string& name, bool varying) {
  const PlanInput in = TinyLlamaInput(static_cast<int>(state.range(0)), varying, 1);
  const Planner* planner = FindPlanner(name);
  double ttft = 0;
  for (auto _ : state) {
    Plan p = planner->Solve(in);
    ttft = p.predicted.ttft_s;
    benchmark::DoNotOptimize(p);
  }
  state.counters["ttft_s"] = ttft;
}

// The exact planner under a work budget or a front cap, next to the unlimited solve: time, the
// certified gap (bound_s), and for up to 256 chunks the TTFT relative to the unlimited optimum.
void BM_Exact(benchmark::State& state, bool varying, ExactOptions options) {
  const auto n = static_cast<int>(state.range(0));
  const PlanInput in = TinyLlamaInput(n, varying, 1);
  ExactStats stats;
  double ttft = 0;
  for (auto _ : state) {
    Plan p = SolveExact(in, options, &stats);
    ttft = p.predicted.ttft_s;
    benchmark::DoNotOptimize(p);
  }
  state.counters["ttft_s"] = ttft;
  state.counters["max_front"] = static_cast<double>(stats.max_front);
  state.counters["candidates"] = static_cast<double>(stats.n_candidates);
  state.counters["tie_done"] = stats.tie_break_complete ? 1 : 0;
  state.counters["bound_s"] = stats.ttft_error_bound_s;
  if (n <= 256 && (options.max_candidates > 0 || options.max_front > 0)) {
    const double optimum = SolveExact(in, {.max_tie_states = 0}, nullptr).predicted.ttft_s;
    state.counters["vs_optimum"] = ttft / optimum;
  }
}

void Register() {
  for (bool varying : {false, true}) {
    const std::string bw = varying ? "/trace" : "/constant";
    // The registered "exact" planner runs with kDefaultExactBudget.
    for (const std::string& name : PlannerNames()) {
      auto* b = benchmark::RegisterBenchmark(("strategy/" + name + bw).c_str(), BM_Strategy, name,
                                             varying);
      b->Arg(64)->Arg(256)->Arg(1024)->Unit(benchmark::kMillisecond);
    }
    // Without a budget the solve takes seconds at 1024 chunks; it runs to 256 here.
    benchmark::RegisterBenchmark(("exact" + bw + "/unlimited").c_str(), BM_Exact, varying,
                                 ExactOptions{})
        ->Arg(64)->Arg(256)->Unit(benchmark::kMillisecond);
    for (size_t budget : {size_t{1} << 12, kDefaultExactBudget, size_t{1} << 16}) {
      benchmark::RegisterBenchmark(("exact" + bw + "/budget=" + std::to_string(budget)).c_str(),
                                   BM_Exact, varying, ExactOptions{.max_candidates = budget})
          ->Arg(64)->Arg(256)->Arg(1024)->Unit(benchmark::kMillisecond);
    }
  }
}

const int registered = (Register(), 0);

}  // namespace
}  // namespace sparkv
