#include "bench/real.h"

#include <algorithm>
#include <cmath>
#include <cctype>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <map>
#include <memory>
#include <optional>
#include <set>

#include "bench/background_load.h"
#include "common/file_util.h"
#include "common/log.h"
#include "kv/chunk_key.h"
#include "model/llama2c.h"
#include "model/model.h"
#include "net/server.h"
#include "runtime/codec_eval.h"
#include "runtime/ingest.h"
#include "runtime/profiler.h"
#include "runtime/session.h"
#include "runtime/simulator.h"
#include "runtime/strategy.h"
#include "store/store.h"

namespace sparkv {
namespace {

Status FieldError(const std::string& field, const std::string& want) {
  return InvalidArgumentError("scenario field '" + field + "': " + want);
}

// Steps become a trace of this many packets at most (about 12 MB of offsets).
constexpr uint64_t kMaxStepPackets = uint64_t{3} << 20;

// A fresh folder under the system's temporary folder, removed with everything in it when the
// object goes away.
class ScratchDir {
 public:
  static Result<std::unique_ptr<ScratchDir>> Make() {
    std::string pattern = (std::filesystem::temp_directory_path() / "sparkv-bench-XXXXXX").string();
    if (::mkdtemp(pattern.data()) == nullptr) {
      return IoError("cannot create a temporary folder from " + pattern + "; check TMPDIR");
    }
    return std::unique_ptr<ScratchDir>(new ScratchDir(pattern));
  }
  ~ScratchDir() {
    std::error_code ignored;
    std::filesystem::remove_all(path_, ignored);
  }
  const std::string& path() const { return path_; }

 private:
  explicit ScratchDir(std::string path) : path_(std::move(path)) {}
  std::string path_;
};

Result<std::vector<TokenId>> ReadTokens(const std::string& path, int32_t n_vocab) {
  Result<std::string> text = ReadFileToString(path);
  if (!text.ok()) return text.status().WithContext("scenario field 'real.tokens'");
  std::vector<TokenId> tokens;
  const char* p = text->c_str();
  while (*p != '\0') {
    char* end = nullptr;
    const long long id = std::strtoll(p, &end, 10);
    if (end == p) {
      if (std::isspace(static_cast<unsigned char>(*p))) {
        ++p;
        continue;
      }
      return FieldError("real.tokens", path + " contains '" + std::string(p, std::min<size_t>(16, std::strlen(p))) +
                                           "', which is not a token id; give whitespace-separated ids");
    }
    if (id < 0 || id >= n_vocab) {
      return FieldError("real.tokens", path + " contains token " + std::to_string(id) + ", outside the model's vocabulary [0, " +
                                           std::to_string(n_vocab) + ")");
    }
    tokens.push_back(static_cast<TokenId>(id));
    p = end;
  }
  return tokens;
}

double Median(std::vector<double> values) {
  if (values.empty()) return 0.0;
  std::sort(values.begin(), values.end());
  const size_t mid = values.size() / 2;
  return values.size() % 2 == 1 ? values[mid] : 0.5 * (values[mid - 1] + values[mid]);
}

bool StreamedLossy(const LoadReport& load) {
  return std::any_of(load.chunks.begin(), load.chunks.end(),
                     [](const ChunkOutcome& c) { return c.streamed && CodecQualityRank(c.codec) > 0; });
}

// Context length in tokens at `point`: its chunks, or everything that leaves room for the query.
Result<int32_t> ContextTokens(const Scenario& s, const ScenarioPoint& point, size_t n_tokens) {
  const int64_t available = static_cast<int64_t>(n_tokens) - s.query_tokens;
  const int64_t wanted = point.n_chunks > 0 ? int64_t{point.n_chunks} * s.real.chunk_tokens : available;
  if (wanted < 1 || wanted > available) {
    return FieldError(point.n_chunks > 0 ? "n_chunks" : "query_tokens",
                      "the context of " + std::to_string(wanted) + " tokens and the query of " +
                          std::to_string(s.query_tokens) + " need more than the " + std::to_string(n_tokens) +
                          " tokens of real.tokens or real.sample_tokens; give more tokens or fewer chunks");
  }
  return static_cast<int32_t>(wanted);
}

}  // namespace

Result<Link> PointLink(const Scenario& s, const ScenarioPoint& point, double* offset_s) {
  *offset_s = 0.0;
  switch (s.bandwidth.kind) {
    case BandwidthSpec::Kind::kConstant:
      return Link::Constant(point.rate_mbit);
    case BandwidthSpec::Kind::kTrace: {
      Result<Link> link = Link::LoadMahimahi(s.bandwidth.trace_path);
      if (!link.ok()) return link.status().WithContext("scenario field 'bandwidth.trace'");
      *offset_s = point.trace_offset_s;
      return link;
    }
    case BandwidthSpec::Kind::kSteps: {
      // One line per packet, at the end of the millisecond in which the steps' bytes fill it. The
      // trace loops, so it spans the last step plus the timeout, which no run outlasts.
      SPARKV_ASSIGN_OR_RETURN(BandwidthModel model, BandwidthModel::Steps(s.bandwidth.steps));
      const double horizon_s = s.bandwidth.steps.back().start_s + std::max(s.timeout_s, 1.0);
      const auto n_ms = static_cast<uint64_t>(std::ceil(horizon_s * 1000.0));
      if (model.BytesBetween(0.0, horizon_s) / Link::kPacketBytes > static_cast<double>(kMaxStepPackets)) {
        return FieldError("bandwidth.steps", "carry more than " + std::to_string(kMaxStepPackets) +
                                                 " packets before the last step plus timeout_s; a real run paces them "
                                                 "as a trace, so use lower rates or a shorter timeout_s");
      }
      std::string text;
      uint64_t n_sent = 0;
      for (uint64_t ms = 0; ms < n_ms; ++ms) {
        const auto n_due = static_cast<uint64_t>(model.BytesBetween(0.0, (ms + 1) / 1000.0) / Link::kPacketBytes);
        for (; n_sent < n_due; ++n_sent) text += std::to_string(ms + 1) + "\n";
      }
      // The last line is the loop period. Without it, a trace that ends in an outage would loop early.
      text += std::to_string(n_ms) + "\n";
      return Link::ParseMahimahi(text, "bandwidth.steps");
    }
  }
  return InternalError("unknown bandwidth kind");
}

Result<RealBenchReport> RunRealBench(const Scenario& s, const RealBenchOptions& options) {
  if (s.mode == BenchMode::kSimulated) {
    return FieldError("mode", "is \"simulated\"; a real run needs mode \"real\" or \"both\"");
  }
  std::unique_ptr<ScratchDir> scratch;
  std::string work_dir = options.work_dir;
  if (work_dir.empty()) {
    SPARKV_ASSIGN_OR_RETURN(scratch, ScratchDir::Make());
    work_dir = scratch->path();
  }

  // The model, converted when it is a llama2.c checkpoint.
  std::string model_path = s.real.model_path;
  if (std::filesystem::path(model_path).extension() == ".bin") {
    const std::string converted = (std::filesystem::path(work_dir) / "model.gguf").string();
    Status status = ConvertLlama2c(model_path, "", converted);
    if (!status.ok()) return status.WithContext("scenario field 'real.model'");
    model_path = converted;
  }
  Result<std::unique_ptr<Model>> loaded = Model::Load(model_path);
  if (!loaded.ok()) return loaded.status().WithContext("scenario field 'real.model'");
  const Model& model = **loaded;

  // Tokens: the context is a prefix, and the query the query_tokens after it.
  std::vector<TokenId> tokens;
  if (!s.real.tokens_path.empty()) {
    SPARKV_ASSIGN_OR_RETURN(tokens, ReadTokens(s.real.tokens_path, model.hparams().n_vocab));
  } else {
    Result<std::vector<TokenId>> sampled = SampleContext(model, s.real.sample_tokens, s.real.seed, s.real.threads);
    if (!sampled.ok()) return sampled.status().WithContext("scenario field 'real.sample_tokens'");
    tokens = std::move(sampled).value();
  }
  RealBenchReport report;
  report.points = ExpandScenario(s);
  int32_t longest = 0;
  for (const ScenarioPoint& point : report.points) {
    SPARKV_ASSIGN_OR_RETURN(int32_t n, ContextTokens(s, point, tokens.size()));
    report.n_context_tokens.push_back(n);
    longest = std::max(longest, n);
  }

  // One engine serves every run, and each run clears its cache. Only the first token is generated.
  EngineOptions engine_options;
  engine_options.n_threads = s.real.threads;
  engine_options.n_positions = longest + s.query_tokens + 1;
  SPARKV_ASSIGN_OR_RETURN(std::unique_ptr<Engine> engine, Engine::Create(model, engine_options));

  // The profile both the real planner and the simulator use, so that their plans agree.
  const std::vector<std::string> codecs = s.real.codecs.empty() ? s.levels : s.real.codecs;
  if (s.profile_path.empty()) {
    ProfileOptions profile_options;
    profile_options.chunk_tokens = s.real.chunk_tokens;
    FitReport fit;
    SPARKV_ASSIGN_OR_RETURN(report.profile, MeasureProfile(model, *engine, profile_options, &fit));
    report.profile_source = "measured";
  } else {
    Result<Profile> profile = LoadProfile(s.profile_path, AllCodecNames());
    if (!profile.ok()) return profile.status().WithContext("scenario field 'profile' (" + s.profile_path + ")");
    report.profile = std::move(profile).value();
    SPARKV_RETURN_IF_ERROR(AddMissingDecodeCosts(report.profile, model, *engine, s.real.chunk_tokens, s.levels).status());
    report.profile_source = s.profile_path;
  }

  // The store: ingested here for every context length, or given. Either way each length's
  // manifest must be there, since the simulated side reads its blob sizes.
  report.store = s.real.store_path.empty() ? (std::filesystem::path(work_dir) / "store").string() : s.real.store_path;
  const Store store(report.store);
  std::map<int32_t, Manifest> manifests;
  for (int32_t n : std::set<int32_t>(report.n_context_tokens.begin(), report.n_context_tokens.end())) {
    const std::span<const TokenId> context(tokens.data(), static_cast<size_t>(n));
    if (s.real.store_path.empty()) {
      IngestOptions ingest;
      ingest.chunk_tokens = s.real.chunk_tokens;
      ingest.codecs = codecs;
      Result<IngestReport> ingested = IngestContext(model, *engine, context, ingest, report.store);
      if (!ingested.ok()) return ingested.status().WithContext("ingesting " + std::to_string(n) + " tokens");
    }
    const std::vector<ChunkRange> chunks = SplitIntoChunks(n, s.real.chunk_tokens);
    const Hash128 key = ChunkKeys(RootKey(model.fingerprint(), s.real.chunk_tokens), context, chunks).back();
    Result<Manifest> manifest = store.ReadManifest(key);
    if (!manifest.ok()) {
      return FieldError("real.store", report.store + " has no usable manifest for the first " + std::to_string(n) +
                                          " tokens (" + manifest.status().ToString() +
                                          "); ingest them there with the same model and chunk_tokens, or drop "
                                          "real.store to ingest into a temporary store");
    }
    manifests[n] = std::move(manifest).value();
  }

  // The server runs in this process rather than as a child `sparkv serve`, because the bench
  // restarts its pacing right before every run (RestartPacing). So each repetition meets the link
  // from the same origin. A separate process would need a control channel of its own for that.
  ServerOptions server_options;
  server_options.root = report.store;
  server_options.rtt_ms = s.rtt_ms;
  server_options.n_threads = 4;
  server_options.keep_alive_timeout_s = 1;
  SPARKV_ASSIGN_OR_RETURN(std::unique_ptr<StoreServer> server, StoreServer::Start(server_options));

  std::vector<Strategy> strategies;
  for (const std::string& name : s.strategies) {
    SPARKV_ASSIGN_OR_RETURN(Strategy strategy, FindStrategy(name));
    strategies.push_back(WithRaceRatio(std::move(strategy), s.race_ratio));
  }
  for (size_t p = 0; p < report.points.size(); ++p) {
    const int32_t n_context = report.n_context_tokens[p];
    const std::span<const TokenId> context(tokens.data(), static_cast<size_t>(n_context));
    const std::span<const TokenId> query(tokens.data() + n_context, static_cast<size_t>(s.query_tokens));

    // The simulated side of the point. Its first bandwidth estimate is also the real planner's,
    // which then skips its probe: a probe would spend link time the simulator does not model.
    BenchContext bench_context{report.profile, manifests[n_context]};
    ScenarioPoint whole = report.points[p];
    whole.n_chunks = 0;  // the manifest already contains exactly the point's chunks
    if (whole.at_crossover) {
      // The simulated crossover of this profile: the real runs show how close the device is to it.
      SPARKV_ASSIGN_OR_RETURN(whole.rate_mbit, CrossoverRate(s, bench_context, whole));
      report.points[p].rate_mbit = whole.rate_mbit;
    }
    const ScenarioPoint& point = report.points[p];
    const std::string label = point.Label(s);
    Result<SimScenario> sim = MakeSimScenario(s, bench_context, whole);
    if (!sim.ok()) return sim.status().WithContext(label);
    if (s.mode == BenchMode::kBoth) {
      Result<Plan> optimum = HindsightOptimum(*sim);
      if (!optimum.ok()) return optimum.status().WithContext(label + ", hindsight optimum");
      report.hindsight_ttft_s.push_back(optimum->predicted.ttft_s);
    }
    double offset_s = 0.0;
    Result<Link> link = PointLink(s, point, &offset_s);
    if (!link.ok()) return link.status().WithContext(label);

    RunOptions run;
    run.levels = s.levels;
    run.chunk_tokens = s.real.chunk_tokens;
    run.n_generate = 1;
    run.timeout_s = s.timeout_s;
    run.bandwidth_hint_mbit = sim->input.bandwidth.RateAt(0.0) * 8.0 / 1e6;

    // The reference for the quality rule, which also warms caches before the timed runs.
    run.strategy = "local";
    Result<RunReport> reference = RunRequest(model, *engine, report.profile, context, query, run);
    if (!reference.ok()) return reference.status().WithContext(label + ", local reference");
    report.local_first_token.push_back(reference->tokens.front());

    const size_t first_row = report.rows.size();
    for (const Strategy& strategy : strategies) {
      RealRow row;
      row.point = p;
      row.strategy = strategy.name;
      if (s.mode == BenchMode::kBoth) {
        Result<SimResult> simulated = SimulateLoad(strategy, *sim);
        if (!simulated.ok()) return simulated.status().WithContext(label + ", strategy " + strategy.name);
        row.sim_ttft_s = simulated->ttft_s;
      }
      report.rows.push_back(std::move(row));
    }

    // Repetitions outside, strategies inside: a drift in the machine's load then touches every
    // strategy alike instead of whichever ran last.
    std::vector<std::vector<double>> load_ttft(strategies.size()), bytes(strategies.size()),
        streamed(strategies.size()), computed(strategies.size()), factor(strategies.size());
    {
      BackgroundLoad background(s.real.background_threads, s.real.background_duty);
      if (s.real.emulate_slowdown) SPARKV_RETURN_IF_ERROR(engine->set_emulated_slowdown(point.slowdown));
      struct SpeedReset {
        Engine& engine;
        ~SpeedReset() { (void)engine.set_emulated_slowdown(1.0); }
      } speed_reset{*engine};
      run.server_url = server->base_url();
      for (int32_t rep = 0; rep < s.repetitions; ++rep) {
        for (size_t k = 0; k < strategies.size(); ++k) {
          RealRow& row = report.rows[first_row + k];
          run.strategy = strategies[k].name;
          SPARKV_RETURN_IF_ERROR(server->RestartPacing(*link, offset_s));
          Result<RunReport> result = RunRequest(model, *engine, report.profile, context, query, run);
          if (!result.ok()) return result.status().WithContext(label + ", strategy " + run.strategy);
          row.ttft_s.push_back(result->ttft_s);
          // A strategy with a head start computes while the manifest is on its way, so the
          // manifest's time is not a prefix of its load. The simulator starts both paths at 0.
          load_ttft[k].push_back(strategies[k].head_start ? result->ttft_s : result->ttft_s - result->manifest_s);
          bytes[k].push_back(static_cast<double>(result->load.stream_bytes));
          streamed[k].push_back(result->load.n_streamed);
          computed[k].push_back(result->load.n_computed);
          factor[k].push_back(result->load.device_speed_factor);
          row.n_fallback += result->load.n_fallback;
          const bool lossy = StreamedLossy(result->load);
          row.streamed_lossy = row.streamed_lossy || lossy;
          if (result->tokens.front() != reference->tokens.front()) {
            ++row.n_mismatches;
            ++report.n_mismatches;
            if (!lossy) ++report.n_lossless_mismatches;
            SPARKV_LOG_WARN("QUALITY MISMATCH at %s, strategy %s, repetition %d: first token %d, local's %d%s",
                            label.c_str(), run.strategy.c_str(), rep, result->tokens.front(),
                            reference->tokens.front(), lossy ? " (a lossy level was streamed)" : " (lossless: a bug)");
          }
          if (options.on_run != nullptr) {
            char line[256];
            std::snprintf(line, sizeof line, "%s, %s, repetition %d: TTFT %.4f s", label.c_str(),
                          run.strategy.c_str(), rep + 1, result->ttft_s);
            options.on_run(line);
          }
        }
      }
    }
    for (size_t k = 0; k < strategies.size(); ++k) {
      RealRow& row = report.rows[first_row + k];
      row.median_ttft_s = Median(row.ttft_s);
      row.min_ttft_s = *std::min_element(row.ttft_s.begin(), row.ttft_s.end());
      row.max_ttft_s = *std::max_element(row.ttft_s.begin(), row.ttft_s.end());
      row.median_load_ttft_s = Median(load_ttft[k]);
      row.median_received_bytes = Median(bytes[k]);
      row.median_streamed = Median(streamed[k]);
      row.median_computed = Median(computed[k]);
      row.median_device_factor = Median(factor[k]);
      if (s.mode != BenchMode::kBoth) continue;
      if (row.sim_ttft_s > 0) row.real_over_sim = row.median_load_ttft_s / row.sim_ttft_s;
      row.load_over_hindsight = row.median_load_ttft_s / report.hindsight_ttft_s[p];
      SimScenario measured = *sim;
      measured.device_slowdown = row.median_device_factor;
      Result<SimResult> simulated = SimulateLoad(strategies[k], measured);
      if (!simulated.ok()) return simulated.status().WithContext(label + ", strategy " + row.strategy);
      row.sim_measured_speed_ttft_s = simulated->ttft_s;
      if (simulated->ttft_s > 0) row.real_over_sim_measured_speed = row.median_load_ttft_s / simulated->ttft_s;
    }
  }
  server->Stop();
  return report;
}

}  // namespace sparkv
