// `sparkv simulate` through the real binary: a profile and a manifest written here, a link whose
// rate swings, and the table's and JSON's account of how chunks changed path.
#include <gtest/gtest.h>

#include <cstdio>
#include <nlohmann/json.hpp>
#include <numeric>

#include "common/file_util.h"
#include "kv/chunk_key.h"
#include "kv/format.h"
#include "plan/cost_model.h"
#include "store/manifest.h"
#include "test_support.h"

namespace sparkv {
namespace {

using nlohmann::json;

bool Contains(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }

constexpr int32_t kChunkTokens = 256;
constexpr int32_t kChunks = 24;

class SimulateCliTest : public ::testing::Test {
 protected:
  void SetUp() override {
    // As profiled, the first chunk takes 0.39 s to compute and the last 0.54 s. An f16 chunk is
    // 1 MiB, which takes 0.84 s at 10 Mbit/s.
    Profile profile;
    profile.compute = {1.5e-3, 1e-7, 0.0};
    profile.decode = {{"f16", 0.0, 1e-10}};
    profile.model_fingerprint_hex = "0123456789abcdef0123456789abcdef";
    ASSERT_TRUE(SaveProfile(profile, dir_.File("profile.json")).ok());

    Manifest manifest;
    manifest.format_version = kFormatVersion;
    Hash128::FromHex(profile.model_fingerprint_hex, &manifest.model_fingerprint);
    manifest.model_name = "test";
    manifest.chunk_tokens = kChunkTokens;
    manifest.n_tokens = kChunks * kChunkTokens;
    std::vector<int32_t> tokens(static_cast<size_t>(manifest.n_tokens));
    std::iota(tokens.begin(), tokens.end(), 1);
    const auto ranges = SplitIntoChunks(manifest.n_tokens, kChunkTokens);
    const auto keys = ChunkKeys(RootKey(manifest.model_fingerprint, kChunkTokens), tokens, ranges);
    for (size_t j = 0; j < ranges.size(); ++j) {
      ManifestChunk chunk{ranges[j].index, ranges[j].begin, ranges[j].end, keys[j], {}};
      chunk.levels["f16"] = LevelEntry{1024 * 1024, Hash128{j, 1}};
      manifest.chunks.push_back(chunk);
    }
    manifest.context_key = keys.back();
    ASSERT_TRUE(WriteFileAtomic(dir_.File("manifest.json"), ToJson(manifest)).ok());
  }

  std::pair<int, std::string> Simulate(const std::string& flags) {
    return testing::RunShell(testing::SparkvBinary() + " simulate --profile " + dir_.File("profile.json") +
                             " --manifest " + dir_.File("manifest.json") + " " + flags + " 2>&1");
  }

  testing::TempDir dir_;
};

// The link swings between 0.1 and 100 Mbit/s every 0.05 to 0.8 s in a fixed irregular pattern,
// and the device runs at half its profiled speed, so the adaptive strategy moves chunks back and
// forth: its path changes exceed the chunk count. Chunks off plan never may.
TEST_F(SimulateCliTest, ChunksOffPlanCountsEachChunkOnce) {
  const double rates_mbit[] = {0.1, 0.5, 2, 8, 30, 100};
  const double durations_s[] = {0.05, 0.1, 0.2, 0.4, 0.8};
  std::string steps;
  double t = 0.0;
  for (int i = 0; i < 60; ++i) {
    char step[64];
    std::snprintf(step, sizeof step, "%s%g:%g", i == 0 ? "" : ",", t, rates_mbit[(5 * i * i + i) % 6]);
    steps += step;
    t += durations_s[(9 * i + 1) % 5];
  }
  const auto [status, out] = Simulate("--steps " + steps + " --slowdown 2 --json");
  ASSERT_EQ(status, 0) << out;
  const json report = json::parse(out);
  ASSERT_EQ(report["n_chunks"], kChunks);

  int32_t max_changes = 0;
  for (const json& s : report["strategies"]) {
    const int32_t changes = s["path_changes"];
    const int32_t off_plan = s["chunks_off_plan"];
    max_changes = std::max(max_changes, changes);
    ASSERT_EQ(s["chunks"].size(), static_cast<size_t>(kChunks));
    int32_t counted = 0;
    for (const json& c : s["chunks"]) counted += (c["planned"] == "stream") != c["streamed"].get<bool>();
    EXPECT_EQ(off_plan, counted) << s["name"];
    EXPECT_LE(off_plan, kChunks) << s["name"];
    EXPECT_EQ(s.count("moved"), 0u) << "the ambiguous key is gone";
    // A chunk may be stopped, taken back and stopped again: the flag marks it once.
    int32_t stopped = 0;
    for (const json& c : s["chunks"]) stopped += c["prefill_stopped"].get<bool>();
    const int32_t n_stops = s["prefills_stopped"];
    EXPECT_LE(stopped, n_stops) << s["name"];
    EXPECT_EQ(stopped > 0, n_stops > 0) << s["name"];
    if (s["name"] != "sparkv-adaptive") {
      EXPECT_EQ(s["races"], 0) << s["name"] << " does not re-plan, so it never races";
    }
  }
  EXPECT_GT(max_changes, kChunks) << "the link did not swing enough to show the difference:\n" << out;
}

TEST_F(SimulateCliTest, TableExplainsBothColumns) {
  const auto [status, out] = Simulate("--steps 0:40,1:0.2,2:40 --strategies local,stream,sparkv-adaptive");
  ASSERT_EQ(status, 0) << out;
  EXPECT_NE(out.find(" changes "), std::string::npos) << out;
  EXPECT_NE(out.find(" off plan "), std::string::npos) << out;
  EXPECT_NE(out.find("one chunk may change more"), std::string::npos) << out;
  EXPECT_NE(out.find("each\ncounted once"), std::string::npos) << out;
}

TEST_F(SimulateCliTest, MissingLevelsAreWarned) {
  const auto [status, out] = Simulate("--rate 20 --levels q8 --strategies stream");
  ASSERT_EQ(status, 0) << out;
  EXPECT_NE(out.find("sparkv: warning: the manifest has levels f16, none of --levels q8"), std::string::npos) << out;

  const auto [status_f16, out_f16] = Simulate("--rate 20 --levels f16 --strategies stream");
  ASSERT_EQ(status_f16, 0) << out_f16;
  EXPECT_EQ(out_f16.find("warning"), std::string::npos) << out_f16;
}

TEST_F(SimulateCliTest, BrokenProfileIsNamedOnce) {
  ASSERT_TRUE(WriteFileAtomic(dir_.File("profile.json"), std::string_view("{\"format\": \"sparkv-profile\",}")).ok());
  const auto [status, out] = Simulate("--rate 20");
  EXPECT_NE(status, 0);
  EXPECT_NE(out.find("--profile: " + dir_.File("profile.json") + ": profile is not valid JSON"), std::string::npos)
      << out;
  EXPECT_EQ(out.find(dir_.File("profile.json")), out.rfind(dir_.File("profile.json"))) << out;
}

TEST_F(SimulateCliTest, RepeatedLevelOrStrategyRejected) {
  const auto [level_status, level_output] = Simulate("--rate 10 --levels f16,f16");
  EXPECT_NE(level_status, 0);
  EXPECT_NE(level_output.find("--levels lists 'f16' twice"), std::string::npos) << level_output;

  const auto [strategy_status, strategy_output] = Simulate("--rate 10 --strategies local,hybrid,sparkv-adaptive");
  EXPECT_NE(strategy_status, 0);
  EXPECT_NE(strategy_output.find("'sparkv-adaptive' again"), std::string::npos) << strategy_output;
}

// The profile's text with `from` replaced by `to`, written over the test's profile.
void EditProfile(const std::string& path, const std::string& from, const std::string& to) {
  Result<std::string> text = ReadFileToString(path);
  ASSERT_TRUE(text.ok()) << text.status().ToString();
  const size_t at = text->find(from);
  ASSERT_NE(at, std::string::npos) << from << " in " << *text;
  text->replace(at, from.size(), to);
  ASSERT_TRUE(WriteFileAtomic(path, std::string_view(*text)).ok());
}

// An all-zero compute model would make every TTFT 0 and the /optim column nan; a huge c, inf.
TEST_F(SimulateCliTest, AbsurdComputeModelIsRejectedNamingTheField) {
  const std::string path = dir_.File("profile.json");
  const std::string compute = "\"a\": 0.0015,\n    \"c\": 1e-07,\n    \"d\": 0.0";
  EditProfile(path, compute, "\"a\": 0, \"c\": 0, \"d\": 0");
  const auto [zero_status, zero_out] = Simulate("--rate 10");
  EXPECT_NE(zero_status, 0) << zero_out;
  EXPECT_NE(zero_out.find("\"compute.a\", \"compute.c\" and \"compute.d\" are 0, 0 and 0"), std::string::npos)
      << zero_out;
  EXPECT_NE(zero_out.find("must be positive"), std::string::npos) << zero_out;
  EXPECT_EQ(zero_out.find("nan"), std::string::npos) << zero_out;

  EditProfile(path, "\"a\": 0, \"c\": 0, \"d\": 0", "\"a\": 0, \"c\": 1e308, \"d\": 0");
  const auto [huge_status, huge_out] = Simulate("--rate 10");
  EXPECT_NE(huge_status, 0) << huge_out;
  EXPECT_NE(huge_out.find("--profile: " + path + ": profile: field \"compute.c\" is 1e+308"), std::string::npos)
      << huge_out;
  EXPECT_NE(huge_out.find("sparkv profile"), std::string::npos) << huge_out;
  EXPECT_EQ(huge_out.find("request_overhead_s"), std::string::npos) << huge_out;
}

// Without a decode cost the planner would count an offered level's decode as free. A level the
// manifest does not offer needs none.
TEST_F(SimulateCliTest, LevelWithoutDecodeCostIsRejected) {
  const std::string path = dir_.File("profile.json");
  Result<Profile> profile = LoadProfile(path);
  ASSERT_TRUE(profile.ok()) << profile.status().ToString();
  profile->decode.clear();
  ASSERT_TRUE(SaveProfile(*profile, path).ok());

  const auto [status, out] = Simulate("--rate 10 --levels f16");
  EXPECT_NE(status, 0) << out;
  EXPECT_NE(out.find("--levels f16: the profile " + path + " has no decode cost for it (its field \"decode\" is empty)"),
            std::string::npos)
      << out;
  EXPECT_NE(out.find("or drop f16 from --levels"), std::string::npos) << out;

  const auto [other_status, other_out] = Simulate("--rate 10 --levels q8 --strategies local");
  EXPECT_EQ(other_status, 0) << other_out;
}

// At 1000 Mbit/s the 24 MiB stream in 0.2 s, sooner than chunk 0's 0.39 s of prefill, so the
// plan streams every chunk and the compute path idles. Within a race ratio of 3 it races the
// frontier chunk as a hedge. At 1 it does not: the link is steady, so no prediction missed.
TEST_F(SimulateCliTest, RaceRatioSetsHedge) {
  int32_t races[2] = {-1, -1};
  const char* ratios[2] = {"1", "3"};
  for (int i = 0; i < 2; ++i) {
    const auto [status, out] =
        Simulate(std::string("--rate 1000 --strategies sparkv-adaptive --json --race-ratio ") + ratios[i]);
    ASSERT_EQ(status, 0) << out;
    const json report = json::parse(out);
    races[i] = report["strategies"][0]["races"];
  }
  EXPECT_EQ(races[0], 0);
  EXPECT_GT(races[1], 0);

  for (const char* bad : {"0.5", "nan", "abc", "0x3", "1e9"}) {
    const auto [bad_status, bad_out] = Simulate(std::string("--rate 10 --race-ratio ") + bad);
    EXPECT_NE(bad_status, 0) << bad;
    EXPECT_NE(bad_out.find(std::string("--race-ratio: '") + bad + "' is not a number from 1 to 100"),
              std::string::npos)
        << bad_out;
  }

  const auto [unused_status, unused_out] = Simulate("--rate 10 --strategies local,cake --race-ratio 2");
  EXPECT_EQ(unused_status, 0) << unused_out;
  EXPECT_NE(unused_out.find("sparkv: warning: --race-ratio has no effect here"), std::string::npos) << unused_out;
}

TEST_F(SimulateCliTest, EmptyListItemIsRejected) {
  const std::pair<std::string, std::string> cases[] = {
      {"--rate 10 --strategies local,,stream", "--strategies 'local,,stream': item 2 is empty"},
      {"--rate 10 --strategies local,", "--strategies 'local,': item 2 is empty"},
      {"--rate 10 --levels ,f16", "--levels ',f16': item 1 is empty"},
      {"--steps 0:20,,4:2", "--steps '0:20,,4:2': item 2 is empty"},
  };
  for (const auto& [flags, expected] : cases) {
    const auto [status, out] = Simulate(flags);
    EXPECT_NE(status, 0) << flags;
    EXPECT_NE(out.find(expected), std::string::npos) << flags << ": " << out;
  }
  // Spaces around an item are not part of it.
  const auto [spaced_status, spaced_out] = Simulate("--rate 10 --strategies 'local, stream'");
  EXPECT_EQ(spaced_status, 0) << spaced_out;
}

// --log-level works after the subcommand as well as before it. The exact planner behind the
// hindsight optimum logs at debug level.
TEST_F(SimulateCliTest, LogLevelAfterSubcommand) {
  const auto [debug_status, debug_out] = Simulate("--rate 10 --strategies local --log-level debug");
  ASSERT_EQ(debug_status, 0) << debug_out;
  EXPECT_NE(debug_out.find("exact plan:"), std::string::npos) << debug_out;

  const auto [quiet_status, quiet_out] = Simulate("--rate 10 --strategies local --log-level warn");
  ASSERT_EQ(quiet_status, 0) << quiet_out;
  EXPECT_EQ(quiet_out.find("exact plan:"), std::string::npos) << quiet_out;

  const auto [bad_status, bad_out] = Simulate("--rate 10 --log-level loud");
  EXPECT_NE(bad_status, 0) << bad_out;
  EXPECT_NE(bad_out.find("loud"), std::string::npos) << bad_out;
}

// Flags that would do nothing, or a rate too small to simulate, are named instead of ignored.
TEST_F(SimulateCliTest, IneffectiveFlagsAreNamed) {
  const auto [offset_status, offset_out] = Simulate("--rate 4 --trace-offset 5 --strategies local");
  EXPECT_NE(offset_status, 0) << offset_out;
  EXPECT_TRUE(Contains(offset_out, "--trace-offset 5 applies to --trace only")) << offset_out;

  const auto [floor_status, floor_out] = Simulate("--rate 4 --levels f16 --quality-floor 0 --strategies local");
  EXPECT_EQ(floor_status, 0) << floor_out << "f16 has rank 0, so the floor keeps it";
  EXPECT_FALSE(Contains(floor_out, "excludes every level")) << floor_out;
  const auto [q8_status, q8_out] = Simulate("--rate 4 --levels q8 --quality-floor 0 --strategies local");
  EXPECT_EQ(q8_status, 0) << q8_out;
  EXPECT_TRUE(Contains(q8_out, "--quality-floor 0 excludes every level of --levels q8")) << q8_out;

  const auto [negative_status, negative_out] = Simulate("--steps 0:-1 --strategies local");
  EXPECT_NE(negative_status, 0) << negative_out;
  EXPECT_TRUE(Contains(negative_out, "the rate -1 Mbit/s is outside [0.001, 1e6]")) << negative_out;

  const auto [tiny_status, tiny_out] = Simulate("--rate 0.000001 --strategies stream");
  EXPECT_NE(tiny_status, 0) << tiny_out;
  EXPECT_TRUE(Contains(tiny_out, "--rate")) << tiny_out;
  EXPECT_FALSE(Contains(tiny_out, "events")) << "rejected before it runs: " << tiny_out;
}

TEST_F(SimulateCliTest, UnorderedStepsNameFlag) {
  const auto [status, out] = Simulate("--steps 0:20,5:10,3:2 --strategies local");
  EXPECT_NE(status, 0) << out;
  EXPECT_TRUE(Contains(out, "sparkv: error: invalid argument: --steps: times must increase; got 3 after 5 ('3:2' after "
                            "'5:10')"))
      << out;
  EXPECT_TRUE(Contains(out, "give SECONDS:MBIT pairs in time order")) << out;
  EXPECT_FALSE(Contains(out, "BandwidthModel")) << out;

  const auto [equal_status, equal_out] = Simulate("--steps 0:20,4:10,4:2 --strategies local");
  EXPECT_NE(equal_status, 0) << equal_out;
  EXPECT_TRUE(Contains(equal_out, "got 4 after 4")) << equal_out;

  const auto [late_status, late_out] = Simulate("--steps 1:20,4:2 --strategies local");
  EXPECT_NE(late_status, 0) << late_out;
  EXPECT_TRUE(Contains(late_out, "--steps: the first pair '1:20' starts at 1 s")) << late_out;
  EXPECT_FALSE(Contains(late_out, "BandwidthModel")) << late_out;
}

// Tabs, newlines and spaces around items are all trimmed, in every comma-separated list.
TEST_F(SimulateCliTest, ListItemsTrimAnyWhitespace) {
  const auto [status, out] = Simulate(
      "--steps \"$(printf '0:20\\t,\\t4:2\\n')\" --strategies \"$(printf 'local,\\tstream\\t')\" "
      "--levels \"$(printf '\\tf16 ')\" --json");
  ASSERT_EQ(status, 0) << out;
  const json report = json::parse(out);
  ASSERT_EQ(report["strategies"].size(), 2u);
  EXPECT_EQ(report["strategies"][0]["name"], "local");
  EXPECT_EQ(report["strategies"][1]["name"], "stream");
  EXPECT_EQ(report["strategies"][1]["chunks_streamed"], kChunks);

  // Only whitespace between two commas is still an empty item.
  const auto [empty_status, empty_out] = Simulate("--rate 10 --strategies \"$(printf 'local,\\t,stream')\"");
  EXPECT_NE(empty_status, 0) << empty_out;
  EXPECT_TRUE(Contains(empty_out, "item 2 is empty")) << empty_out;
}

}  // namespace
}  // namespace sparkv
