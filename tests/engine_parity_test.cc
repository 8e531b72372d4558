// The engine on the real stories260K model against llama.cpp's outputs for the same GGUF, and the
// chunking properties the planner relies on.
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstring>
#include <fstream>
#include <sstream>
#include <thread>

#include "engine/engine.h"
#include "engine/sampler.h"
#include "model/model.h"
#include "test_support.h"

namespace sparkv {
namespace {

struct Golden {
  std::vector<TokenId> tokens;                 // BOS then 200 greedy tokens
  std::vector<Position> positions;             // 200, 63, 127, 199
  std::vector<std::vector<float>> logits;      // [positions.size()][512]
};

Golden LoadGolden(const std::string& name) {
  Golden g;
  std::ifstream in(testing::DataPath("golden/" + name));
  EXPECT_TRUE(in) << name;
  std::string line;
  std::getline(in, line);
  std::istringstream tokens(line);
  for (TokenId t; tokens >> t;) g.tokens.push_back(t);
  for (int row = 0; std::getline(in, line); ++row) {
    std::istringstream values(line);
    Position pos = 200;
    if (row > 0) {
      std::string tag;
      values >> tag;  // "pos63:"
      pos = std::stoi(tag.substr(3));
    }
    g.positions.push_back(pos);
    g.logits.emplace_back();
    for (float v; values >> v;) g.logits.back().push_back(v);
  }
  return g;
}

float MaxAbsDiff(std::span<const float> a, std::span<const float> b) {
  EXPECT_EQ(a.size(), b.size());
  float max = 0.0f;
  for (size_t i = 0; i < std::min(a.size(), b.size()); ++i) max = std::max(max, std::fabs(a[i] - b[i]));
  return max;
}

class EngineParityTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto model = Model::Load(testing::Stories260KGguf());
    ASSERT_TRUE(model.ok()) << model.status().ToString();
    model_ = std::move(model).value();
    f32_ = LoadGolden("stories260K.llamacpp.kvf32.txt");
    f16_ = LoadGolden("stories260K.llamacpp.kvf16.txt");
    ASSERT_EQ(f32_.tokens.size(), 201u);
    ASSERT_EQ(f32_.logits.size(), 4u);
    ASSERT_EQ(f32_.logits[0].size(), 512u);
  }

  std::unique_ptr<Engine> MakeEngine(KvElemType kv_type, int32_t n_batch = 64, int n_threads = 2) {
    EngineOptions options;
    options.kv_type = kv_type;
    options.n_positions = 512;
    options.n_batch = n_batch;
    options.n_threads = n_threads;
    auto engine = Engine::Create(*model_, options);
    EXPECT_TRUE(engine.ok()) << engine.status().ToString();
    return engine.ok() ? std::move(engine).value() : nullptr;
  }

  // Logits of a fresh F16 engine at the golden positions, all golden tokens prefilled as
  // `chunk`-token calls: the reference for an engine that is stopped or slowed on the way.
  std::vector<std::vector<float>> ReferenceLogits(int32_t chunk) {
    auto reference = MakeEngine(KvElemType::kF16);
    EXPECT_NE(reference, nullptr);
    return reference == nullptr ? std::vector<std::vector<float>>() : ChunkedLogits(*reference, f32_, chunk);
  }

  // Logits at the golden positions after prefilling all golden tokens as `chunk`-token calls.
  std::vector<std::vector<float>> ChunkedLogits(Engine& engine, const Golden& g, int32_t chunk) {
    std::vector<std::vector<float>> out(g.positions.size());
    const Position n = static_cast<Position>(g.tokens.size());
    for (Position b = 0; b < n; b += chunk) {
      const Position e = std::min(n, b + chunk);
      std::vector<Position> wanted;
      for (Position p : g.positions) {
        if (p >= b && p < e) wanted.push_back(p);
      }
      std::vector<float> logits;
      const Status status = engine.PrefillWithLogits(std::span(g.tokens).subspan(b, e - b), b, wanted, &logits);
      EXPECT_TRUE(status.ok()) << status.ToString();
      for (size_t i = 0; i < wanted.size(); ++i) {
        const size_t at = std::find(g.positions.begin(), g.positions.end(), wanted[i]) - g.positions.begin();
        out[at].assign(logits.begin() + i * 512, logits.begin() + (i + 1) * 512);
      }
    }
    return out;
  }

  std::unique_ptr<Model> model_;
  Golden f32_, f16_;
};

TEST_F(EngineParityTest, GreedyDecodeReproducesGoldenTokens) {
  auto engine = MakeEngine(KvElemType::kF32);
  ASSERT_NE(engine, nullptr);
  std::vector<TokenId> generated = {1};
  std::vector<float> logits;
  for (Position pos = 0; pos < 200; ++pos) {
    ASSERT_TRUE(engine->Decode(generated.back(), pos, &logits).ok());
    generated.push_back(Sampler::Argmax(logits));
  }
  EXPECT_EQ(generated, f32_.tokens);
}

TEST_F(EngineParityTest, OneBatchLogitsMatchGoldenWithF32Cache) {
  auto engine = MakeEngine(KvElemType::kF32, /*n_batch=*/256);
  ASSERT_NE(engine, nullptr);
  const auto logits = ChunkedLogits(*engine, f32_, 201);
  // llama.cpp sums in another order (and a plain-Python forward pass agrees with it to 1.8e-5);
  // 1e-4 is the parity bound the design sets for an f32 cache.
  for (size_t i = 0; i < logits.size(); ++i) {
    const float diff = MaxAbsDiff(logits[i], f32_.logits[i]);
    EXPECT_LT(diff, 1e-4f) << "position " << f32_.positions[i];
    RecordProperty("max_abs_diff_f32_pos" + std::to_string(f32_.positions[i]), std::to_string(diff));
  }
}

TEST_F(EngineParityTest, OneBatchLogitsMatchGoldenWithF16Cache) {
  auto engine = MakeEngine(KvElemType::kF16, /*n_batch=*/256);
  ASSERT_NE(engine, nullptr);
  const auto logits = ChunkedLogits(*engine, f16_, 201);
  // Both engines round K and V to f16, but llama.cpp also rounds Q and the softmax output to f16
  // before its products while this engine keeps them in f32. llama.cpp's own f16-cache logits
  // differ from its f32-cache logits by up to 0.021 at these positions; this engine measured
  // 0.0085 to 0.0144 against the f16 golden. The bound is 1.5x llama.cpp's own f16 error.
  constexpr float kF16Bound = 0.03f;
  for (size_t i = 0; i < logits.size(); ++i) {
    const float diff = MaxAbsDiff(logits[i], f16_.logits[i]);
    EXPECT_LT(diff, kF16Bound) << "position " << f16_.positions[i];
    EXPECT_LT(MaxAbsDiff(logits[i], f32_.logits[i]), kF16Bound) << "position " << f16_.positions[i];
    RecordProperty("max_abs_diff_f16_pos" + std::to_string(f16_.positions[i]), std::to_string(diff));
  }
}

TEST_F(EngineParityTest, ChunkedPrefillEqualsOneBatch) {
  for (KvElemType kv : {KvElemType::kF32, KvElemType::kF16}) {
    auto whole = MakeEngine(kv, 256);
    auto chunked = MakeEngine(kv, 64);
    ASSERT_NE(whole, nullptr);
    ASSERT_NE(chunked, nullptr);
    const auto want = ChunkedLogits(*whole, f32_, 201);
    for (int32_t chunk : {64, 50, 5, 3, 1}) {
      chunked->kv_cache().Clear();
      const auto got = ChunkedLogits(*chunked, f32_, chunk);
      // Each token's arithmetic does not depend on its batch neighbours: products are per token
      // and row, in a fixed order, and attention blocks of 4 query tokens score and weigh each key
      // the same way for every token. So chunking should change nothing, and 1e-6 allows for none.
      for (size_t i = 0; i < got.size(); ++i) {
        EXPECT_LE(MaxAbsDiff(got[i], want[i]), 1e-6f) << "chunk " << chunk << " position " << f32_.positions[i];
      }
    }
  }
}

TEST_F(EngineParityTest, RowsCopiedThroughKvSliceThenPrefillGiveSameLogits) {
  auto source = MakeEngine(KvElemType::kF16);
  auto target = MakeEngine(KvElemType::kF16);
  ASSERT_NE(source, nullptr);
  ASSERT_NE(target, nullptr);
  const auto want = ChunkedLogits(*source, f32_, 201);

  // Rows [0, 128) arrive as a codec would deliver them: bytes written into a KvSlice.
  const KvSlice from = source->kv_cache().Slice(0, 128);
  const KvSlice to = target->kv_cache().Slice(0, 128);
  for (int l = 0; l < from.n_layer; ++l) {
    std::memcpy(to.k[l], from.k[l], from.layer_bytes());
    std::memcpy(to.v[l], from.v[l], from.layer_bytes());
  }
  target->kv_cache().MarkResident(0, 128);

  std::vector<float> logits;
  const std::vector<Position> wanted = {199, 200};
  ASSERT_TRUE(target->PrefillWithLogits(std::span(f32_.tokens).subspan(128), 128, wanted, &logits).ok());
  EXPECT_LE(MaxAbsDiff(std::span(logits).subspan(0, 512), want[3]), 1e-6f);
  EXPECT_LE(MaxAbsDiff(std::span(logits).subspan(512, 512), want[0]), 1e-6f);
}

TEST_F(EngineParityTest, PrefillWhileAnotherThreadWritesLaterRows) {
  auto source = MakeEngine(KvElemType::kF16);
  auto target = MakeEngine(KvElemType::kF16);
  ASSERT_NE(source, nullptr);
  ASSERT_NE(target, nullptr);
  const auto want = ChunkedLogits(*source, f32_, 201);

  // The "network" thread fills rows [128, 200) row by row while the engine computes [0, 128).
  std::thread writer([&] {
    for (Position p = 128; p < 200; ++p) {
      const KvSlice from = source->kv_cache().Slice(p, p + 1);
      const KvSlice to = target->kv_cache().Slice(p, p + 1);
      for (int l = 0; l < from.n_layer; ++l) {
        std::memcpy(to.k[l], from.k[l], from.layer_bytes());
        std::memcpy(to.v[l], from.v[l], from.layer_bytes());
      }
      target->kv_cache().MarkResident(p, p + 1);
    }
  });
  const Status status = target->Prefill(std::span(f32_.tokens).subspan(0, 128), 0, nullptr);
  writer.join();
  ASSERT_TRUE(status.ok()) << status.ToString();

  std::vector<float> logits;
  ASSERT_TRUE(target->Prefill(std::span(f32_.tokens).subspan(200, 1), 200, &logits).ok());
  EXPECT_LE(MaxAbsDiff(logits, want[0]), 1e-6f);
}

TEST_F(EngineParityTest, InterruptedPrefillRerunMatches) {
  const auto want = ReferenceLogits(201);
  auto engine = MakeEngine(KvElemType::kF16);
  ASSERT_NE(engine, nullptr);
  ASSERT_FALSE(want.empty());

  std::atomic<bool> interrupt{false};
  engine->set_interrupt(&interrupt);
  ASSERT_TRUE(engine->Prefill(std::span(f32_.tokens).subspan(0, 64), 0, nullptr).ok());
  interrupt = true;
  const Status stopped = engine->Prefill(std::span(f32_.tokens).subspan(64, 64), 64, nullptr);
  EXPECT_EQ(stopped.code(), ErrorCode::kCancelled) << stopped.ToString();
  EXPECT_NE(stopped.message().find("position 64"), std::string::npos) << stopped.message();
  EXPECT_TRUE(engine->kv_cache().IsResident(0, 64)) << "rows of an earlier call must stay resident";
  EXPECT_EQ(engine->kv_cache().FirstNotResident(0, 128), 64);

  // The rows the stopped call wrote in part are computed again once the flag is cleared.
  interrupt = false;
  std::vector<float> logits;
  ASSERT_TRUE(engine->Prefill(std::span(f32_.tokens).subspan(64, 137), 64, &logits).ok());
  EXPECT_LE(MaxAbsDiff(logits, want[0]), 1e-6f);
}

TEST_F(EngineParityTest, EmulatedSlowdownKeepsResults) {
  auto engine = MakeEngine(KvElemType::kF16);
  ASSERT_NE(engine, nullptr);
  for (const double bad : {0.5, 0.0, -2.0, 1001.0, std::nan("")}) {
    const Status status = engine->set_emulated_slowdown(bad);
    EXPECT_EQ(status.code(), ErrorCode::kInvalidArgument) << bad;
    EXPECT_NE(status.message().find("[1, 1000]"), std::string::npos) << status.message();
  }
  EXPECT_EQ(engine->emulated_slowdown(), 1.0) << "a rejected factor must leave the engine as it was";

  // Idling changes when the rows are written, never what they are.
  ASSERT_TRUE(engine->set_emulated_slowdown(3.0).ok());
  const auto want = ReferenceLogits(64);
  const auto got = ChunkedLogits(*engine, f32_, 64);
  ASSERT_EQ(got.size(), want.size());
  for (size_t i = 0; i < want.size(); ++i) EXPECT_EQ(got[i], want[i]) << "chunk " << i;
}

TEST_F(EngineParityTest, InterruptStopsEmulatedSlowdown) {
  auto engine = MakeEngine(KvElemType::kF16);
  ASSERT_NE(engine, nullptr);
  // At 1000x each micro-batch is followed by a wait of about a thousand times its own time, so
  // the flag, set once the call is under way, is seen during that wait.
  ASSERT_TRUE(engine->set_emulated_slowdown(1000.0).ok());
  std::atomic<bool> interrupt{false};
  engine->set_interrupt(&interrupt);
  std::thread setter([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    interrupt = true;
  });
  const Status stopped = engine->Prefill(std::span(f32_.tokens).subspan(0, 64), 0, nullptr);
  setter.join();
  EXPECT_EQ(stopped.code(), ErrorCode::kCancelled) << stopped.ToString();
  EXPECT_FALSE(engine->kv_cache().IsResident(0, 64));
}

TEST_F(EngineParityTest, PrefillRejectsMissingEarlierRows) {
  auto engine = MakeEngine(KvElemType::kF16);
  ASSERT_NE(engine, nullptr);
  ASSERT_TRUE(engine->Prefill(std::span(f32_.tokens).subspan(0, 64), 0, nullptr).ok());
  const Status gap = engine->Prefill(std::span(f32_.tokens).subspan(128, 10), 128, nullptr);
  EXPECT_EQ(gap.code(), ErrorCode::kInvalidArgument);
  EXPECT_NE(gap.message().find("position 64"), std::string::npos) << gap.message();
  EXPECT_FALSE(engine->kv_cache().IsResident(128, 138)) << "a rejected prefill must not mark rows";
}

TEST_F(EngineParityTest, PrefillRejectsBadArguments) {
  auto engine = MakeEngine(KvElemType::kF16);
  ASSERT_NE(engine, nullptr);
  const std::vector<TokenId> bad_token = {1, 512};
  EXPECT_EQ(engine->Prefill(bad_token, 0, nullptr).code(), ErrorCode::kInvalidArgument);
  const std::vector<TokenId> one = {1};
  EXPECT_EQ(engine->Prefill(one, 512, nullptr).code(), ErrorCode::kInvalidArgument);
  EXPECT_EQ(engine->Prefill(one, -1, nullptr).code(), ErrorCode::kInvalidArgument);
  EXPECT_EQ(engine->Prefill({}, 0, nullptr).code(), ErrorCode::kInvalidArgument);
  std::vector<float> logits;
  const std::vector<Position> outside = {3};
  EXPECT_EQ(engine->PrefillWithLogits(one, 0, outside, &logits).code(), ErrorCode::kInvalidArgument);
}


}  // namespace
}  // namespace sparkv
