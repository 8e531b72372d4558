// Ingest on the real stories260K model: the size report and the warning for levels that come out
// larger than lossless f16 when chunks are too short, through the library and `sparkv ingest`.
#include "runtime/ingest.h"

#include <gtest/gtest.h>

#include <fstream>
#include <sstream>

#include "kv/codec.h"
#include "runtime/codec_eval.h"
#include "test_support.h"

namespace sparkv {
namespace {

class IngestTest : public ::testing::Test {
 protected:
  void SetUp() override {
    Result<std::unique_ptr<Model>> model = Model::Load(testing::Stories260KGguf());
    ASSERT_TRUE(model.ok()) << model.status().ToString();
    model_ = std::move(model).value();
    Result<std::vector<TokenId>> context = SampleContext(*model_, 48, 5, 2);
    ASSERT_TRUE(context.ok()) << context.status().ToString();
    context_ = std::move(context).value();
    EngineOptions options;
    options.n_threads = 2;
    options.n_positions = 64;
    Result<std::unique_ptr<Engine>> engine = Engine::Create(*model_, options);
    ASSERT_TRUE(engine.ok()) << engine.status().ToString();
    engine_ = std::move(engine).value();
  }

  Result<IngestReport> Ingest(int32_t chunk_tokens, std::vector<std::string> codecs) {
    IngestOptions options;
    options.chunk_tokens = chunk_tokens;
    options.codecs = std::move(codecs);
    return IngestContext(*model_, *engine_, context_, options, store_.path());
  }

  // Every level this build registers, f16 included.
  static std::vector<std::string> AllLevels() {
    std::vector<std::string> names;
    for (const Codec* codec : AllCodecs()) names.emplace_back(codec->name());
    return names;
  }

  std::unique_ptr<Model> model_;
  std::unique_ptr<Engine> engine_;
  std::vector<TokenId> context_;
  testing::TempDir store_;
};

TEST_F(IngestTest, F16ReferenceMatchesF16Level) {
  Result<IngestReport> report = Ingest(16, {"f16", "q8"});
  ASSERT_TRUE(report.ok()) << report.status().ToString();
  EXPECT_EQ(report->f16_bytes, report->bytes_per_codec.at("f16"));

  // The reference exists without the f16 level too, and is the same size.
  Result<IngestReport> without = Ingest(16, {"q8"});
  ASSERT_TRUE(without.ok()) << without.status().ToString();
  EXPECT_EQ(without->f16_bytes, report->f16_bytes);
}

TEST_F(IngestTest, OneTokenChunksWarnPerLargerLevel) {
  const std::vector<std::string> levels = AllLevels();
  Result<IngestReport> report = Ingest(1, levels);
  ASSERT_TRUE(report.ok()) << report.status().ToString();

  size_t n_larger = 0;
  for (const auto& [codec, n_bytes] : report->bytes_per_codec) {
    size_t n_mentions = 0;
    for (const std::string& warning : report->warnings) n_mentions += warning.rfind("level " + codec + " ", 0) == 0;
    const bool larger = codec != "f16" && n_bytes > report->f16_bytes;
    n_larger += larger;
    EXPECT_EQ(n_mentions, larger ? 1u : 0u) << codec << ": " << n_bytes << " bytes against f16's "
                                            << report->f16_bytes;
  }
  // With one token per chunk, the per-chunk tables of the entropy-coded levels outweigh their
  // compression.
  EXPECT_GT(n_larger, 0u) << "no level came out larger than f16 with 1-token chunks";
  EXPECT_EQ(report->warnings.size(), n_larger);
  for (const std::string& warning : report->warnings) {
    EXPECT_NE(warning.find("at --chunk-tokens 1,"), std::string::npos) << warning;
    EXPECT_NE(warning.find("larger --chunk-tokens"), std::string::npos) << warning;
  }
}

TEST_F(IngestTest, ContextPastTrainedLengthWarns) {
  ASSERT_EQ(model_->hparams().n_ctx_train, 512);
  // Token ids spread over the vocabulary; their meaning does not matter here.
  std::vector<TokenId> context(520);
  for (size_t i = 0; i < context.size(); ++i) context[i] = static_cast<TokenId>(1 + i * 37 % 511);
  EngineOptions options;
  options.n_threads = 2;
  options.n_positions = 520;
  Result<std::unique_ptr<Engine>> engine = Engine::Create(*model_, options);
  ASSERT_TRUE(engine.ok()) << engine.status().ToString();
  IngestOptions ingest;
  ingest.chunk_tokens = 256;
  ingest.codecs = {"f16"};
  Result<IngestReport> report = IngestContext(*model_, **engine, context, ingest, store_.path());
  ASSERT_TRUE(report.ok()) << report.status().ToString();
  ASSERT_EQ(report->warnings.size(), 1u) << ::testing::PrintToString(report->warnings);
  EXPECT_NE(report->warnings[0].find("520 tokens, past the model's trained context of 512"), std::string::npos)
      << report->warnings[0];

  // Within the trained context there is no warning.
  Result<IngestReport> short_report = Ingest(16, {"f16"});
  ASSERT_TRUE(short_report.ok()) << short_report.status().ToString();
  EXPECT_TRUE(short_report->warnings.empty()) << ::testing::PrintToString(short_report->warnings);
}

TEST(LargerThanF16WarningsTest, NamesTheSizesAndTheFlag) {
  const std::map<std::string, uint64_t> sizes = {
      {"f16", 2 * 1048576}, {"ans4", 3 * 1048576}, {"q8", 1048576}, {"f16ans", 2 * 1048576}};
  const std::vector<std::string> warnings = LargerThanF16Warnings(sizes, 2 * 1048576, 1024, 4);
  ASSERT_EQ(warnings.size(), 1u) << ::testing::PrintToString(warnings);
  EXPECT_EQ(warnings[0],
            "level ans4 takes 3.00 MiB, more than lossless f16 at 2.00 MiB (3072.0 bytes per token against "
            "2048.0): at --chunk-tokens 4, its per-chunk header and tables outweigh the compression; ingest "
            "with a larger --chunk-tokens (the default is 256)");
  EXPECT_TRUE(LargerThanF16Warnings(sizes, 4 * 1048576, 1024, 4).empty());
}

TEST_F(IngestTest, CliPrintsWarningOnStderr) {
  std::ofstream tokens(store_.File("tokens.txt"));
  for (TokenId id : context_) tokens << id << ' ';
  tokens.close();
  std::string codecs;
  for (const std::string& level : AllLevels()) codecs += (codecs.empty() ? "" : ",") + level;
  const auto [status, out] = testing::RunShell(
      testing::SparkvBinary() + " --log-level warn ingest --model " + testing::Stories260KGguf() + " --tokens " +
      store_.File("tokens.txt") + " --store " + store_.File("store") + " --chunk-tokens 1 --codecs " + codecs +
      " 2>" + store_.File("stderr.txt"));
  ASSERT_EQ(status, 0) << out;
  std::ifstream err(store_.File("stderr.txt"));
  std::stringstream text;
  text << err.rdbuf();
  EXPECT_NE(text.str().find("sparkv: warning: level "), std::string::npos) << text.str();
  EXPECT_NE(text.str().find("larger --chunk-tokens"), std::string::npos) << text.str();
  EXPECT_EQ(text.str().find("sparkv: warning: level f16 "), std::string::npos) << text.str();
}

}  // namespace
}  // namespace sparkv
