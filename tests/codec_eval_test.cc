// Codec quality evaluation on the real stories260K model: the library function and the
// `sparkv eval-codec` command.
#include "runtime/codec_eval.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <fstream>
#include <nlohmann/json.hpp>

#include "kv/codec.h"
#include "test_support.h"

namespace sparkv {
namespace {

class CodecEvalTest : public ::testing::Test {
 protected:
  void SetUp() override {
    Result<std::unique_ptr<Model>> model = Model::Load(testing::Stories260KGguf());
    ASSERT_TRUE(model.ok()) << model.status().ToString();
    model_ = std::move(model).value();
    Result<std::vector<TokenId>> context = SampleContext(*model_, 150, 7, 2);
    ASSERT_TRUE(context.ok()) << context.status().ToString();
    context_ = std::move(context).value();
  }

  CodecEvalOptions Options(std::vector<std::string> levels) const {
    CodecEvalOptions options;
    options.levels = std::move(levels);
    options.n_continuation = 100;
    options.seed = 3;
    options.n_threads = 2;
    return options;
  }

  std::unique_ptr<Model> model_;
  std::vector<TokenId> context_;
};

TEST_F(CodecEvalTest, SampleContextIsSeededFromBos) {
  ASSERT_EQ(context_.size(), 150u);
  EXPECT_EQ(context_[0], model_->vocab().bos_id);
  const std::vector<TokenId> again = SampleContext(*model_, 150, 7, 1).value();
  EXPECT_EQ(again, context_);
  const std::vector<TokenId> other = SampleContext(*model_, 150, 8, 1).value();
  EXPECT_NE(other, context_);
}

TEST_F(CodecEvalTest, F16OnF16CacheMatchesExactKv) {
  const CodecEvalReport report = EvaluateCodecs(*model_, context_, Options({"f16"})).value();
  ASSERT_EQ(report.levels.size(), 1u);
  const CodecLevelQuality& q = report.levels[0];
  EXPECT_EQ(q.level, "f16");
  EXPECT_LT(q.mean_kl, 1e-9);
  EXPECT_LT(q.max_kl, 1e-9);
  EXPECT_EQ(q.top1_agreement, 1.0);
  EXPECT_EQ(q.identical_prefix, 100);
  EXPECT_EQ(q.ppl_level, q.ppl_exact);
  EXPECT_EQ(q.ppl_change_pct, 0.0);
  EXPECT_GT(q.ppl_exact, 1.0);

  // f16 stores K and V of every layer as two bytes per element, nothing more.
  const HParams& hp = model_->hparams();
  EXPECT_EQ(q.payload_bytes, context_.size() * 2u * hp.n_layer * hp.n_embd_kv() * 2u);
  EXPECT_DOUBLE_EQ(q.size_vs_f16, 1.0);
  EXPECT_EQ(report.n_chunks, 3);  // 150 tokens in chunks of 64
  EXPECT_EQ(report.greedy_continuation.size(), 101u);
  EXPECT_EQ(report.sampled_continuation.size(), 101u);
}

TEST_F(CodecEvalTest, QuantizedLevelsHaveSmallKl) {
  const CodecEvalReport report =
      EvaluateCodecs(*model_, context_, Options({"q8", "q10", "f16"})).value();
  ASSERT_EQ(report.levels.size(), 3u);
  const CodecLevelQuality& q8 = report.levels[0];
  const CodecLevelQuality& q10 = report.levels[1];
  EXPECT_EQ(q8.level, "q8");
  EXPECT_EQ(q10.level, "q10");
  for (const CodecLevelQuality* q : {&q8, &q10}) {
    EXPECT_GT(q->mean_kl, 0.0) << q->level;
    EXPECT_LT(q->mean_kl, 0.01) << q->level;
    EXPECT_GE(q->max_kl, q->mean_kl) << q->level;
    EXPECT_GE(q->top1_agreement, 0.9) << q->level;
    EXPECT_NE(q->ppl_level, q->ppl_exact) << q->level;
    EXPECT_LT(std::abs(q->ppl_change_pct), 5.0) << q->level;
  }
  // q8: one byte per element plus one f16 scale per 32 elements, 1.0625 of f16's 2 bytes. q10:
  // 10-bit K and 9-bit V plus the scales, 1.25 of 2 bytes, and one version byte per chunk.
  EXPECT_DOUBLE_EQ(q8.size_vs_f16, 0.53125);
  EXPECT_NEAR(q10.size_vs_f16, 0.625, 0.001);
  EXPECT_GT(q10.size_vs_f16, 0.625);
  // q10's finer K and V fields move the next-token distribution less than q8's.
  EXPECT_LT(q10.mean_kl, q8.mean_kl);
  EXPECT_EQ(report.levels[2].level, "f16");
}

TEST_F(CodecEvalTest, F16OnF32CacheIsLossy) {
  CodecEvalOptions options = Options({"f16"});
  options.kv_type = KvElemType::kF32;
  const CodecEvalReport report = EvaluateCodecs(*model_, context_, options).value();
  EXPECT_EQ(report.kv_type, KvElemType::kF32);
  EXPECT_GT(report.levels[0].mean_kl, 0.0);
  EXPECT_LT(report.levels[0].mean_kl, 1e-3);
}

TEST_F(CodecEvalTest, DefaultLevelsAreEveryRegisteredCodec) {
  CodecEvalOptions options = Options({});
  options.n_continuation = 8;
  const CodecEvalReport report = EvaluateCodecs(*model_, context_, options).value();
  ASSERT_EQ(report.levels.size(), AllCodecs().size());
  for (size_t i = 0; i < report.levels.size(); ++i) {
    EXPECT_EQ(report.levels[i].level, AllCodecs()[i]->name());
    EXPECT_GT(report.levels[i].payload_bytes, 0u);
  }
}

TEST_F(CodecEvalTest, RejectsContinuationPastModelContext) {
  const int32_t n_ctx = model_->hparams().n_ctx_train;
  CodecEvalOptions options = Options({"f16"});
  options.n_continuation = n_ctx - static_cast<int32_t>(context_.size()) + 1;
  const Result<CodecEvalReport> report = EvaluateCodecs(*model_, context_, options);
  ASSERT_FALSE(report.ok());
  EXPECT_EQ(report.status().code(), ErrorCode::kInvalidArgument);
  EXPECT_NE(report.status().message().find(std::to_string(n_ctx)), std::string::npos) << report.status().ToString();

  // Exactly filling the context is allowed.
  options.n_continuation -= 1;
  EXPECT_TRUE(EvaluateCodecs(*model_, context_, options).ok());
}

TEST_F(CodecEvalTest, RejectsBadInputs) {
  EXPECT_FALSE(EvaluateCodecs(*model_, {}, Options({"f16"})).ok());
  EXPECT_FALSE(EvaluateCodecs(*model_, context_, Options({"bogus"})).ok());
  CodecEvalOptions options = Options({"f16"});
  options.n_continuation = 0;
  EXPECT_FALSE(EvaluateCodecs(*model_, context_, options).ok());
  options = Options({"f16"});
  options.chunk_tokens = 0;
  EXPECT_FALSE(EvaluateCodecs(*model_, context_, options).ok());
  const std::vector<TokenId> outside = {1, model_->hparams().n_vocab};
  EXPECT_FALSE(EvaluateCodecs(*model_, outside, Options({"f16"})).ok());
  EXPECT_FALSE(SampleContext(*model_, 0, 1, 1).ok());
  EXPECT_FALSE(SampleContext(*model_, model_->hparams().n_ctx_train + 1, 1, 1).ok());
}

TEST(EvalCodecCommandTest, JsonReportHasEveryRequestedLevel) {
  const std::string command = testing::SparkvBinary() + " --log-level error eval-codec --model " +
                              testing::Stories260KGguf() +
                              " --generate 100 --continuation 40 --levels f16,q8 --seed 5 --threads 2 --json";
  const auto [status, output] = testing::RunShell(command);
  ASSERT_EQ(status, 0) << output;

  const nlohmann::json report = nlohmann::json::parse(output);
  EXPECT_EQ(report["n_context"], 100);
  EXPECT_EQ(report["n_continuation"], 40);
  EXPECT_EQ(report["n_chunks"], 2);
  ASSERT_EQ(report["levels"].size(), 2u);
  EXPECT_EQ(report["levels"][0]["level"], "f16");
  EXPECT_EQ(report["levels"][0]["mean_kl"].get<double>(), 0.0);
  EXPECT_EQ(report["levels"][0]["top1_agreement"].get<double>(), 1.0);
  EXPECT_EQ(report["levels"][1]["level"], "q8");
  EXPECT_GT(report["levels"][1]["mean_kl"].get<double>(), 0.0);
  EXPECT_LT(report["levels"][1]["bytes_per_token"].get<double>(),
            report["levels"][0]["bytes_per_token"].get<double>());
}

TEST(EvalCodecCommandTest, TokensFileIsUsedAsContext) {
  testing::TempDir dir;
  std::ofstream(dir.File("context.txt")) << "1 403 261 30 40 50 60 70";
  const std::string command = testing::SparkvBinary() + " --log-level error eval-codec --model " +
                              testing::Stories260KGguf() + " --tokens " + dir.File("context.txt") +
                              " --continuation 10 --levels q8 --chunk-tokens 4 --json";
  const auto [status, output] = testing::RunShell(command);
  ASSERT_EQ(status, 0) << output;
  const nlohmann::json report = nlohmann::json::parse(output);
  EXPECT_EQ(report["n_context"], 8);
  EXPECT_EQ(report["n_chunks"], 2);
  EXPECT_EQ(report["levels"].size(), 1u);
}

TEST(EvalCodecCommandTest, OverlongRequestNamesTheFlags) {
  const std::string command = testing::SparkvBinary() + " --log-level error eval-codec --model " +
                              testing::Stories260KGguf() + " --generate 400 --continuation 200 2>&1";
  const auto [status, output] = testing::RunShell(command);
  EXPECT_NE(status, 0);
  EXPECT_NE(output.find("--generate 400"), std::string::npos) << output;
  EXPECT_NE(output.find("--continuation 200"), std::string::npos) << output;
}

TEST(EvalCodecCommandTest, UnknownLevelIsRejected) {
  const std::string command = testing::SparkvBinary() + " --log-level error eval-codec --model " +
                              testing::Stories260KGguf() + " --generate 20 --continuation 5 --levels bogus 2>&1";
  const auto [status, output] = testing::RunShell(command);
  EXPECT_NE(status, 0);
  EXPECT_NE(output.find("unknown codec level 'bogus'"), std::string::npos) << output;
}

}  // namespace
}  // namespace sparkv
