// `sparkv bench`: a scenario file's sweep (every point x strategy). Mode simulated runs it through
// the discrete-event simulator, with the hindsight optimum, a per-request energy model, and
// optional JSON, CSV and SVG pictures. Those numbers are the cost model's, not a measurement.
// Modes real and both measure it (bench/real.h): engine compute, a paced loopback server,
// medians over the repetitions, and in mode both the ratio to the simulated TTFT.
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <map>
#include <memory>

#include "bench/energy.h"
#include "bench/progress.h"
#include "bench/real.h"
#include "bench/scenario.h"
#include "bench/svg.h"
#include "cli/cli_util.h"
#include "cli/commands.h"
#include "common/file_util.h"
#include "common/format.h"
#include "common/log.h"
#include "runtime/simulator.h"
#include "runtime/strategy.h"

namespace sparkv::cli {
namespace {

struct Flags {
  std::string scenario;
  bool json = false;
  std::string csv;
  std::string svg_dir;
  std::string power_profiles;
};

// One strategy at one point; TTFT and energy are means over the repetitions.
struct Row {
  size_t point = 0;
  std::string strategy;
  double ttft_s = 0.0;
  double ttft_spread_s = 0.0;  // max - min over repetitions; 0 while the simulator is deterministic
  double vs_hindsight = 0.0;   // TTFT over the hindsight optimum's
  double vs_single = NAN;      // the better of local and stream over this TTFT; NaN when neither ran
  Energy energy;
  double energy_vs_local = NAN;  // this energy over local's; NaN when local did not run
  uint64_t received_bytes = 0;
  int32_t n_streamed = 0;
  int32_t n_computed = 0;
  int32_t n_replans = 0;
  int32_t n_races = 0;  // chunks run on both paths at once (first repetition)
  double race_ratio = 0.0;  // the strategy's race ratio; 0 for strategies that never race
};

// Timelines are written for at most this many points, so a large sweep does not flood the folder.
constexpr size_t kMaxTimelinePoints = 64;

nlohmann::json OrNull(double x) { return std::isfinite(x) ? nlohmann::json(x) : nlohmann::json(nullptr); }

std::string Ratio(double x) {
  if (!std::isfinite(x)) return "-";
  char text[32];
  std::snprintf(text, sizeof text, "%.3f", x);
  return text;
}

std::string CsvField(const std::string& text) {
  if (text.find_first_of(",\"\n") == std::string::npos) return text;
  std::string out = "\"";
  for (char ch : text) out += ch == '"' ? std::string("\"\"") : std::string(1, ch);
  return out + "\"";
}

Status WriteSvg(const std::string& dir, const std::string& name, const std::string& svg) {
  return WriteFileAtomic((std::filesystem::path(dir) / name).string(), svg);
}

// Returns the power profiles file: --power-profiles, else the scenario's, else the source tree's.
std::string PowerProfilesPath(const Flags& f, const Scenario& s) {
  if (!f.power_profiles.empty()) return f.power_profiles;
  return !s.power_profiles_path.empty() ? s.power_profiles_path : DefaultPowerProfilesPath();
}

const char* ModeName(BenchMode mode) {
  switch (mode) {
    case BenchMode::kSimulated:
      return "simulated";
    case BenchMode::kReal:
      return "real";
    case BenchMode::kBoth:
      return "both";
  }
  return "?";
}

bool OffBeyondTolerance(double real_over_sim) {
  return real_over_sim > 0 && std::fabs(real_over_sim - 1.0) > kSimAgreementTolerance;
}

void PrintRunLine(const std::string& line) { std::fprintf(stderr, "sparkv bench: %s\n", line.c_str()); }

int RunRealMode(const Flags& f, const Scenario& s) {
  if (!f.svg_dir.empty()) {
    return ReportError(InvalidArgumentError("--svg-dir draws simulated timelines only; remove it in mode " +
                                            std::string(ModeName(s.mode)) + ", or set the scenario's mode to simulated"));
  }
  // Real runs measure no energy. A profile name or file given anyway is still checked, so that a
  // typo does not wait for the day the scenario runs simulated.
  if (!s.energy_profile.empty() || !f.power_profiles.empty()) {
    const std::string power_path = PowerProfilesPath(f, s);
    Result<std::vector<PowerProfile>> powers = LoadPowerProfiles(power_path);
    if (!powers.ok()) return ReportError(powers.status());
    if (!s.energy_profile.empty()) {
      Result<PowerProfile> power = FindPowerProfile(*powers, s.energy_profile);
      if (!power.ok()) return ReportError(power.status().WithContext("scenario field 'energy_profile'"));
    }
    SPARKV_LOG_INFO("mode %s measures no energy; the energy model applies in mode simulated only",
                    ModeName(s.mode));
  }
  RealBenchOptions options;
  options.on_run = PrintRunLine;
  Result<RealBenchReport> result = RunRealBench(s, options);
  if (!result.ok()) return ReportError(result.status());
  const RealBenchReport& report = *result;
  const bool both = s.mode == BenchMode::kBoth;
  const std::vector<ScenarioPoint>& points = report.points;

  if (!f.csv.empty()) {
    std::string csv =
        "scenario,mode,point,rate_mbit,trace_offset_s,slowdown,n_chunks,n_context_tokens,strategy,ttft_median_s,"
        "ttft_min_s,ttft_max_s,load_ttft_median_s,sim_ttft_s,real_over_sim,sim_measured_speed_ttft_s,"
        "real_over_sim_measured_speed,hindsight_ttft_s,received_bytes,n_streamed,n_computed,fallbacks,"
        "device_factor,first_token_mismatches\n";
    for (const RealRow& r : report.rows) {
      const ScenarioPoint& pt = points[r.point];
      char line[1024];
      std::snprintf(line, sizeof line,
                    ",%s,%zu,%g,%g,%g,%d,%d,%s,%.6f,%.6f,%.6f,%.6f,%s,%s,%s,%s,%s,%.0f,%g,%g,%d,%.4f,%d\n",
                    ModeName(s.mode), r.point, pt.rate_mbit, pt.trace_offset_s, pt.slowdown, pt.n_chunks,
                    report.n_context_tokens[r.point], CsvField(r.strategy).c_str(), r.median_ttft_s, r.min_ttft_s,
                    r.max_ttft_s, r.median_load_ttft_s, both ? std::to_string(r.sim_ttft_s).c_str() : "",
                    both ? Ratio(r.real_over_sim).c_str() : "",
                    both ? std::to_string(r.sim_measured_speed_ttft_s).c_str() : "",
                    both ? Ratio(r.real_over_sim_measured_speed).c_str() : "",
                    both ? std::to_string(report.hindsight_ttft_s[r.point]).c_str() : "", r.median_received_bytes,
                    r.median_streamed,
                    r.median_computed, r.n_fallback, r.median_device_factor, r.n_mismatches);
      csv += CsvField(s.name) + line;
    }
    Status written = WriteFileAtomic(f.csv, csv);
    if (!written.ok()) return ReportError(written.WithContext("--csv"));
  }

  if (f.json) {
    nlohmann::json out;
    out["scenario"] = s.name;
    out["mode"] = ModeName(s.mode);
    out["repetitions"] = s.repetitions;
    out["profile"] = report.profile_source;
    out["background_threads"] = s.real.background_threads;
    out["background_duty"] = s.real.background_duty;
    out["first_token_mismatches"] = report.n_mismatches;
    out["points"] = nlohmann::json::array();
    for (size_t p = 0; p < points.size(); ++p) {
      nlohmann::json point = {{"label", points[p].Label(s)},
                              {"rate_mbit", points[p].rate_mbit},
                              {"at_crossover", points[p].at_crossover},
                              {"trace_offset_s", points[p].trace_offset_s},
                              {"slowdown", points[p].slowdown},
                              {"n_chunks", points[p].n_chunks},
                              {"n_context_tokens", report.n_context_tokens[p]},
                              {"local_first_token", report.local_first_token[p]},
                              {"strategies", nlohmann::json::array()}};
      if (both) point["hindsight_ttft_s"] = report.hindsight_ttft_s[p];
      for (const RealRow& r : report.rows) {
        if (r.point != p) continue;
        nlohmann::json row = {{"name", r.strategy},
                              {"ttft_s", r.median_ttft_s},
                              {"ttft_min_s", r.min_ttft_s},
                              {"ttft_max_s", r.max_ttft_s},
                              {"ttft_runs_s", r.ttft_s},
                              {"load_ttft_s", r.median_load_ttft_s},
                              {"received_bytes", r.median_received_bytes},
                              {"chunks_streamed", r.median_streamed},
                              {"chunks_computed", r.median_computed},
                              {"fallbacks", r.n_fallback},
                              {"device_factor", r.median_device_factor},
                              {"first_token_mismatches", r.n_mismatches},
                              {"streamed_lossy", r.streamed_lossy}};
        if (both) {
          row["sim_ttft_s"] = r.sim_ttft_s;
          row["load_over_hindsight"] = r.load_over_hindsight;
          row["real_over_sim"] = OrNull(r.real_over_sim);
          row["off_by_more_than_10_percent"] = OffBeyondTolerance(r.real_over_sim);
          row["sim_measured_speed_ttft_s"] = r.sim_measured_speed_ttft_s;
          row["real_over_sim_measured_speed"] = OrNull(r.real_over_sim_measured_speed);
        }
        point["strategies"].push_back(std::move(row));
      }
      out["points"].push_back(std::move(point));
    }
    std::printf("%s\n", DumpJson(out, 2).c_str());
  } else {
    size_t label_width = 5;
    for (const ScenarioPoint& pt : points) label_width = std::max(label_width, pt.Label(s).size());
    const std::string background =
        s.real.background_threads == 0
            ? std::string("no background load")
            : "background load " + FormatCount(s.real.background_threads, "thread", "threads") + " at " +
                  FormatNumber(100.0 * s.real.background_duty) + "%";
    std::printf("scenario %s, mode %s: %s x %s, %s; profile %s; %s\n\n", s.name.c_str(), ModeName(s.mode),
                FormatCount(static_cast<long long>(points.size()), "point", "points").c_str(),
                FormatCount(static_cast<long long>(s.strategies.size()), "strategy", "strategies").c_str(),
                FormatCount(s.repetitions, "repetition", "repetitions").c_str(), report.profile_source.c_str(),
                background.c_str());
    std::printf("%-*s %-16s %9s %9s %9s %9s", static_cast<int>(label_width), "point", "strategy", "TTFT s", "min",
                "max", "load s");
    if (both) std::printf(" %9s %9s %9s %7s", "sim s", "real/sim", "/measured", "/optim");
    std::printf(" %6s %6s %9s %9s %7s %s\n", "stream", "comp", "fallback", "MiB recv", "device", "1st token");
    size_t n_off = 0, n_off_measured = 0;
    double sum_abs_error = 0.0, sum_abs_error_measured = 0.0;
    for (const RealRow& r : report.rows) {
      std::printf("%-*s %-16s %9.4f %9.4f %9.4f %9.4f", static_cast<int>(label_width), points[r.point].Label(s).c_str(),
                  r.strategy.c_str(), r.median_ttft_s, r.min_ttft_s, r.max_ttft_s, r.median_load_ttft_s);
      if (both) {
        const bool off = OffBeyondTolerance(r.real_over_sim);
        n_off += off;
        sum_abs_error += std::fabs(r.real_over_sim - 1.0);
        const bool off_measured = OffBeyondTolerance(r.real_over_sim_measured_speed);
        n_off_measured += off_measured;
        sum_abs_error_measured += std::fabs(r.real_over_sim_measured_speed - 1.0);
        std::printf(" %9.4f %8s%s %8s%s %7.3f", r.sim_ttft_s, Ratio(r.real_over_sim).c_str(), off ? "*" : " ",
                    Ratio(r.real_over_sim_measured_speed).c_str(), off_measured ? "*" : " ", r.load_over_hindsight);
      }
      const std::string first = r.n_mismatches == 0 ? "same"
                                                     : "MISMATCH " + std::to_string(r.n_mismatches) + "/" +
                                                           std::to_string(s.repetitions);
      // Medians of counts: whole unless an even number of repetitions falls between two.
      std::printf(" %6g %6g %9d %9.3f %7.2f %s\n", r.median_streamed, r.median_computed, r.n_fallback,
                  r.median_received_bytes / 1048576.0, r.median_device_factor, first.c_str());
    }
    std::printf("\nTTFT: median over the repetitions, min and max beside it; the whole request, manifest fetch\n"
                "included. load s: the median without the manifest fetch, which is what the simulator models.\n"
                "fallback: chunks computed after their transfer or decode failed, summed over the repetitions.\n"
                "device: measured over profiled compute time (the slowdown that would simulate this run).\n"
                "1st token: the first generated token against local's (the quality rule).\n");
    if (both) {
      const double n_rows = std::max<double>(1.0, report.rows.size());
      std::printf("real/sim: load s over the simulated TTFT with the same profile, link and the scenario's slowdown.\n"
                  "/measured: the same, simulated at the device factor this row measured. * marks a ratio off by\n"
                  "more than %.0f%%: real/sim %zu of %zu (mean |ratio - 1| %.3f), /measured %zu of %zu (%.3f).\n"
                  "/optim: load s over the point's simulated hindsight optimum (the exact plan given the realized\n"
                  "link and slowdown in advance).\n",
                  100.0 * kSimAgreementTolerance, n_off, report.rows.size(), sum_abs_error / n_rows, n_off_measured,
                  report.rows.size(), sum_abs_error_measured / n_rows);
    }
  }
  if (report.n_lossless_mismatches > 0) {
    std::fprintf(stderr,
                 "sparkv bench: error: %d run(s) streamed only lossless levels yet generated a first token other "
                 "than local's; the stream path broke the quality rule (see the warnings above)\n",
                 report.n_lossless_mismatches);
    return 1;
  }
  if (report.n_mismatches > 0) {
    std::fprintf(stderr,
                 "sparkv bench: warning: %d run(s) generated a first token other than local's after streaming a "
                 "lossy level; restrict levels to f16 to keep the quality rule exact\n",
                 report.n_mismatches);
  }
  return 0;
}

int RunBench(const Flags& f) {
  Result<Scenario> scenario = LoadScenario(f.scenario);
  if (!scenario.ok()) return ReportError(scenario.status());
  // Checked before anything runs, since a real scenario can take most of an hour.
  if (!f.csv.empty()) {
    const std::filesystem::path parent = std::filesystem::path(f.csv).parent_path();
    const std::string folder = parent.empty() ? "." : parent.string();
    std::error_code error;
    if (!std::filesystem::is_directory(folder, error) || ::access(folder.c_str(), W_OK) != 0) {
      return ReportError(InvalidArgumentError("--csv " + f.csv + ": the folder " + folder +
                                              " does not exist or is not writable; create it or pass another path"));
    }
  }
  const Scenario& s = *scenario;
  if (s.mode != BenchMode::kSimulated) return RunRealMode(f, s);
  const std::string power_path = PowerProfilesPath(f, s);
  Result<std::vector<PowerProfile>> powers = LoadPowerProfiles(power_path);
  if (!powers.ok()) return ReportError(powers.status());
  Result<PowerProfile> power = FindPowerProfile(*powers, s.energy_profile);
  if (!power.ok()) return ReportError(power.status().WithContext("scenario field 'energy_profile'"));
  Result<BenchContext> context = LoadBenchContext(s);
  if (!context.ok()) return ReportError(context.status());
  std::vector<Strategy> strategies;
  for (const std::string& name : s.strategies) {
    Result<Strategy> strategy = FindStrategy(name);
    if (!strategy.ok()) return ReportError(strategy.status().WithContext("scenario field 'strategies'"));
    strategies.push_back(WithRaceRatio(*strategy, s.race_ratio));
  }
  if (!f.svg_dir.empty()) {
    std::error_code error;
    std::filesystem::create_directories(f.svg_dir, error);
    if (error) return ReportError(InvalidArgumentError("--svg-dir " + f.svg_dir + ": " + error.message()));
  }

  std::vector<ScenarioPoint> points = ExpandScenario(s);
  // Without n_chunks a point runs the manifest's every chunk; the reports give that count.
  for (ScenarioPoint& point : points) {
    if (point.n_chunks == 0) point.n_chunks = static_cast<int32_t>(context->manifest.chunks.size());
  }
  for (ScenarioPoint& point : points) {
    if (!point.at_crossover) continue;
    Result<double> rate = CrossoverRate(s, *context, point);
    if (!rate.ok()) return ReportError(rate.status());
    point.rate_mbit = *rate;
  }
  // One run per point for the hindsight optimum, which can cost as much as a strategy, and one per
  // strategy and repetition.
  const size_t n_runs = points.size() * (1 + strategies.size() * static_cast<size_t>(s.repetitions));
  size_t n_done = 0;
  ProgressLine progress(stderr, IsTerminal(stderr) && !f.json);
  // An error starts on a clean line, not after the progress text.
  const auto fail = [&progress](const Status& status) {
    progress.Finish();
    return ReportError(status);
  };
  std::vector<double> hindsight(points.size());
  std::vector<Row> rows;
  for (size_t p = 0; p < points.size(); ++p) {
    const std::string label = points[p].Label(s);
    Result<SimScenario> sim = MakeSimScenario(s, *context, points[p]);
    if (!sim.ok()) return fail(sim.status().WithContext(label));
    Result<Plan> optimum = HindsightOptimum(*sim);
    if (!optimum.ok()) return fail(optimum.status().WithContext(label));
    hindsight[p] = optimum->predicted.ttft_s;
    const std::string point_detail = "point " + std::to_string(p + 1) + "/" + std::to_string(points.size());
    progress.Update(++n_done, n_runs, point_detail);
    const size_t first_row = rows.size();
    for (const Strategy& strategy : strategies) {
      Row row;
      row.point = p;
      row.strategy = strategy.name;
      row.race_ratio = strategy.replan ? strategy.race_ratio : 0.0;
      double lo = HUGE_VAL, hi = -HUGE_VAL;
      for (int32_t rep = 0; rep < s.repetitions; ++rep) {
        Result<SimResult> result = SimulateLoad(strategy, *sim);
        if (!result.ok()) return fail(result.status().WithContext(label + ", strategy " + strategy.name));
        progress.Update(++n_done, n_runs, point_detail);
        const Energy e = RequestEnergy(*result, *power);
        const double n = s.repetitions;
        row.ttft_s += result->ttft_s / n;
        row.energy.cpu_busy_j += e.cpu_busy_j / n;
        row.energy.cpu_idle_j += e.cpu_idle_j / n;
        row.energy.radio_active_j += e.radio_active_j / n;
        row.energy.radio_tail_j += e.radio_tail_j / n;
        lo = std::min(lo, result->ttft_s);
        hi = std::max(hi, result->ttft_s);
        if (rep == 0) {
          row.received_bytes = result->received_bytes;
          row.n_streamed = result->n_streamed;
          row.n_computed = result->n_computed;
          row.n_replans = result->stats.n_replans;
          row.n_races = result->stats.n_raced;
          if (!f.svg_dir.empty() && p < kMaxTimelinePoints) {
            const std::string file = s.name + (points.size() > 1 ? "-p" + std::to_string(p) : "") + "-" +
                                     strategy.name + "-timeline.svg";
            Status written = WriteSvg(f.svg_dir, file,
                                      TimelineSvg(*result, sim->actual, s.name + ": " + strategy.name + ", " + label));
            if (!written.ok()) return fail(written);
          }
        }
      }
      row.ttft_spread_s = hi - lo;
      row.vs_hindsight = row.ttft_s / hindsight[p];
      rows.push_back(row);
    }
    double best_single = HUGE_VAL, local_j = NAN;
    for (size_t r = first_row; r < rows.size(); ++r) {
      if (rows[r].strategy == "local" || rows[r].strategy == "stream") best_single = std::min(best_single, rows[r].ttft_s);
      if (rows[r].strategy == "local") local_j = rows[r].energy.total_j();
    }
    for (size_t r = first_row; r < rows.size(); ++r) {
      if (std::isfinite(best_single)) rows[r].vs_single = best_single / rows[r].ttft_s;
      if (local_j > 0) rows[r].energy_vs_local = rows[r].energy.total_j() / local_j;
    }
  }
  progress.Finish();

  if (!f.svg_dir.empty() && s.bandwidth.kind == BandwidthSpec::Kind::kConstant && s.bandwidth.rates_mbit.size() > 1) {
    // One chart per combination of the other swept values, one line per strategy.
    std::map<std::string, std::map<std::string, std::pair<SvgSeries, SvgSeries>>> groups;
    std::vector<std::string> group_order;
    for (const Row& row : rows) {
      const std::string group = points[row.point].LabelWithoutRate(s);
      if (groups.count(group) == 0) group_order.push_back(group);
      auto& [ttft, energy] = groups[group][row.strategy];
      ttft.name = energy.name = row.strategy;
      ttft.points.emplace_back(points[row.point].rate_mbit, row.ttft_s);
      energy.points.emplace_back(points[row.point].rate_mbit, row.energy.total_j());
    }
    for (size_t g = 0; g < group_order.size(); ++g) {
      std::vector<SvgSeries> ttft, energy;
      for (const std::string& name : s.strategies) {
        ttft.push_back(groups[group_order[g]][name].first);
        energy.push_back(groups[group_order[g]][name].second);
      }
      const std::string suffix = group_order.size() > 1 ? "-g" + std::to_string(g) : "";
      Status written = WriteSvg(f.svg_dir, s.name + "-ttft-vs-rate" + suffix + ".svg",
                                LineChartSvg(s.name + ": TTFT against bandwidth (" + group_order[g] + ")",
                                             "bandwidth, Mbit/s", "TTFT, s", ttft));
      if (written.ok()) {
        written = WriteSvg(f.svg_dir, s.name + "-energy-vs-rate" + suffix + ".svg",
                           LineChartSvg(s.name + ": energy per request against bandwidth (" + group_order[g] +
                                            ", " + power->name + " model)",
                                        "bandwidth, Mbit/s", "energy, J", energy));
      }
      if (!written.ok()) return ReportError(written);
    }
  }

  if (!f.csv.empty()) {
    std::string csv =
        "scenario,point,rate_mbit,trace_offset_s,slowdown,n_chunks,strategy,ttft_s,hindsight_ttft_s,vs_hindsight,"
        "vs_single,energy_j,cpu_busy_j,cpu_idle_j,radio_active_j,radio_tail_j,energy_vs_local,received_bytes,"
        "n_streamed,n_computed,replans,races,race_ratio\n";
    for (const Row& r : rows) {
      const ScenarioPoint& pt = points[r.point];
      char line[1024];
      std::snprintf(line, sizeof line, ",%zu,%g,%g,%g,%d,%s,%.6f,%.6f,%.6f,%s,%.6f,%.6f,%.6f,%.6f,%.6f,%s,%llu,%d,%d,%d,%d,%g\n",
                    r.point, pt.rate_mbit, pt.trace_offset_s, pt.slowdown, pt.n_chunks, CsvField(r.strategy).c_str(),
                    r.ttft_s, hindsight[r.point], r.vs_hindsight, Ratio(r.vs_single).c_str(), r.energy.total_j(),
                    r.energy.cpu_busy_j, r.energy.cpu_idle_j, r.energy.radio_active_j, r.energy.radio_tail_j,
                    Ratio(r.energy_vs_local).c_str(), static_cast<unsigned long long>(r.received_bytes), r.n_streamed,
                    r.n_computed, r.n_replans, r.n_races, r.race_ratio);
      csv += CsvField(s.name) + line;
    }
    Status written = WriteFileAtomic(f.csv, csv);
    if (!written.ok()) return ReportError(written.WithContext("--csv"));
  }

  if (f.json) {
    nlohmann::json out;
    out["scenario"] = s.name;
    out["energy_profile"] = power->name;
    out["repetitions"] = s.repetitions;
    out["points"] = nlohmann::json::array();
    for (size_t p = 0; p < points.size(); ++p) {
      nlohmann::json point = {{"label", points[p].Label(s)},
                              {"rate_mbit", points[p].rate_mbit},
                              {"at_crossover", points[p].at_crossover},
                              {"trace_offset_s", points[p].trace_offset_s},
                              {"slowdown", points[p].slowdown},
                              {"n_chunks", points[p].n_chunks},
                              {"hindsight_ttft_s", hindsight[p]},
                              {"strategies", nlohmann::json::array()}};
      for (const Row& r : rows) {
        if (r.point != p) continue;
        point["strategies"].push_back({{"name", r.strategy},
                                       {"ttft_s", r.ttft_s},
                                       {"ttft_spread_s", r.ttft_spread_s},
                                       {"vs_hindsight", r.vs_hindsight},
                                       {"vs_single", OrNull(r.vs_single)},
                                       {"energy_j", r.energy.total_j()},
                                       {"cpu_busy_j", r.energy.cpu_busy_j},
                                       {"cpu_idle_j", r.energy.cpu_idle_j},
                                       {"radio_active_j", r.energy.radio_active_j},
                                       {"radio_tail_j", r.energy.radio_tail_j},
                                       {"energy_vs_local", OrNull(r.energy_vs_local)},
                                       {"received_bytes", r.received_bytes},
                                       {"chunks_streamed", r.n_streamed},
                                       {"chunks_computed", r.n_computed},
                                       {"replans", r.n_replans},
                                       {"races", r.n_races},
                                       {"race_ratio", r.race_ratio}});
      }
      out["points"].push_back(std::move(point));
    }
    std::printf("%s\n", DumpJson(out, 2).c_str());
    return 0;
  }

  size_t label_width = 5;
  for (const ScenarioPoint& pt : points) label_width = std::max(label_width, pt.Label(s).size());
  std::printf("scenario %s: %s x %s, %s; energy model %s\n\n", s.name.c_str(),
              FormatCount(static_cast<long long>(points.size()), "point", "points").c_str(),
              FormatCount(static_cast<long long>(strategies.size()), "strategy", "strategies").c_str(),
              FormatCount(s.repetitions, "repetition", "repetitions").c_str(), power->name.c_str());
  std::printf("%-*s %-16s %9s %8s %8s %9s %8s %9s\n", static_cast<int>(label_width), "point", "strategy", "TTFT s",
              "/optim", "/single", "energy J", "/local", "MiB recv");
  for (const Row& r : rows) {
    std::printf("%-*s %-16s %9.3f %8.3f %8s %9.2f %8s %9.2f\n", static_cast<int>(label_width),
                points[r.point].Label(s).c_str(), r.strategy.c_str(), r.ttft_s, r.vs_hindsight,
                Ratio(r.vs_single).c_str(), r.energy.total_j(), Ratio(r.energy_vs_local).c_str(),
                r.received_bytes / 1048576.0);
  }
  std::printf("\n/optim: TTFT over the hindsight optimum (1 is optimal). /single: the better of local and stream\n"
              "over this TTFT (above 1 is faster than both). /local: energy over local's (below 1 saves energy).\n"
              "Energy is a model (%s), not a measurement; see docs/benchmarks.md.\n",
              power_path.c_str());
  return 0;
}

}  // namespace

void AddBenchCommand(CLI::App& app, int* exit_code) {
  auto flags = std::make_shared<Flags>();
  CLI::App* command = app.add_subcommand(
      "bench", "Run a scenario file's sweep of strategies in the simulator (TTFT, hindsight optimum, energy model, "
               "SVG) or for real on a paced loopback server (median TTFT, ratio to the simulator); table, JSON, CSV");
  command->add_option("--scenario", flags->scenario, "Scenario JSON (layout in docs/benchmarks.md)")
      ->required()
      ->check(CLI::ExistingFile);
  command->add_flag("--json", flags->json, "Print JSON instead of a table");
  command->add_option("--csv", flags->csv, "Also write one CSV row per point and strategy to this file");
  command->add_option("--svg-dir", flags->svg_dir,
                      "Write timelines (and, for a rate sweep, TTFT and energy against bandwidth) as SVG here");
  command->add_option("--power-profiles", flags->power_profiles,
                      "Power profiles JSON (default: the scenario's, else the source tree's data/power_profiles.json)")
      ->check(CLI::ExistingFile);
  command->callback([flags, exit_code] { *exit_code = RunBench(*flags); });
}

}  // namespace sparkv::cli
