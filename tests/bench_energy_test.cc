// Tests of the per-request energy model: integration over a timeline computed by hand, tail
// gaps, and the power profiles file (the checked-in one and broken ones).
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "bench/energy.h"

namespace sparkv {
namespace {

PowerProfile HandProfile() {
  PowerProfile p;
  p.name = "hand";
  p.cpu_busy_w = 2.0;
  p.cpu_idle_w = 0.5;
  p.radio_active_w = 1.0;
  p.radio_tail_w = 0.8;
  p.radio_tail_s = 1.5;
  return p;
}

SimChunk Transfer(double start_s, double end_s) {
  SimChunk c;
  c.streamed = true;
  c.transfer_start_s = start_s;
  c.transfer_end_s = end_s;
  return c;
}

TEST(BenchEnergyTest, IntegratesHandComputedTimeline) {
  // Transfers [0, 1), [3, 5) and [5.5, 6), plus one computed chunk. The query runs from 9 s to
  // the TTFT at 10 s.
  SimResult r;
  r.chunks = {Transfer(0, 1), Transfer(3, 5), Transfer(5.5, 6), SimChunk{}};
  r.chunks[3].compute_start_s = 0;
  r.chunks[3].compute_end_s = 2;
  r.network_busy_s = 3.5;
  r.cpu_busy_s = 4.0;
  r.all_resident_s = 9.0;
  r.ttft_s = 10.0;

  const Energy e = RequestEnergy(r, HandProfile());
  // CPU busy 4 s + 1 s query = 5 s at 2 W; idle the other 5 s at 0.5 W.
  EXPECT_DOUBLE_EQ(e.cpu_busy_j, 10.0);
  EXPECT_DOUBLE_EQ(e.cpu_idle_j, 2.5);
  // 3.5 s in flight at 1 W.
  EXPECT_DOUBLE_EQ(e.radio_active_j, 3.5);
  // Gaps of 2 s (cut to the 1.5 s tail) and 0.5 s, then a whole 1.5 s tail: 3.5 s at 0.8 W.
  EXPECT_DOUBLE_EQ(e.radio_tail_j, 2.8);
  EXPECT_DOUBLE_EQ(e.total_j(), 10.0 + 2.5 + 3.5 + 2.8);
}

TEST(BenchEnergyTest, OverlappingTransfersShareOneTail) {
  SimResult r;
  r.chunks = {Transfer(0, 2), Transfer(1, 3), Transfer(2.5, 2.75)};
  r.network_busy_s = 3.0;
  r.all_resident_s = 3.0;
  r.ttft_s = 3.0;
  const Energy e = RequestEnergy(r, HandProfile());
  EXPECT_DOUBLE_EQ(e.radio_tail_j, 1.5 * 0.8);
  EXPECT_DOUBLE_EQ(e.cpu_busy_j, 0.0);
  EXPECT_DOUBLE_EQ(e.cpu_idle_j, 3.0 * 0.5);
}

TEST(BenchEnergyTest, LocalOnlyUsesNoRadio) {
  SimResult r;
  r.chunks = {SimChunk{}, SimChunk{}};
  r.cpu_busy_s = 6.0;
  r.all_resident_s = 6.0;
  r.ttft_s = 6.5;
  const Energy e = RequestEnergy(r, HandProfile());
  EXPECT_DOUBLE_EQ(e.radio_active_j, 0.0);
  EXPECT_DOUBLE_EQ(e.radio_tail_j, 0.0);
  EXPECT_DOUBLE_EQ(e.cpu_busy_j, 6.5 * 2.0);
  EXPECT_DOUBLE_EQ(e.cpu_idle_j, 0.0);
}

TEST(BenchEnergyTest, CheckedInProfilesHaveSources) {
  Result<std::vector<PowerProfile>> profiles = LoadPowerProfiles(DefaultPowerProfilesPath());
  ASSERT_TRUE(profiles.ok()) << profiles.status().ToString();
  ASSERT_FALSE(profiles->empty());
  for (const PowerProfile& p : *profiles) {
    EXPECT_EQ(p.sources.size(), 5u) << p.name;
    for (const auto& [field, source] : p.sources) {
      EXPECT_NE(source.find("model value"), std::string::npos) << p.name << "." << field;
    }
    EXPECT_GT(p.cpu_busy_w, p.cpu_idle_w) << p.name;
    EXPECT_GE(p.radio_active_w, p.radio_tail_w) << p.name;
  }
  EXPECT_TRUE(FindPowerProfile(*profiles, "phone-lte").ok());
  Result<PowerProfile> missing = FindPowerProfile(*profiles, "toaster");
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.status().code(), ErrorCode::kNotFound);
  EXPECT_NE(missing.status().message().find("phone-lte"), std::string::npos);
}

TEST(BenchEnergyTest, RejectsBrokenProfiles) {
  using nlohmann::json;
  const json entry = {{"name", "p"},
                      {"cpu_busy_w", {{"value", 2}, {"source", "s"}}},
                      {"cpu_idle_w", {{"value", 0.2}, {"source", "s"}}},
                      {"radio_active_w", {{"value", 1}, {"source", "s"}}},
                      {"radio_tail_w", {{"value", 0.5}, {"source", "s"}}},
                      {"radio_tail_s", {{"value", 10}, {"source", "s"}}}};
  ASSERT_TRUE(ParsePowerProfiles(json{{"profiles", {entry}}}.dump()).ok());

  Result<std::vector<PowerProfile>> not_json = ParsePowerProfiles("{\"profiles\": [\n  {,}]}");
  ASSERT_FALSE(not_json.ok());
  EXPECT_NE(not_json.status().message().find("line 2, column 4"), std::string::npos) << not_json.status().message();
  EXPECT_EQ(not_json.status().message().find("json.exception"), std::string::npos) << not_json.status().message();
  EXPECT_FALSE(ParsePowerProfiles(json{{"profiles", json::array()}}.dump()).ok());
  EXPECT_FALSE(ParsePowerProfiles(json{{"profiles", {entry, entry}}}.dump()).ok());
  for (const char* field : {"cpu_busy_w", "cpu_idle_w", "radio_active_w", "radio_tail_w", "radio_tail_s"}) {
    json no_source = entry;
    no_source[field].erase("source");
    Result<std::vector<PowerProfile>> r = ParsePowerProfiles(json{{"profiles", {no_source}}}.dump());
    ASSERT_FALSE(r.ok()) << field;
    EXPECT_NE(r.status().message().find(field), std::string::npos) << r.status().message();
    json negative = entry;
    negative[field]["value"] = -1;
    EXPECT_FALSE(ParsePowerProfiles(json{{"profiles", {negative}}}.dump()).ok()) << field;
    json missing = entry;
    missing.erase(field);
    EXPECT_FALSE(ParsePowerProfiles(json{{"profiles", {missing}}}.dump()).ok()) << field;
  }
}

}  // namespace
}  // namespace sparkv
