// The whole forward pass on small random-weight models of every supported weight type, with the
// AVX2 kernels against the scalar reference.
#include <gtest/gtest.h>

#include <cmath>
#include <random>

#include "engine/engine.h"
#include "model/model.h"
#include "model/synthetic.h"
#include "test_support.h"

namespace sparkv {
namespace {

struct RunResult {
  std::vector<float> logits;  // [3][n_vocab] at the three requested positions
  std::vector<TokenId> greedy;
};

RunResult RunEngine(const Model& model, const kernels::KernelTable& table, const std::vector<TokenId>& prompt) {
  EngineOptions options;
  options.n_positions = 128;
  options.n_batch = 16;
  options.n_threads = 2;
  options.kernels = &table;
  auto engine = Engine::Create(model, options);
  EXPECT_TRUE(engine.ok()) << engine.status().ToString();
  RunResult run;
  if (!engine.ok()) return run;
  const Position n = static_cast<Position>(prompt.size());
  const std::vector<Position> wanted = {0, n / 2, n - 1};
  EXPECT_TRUE((*engine)->PrefillWithLogits(prompt, 0, wanted, &run.logits).ok());
  std::vector<float> logits(run.logits.end() - model.hparams().n_vocab, run.logits.end());
  for (Position pos = n; pos < n + 8; ++pos) {
    run.greedy.push_back(static_cast<TokenId>(std::max_element(logits.begin(), logits.end()) - logits.begin()));
    EXPECT_TRUE((*engine)->Decode(run.greedy.back(), pos, &logits).ok());
  }
  return run;
}

class EngineWeightTypesTest : public ::testing::TestWithParam<gguf::TensorType> {};

TEST_P(EngineWeightTypesTest, Avx2ForwardPassMatchesScalar) {
  if (kernels::Avx2Kernels() == nullptr) GTEST_SKIP() << "CPU lacks AVX2/FMA/F16C";
  testing::TempDir dir;
  SyntheticModelOptions synth;
  synth.shape = "tiny";
  synth.type = GetParam();
  ASSERT_TRUE(WriteSyntheticModel(synth, dir.File("tiny.gguf")).ok());
  auto model = Model::Load(dir.File("tiny.gguf"));
  ASSERT_TRUE(model.ok()) << model.status().ToString();

  std::mt19937 rng(3);
  std::uniform_int_distribution<TokenId> dist(0, (*model)->hparams().n_vocab - 1);
  std::vector<TokenId> prompt(40);
  for (TokenId& t : prompt) t = dist(rng);

  const RunResult ref = RunEngine(**model, kernels::ScalarKernels(), prompt);
  const RunResult fast = RunEngine(**model, *kernels::Avx2Kernels(), prompt);
  ASSERT_EQ(ref.logits.size(), fast.logits.size());
  ASSERT_FALSE(ref.logits.empty());

  // Kernels differ by summation order, about 1e-6 relative per product (engine_kernels_test), and
  // float weights measured 4e-5 to 8e-5 of the logit scale here, so 1e-2 leaves wide room. With
  // Q8_0, an activation that lands on the other side of a rounding boundary moves by a whole step
  // (1/127 of its block's max), and a few such flips over 4 layers measured 1.2%, so its bound is
  // 5e-2. A wrong element in any kernel moves logits by about the logit scale itself.
  const float bound = GetParam() == gguf::TensorType::kQ8_0 ? 5e-2f : 1e-2f;
  float scale = 0.0f;
  for (float v : ref.logits) scale = std::max(scale, std::fabs(v));
  float max_diff = 0.0f;
  for (size_t i = 0; i < ref.logits.size(); ++i) max_diff = std::max(max_diff, std::fabs(ref.logits[i] - fast.logits[i]));
  EXPECT_LT(max_diff, bound * scale) << "logit scale " << scale;
  RecordProperty("max_abs_diff", std::to_string(max_diff));
  RecordProperty("logit_scale", std::to_string(scale));
  std::printf("type %u: max abs diff %.3g of logit scale %.3g\n", static_cast<unsigned>(GetParam()), max_diff, scale);
}

INSTANTIATE_TEST_SUITE_P(AllTypes, EngineWeightTypesTest,
                         ::testing::Values(gguf::TensorType::kF32, gguf::TensorType::kF16, gguf::TensorType::kBF16,
                                           gguf::TensorType::kQ8_0),
                         [](const auto& type_info) {
                           switch (type_info.param) {
                             case gguf::TensorType::kF32: return std::string("F32");
                             case gguf::TensorType::kF16: return std::string("F16");
                             case gguf::TensorType::kBF16: return std::string("BF16");
                             default: return std::string("Q8_0");
                           }
                         });

}  // namespace
}  // namespace sparkv
