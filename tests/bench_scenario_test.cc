// Tests of scenario files for `sparkv bench`: a good file with relative paths, each bad field
// rejected with its name, sweep expansion, and the simulator input built for a point.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <string>

#include "bench/scenario.h"
#include "common/file_util.h"
#include "kv/format.h"
#include "runtime/strategy.h"
#include "test_support.h"

namespace sparkv {
namespace {

using nlohmann::json;

// Saves a profile with decode costs for f16 and q8, as `sparkv profile` would.
void WriteProfile(const std::string& path) {
  Profile profile;
  profile.compute = {0.04, 3e-5, 0.0};
  profile.decode = {{"f16", 0.0, 5e-10}, {"q8", 0.0, 1.6e-9}};
  profile.model_fingerprint_hex = "998e70f4bcf08a3eed4e29045bbd69f9";
  ASSERT_TRUE(SaveProfile(profile, path).ok());
}

json GoodScenario() {
  return {{"name", "sweep"},
          {"profile", "profile.json"},
          {"synthetic", {{"chunk_tokens", 256}, {"bytes_per_token", {{"f16", 12288}, {"q8", 6528}}}}},
          {"n_chunks", {4, 8}},
          {"levels", {"f16", "q8"}},
          {"bandwidth", {{"rate_mbit", {1, 5, 20}}}},
          {"rtt_ms", 40},
          {"slowdown", {1, 2}},
          {"strategies", {"local", "stream", "sparkv-adaptive"}},
          {"repetitions", 2},
          {"energy_profile", "phone-lte"}};
}

TEST(BenchScenarioTest, ParsesGoodFileAndResolvesPaths) {
  testing::TempDir dir;
  WriteProfile(dir.File("profile.json"));
  ASSERT_TRUE(WriteFileAtomic(dir.File("s.json"), GoodScenario().dump()).ok());

  Result<Scenario> s = LoadScenario(dir.File("s.json"));
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  EXPECT_EQ(s->name, "sweep");
  EXPECT_EQ(s->profile_path, dir.File("profile.json"));
  EXPECT_TRUE(s->manifest_path.empty());
  EXPECT_EQ(s->chunk_tokens, 256);
  EXPECT_EQ(s->bandwidth.kind, BandwidthSpec::Kind::kConstant);
  EXPECT_EQ(s->bandwidth.rates_mbit, (std::vector<double>{1, 5, 20}));
  EXPECT_EQ(s->slowdowns, (std::vector<double>{1, 2}));
  EXPECT_EQ(s->n_chunks, (std::vector<int32_t>{4, 8}));
  EXPECT_DOUBLE_EQ(s->rtt_ms, 40);
  EXPECT_EQ(s->repetitions, 2);
  EXPECT_EQ(s->energy_profile, "phone-lte");
  EXPECT_EQ(s->race_ratio, 0.0) << "without the field, each strategy keeps its own race ratio";

  json with_ratio = GoodScenario();
  with_ratio["race_ratio"] = 1.5;
  Result<Scenario> hedged = ParseScenario(with_ratio.dump(), "/tmp");
  ASSERT_TRUE(hedged.ok()) << hedged.status().ToString();
  EXPECT_EQ(hedged->race_ratio, 1.5);
}

TEST(BenchScenarioTest, SweepExpandsToCrossProduct) {
  Result<Scenario> s = ParseScenario(GoodScenario().dump(), "/tmp");
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  const std::vector<ScenarioPoint> points = ExpandScenario(*s);
  ASSERT_EQ(points.size(), 3u * 2u * 2u);
  // Rates vary fastest; every combination appears once.
  EXPECT_DOUBLE_EQ(points[0].rate_mbit, 1);
  EXPECT_DOUBLE_EQ(points[1].rate_mbit, 5);
  for (size_t i = 0; i < points.size(); ++i) {
    for (size_t k = i + 1; k < points.size(); ++k) {
      const bool same = points[i].rate_mbit == points[k].rate_mbit && points[i].slowdown == points[k].slowdown &&
                        points[i].n_chunks == points[k].n_chunks;
      EXPECT_FALSE(same) << "points " << i << " and " << k;
    }
  }

  json trace = GoodScenario();
  trace["bandwidth"] = {{"trace", "link.down"}, {"offset_s", {0, 30, 60, 90}}};
  trace.erase("n_chunks");
  trace["n_chunks"] = 8;
  Result<Scenario> t = ParseScenario(trace.dump(), "/data");
  ASSERT_TRUE(t.ok()) << t.status().ToString();
  EXPECT_EQ(t->bandwidth.trace_path, "/data/link.down");
  EXPECT_EQ(ExpandScenario(*t).size(), 4u * 2u);
}

TEST(BenchScenarioTest, RejectsEachBadFieldByName) {
  struct Case {
    const char* field;  // expected in the message
    json patch;         // replaces fields of the good scenario; null values remove the field
  };
  const std::vector<Case> cases = {
      {"name", {{"name", nullptr}}},
      {"name", {{"name", "../escape"}}},
      {"profile", {{"profile", nullptr}}},
      {"profile", {{"profile", 7}}},
      {"manifest", {{"manifest", "m.json"}}},
      {"synthetic.chunk_tokens", {{"synthetic", {{"chunk_tokens", 0}, {"bytes_per_token", {{"q8", 1}}}}}}},
      {"synthetic.bytes_per_token.zz9", {{"synthetic", {{"chunk_tokens", 8}, {"bytes_per_token", {{"zz9", 1}}}}}}},
      {"n_chunks", {{"n_chunks", json::array()}}},
      {"n_chunks", {{"n_chunks", 2.5}}},
      {"n_chunks[1]", {{"n_chunks", {4, -1}}}},
      {"n_chunks", {{"n_chunks", 60000}, {"synthetic", {{"chunk_tokens", 1 << 20}, {"bytes_per_token", {{"q8", 1}}}}}}},
      {"synthetic.bytes_per_token.q8",
       {{"synthetic", {{"chunk_tokens", 1 << 20}, {"bytes_per_token", {{"f16", 1}, {"q8", 1e9}}}}}}},
      {"levels", {{"levels", {"f16", "nope"}}}},
      {"levels", {{"levels", json::array()}}},
      {"quality_floor", {{"quality_floor", -2}}},
      {"bandwidth", {{"bandwidth", nullptr}}},
      {"bandwidth", {{"bandwidth", {{"rate_mbit", 5}, {"trace", "t"}}}}},
      {"bandwidth.rate_mbit", {{"bandwidth", {{"rate_mbit", 0}}}}},
      {"bandwidth.rate_mbit[1]", {{"bandwidth", {{"rate_mbit", {1, "fast"}}}}}},
      {"bandwidth.steps", {{"bandwidth", {{"steps", {{1, 5}}}}}}},
      {"bandwidth.steps[0]", {{"bandwidth", {{"steps", {{0, 5, 7}}}}}}},
      {"bandwidth.offset_s", {{"bandwidth", {{"rate_mbit", 5}, {"offset_s", 3}}}}},
      {"bandwidth.offset_s", {{"bandwidth", {{"trace", "t.down"}, {"offset_s", -3}}}}},
      {"bandwidth.speed", {{"bandwidth", {{"rate_mbit", 5}, {"speed", 3}}}}},
      {"rtt_ms", {{"rtt_ms", "fast"}}},
      {"slowdown", {{"slowdown", 0}}},
      {"strategies", {{"strategies", {"local", "teleport"}}}},
      {"strategies", {{"strategies", nullptr}}},
      {"repetitions", {{"repetitions", 0}}},
      {"query_tokens", {{"query_tokens", 1.5}}},
      {"timeout_s", {{"timeout_s", -1}}},
      {"race_ratio", {{"race_ratio", 0.5}}},
      {"energy_profile", {{"energy_profile", nullptr}}},
      {"colour", {{"colour", "red"}}},
  };
  for (const Case& c : cases) {
    json doc = GoodScenario();
    // Replace objects whole, so a patched bandwidth does not keep the good rate_mbit.
    for (const auto& [key, value] : c.patch.items()) {
      if (value.is_object()) doc.erase(key);
    }
    doc.merge_patch(c.patch);
    Result<Scenario> s = ParseScenario(doc.dump(), "/tmp");
    ASSERT_FALSE(s.ok()) << c.field << ": accepted " << doc.dump();
    EXPECT_EQ(s.status().code(), ErrorCode::kInvalidArgument) << c.field;
    EXPECT_NE(s.status().message().find(std::string("'") + c.field + "'"), std::string::npos)
        << c.field << ": " << s.status().message();
  }
}

TEST(BenchScenarioTest, RejectsBrokenJsonAndHugeSweeps) {
  EXPECT_FALSE(ParseScenario("{\"name\": \"x\",", "/tmp").ok());
  // A number past a double's range is named as such, not as a syntax error.
  Result<Scenario> huge = ParseScenario("{\"name\": \"x\", \"race_ratio\": 1e400}", "/tmp");
  ASSERT_FALSE(huge.ok());
  EXPECT_NE(huge.status().message().find("number too large"), std::string::npos) << huge.status().message();
  EXPECT_FALSE(ParseScenario("[1, 2]", "/tmp").ok());
  // The syntax error is placed for the person editing the file, without the JSON library's text.
  Result<Scenario> syntax = ParseScenario("{\"name\": \"x\",\n \"levels\": [\"f16\" \"q8\"]}", "/tmp");
  ASSERT_FALSE(syntax.ok());
  // The parser stops at the end of the token it did not expect: the closing quote of "q8".
  EXPECT_NE(syntax.status().message().find("line 2, column 22"), std::string::npos) << syntax.status().message();
  EXPECT_EQ(syntax.status().message().find("json.exception"), std::string::npos) << syntax.status().message();

  json doc = GoodScenario();
  std::vector<double> rates(1000), slowdowns(200);
  for (size_t i = 0; i < rates.size(); ++i) rates[i] = 1.0 + static_cast<double>(i);
  for (size_t i = 0; i < slowdowns.size(); ++i) slowdowns[i] = 1.0 + 0.01 * static_cast<double>(i);
  doc["bandwidth"] = {{"rate_mbit", rates}};
  doc["slowdown"] = slowdowns;
  Result<Scenario> s = ParseScenario(doc.dump(), "/tmp");
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.status().message().find("points"), std::string::npos) << s.status().message();
}

TEST(BenchScenarioTest, BuildsSimulatorInputPerPoint) {
  testing::TempDir dir;
  WriteProfile(dir.File("profile.json"));
  ASSERT_TRUE(WriteFileAtomic(dir.File("s.json"), GoodScenario().dump()).ok());
  Result<Scenario> s = LoadScenario(dir.File("s.json"));
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  Result<BenchContext> context = LoadBenchContext(*s);
  ASSERT_TRUE(context.ok()) << context.status().ToString();
  EXPECT_EQ(context->manifest.chunks.size(), 8u);

  for (const ScenarioPoint& point : ExpandScenario(*s)) {
    Result<SimScenario> sim = MakeSimScenario(*s, *context, point);
    ASSERT_TRUE(sim.ok()) << sim.status().ToString();
    ASSERT_EQ(sim->input.chunks.size(), static_cast<size_t>(point.n_chunks));
    ASSERT_EQ(sim->input.chunks[0].levels.size(), 2u);
    EXPECT_EQ(sim->input.chunks[0].levels[1].bytes, 6528u * 256u);
    EXPECT_DOUBLE_EQ(sim->input.request_overhead_s, 0.040);
    EXPECT_DOUBLE_EQ(sim->device_slowdown, point.slowdown);
    EXPECT_DOUBLE_EQ(sim->actual.RateAt(3.0), point.rate_mbit * 1e6 / 8);
    EXPECT_TRUE(ValidatePlanInput(sim->input).ok());
  }
}

TEST(BenchScenarioTest, ProfileWithUnknownCodecIsRejected) {
  testing::TempDir dir;
  Profile profile;
  profile.compute = {0.04, 3e-5, 0.0};
  profile.decode = {{"f16", 0.0, 5e-10}, {"q7", 0.0, 1.6e-9}};
  profile.model_fingerprint_hex = "998e70f4bcf08a3eed4e29045bbd69f9";
  ASSERT_TRUE(SaveProfile(profile, dir.File("profile.json")).ok());
  ASSERT_TRUE(WriteFileAtomic(dir.File("s.json"), GoodScenario().dump()).ok());
  Result<Scenario> s = LoadScenario(dir.File("s.json"));
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  Result<BenchContext> context = LoadBenchContext(*s);
  ASSERT_FALSE(context.ok());
  EXPECT_NE(context.status().message().find("\"q7\""), std::string::npos) << context.status().ToString();
  EXPECT_NE(context.status().message().find("known codecs"), std::string::npos) << context.status().ToString();
}

TEST(BenchScenarioTest, StepsBandwidthFollowsSteps) {
  testing::TempDir dir;
  WriteProfile(dir.File("profile.json"));
  json doc = GoodScenario();
  doc["bandwidth"] = {{"steps", {{0, 20}, {4, 2}}}};
  ASSERT_TRUE(WriteFileAtomic(dir.File("s.json"), doc.dump()).ok());
  Result<Scenario> s = LoadScenario(dir.File("s.json"));
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  const std::vector<ScenarioPoint> points = ExpandScenario(*s);
  EXPECT_EQ(points.size(), 2u * 2u);
  Result<BenchContext> context = LoadBenchContext(*s);
  ASSERT_TRUE(context.ok()) << context.status().ToString();
  Result<SimScenario> sim = MakeSimScenario(*s, *context, points[0]);
  ASSERT_TRUE(sim.ok()) << sim.status().ToString();
  EXPECT_DOUBLE_EQ(sim->actual.RateAt(1.0), 20e6 / 8);
  EXPECT_DOUBLE_EQ(sim->actual.RateAt(5.0), 2e6 / 8);
  // The planner starts from what a 0.5 s probe would see: the first step's rate.
  EXPECT_DOUBLE_EQ(sim->input.bandwidth.RateAt(0.0), 20e6 / 8);
}

// Writes a profile and a manifest of two 16-token chunks with q8 blobs into `dir`, and returns
// the good scenario pointed at them.
json ScenarioWithManifest(const testing::TempDir& dir) {
  WriteProfile(dir.File("profile.json"));
  Manifest manifest;
  manifest.format_version = kFormatVersion;
  manifest.chunk_tokens = 16;
  manifest.n_tokens = 32;
  for (int j = 0; j < 2; ++j) {
    ManifestChunk chunk;
    chunk.index = j;
    chunk.begin = 16 * j;
    chunk.end = 16 * (j + 1);
    chunk.levels["q8"] = {4096, {}};
    manifest.chunks.push_back(chunk);
  }
  manifest.context_key = manifest.chunks.back().key;
  EXPECT_TRUE(WriteFileAtomic(dir.File("manifest.json"), ToJson(manifest)).ok());
  json doc = GoodScenario();
  doc.erase("synthetic");
  doc["manifest"] = "manifest.json";
  doc["levels"] = {"q8"};
  return doc;
}

TEST(BenchScenarioTest, RejectsContextLongerThanManifest) {
  testing::TempDir dir;
  json doc = ScenarioWithManifest(dir);
  doc["n_chunks"] = {1, 3};
  ASSERT_TRUE(WriteFileAtomic(dir.File("s.json"), doc.dump()).ok());
  Result<Scenario> s = LoadScenario(dir.File("s.json"));
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  EXPECT_EQ(s->manifest_path, dir.File("manifest.json"));
  Result<BenchContext> context = LoadBenchContext(*s);
  ASSERT_FALSE(context.ok());
  EXPECT_NE(context.status().message().find("'n_chunks'"), std::string::npos) << context.status().message();
}

TEST(BenchScenarioTest, RejectsLevelMissingFromManifest) {
  testing::TempDir dir;
  json doc = ScenarioWithManifest(dir);
  doc["levels"] = {"q8", "q4"};
  doc["n_chunks"] = {2};
  ASSERT_TRUE(WriteFileAtomic(dir.File("s.json"), doc.dump()).ok());
  Result<Scenario> s = LoadScenario(dir.File("s.json"));
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  Result<BenchContext> context = LoadBenchContext(*s);
  ASSERT_FALSE(context.ok());
  EXPECT_NE(context.status().message().find("'q4' is in no chunk of the manifest"), std::string::npos)
      << context.status().message();
  EXPECT_NE(context.status().message().find("(it has q8)"), std::string::npos) << context.status().message();
}

}  // namespace
}  // namespace sparkv

namespace sparkv {
namespace {

TEST(BenchCrossoverTest, AddsOnePointPerLengthAndSlowdown) {
  json crossover = GoodScenario();
  crossover["bandwidth"] = {{"rate_mbit", {1, 5}}, {"crossover", true}};
  Result<Scenario> s = ParseScenario(crossover.dump(), "/tmp");
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  EXPECT_TRUE(s->bandwidth.crossover);
  const std::vector<ScenarioPoint> points = ExpandScenario(*s);
  // (2 rates + the crossover) x 2 lengths x 2 slowdowns, the crossover after each group's rates.
  ASSERT_EQ(points.size(), 3u * 2u * 2u);
  for (size_t i = 0; i < points.size(); ++i) EXPECT_EQ(points[i].at_crossover, i % 3 == 2) << i;
  EXPECT_NE(points[2].Label(*s).find("crossover"), std::string::npos) << points[2].Label(*s);

  crossover["bandwidth"] = {{"crossover", true}};
  Result<Scenario> only = ParseScenario(crossover.dump(), "/tmp");
  ASSERT_TRUE(only.ok()) << only.status().ToString();
  EXPECT_EQ(ExpandScenario(*only).size(), 2u * 2u);
}

TEST(BenchCrossoverTest, RejectsBadCrossoverFields) {
  for (const json& bandwidth : {json{{"crossover", "yes"}}, json{{"crossover", false}},
                                json{{"crossover", true}, {"trace", "link.down"}}}) {
    json scenario = GoodScenario();
    scenario["bandwidth"] = bandwidth;
    Result<Scenario> s = ParseScenario(scenario.dump(), "/tmp");
    ASSERT_FALSE(s.ok()) << bandwidth.dump();
    EXPECT_NE(s.status().message().find("bandwidth"), std::string::npos) << s.status().message();
  }
}

TEST(BenchCrossoverTest, RateEqualizesLocalAndStream) {
  testing::TempDir dir;
  WriteProfile(dir.File("profile.json"));
  json scenario = GoodScenario();
  scenario["bandwidth"] = {{"crossover", true}};
  ASSERT_TRUE(WriteFileAtomic(dir.File("s.json"), scenario.dump()).ok());
  Result<Scenario> s = LoadScenario(dir.File("s.json"));
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  Result<BenchContext> context = LoadBenchContext(*s);
  ASSERT_TRUE(context.ok()) << context.status().ToString();
  const Strategy local = std::move(FindStrategy("local")).value();
  const Strategy stream = std::move(FindStrategy("stream")).value();

  for (ScenarioPoint point : ExpandScenario(*s)) {
    Result<double> rate = CrossoverRate(*s, *context, point);
    ASSERT_TRUE(rate.ok()) << rate.status().ToString();
    // Just below the rate streaming is slower than computing, just above it is faster.
    const auto ttft = [&](const Strategy& strategy, double mbit) {
      point.rate_mbit = mbit;
      const SimScenario sim = std::move(MakeSimScenario(*s, *context, point)).value();
      return std::move(SimulateLoad(strategy, sim)).value().ttft_s;
    };
    const double local_s = ttft(local, *rate);
    EXPECT_NEAR(ttft(stream, *rate), local_s, 0.01 * local_s) << point.Label(*s);
    EXPECT_GT(ttft(stream, *rate * 0.95), local_s) << point.Label(*s);
    EXPECT_LT(ttft(stream, *rate * 1.05), local_s) << point.Label(*s);
  }
}

TEST(BenchCrossoverTest, NoCrossoverNamesThePoint) {
  testing::TempDir dir;
  WriteProfile(dir.File("profile.json"));
  json scenario = GoodScenario();
  scenario["bandwidth"] = {{"crossover", true}};
  // Each request waits longer before its first byte than computing the whole context takes.
  scenario["rtt_ms"] = 60000;
  scenario["n_chunks"] = 4;
  ASSERT_TRUE(WriteFileAtomic(dir.File("s.json"), scenario.dump()).ok());
  Result<Scenario> s = LoadScenario(dir.File("s.json"));
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  Result<BenchContext> context = LoadBenchContext(*s);
  ASSERT_TRUE(context.ok()) << context.status().ToString();
  const ScenarioPoint point = ExpandScenario(*s).front();
  Result<double> rate = CrossoverRate(*s, *context, point);
  ASSERT_FALSE(rate.ok());
  EXPECT_NE(rate.status().message().find("bandwidth.crossover"), std::string::npos) << rate.status().message();
  EXPECT_NE(rate.status().message().find(point.LabelWithoutRate(*s)), std::string::npos) << rate.status().message();

  // Blobs of almost nothing on a slow device: streaming wins even at the lowest rate searched.
  scenario["rtt_ms"] = 0;
  scenario["synthetic"] = {{"chunk_tokens", 256}, {"bytes_per_token", {{"f16", 0.001}, {"q8", 0.001}}}};
  scenario["slowdown"] = 100;
  ASSERT_TRUE(WriteFileAtomic(dir.File("s.json"), scenario.dump()).ok());
  Result<Scenario> tiny = LoadScenario(dir.File("s.json"));
  ASSERT_TRUE(tiny.ok()) << tiny.status().ToString();
  Result<BenchContext> tiny_context = LoadBenchContext(*tiny);
  ASSERT_TRUE(tiny_context.ok()) << tiny_context.status().ToString();
  Result<double> none = CrossoverRate(*tiny, *tiny_context, ExpandScenario(*tiny).front());
  ASSERT_FALSE(none.ok());
  EXPECT_NE(none.status().message().find("faster than computing even at 1e-3"), std::string::npos)
      << none.status().message();
}

}  // namespace
}  // namespace sparkv
