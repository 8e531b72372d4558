// Tests the qwen2, qwen3 and Llama 3 variants of the forward pass against a plain double-precision
// reference written from the architectures' definitions, on small random-weight models. Also
// tests the GGUF checks that reject incomplete or unsupported variants.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <functional>
#include <numbers>
#include <random>

#include "engine/engine.h"
#include "model/model.h"
#include "model/synthetic.h"
#include "test_support.h"

namespace sparkv {
namespace {

// Which parts of the architecture the reference applies. Turning one off shows that the test
// would notice an engine that skipped it.
struct Features {
  bool biases = true;
  bool qk_norm = true;
  bool freq_factors = true;
  bool neox = true;  // NeoX layout for models whose rope_layout is kNeox
};

const float* F32(const WeightView& w) { return reinterpret_cast<const float*>(w.data); }

// y = W x for an f32 matrix stored row per output.
std::vector<double> Apply(const WeightView& w, const std::vector<double>& x) {
  std::vector<double> y(static_cast<size_t>(w.n_out()));
  const float* data = F32(w);
  for (int64_t r = 0; r < w.n_out(); ++r) {
    double sum = 0;
    for (int64_t i = 0; i < w.n_in(); ++i) sum += static_cast<double>(data[r * w.n_in() + i]) * x[i];
    y[r] = sum;
  }
  return y;
}

void RmsNormInPlace(double* x, int64_t n, const float* weight, double eps) {
  double mean_square = 0;
  for (int64_t i = 0; i < n; ++i) mean_square += x[i] * x[i];
  const double scale = 1.0 / std::sqrt(mean_square / n + eps);
  for (int64_t i = 0; i < n; ++i) x[i] = x[i] * scale * weight[i];
}

// Rotates each head of `x` for position `pos`.
void RotateHeads(double* x, int n_head, const HParams& hp, const float* factors, bool neox, int pos) {
  const int half = hp.n_rot / 2;
  for (int h = 0; h < n_head; ++h) {
    double* v = x + static_cast<size_t>(h) * hp.head_dim;
    for (int i = 0; i < half; ++i) {
      double frequency = std::pow(static_cast<double>(hp.rope_theta), -2.0 * i / hp.n_rot);
      if (factors != nullptr) frequency /= factors[i];
      const double angle = pos * static_cast<double>(hp.rope_freq_scale) * frequency;
      const int a = neox ? i : 2 * i;
      const int b = neox ? i + half : 2 * i + 1;
      const double x0 = v[a], x1 = v[b];
      v[a] = x0 * std::cos(angle) - x1 * std::sin(angle);
      v[b] = x0 * std::sin(angle) + x1 * std::cos(angle);
    }
  }
}

// Logits at every position of `tokens`, [n][n_vocab].
std::vector<std::vector<double>> ReferenceLogits(const Model& model, const std::vector<TokenId>& tokens,
                                                 Features features) {
  const HParams& hp = model.hparams();
  const int64_t n_embd = hp.n_embd, hd = hp.head_dim;
  const int n_rep = hp.n_head / hp.n_head_kv;
  const bool neox = features.neox && hp.rope_layout == RopeLayout::kNeox;
  const float* factors =
      features.freq_factors && model.rope_freq_factors().present() ? F32(model.rope_freq_factors()) : nullptr;
  const size_t n = tokens.size();
  // keys[l][pos], values[l][pos]: [n_head_kv * head_dim]
  std::vector<std::vector<std::vector<double>>> keys(hp.n_layer), values(hp.n_layer);
  std::vector<std::vector<double>> logits;

  for (size_t pos = 0; pos < n; ++pos) {
    std::vector<double> x(n_embd);
    const float* row = F32(model.token_embedding()) + static_cast<size_t>(tokens[pos]) * n_embd;
    for (int64_t i = 0; i < n_embd; ++i) x[i] = row[i];

    for (int l = 0; l < hp.n_layer; ++l) {
      const LayerWeights& w = model.layers()[l];
      std::vector<double> xn = x;
      RmsNormInPlace(xn.data(), n_embd, F32(w.attn_norm), hp.rms_eps);
      std::vector<double> q = Apply(w.wq, xn), k = Apply(w.wk, xn), v = Apply(w.wv, xn);
      if (features.biases && w.bq.present()) {
        for (size_t i = 0; i < q.size(); ++i) q[i] += F32(w.bq)[i];
        for (size_t i = 0; i < k.size(); ++i) k[i] += F32(w.bk)[i];
        for (size_t i = 0; i < v.size(); ++i) v[i] += F32(w.bv)[i];
      }
      if (features.qk_norm && w.q_norm.present()) {
        for (int h = 0; h < hp.n_head; ++h) RmsNormInPlace(q.data() + h * hd, hd, F32(w.q_norm), hp.rms_eps);
        for (int h = 0; h < hp.n_head_kv; ++h) RmsNormInPlace(k.data() + h * hd, hd, F32(w.k_norm), hp.rms_eps);
      }
      RotateHeads(q.data(), hp.n_head, hp, factors, neox, static_cast<int>(pos));
      RotateHeads(k.data(), hp.n_head_kv, hp, factors, neox, static_cast<int>(pos));
      keys[l].push_back(k);
      values[l].push_back(v);

      std::vector<double> attended(q.size(), 0.0);
      for (int h = 0; h < hp.n_head; ++h) {
        const int g = h / n_rep;
        std::vector<double> scores(pos + 1);
        for (size_t j = 0; j <= pos; ++j) {
          double dot = 0;
          for (int64_t i = 0; i < hd; ++i) dot += q[h * hd + i] * keys[l][j][g * hd + i];
          scores[j] = dot / std::sqrt(static_cast<double>(hd));
        }
        const double max = *std::max_element(scores.begin(), scores.end());
        double sum = 0;
        for (double& s : scores) sum += (s = std::exp(s - max));
        for (size_t j = 0; j <= pos; ++j) {
          for (int64_t i = 0; i < hd; ++i) attended[h * hd + i] += scores[j] / sum * values[l][j][g * hd + i];
        }
      }
      const std::vector<double> projected = Apply(w.wo, attended);
      for (int64_t i = 0; i < n_embd; ++i) x[i] += projected[i];

      xn = x;
      RmsNormInPlace(xn.data(), n_embd, F32(w.ffn_norm), hp.rms_eps);
      std::vector<double> gate = Apply(w.w_gate, xn);
      const std::vector<double> up = Apply(w.w_up, xn);
      for (size_t i = 0; i < gate.size(); ++i) gate[i] = gate[i] / (1.0 + std::exp(-gate[i])) * up[i];
      const std::vector<double> down = Apply(w.w_down, gate);
      for (int64_t i = 0; i < n_embd; ++i) x[i] += down[i];
    }
    RmsNormInPlace(x.data(), n_embd, F32(model.output_norm()), hp.rms_eps);
    logits.push_back(Apply(model.output(), x));
  }
  return logits;
}

double MaxAbsDiff(const std::vector<std::vector<double>>& a, const std::vector<float>& b, int32_t n_vocab) {
  double worst = 0;
  for (size_t pos = 0; pos < a.size(); ++pos) {
    for (int32_t i = 0; i < n_vocab; ++i) worst = std::max(worst, std::fabs(a[pos][i] - b[pos * n_vocab + i]));
  }
  return worst;
}

double MaxAbsDiff(const std::vector<std::vector<double>>& a, const std::vector<std::vector<double>>& b) {
  double worst = 0;
  for (size_t pos = 0; pos < a.size(); ++pos) {
    for (size_t i = 0; i < a[pos].size(); ++i) worst = std::max(worst, std::fabs(a[pos][i] - b[pos][i]));
  }
  return worst;
}

std::vector<TokenId> RandomTokens(int32_t n_vocab, size_t n, unsigned seed) {
  std::mt19937 rng(seed);
  std::uniform_int_distribution<TokenId> dist(0, n_vocab - 1);
  std::vector<TokenId> tokens(n);
  for (TokenId& t : tokens) t = dist(rng);
  return tokens;
}

// The engine's logits at every position, prefilled in micro-batches of `n_batch` tokens.
std::vector<float> EngineLogits(const Model& model, const kernels::KernelTable& table,
                                const std::vector<TokenId>& tokens, int32_t n_batch, KvElemType kv_type) {
  EngineOptions options;
  options.n_positions = 256;
  options.n_batch = n_batch;
  options.n_threads = 2;
  options.kv_type = kv_type;
  options.kernels = &table;
  Result<std::unique_ptr<Engine>> engine = Engine::Create(model, options);
  EXPECT_TRUE(engine.ok()) << engine.status().ToString();
  std::vector<float> logits;
  if (!engine.ok()) return logits;
  std::vector<Position> wanted(tokens.size());
  for (size_t i = 0; i < wanted.size(); ++i) wanted[i] = static_cast<Position>(i);
  const Status status = (*engine)->PrefillWithLogits(tokens, 0, wanted, &logits);
  EXPECT_TRUE(status.ok()) << status.ToString();
  return logits;
}

struct ArchCase {
  const char* shape;
  const char* arch;
  RopeLayout layout;
};

void PrintTo(const ArchCase& c, std::ostream* os) { *os << c.shape; }

class EngineArchTest : public ::testing::TestWithParam<ArchCase> {
 protected:
  void SetUp() override {
    SyntheticModelOptions options;
    options.shape = GetParam().shape;
    options.type = gguf::TensorType::kF32;
    ASSERT_TRUE(WriteSyntheticModel(options, dir_.File("m.gguf")).ok());
    Result<std::unique_ptr<Model>> model = Model::Load(dir_.File("m.gguf"));
    ASSERT_TRUE(model.ok()) << model.status().ToString();
    model_ = std::move(model).value();
  }

  testing::TempDir dir_;
  std::unique_ptr<Model> model_;
};

TEST_P(EngineArchTest, LoadsAsItsArchitecture) {
  const HParams& hp = model_->hparams();
  EXPECT_EQ(hp.arch, GetParam().arch);
  EXPECT_EQ(hp.rope_layout, GetParam().layout);
  const ModelShape* shape = FindModelShape(GetParam().shape);
  ASSERT_NE(shape, nullptr);
  EXPECT_EQ(hp.head_dim, shape->head_size());
  const LayerWeights& layer = model_->layers()[0];
  EXPECT_EQ(layer.bq.present(), hp.arch == "qwen2");
  EXPECT_EQ(layer.q_norm.present(), hp.arch == "qwen3");
  EXPECT_EQ(model_->rope_freq_factors().present(), shape->rope_scale_factor > 0);
}

TEST_P(EngineArchTest, LogitsMatchDoublePrecisionReference) {
  const std::vector<TokenId> tokens = RandomTokens(model_->hparams().n_vocab, 72, 5);
  const std::vector<std::vector<double>> expected = ReferenceLogits(*model_, tokens, Features{});
  const int32_t n_vocab = model_->hparams().n_vocab;

  // F32 weights and an f32 cache: only summation order separates the engine from the reference.
  const double scalar = MaxAbsDiff(expected, EngineLogits(*model_, kernels::ScalarKernels(), tokens, 16,
                                                          KvElemType::kF32), n_vocab);
  EXPECT_LT(scalar, 1e-3) << "scalar kernels";
  const double best = MaxAbsDiff(expected, EngineLogits(*model_, kernels::BestKernels(), tokens, 16,
                                                        KvElemType::kF32), n_vocab);
  EXPECT_LT(best, 1e-3) << kernels::BestKernels().name << " kernels";
}

TEST_P(EngineArchTest, EachFeatureChangesLogits) {
  // Each feature of the model moves the logits far beyond the tolerance above, so an engine that
  // skipped or misplaced it would fail LogitsMatchDoublePrecisionReference.
  const std::vector<TokenId> tokens = RandomTokens(model_->hparams().n_vocab, 72, 5);
  const std::vector<std::vector<double>> full = ReferenceLogits(*model_, tokens, Features{});
  const HParams& hp = model_->hparams();
  std::vector<Features> without;
  if (hp.arch == "qwen2") without.push_back(Features{.biases = false});
  if (hp.arch == "qwen3") without.push_back(Features{.qk_norm = false});
  if (model_->rope_freq_factors().present()) without.push_back(Features{.freq_factors = false});
  if (hp.rope_layout == RopeLayout::kNeox) without.push_back(Features{.neox = false});
  ASSERT_FALSE(without.empty());
  for (const Features& features : without) {
    EXPECT_GT(MaxAbsDiff(full, ReferenceLogits(*model_, tokens, features)), 0.05);
  }
}

TEST_P(EngineArchTest, SplitPrefillEqualsOneBatch) {
  const std::vector<TokenId> tokens = RandomTokens(model_->hparams().n_vocab, 50, 9);
  const std::vector<float> whole = EngineLogits(*model_, kernels::BestKernels(), tokens, 64, KvElemType::kF16);
  const std::vector<float> split = EngineLogits(*model_, kernels::BestKernels(), tokens, 7, KvElemType::kF16);
  ASSERT_EQ(whole.size(), split.size());
  float worst = 0;
  for (size_t i = 0; i < whole.size(); ++i) worst = std::max(worst, std::fabs(whole[i] - split[i]));
  EXPECT_LT(worst, 1e-5f);
}

INSTANTIATE_TEST_SUITE_P(Shapes, EngineArchTest,
                         ::testing::Values(ArchCase{"tiny-qwen2", "qwen2", RopeLayout::kNeox},
                                           ArchCase{"tiny-qwen3", "qwen3", RopeLayout::kNeox},
                                           ArchCase{"tiny-llama3", "llama", RopeLayout::kNormal}),
                         [](const ::testing::TestParamInfo<ArchCase>& param_info) {
                           std::string name = param_info.param.shape;
                           std::replace(name.begin(), name.end(), '-', '_');
                           return name;
                         });

// Rewrites the model at `source` into `target` with metadata `changes` applied and the tensors
// for which `keep` is false left out.
void Rewrite(const std::string& source, const std::string& target,
             const std::vector<std::pair<std::string, gguf::Value>>& changes,
             const std::function<bool(const std::string&)>& keep) {
  std::unique_ptr<gguf::File> file = std::move(gguf::File::Open(source)).value();
  gguf::Writer writer;
  for (const gguf::KeyValue& entry : file->metadata()) writer.Set(entry.key, entry.value);
  for (const auto& [key, value] : changes) writer.Set(key, value);
  for (const gguf::TensorInfo& info : file->tensors()) {
    if (!keep(info.name)) continue;
    std::vector<uint8_t> data(file->TensorData(info), file->TensorData(info) + info.n_bytes);
    std::vector<int64_t> ne(info.ne, info.ne + info.n_dims);
    ASSERT_TRUE(writer.AddTensor(info.name, info.type, ne, std::move(data)).ok());
  }
  ASSERT_TRUE(writer.WriteFile(target).ok());
}

std::string WriteShape(const testing::TempDir& dir, const std::string& shape) {
  SyntheticModelOptions options;
  options.shape = shape;
  options.type = gguf::TensorType::kF32;
  const std::string path = dir.File(shape + ".gguf");
  EXPECT_TRUE(WriteSyntheticModel(options, path).ok());
  return path;
}

TEST(ArchLoadTest, Qwen2MissingBiasRejected) {
  testing::TempDir dir;
  const std::string source = WriteShape(dir, "tiny-qwen2");
  Rewrite(source, dir.File("cut.gguf"), {}, [](const std::string& name) { return name != "blk.1.attn_k.bias"; });
  Result<std::unique_ptr<Model>> model = Model::Load(dir.File("cut.gguf"));
  ASSERT_FALSE(model.ok());
  EXPECT_NE(model.status().message().find("blk.1.attn_k.bias"), std::string::npos) << model.status().ToString();
}

TEST(ArchLoadTest, Qwen3MissingKeyNormRejected) {
  testing::TempDir dir;
  const std::string source = WriteShape(dir, "tiny-qwen3");
  Rewrite(source, dir.File("cut.gguf"), {},
          [](const std::string& name) { return name != "blk.0.attn_k_norm.weight"; });
  Result<std::unique_ptr<Model>> model = Model::Load(dir.File("cut.gguf"));
  ASSERT_FALSE(model.ok());
  EXPECT_NE(model.status().message().find("blk.0.attn_k_norm.weight"), std::string::npos)
      << model.status().ToString();
}

TEST(ArchLoadTest, UnequalHeadSizesRejected) {
  testing::TempDir dir;
  const std::string source = WriteShape(dir, "tiny-qwen3");
  Rewrite(source, dir.File("v.gguf"), {{"qwen3.attention.value_length", gguf::Value::U32(32)}},
          [](const std::string&) { return true; });
  Result<std::unique_ptr<Model>> model = Model::Load(dir.File("v.gguf"));
  ASSERT_FALSE(model.ok());
  EXPECT_EQ(model.status().code(), ErrorCode::kUnsupported);
  EXPECT_NE(model.status().message().find("value_length 32"), std::string::npos) << model.status().ToString();
}

TEST(ArchLoadTest, YarnRopeScalingRejected) {
  testing::TempDir dir;
  const std::string source = WriteShape(dir, "tiny");
  Rewrite(source, dir.File("yarn.gguf"),
          {{"llama.rope.scaling.type", gguf::Value::Str("yarn")}, {"llama.rope.scaling.factor", gguf::Value::F32(4)}},
          [](const std::string&) { return true; });
  Result<std::unique_ptr<Model>> model = Model::Load(dir.File("yarn.gguf"));
  ASSERT_FALSE(model.ok());
  EXPECT_EQ(model.status().code(), ErrorCode::kUnsupported);
  EXPECT_NE(model.status().message().find("'yarn'"), std::string::npos) << model.status().ToString();
  EXPECT_NE(model.status().message().find("linear"), std::string::npos);
}

TEST(ArchLoadTest, LinearRopeScalingMatchesReference) {
  testing::TempDir dir;
  const std::string source = WriteShape(dir, "tiny");
  Rewrite(source, dir.File("linear.gguf"),
          {{"llama.rope.scaling.type", gguf::Value::Str("linear")}, {"llama.rope.scaling.factor", gguf::Value::F32(4)}},
          [](const std::string&) { return true; });
  std::unique_ptr<Model> plain = std::move(Model::Load(source)).value();
  std::unique_ptr<Model> scaled = std::move(Model::Load(dir.File("linear.gguf"))).value();
  EXPECT_FLOAT_EQ(plain->hparams().rope_freq_scale, 1.0f);
  EXPECT_FLOAT_EQ(scaled->hparams().rope_freq_scale, 0.25f);
  EXPECT_NE(plain->fingerprint(), scaled->fingerprint());

  const std::vector<TokenId> tokens = RandomTokens(scaled->hparams().n_vocab, 40, 2);
  const std::vector<std::vector<double>> expected = ReferenceLogits(*scaled, tokens, Features{});
  EXPECT_LT(MaxAbsDiff(expected, EngineLogits(*scaled, kernels::BestKernels(), tokens, 16, KvElemType::kF32),
                       scaled->hparams().n_vocab),
            1e-3);
  EXPECT_GT(MaxAbsDiff(expected, ReferenceLogits(*plain, tokens, Features{})), 0.05);
}

TEST(ArchLoadTest, UnknownArchitectureListsSupported) {
  testing::TempDir dir;
  const std::string source = WriteShape(dir, "tiny");
  Rewrite(source, dir.File("gemma.gguf"), {{"general.architecture", gguf::Value::Str("gemma3")}},
          [](const std::string&) { return true; });
  Result<std::unique_ptr<Model>> model = Model::Load(dir.File("gemma.gguf"));
  ASSERT_FALSE(model.ok());
  EXPECT_EQ(model.status().code(), ErrorCode::kUnsupported);
  for (const char* name : {"'gemma3'", "llama", "qwen2", "qwen3"}) {
    EXPECT_NE(model.status().message().find(name), std::string::npos) << name;
  }
}

TEST(ArchLoadTest, Llama3FactorsFollowWavelengthBands) {
  const ModelShape* shape = FindModelShape("llama-3.2-1b");
  ASSERT_NE(shape, nullptr);
  EXPECT_EQ(shape->rope_scale_factor, 32.0f);
  const std::vector<float> factors = Llama3RopeFactors(*shape, 64);
  ASSERT_EQ(factors.size(), 32u);
  // Wavelength 2 pi at i = 0 keeps its frequency; the longest ones (> 8192 positions) are slowed
  // by the whole factor; the ones between 2048 and 8192 positions blend, in increasing order.
  EXPECT_FLOAT_EQ(factors.front(), 1.0f);
  EXPECT_FLOAT_EQ(factors.back(), 32.0f);
  int blended = 0;
  for (size_t i = 0; i < factors.size(); ++i) {
    const double wavelength = 2 * std::numbers::pi * std::pow(500000.0, 2.0 * static_cast<double>(i) / 64);
    if (wavelength < 2048) {
      EXPECT_FLOAT_EQ(factors[i], 1.0f) << i;
    }
    if (wavelength > 8192) {
      EXPECT_FLOAT_EQ(factors[i], 32.0f) << i;
    }
    if (wavelength >= 2048 && wavelength <= 8192) {
      ++blended;
      EXPECT_GT(factors[i], 1.0f);
      EXPECT_LT(factors[i], 32.0f);
    }
    if (i > 0) {
      EXPECT_GE(factors[i], factors[i - 1]);
    }
  }
  EXPECT_GT(blended, 0);
}

}  // namespace
}  // namespace sparkv
