// `sparkv eval-codec`: the quality of each codec level against exact KV, as a table or JSON.
#include <algorithm>
#include <cstdio>
#include <memory>

#include "cli/cli_util.h"
#include "cli/commands.h"
#include "common/format.h"
#include "common/log.h"
#include "kv/chunk_key.h"
#include "runtime/codec_eval.h"

namespace sparkv::cli {
namespace {

nlohmann::json CodecEvalJson(const CodecEvalReport& report, const std::string& model_path) {
  nlohmann::json levels = nlohmann::json::array();
  for (const CodecLevelQuality& q : report.levels) {
    levels.push_back({{"level", q.level},
                      {"payload_bytes", q.payload_bytes},
                      {"bytes_per_token", q.bytes_per_token},
                      {"size_vs_f16", q.size_vs_f16},
                      {"mean_kl", q.mean_kl},
                      {"max_kl", q.max_kl},
                      {"top1_agreement", q.top1_agreement},
                      {"identical_prefix", q.identical_prefix},
                      {"ppl_exact", q.ppl_exact},
                      {"ppl_level", q.ppl_level},
                      {"ppl_change_pct", q.ppl_change_pct}});
  }
  return {{"model", model_path},
          {"kv_type", report.kv_type == KvElemType::kF32 ? "f32" : "f16"},
          {"n_context", report.n_context},
          {"n_continuation", report.n_continuation},
          {"chunk_tokens", report.chunk_tokens},
          {"n_chunks", report.n_chunks},
          {"f16_bytes_per_token", report.f16_bytes_per_token},
          {"greedy_continuation", report.greedy_continuation},
          {"sampled_continuation", report.sampled_continuation},
          {"levels", levels}};
}

void PrintCodecEvalTable(const CodecEvalReport& report) {
  std::printf("context %d tokens in %s of %d, continuation %d tokens, %s KV cache\n", report.n_context,
              FormatCount(report.n_chunks, "chunk", "chunks").c_str(), report.chunk_tokens, report.n_continuation,
              report.kv_type == KvElemType::kF32 ? "f32" : "f16");
  std::printf("| level | bytes/token | vs f16 | mean KL | max KL | top-1 %% | identical prefix | ppl exact | ppl level | "
              "ppl change %% |\n");
  std::printf("|---|---|---|---|---|---|---|---|---|---|\n");
  for (const CodecLevelQuality& q : report.levels) {
    std::printf("| %s | %.1f | %.3fx | %.3g | %.3g | %.1f | %d / %d | %.4f | %.4f | %+.3f |\n", q.level.c_str(),
                q.bytes_per_token, q.size_vs_f16, q.mean_kl, q.max_kl, 100.0 * q.top1_agreement, q.identical_prefix,
                report.n_continuation, q.ppl_exact, q.ppl_level, q.ppl_change_pct);
  }
  std::printf("KL in nats, teacher-forced on the exact greedy continuation; perplexity of a temperature-1 sample\n");
}

}  // namespace

void AddEvalCodecCommand(CLI::App& app, int* exit_code) {
  struct Flags {
    std::string model;
    std::string tokens;
    int32_t generate = 256;
    int32_t continuation = 200;
    std::string levels;
    int32_t chunk_tokens = 64;
    uint64_t seed = 0;
    std::string kv_type = "f16";
    int threads = 0;
    bool json = false;
  };
  auto flags = std::make_shared<Flags>();
  CLI::App* command = app.add_subcommand(
      "eval-codec", "Measure each codec level's size and its effect on next-token predictions against exact KV");
  command->add_option("--model", flags->model, "GGUF model")->required()->check(CLI::ExistingFile);
  auto* tokens = command->add_option("--tokens", flags->tokens, "Context as whitespace-separated token ids (BOS first)")
                     ->check(CLI::ExistingFile);
  auto* generate = command->add_option("--generate", flags->generate,
                                       "Context of N tokens sampled from the model with --seed, BOS first "
                                       "(used when --tokens is absent)")
                       ->capture_default_str()
                       ->check(CLI::Range(1, 1 << 20));
  tokens->excludes(generate);
  command->add_option("--continuation", flags->continuation, "Tokens scored after the context")
      ->capture_default_str()
      ->check(CLI::Range(1, 1 << 20));
  CLI::Option* levels_option =
      command->add_option("--levels", flags->levels, "Codec levels, comma-separated (default: every codec)");
  command->add_option("--chunk-tokens", flags->chunk_tokens, "Tokens per encoded chunk, as in ingest")
      ->capture_default_str()
      ->check(CLI::Range(1, kMaxChunkTokens));
  command->add_option("--seed", flags->seed, "Seed of the generated context and of the sampled continuation")
      ->capture_default_str();
  command->add_option("--kv-type", flags->kv_type, "Element type of the KV cache: f16 or f32")
      ->capture_default_str()
      ->check(CLI::IsMember({"f16", "f32"}));
  command->add_option("--threads", flags->threads, "Compute threads (0 = every core)")
      ->capture_default_str()
      ->check(CLI::Range(0, kMaxThreads));
  command->add_flag("--json", flags->json, "Print one JSON object instead of a table");

  command->callback([flags, exit_code, levels_option] {
    Result<std::unique_ptr<Model>> model = Model::Load(flags->model);
    if (!model.ok()) return void(*exit_code = ReportError(model.status()));
    const int32_t n_ctx = (*model)->hparams().n_ctx_train;
    // Checked before any prefill: an empty list would silently mean every codec, and a repeated
    // level would be evaluated and printed twice.
    Result<std::vector<std::string>> split = SplitList(flags->levels, "--levels");
    if (!split.ok()) return void(*exit_code = ReportError(split.status()));
    const std::vector<std::string> levels = std::move(split).value();
    if (levels_option->count() > 0 && levels.empty()) {
      return void(*exit_code = ReportError(InvalidArgumentError(
                      "--levels '" + flags->levels + "' names no codec; omit it to evaluate every codec")));
    }
    for (size_t i = 0; i < levels.size(); ++i) {
      if (std::find(levels.begin(), levels.begin() + i, levels[i]) != levels.begin() + i) {
        return void(*exit_code = ReportError(InvalidArgumentError(
                        "--levels lists '" + levels[i] + "' more than once; list each level once")));
      }
    }

    // Checked here as well as in EvaluateCodecs so the message names the flags, and before a
    // generated context is sampled.
    Result<std::vector<TokenId>> context = std::vector<TokenId>{};
    if (flags->tokens.empty()) {
      if (static_cast<int64_t>(flags->generate) + flags->continuation > n_ctx) {
        return void(*exit_code = ReportError(InvalidArgumentError(
                        "--generate " + std::to_string(flags->generate) + " plus --continuation " +
                        std::to_string(flags->continuation) + " exceeds the model's context of " +
                        std::to_string(n_ctx) + " tokens: lower one of them")));
      }
      context = SampleContext(**model, flags->generate, flags->seed, flags->threads);
    } else {
      context = ReadTokenFile(flags->tokens);
      if (context.ok()) {
        const Status in_vocab = CheckTokenIds(*context, (*model)->hparams().n_vocab, "--tokens " + flags->tokens);
        if (!in_vocab.ok()) return void(*exit_code = ReportError(in_vocab));
        const Vocab& vocab = (*model)->vocab();
        if (vocab.add_bos && !context->empty() && context->front() != vocab.bos_id) {
          SPARKV_LOG_WARN("--tokens %s starts with token %d, not BOS (%d), which this model expects first; the "
                          "figures describe a context without it",
                          flags->tokens.c_str(), context->front(), vocab.bos_id);
        }
      }
    }
    if (!context.ok()) return void(*exit_code = ReportError(context.status()));
    if (static_cast<int64_t>(context->size()) + flags->continuation > n_ctx) {
      return void(*exit_code = ReportError(InvalidArgumentError(
                      "the " + std::to_string(context->size()) + " tokens of --tokens plus --continuation " +
                      std::to_string(flags->continuation) + " exceed the model's context of " +
                      std::to_string(n_ctx) + " tokens: lower --continuation or shorten the file")));
    }

    CodecEvalOptions options;
    options.levels = levels;
    options.chunk_tokens = flags->chunk_tokens;
    options.n_continuation = flags->continuation;
    options.seed = flags->seed;
    options.n_threads = flags->threads;
    options.kv_type = flags->kv_type == "f32" ? KvElemType::kF32 : KvElemType::kF16;
    Result<CodecEvalReport> report = EvaluateCodecs(**model, *context, options);
    if (!report.ok()) return void(*exit_code = ReportError(report.status()));

    if (flags->json) {
      std::printf("%s\n", DumpJson(CodecEvalJson(*report, flags->model)).c_str());
    } else {
      PrintCodecEvalTable(*report);
    }
  });
}

}  // namespace sparkv::cli
