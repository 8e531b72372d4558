// `sparkv run` and `sparkv profile`: the device side.
#include <cstdio>
#include <memory>

#include "cli/cli_util.h"
#include "cli/commands.h"
#include "cli/report.h"
#include "common/log.h"
#include "kv/chunk_key.h"
#include "model/chat_template.h"
#include "plan/planner.h"
#include "runtime/profiler.h"
#include "runtime/session.h"
#include "runtime/strategy.h"

namespace sparkv::cli {
namespace {

// Tokenizes the query for --chat: one user message in the model's chat template, then the
// opening of the assistant's turn. There is no BOS, because the query continues the context.
Result<std::vector<TokenId>> ChatQueryTokens(const Model& model, const std::string& query) {
  SPARKV_ASSIGN_OR_RETURN(Tokenizer tokenizer, Tokenizer::Create(model.vocab()));
  const ChatMessage message{"user", query};
  Result<std::vector<TokenId>> ids = EncodeChat(tokenizer, std::span(&message, 1), /*add_generation_prompt=*/true);
  if (!ids.ok()) return ids.status().WithContext("--chat");
  // The chatml and Llama 3 markers are special tokens of the models that use them. A vocabulary
  // without the end-of-turn one spells every marker as text, and generation cannot stop there.
  const Vocab& vocab = model.vocab();
  Result<ChatFamily> family = DetectChatFamily(vocab.chat_template);
  const char* end_of_turn = !family.ok()                     ? nullptr
                            : *family == ChatFamily::kChatml ? "<|im_end|>"
                            : *family == ChatFamily::kLlama3 ? "<|eot_id|>"
                                                             : nullptr;
  if (end_of_turn != nullptr) {
    bool found = false;
    for (int32_t i = 0; i < vocab.size() && !found; ++i) {
      found = vocab.pieces[i] == end_of_turn &&
              (vocab.types[i] == TokenType::kControl || vocab.types[i] == TokenType::kUserDefined);
    }
    if (!found) {
      SPARKV_LOG_WARN("--chat: the %s template's %s is not a special token of this vocabulary, so the turn markers "
                      "are spelled as text and generation will not stop at the end of the turn",
                      ChatFamilyName(*family), end_of_turn);
    }
  }
  return ids;
}

}  // namespace

void AddRunCommand(CLI::App& app, int* exit_code) {
  struct Flags {
    std::string model;
    std::string server;
    std::string text;
    std::string tokens;
    std::string query = "\n";
    std::string query_tokens;
    std::string strategy = "hybrid";
    std::string levels = "f16";
    int32_t chunk_tokens = kDefaultChunkTokens;
    int32_t n_generate = 16;
    int threads = 0;
    float temperature = 0.0f;
    float top_p = 1.0f;
    uint64_t seed = 0;
    std::string profile;
    double timeout_s = 60.0;
    double race_ratio = 0.0;  // 0 = the strategy's own
    double bandwidth_mbit = 0.0;
    double emulate_slowdown = 1.0;
    bool json = false;
    bool chat = false;
  };
  auto flags = std::make_shared<Flags>();
  std::string strategies = "hybrid (= sparkv-adaptive)";
  for (const std::string& name : StrategyNames()) strategies += ", " + name;
  CLI::App* command = app.add_subcommand(
      "run", "Load a context's KV (streaming and computing at once), prefill the query and generate");
  command->add_option("--model", flags->model, "GGUF model")->required()->check(CLI::ExistingFile);
  command->add_option("--server", flags->server, "Base URL of the store, e.g. http://127.0.0.1:8080");
  auto* text = command->add_option("--text", flags->text, "Context as a UTF-8 text file")->check(CLI::ExistingFile);
  auto* tokens = command->add_option("--tokens", flags->tokens, "Context as whitespace-separated token ids (BOS first)")
                     ->check(CLI::ExistingFile);
  text->excludes(tokens);
  auto* query = command->add_option("--query", flags->query,
                                    "Query as text (not a file), appended after the context (default: a newline)");
  auto* query_tokens = command->add_option(
      "--query-tokens", flags->query_tokens,
      "Query as token ids (no BOS): inline, e.g. '403 261' or 403,261, or a file of whitespace-separated ids as for "
      "--tokens; an existing file of that name wins over reading the value as ids")
      ->type_name("IDS|FILE");
  query->excludes(query_tokens);
  command->add_flag("--chat", flags->chat,
                    "Wrap --query as one user message in the model's chat template, followed by the opening of the "
                    "assistant's reply; the context stays as given")
      ->needs(query)
      ->excludes(query_tokens);
  command->add_option("--strategy", flags->strategy, "How to load the context: " + strategies)->capture_default_str();
  command->add_option("--levels", flags->levels, "Codec levels the plan may stream, comma-separated (f16 is lossless)")
      ->capture_default_str();
  command->add_option("--chunk-tokens", flags->chunk_tokens, "Tokens per chunk; must match the ingest")
      ->capture_default_str()
      ->check(CLI::Range(1, kMaxChunkTokens));
  command->add_option("-n,--n-generate", flags->n_generate, "Tokens to generate, the first included")
      ->capture_default_str()
      ->check(CLI::Range(1, 1 << 20));
  command->add_option("--threads", flags->threads, "Compute threads (0 = every core)")->capture_default_str()->check(CLI::Range(0, kMaxThreads));
  command->add_option("--temperature", flags->temperature, "Sampling temperature; 0 = greedy")
      ->capture_default_str()
      ->check(CLI::Validator(
          [](std::string& value) { return CheckNumberIn(value, 0.0, 100.0, "give e.g. 0.8, or 0 for greedy"); },
          "T in [0, 100]"));
  command->add_option("--top-p", flags->top_p, "Nucleus sampling mass in (0, 1]")
      ->capture_default_str()
      ->check(CLI::Validator(
          [](std::string& value) { return CheckNumberIn(value, 1e-6, 1.0, "give e.g. 0.9, or 1 to sample from all"); },
          "P in (0, 1]"));
  command->add_option("--seed", flags->seed, "Sampling seed")->capture_default_str();
  command->add_option("--profile", flags->profile, "Saved device profile (JSON); default: measured once and cached")
      ->check(CLI::ExistingFile);
  command->add_option("--race-ratio", flags->race_ratio,
                      "hybrid races a chunk on the compute path when computing it takes at most this many times as "
                      "long as streaming it (default 3; 1 saves energy on a steady link)")
      ->check(CLI::Validator(CheckRaceRatio, "RATIO in [1, 100]"));
  command->add_option("--timeout", flags->timeout_s, "Seconds an HTTP request may receive no byte before it is abandoned")
      ->capture_default_str()
      ->check(CLI::Validator(
          [](std::string& value) {
            return CheckNumberIn(value, 0.001, 86400.0, "give seconds such as 60, at most a day");
          },
          "SECONDS in [0.001, 86400]"));
  command->add_option("--bandwidth-mbit", flags->bandwidth_mbit,
                      "Bandwidth to plan with, Mbit/s; 0 = measure with a short probe")
      ->capture_default_str()
      ->check(CLI::Validator(
          [](std::string& value) {
            return CheckNumberIn(value, 0.0, 1e6, "give a rate such as 20, or 0 to measure it");
          },
          "MBIT in [0, 1e6]"));
  command->add_option("--emulate-slowdown", flags->emulate_slowdown,
                      "Run the engine this many times slower than this device, waiting after each forward pass, to try "
                      "the adaptation to a slow device; the plan still starts from the device's profile")
      ->capture_default_str()
      ->check(CLI::Validator(CheckEmulatedSlowdown, "FACTOR in [1, 100]"));
  command->add_flag("--json", flags->json, "Print one JSON object instead of text");

  command->callback([flags, exit_code, query_tokens] {
    // Checked before the model loads and the profile is measured, which can take a while.
    Result<std::vector<std::string>> split = SplitList(flags->levels, "--levels");
    if (!split.ok()) return void(*exit_code = ReportError(split.status()));
    const std::vector<std::string> levels = std::move(split).value();
    if (levels.empty()) {
      return void(*exit_code = ReportError(InvalidArgumentError(
                      "--levels '" + flags->levels + "' names no codec; pass --levels f16 (lossless) or e.g. f16,q8")));
    }
    RunOptions options;
    options.server_url = flags->server;
    options.strategy = flags->strategy;
    options.levels = levels;
    options.chunk_tokens = flags->chunk_tokens;
    options.n_generate = flags->n_generate;
    options.sampling = {flags->temperature, flags->top_p, flags->seed};
    options.timeout_s = flags->timeout_s;
    options.race_ratio = flags->race_ratio;
    options.bandwidth_hint_mbit = flags->bandwidth_mbit;
    if (Status checked = CheckRunOptions(options); !checked.ok()) return void(*exit_code = ReportError(checked));

    Result<std::unique_ptr<Model>> model = Model::Load(flags->model);
    if (!model.ok()) return void(*exit_code = ReportError(model.status()));
    Result<std::vector<TokenId>> context = ReadContext(**model, flags->text, flags->tokens);
    if (!context.ok()) return void(*exit_code = ReportError(context.status()));
    // Given but empty is an error, not the default query.
    Result<std::vector<TokenId>> query_ids = flags->chat                     ? ChatQueryTokens(**model, flags->query)
                                             : query_tokens->count() == 0 ? TokenizeQuery(**model, flags->query)
                                                                          : InlineOrFileTokenIds(flags->query_tokens, "--query-tokens");
    if (!query_ids.ok()) return void(*exit_code = ReportError(query_ids.status()));
    if (Status in_vocab = CheckTokenIds(*query_ids, (*model)->hparams().n_vocab, "--query-tokens"); !in_vocab.ok()) {
      return void(*exit_code = ReportError(in_vocab));
    }

    const int64_t n_positions = static_cast<int64_t>(context->size() + query_ids->size()) + flags->n_generate;
    Result<std::unique_ptr<Engine>> engine = MakeEngine(**model, flags->threads, static_cast<int32_t>(n_positions));
    if (!engine.ok()) return void(*exit_code = ReportError(engine.status()));

    ProfileOptions profile_options;
    profile_options.chunk_tokens = flags->chunk_tokens;
    Result<Profile> profile = flags->profile.empty()
                                  ? LoadOrMeasureProfile(CacheDir() + "/profiles", **model, **engine, profile_options)
                                  : LoadProfile(flags->profile, AllCodecNames());
    if (!profile.ok()) {
      return void(*exit_code = ReportError(flags->profile.empty() ? profile.status()
                                                                  : profile.status().WithContext("--profile")));
    }
    if (!flags->profile.empty() && !profile->model_fingerprint_hex.empty() &&
        profile->model_fingerprint_hex != (*model)->fingerprint().Hex()) {
      return void(*exit_code = ReportError(InvalidArgumentError(
                      "--profile " + flags->profile + " was measured for model " + profile->model_fingerprint_hex +
                      ", not for " + flags->model + " (" + (*model)->fingerprint().Hex() +
                      "); measure one with `sparkv profile --model " + flags->model +
                      " -o FILE`, or leave out --profile to use the cached one")));
    }
    if (!flags->profile.empty()) {
      // A profile from an older build lacks the newer codecs. Planning them with no decode cost
      // would favour the slow entropy-coded levels. The given file is not modified.
      Result<int> added = AddMissingDecodeCosts(*profile, **model, **engine, flags->chunk_tokens, levels);
      if (!added.ok()) return void(*exit_code = ReportError(added.status()));
      if (*added > 0) SPARKV_LOG_INFO("measured %d decode costs missing from %s", *added, flags->profile.c_str());
    }

    // After the profile, which describes the device itself.
    if (Status slow = (*engine)->set_emulated_slowdown(flags->emulate_slowdown); !slow.ok()) {
      return void(*exit_code = ReportError(slow.WithContext("--emulate-slowdown")));
    }

    WarnUnusedRaceRatio(flags->race_ratio, {flags->strategy});
    Result<RunReport> report = RunRequest(**model, **engine, *profile, *context, *query_ids, options);
    if (!report.ok()) return void(*exit_code = ReportError(report.status()));

    const std::string generated = GeneratedText(**model, *report);
    if (flags->json) {
      std::printf("%s\n", DumpJson(RunReportJson(*report, generated)).c_str());
    } else {
      PrintRunReport(*report, generated);
    }
  });
}

void AddProfileCommand(CLI::App& app, int* exit_code) {
  struct Flags {
    std::string model;
    int threads = 0;
    int32_t chunk_tokens = kDefaultChunkTokens;
    int32_t max_position = 2048;
    std::string out;
  };
  auto flags = std::make_shared<Flags>();
  CLI::App* command = app.add_subcommand(
      "profile", "Measure this device's prefill and blob decode costs and fit the planner's cost model");
  command->add_option("--model", flags->model, "GGUF model")->required()->check(CLI::ExistingFile);
  command->add_option("--threads", flags->threads, "Compute threads (0 = every core)")->capture_default_str()->check(CLI::Range(0, kMaxThreads));
  command->add_option("--chunk-tokens", flags->chunk_tokens, "Chunk size the profile is for")
      ->capture_default_str()
      ->check(CLI::Range(1, kMaxChunkTokens));
  command->add_option("--max-position", flags->max_position, "Largest context position to measure at")
      ->capture_default_str()
      ->check(CLI::Range(64, 1 << 20));
  command->add_option("-o,--output", flags->out, "Profile JSON to write; default: print it");
  command->callback([flags, exit_code] {
    Result<std::unique_ptr<Model>> model = Model::Load(flags->model);
    if (!model.ok()) return void(*exit_code = ReportError(model.status()));
    Result<std::unique_ptr<Engine>> engine = MakeEngine(**model, flags->threads, flags->max_position);
    if (!engine.ok()) return void(*exit_code = ReportError(engine.status()));
    ProfileOptions options;
    options.chunk_tokens = flags->chunk_tokens;
    FitReport fit;
    Result<Profile> profile = MeasureProfile(**model, **engine, options, &fit);
    if (!profile.ok()) return void(*exit_code = ReportError(profile.status()));
    std::printf("prefill cost t(b, e) = (e - b) * (%.4g + %.4g * (b + e) / 2) + %.4g s; fit rms %.3g s, max error %.1f%%\n",
                profile->compute.a, profile->compute.c, profile->compute.d, fit.rms_seconds,
                100.0 * fit.max_relative_error);
    for (const DecodeCost& decode : profile->decode) {
      std::printf("decode %-6s %.4g s per chunk + %.4g s per byte\n", decode.codec.c_str(), decode.seconds_per_chunk,
                  decode.seconds_per_byte);
    }
    if (flags->out.empty()) {
      std::printf("%s\n", ProfileToJson(*profile).c_str());
    } else {
      *exit_code = ReportError(SaveProfile(*profile, flags->out));
    }
  });
}

}  // namespace sparkv::cli
