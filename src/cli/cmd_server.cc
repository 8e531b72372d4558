// `sparkv ingest` and `sparkv serve`: the server side.
#include <signal.h>

#include <cstdio>
#include <filesystem>
#include <memory>

#include "cli/cli_util.h"
#include "cli/commands.h"
#include "common/format.h"
#include "common/log.h"
#include "kv/chunk_key.h"
#include "kv/codec.h"
#include "net/server.h"
#include "runtime/ingest.h"

namespace sparkv::cli {

void AddIngestCommand(CLI::App& app, int* exit_code) {
  struct Flags {
    std::string model;
    std::string text;
    std::string tokens;
    std::string store;
    int32_t chunk_tokens = kDefaultChunkTokens;
    std::string codecs = "f16,q8";
    int threads = 0;
  };
  auto flags = std::make_shared<Flags>();
  CLI::App* command = app.add_subcommand(
      "ingest", "Prefill a context and write its KV chunks, at the levels of --codecs, into a store");
  command->add_option("--model", flags->model, "GGUF model, the same file the devices run")->required()->check(CLI::ExistingFile);
  auto* text = command->add_option("--text", flags->text, "Context as a UTF-8 text file")->check(CLI::ExistingFile);
  auto* tokens = command->add_option("--tokens", flags->tokens, "Context as whitespace-separated token ids (BOS first)")
                     ->check(CLI::ExistingFile);
  text->excludes(tokens);
  command->add_option("--store", flags->store, "Store folder to write (created if missing)")->required();
  command->add_option("--chunk-tokens", flags->chunk_tokens, "Tokens per chunk; devices must use the same")
      ->capture_default_str()
      ->check(CLI::Range(1, kMaxChunkTokens));
  command->add_option("--codecs", flags->codecs, "Comma-separated codec levels to encode: " + CodecNames())
      ->capture_default_str();
  command->add_option("--threads", flags->threads, "Prefill threads (0 = every core)")->capture_default_str()->check(CLI::Range(0, kMaxThreads));
  command->callback([flags, exit_code] {
    // Checked before the model loads, which can take a while for a large model.
    Result<std::vector<std::string>> codecs = SplitList(flags->codecs, "--codecs");
    if (!codecs.ok()) return void(*exit_code = ReportError(codecs.status()));
    if (codecs->empty()) {
      return void(*exit_code = ReportError(InvalidArgumentError(
                      "--codecs '" + flags->codecs + "' names no codec; pass e.g. --codecs f16,q8")));
    }
    if (Result<std::vector<const Codec*>> found = FindIngestCodecs(*codecs); !found.ok()) {
      return void(*exit_code = ReportError(found.status()));
    }
    if (std::error_code error; std::filesystem::exists(flags->store, error) &&
                               !std::filesystem::is_directory(flags->store, error)) {
      return void(*exit_code = ReportError(InvalidArgumentError(
                      "--store " + flags->store + " is a file, not a folder; give a folder for the store")));
    }

    Result<std::unique_ptr<Model>> model = Model::Load(flags->model);
    if (!model.ok()) return void(*exit_code = ReportError(model.status()));
    Result<std::vector<TokenId>> context = ReadContext(**model, flags->text, flags->tokens);
    if (!context.ok()) return void(*exit_code = ReportError(context.status()));
    Result<std::unique_ptr<Engine>> engine =
        MakeEngine(**model, flags->threads, static_cast<int32_t>(context->size()));
    if (!engine.ok()) return void(*exit_code = ReportError(engine.status()));

    IngestOptions options;
    options.chunk_tokens = flags->chunk_tokens;
    options.codecs = std::move(codecs).value();
    Result<IngestReport> report = IngestContext(**model, **engine, *context, options, flags->store);
    if (!report.ok()) return void(*exit_code = ReportError(report.status()));

    std::printf("context %s: %d tokens in %s of %d, prefill %.2f s\n", report->manifest.context_key.Hex().c_str(),
                report->manifest.n_tokens,
                FormatCount(static_cast<long long>(report->manifest.chunks.size()), "chunk", "chunks").c_str(),
                report->manifest.chunk_tokens, report->prefill_s);
    for (const auto& [codec, bytes] : report->bytes_per_codec) {
      std::printf("  %-6s %10.2f MiB  (%.1f bytes per token)\n", codec.c_str(), bytes / 1048576.0,
                  static_cast<double>(bytes) / report->manifest.n_tokens);
    }
    for (const std::string& warning : report->warnings) std::fprintf(stderr, "sparkv: warning: %s\n", warning.c_str());
  });
}

void AddServeCommand(CLI::App& app, int* exit_code) {
  auto options = std::make_shared<ServerOptions>();
  CLI::App* command = app.add_subcommand("serve", "Serve a store over HTTP until interrupted (Ctrl-C)");
  command->add_option("--store", options->root, "Store folder written by `sparkv ingest`")->required()->check(CLI::ExistingDirectory);
  command->add_option("--host", options->host, "Address to listen on")->capture_default_str();
  command->add_option("--port", options->port, "Port; 0 picks a free one")->capture_default_str()->check(CLI::Range(0, 65535));
  command->add_option("--rate", options->rate_mbit, "Pace response bodies to this many Mbit/s; 0 = unlimited")
      ->capture_default_str()
      ->check(CLI::Validator(
          [](std::string& value) { return CheckNumberIn(value, 0.0, 1e6, "give 0 (unlimited) or a rate such as 20"); },
          "MBIT in [0, 1e6]"));
  command->add_option("--trace", options->trace_path, "Pace by a mahimahi trace file instead of --rate")
      ->check(CLI::ExistingFile);
  command->add_option("--rtt-ms", options->rtt_ms, "Delay before the first byte of each response, ms")
      ->capture_default_str()
      ->check(CLI::Validator(
          [](std::string& value) {
            return CheckNumberIn(value, 0.0, 3.6e6, "give a delay in ms such as 50, at most an hour");
          },
          "MS in [0, 3.6e6]"));
  command->callback([options, exit_code] {
    // Block the stop signals in every thread, so that this one can wait for them.
    sigset_t stop_signals;
    sigemptyset(&stop_signals);
    sigaddset(&stop_signals, SIGINT);
    sigaddset(&stop_signals, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);

    Result<std::unique_ptr<StoreServer>> server = StoreServer::Start(*options);
    if (!server.ok()) return void(*exit_code = ReportError(server.status()));
    if (std::error_code error; !std::filesystem::is_directory(options->root + "/v1/contexts", error)) {
      SPARKV_LOG_WARN("%s has no v1/contexts folder, so it holds no ingested context and every request will get "
                      "404; run `sparkv ingest --store %s` first, or pass the folder ingest wrote",
                      options->root.c_str(), options->root.c_str());
    }
    std::printf("serving %s at %s\n", options->root.c_str(), (*server)->base_url().c_str());
    std::fflush(stdout);

    int signal_number = 0;
    sigwait(&stop_signals, &signal_number);
    SPARKV_LOG_INFO("received signal %d, stopping", signal_number);
    (*server)->Stop();
  });
}

}  // namespace sparkv::cli
