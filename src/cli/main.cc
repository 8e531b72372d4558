// The `sparkv` command: one subcommand per role (convert, ingest, serve, run, demo, ...).
#include <CLI/CLI.hpp>

#include <cstdio>
#include <string>
#include <string_view>

#include "cli/cli_util.h"
#include "cli/commands.h"
#include "common/log.h"

int main(int argc, char** argv) {
  CLI::App app{"SparKV: load a reused context's KV cache by streaming and computing at once.\n"
               "Start with `sparkv demo`; `sparkv SUBCOMMAND --help` lists each subcommand's flags."};
  app.set_version_flag("--version", "sparkv 0.1.0");
  app.require_subcommand(1);
  sparkv::SetLogLevel(sparkv::LogLevel::kInfo);
  // Given before or after the subcommand (`sparkv --log-level debug run` or `sparkv run --log-level
  // debug`), so each subcommand declares it too; the last one given wins.
  const auto add_log_level = [](CLI::App& command) {
    command.add_option("--log-level", "Log verbosity: debug, info, warn, error or off (default: info)")
        ->check(CLI::IsMember({"debug", "info", "warn", "error", "off"}))
        ->multi_option_policy(CLI::MultiOptionPolicy::TakeAll)
        ->each([](const std::string& text) {
          sparkv::LogLevel level;
          if (sparkv::ParseLogLevel(text, &level)) sparkv::SetLogLevel(level);
        });
  };
  add_log_level(app);

  int exit_code = 0;
  sparkv::cli::AddDemoCommand(app, &exit_code);
  sparkv::cli::AddRunCommand(app, &exit_code);
  sparkv::cli::AddIngestCommand(app, &exit_code);
  sparkv::cli::AddServeCommand(app, &exit_code);
  sparkv::cli::AddProfileCommand(app, &exit_code);
  sparkv::cli::AddSimulateCommand(app, &exit_code);
  sparkv::cli::AddBenchCommand(app, &exit_code);
  sparkv::cli::AddBenchEngineCommand(app, &exit_code);
  sparkv::cli::AddConvertCommand(app, &exit_code);
  sparkv::cli::AddMakeModelCommand(app, &exit_code);
  sparkv::cli::AddEvalCodecCommand(app, &exit_code);
  for (CLI::App* command : app.get_subcommands([](const CLI::App*) { return true; })) add_log_level(*command);

  // CLI11 reports an unknown subcommand as a missing one; name it and the known ones instead.
  for (int i = 1; i < argc; ++i) {
    const std::string_view arg = argv[i];
    if (arg == "--log-level") {
      ++i;  // its value
      continue;
    }
    if (arg.starts_with("-")) continue;
    std::string names;
    bool known = false;
    for (const CLI::App* command : app.get_subcommands([](const CLI::App*) { return true; })) {
      known = known || command->get_name() == arg;
      names += (names.empty() ? "" : ", ") + command->get_name();
    }
    if (!known) {
      return sparkv::cli::ReportError(sparkv::InvalidArgumentError(
          "unknown subcommand '" + std::string(arg) + "'; give one of " + names + " (`sparkv --help` describes each)"));
    }
    break;
  }

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& error) {
    // Help and version end the parse with exit code 0. Real errors read like every other error and
    // exit with 2, the usual status for a bad command line, whatever CLI11's own code for them.
    if (error.get_exit_code() == 0) return app.exit(error);
    std::fprintf(stderr, "sparkv: error: ");
    app.exit(error);
    return 2;
  }
  return exit_code;
}
