// `sparkv bench-engine` on the real stories260K model: the report covers every chunk of the
// context and its figures are consistent with each other. Speeds themselves are not asserted.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "test_support.h"

namespace sparkv {
namespace {

TEST(BenchEngineCommandTest, JsonCoversEveryChunk) {
  const std::string command = testing::SparkvBinary() + " --log-level error bench-engine --model " +
                              testing::Stories260KGguf() + " --context 200 --chunk 64 --decode 8 --threads 2 --json";
  const auto [status, output] = testing::RunShell(command);
  ASSERT_EQ(status, 0) << output;

  const nlohmann::json report = nlohmann::json::parse(output);
  ASSERT_EQ(report["chunks"].size(), 4u);  // [0, 64), [64, 128), [128, 192), [192, 200)
  EXPECT_EQ(report["chunks"][3]["begin"], 192);
  EXPECT_EQ(report["chunks"][3]["end"], 200);
  for (const nlohmann::json& chunk : report["chunks"]) {
    EXPECT_GT(chunk["seconds"].get<double>(), 0.0);
    EXPECT_GT(chunk["tokens_per_s"].get<double>(), 0.0);
  }
  EXPECT_GT(report["decode_tokens_per_s"].get<double>(), 0.0);
  EXPECT_GT(report["peak_rss_bytes"].get<uint64_t>(), report["kv_cache_bytes"].get<uint64_t>());
  EXPECT_EQ(report["rss_budget_bytes"].get<uint64_t>(),
            report["model_file_bytes"].get<uint64_t>() + report["kv_cache_bytes"].get<uint64_t>() + (64ull << 20));
}

TEST(BenchEngineCommandTest, DefaultContextFitsTheModel) {
  // stories260K was trained on 512 positions: the default context leaves room for the decode.
  const std::string command = testing::SparkvBinary() + " bench-engine --model " + testing::Stories260KGguf() +
                              " --decode 8 --threads 2 --json 2>&1";
  const auto [status, output] = testing::RunShell(command);
  ASSERT_EQ(status, 0) << output;
  EXPECT_EQ(output.find("warning"), std::string::npos) << output;
  const nlohmann::json report = nlohmann::json::parse(output.substr(output.find('{')));
  EXPECT_EQ(report["context"], 504);
}

TEST(BenchEngineCommandTest, ZeroChunkIsRejected) {
  const std::string command = testing::SparkvBinary() + " bench-engine --model " + testing::Stories260KGguf() +
                              " --chunk 0 2>&1";
  const auto [status, output] = testing::RunShell(command);
  EXPECT_NE(status, 0);
  EXPECT_NE(output.find("--chunk"), std::string::npos) << output;
}

}  // namespace
}  // namespace sparkv
