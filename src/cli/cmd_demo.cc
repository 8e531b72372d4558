// `sparkv demo`: the whole system on one machine, loopback only. Makes a synthetic model, ingests
// a context into a store, serves it with a rate cap, and loads the context three ways.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdarg>
#include <cstdio>
#include <filesystem>
#include <memory>

#include "cli/cli_util.h"
#include "cli/commands.h"
#include "cli/demo_text.h"
#include "cli/report.h"
#include "common/file_util.h"
#include "common/log.h"
#include "kv/chunk_key.h"
#include "model/synthetic.h"
#include "model/tokenizer.h"
#include "net/server.h"
#include "runtime/ingest.h"
#include "runtime/profiler.h"
#include "runtime/session.h"
#include "store/store.h"

namespace sparkv::cli {
namespace {

struct DemoFlags {
  std::string model;
  std::string shape = "qwen2.5-0.5b";
  std::string text;
  int32_t context_tokens = 2048;
  int32_t chunk_tokens = kDefaultChunkTokens;
  double rate_mbit = 0.0;
  int threads = 0;
  int32_t n_generate = 8;
  bool json = false;
  bool reprofile = false;
};

// Formats an age in seconds for a person: "40 s", "12 min", "5 h", "3 days".
std::string AgeText(double seconds) {
  const long rounded = std::lround(std::max(seconds, 0.0));
  if (rounded < 120) return std::to_string(rounded) + " s";
  if (rounded < 120 * 60) return std::to_string(rounded / 60) + " min";
  if (rounded < 48 * 3600) return std::to_string(rounded / 3600) + " h";
  return std::to_string(rounded / 86400) + " days";
}

// Returns the seconds since `path` was last modified, or a negative number when the file's time
// cannot be read (for example, because the file does not exist).
double FileAgeSeconds(const std::string& path) {
  std::error_code error;
  const auto modified = std::filesystem::last_write_time(path, error);
  if (error) return -1.0;
  return std::chrono::duration<double>(std::filesystem::file_time_type::clock::now() - modified).count();
}

// Progress lines go to stdout, or to stderr when stdout carries JSON.
class Progress {
 public:
  explicit Progress(bool to_stderr) : out_(to_stderr ? stderr : stdout) {}
  void Step(const char* format, ...) __attribute__((format(printf, 2, 3))) {
    std::fprintf(out_, "[demo] ");
    va_list args;
    va_start(args, format);
    std::vfprintf(out_, format, args);
    va_end(args);
    std::fprintf(out_, "\n");
    std::fflush(out_);
  }

 private:
  FILE* out_;
};

Status RunDemo(const DemoFlags& flags) {
  Progress progress(flags.json);
  const std::string folder = CacheDir() + "/demo";
  SPARKV_RETURN_IF_ERROR(CreateDirectories(folder));

  // 1. Model.
  std::string model_path = flags.model;
  if (model_path.empty()) {
    model_path = folder + "/" + flags.shape + "-q8_0-seed1.gguf";
    if (!std::filesystem::exists(model_path)) {
      progress.Step("making a synthetic %s model (Q8_0, random weights) at %s", flags.shape.c_str(), model_path.c_str());
      SyntheticModelOptions options;
      options.shape = flags.shape;
      SPARKV_RETURN_IF_ERROR(WriteSyntheticModel(options, model_path));
    } else {
      progress.Step("using the synthetic model at %s", model_path.c_str());
    }
  }
  SPARKV_ASSIGN_OR_RETURN(std::unique_ptr<Model> model, Model::Load(model_path));
  const HParams& hp = model->hparams();
  progress.Step("model: %d layers, n_embd %d, %d KV heads of %d, vocab %d, %.0f MiB", hp.n_layer, hp.n_embd,
                hp.n_head_kv, hp.head_dim, hp.n_vocab, model->weight_bytes() / 1048576.0);

  // 2. Context and query.
  std::string text;
  if (!flags.text.empty()) {
    SPARKV_ASSIGN_OR_RETURN(text, ReadFileToString(flags.text));
  } else {
    text = DemoContextText(400);
  }
  SPARKV_ASSIGN_OR_RETURN(Tokenizer tokenizer, Tokenizer::Create(model->vocab()));
  std::vector<TokenId> context = tokenizer.Encode(text, /*add_special=*/true);
  if (static_cast<int32_t>(context.size()) > flags.context_tokens) context.resize(flags.context_tokens);
  const std::vector<TokenId> query = tokenizer.Encode("\nQuestion: How do I replace the battery?\nAnswer:", false);
  progress.Step("context: %zu tokens in chunks of %d; query: %zu tokens", context.size(), flags.chunk_tokens,
                query.size());

  SPARKV_ASSIGN_OR_RETURN(
      std::unique_ptr<Engine> engine,
      MakeEngine(*model, flags.threads, static_cast<int32_t>(context.size() + query.size()) + flags.n_generate));

  // 3. Ingest on the "server side" (same machine, same engine code).
  // A store from an earlier demo run is reused: equal keys mean equal KV.
  const std::string store = folder + "/store";
  const std::vector<ChunkRange> chunks = SplitIntoChunks(static_cast<int32_t>(context.size()), flags.chunk_tokens);
  const Hash128 context_key = ChunkKeys(RootKey(model->fingerprint(), flags.chunk_tokens), context, chunks).back();
  IngestReport ingest;
  Result<Manifest> existing = Store(store).ReadManifest(context_key);
  if (existing.ok() && existing->chunks.size() == chunks.size()) {
    ingest.manifest = std::move(existing).value();
    for (const ManifestChunk& chunk : ingest.manifest.chunks) {
      for (const auto& [codec, level] : chunk.levels) ingest.bytes_per_codec[codec] += level.bytes;
    }
    progress.Step("using context %s ingested into %s by an earlier run", context_key.Hex().c_str(), store.c_str());
  } else {
    progress.Step("ingesting the context into %s (prefill, then f16 and q8 blobs)", store.c_str());
    IngestOptions ingest_options;
    ingest_options.chunk_tokens = flags.chunk_tokens;
    SPARKV_ASSIGN_OR_RETURN(ingest, IngestContext(*model, *engine, context, ingest_options, store));
    progress.Step("ingested context %s (prefill took %.3g s)", context_key.Hex().c_str(), ingest.prefill_s);
  }
  progress.Step("blobs: f16 %.3g MiB, q8 %.3g MiB", ingest.bytes_per_codec["f16"] / 1048576.0,
                ingest.bytes_per_codec["q8"] / 1048576.0);

  // 4. Device profile (cached), and the rate where both single paths take equally long.
  const std::string profile_folder = CacheDir() + "/profiles";
  const std::string profile_path = ProfilePath(profile_folder, *model, engine->thread_pool().n_threads());
  if (flags.reprofile) {
    std::error_code error;
    std::filesystem::remove(profile_path, error);
    if (error) {
      return IoError("--reprofile: failed to remove the cached profile " + profile_path + ": " + error.message() +
                     "; remove it by hand");
    }
  }
  // Read before the lookup, which saves the file again when it adds decode costs.
  const double profile_age_s = FileAgeSeconds(profile_path);
  if (profile_age_s < 0.0) {
    progress.Step("measuring this device's prefill and decode costs (saved for later runs)");
  }
  ProfileOptions profile_options;
  profile_options.chunk_tokens = flags.chunk_tokens;
  bool reused = false;
  SPARKV_ASSIGN_OR_RETURN(Profile profile,
                          LoadOrMeasureProfile(profile_folder, *model, *engine, profile_options, &reused));
  if (reused) {
    progress.Step("reusing the device profile %s, measured %s ago; pass --reprofile to measure again",
                  profile_path.c_str(), AgeText(profile_age_s).c_str());
  } else {
    progress.Step("measured a device profile and saved it to %s", profile_path.c_str());
  }
  double local_seconds = 0.0;
  for (const ManifestChunk& chunk : ingest.manifest.chunks) local_seconds += profile.compute.ChunkSeconds(chunk.begin, chunk.end);
  double rate_mbit = flags.rate_mbit;
  if (rate_mbit <= 0.0) {
    rate_mbit = static_cast<double>(ingest.bytes_per_codec["f16"]) * 8.0 / 1e6 / local_seconds;
    progress.Step("predicted local load %.3g s; rate cap %.3g Mbit/s, where streaming all f16 chunks takes as long",
                  local_seconds, rate_mbit);
  }

  // 5. Serve the store on a free loopback port.
  ServerOptions server_options;
  server_options.root = store;
  server_options.rate_mbit = rate_mbit;
  SPARKV_ASSIGN_OR_RETURN(std::unique_ptr<StoreServer> server, StoreServer::Start(server_options));
  progress.Step("serving the store at %s, paced to %.1f Mbit/s", server->base_url().c_str(), rate_mbit);

  // 6. The three strategies, lossless f16 only, so every strategy must produce the same tokens.
  std::vector<RunReport> reports;
  for (const char* strategy : {"local", "stream", "hybrid"}) {
    progress.Step("running strategy %s", strategy);
    RunOptions options;
    options.server_url = server->base_url();
    options.strategy = strategy;
    options.chunk_tokens = flags.chunk_tokens;
    options.n_generate = flags.n_generate;
    SPARKV_ASSIGN_OR_RETURN(RunReport report, RunRequest(*model, *engine, profile, context, query, options));
    progress.Step("  %s: TTFT %.2f s (%d chunks streamed, %d computed)", strategy, report.ttft_s, report.load.n_streamed,
                  report.load.n_computed);
    reports.push_back(std::move(report));
  }
  server->Stop();

  // The rate cap and every plan come from the profile. A profile measured under another load, or
  // before the machine changed, makes the single paths far apart and the comparison moot.
  const double local_load_s = reports[0].load_s;
  if (local_seconds > 0.0 && (local_load_s > 2.0 * local_seconds || local_load_s < 0.5 * local_seconds)) {
    SPARKV_LOG_WARN("the profile predicted a local load of %.3g s, and it took %.3g s: the profile no longer fits "
                    "this device; pass --reprofile to measure it again",
                    local_seconds, local_load_s);
  }

  const double best_single = std::min(reports[0].ttft_s, reports[1].ttft_s);
  bool same_tokens = true;
  for (const RunReport& report : reports) same_tokens = same_tokens && report.tokens == reports[0].tokens;

  if (flags.json) {
    nlohmann::json results = nlohmann::json::array();
    for (const RunReport& report : reports) results.push_back(RunReportJson(report, GeneratedText(*model, report)));
    const nlohmann::json out = {{"model", model_path},
                                {"context_tokens", context.size()},
                                {"chunk_tokens", flags.chunk_tokens},
                                {"rate_mbit", rate_mbit},
                                {"threads", engine->thread_pool().n_threads()},
                                {"cpu", CpuName()},
                                {"hybrid_speedup_vs_best_single_path", best_single / reports[2].ttft_s},
                                {"tokens_identical", same_tokens},
                                {"results", results}};
    std::printf("%s\n", DumpJson(out, 2).c_str());
    return Status::Ok();
  }

  std::printf("\nSparKV demo: %zu-token context, %d-token chunks, %.1f Mbit/s link, %d threads on %s\n\n",
              context.size(), flags.chunk_tokens, rate_mbit, engine->thread_pool().n_threads(), CpuName().c_str());
  std::printf("%-8s %9s %10s %9s %9s %12s %9s\n", "strategy", "TTFT (s)", "vs single", "streamed", "computed",
              "MiB on wire", "load (s)");
  // Three significant digits, so that a tiny model's millisecond loads do not all read 0.01.
  for (const RunReport& report : reports) {
    std::printf("%-8s %9.3g %9.2fx %9d %9d %12.3g %9.3g\n", report.strategy.c_str(), report.ttft_s,
                best_single / report.ttft_s, report.load.n_streamed, report.load.n_computed,
                (report.load.stream_bytes + report.probe_bytes) / 1048576.0, report.load_s);
  }
  std::printf("\n\"vs single\" is the better of local's and stream's TTFT over the row's (above 1 is faster)\n");
  const double speedup = best_single / reports[2].ttft_s;
  if (speedup >= 1.0) {
    std::printf("hybrid vs the better single path: %.2fx lower TTFT\n", speedup);
  } else {
    std::printf("hybrid vs the better single path: %.2fx higher TTFT (slower)\n", 1.0 / speedup);
  }
  std::printf("generated tokens identical across strategies: %s\n", same_tokens ? "yes" : "NO");
  return same_tokens ? Status::Ok()
                     : InternalError("strategies produced different tokens from lossless KV; please report this");
}

}  // namespace

void AddDemoCommand(CLI::App& app, int* exit_code) {
  auto flags = std::make_shared<DemoFlags>();
  CLI::App* command = app.add_subcommand(
      "demo", "Load a context's KV three ways (local, stream, hybrid) on loopback and compare TTFT");
  command->add_option("--model", flags->model, "GGUF model; default: a synthetic model made in the cache folder");
  command->add_option("--shape", flags->shape, "Shape of the default synthetic model")->capture_default_str();
  command->add_option("--text", flags->text, "Context text file; default: a built-in manual")->check(CLI::ExistingFile);
  command->add_option("--context-tokens", flags->context_tokens, "Truncate the context to this many tokens")
      ->capture_default_str()
      ->check(CLI::Range(2, 1 << 20));
  command->add_option("--chunk-tokens", flags->chunk_tokens, "Tokens per chunk")->capture_default_str()->check(CLI::Range(1, kMaxChunkTokens));
  command->add_option("--rate", flags->rate_mbit,
                      "Link rate cap, Mbit/s; default: where streaming all and computing all take equally long")
      ->check(CLI::PositiveNumber);
  command->add_option("--threads", flags->threads, "Compute threads (0 = every core)")->capture_default_str()->check(CLI::Range(0, kMaxThreads));
  command->add_option("-n,--n-generate", flags->n_generate, "Tokens to generate per strategy, the first included")
      ->capture_default_str()
      ->check(CLI::Range(1, 1 << 20));
  command->add_flag("--json", flags->json, "Print the results as one JSON object");
  command->add_flag("--reprofile", flags->reprofile,
                    "Measure the device profile again instead of reusing the one cached by an earlier run");
  command->callback([flags, exit_code] { *exit_code = ReportError(RunDemo(*flags)); });
}

}  // namespace sparkv::cli
