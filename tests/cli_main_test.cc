// The `sparkv` command line before any subcommand runs: a mistyped subcommand is named back with
// the list of known ones.
#include <gtest/gtest.h>
#include <sys/wait.h>

#include "test_support.h"

namespace sparkv {
namespace {

TEST(CliMainTest, UnknownSubcommandIsNamed) {
  for (const char* args : {"frobnicate", "--log-level warn simulat --rate 3"}) {
    const auto [status, out] = testing::RunShell(testing::SparkvBinary() + " " + args + " 2>&1");
    EXPECT_NE(status, 0) << args;
    const std::string name = std::string(args).find("simulat") != std::string::npos ? "simulat" : "frobnicate";
    EXPECT_NE(out.find("unknown subcommand '" + name + "'"), std::string::npos) << out;
    EXPECT_NE(out.find("demo, run, ingest"), std::string::npos) << out;
  }
}

TEST(CliMainTest, KnownSubcommandsStillParse) {
  const auto [status, out] = testing::RunShell(testing::SparkvBinary() + " --log-level warn simulate --help 2>&1");
  EXPECT_EQ(status, 0) << out;
  EXPECT_NE(out.find("--strategies"), std::string::npos) << out;
  const auto [version_status, version] = testing::RunShell(testing::SparkvBinary() + " --version 2>&1");
  EXPECT_EQ(version_status, 0) << version;
  EXPECT_NE(version.find("sparkv "), std::string::npos) << version;
}

// Each subcommand takes --log-level after its name too, and lists it in its help.
TEST(CliMainTest, EverySubcommandTakesLogLevel) {
  for (const char* command : {"demo", "run", "ingest", "serve", "profile", "simulate", "bench", "bench-engine",
                              "convert-llama2c", "make-model", "eval-codec"}) {
    const auto [status, out] = testing::RunShell(testing::SparkvBinary() + " " + command + " --help 2>&1");
    EXPECT_EQ(status, 0) << command << ": " << out;
    EXPECT_NE(out.find("--log-level"), std::string::npos) << command << ": " << out;
  }
  // Parsed, not only listed: a bad level is named, before the subcommand runs.
  const auto [status, out] = testing::RunShell(testing::SparkvBinary() + " make-model --log-level chatty -o /dev/null 2>&1");
  EXPECT_NE(status, 0) << out;
  EXPECT_NE(out.find("chatty"), std::string::npos) << out;
  EXPECT_EQ(out.rfind("sparkv: error: ", 0), 0u) << "parse errors read like every other error: " << out;
}

// A command line that does not parse exits with 2, a command that fails while running with 1.
TEST(CliMainTest, ExitStatusTellsUsageFromFailure) {
  for (const char* args : {" bench", " eval-codec --model /nonexistent.gguf", " simulate --no-such-flag",
                           " serve --store . --rate -1", " run --model"}) {
    const auto [status, out] = testing::RunShell(testing::SparkvBinary() + args + " 2>&1");
    ASSERT_TRUE(WIFEXITED(status)) << args;
    EXPECT_EQ(WEXITSTATUS(status), 2) << args << ": " << out;
  }
  const auto [status, out] =
      testing::RunShell(testing::SparkvBinary() + " convert-llama2c /dev/null -o /dev/null 2>&1");
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 1) << out;
}

TEST(CliMainTest, LogLevelGivenTwiceTakesTheLast) {
  // A bad subcommand flag after both levels: the error is printed whatever the level, and the
  // parse must get that far instead of rejecting the second --log-level.
  for (const char* args : {" --log-level debug --log-level off make-model --shape nope -o /dev/null",
                           " make-model --log-level debug --log-level off --shape nope -o /dev/null"}) {
    const auto [status, out] = testing::RunShell(testing::SparkvBinary() + args + " 2>&1");
    EXPECT_NE(status, 0) << args << ": " << out;
    EXPECT_EQ(out.find("At Most 1"), std::string::npos) << args << ": " << out;
    EXPECT_NE(out.find("nope"), std::string::npos) << args << ": " << out;
  }
}

}  // namespace
}  // namespace sparkv
