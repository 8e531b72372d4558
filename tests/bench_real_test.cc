// Real mode of `sparkv bench` on stories260K. A tiny scenario is ingested into a temporary store
// and served paced on a real loopback server. Every strategy runs for real and is checked
// against the local first token and the simulated TTFT. Bad real-mode fields are rejected by name.
#include <gtest/gtest.h>

#include <cmath>
#include <nlohmann/json.hpp>

#include "bench/background_load.h"
#include "bench/real.h"
#include "bench/scenario.h"
#include "common/file_util.h"
#include "net/server.h"
#include "test_support.h"

namespace sparkv {
namespace {

using nlohmann::json;

// Three chunks of 32 tokens and a 16-token query, sampled from stories260K: a run takes a few
// milliseconds of compute, so a scenario with a few strategies and repetitions takes seconds.
json TinyScenario(const std::string& model) {
  return {{"name", "tiny-real"},
          {"mode", "both"},
          {"real", {{"model", model}, {"sample_tokens", 120}, {"seed", 3}, {"chunk_tokens", 32}, {"codecs", {"f16", "q8"}}}},
          {"levels", {"f16"}},
          {"n_chunks", 3},
          {"bandwidth", {{"rate_mbit", 8}}},
          {"strategies", {"local", "stream", "sparkv-adaptive"}},
          {"repetitions", 2},
          {"energy_profile", "phone-wifi"}};
}

Result<Scenario> Parse(const json& doc) { return ParseScenario(doc.dump(), "/base"); }

TEST(BenchRealTest, BothModeMatchesLocalToken) {
  Result<Scenario> scenario = Parse(TinyScenario(testing::Stories260KGguf()));
  ASSERT_TRUE(scenario.ok()) << scenario.status().ToString();
  Result<RealBenchReport> report = RunRealBench(*scenario);
  ASSERT_TRUE(report.ok()) << report.status().ToString();

  ASSERT_EQ(report->points.size(), 1u);
  EXPECT_EQ(report->n_context_tokens[0], 96);
  EXPECT_EQ(report->profile_source, "measured");
  ASSERT_EQ(report->rows.size(), 3u);
  EXPECT_EQ(report->n_mismatches, 0);
  for (const RealRow& row : report->rows) {
    SCOPED_TRACE(row.strategy);
    ASSERT_EQ(row.ttft_s.size(), 2u);
    EXPECT_EQ(row.n_mismatches, 0);
    EXPECT_FALSE(row.streamed_lossy);
    EXPECT_LE(row.min_ttft_s, row.median_ttft_s);
    EXPECT_LE(row.median_ttft_s, row.max_ttft_s);
    EXPECT_GT(row.median_load_ttft_s, 0.0);
    EXPECT_LE(row.median_load_ttft_s, row.median_ttft_s);
    EXPECT_EQ(row.median_streamed + row.median_computed, 3.0);
    EXPECT_GT(row.sim_ttft_s, 0.0);
    EXPECT_TRUE(std::isfinite(row.real_over_sim));
    EXPECT_GT(row.real_over_sim, 0.0);
    EXPECT_GT(row.sim_measured_speed_ttft_s, 0.0);
    std::printf("%-16s real %.4f s (load %.4f s), simulated %.4f s, real/sim %.3f\n", row.strategy.c_str(),
                row.median_ttft_s, row.median_load_ttft_s, row.sim_ttft_s, row.real_over_sim);
  }
  // The hindsight optimum is the best plan under the cost model, so no single path beats it.
  ASSERT_EQ(report->hindsight_ttft_s.size(), 1u);
  EXPECT_GT(report->hindsight_ttft_s[0], 0.0);
  EXPECT_LE(report->hindsight_ttft_s[0], report->rows[0].sim_ttft_s * (1 + 1e-9));
  EXPECT_LE(report->hindsight_ttft_s[0], report->rows[1].sim_ttft_s * (1 + 1e-9));
  // local never touches the network, and stream fetches every chunk at f16.
  EXPECT_EQ(report->rows[0].median_streamed, 0.0);
  EXPECT_EQ(report->rows[0].median_received_bytes, 0.0);
  EXPECT_EQ(report->rows[1].median_streamed, 3.0);
  EXPECT_GT(report->rows[1].median_received_bytes, 0.0);
}

TEST(BenchRealTest, RealModeSkipsSimulator) {
  json doc = TinyScenario(testing::Stories260KGguf());
  doc["mode"] = "real";
  doc["strategies"] = {"local", "stream"};
  doc["repetitions"] = 1;
  doc.erase("energy_profile");  // not needed without the simulator
  Result<Scenario> scenario = Parse(doc);
  ASSERT_TRUE(scenario.ok()) << scenario.status().ToString();
  Result<RealBenchReport> report = RunRealBench(*scenario);
  ASSERT_TRUE(report.ok()) << report.status().ToString();
  ASSERT_EQ(report->rows.size(), 2u);
  for (const RealRow& row : report->rows) {
    EXPECT_EQ(row.sim_ttft_s, 0.0);
    EXPECT_EQ(row.n_mismatches, 0);
  }
}

TEST(BenchRealTest, TokenFileTraceAndBackgroundLoad) {
  testing::TempDir dir;
  // BOS, then ids cycling through part of the vocabulary: 96 context tokens and the query.
  std::string ids = "1";
  for (int i = 1; i < 112; ++i) ids += " " + std::to_string(3 + (i * 37) % 500);
  ASSERT_TRUE(WriteFileAtomic(dir.File("tokens.txt"), ids + "\n").ok());
  json doc = TinyScenario(testing::Stories260KGguf());
  doc["real"].erase("sample_tokens");
  doc["real"]["tokens"] = dir.File("tokens.txt");
  doc["real"]["background_threads"] = 1;
  doc["real"]["background_duty"] = 0.5;
  doc["bandwidth"] = {{"trace", testing::DataPath("traces/Verizon-LTE-short.down")}, {"offset_s", 2.0}};
  doc["strategies"] = {"stream", "cake"};
  doc["repetitions"] = 1;
  Result<Scenario> scenario = Parse(doc);
  ASSERT_TRUE(scenario.ok()) << scenario.status().ToString();
  Result<RealBenchReport> report = RunRealBench(*scenario);
  ASSERT_TRUE(report.ok()) << report.status().ToString();
  ASSERT_EQ(report->rows.size(), 2u);
  EXPECT_EQ(report->n_mismatches, 0);
  EXPECT_EQ(report->rows[0].median_streamed, 3.0);
  EXPECT_GT(report->rows[0].real_over_sim, 0.0);
}

TEST(BenchRealTest, EmulatedSlowdownSweep) {
  json doc = TinyScenario(testing::Stories260KGguf());
  doc["real"]["emulate_slowdown"] = true;
  doc["slowdown"] = {1, 3};
  doc["strategies"] = {"local", "sparkv-adaptive"};
  doc["repetitions"] = 1;
  Result<Scenario> scenario = Parse(doc);
  ASSERT_TRUE(scenario.ok()) << scenario.status().ToString();
  Result<RealBenchReport> report = RunRealBench(*scenario);
  ASSERT_TRUE(report.ok()) << report.status().ToString();
  ASSERT_EQ(report->points.size(), 2u);
  EXPECT_EQ(report->points[1].slowdown, 3.0);
  ASSERT_EQ(report->rows.size(), 4u);
  EXPECT_EQ(report->n_mismatches, 0);
  // The loader measures the idling engine as a slower device. The margin is wide: the engine
  // waits twice its own time after every forward pass, whatever the machine's load.
  EXPECT_GT(report->rows[2].median_device_factor, 1.5 * report->rows[0].median_device_factor)
      << report->rows[2].median_device_factor << " at x3, " << report->rows[0].median_device_factor << " at x1";
}

TEST(BenchRealTest, RejectsBadFieldsByName) {
  const json good = TinyScenario("/models/m.gguf");
  ASSERT_TRUE(Parse(good).ok());
  json without_energy = good;
  without_energy.erase("energy_profile");
  EXPECT_TRUE(Parse(without_energy).ok()) << "real runs measure no energy, so mode both needs no energy profile";
  struct Case {
    const char* field;
    json doc;
  };

  std::vector<Case> cases;
  auto with = [&good](auto edit) {
    json doc = good;
    edit(doc);
    return doc;
  };
  cases.push_back({"'mode'", with([](json& d) { d["mode"] = "fast"; })});
  cases.push_back({"'real'", with([](json& d) { d.erase("real"); })});
  cases.push_back({"'real'", with([](json& d) { d["mode"] = "simulated"; })});
  cases.push_back({"'real'", with([](json& d) { d["real"] = 5; })});

  cases.push_back({"'real.model'", with([](json& d) { d["real"].erase("model"); })});
  cases.push_back({"'real.tokens'", with([](json& d) { d["real"]["tokens"] = "t.txt"; })});
  cases.push_back({"'real.tokens'", with([](json& d) { d["real"].erase("sample_tokens"); })});
  cases.push_back({"'real.sample_tokens'", with([](json& d) { d["real"]["sample_tokens"] = 1; })});
  cases.push_back({"'real.chunk_tokens'", with([](json& d) { d["real"]["chunk_tokens"] = 0; })});
  cases.push_back({"'real.chunk_tokens'", with([](json& d) { d["real"].erase("chunk_tokens"); })});

  cases.push_back({"'real.codecs'", with([](json& d) { d["real"]["codecs"] = {"f16", "f16"}; })});
  cases.push_back({"'real.codecs'", with([](json& d) { d["real"]["codecs"] = {"f17"}; })});
  cases.push_back({"'real.threads'", with([](json& d) { d["real"]["threads"] = -1; })});
  cases.push_back({"'real.seed'", with([](json& d) { d["real"]["seed"] = -4; })});
  cases.push_back({"'real.background_threads'", with([](json& d) { d["real"]["background_threads"] = 1000; })});
  cases.push_back({"'real.background_duty'", with([](json& d) { d["real"]["background_duty"] = 0.5; })});
  cases.push_back({"'real.background_duty'", with([](json& d) {
                     d["real"]["background_threads"] = 1;
                     d["real"]["background_duty"] = 1.5;
                   })});
  cases.push_back({"'real.colour'", with([](json& d) { d["real"]["colour"] = "red"; })});
  cases.push_back({"'real.emulate_slowdown'", with([](json& d) { d["real"]["emulate_slowdown"] = "yes"; })});
  cases.push_back({"'slowdown'", with([](json& d) {
                     d["real"]["emulate_slowdown"] = true;
                     d["slowdown"] = {1, 0.5};
                   })});

  cases.push_back({"'levels'", with([](json& d) { d["real"]["codecs"] = {"q8"}; })});
  cases.push_back({"'strategies'", with([](json& d) { d["strategies"] = {"hybrid", "sparkv-adaptive"}; })});

  cases.push_back({"'manifest'", with([](json& d) { d["manifest"] = "m.json"; })});
  cases.push_back({"'synthetic'", with([](json& d) { d["synthetic"] = json::object(); })});
  cases.push_back({"'slowdown'", with([](json& d) { d["slowdown"] = {1, 2}; })});
  cases.push_back({"'levels'", with([](json& d) { d["levels"] = {"f16", "q4"}; })});
  cases.push_back({"'real.store'", with([](json& d) { d["real"]["store"] = "/nonexistent/store"; })});

  for (const Case& c : cases) {
    Result<Scenario> parsed = Parse(c.doc);
    ASSERT_FALSE(parsed.ok()) << c.doc.dump();
    EXPECT_NE(parsed.status().message().find(c.field), std::string::npos)
        << c.field << " not in: " << parsed.status().message();
  }
}

TEST(BenchRealTest, RejectsContextThatDoesNotFit) {
  const std::string model = testing::Stories260KGguf();
  testing::TempDir dir;

  // 3 chunks of 32 and a query of 16 need 112 tokens, but only 100 are sampled.
  json doc = TinyScenario(model);
  doc["real"]["sample_tokens"] = 100;
  Result<RealBenchReport> report = RunRealBench(*Parse(doc));
  ASSERT_FALSE(report.ok());
  EXPECT_NE(report.status().message().find("'n_chunks'"), std::string::npos) << report.status().ToString();

  // A token id outside the vocabulary of 512.
  ASSERT_TRUE(WriteFileAtomic(dir.File("tokens.txt"), "1 5 9 512 7\n").ok());
  doc = TinyScenario(model);
  doc["real"].erase("sample_tokens");
  doc["real"]["tokens"] = dir.File("tokens.txt");
  report = RunRealBench(*Parse(doc));
  ASSERT_FALSE(report.ok());
  EXPECT_NE(report.status().message().find("'real.tokens'"), std::string::npos) << report.status().ToString();

  // A given store that lacks the context.
  doc = TinyScenario(model);
  doc["real"]["store"] = dir.path();
  report = RunRealBench(*Parse(doc));
  ASSERT_FALSE(report.ok());
  EXPECT_NE(report.status().message().find("'real.store'"), std::string::npos) << report.status().ToString();
}

TEST(BenchRealTest, StepsBecomePacketTrace) {
  json doc = TinyScenario("/models/m.gguf");
  doc["bandwidth"] = {{"steps", {{0, 12}, {1, 0}, {2, 24}}}};
  doc["timeout_s"] = 5;
  Result<Scenario> scenario = Parse(doc);
  ASSERT_TRUE(scenario.ok()) << scenario.status().ToString();
  double offset_s = -1.0;
  Result<Link> link = PointLink(*scenario, ExpandScenario(*scenario)[0], &offset_s);
  ASSERT_TRUE(link.ok()) << link.status().ToString();
  EXPECT_EQ(offset_s, 0.0);
  ASSERT_TRUE(link->is_trace());
  // 12 Mbit/s for a second is 1.5 MB (1000 packets), the outage carries nothing, and 24 Mbit/s
  // carries twice as much. The tolerance allows for where a millisecond's packets fall.
  EXPECT_NEAR(link->Capacity(0.0, 1.0), 1.5e6, Link::kPacketBytes);
  EXPECT_NEAR(link->Capacity(1.001, 2.0), 0.0, Link::kPacketBytes);
  EXPECT_NEAR(link->Capacity(2.0, 3.0), 3.0e6, 2 * Link::kPacketBytes);
}

TEST(BenchRealTest, BackgroundLoadThreadsSpin) {
  BackgroundLoad load(2, 0.3);
  // A bounded wait for the threads to report. How long it took is not checked.
  for (int i = 0; i < 2000 && load.n_spins() == 0; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(5));
  EXPECT_GT(load.n_spins(), 0u);
}

TEST(BenchRealTest, RestartPacingChecksOffset) {
  testing::TempDir dir;
  ServerOptions options;
  options.root = dir.path();
  options.keep_alive_timeout_s = 1;
  Result<std::unique_ptr<StoreServer>> server = StoreServer::Start(options);
  ASSERT_TRUE(server.ok()) << server.status().ToString();
  Result<Link> link = Link::Constant(8.0);
  ASSERT_TRUE(link.ok());

  const Status negative = (*server)->RestartPacing(*link, -1.0);
  EXPECT_EQ(negative.code(), ErrorCode::kInvalidArgument);
  EXPECT_NE(negative.message().find("offset"), std::string::npos) << negative.ToString();
  EXPECT_EQ((*server)->RestartPacing(*link, NAN).code(), ErrorCode::kInvalidArgument);
  EXPECT_TRUE((*server)->RestartPacing(*link, 2.5).ok());
  EXPECT_TRUE((*server)->RestartPacing(std::nullopt).ok());
}

TEST(BenchRealTest, CliPrintsRatiosAndJson) {
  testing::TempDir dir;
  json doc = TinyScenario(testing::Stories260KGguf());
  doc["repetitions"] = 1;
  ASSERT_TRUE(WriteFileAtomic(dir.File("scenario.json"), doc.dump()).ok());
  const std::string command = testing::SparkvBinary() + " bench --scenario " + dir.File("scenario.json");

  auto [status, out] = testing::RunShell(command + " --csv " + dir.File("out.csv") + " 2>/dev/null");
  ASSERT_EQ(status, 0) << out;
  EXPECT_NE(out.find("real/sim"), std::string::npos) << out;
  EXPECT_NE(out.find("sparkv-adaptive"), std::string::npos) << out;
  Result<std::string> csv = ReadFileToString(dir.File("out.csv"));
  ASSERT_TRUE(csv.ok());
  EXPECT_EQ(std::count(csv->begin(), csv->end(), '\n'), 4);  // header and three strategies

  std::tie(status, out) = testing::RunShell(command + " --json 2>/dev/null");
  ASSERT_EQ(status, 0) << out;
  const json report = json::parse(out);
  EXPECT_EQ(report["mode"], "both");
  ASSERT_EQ(report["points"].size(), 1u);
  for (const json& row : report["points"][0]["strategies"]) {
    EXPECT_GT(row["ttft_s"].get<double>(), 0.0);
    EXPECT_GT(row["real_over_sim"].get<double>(), 0.0);
    EXPECT_EQ(row["first_token_mismatches"], 0);
  }

  // A bad field stops the CLI before anything runs, naming the field.
  doc["real"]["chunk_tokens"] = "many";
  ASSERT_TRUE(WriteFileAtomic(dir.File("scenario.json"), doc.dump()).ok());
  std::tie(status, out) = testing::RunShell(command + " 2>&1");
  EXPECT_NE(status, 0);
  EXPECT_NE(out.find("real.chunk_tokens"), std::string::npos) << out;
}

}  // namespace
}  // namespace sparkv
