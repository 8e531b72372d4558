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

// The forward pass of one SIMD table against the scalar one on the "tiny" shape in `type`.
void CheckForwardPass(const kernels::KernelTable& table, gguf::TensorType type) {
  testing::TempDir dir;
  SyntheticModelOptions synth;
  synth.shape = "tiny";
  synth.type = type;
  ASSERT_TRUE(WriteSyntheticModel(synth, dir.File("tiny.gguf")).ok());
  auto model = Model::Load(dir.File("tiny.gguf"));
  ASSERT_TRUE(model.ok()) << model.status().ToString();

  std::mt19937 rng(3);
  std::uniform_int_distribution<TokenId> dist(0, (*model)->hparams().n_vocab - 1);
  std::vector<TokenId> prompt(40);
  for (TokenId& t : prompt) t = dist(rng);

  const RunResult ref = RunEngine(**model, kernels::ScalarKernels(), prompt);
  const RunResult fast = RunEngine(**model, table, prompt);
  ASSERT_EQ(ref.logits.size(), fast.logits.size());
  ASSERT_FALSE(ref.logits.empty());

  // Kernels differ by summation order, about 1e-6 relative per product (engine_kernels_test), and
  // float weights measured 4e-5 to 8e-5 of the logit scale here, so 1e-2 leaves wide room. With
  // Q8_0, an activation that lands on the other side of a rounding boundary moves by a whole step
  // (1/127 of its block's max), and a few such flips over 4 layers measured 1.2%, so its bound is
  // 5e-2. A wrong element in any kernel moves logits by about the logit scale itself.
  const float bound = type == gguf::TensorType::kQ8_0 ? 5e-2f : 1e-2f;
  float scale = 0.0f;
  for (float v : ref.logits) scale = std::max(scale, std::fabs(v));
  float max_diff = 0.0f;
  for (size_t i = 0; i < ref.logits.size(); ++i) max_diff = std::max(max_diff, std::fabs(ref.logits[i] - fast.logits[i]));
  EXPECT_LT(max_diff, bound * scale) << "logit scale " << scale;
  std::printf("%s type %u: max abs diff %.3g of logit scale %.3g\n", std::string(table.name).c_str(),
              static_cast<unsigned>(type), max_diff, scale);
}

TEST_P(EngineWeightTypesTest, Avx2ForwardPassMatchesScalar) {
  if (kernels::Avx2Kernels() == nullptr) GTEST_SKIP() << "CPU lacks AVX2/FMA/F16C";
  CheckForwardPass(*kernels::Avx2Kernels(), GetParam());
}

TEST_P(EngineWeightTypesTest, Avx512ForwardPassMatchesScalar) {
  if (kernels::Avx512Kernels() == nullptr) GTEST_SKIP() << "CPU lacks AVX-512 F/BW/VL/DQ/VNNI";
  CheckForwardPass(*kernels::Avx512Kernels(), GetParam());
}

// 4-bit and 6-bit weights on the "tiny-256" shape, whose rows are whole 256-element super-blocks.
class EngineQuantizedWeightsTest : public ::testing::TestWithParam<gguf::TensorType> {
 protected:
  static std::unique_ptr<Model> Make(const testing::TempDir& dir, gguf::TensorType type) {
    SyntheticModelOptions synth;
    synth.shape = "tiny-256";
    synth.type = type;
    const std::string path = dir.File(std::string(gguf::GetTypeTraits(type)->name) + ".gguf");
    EXPECT_TRUE(WriteSyntheticModel(synth, path).ok());
    auto model = Model::Load(path);
    EXPECT_TRUE(model.ok()) << model.status().ToString();
    return model.ok() ? std::move(model).value() : nullptr;
  }

  static std::vector<TokenId> Prompt(int32_t n_vocab) {
    std::mt19937 rng(9);
    std::uniform_int_distribution<TokenId> dist(0, n_vocab - 1);
    std::vector<TokenId> prompt(40);
    for (TokenId& t : prompt) t = dist(rng);
    return prompt;
  }
};

// ||a - b|| / ||b|| over all logits.
float RelativeRms(const std::vector<float>& a, const std::vector<float>& b) {
  double diff = 0, norm = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    diff += (double{a[i]} - b[i]) * (double{a[i]} - b[i]);
    norm += double{b[i]} * b[i];
  }
  return static_cast<float>(std::sqrt(diff / std::max(norm, 1e-30)));
}

TEST_P(EngineQuantizedWeightsTest, EveryMatrixHasTheRequestedType) {
  testing::TempDir dir;
  const auto model = Make(dir, GetParam());
  ASSERT_NE(model, nullptr);
  EXPECT_EQ(model->token_embedding().type(), GetParam());
  for (const LayerWeights& w : model->layers()) {
    for (const WeightView* m : {&w.wq, &w.wk, &w.wv, &w.wo, &w.w_gate, &w.w_up, &w.w_down}) {
      EXPECT_EQ(m->type(), GetParam());
    }
  }
}

TEST_P(EngineQuantizedWeightsTest, SimdForwardPassesMatchScalar) {
  if (kernels::Avx2Kernels() == nullptr) GTEST_SKIP() << "CPU lacks AVX2/FMA/F16C";
  testing::TempDir dir;
  const auto model = Make(dir, GetParam());
  ASSERT_NE(model, nullptr);
  const std::vector<TokenId> prompt = Prompt(model->hparams().n_vocab);
  const RunResult ref = RunEngine(*model, kernels::ScalarKernels(), prompt);
  for (const kernels::KernelTable* table : {kernels::Avx2Kernels(), kernels::Avx512Kernels()}) {
    if (table == nullptr) continue;  // a CPU without AVX-512
    const RunResult fast = RunEngine(*model, *table, prompt);
    ASSERT_FALSE(ref.logits.empty());
    ASSERT_EQ(ref.logits.size(), fast.logits.size());
    // Both tables quantize activations bit-identically, and the products differ only in the f32
    // grouping of block scales. As for Q8_0 above, the differences come from activations that round
    // the other way in a later layer: measured below 1% relative RMS.
    const float error = RelativeRms(fast.logits, ref.logits);
    EXPECT_LT(error, 2e-2f);
    std::printf("%s: %s vs scalar relative RMS %.3g\n", gguf::GetTypeTraits(GetParam())->name.data(),
                std::string(table->name).c_str(), error);
  }
}

// The same synthetic weights (one seed) as F32 and quantized: logits stay close to the F32 model's,
// within the error the 4-bit or 6-bit rounding itself brings.
TEST_P(EngineQuantizedWeightsTest, LogitsStayCloseToTheF32Model) {
  testing::TempDir dir;
  const auto f32 = Make(dir, gguf::TensorType::kF32);
  const auto quantized = Make(dir, GetParam());
  ASSERT_NE(f32, nullptr);
  ASSERT_NE(quantized, nullptr);
  const std::vector<TokenId> prompt = Prompt(f32->hparams().n_vocab);
  const RunResult want = RunEngine(*f32, kernels::BestKernels(), prompt);
  const RunResult got = RunEngine(*quantized, kernels::BestKernels(), prompt);
  ASSERT_FALSE(want.logits.empty());
  ASSERT_EQ(want.logits.size(), got.logits.size());
  // Round to nearest leaves each weight within half a step, a uniform error of RMS step / sqrt(12):
  // about 7% of a weight's RMS for Q4_0 and Q4_K, 1.6% for Q6_K. About 7 quantized matrices lie on
  // the path from token to logit (embedding, V, output projection, FFN, classifier; 2 layers).
  // Their errors are independent, so logits move by about sqrt(7) times that. Measured: 0.20 for
  // Q4_0 and Q4_K, 0.043 for Q6_K. The bounds leave 1.5x to 2x of room. Unrelated logits (a
  // wrong kernel or layout) give about 1.4.
  const float bound = GetParam() == gguf::TensorType::kQ6_K ? 0.08f : 0.3f;
  const float error = RelativeRms(got.logits, want.logits);
  EXPECT_LT(error, bound);
  std::printf("%s: relative RMS against F32 %.3g\n", gguf::GetTypeTraits(GetParam())->name.data(), error);
}

INSTANTIATE_TEST_SUITE_P(QuantizedTypes, EngineQuantizedWeightsTest,
                         ::testing::Values(gguf::TensorType::kQ4_0, gguf::TensorType::kQ4_K, gguf::TensorType::kQ6_K),
                         [](const auto& type_info) {
                           switch (type_info.param) {
                             case gguf::TensorType::kQ4_0: return std::string("Q4_0");
                             case gguf::TensorType::kQ4_K: return std::string("Q4_K");
                             default: return std::string("Q6_K");
                           }
                         });

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
