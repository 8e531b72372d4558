// Real mode of `sparkv bench` (DESIGN.md 7): every point of a scenario run with engine compute and
// HTTP transfers from a paced store server on loopback, each strategy `repetitions` times, with
// medians and spread. Mode "both" also simulates each point with the same profile and link and
// reports the ratio of the real TTFT to the simulated one.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "bench/scenario.h"
#include "engine/engine.h"
#include "net/link.h"
#include "plan/cost_model.h"
#include "sparkv/status.h"

namespace sparkv {

// One strategy at one point, over the repetitions.
struct RealRow {
  size_t point = 0;
  std::string strategy;
  std::vector<double> ttft_s;       // [repetitions] the whole request, manifest fetch included
  double median_ttft_s = 0.0;
  double min_ttft_s = 0.0;
  double max_ttft_s = 0.0;
  // Median TTFT without the manifest fetch: the load, the query and the first token, which is
  // what the simulator models (it starts at the plan, with the manifest in hand). Strategies with
  // a head start compute during the fetch, so for them this is the whole TTFT.
  double median_load_ttft_s = 0.0;
  double median_received_bytes = 0.0;
  double median_streamed = 0.0;     // chunks resident through the stream path
  double median_computed = 0.0;
  int32_t n_fallback = 0;           // over all repetitions
  double median_device_factor = 1.0;  // measured over profiled compute time, as the loader saw it
  // The quality rule: a strategy's first token must equal local's. Lossy levels may break it.
  int32_t n_mismatches = 0;         // repetitions whose first token differed
  bool streamed_lossy = false;      // some repetition streamed a chunk at a lossy level
  // Mode both: the simulated TTFT of the same point, and median_load_ttft_s over it.
  double sim_ttft_s = 0.0;
  double real_over_sim = 0.0;
  // Mode both: median_load_ttft_s over the point's simulated hindsight optimum.
  double load_over_hindsight = 0.0;
  // Mode both: the same with the point's slowdown replaced by median_device_factor. What remains
  // of the difference is the model's, not the machine's changing speed.
  double sim_measured_speed_ttft_s = 0.0;
  double real_over_sim_measured_speed = 0.0;
};

struct RealBenchReport {
  std::vector<ScenarioPoint> points;
  std::vector<int32_t> n_context_tokens;  // [n_points]
  std::vector<TokenId> local_first_token; // [n_points] the reference for the quality rule
  std::vector<double> hindsight_ttft_s;   // [n_points] mode both: the simulated hindsight optimum
  std::vector<RealRow> rows;              // point-major, strategies in the scenario's order
  Profile profile;
  std::string profile_source;             // the scenario's file, or "measured"
  std::string store;                      // the store the server served
  int32_t n_mismatches = 0;               // over all rows
  int32_t n_lossless_mismatches = 0;      // mismatches in runs that streamed losslessly: a bug
};

// Relative difference past which mode both marks a real/simulated TTFT pair.
inline constexpr double kSimAgreementTolerance = 0.10;

struct RealBenchOptions {
  // Folder for the converted model and the temporary store. Default: empty, so a fresh
  // temporary folder is used and removed at the end.
  std::string work_dir;
  // Called after each run with a one-line description, e.g. for progress on stderr.
  void (*on_run)(const std::string& line) = nullptr;
};

// Runs a scenario whose mode is real or both. The model is loaded (a llama2.c checkpoint is
// converted first), the context ingested into a store (unless real.store names one), the
// profile loaded or measured, and a StoreServer started on 127.0.0.1 port 0. For every point,
// the local strategy runs once as the reference and warm-up. Then come the repetitions, each
// running every strategy, and the server's pacing restarts right before every run.
// Errors: InvalidArgument naming the scenario field for inputs that do not fit (context too
// short, a store without the context, ...); what the engine, ingest or server return.
Result<RealBenchReport> RunRealBench(const Scenario& scenario, const RealBenchOptions& options = {});

// Returns the link the server paces a point by, and sets the offset of its origin. A constant
// rate and a trace (at the point's offset) map directly. Steps become a trace of 1500-byte
// packets, which repeats after the last step's start plus the scenario's timeout.
Result<Link> PointLink(const Scenario& scenario, const ScenarioPoint& point, double* offset_s);

}  // namespace sparkv
