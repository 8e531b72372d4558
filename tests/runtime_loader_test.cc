// The two-path loader against a real store: stories260K, its golden context ingested at f16ans,
// ans4 and q8, a store server on loopback and the HTTP blob source. Parallel decode must leave
// the cache exactly as single-threaded decode does (Codec::DecodeParallel). A transfer that stalls
// while the link has nothing else to carry is raced by the compute path, and the first path to
// finish provides the chunk's rows. A blob that arrives during the raced prefill stops it
// between layers.
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <fstream>
#include <sstream>
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

class LoaderTest : public ::testing::Test {
 protected:
  void SetUp() override {
    Result<std::unique_ptr<Model>> model = Model::Load(testing::Stories260KGguf());
    ASSERT_TRUE(model.ok()) << model.status().ToString();
    model_ = std::move(model).value();
    context_ = testing::GoldenContextTokens();
    ASSERT_GT(context_.size(), 3u * kChunkTokens);
    EngineOptions options;
    options.n_threads = 2;
    options.n_positions = 512;
    Result<std::unique_ptr<Engine>> engine = Engine::Create(*model_, options);
    ASSERT_TRUE(engine.ok()) << engine.status().ToString();
    engine_ = std::move(engine).value();

    IngestOptions ingest;
    ingest.chunk_tokens = kChunkTokens;
    ingest.codecs = {"f16ans", "ans4", "q8"};
    Result<IngestReport> report = IngestContext(*model_, *engine_, context_, ingest, store_.path());
    ASSERT_TRUE(report.ok()) << report.status().ToString();
    manifest_ = report->manifest;

    ServerOptions server_options;
    server_options.root = store_.path();
    server_options.n_threads = 2;
    Result<std::unique_ptr<StoreServer>> server = StoreServer::Start(server_options);
    ASSERT_TRUE(server.ok()) << server.status().ToString();
    server_ = std::move(server).value();
  }

  // Returns the load's chunks: those with stream_chunk(j) stream `level`, the others are computed.
  template <typename StreamChunk>
  std::vector<LoadChunk> Plan(const std::string& level, const StreamChunk& stream_chunk) const {
    const std::vector<ChunkRange> ranges =
        SplitIntoChunks(static_cast<int32_t>(context_.size()), kChunkTokens);
    const std::vector<Hash128> keys =
        ChunkKeys(RootKey(model_->fingerprint(), kChunkTokens), context_, ranges);
    std::vector<LoadChunk> chunks(ranges.size());
    for (size_t j = 0; j < ranges.size(); ++j) {
      chunks[j].range = ranges[j];
      chunks[j].key = keys[j];
      chunks[j].stream = stream_chunk(j);
      chunks[j].codec = level;
      chunks[j].bytes = manifest_.chunks[j].levels.at(level).bytes;
    }
    return chunks;
  }

  // Loads `chunks` into an empty cache with decodes on up to `decode_threads` threads.
  LoadReport Load(const std::vector<LoadChunk>& chunks, int decode_threads) {
    engine_->kv_cache().Clear();
    std::unique_ptr<BlobSource> source = MakeHttpSource(server_->base_url());
    LoaderOptions options;
    options.decode_threads = decode_threads;
    Loader loader(engine_.get(), source.get(), model_->fingerprint(), options);
    Result<LoadReport> report = loader.Load(context_, chunks);
    EXPECT_TRUE(report.ok()) << report.status().ToString();
    return report.ok() ? std::move(report).value() : LoadReport();
  }

  // A plan input that streams every chunk: 0.5 s of predicted prefill per chunk against q8 blobs
  // of a few kB at a predicted 100 MB/s.
  PlanInput StreamEverything(const std::vector<LoadChunk>& chunks) const {
    PlanInput in;
    in.compute = {0.5 / kChunkTokens, 0.0, 0.0};
    for (size_t j = 0; j < chunks.size(); ++j) {
      const ChunkRange& range = chunks[j].range;
      ChunkSpec spec{static_cast<int32_t>(j), range.begin, range.end, {}};
      spec.levels.push_back({"q8", manifest_.chunks[j].levels.at("q8").bytes, 0.001, 1});
      in.chunks.push_back(spec);
    }
    in.bandwidth = BandwidthModel::Constant(100e6);
    return in;
  }

  // Returns every K and V byte of the context's positions.
  std::vector<uint8_t> CacheBytes() {
    const KvSlice slice = engine_->kv_cache().Slice(0, static_cast<int32_t>(context_.size()));
    const size_t bytes = slice.layer_bytes();
    std::vector<uint8_t> all;
    for (int32_t l = 0; l < slice.n_layer; ++l) {
      all.insert(all.end(), slice.k[l], slice.k[l] + bytes);
      all.insert(all.end(), slice.v[l], slice.v[l] + bytes);
    }
    return all;
  }

  // Returns the greedy next token after the context, from the loaded cache.
  TokenId NextToken() {
    std::vector<float> logits;
    const TokenId query[] = {403};
    const Status status = engine_->Prefill(query, static_cast<Position>(context_.size()), &logits);
    EXPECT_TRUE(status.ok()) << status.ToString();
    if (logits.empty()) return -1;
    return static_cast<TokenId>(std::max_element(logits.begin(), logits.end()) - logits.begin());
  }

  std::unique_ptr<Model> model_;
  std::unique_ptr<Engine> engine_;
  std::vector<TokenId> context_;
  testing::TempDir store_;
  Manifest manifest_;
  std::unique_ptr<StoreServer> server_;
};

TEST_F(LoaderTest, StreamAllMatchesSerialDecode) {
  for (const std::string level : {"f16ans", "ans4", "q8"}) {
    const std::vector<LoadChunk> chunks = Plan(level, [](size_t) { return true; });

    const LoadReport serial = Load(chunks, 1);
    ASSERT_EQ(serial.n_streamed, static_cast<int32_t>(chunks.size())) << level;
    const std::vector<uint8_t> serial_cache = CacheBytes();
    const TokenId serial_token = NextToken();

    // Every chunk streams, so the compute path only waits and each decode may use all threads.
    const LoadReport parallel = Load(chunks, 4);
    ASSERT_EQ(parallel.n_streamed, static_cast<int32_t>(chunks.size())) << level;
    EXPECT_EQ(parallel.n_fallback, 0) << level;
    for (size_t j = 0; j < chunks.size(); ++j) {
      EXPECT_EQ(serial.chunks[j].decode_threads, 1) << level << " chunk " << j;
      EXPECT_EQ(parallel.chunks[j].decode_threads, 4) << level << " chunk " << j;
    }
    EXPECT_EQ(CacheBytes(), serial_cache) << level;
    EXPECT_EQ(NextToken(), serial_token) << level;
  }
}

TEST_F(LoaderTest, MixedPlanMatchesSerialDecode) {
  // Chunks 1 and 3 stream while 0 and 2 are computed. A decode that starts during a prefill stays
  // on one thread, and one that starts while compute waits may use more. The cache must not
  // differ either way.
  const std::vector<LoadChunk> chunks = Plan("f16ans", [](size_t j) { return j % 2 == 1; });
  const LoadReport serial = Load(chunks, 1);
  ASSERT_EQ(serial.n_fallback, 0);
  const std::vector<uint8_t> serial_cache = CacheBytes();

  const LoadReport parallel = Load(chunks, 3);
  EXPECT_EQ(parallel.n_fallback, 0);
  EXPECT_EQ(parallel.n_streamed, serial.n_streamed);
  for (size_t j = 0; j < chunks.size(); ++j) {
    if (!parallel.chunks[j].streamed) continue;
    EXPECT_TRUE(parallel.chunks[j].decode_threads == 1 || parallel.chunks[j].decode_threads == 3)
        << "chunk " << j << ": " << parallel.chunks[j].decode_threads;
  }
  EXPECT_EQ(CacheBytes(), serial_cache);
}

TEST_F(LoaderTest, PrefillWinsStalledRace) {
  const std::vector<LoadChunk> chunks = Plan("q8", [](size_t) { return false; });
  engine_->kv_cache().Clear();
  Loader local(engine_.get(), nullptr, model_->fingerprint());
  ASSERT_TRUE(local.Load(context_, chunks).ok());
  const TokenId expected = NextToken();

  // The stream path fetches from the back, so chunk 0 comes last, when the link has nothing else
  // to carry. Its blob is held for 20 s: the compute path takes the chunk once the transfer has
  // stalled past its prediction, the transfer goes on, and the prefill (milliseconds on this
  // model) wins. The held transfer is then cancelled.
  engine_->kv_cache().Clear();
  HoldingSource source(MakeHttpSource(server_->base_url()), chunks[0].key, 20.0);
  Loader loader(engine_.get(), &source, model_->fingerprint());
  Result<LoadReport> report = loader.Load(context_, chunks, StreamEverything(chunks), FindStrategy("sparkv-adaptive").value());
  ASSERT_TRUE(report.ok()) << report.status().ToString();
  EXPECT_EQ(report->stats.n_raced, 1);
  EXPECT_EQ(report->stats.n_cancelled, 0) << "a race is not a cancellation";
  EXPECT_FALSE(report->chunks[0].streamed);
  EXPECT_TRUE(report->chunks[0].cancelled);
  EXPECT_TRUE(source.cancelled()) << "the transfer must end when the prefill wins";
  for (size_t j = 1; j < chunks.size(); ++j) EXPECT_TRUE(report->chunks[j].streamed) << "chunk " << j;
  EXPECT_LT(report->all_resident_s, 10.0) << "the load waited for the held blob";
  EXPECT_EQ(NextToken(), expected);
}

TEST_F(LoaderTest, ArrivingBlobInterruptsRacedPrefill) {
  const std::vector<LoadChunk> chunks = Plan("q8", [](size_t) { return false; });
  engine_->kv_cache().Clear();
  Loader local(engine_.get(), nullptr, model_->fingerprint());
  Result<LoadReport> local_report = local.Load(context_, chunks);
  ASSERT_TRUE(local_report.ok()) << local_report.status().ToString();
  const TokenId expected = NextToken();

  // The engine is emulated slower, aiming at 4 s for chunk 0 in one call (at most 1000x). In
  // pieces it takes longer, since each call pays a fixed cost. Chunk 0's blob comes last and is
  // held for 1.5 s: the compute path races it once the transfer has stalled past its prediction
  // (about 0.5 s in), and the blob then arrives during the prefill. Decoding it ends long before
  // the prefill would, so the engine stops between layers and the chunk streams.
  const double chunk_s = std::max(1e-4, local_report->compute_busy_s / static_cast<double>(chunks.size()));
  ASSERT_TRUE(engine_->set_emulated_slowdown(std::clamp(4.0 / chunk_s, 2.0, 1000.0)).ok());
  engine_->kv_cache().Clear();
  HoldingSource source(MakeHttpSource(server_->base_url()), chunks[0].key, 1.5);
  Loader loader(engine_.get(), &source, model_->fingerprint());
  Result<LoadReport> report =
      loader.Load(context_, chunks, StreamEverything(chunks), FindStrategy("sparkv-adaptive").value());
  ASSERT_TRUE(engine_->set_emulated_slowdown(1.0).ok());
  ASSERT_TRUE(report.ok()) << report.status().ToString();
  EXPECT_EQ(report->stats.n_raced, 1);
  EXPECT_TRUE(report->chunks[0].prefill_interrupted);
  EXPECT_TRUE(report->chunks[0].prefill_abandoned);
  EXPECT_TRUE(report->chunks[0].streamed);
  EXPECT_FALSE(source.cancelled());
  EXPECT_EQ(report->n_streamed, static_cast<int32_t>(chunks.size()));
  EXPECT_EQ(report->n_fallback, 0);
  EXPECT_EQ(NextToken(), expected);
}

}  // namespace
}  // namespace sparkv
