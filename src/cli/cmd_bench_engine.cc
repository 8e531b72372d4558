// `sparkv bench-engine`: prefill throughput per chunk as the context grows, decode throughput and
// peak memory of the engine on one model, for comparison with other engines on the same machine.
#include <sys/resource.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <random>

#include "cli/cli_util.h"
#include "cli/commands.h"
#include "common/clock.h"
#include "model/model.h"

namespace sparkv::cli {
namespace {

struct Flags {
  std::string model;
  int threads = 0;
  int32_t context = 0;  // 0 = 1024, or less to fit the model's trained context
  int32_t chunk = 256;
  int32_t decode = 32;
  uint64_t seed = 1;
  bool json = false;
};

using Clock = std::chrono::steady_clock;

// Peak resident set size of this process so far, in bytes (Linux reports KiB).
uint64_t PeakRssBytes() {
  rusage usage{};
  ::getrusage(RUSAGE_SELF, &usage);
  return static_cast<uint64_t>(usage.ru_maxrss) * 1024;
}

int RunBenchEngine(const Flags& flags) {
  Result<std::unique_ptr<Model>> model = Model::Load(flags.model);
  if (!model.ok()) return ReportError(model.status());
  const HParams& hp = (*model)->hparams();
  Flags f = flags;
  if (f.context == 0) f.context = std::max<int32_t>(1, std::min<int32_t>(1024, hp.n_ctx_train - f.decode));
  if (static_cast<int64_t>(f.context) + f.decode > hp.n_ctx_train) {
    std::fprintf(stderr, "sparkv: warning: --context %d plus --decode %d exceeds the model's trained context of %d\n",
                 f.context, f.decode, hp.n_ctx_train);
  }
  Result<std::unique_ptr<Engine>> engine = MakeEngine(**model, f.threads, f.context + f.decode);
  if (!engine.ok()) return ReportError(engine.status());

  // Token ids drawn uniformly, BOS first. A forward pass takes the same time whatever the ids; only
  // their count and positions matter.
  std::mt19937_64 rng(f.seed);
  std::uniform_int_distribution<TokenId> pick(0, hp.n_vocab - 1);
  std::vector<TokenId> tokens(static_cast<size_t>(f.context));
  for (TokenId& t : tokens) t = pick(rng);
  tokens[0] = (*model)->vocab().bos_id >= 0 ? (*model)->vocab().bos_id : tokens[0];

  struct ChunkSpeed {
    int32_t begin;
    int32_t end;
    double seconds;
  };
  std::vector<ChunkSpeed> chunks;
  const Clock::time_point prefill_start = Clock::now();
  for (int32_t begin = 0; begin < f.context; begin += f.chunk) {
    const int32_t end = std::min(f.context, begin + f.chunk);
    const Clock::time_point start = Clock::now();
    Status status = (*engine)->Prefill(std::span<const TokenId>(tokens).subspan(begin, end - begin), begin, nullptr);
    if (!status.ok()) return ReportError(status);
    chunks.push_back({begin, end, SecondsSince(start)});
  }
  const double prefill_s = SecondsSince(prefill_start);

  std::vector<float> logits;
  const Clock::time_point decode_start = Clock::now();
  TokenId token = tokens.back();
  for (int32_t i = 0; i < f.decode; ++i) {
    Status status = (*engine)->Decode(token, f.context + i, &logits);
    if (!status.ok()) return ReportError(status);
    token = pick(rng);
  }
  const double decode_s = SecondsSince(decode_start);

  std::error_code error;
  const uint64_t file_bytes = std::filesystem::file_size(f.model, error);
  const uint64_t kv_bytes = (*engine)->kv_cache().total_bytes();
  const uint64_t rss = PeakRssBytes();
  const uint64_t budget = file_bytes + kv_bytes + (64ull << 20);
  const double prefill_tps = f.context / prefill_s;
  const double decode_tps = f.decode > 0 ? f.decode / decode_s : 0.0;

  if (f.json) {
    nlohmann::json out;
    out["model"] = f.model;
    out["threads"] = (*engine)->thread_pool().n_threads();
    out["kernels"] = std::string((*engine)->kernel_table().name);
    out["context"] = f.context;
    out["chunk"] = f.chunk;
    out["prefill_tokens_per_s"] = prefill_tps;
    out["decode_tokens_per_s"] = decode_tps;
    out["peak_rss_bytes"] = rss;
    out["model_file_bytes"] = file_bytes;
    out["kv_cache_bytes"] = kv_bytes;
    out["rss_budget_bytes"] = budget;
    out["chunks"] = nlohmann::json::array();
    for (const ChunkSpeed& c : chunks) {
      out["chunks"].push_back({{"begin", c.begin}, {"end", c.end}, {"seconds", c.seconds},
                               {"tokens_per_s", (c.end - c.begin) / c.seconds}});
    }
    std::printf("%s\n", DumpJson(out, 2).c_str());
    return 0;
  }
  const std::string kernels((*engine)->kernel_table().name);
  std::printf("model %s, %d threads, %s kernels\n", f.model.c_str(), (*engine)->thread_pool().n_threads(),
              kernels.c_str());
  std::printf("%-16s %10s %12s\n", "chunk", "seconds", "tokens/s");
  for (const ChunkSpeed& c : chunks) {
    std::printf("[%6d, %6d) %10.3f %12.1f\n", c.begin, c.end, c.seconds, (c.end - c.begin) / c.seconds);
  }
  std::printf("prefill %d tokens: %.1f tokens/s\n", f.context, prefill_tps);
  std::printf("decode %d tokens: %.2f tokens/s\n", f.decode, decode_tps);
  std::printf("peak RSS %.1f MiB; model file %.1f MiB + KV cache %.1f MiB + 64 MiB of buffers and code = %.1f MiB "
              "budget (%s)\n",
              rss / 1048576.0, file_bytes / 1048576.0, kv_bytes / 1048576.0, budget / 1048576.0,
              rss <= budget ? "within" : "over");
  return 0;
}

}  // namespace

void AddBenchEngineCommand(CLI::App& app, int* exit_code) {
  auto flags = std::make_shared<Flags>();
  CLI::App* command = app.add_subcommand(
      "bench-engine", "Measure prefill tokens/s per chunk, decode tokens/s and peak memory on one model");
  command->add_option("--model", flags->model, "GGUF model")->required()->check(CLI::ExistingFile);
  command->add_option("--threads", flags->threads, "Compute threads (0 = every core)")
      ->capture_default_str()
      ->check(CLI::Range(0, kMaxThreads));
  command->add_option("--context", flags->context,
                      "Context tokens to prefill; 0 = 1024, or less to fit the model's trained context")
      ->capture_default_str()
      ->check(CLI::Range(0, 1 << 20));
  command->add_option("--chunk", flags->chunk, "Tokens per prefill call; one row per chunk")
      ->capture_default_str()
      ->check(CLI::Range(1, 1 << 20));
  command->add_option("--decode", flags->decode, "Tokens to decode after the prefill")
      ->capture_default_str()
      ->check(CLI::Range(0, 1 << 16));
  command->add_option("--seed", flags->seed, "Seed of the random token ids")->capture_default_str();
  command->add_flag("--json", flags->json, "Print JSON instead of a table");
  command->callback([flags, exit_code] { *exit_code = RunBenchEngine(*flags); });
}

}  // namespace sparkv::cli
