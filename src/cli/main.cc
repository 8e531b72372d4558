// The `sparkv` command: one subcommand per role (convert, ingest, serve, run, demo, ...).
#include <CLI/CLI.hpp>

#include <cstdio>

int main(int argc, char** argv) {
  CLI::App app{"SparKV: load a reused context's KV cache by streaming and computing at once"};
  app.set_version_flag("--version", "sparkv 0.1.0");
  app.require_subcommand(1);
  CLI11_PARSE(app, argc, argv);
  return 0;
}
