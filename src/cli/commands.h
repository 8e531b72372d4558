// Subcommands of the `sparkv` executable. Each Add* function declares one subcommand's flags
// (name, default and help, once) and the code that runs it; `exit_code` receives its result.
#pragma once

#include <CLI/CLI.hpp>

namespace sparkv::cli {

void AddConvertCommand(CLI::App& app, int* exit_code);
void AddMakeModelCommand(CLI::App& app, int* exit_code);
void AddIngestCommand(CLI::App& app, int* exit_code);
void AddServeCommand(CLI::App& app, int* exit_code);
void AddRunCommand(CLI::App& app, int* exit_code);
void AddProfileCommand(CLI::App& app, int* exit_code);
void AddDemoCommand(CLI::App& app, int* exit_code);
void AddSimulateCommand(CLI::App& app, int* exit_code);
void AddBenchCommand(CLI::App& app, int* exit_code);
void AddBenchEngineCommand(CLI::App& app, int* exit_code);
void AddEvalCodecCommand(CLI::App& app, int* exit_code);

}  // namespace sparkv::cli
