// `sparkv simulate`: strategies on a scenario through the discrete-event simulator, beside the
// hindsight optimum for the bandwidth the link really delivered.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <memory>

#include "cli/cli_util.h"
#include "cli/commands.h"
#include "common/format.h"
#include "common/file_util.h"
#include "kv/codec.h"
#include "net/link.h"
#include "runtime/profiler.h"
#include "runtime/session.h"
#include "runtime/simulator.h"
#include "runtime/strategy.h"

namespace sparkv::cli {
namespace {

struct Flags {
  std::string profile;
  std::string manifest;
  double rate_mbit = 0.0;
  std::string trace;
  double trace_offset_s = 0.0;
  std::string steps;
  std::string strategies = "local,stream,cachegen,split,cake,greedy,sparkv,sparkv-adaptive";
  std::string levels = "f16";  // the same default as `sparkv run`
  int quality_floor = -1;
  double slowdown = 1.0;
  double initial_rate_mbit = 0.0;
  double overhead_ms = 0.0;
  int32_t query_tokens = 16;
  double timeout_s = 60.0;
  double race_ratio = 0.0;  // 0 = each strategy's own
  bool json = false;
};

// "T:MBIT,T:MBIT,...": from T seconds on the link carries MBIT megabits per second.
Result<BandwidthModel> ParseSteps(const std::string& text) {
  std::vector<BandwidthStep> steps;
  SPARKV_ASSIGN_OR_RETURN(const std::vector<std::string> items, SplitList(text, "--steps"));
  for (const std::string& item : items) {
    const size_t colon = item.find(':');
    char* start_end = nullptr;
    char* mbit_end = nullptr;
    const double start = colon == std::string::npos ? NAN : std::strtod(item.c_str(), &start_end);
    const double mbit = colon == std::string::npos ? NAN : std::strtod(item.c_str() + colon + 1, &mbit_end);
    const bool whole = start_end == item.c_str() + colon && mbit_end != nullptr && *mbit_end == '\0' &&
                       mbit_end != item.c_str() + colon + 1;
    if (!whole || !std::isfinite(start) || !std::isfinite(mbit)) {
      return InvalidArgumentError("--steps item '" + item + "' is not SECONDS:MBIT, e.g. --steps 0:20,4:2");
    }
    if (mbit < 0 || mbit > 1e6 || (mbit > 0 && mbit < 1e-3)) {
      return InvalidArgumentError("--steps item '" + item + "': the rate " + FormatNumber(mbit) +
                                  " Mbit/s is outside [0.001, 1e6]; give a rate such as 20, or 0 for an outage");
    }
    if (steps.empty() && start != 0.0) {
      return InvalidArgumentError("--steps: the first pair '" + item + "' starts at " + FormatNumber(start) +
                                  " s, but the link needs a rate from 0 s on; begin with 0:MBIT, e.g. --steps 0:20,4:2");
    }
    if (!steps.empty() && !(start > steps.back().start_s)) {
      const std::string& previous = items[steps.size() - 1];
      return InvalidArgumentError("--steps: times must increase; got " + FormatNumber(start) + " after " +
                                  FormatNumber(steps.back().start_s) + " ('" + item + "' after '" + previous +
                                  "'); give SECONDS:MBIT pairs in time order, e.g. --steps 0:20,4:2");
    }
    steps.push_back({start, mbit * 1e6 / 8.0});
  }
  if (steps.empty()) return InvalidArgumentError("--steps is empty; give e.g. --steps 0:20,4:2");
  return BandwidthModel::Steps(std::move(steps));
}

Result<BandwidthModel> RealizedBandwidth(const Flags& f, std::string* label) {
  const int given = (f.rate_mbit > 0) + !f.trace.empty() + !f.steps.empty();
  if (given != 1) {
    return InvalidArgumentError("give exactly one of --rate MBIT, --trace FILE or --steps T:MBIT,...");
  }
  if (f.trace.empty() && f.trace_offset_s > 0) {
    return InvalidArgumentError("--trace-offset " + FormatNumber(f.trace_offset_s) +
                                " applies to --trace only; drop it, or give the link as --trace FILE");
  }
  if (f.rate_mbit > 0) {
    *label = FormatNumber(f.rate_mbit) + " Mbit/s";
    return BandwidthModel::Constant(f.rate_mbit * 1e6 / 8.0);
  }
  if (!f.steps.empty()) {
    *label = "steps " + f.steps;
    Result<BandwidthModel> steps = ParseSteps(f.steps);
    // ParseSteps names the flag itself; the bandwidth model's own checks do not.
    if (!steps.ok() && !steps.status().message().starts_with("--steps")) {
      return steps.status().WithContext("--steps " + f.steps);
    }
    return steps;
  }
  SPARKV_ASSIGN_OR_RETURN(Link link, Link::LoadMahimahi(f.trace));
  *label = f.trace + " from " + FormatNumber(f.trace_offset_s) + " s";
  return LinkBandwidth(link, f.trace_offset_s);
}

// Chunks that ended on another path than the first plan gave them: moved by a re-plan or taken
// by the compute path, cancelled in flight, or computed after a failed transfer. Each chunk counts
// once, so this is at most the chunk count. The controller's stats.n_moved counts every path
// change of a pending chunk instead, and one chunk can change more than once.
int32_t ChunksOffPlan(const SimResult& r) {
  int32_t n = 0;
  for (size_t j = 0; j < r.chunks.size() && j < r.initial_plan.decisions.size(); ++j) {
    const bool planned_stream = r.initial_plan.decisions[j].path == Decision::Path::kStream;
    n += planned_stream != r.chunks[j].streamed;
  }
  return n;
}

// The manifest's levels, comma-separated, when no chunk offers any of `levels`; empty otherwise.
std::string LevelsNotInManifest(const Manifest& manifest, const std::vector<std::string>& levels) {
  std::vector<std::string> stored;
  for (const ManifestChunk& chunk : manifest.chunks) {
    for (const auto& [codec, unused] : chunk.levels) {
      if (std::find(levels.begin(), levels.end(), codec) != levels.end()) return "";
      if (std::find(stored.begin(), stored.end(), codec) == stored.end()) stored.push_back(codec);
    }
  }
  std::string text;
  for (const std::string& codec : stored) text += (text.empty() ? "" : ",") + codec;
  return text;
}

// An error for the first of `levels` that some chunk of the manifest offers but the profile has no
// decode cost for. The planner would count its decode as free and favour it, most of all the slow
// entropy-coded levels.
Status CheckDecodeCosts(const Profile& profile, const Manifest& manifest, const std::vector<std::string>& levels,
                        const std::string& profile_path) {
  for (const std::string& level : levels) {
    if (profile.FindDecode(level) != nullptr) continue;
    const bool offered = std::any_of(manifest.chunks.begin(), manifest.chunks.end(),
                                     [&level](const ManifestChunk& chunk) { return chunk.levels.contains(level); });
    if (!offered) continue;
    std::string listed;
    for (const DecodeCost& decode : profile.decode) listed += (listed.empty() ? "" : ", ") + decode.codec;
    return InvalidArgumentError("--levels " + level + ": the profile " + profile_path +
                                " has no decode cost for it (its field \"decode\" " +
                                (listed.empty() ? std::string("is empty") : "lists " + listed) +
                                "); measure the device again with `sparkv profile --model M.gguf -o " + profile_path +
                                "`, or drop " + level + " from --levels");
  }
  return Status::Ok();
}

int RunSimulate(const Flags& f) {
  Result<Profile> profile = LoadProfile(f.profile, AllCodecNames());
  // LoadProfile's message starts with the file's path.
  if (!profile.ok()) return ReportError(profile.status().WithContext("--profile"));
  Result<std::string> manifest_text = ReadFileToString(f.manifest);
  if (!manifest_text.ok()) return ReportError(manifest_text.status());
  Result<Manifest> manifest = ParseManifest(*manifest_text);
  if (!manifest.ok()) return ReportError(manifest.status().WithContext("--manifest " + f.manifest));
  if (!profile->model_fingerprint_hex.empty() && profile->model_fingerprint_hex != manifest->model_fingerprint.Hex()) {
    std::fprintf(stderr, "sparkv: warning: the profile is for model %s, the manifest for %s\n",
                 profile->model_fingerprint_hex.c_str(), manifest->model_fingerprint.Hex().c_str());
  }
  const std::pair<const char*, double> numeric[] = {
      {"--rate", f.rate_mbit},         {"--initial-rate", f.initial_rate_mbit}, {"--slowdown", f.slowdown},
      {"--overhead-ms", f.overhead_ms}, {"--timeout", f.timeout_s},             {"--trace-offset", f.trace_offset_s}};
  for (const auto& [flag, value] : numeric) {
    if (!std::isfinite(value)) {
      return ReportError(InvalidArgumentError(std::string(flag) + " " + std::to_string(value) +
                                              " is not a finite number; give a number"));
    }
  }
  std::string link_label;
  Result<BandwidthModel> actual = RealizedBandwidth(f, &link_label);
  if (!actual.ok()) return ReportError(actual.status());

  Result<std::vector<std::string>> split_levels = SplitList(f.levels, "--levels");
  if (!split_levels.ok()) return ReportError(split_levels.status());
  const std::vector<std::string>& levels = *split_levels;
  if (levels.empty()) {
    return ReportError(InvalidArgumentError("--levels '" + f.levels +
                                            "' names no codec; pass --levels f16 (lossless) or e.g. f16,q8"));
  }
  for (size_t i = 0; i < levels.size(); ++i) {
    const std::string& level = levels[i];
    if (std::find(levels.begin(), levels.begin() + static_cast<std::ptrdiff_t>(i), level) !=
        levels.begin() + static_cast<std::ptrdiff_t>(i)) {
      return ReportError(InvalidArgumentError("--levels lists '" + level + "' twice; list each level once"));
    }
    if (FindCodec(level) == nullptr) {
      return ReportError(InvalidArgumentError("--levels: unknown codec level '" + level +
                                              "'; see `sparkv ingest --help` for the names"));
    }
  }
  if (Status decode = CheckDecodeCosts(*profile, *manifest, levels, f.profile); !decode.ok()) {
    return ReportError(decode);
  }
  if (std::string stored = LevelsNotInManifest(*manifest, levels); !stored.empty()) {
    std::fprintf(stderr,
                 "sparkv: warning: the manifest has levels %s, none of --levels %s; every strategy computes every "
                 "chunk (pass --levels with one of the manifest's levels)\n",
                 stored.c_str(), f.levels.c_str());
  }
  Result<std::vector<std::string>> names = SplitList(f.strategies, "--strategies");
  if (!names.ok()) return ReportError(names.status());
  std::vector<Strategy> strategies;
  for (const std::string& name : *names) {
    Result<Strategy> strategy = FindStrategy(name);
    if (!strategy.ok()) return ReportError(strategy.status().WithContext("--strategies"));
    for (const Strategy& earlier : strategies) {
      if (earlier.name == strategy->name) {
        return ReportError(InvalidArgumentError("--strategies lists '" + name + "', which is '" + earlier.name +
                                                "' again (hybrid is sparkv-adaptive); list each strategy once"));
      }
    }
    strategies.push_back(WithRaceRatio(*strategy, f.race_ratio));
  }
  WarnUnusedRaceRatio(f.race_ratio, *names);
  if (strategies.empty()) {
    return ReportError(InvalidArgumentError("--strategies is empty; give e.g. --strategies local,stream,sparkv-adaptive"));
  }

  SimScenario scenario;
  scenario.input = MakePlanInput(*profile, *manifest, levels, f.query_tokens, [](const std::string& codec) {
    return CodecQualityRank(codec);
  });
  if (f.quality_floor >= 0) {
    scenario.input.max_quality_rank = f.quality_floor;
    const bool any_allowed = std::any_of(levels.begin(), levels.end(), [&f](const std::string& level) {
      return FindCodec(level)->quality_rank() <= f.quality_floor;
    });
    if (!any_allowed) {
      std::fprintf(stderr,
                   "sparkv: warning: --quality-floor %d excludes every level of --levels %s; every strategy computes "
                   "every chunk (raise the floor or add a level such as f16, rank 0)\n",
                   f.quality_floor, f.levels.c_str());
    }
  }
  scenario.input.request_overhead_s = f.overhead_ms / 1000.0;
  // What a short probe at the start would measure, unless --initial-rate is given.
  constexpr double kProbeWindowS = 0.5;
  const double initial = f.initial_rate_mbit > 0 ? f.initial_rate_mbit * 1e6 / 8.0
                                                 : actual->BytesBetween(0.0, kProbeWindowS) / kProbeWindowS;
  scenario.input.bandwidth = BandwidthModel::Constant(std::max(initial, 1.0));
  scenario.actual = *actual;
  scenario.device_slowdown = f.slowdown;
  scenario.timeout_s = f.timeout_s;

  Result<Plan> hindsight = HindsightOptimum(scenario);
  if (!hindsight.ok()) return ReportError(hindsight.status());
  std::vector<SimResult> results;
  for (const Strategy& strategy : strategies) {
    Result<SimResult> result = SimulateLoad(strategy, scenario);
    if (!result.ok()) return ReportError(result.status().WithContext("strategy " + strategy.name));
    results.push_back(std::move(result).value());
  }
  double best_single = HUGE_VAL;
  for (const SimResult& r : results) {
    if (r.strategy == "local" || r.strategy == "stream") best_single = std::min(best_single, r.ttft_s);
  }
  const double optimum = hindsight->predicted.ttft_s;

  if (f.json) {
    nlohmann::json out;
    out["link"] = link_label;
    out["initial_bandwidth_mbit"] = initial * 8 / 1e6;
    out["device_slowdown"] = f.slowdown;
    out["n_chunks"] = scenario.input.chunks.size();
    out["hindsight_ttft_s"] = optimum;
    out["strategies"] = nlohmann::json::array();
    for (const SimResult& r : results) {
      nlohmann::json chunks = nlohmann::json::array();
      for (const SimChunk& c : r.chunks) {
        const size_t j = chunks.size();
        const bool planned_stream =
            j < r.initial_plan.decisions.size() && r.initial_plan.decisions[j].path == Decision::Path::kStream;
        chunks.push_back({{"planned", planned_stream ? "stream" : "compute"},
                          {"streamed", c.streamed},
                          {"codec", c.streamed ? c.codec : ""},
                          {"fell_back", c.fell_back},
                          {"cancelled", c.cancelled},
                          {"prefill_stopped", c.prefill_abandoned},
                          {"resident_s", c.resident_s}});
      }
      out["strategies"].push_back({{"name", r.strategy},
                                   {"ttft_s", r.ttft_s},
                                   {"predicted_ttft_s", r.initial_plan.predicted.ttft_s},
                                   {"vs_hindsight", r.ttft_s / optimum},
                                   {"chunks_streamed", r.n_streamed},
                                   {"chunks_computed", r.n_computed},
                                   {"received_bytes", r.received_bytes},
                                   {"network_busy_s", r.network_busy_s},
                                   {"cpu_busy_s", r.cpu_busy_s},
                                   {"replans", r.stats.n_replans},
                                   {"path_changes", r.stats.n_moved},
                                   {"chunks_off_plan", ChunksOffPlan(r)},
                                   {"cancelled", r.stats.n_cancelled},
                                   {"prefills_stopped", r.stats.n_abandoned},
                                   {"races", r.stats.n_raced},
                                   {"fallback", r.stats.n_fallback},
                                   {"replan_times_s", r.stats.replan_times_s},
                                   {"chunks", chunks}});
    }
    std::printf("%s\n", DumpJson(out, 2).c_str());
    return 0;
  }

  std::printf("link %s; planner told %s Mbit/s at the start; device slowdown %sx; %s\n", link_label.c_str(),
              FormatNumber(initial * 8 / 1e6).c_str(), FormatNumber(f.slowdown).c_str(),
              FormatCount(static_cast<long long>(scenario.input.chunks.size()), "chunk", "chunks").c_str());
  std::printf("hindsight optimum (exact plan with the realized bandwidth): TTFT %.3f s\n\n", optimum);
  std::printf("%-16s %9s %9s %8s %8s %9s %9s %7s %7s %8s %7s %9s\n", "strategy", "TTFT s", "planned", "/optim",
              "/single", "streamed", "computed", "replan", "changes", "off plan", "cancel", "MiB recv");
  for (const SimResult& r : results) {
    // Without local and stream in the list there is no single path to compare with: 0 marks it.
    const double vs_single = std::isfinite(best_single) ? best_single / r.ttft_s : 0.0;
    std::printf("%-16s %9.3f %9.3f %8.3f %8.3f %9d %9d %7d %7d %8d %7d %9.2f\n", r.strategy.c_str(), r.ttft_s,
                r.initial_plan.predicted.ttft_s, r.ttft_s / optimum, vs_single, r.n_streamed, r.n_computed,
                r.stats.n_replans, r.stats.n_moved, ChunksOffPlan(r), r.stats.n_cancelled,
                r.received_bytes / 1048576.0);
  }
  std::printf("\n/optim: TTFT over the hindsight optimum (1 is optimal). /single: the better of local and stream\n"
              "over this TTFT (above 1 is faster than both single paths; 0 when neither ran).\n"
              "changes: path changes of chunks not yet started after the first plan; one chunk may change more\n"
              "than once. off plan: chunks that ended on another path than the first plan gave them, each\n"
              "counted once (moved, cancelled in flight, or computed after a failed transfer).\n");
  return 0;
}

}  // namespace

void AddSimulateCommand(CLI::App& app, int* exit_code) {
  auto flags = std::make_shared<Flags>();
  CLI::App* command = app.add_subcommand(
      "simulate", "Run strategies on a profile, a manifest and a bandwidth (constant, steps or a mahimahi trace) "
                  "in the discrete-event simulator");
  command->add_option("--profile", flags->profile, "Device profile JSON from `sparkv profile`")
      ->required()
      ->check(CLI::ExistingFile);
  command->add_option("--manifest", flags->manifest, "Context manifest JSON (the store's v1/contexts/KEY/manifest.json)")
      ->required()
      ->check(CLI::ExistingFile);
  // Below 1 kbit/s a blob takes days of simulated time, past the simulator's event budget.
  command->add_option("--rate", flags->rate_mbit, "Constant bandwidth in Mbit/s")->check(CLI::Range(1e-3, 1e6));
  command->add_option("--trace", flags->trace, "Mahimahi trace file the link follows")->check(CLI::ExistingFile);
  command->add_option("--trace-offset", flags->trace_offset_s, "Seconds into the trace where the request starts")
      ->check(CLI::Range(0.0, 1e7));
  command->add_option("--steps", flags->steps, "Piecewise-constant bandwidth, SECONDS:MBIT,..., e.g. 0:20,4:2");
  std::string names;
  for (const std::string& name : StrategyNames()) names += (names.empty() ? "" : ", ") + name;
  command->add_option("--strategies", flags->strategies, "Comma-separated strategies: " + names)->capture_default_str();
  command->add_option("--levels", flags->levels,
                      "Codec levels the plan may stream, comma-separated; f16 (lossless) as in `sparkv run`")
      ->capture_default_str();
  command->add_option("--quality-floor", flags->quality_floor,
                      "Highest quality rank allowed (0 = lossless only; default: no floor)")
      ->check(CLI::NonNegativeNumber);
  command->add_option("--slowdown", flags->slowdown, "Real device time over the profiled time (2 = twice as slow)")
      ->capture_default_str()
      ->check(CLI::Range(0.01, 100.0));
  command->add_option("--initial-rate", flags->initial_rate_mbit,
                      "Bandwidth the planner is told at the start, Mbit/s (default: the link's mean over 0.5 s)")
      ->check(CLI::Range(1e-6, 1e6));
  command->add_option("--overhead-ms", flags->overhead_ms, "Per-request latency before the first byte, ms")
      ->capture_default_str()
      ->check(CLI::Range(0.0, 60000.0));
  command->add_option("--query-tokens", flags->query_tokens, "Query length in tokens, for the TTFT")
      ->capture_default_str()
      ->check(CLI::Range(1, 1 << 20));
  command->add_option("--timeout", flags->timeout_s, "Seconds before a transfer counts as failed")
      ->capture_default_str()
      ->check(CLI::Range(0.001, 1e6));
  command->add_option("--race-ratio", flags->race_ratio,
                      "sparkv-adaptive races a chunk on the compute path when computing it takes at most this many "
                      "times as long as streaming it (default 3; 1 saves energy on a steady link)")
      ->check(CLI::Validator(CheckRaceRatio, "RATIO in [1, 100]"));
  command->add_flag("--json", flags->json, "Print JSON instead of a table");
  command->callback([flags, exit_code] { *exit_code = RunSimulate(*flags); });
}

}  // namespace sparkv::cli
