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

}  // namespace
}  // namespace sparkv
