// The discrete-event simulator: runs a strategy on a scenario (cost model, blob sizes, the
// bandwidth the link really delivers, a device slowdown) in milliseconds of CPU time. Its events
// drive the same LoadController that the real loader drives, so the decisions simulated are the
// decisions made at run time; only the clock and the two paths' work are modelled.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "plan/cost_model.h"
#include "net/link.h"
#include "plan/plan.h"
#include "runtime/controller.h"
#include "runtime/strategy.h"
#include "sparkv/status.h"
#include "store/manifest.h"

namespace sparkv {

struct SimScenario {
  // A fresh plan input: chunks and levels, the compute cost as profiled, the bandwidth the
  // planner starts from (a probe's estimate), request overhead and query time.
  PlanInput input;
  BandwidthModel actual;          // what the link delivers, from the request's start
  double device_slowdown = 1.0;   // real compute and decode take this times the profiled time
  // A transfer that receives no byte for this long fails, as `sparkv run --timeout` does. The
  // check runs at each progress report, so it fires up to progress_interval_s late.
  double timeout_s = 60.0;
  double progress_interval_s = 0.02;  // how often a transfer reports its progress
};

// The outcome of one chunk, with times in seconds since the load started.
struct SimChunk {
  bool streamed = false;     // resident through the stream path
  bool fell_back = false;    // a transfer of it failed (timeout, outage) and it was computed
  bool cancelled = false;    // a transfer of it was cancelled for the compute path
  bool prefill_abandoned = false;  // a prefill of it stopped between pieces for the stream path
  std::string codec;         // streamed chunks
  double transfer_start_s = -1.0;  // the last transfer of it, if any
  double transfer_end_s = -1.0;
  double decode_start_s = -1.0;
  double decode_end_s = -1.0;
  double compute_start_s = -1.0;
  double compute_end_s = -1.0;
  double resident_s = 0.0;
};

struct SimResult {
  std::string strategy;
  Plan initial_plan;               // what the strategy planned at the start
  std::vector<SimChunk> chunks;    // [n_chunks]
  double all_resident_s = 0.0;
  double ttft_s = 0.0;             // all_resident_s + the query's time at the device's real speed
  uint64_t received_bytes = 0;     // every byte that crossed the link, cancelled transfers too
  double network_busy_s = 0.0;     // time with a transfer in flight (the radio is active)
  double cpu_busy_s = 0.0;         // prefill and decode on the device's CPU
  int32_t n_streamed = 0;
  int32_t n_computed = 0;
  ControllerStats stats;
};

// Runs `strategy` on `scenario`. Fails on an invalid scenario, or if the simulation stalls (a
// bug: the controller left both paths waiting with nothing in flight).
Result<SimResult> SimulateLoad(const Strategy& strategy, const SimScenario& scenario);

// The exact plan computed with hindsight: the realized bandwidth and the device's real speed
// known in advance. Its predicted TTFT is the bound the adaptive strategy is measured against.
Result<Plan> HindsightOptimum(const SimScenario& scenario);

// The bandwidth `link` delivers over time, in 1 ms steps for a mahimahi trace (looping, as the
// trace does), starting `offset_s` into it. The server's pacer follows the same link, so a
// simulated transfer and a paced real one see the same capacity.
Result<BandwidthModel> LinkBandwidth(const Link& link, double offset_s);

// A fresh plan input for a stored context: one chunk per manifest chunk, offering the manifest's
// blobs at the codecs in `levels` (in that order; missing ones skipped), decode times and
// compute cost from `profile`, and the query's prefill plus one decode step for `n_query` tokens.
// `quality_rank` maps a codec name to its rank (0 = lossless).
PlanInput MakePlanInput(const Profile& profile, const Manifest& manifest, const std::vector<std::string>& levels,
                        int32_t n_query, int (*quality_rank)(const std::string& codec));

}  // namespace sparkv
