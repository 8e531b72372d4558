// Problems a first-time user of the `sparkv` command runs into, checked through the real binary.
// They cover token ids from a file or out of range, hand-edited profiles, early checks of
// --codecs, and the demo's cached profile; cli_simulate_test.cc covers --steps and list items.
#include <gtest/gtest.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "plan/cost_model.h"
#include "test_support.h"

namespace sparkv {
namespace {

using nlohmann::json;

bool Contains(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }

// Runs `sparkv run --strategy local` on stories260K with a five-token context, from the folder `dir`.
std::pair<int, std::string> RunLocal(const testing::TempDir& dir, const std::string& flags) {
  std::ofstream(dir.File("context.txt")) << "1 403 261 17 29";
  return testing::RunShell("cd " + dir.path() + " && " + testing::SparkvBinary() + " --log-level error run --model " +
                           testing::Stories260KGguf() + " --tokens context.txt --strategy local -n 2 --json " + flags +
                           " 2>&1");
}

// An existing file named like a token id is read as a file.
TEST(QueryTokensTest, ExistingFileWinsOverIds) {
  testing::TempDir dir;
  std::ofstream(dir.File("12")) << "403 261 17\n";
  const auto [status, out] = RunLocal(dir, "--query-tokens 12");
  ASSERT_EQ(status, 0) << out;
  EXPECT_EQ(json::parse(out)["n_query"], 3) << "the file holds three ids";

  // Without such a file the same value is one inline id.
  const auto [inline_status, inline_out] = RunLocal(dir, "--query-tokens 13");
  ASSERT_EQ(inline_status, 0) << inline_out;
  EXPECT_EQ(json::parse(inline_out)["n_query"], 1);

  // Commas separate inline ids as spaces do.
  const auto [comma_status, comma_out] = RunLocal(dir, "--query-tokens 403,261");
  ASSERT_EQ(comma_status, 0) << comma_out;
  EXPECT_EQ(json::parse(comma_out)["n_query"], 2);

  const auto [help_status, help] = testing::RunShell(testing::SparkvBinary() + " run --help 2>&1");
  ASSERT_EQ(help_status, 0) << help;
  EXPECT_TRUE(Contains(help, "an existing file of that name wins")) << help;
}

TEST(QueryTokensTest, OutOfVocabularyIdNamesFlag) {
  testing::TempDir dir;
  const auto [status, out] = RunLocal(dir, "--query-tokens '403 9999'");
  EXPECT_NE(status, 0) << out;
  EXPECT_TRUE(Contains(out, "sparkv: error: invalid argument: --query-tokens: token 9999 at index 1")) << out;
  EXPECT_TRUE(Contains(out, "vocabulary of 512 tokens")) << out;
  EXPECT_TRUE(Contains(out, "ids 0 to 511")) << out;
}

// Returns a profile as `sparkv profile` writes it, as JSON to edit.
json ValidProfileJson() {
  Profile profile;
  profile.compute = {1.5e-3, 1e-7, 0.0};
  profile.decode = {{"f16", 0.0, 1e-10}, {"q8", 0.0, 2e-10}};
  profile.model_fingerprint_hex = "0123456789abcdef0123456789abcdef";
  return json::parse(ProfileToJson(profile));
}

// Runs `sparkv simulate` on `profile`. The profile is read before the manifest, which is empty here.
std::pair<int, std::string> SimulateWithProfile(const json& profile) {
  testing::TempDir dir;
  std::ofstream(dir.File("profile.json")) << profile.dump();
  std::ofstream(dir.File("manifest.json")) << "";
  return testing::RunShell(testing::SparkvBinary() + " simulate --profile " + dir.File("profile.json") +
                           " --manifest " + dir.File("manifest.json") + " --rate 10 2>&1");
}

TEST(ProfileFileTest, HugeThreadCountNamesRange) {
  json profile = ValidProfileJson();
  profile["n_threads"] = int64_t{1} << 40;
  const auto [status, out] = SimulateWithProfile(profile);
  EXPECT_NE(status, 0) << out;
  EXPECT_TRUE(Contains(out, "field \"n_threads\" is 1099511627776, expected 1 to 4096")) << out;
  EXPECT_FALSE(Contains(out, "2147483647")) << "the int32 range is no limit a user can act on: " << out;
}

TEST(ProfileFileTest, UnknownDecodeCodecRejected) {
  json profile = ValidProfileJson();
  profile["decode"][1]["codec"] = "q7";
  const auto [status, out] = SimulateWithProfile(profile);
  EXPECT_NE(status, 0) << out;
  EXPECT_TRUE(Contains(out, "field \"decode[1].codec\" is \"q7\"")) << out;
  // The known codecs are listed, at least the two every build has.
  EXPECT_TRUE(Contains(out, "known codecs: f16, ")) << out;
  EXPECT_TRUE(Contains(out, "q8")) << out;

  // The codecs in the registry are accepted.
  const auto [ok_status, ok_out] = SimulateWithProfile(ValidProfileJson());
  EXPECT_FALSE(Contains(ok_out, "decode[")) << ok_out;
}

// The codec list is checked before the model loads: an unreadable model does not hide the error.
TEST(IngestCodecsTest, CheckedBeforeModelLoads) {
  testing::TempDir dir;
  std::ofstream(dir.File("context.txt")) << "1 403 261 17 29";
  std::ofstream(dir.File("broken.gguf")) << "not a model";
  const std::pair<const char*, const char*> cases[] = {
      {"',f16'", "--codecs ',f16': item 1 is empty"},
      {"f16,q7", "--codecs: unknown codec 'q7'; known codecs: f16, "},
      {"''", "--codecs '' names no codec"}};
  for (const auto& [codecs, expected] : cases) {
    const auto [status, out] = testing::RunShell(testing::SparkvBinary() + " --log-level error ingest --model " +
                                                 dir.File("broken.gguf") + " --tokens " + dir.File("context.txt") +
                                                 " --store " + dir.File("store") + " --codecs " + codecs + " 2>&1");
    EXPECT_NE(status, 0) << codecs << ": " << out;
    EXPECT_TRUE(Contains(out, expected)) << codecs << ": " << out;
    EXPECT_FALSE(std::filesystem::exists(dir.File("store"))) << codecs;
  }
}

// stories260K's GGUF in the tests carries a placeholder vocabulary: text given to it is spelled
// byte by byte, so ingest warns, while token ids pass without a warning.
TEST(IngestTextTest, PlaceholderVocabularyWarns) {
  testing::TempDir dir;
  std::ofstream(dir.File("context.txt")) << "Once upon a time there was a cat.";
  std::ofstream(dir.File("context.ids")) << "1 403 261 17 29";
  const std::string ingest = testing::SparkvBinary() + " --log-level error ingest --model " +
                             testing::Stories260KGguf() + " --codecs f16 --chunk-tokens 16 ";
  const auto [text_status, text_out] =
      testing::RunShell(ingest + "--text " + dir.File("context.txt") + " --store " + dir.File("a") + " 2>&1");
  EXPECT_EQ(text_status, 0) << text_out;
  EXPECT_TRUE(Contains(text_out, "sparkv: warning: the model has a placeholder vocabulary")) << text_out;
  EXPECT_TRUE(Contains(text_out, "--tokenizer tokenizer.bin")) << text_out;

  const auto [ids_status, ids_out] =
      testing::RunShell(ingest + "--tokens " + dir.File("context.ids") + " --store " + dir.File("b") + " 2>&1");
  EXPECT_EQ(ids_status, 0) << ids_out;
  EXPECT_FALSE(Contains(ids_out, "placeholder")) << ids_out;
}

// Runs `sparkv demo` on the tiny synthetic shape, with its cache folder in `cache`.
std::pair<int, std::string> RunTinyDemo(const testing::TempDir& cache, const std::string& flags) {
  return testing::RunShell("SPARKV_CACHE=" + cache.path() + " " + testing::SparkvBinary() +
                           " --log-level warn demo --shape tiny --context-tokens 96 --chunk-tokens 32 -n 2 --threads 1 " +
                           flags + " 2>&1");
}

TEST(DemoProfileTest, ReuseLineNamesPathAndAge) {
  testing::TempDir cache;
  const auto [first_status, first] = RunTinyDemo(cache, "");
  ASSERT_EQ(first_status, 0) << first;
  EXPECT_FALSE(Contains(first, "reusing the device profile")) << first;
  EXPECT_TRUE(Contains(first, "measured a device profile")) << first;

  std::vector<std::filesystem::path> profiles;
  for (const auto& entry : std::filesystem::directory_iterator(cache.File("profiles"))) profiles.push_back(entry.path());
  ASSERT_EQ(profiles.size(), 1u);
  // Sets the modification time to three days and an hour ago.
  std::filesystem::last_write_time(profiles[0], std::filesystem::file_time_type::clock::now() - std::chrono::hours(73));

  const auto [second_status, second] = RunTinyDemo(cache, "");
  ASSERT_EQ(second_status, 0) << second;
  EXPECT_TRUE(Contains(second, "reusing the device profile " + profiles[0].string() + ", measured 3 days ago; pass "
                               "--reprofile to measure again"))
      << second;

  const auto [third_status, third] = RunTinyDemo(cache, "--reprofile");
  ASSERT_EQ(third_status, 0) << third;
  EXPECT_FALSE(Contains(third, "reusing the device profile")) << third;
  EXPECT_TRUE(Contains(third, "measured a device profile")) << third;
  const auto age = std::filesystem::file_time_type::clock::now() - std::filesystem::last_write_time(profiles[0]);
  EXPECT_LT(age, std::chrono::hours(72)) << "--reprofile saves a new profile over the old one";
}

// The README explains the "load (s)" column of the demo's table.
TEST(ReadmeTest, ExplainsDemoLoadColumn) {
  const std::filesystem::path readme = std::filesystem::path(__FILE__).parent_path().parent_path() / "README.md";
  std::ifstream in(readme);
  ASSERT_TRUE(in.good()) << readme;
  std::stringstream text;
  text << in.rdbuf();
  EXPECT_TRUE(Contains(text.str(), "`load (s)`")) << "README.md does not explain the demo's load (s) column";
}

}  // namespace
}  // namespace sparkv
