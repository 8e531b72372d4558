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

// The name of every codec in this build, in ascending id order (AllCodecs()).
std::vector<std::string> AllCodecNames();

struct ProfileOptions {
  int32_t chunk_tokens = 256;
  int32_t max_position = 0;  // profile positions up to this; 0 = the engine's KV capacity
  std::vector<std::string> codecs = AllCodecNames();  // codecs whose decode cost to measure, each once
};

// Measures on `engine` (its KV cache is cleared before and after). `fit` receives the fit error.
Result<Profile> MeasureProfile(const Model& model, Engine& engine, const ProfileOptions& options, FitReport* fit);

// Measures the decode cost of each codec in `codecs` on KV the engine computes for one chunk of
// min(chunk_tokens, KV capacity) tokens. Each codec encodes that KV as a full and as a half chunk.
// The median times to verify and decode the two blobs into the cache give seconds_per_chunk and
// seconds_per_byte. The engine's KV cache is cleared before and after.
Result<std::vector<DecodeCost>> MeasureDecodeCosts(const Model& model, Engine& engine, int32_t chunk_tokens,
                                                   const std::vector<std::string>& codecs);

// Measures and appends the decode cost of every codec in `codecs` that `profile` lacks (profiles
// saved by older builds know only f16 and q8). Returns the number of codecs added.
Result<int> AddMissingDecodeCosts(Profile& profile, const Model& model, Engine& engine, int32_t chunk_tokens,
                                  const std::vector<std::string>& codecs);

// "<folder>/<fingerprint>-t<threads>-<cpu>.json"; the CPU name is reduced to [a-z0-9-].
std::string ProfilePath(const std::string& folder, const Model& model, int n_threads);

// The CPU model name from /proc/cpuinfo, or "unknown-cpu".
std::string CpuName();

// Loads the saved profile for this model, thread count and CPU from `folder`, or measures and
// saves one when there is none (or it does not match). A saved profile that lacks some of
// options.codecs keeps its compute fit and decode costs. Only the missing decode costs are
// measured, and the completed profile is saved again. `reused`, if given, is set to whether a saved
// profile was used.
Result<Profile> LoadOrMeasureProfile(const std::string& folder, const Model& model, Engine& engine,
                                     const ProfileOptions& options, bool* reused = nullptr);

}  // namespace sparkv
