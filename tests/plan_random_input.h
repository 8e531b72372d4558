// Random planning inputs for the plan_* tests: chunk sizes, levels, costs and bandwidths drawn
// so that both paths matter (a chunk's f16 transfer takes 0.2x to 3x its compute time).
#pragma once

#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "plan/plan.h"

namespace sparkv::testing {

struct RandomInputOptions {
  int n_chunks = 8;
  int n_levels = 3;             // at most 4: f16, q8, q4, q4z
  bool allow_varying_bandwidth = true;
};

inline PlanInput RandomPlanInput(std::mt19937_64& rng, const RandomInputOptions& options) {
  std::uniform_real_distribution<double> u01(0.0, 1.0);
  auto uniform = [&](double lo, double hi) { return lo + (hi - lo) * u01(rng); };

  PlanInput in;
  in.compute = {uniform(2e-4, 1e-3), uniform(0.0, 2e-7), uniform(0.0, 0.01)};
  in.request_overhead_s = u01(rng) < 0.5 ? 0.0 : uniform(0.0, 0.02);
  in.decode_on_spare_core = u01(rng) < 0.3;
  in.query_seconds = uniform(0.0, 0.05);

  // Codecs by quality; bytes per token and decode cost per byte are nominal, then each chunk
  // gets its own compressibility.
  struct Codec {
    const char* name;
    double bytes_per_token;
    double decode_s_per_byte;
  };
  const Codec codecs[] = {{"f16", 20000, 2e-10}, {"q8", 10000, 1e-9},
                          {"q4", 5000, 2e-9},    {"q4z", 3000, 2e-8}};
  int32_t begin = 0;
  for (int j = 0; j < options.n_chunks; ++j) {
    ChunkSpec c;
    c.index = j;
    c.begin = begin;
    c.end = begin + static_cast<int32_t>(uniform(32, 512));
    begin = c.end;
    const double compressibility = uniform(0.5, 1.5);
    for (int l = 0; l < options.n_levels; ++l) {
      const Codec& k = codecs[l];
      const auto bytes =
          static_cast<uint64_t>(k.bytes_per_token * (c.end - c.begin) * (l == 0 ? 1.0 : compressibility));
      c.levels.push_back({k.name, bytes, k.decode_s_per_byte * static_cast<double>(bytes), l});
    }
    in.chunks.push_back(std::move(c));
  }

  // Bandwidth such that a 256-token f16 chunk takes 0.2x to 3x its compute time.
  const double t_c = in.compute.ChunkSeconds(0, 256);
  auto rate = [&] { return 20000.0 * 256 / (t_c * uniform(0.2, 3.0)); };
  const double kind = options.allow_varying_bandwidth ? u01(rng) : 0.0;
  if (kind < 0.4) {
    in.bandwidth = BandwidthModel::Constant(rate());
  } else if (kind < 0.8) {
    std::vector<BandwidthStep> steps{{0.0, rate()}};
    const int n_steps = static_cast<int>(uniform(1, 4));
    for (int s = 0; s < n_steps; ++s) {
      // Outages included: a zero-rate step, never the last one.
      const double r = (s + 1 < n_steps && u01(rng) < 0.2) ? 0.0 : rate();
      steps.push_back({steps.back().start_s + uniform(0.05, 0.5), r});
    }
    in.bandwidth = BandwidthModel::Steps(steps).value();
  } else {
    std::vector<double> rates;
    for (int s = 0; s < 4; ++s) rates.push_back(u01(rng) < 0.2 ? 0.0 : rate());
    rates[0] = rate();
    in.bandwidth = BandwidthModel::Trace(rates, uniform(0.05, 0.3), true).value();
  }

  // A quality floor now and then.
  if (u01(rng) < 0.3) in.max_quality_rank = static_cast<int>(uniform(0, options.n_levels));
  return in;
}

}  // namespace sparkv::testing
