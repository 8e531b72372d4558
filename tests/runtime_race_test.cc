// The real two-path loader racing a chunk: a transfer that stalls while the link has nothing else
// to carry goes on while the compute path prefills the chunk, and the first path to finish
// provides its rows. Real parts: the stories260K model, q8 blobs ingested into a store, a store
// server on loopback and the HTTP blob source. A wrapper holds back one blob's bytes.
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <thread>

#include "kv/chunk_key.h"
#include "net/server.h"
#include "runtime/blob_source.h"
#include "runtime/ingest.h"
#include "runtime/loader.h"
#include "runtime/strategy.h"
#include "test_support.h"

namespace sparkv {
namespace {

constexpr int32_t kChunkTokens = 64;

// Delegates to `inner`, but the first fetch of `held` receives no byte until `hold_s` has passed
// or the loader cancels it (its progress function returns false), whichever comes first.
class HoldingSource final : public BlobSource {
 public:
  HoldingSource(std::unique_ptr<BlobSource> inner, const Hash128& held, double hold_s)
      : inner_(std::move(inner)), held_(held), hold_s_(hold_s) {}

  std::string Describe() const override { return "holding " + inner_->Describe(); }
  Result<FetchedBytes> FetchManifest(const Hash128& context_key, const ProgressFunction& on_progress) override {
    return inner_->FetchManifest(context_key, on_progress);
  }
  Result<FetchedBytes> FetchBlob(const Hash128& chunk_key, std::string_view codec, uint64_t max_bytes,
                                 uint64_t range_end, const ProgressFunction& on_progress) override {
    if (chunk_key == held_ && !held_once_) {
      held_once_ = true;
      const auto start = std::chrono::steady_clock::now();
      for (;;) {
        const double elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
        if (elapsed >= hold_s_) break;
        if (on_progress && !on_progress(0, elapsed)) {
          cancelled_ = true;
          return CancelledError("held blob cancelled by the loader");
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
      }
    }
    return inner_->FetchBlob(chunk_key, codec, max_bytes, range_end, on_progress);
  }
  void Interrupt() override { inner_->Interrupt(); }

  bool cancelled() const { return cancelled_; }

 private:
  std::unique_ptr<BlobSource> inner_;
  Hash128 held_;
  double hold_s_;
  bool held_once_ = false;
  std::atomic<bool> cancelled_{false};
};

class LoaderRaceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    model_ = std::move(Model::Load(testing::Stories260KGguf())).value();
    context_ = testing::GoldenContextTokens();
    EngineOptions options;
    options.n_threads = 2;
    options.n_positions = 512;
    engine_ = std::move(Engine::Create(*model_, options)).value();
    IngestOptions ingest;
    ingest.chunk_tokens = kChunkTokens;
    ingest.codecs = {"q8"};
    Result<IngestReport> report = IngestContext(*model_, *engine_, context_, ingest, store_.path());
    ASSERT_TRUE(report.ok()) << report.status().ToString();
    manifest_ = report->manifest;
    ServerOptions server_options;
    server_options.root = store_.path();
    server_options.n_threads = 2;
    server_ = std::move(StoreServer::Start(server_options)).value();

    const std::vector<ChunkRange> ranges = SplitIntoChunks(static_cast<int32_t>(context_.size()), kChunkTokens);
    const std::vector<Hash128> keys = ChunkKeys(RootKey(model_->fingerprint(), kChunkTokens), context_, ranges);
    chunks_.resize(ranges.size());
    for (size_t j = 0; j < ranges.size(); ++j) {
      chunks_[j].range = ranges[j];
      chunks_[j].key = keys[j];
    }
  }

  // A plan input that streams every chunk: 0.5 s of predicted prefill per chunk against q8 blobs
  // of a few kB at a predicted 100 MB/s.
  PlanInput StreamEverything() const {
    PlanInput in;
    in.compute = {0.5 / kChunkTokens, 0.0, 0.0};
    for (size_t j = 0; j < chunks_.size(); ++j) {
      const ChunkRange& range = chunks_[j].range;
      ChunkSpec spec{static_cast<int32_t>(j), range.begin, range.end, {}};
      spec.levels.push_back({"q8", manifest_.chunks[j].levels.at("q8").bytes, 0.001, 1});
      in.chunks.push_back(spec);
    }
    in.bandwidth = BandwidthModel::Constant(100e6);
    return in;
  }

  // The greedy next token after the context, from the loaded cache.
  TokenId NextToken() {
    std::vector<float> logits;
    const TokenId query[] = {403};
    EXPECT_TRUE(engine_->Prefill(query, static_cast<Position>(context_.size()), &logits).ok());
    if (logits.empty()) return -1;
    return static_cast<TokenId>(std::max_element(logits.begin(), logits.end()) - logits.begin());
  }

  std::unique_ptr<Model> model_;
  std::unique_ptr<Engine> engine_;
  std::vector<TokenId> context_;
  testing::TempDir store_;
  Manifest manifest_;
  std::unique_ptr<StoreServer> server_;
  std::vector<LoadChunk> chunks_;
};

TEST_F(LoaderRaceTest, PrefillWinsStalledRace) {
  engine_->kv_cache().Clear();
  Loader local(engine_.get(), nullptr, model_->fingerprint());
  ASSERT_TRUE(local.Load(context_, chunks_).ok());
  const TokenId expected = NextToken();

  // The stream path fetches from the back, so chunk 0 comes last, when the link has nothing else
  // to carry. Its blob is held for 20 s: the compute path takes the chunk once the transfer has
  // stalled past its prediction, the transfer goes on, and the prefill (milliseconds on this
  // model) wins. The held transfer is then cancelled.
  engine_->kv_cache().Clear();
  HoldingSource source(MakeHttpSource(server_->base_url()), chunks_[0].key, 20.0);
  Loader loader(engine_.get(), &source, model_->fingerprint());
  Result<LoadReport> report = loader.Load(context_, chunks_, StreamEverything(), FindStrategy("sparkv-adaptive").value());
  ASSERT_TRUE(report.ok()) << report.status().ToString();
  EXPECT_EQ(report->stats.n_raced, 1);
  EXPECT_EQ(report->stats.n_cancelled, 0) << "a race is not a cancellation";
  EXPECT_FALSE(report->chunks[0].streamed);
  EXPECT_TRUE(report->chunks[0].cancelled);
  EXPECT_TRUE(source.cancelled()) << "the transfer must end when the prefill wins";
  for (size_t j = 1; j < chunks_.size(); ++j) EXPECT_TRUE(report->chunks[j].streamed) << "chunk " << j;
  EXPECT_LT(report->all_resident_s, 10.0) << "the load waited for the held blob";
  EXPECT_EQ(NextToken(), expected);
}

}  // namespace
}  // namespace sparkv
