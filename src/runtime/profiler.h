// Device profiles: the measured cost of local prefill by position and chunk size, and of blob
// decode per codec, fitted to the cost model the planner uses. Profiling takes a few chunks'
// worth of prefill, so a profile is saved per model fingerprint, thread count and CPU, and reused.
#pragma once

#include <string>
#include <vector>

#include "engine/engine.h"
#include "model/model.h"
#include "plan/cost_model.h"
#include "sparkv/status.h"

namespace sparkv {

struct ProfileOptions {
  int32_t chunk_tokens = 256;
  int32_t max_position = 0;  // profile positions up to this; 0 = the engine's KV capacity
  std::vector<std::string> codecs = {"f16", "q8"};
};

// Measures on `engine` (its KV cache is cleared before and after). `fit` receives the fit error.
Result<Profile> MeasureProfile(const Model& model, Engine& engine, const ProfileOptions& options, FitReport* fit);

// "<folder>/<fingerprint>-t<threads>-<cpu>.json"; the CPU name is reduced to [a-z0-9-].
std::string ProfilePath(const std::string& folder, const Model& model, int n_threads);

// The CPU model name from /proc/cpuinfo, or "unknown-cpu".
std::string CpuName();

// Loads the saved profile for this model, thread count and CPU from `folder`, or measures and
// saves one when there is none (or it does not match).
Result<Profile> LoadOrMeasureProfile(const std::string& folder, const Model& model, Engine& engine,
                                     const ProfileOptions& options);

}  // namespace sparkv
