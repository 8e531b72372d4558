// End-to-end test of `sparkv bench`: a small rate sweep run through the real binary, its JSON,
// CSV and SVG output read back, and a bad scenario rejected with the field's name.
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <sstream>

#include "common/file_util.h"
#include "plan/cost_model.h"
#include "test_support.h"

namespace sparkv {
namespace {

using nlohmann::json;

class BenchCliTest : public ::testing::Test {
 protected:
  void SetUp() override {
    Profile profile;
    profile.compute = {0.02, 1e-5, 0.0};
    profile.decode = {{"f16", 0.0, 5e-10}, {"q8", 0.0, 1.6e-9}};
    profile.model_fingerprint_hex = "998e70f4bcf08a3eed4e29045bbd69f9";
    ASSERT_TRUE(SaveProfile(profile, dir_.File("profile.json")).ok());
  }

  json Scenario() const {
    return {{"name", "tiny"},
            {"profile", "profile.json"},
            {"synthetic", {{"chunk_tokens", 128}, {"bytes_per_token", {{"f16", 12288}, {"q8", 6528}}}}},
            {"n_chunks", 4},
            {"bandwidth", {{"rate_mbit", {1, 10, 100}}}},
            {"rtt_ms", 20},
            {"strategies", {"local", "stream", "sparkv-adaptive"}},
            {"energy_profile", "phone-wifi"}};
  }

  std::pair<int, std::string> Bench(const json& scenario, const std::string& flags) {
    EXPECT_TRUE(WriteFileAtomic(dir_.File("scenario.json"), scenario.dump()).ok());
    return testing::RunShell(testing::SparkvBinary() + " bench --scenario " + dir_.File("scenario.json") + " " +
                             flags + " 2>" + dir_.File("stderr.txt"));
  }

  std::string ReadStderr() const {
    Result<std::string> text = ReadFileToString(dir_.File("stderr.txt"));
    return text.ok() ? *text : std::string();
  }

  testing::TempDir dir_;
};

// A CSV path that cannot be written fails before any point runs, not after the whole sweep.
TEST_F(BenchCliTest, UnwritableCsvFailsFirst) {
  const auto [status, out] = Bench(Scenario(), "--csv /nonexistent/folder/out.csv");
  EXPECT_NE(status, 0) << out;
  EXPECT_EQ(out, "") << "nothing runs, so nothing is printed";
  EXPECT_NE(ReadStderr().find("--csv /nonexistent/folder/out.csv: the folder /nonexistent/folder does not exist"),
            std::string::npos)
      << ReadStderr();
}

TEST_F(BenchCliTest, JsonReportParsesBack) {
  const auto [status, out] = Bench(Scenario(), "--json --csv " + dir_.File("out.csv") + " --svg-dir " + dir_.File("svg"));
  ASSERT_EQ(status, 0) << out << ReadStderr();
  const json report = json::parse(out);
  EXPECT_EQ(report["scenario"], "tiny");
  EXPECT_EQ(report["energy_profile"], "phone-wifi");
  ASSERT_EQ(report["points"].size(), 3u);
  double previous_stream_ttft = HUGE_VAL;
  for (const json& point : report["points"]) {
    ASSERT_EQ(point["strategies"].size(), 3u);
    const double optimum = point["hindsight_ttft_s"];
    EXPECT_GT(optimum, 0);
    for (const json& s : point["strategies"]) {
      const double ttft = s["ttft_s"];
      EXPECT_GE(ttft, optimum * (1 - 1e-9)) << s["name"];
      EXPECT_GT(s["energy_j"].get<double>(), 0) << s["name"];
      EXPECT_EQ(s["ttft_spread_s"].get<double>(), 0.0) << s["name"];
    }
    const json& local = point["strategies"][0];
    const json& stream = point["strategies"][1];
    const json& adaptive = point["strategies"][2];
    EXPECT_EQ(local["name"], "local");
    EXPECT_EQ(local["races"], 0);
    EXPECT_EQ(local["race_ratio"], 0.0) << "local never races";
    EXPECT_EQ(adaptive["race_ratio"], 3.0);
    EXPECT_GE(adaptive["races"].get<int>(), 0);
    EXPECT_EQ(local["received_bytes"], 0);
    EXPECT_DOUBLE_EQ(local["energy_vs_local"].get<double>(), 1.0);
    EXPECT_DOUBLE_EQ(local["radio_active_j"].get<double>(), 0.0);
    EXPECT_GT(stream["radio_active_j"].get<double>(), 0.0);
    // Streaming gets faster as the link does.
    EXPECT_LT(stream["ttft_s"].get<double>(), previous_stream_ttft);
    previous_stream_ttft = stream["ttft_s"];
  }

  Result<std::string> csv = ReadFileToString(dir_.File("out.csv"));
  ASSERT_TRUE(csv.ok());
  std::istringstream lines(*csv);
  int n_lines = 0;
  for (std::string line; std::getline(lines, line);) ++n_lines;
  EXPECT_EQ(n_lines, 1 + 3 * 3);
  EXPECT_NE(csv->find(",replans,races,race_ratio\n"), std::string::npos) << *csv;

  for (const char* name : {"tiny-p0-local-timeline.svg", "tiny-p2-sparkv-adaptive-timeline.svg",
                           "tiny-ttft-vs-rate.svg", "tiny-energy-vs-rate.svg"}) {
    EXPECT_TRUE(std::filesystem::exists(dir_.File(std::string("svg/") + name))) << name;
  }
}

TEST_F(BenchCliTest, BothModeReportsHindsight) {
  // Mode both on stories260K: every row's load over the point's simulated hindsight optimum, in
  // the table, the CSV and the JSON.
  const json scenario = {
      {"name", "tiny-both"},
      {"mode", "both"},
      {"real", {{"model", testing::Stories260KGguf()}, {"sample_tokens", 120}, {"chunk_tokens", 32}}},
      {"levels", {"f16"}},
      {"n_chunks", 3},
      {"bandwidth", {{"rate_mbit", 8}}},
      {"strategies", {"local", "sparkv-adaptive"}},
      {"energy_profile", "phone-wifi"}};
  const auto [table_status, table] = Bench(scenario, "--csv " + dir_.File("both.csv"));
  ASSERT_EQ(table_status, 0) << table << ReadStderr();
  EXPECT_NE(table.find("/optim"), std::string::npos) << table;
  EXPECT_NE(table.find("simulated hindsight optimum"), std::string::npos) << table;

  Result<std::string> csv = ReadFileToString(dir_.File("both.csv"));
  ASSERT_TRUE(csv.ok());
  std::istringstream lines(*csv);
  std::string header;
  ASSERT_TRUE(std::getline(lines, header));
  EXPECT_NE(header.find(",hindsight_ttft_s,"), std::string::npos) << header;
  const auto fields = [](const std::string& line) { return std::count(line.begin(), line.end(), ',') + 1; };
  for (std::string line; std::getline(lines, line);) EXPECT_EQ(fields(line), fields(header)) << line;

  const auto [json_status, out] = Bench(scenario, "--json");
  ASSERT_EQ(json_status, 0) << out << ReadStderr();
  const json report = json::parse(out);
  ASSERT_EQ(report["points"].size(), 1u);
  const double optimum = report["points"][0]["hindsight_ttft_s"];
  EXPECT_GT(optimum, 0.0);
  for (const json& row : report["points"][0]["strategies"]) {
    EXPECT_DOUBLE_EQ(row["load_over_hindsight"].get<double>(), row["load_ttft_s"].get<double>() / optimum);
  }
}

TEST_F(BenchCliTest, TablePrintsEveryRow) {
  const auto [status, out] = Bench(Scenario(), "");
  ASSERT_EQ(status, 0) << out;
  EXPECT_NE(out.find("100 Mbit/s"), std::string::npos) << out;
  EXPECT_NE(out.find("sparkv-adaptive"), std::string::npos) << out;
  EXPECT_NE(out.find("energy J"), std::string::npos) << out;
}

// A long sweep draws a progress line only on a terminal. A CI log (stderr sent to a file) gets
// nothing, with the table and with JSON.
TEST_F(BenchCliTest, SweepSilentWhenStderrNotTerminal) {
  json scenario = Scenario();
  std::vector<double> rates;
  for (int i = 1; i <= 60; ++i) rates.push_back(i);
  scenario["bandwidth"] = {{"rate_mbit", rates}};
  scenario["n_chunks"] = 64;
  for (const char* flags : {"", "--json"}) {
    const auto [status, out] = Bench(scenario, flags);
    ASSERT_EQ(status, 0) << out << ReadStderr();
    EXPECT_NE(out.find("sparkv-adaptive"), std::string::npos) << flags;
    EXPECT_EQ(ReadStderr(), "") << flags;
  }
}

TEST_F(BenchCliTest, BadScenarioFailsNamingField) {
  json scenario = Scenario();
  scenario["slowdown"] = -3;
  const auto [status, out] = Bench(scenario, "--json");
  EXPECT_NE(status, 0);
  const std::string err = ReadStderr();
  EXPECT_NE(err.find("'slowdown'"), std::string::npos) << err;

  scenario = Scenario();
  scenario["energy_profile"] = "toaster";
  const auto [status2, out2] = Bench(scenario, "");
  EXPECT_NE(status2, 0);
  const std::string err2 = ReadStderr();
  EXPECT_NE(err2.find("toaster"), std::string::npos) << err2;
}

}  // namespace
}  // namespace sparkv
