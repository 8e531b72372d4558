// Cost model: compute-cost fit, bandwidth integration, decode costs, profile files.
#include <gtest/gtest.h>

#include <cmath>
#include <fstream>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "common/file_util.h"
#include "common/json_error.h"
#include "plan/cost_model.h"
#include "test_support.h"

namespace sparkv {
namespace {

constexpr double kInf = std::numeric_limits<double>::infinity();

// Prefill timings of chunks of several lengths at several positions, as a profiler would take.
std::vector<ComputeSample> SamplesFrom(const ComputeCost& truth, double noise, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<double> n01(0.0, 1.0);
  std::vector<ComputeSample> samples;
  for (int32_t len : {32, 64, 128, 256, 512}) {
    for (int32_t begin = 0; begin + len <= 4096; begin += 768) {
      const double t = truth.ChunkSeconds(begin, begin + len);
      samples.push_back({begin, begin + len, std::max(0.0, t * (1.0 + noise * n01(rng)))});
    }
  }
  return samples;
}

TEST(ComputeCostTest, ChunkSecondsFollowsTheFormula) {
  const ComputeCost cost{1e-3, 1e-6, 0.02};
  // (e - b) * (a + c * (b + e) / 2) + d for [256, 512): 256 * (1e-3 + 1e-6 * 384) + 0.02.
  EXPECT_DOUBLE_EQ(cost.ChunkSeconds(256, 512), 256 * (1e-3 + 1e-6 * 384) + 0.02);
  EXPECT_GT(cost.ChunkSeconds(3840, 4096), cost.ChunkSeconds(0, 256));  // attention grows
}

TEST(FitComputeCostTest, RecoversCoefficientsFromExactSamples) {
  const ComputeCost truth{4e-4, 3e-8, 0.015};
  FitReport report;
  Result<ComputeCost> fit = FitComputeCost(SamplesFrom(truth, 0.0, 1), &report);
  ASSERT_TRUE(fit.ok()) << fit.status().ToString();
  EXPECT_NEAR(fit->a, truth.a, truth.a * 1e-6);
  EXPECT_NEAR(fit->c, truth.c, truth.c * 1e-6);
  EXPECT_NEAR(fit->d, truth.d, truth.d * 1e-6);
  EXPECT_LT(report.max_relative_error, 1e-6);
  EXPECT_GT(report.n_samples, 3);
}

TEST(FitComputeCostTest, RecoversCoefficientsFromNoisySamples) {
  const ComputeCost truth{4e-4, 3e-8, 0.015};
  FitReport report;
  Result<ComputeCost> fit = FitComputeCost(SamplesFrom(truth, 0.02, 7), &report);
  ASSERT_TRUE(fit.ok()) << fit.status().ToString();
  EXPECT_NEAR(fit->a, truth.a, truth.a * 0.05);
  EXPECT_NEAR(fit->c, truth.c, truth.c * 0.25);
  EXPECT_NEAR(fit->d, truth.d, truth.d * 0.5);
  EXPECT_GT(report.rms_seconds, 0.0);
  EXPECT_LT(report.max_relative_error, 0.1);
}

TEST(FitComputeCostTest, KeepsCoefficientsNonNegative) {
  // No attention term and no fixed cost: noise would push an unconstrained fit below zero for
  // some seeds; the constrained one must stay at or above it.
  const ComputeCost truth{5e-4, 0.0, 0.0};
  for (uint64_t seed = 0; seed < 20; ++seed) {
    Result<ComputeCost> fit = FitComputeCost(SamplesFrom(truth, 0.05, seed), nullptr);
    ASSERT_TRUE(fit.ok()) << fit.status().ToString();
    EXPECT_GE(fit->a, 0.0);
    EXPECT_GE(fit->c, 0.0);
    EXPECT_GE(fit->d, 0.0);
    EXPECT_NEAR(fit->a, truth.a, truth.a * 0.1);
  }
}

TEST(FitComputeCostTest, RejectsTooFewOrDegenerateOrBrokenSamples) {
  std::vector<ComputeSample> two = {{0, 64, 0.1}, {64, 128, 0.1}};
  EXPECT_EQ(FitComputeCost(two, nullptr).status().code(), ErrorCode::kInvalidArgument);

  // The same range timed three times cannot separate a, c and d.
  std::vector<ComputeSample> same = {{0, 64, 0.1}, {0, 64, 0.11}, {0, 64, 0.09}};
  EXPECT_EQ(FitComputeCost(same, nullptr).status().code(), ErrorCode::kInvalidArgument);

  std::vector<ComputeSample> empty_range = SamplesFrom({1e-3, 0, 0}, 0, 1);
  empty_range[2].end = empty_range[2].begin;
  EXPECT_EQ(FitComputeCost(empty_range, nullptr).status().code(), ErrorCode::kInvalidArgument);

  std::vector<ComputeSample> nan_time = SamplesFrom({1e-3, 0, 0}, 0, 1);
  nan_time[0].seconds = std::nan("");
  EXPECT_EQ(FitComputeCost(nan_time, nullptr).status().code(), ErrorCode::kInvalidArgument);
}

TEST(BandwidthModelTest, ConstantRateTakesBytesOverRate) {
  const BandwidthModel bw = BandwidthModel::Constant(1e6);
  EXPECT_DOUBLE_EQ(bw.FinishTime(2.0, 500000), 2.0 + 500000 / 1e6);
  EXPECT_DOUBLE_EQ(bw.FinishTime(2.0, 0), 2.0);
  EXPECT_DOUBLE_EQ(bw.RateAt(100.0), 1e6);
}

TEST(BandwidthModelTest, DefaultAndZeroRateNeverDeliver) {
  EXPECT_EQ(BandwidthModel().FinishTime(0.0, 1), kInf);
  EXPECT_EQ(BandwidthModel::Constant(0.0).FinishTime(0.0, 1), kInf);
}

TEST(BandwidthModelTest, StepsIntegrateAcrossRateChanges) {
  // 1000 B/s until 1 s, then 4000 B/s.
  const BandwidthModel bw = BandwidthModel::Steps({{0.0, 1000}, {1.0, 4000}}).value();
  // 2000 B from 0: 1000 B by 1 s, the other 1000 B at 4000 B/s take 0.25 s.
  EXPECT_DOUBLE_EQ(bw.FinishTime(0.0, 2000), 1.25);
  // Entirely after the step.
  EXPECT_DOUBLE_EQ(bw.FinishTime(2.0, 2000), 2.5);
  // Starting half way through the slow step.
  EXPECT_DOUBLE_EQ(bw.FinishTime(0.5, 500), 1.0);
  EXPECT_DOUBLE_EQ(bw.BytesBetween(0.5, 1.5), 500 + 2000);
}

TEST(BandwidthModelTest, OutageDelaysAndTrailingOutageNeverDelivers) {
  const BandwidthModel outage =
      BandwidthModel::Steps({{0.0, 1000}, {1.0, 0.0}, {3.0, 1000}}).value();
  // 1000 B by 1 s, nothing until 3 s, then 500 B more.
  EXPECT_DOUBLE_EQ(outage.FinishTime(0.0, 1500), 3.5);
  EXPECT_DOUBLE_EQ(outage.FinishTime(1.5, 100), 3.1);

  const BandwidthModel dead = BandwidthModel::Steps({{0.0, 1000}, {1.0, 0.0}}).value();
  EXPECT_DOUBLE_EQ(dead.FinishTime(0.0, 1000), 1.0);
  EXPECT_EQ(dead.FinishTime(0.0, 1001), kInf);
}

TEST(BandwidthModelTest, LoopingTraceRepeats) {
  // 1000 B/s for 1 s, then 1 s of nothing, over and over.
  const std::vector<double> rates = {1000, 0};
  const BandwidthModel bw = BandwidthModel::Trace(rates, 1.0, true).value();
  EXPECT_DOUBLE_EQ(bw.FinishTime(0.0, 2500), 4.5);
  EXPECT_DOUBLE_EQ(bw.FinishTime(10.5, 1000), 12.5);
  EXPECT_DOUBLE_EQ(bw.RateAt(6.5), 1000);
  EXPECT_DOUBLE_EQ(bw.RateAt(7.5), 0);
  EXPECT_DOUBLE_EQ(bw.BytesBetween(0.0, 10.0), 5000);

  const std::vector<double> silent = {0, 0};
  EXPECT_EQ(BandwidthModel::Trace(silent, 1.0, true).value().FinishTime(0, 1), kInf);
}

TEST(BandwidthModelTest, FinishTimeInvertsBytesBetweenAndIsMonotone) {
  std::mt19937_64 rng(42);
  std::uniform_real_distribution<double> u(0.0, 1.0);
  const std::vector<double> rates = {3e5, 1e6, 0.0, 5e4, 2e6};
  const BandwidthModel models[] = {
      BandwidthModel::Steps({{0.0, 2e5}, {0.3, 0.0}, {0.7, 1e6}, {2.0, 5e5}}).value(),
      BandwidthModel::Trace(rates, 0.1, true).value(),
      BandwidthModel::Trace(rates, 0.1, false).value(),
  };
  for (const BandwidthModel& bw : models) {
    for (int i = 0; i < 2000; ++i) {
      const double start = 5.0 * u(rng);
      const auto bytes = static_cast<uint64_t>(1 + 2e6 * u(rng));
      const double finish = bw.FinishTime(start, bytes);
      ASSERT_TRUE(std::isfinite(finish));
      EXPECT_NEAR(bw.BytesBetween(start, finish), static_cast<double>(bytes), 1e-6 * bytes + 1e-3);
      EXPECT_GE(finish, start);
      EXPECT_LE(bw.FinishTime(start, bytes / 2), finish);
      EXPECT_LE(finish, bw.FinishTime(start + 0.01, bytes) + 1e-9);
    }
  }
}

TEST(BandwidthModelTest, RejectsMalformedSteps) {
  EXPECT_FALSE(BandwidthModel::Steps({}).ok());
  EXPECT_FALSE(BandwidthModel::Steps({{0.5, 1000}}).ok());                     // not from 0
  EXPECT_FALSE(BandwidthModel::Steps({{0.0, 1000}, {0.0, 2000}}).ok());       // not increasing
  EXPECT_FALSE(BandwidthModel::Steps({{0.0, -1}}).ok());                        // negative rate
  EXPECT_FALSE(BandwidthModel::Steps({{0.0, std::nan("")}}).ok());              // NaN rate
  EXPECT_FALSE(BandwidthModel::Steps({{0.0, 1}, {kInf, 1}}).ok());              // infinite time
  const std::vector<double> rates = {1000};
  EXPECT_FALSE(BandwidthModel::Trace(rates, 0.0, true).ok());
  EXPECT_FALSE(BandwidthModel::Trace({}, 1.0, true).ok());
}

TEST(DecodeCostTest, PerChunkPlusPerByte) {
  const DecodeCost d{"q4z", 0.002, 1e-8};
  EXPECT_DOUBLE_EQ(d.Seconds(1000000), 0.002 + 1e-8 * 1e6);
}

Profile SampleProfile() {
  Profile p;
  p.compute = {4e-4, 3e-8, 0.015};
  p.decode = {{"f16", 0.0001, 1e-10}, {"q4z", 0.002, 2e-8}};
  p.n_threads = 2;
  p.decode_on_spare_core = true;
  p.cpu_name = "Test CPU @ 2.0GHz";
  p.model_fingerprint_hex = "0123456789abcdef0123456789abcdef";
  return p;
}

TEST(ProfileTest, SaveLoadRoundTrip) {
  testing::TempDir dir;
  const Profile p = SampleProfile();
  ASSERT_TRUE(SaveProfile(p, dir.File("profile.json")).ok());
  Result<Profile> back = LoadProfile(dir.File("profile.json"));
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  EXPECT_EQ(back->compute.a, p.compute.a);
  EXPECT_EQ(back->compute.c, p.compute.c);
  EXPECT_EQ(back->compute.d, p.compute.d);
  ASSERT_EQ(back->decode.size(), 2u);
  ASSERT_NE(back->FindDecode("q4z"), nullptr);
  EXPECT_EQ(back->FindDecode("q4z")->seconds_per_byte, 2e-8);
  EXPECT_EQ(back->FindDecode("q8"), nullptr);
  EXPECT_EQ(back->n_threads, 2);
  EXPECT_TRUE(back->decode_on_spare_core);
  EXPECT_EQ(back->cpu_name, p.cpu_name);
  EXPECT_EQ(back->model_fingerprint_hex, p.model_fingerprint_hex);
}

TEST(ProfileTest, MissingFileIsAnError) {
  testing::TempDir dir;
  EXPECT_FALSE(LoadProfile(dir.File("absent.json")).ok());
}

TEST(ProfileTest, RejectsBrokenJson) {
  const std::string good = ProfileToJson(SampleProfile());
  ASSERT_TRUE(ProfileFromJson(good).ok());

  auto replaced = [&good](const std::string& from, const std::string& to) {
    std::string s = good;
    const size_t at = s.find(from);
    EXPECT_NE(at, std::string::npos) << from;
    return s.replace(at, from.size(), to);
  };
  const std::vector<std::string> broken = {
      "",
      good.substr(0, good.size() / 2),  // truncated
      "[1, 2, 3]",
      replaced("sparkv-profile", "other-profile"),               // wrong format name
      replaced("\"version\": 1", "\"version\": 99"),             // future version
      replaced("\"version\": 1", "\"version\": \"one\""),        // wrong type
      replaced("\"n_threads\": 2", "\"n_threads\": 0"),
      replaced("\"a\": 0.0004", "\"a\": -0.0004"),                // negative coefficient
      replaced("0123456789abcdef0123456789abcdef", "not-hex"),   // bad fingerprint
      replaced("\"codec\": \"f16\"", "\"codec\": \"q4z\""),       // duplicate codec
      replaced("\"cpu_name\"", "\"cpu\""),                       // missing field
  };
  for (const std::string& text : broken) {
    Result<Profile> p = ProfileFromJson(text);
    EXPECT_FALSE(p.ok()) << text;
  }
}

// The JSON of SampleProfile() with the first `from` replaced by `to`.
std::string SampleProfileWith(const std::string& from, const std::string& to) {
  std::string s = ProfileToJson(SampleProfile());
  const size_t at = s.find(from);
  EXPECT_NE(at, std::string::npos) << from;
  return s.replace(at, from.size(), to);
}

TEST(ProfileTest, ErrorsNameTheField) {
  const auto replaced = SampleProfileWith;
  const std::pair<std::string, std::string> cases[] = {
      {replaced("\"cpu_name\"", "\"cpu\""), "\"cpu_name\" is missing"},
      {replaced("\"a\": 0.0004", "\"a\": \"x\""), "\"compute.a\" is a string, expected a number"},
      {replaced("\"codec\": \"f16\"", "\"codec\": 16"), "\"decode[0].codec\" is a number, expected a string"},
      {replaced("\"n_threads\": 2", "\"n_threads\": 2.5"), "\"n_threads\" is a number, expected a whole number"},
      {replaced("\"n_threads\": 2", "\"n_threads\": 4294967296"), "\"n_threads\" is 4294967296, expected 1 to 4096"},
      {replaced("\"decode_on_spare_core\": true", "\"decode_on_spare_core\": 1"),
       "\"decode_on_spare_core\" is a number, expected true or false"},
      {replaced("\"seconds_per_chunk\": 0.0001", "\"seconds_per_chunk\": true"),
       "\"decode[0].seconds_per_chunk\" is a boolean, expected a number"},
      {replaced("\"a\": 0.0004", "\"a\": -0.0004"), "\"compute.a\" is -0.0004, expected a finite number in [0, "},
  };
  for (const auto& [text, expected] : cases) {
    Result<Profile> p = ProfileFromJson(text);
    ASSERT_FALSE(p.ok()) << text;
    EXPECT_NE(p.status().message().find(expected), std::string::npos) << p.status().ToString();
  }
}

// With the registry's names given, a decode entry for any other codec is rejected.
TEST(ProfileTest, UnknownCodecRejectedWhenNamesGiven) {
  const std::string text = SampleProfileWith("\"codec\": \"f16\"", "\"codec\": \"f17\"");
  EXPECT_TRUE(ProfileFromJson(text).ok()) << "without names every codec is accepted";
  const std::vector<std::string> known = {"f16", "q8"};
  Result<Profile> p = ProfileFromJson(text, known);
  ASSERT_FALSE(p.ok());
  EXPECT_NE(p.status().message().find("\"decode[0].codec\" is \"f17\", an unknown codec (known codecs: f16, q8)"),
            std::string::npos)
      << p.status().ToString();
}

// Numbers a profile cannot mean: negative, beyond a double (JSON has no inf), absurdly large, or
// all zero. Each error names the field, its value and the fix.
TEST(ProfileTest, AbsurdNumbersAreRejectedNamingTheField) {
  const std::string good = ProfileToJson(SampleProfile());
  const auto replaced = SampleProfileWith;
  const std::string compute = "\"compute\": {\n    \"a\": 0.0004,\n    \"c\": 3e-08,\n    \"d\": 0.015\n  }";
  ASSERT_NE(good.find(compute), std::string::npos) << good;
  const std::pair<std::string, std::string> cases[] = {
      {replaced(compute, "\"compute\": {\"a\": 0, \"c\": 1e308, \"d\": 0}"), "\"compute.c\" is 1e+308"},
      {replaced(compute, "\"compute\": {\"a\": 1e400, \"c\": 0, \"d\": 0}"), "number 1e400 too large for a double"},
      {replaced(compute, "\"compute\": {\"a\": 1e6, \"c\": 0, \"d\": 0}"), "\"compute.a\" is 1e+06"},
      {replaced(compute, "\"compute\": {\"a\": 0.001, \"c\": 0.5, \"d\": 0}"), "\"compute.c\" is 0.5"},
      {replaced(compute, "\"compute\": {\"a\": 0.001, \"c\": 0, \"d\": -0.01}"), "\"compute.d\" is -0.01"},
      {replaced(compute, "\"compute\": {\"a\": 0.001, \"c\": 0, \"d\": 1e300}"), "\"compute.d\" is 1e+300"},
      {replaced(compute, "\"compute\": {\"a\": 0, \"c\": 0, \"d\": 0}"),
       "\"compute.a\", \"compute.c\" and \"compute.d\" are 0, 0 and 0, so a one-token prefill would take 0 s"},
      {replaced(compute, "\"compute\": {\"a\": 1e-300, \"c\": 0, \"d\": 0}"), "would take 1e-300 s"},
      {replaced("\"seconds_per_chunk\": 0.0001", "\"seconds_per_chunk\": -1"),
       "\"decode[0].seconds_per_chunk\" is -1"},
      {replaced("\"seconds_per_chunk\": 0.0001", "\"seconds_per_chunk\": 1e9"),
       "\"decode[0].seconds_per_chunk\" is 1e+09"},
      {replaced("\"seconds_per_byte\": 1e-10", "\"seconds_per_byte\": 1e308"), "\"decode[0].seconds_per_byte\" is 1e+308"},
      {replaced("\"seconds_per_byte\": 2e-08", "\"seconds_per_byte\": -2e-08"), "\"decode[1].seconds_per_byte\" is -2e-08"},
      {replaced("\"n_threads\": 2", "\"n_threads\": 1000000"), "\"n_threads\" is 1000000, expected 1 to "},
      {replaced("\"n_threads\": 2", "\"n_threads\": -3"), "\"n_threads\" is -3, expected 1 to "},
  };
  for (const auto& [text, expected] : cases) {
    Result<Profile> p = ProfileFromJson(text);
    ASSERT_FALSE(p.ok()) << text;
    const std::string message = p.status().message();
    EXPECT_NE(message.find(expected), std::string::npos) << message;
    EXPECT_NE(message.find("sparkv profile"), std::string::npos) << message;
  }
}

// The bounds hold for what a device measures: a slow model on a slow device, a fast one on a fast
// device, and a profile whose only cost is attention.
TEST(ProfileTest, PlausibleNumbersLoad) {
  for (const ComputeCost& cost : {ComputeCost{2.0, 1e-3, 5.0}, ComputeCost{1e-7, 0.0, 0.0}, ComputeCost{0.0, 1e-8, 0.0}}) {
    Profile p = SampleProfile();
    p.compute = cost;
    p.decode = {{"f16ans", 0.5, 1e-6}};
    Result<Profile> back = ProfileFromJson(ProfileToJson(p));
    ASSERT_TRUE(back.ok()) << back.status().ToString();
    EXPECT_EQ(back->compute.c, cost.c);
  }
}

// No decode entries is a valid profile: `sparkv run` measures the levels it streams, and simulate
// rejects a level without a cost (cli_simulate_test.cc), as bench does.
TEST(ProfileTest, EmptyDecodeListLoads) {
  Profile p = SampleProfile();
  p.decode.clear();
  Result<Profile> back = ProfileFromJson(ProfileToJson(p));
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  EXPECT_TRUE(back->decode.empty());
  EXPECT_EQ(back->FindDecode("f16"), nullptr);
}

// Every rejected profile is reported in our words: no text of the JSON library, the fix named, and
// for a file, its path.
TEST(ProfileTest, ErrorsNameFixWithoutLibraryText) {
  const std::string good = ProfileToJson(SampleProfile());
  const std::string broken[] = {
      "",
      good.substr(0, good.size() / 2),
      "{\"format\": \"sparkv-profile\",\n \"version\": 1,,}",
      "[1, 2, 3]",
      good.substr(0, good.find("\"n_threads\"")) + "\"n_threads\": \"two\"}",
  };
  for (const std::string& text : broken) {
    Result<Profile> p = ProfileFromJson(text);
    ASSERT_FALSE(p.ok()) << text;
    const std::string message = p.status().message();
    EXPECT_EQ(message.find("json.exception"), std::string::npos) << message;
    EXPECT_EQ(message.find("[json"), std::string::npos) << message;
    EXPECT_NE(message.find("sparkv profile"), std::string::npos) << message;
  }

  // A syntax error is placed by line and column, counted from 1.
  Result<Profile> syntax = ProfileFromJson("{\"format\": \"sparkv-profile\",\n \"version\": 1,,}");
  ASSERT_FALSE(syntax.ok());
  EXPECT_NE(syntax.status().message().find("line 2, column 15"), std::string::npos) << syntax.status().message();

  testing::TempDir dir;
  ASSERT_TRUE(WriteFileAtomic(dir.File("p.json"), std::string_view("{\"format\": 3}")).ok());
  Result<Profile> loaded = LoadProfile(dir.File("p.json"));
  ASSERT_FALSE(loaded.ok());
  EXPECT_EQ(loaded.status().message().rfind(dir.File("p.json") + ": profile: field \"format\"", 0), 0u)
      << loaded.status().message();
}

TEST(JsonErrorPlaceTest, CountsLinesAndColumnsFromOne) {
  EXPECT_EQ(JsonErrorPlace("{,}", 2), "line 1, column 2");
  EXPECT_EQ(JsonErrorPlace("{\n  \"a\": ,\n}", 9), "line 2, column 7");
  // nlohmann places an unexpected end one past the text; that is the end, not beyond it.
  EXPECT_EQ(JsonErrorPlace("{\n", 3), "line 2, column 1");
  EXPECT_EQ(JsonErrorPlace("", 0), "line 1, column 1");
}

}  // namespace
}  // namespace sparkv
