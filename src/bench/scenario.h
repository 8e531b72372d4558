// A benchmark scenario for `sparkv bench` (DESIGN.md 7): the context, the device, the link and
// the strategies to run, read from a JSON file. Rate, trace offset, slowdown and context length
// may each be a list, so one scenario describes the cross product of those values (a sweep).
// ExpandScenario lists its points. The JSON layout is in docs/benchmarks.md.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "plan/cost_model.h"
#include "runtime/simulator.h"
#include "sparkv/status.h"
#include "store/manifest.h"

namespace sparkv {

struct BandwidthSpec {
  enum class Kind : uint8_t { kConstant = 0, kSteps = 1, kTrace = 2 };
  Kind kind = Kind::kConstant;
  std::vector<double> rates_mbit;        // kConstant: [n_rates], swept
  // kConstant: one more point per context length and slowdown, at the rate where `local` and
  // `stream` reach the same simulated TTFT (found by CrossoverRate).
  bool crossover = false;
  std::vector<BandwidthStep> steps;      // kSteps: [n_steps], rates in bytes/s
  std::string trace_path;                // kTrace: mahimahi trace, absolute
  std::vector<double> trace_offsets_s;   // kTrace: [n_offsets], swept
};

// Mode of `sparkv bench`: the discrete-event simulator, real runs (engine compute and paced HTTP
// transfers on loopback), or both, with the ratio of the two TTFTs.
enum class BenchMode : uint8_t { kSimulated = 0, kReal = 1, kBoth = 2 };

// Inputs of a real run (modes real and both): the model, the context and how to ingest it, and
// the device's threads and background load.
struct RealSpec {
  std::string model_path;      // GGUF, or a llama2.c checkpoint (*.bin) converted at the start
  std::string tokens_path;     // context and query token ids, BOS first. Empty: sample_tokens
  int32_t sample_tokens = 0;   // without tokens_path: BOS and tokens sampled at temperature 1
  uint64_t seed = 0;           // of the sampled tokens
  int32_t chunk_tokens = 0;
  std::vector<std::string> codecs;  // levels to ingest. Empty: the scenario's levels
  std::string store_path;      // a store that already contains the context. Empty: a temporary one
  int threads = 1;             // compute threads of the engine (0 = every core)
  int background_threads = 0;  // busy threads spinning during the timed runs
  double background_duty = 1.0;  // share of each 10 ms period those threads spin, (0, 1]
  // The engine waits to run `slowdown` times slower than the device during the timed runs
  // (Engine::set_emulated_slowdown), so slowdown may be a list of factors >= 1.
  bool emulate_slowdown = false;
};

struct Scenario {
  std::string name;             // names the output files; [A-Za-z0-9_.-]
  BenchMode mode = BenchMode::kSimulated;
  RealSpec real;                // modes real and both only
  std::string profile_path;     // absolute (relative paths resolve against the scenario's folder).
                                // Empty in modes real and both: measured at the start
  std::string manifest_path;    // empty for a synthetic context
  // Synthetic context (when manifest_path is empty): chunks of chunk_tokens tokens whose blob
  // at each level contains bytes_per_token bytes per token.
  int32_t chunk_tokens = 0;
  std::map<std::string, double> bytes_per_token;  // codec level -> bytes per token
  // Context length in chunks, swept; empty means the whole manifest. With a manifest, a value
  // keeps its first n chunks.
  std::vector<int32_t> n_chunks;
  std::vector<std::string> levels;  // codec levels the plan may stream, in order
  int quality_floor = -1;           // highest quality rank allowed; -1 = no floor
  BandwidthSpec bandwidth;
  double initial_rate_mbit = 0.0;   // first bandwidth estimate given to the planner; 0 = the link's first 0.5 s
  double rtt_ms = 0.0;              // request overhead before each transfer's first byte
  std::vector<double> slowdowns{1.0};  // [n_slowdowns], swept
  std::vector<std::string> strategies;
  int32_t repetitions = 1;
  int32_t query_tokens = 16;
  double timeout_s = 60.0;
  double race_ratio = 0.0;          // race ratio of re-planning strategies; 0 = each strategy's own
  std::string energy_profile;       // a name in the power profiles file
  std::string power_profiles_path;  // empty: the checked-in data/power_profiles.json
};

// One combination of the swept values.
struct ScenarioPoint {
  double rate_mbit = 0.0;       // kConstant only
  double trace_offset_s = 0.0;  // kTrace only
  double slowdown = 1.0;
  int32_t n_chunks = 0;         // 0 = the whole manifest
  bool at_crossover = false;    // rate_mbit is the crossover rate, 0 until CrossoverRate sets it

  // Short human-readable description, e.g. "5 Mbit/s, x1.5, 8 chunks".
  std::string Label(const Scenario& scenario) const;
  // The same without the rate: points that differ only in rate share it (one TTFT curve each).
  std::string LabelWithoutRate(const Scenario& scenario) const;
};

// Parses scenario JSON. `folder` is the scenario file's folder, against which relative paths
// resolve. InvalidArgument names the field that is wrong and what it should hold.
Result<Scenario> ParseScenario(std::string_view json, const std::string& folder);
Result<Scenario> LoadScenario(const std::string& path);

// Lists the cross product of the swept values, rates (or offsets) varying fastest. A scenario that
// ParseScenario accepted has at most 100000 points. NOTE: a larger one built by hand yields
// 100001 default points instead of the product, so that the caller can reject it cheaply.
std::vector<ScenarioPoint> ExpandScenario(const Scenario& scenario);

// Data shared by every point of a scenario, loaded once: the profile and the context's chunks.
struct BenchContext {
  Profile profile;
  Manifest manifest;  // from the file, or synthetic with as many chunks as the largest point needs
};
Result<BenchContext> LoadBenchContext(const Scenario& scenario);

// The simulator's input for one point: the context cut to the point's length, the link it
// delivers, the first bandwidth estimate, RTT, slowdown and timeout.
Result<SimScenario> MakeSimScenario(const Scenario& scenario, const BenchContext& context,
                                    const ScenarioPoint& point);

// The constant rate in Mbit/s at which the simulated `stream` strategy reaches the TTFT of `local`
// at `point` (its own rate ignored): where a device gains the most from running both paths.
// Stream TTFT falls as the rate grows, so a bisection on the logarithm of the rate finds it.
// InvalidArgument if the two do not cross between 1e-3 and 1e5 Mbit/s: stream never catches up
// (no level allowed, every request slower than the whole prefill) or is faster throughout.
Result<double> CrossoverRate(const Scenario& scenario, const BenchContext& context, const ScenarioPoint& point);

// The bandwidth the link delivers at one point, for the pictures.
Result<BandwidthModel> PointBandwidth(const Scenario& scenario, const ScenarioPoint& point);

}  // namespace sparkv
