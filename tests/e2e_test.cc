// End-to-end tests: a real `sparkv serve` process on loopback, the device side on the real
// stories260K model, and failures injected into the server and the store.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <thread>
#include <utility>

#include "common/file_util.h"
#include "kv/chunk_key.h"
#include "runtime/ingest.h"
#include "runtime/loader.h"
#include "runtime/profiler.h"
#include "runtime/session.h"
#include "store/store.h"
#include "test_support.h"

namespace sparkv {
namespace {

constexpr int32_t kChunkTokens = 64;

// A `sparkv serve` child process; killed when the object goes away.
class ServeProcess {
 public:
  ServeProcess(const std::string& store, double rate_mbit, double rtt_ms = 0.0) {
    int out_pipe[2];
    EXPECT_EQ(::pipe(out_pipe), 0);
    pid_ = ::fork();
    if (pid_ == 0) {
      ::dup2(out_pipe[1], STDOUT_FILENO);
      ::close(out_pipe[0]);
      const std::string rate = std::to_string(rate_mbit);
      const std::string rtt = std::to_string(rtt_ms);
      const std::string binary = testing::SparkvBinary();
      ::execl(binary.c_str(), binary.c_str(), "--log-level", "warn", "serve", "--store", store.c_str(), "--port", "0",
              "--rate", rate.c_str(), "--rtt-ms", rtt.c_str(), static_cast<char*>(nullptr));
      ::_exit(127);
    }
    ::close(out_pipe[1]);

    // The server prints "serving <store> at <url>" once it listens.
    FILE* out = ::fdopen(out_pipe[0], "r");
    char line[512] = {0};
    if (std::fgets(line, sizeof(line), out) != nullptr) {
      const std::string text(line);
      const size_t at = text.rfind(" at ");
      if (at != std::string::npos) url_ = text.substr(at + 4, text.find_last_not_of("\n") - at - 3);
    }
    std::fclose(out);
    EXPECT_FALSE(url_.empty()) << "sparkv serve printed no URL";
  }

  ~ServeProcess() { Kill(); }

  const std::string& url() const { return url_; }

  void Kill() {
    if (pid_ > 0) {
      ::kill(pid_, SIGKILL);
      ::waitpid(pid_, nullptr, 0);
      pid_ = -1;
    }
  }

 private:
  pid_t pid_ = -1;
  std::string url_;
};

// Shared fixture: the model, an engine, a profile and a store with f16 and q8 blobs of the
// golden 201-token context, chunked by 64.
class EndToEndTest : public ::testing::Test {
 protected:
  void SetUp() override {
    model_ = std::move(Model::Load(testing::Stories260KGguf())).value();
    context_ = testing::GoldenContextTokens();
    ASSERT_EQ(context_.size(), 201u);
    query_ = {403, 261};
    EngineOptions options;
    options.n_threads = 2;
    options.n_positions = 512;
    engine_ = std::move(Engine::Create(*model_, options)).value();

    IngestOptions ingest;
    ingest.chunk_tokens = kChunkTokens;
    ingest.codecs = {"f16", "q8"};
    Result<IngestReport> report = IngestContext(*model_, *engine_, context_, ingest, store_dir_.path());
    ASSERT_TRUE(report.ok()) << report.status().ToString();
    manifest_ = report->manifest;

    ProfileOptions profile_options;
    profile_options.chunk_tokens = kChunkTokens;
    profile_ = std::move(MeasureProfile(*model_, *engine_, profile_options, nullptr)).value();
  }

  RunReport Run(const std::string& server, const std::string& strategy, const std::string& level, int32_t n_generate,
                double bandwidth_hint_mbit = 0.0) {
    RunOptions options;
    options.bandwidth_hint_mbit = bandwidth_hint_mbit;
    options.server_url = server;
    options.strategy = strategy;
    options.levels = {level};
    options.chunk_tokens = kChunkTokens;
    options.n_generate = n_generate;
    options.timeout_s = 10;
    Result<RunReport> report = RunRequest(*model_, *engine_, profile_, context_, query_, options);
    EXPECT_TRUE(report.ok()) << report.status().ToString();
    return report.ok() ? std::move(report).value() : RunReport();
  }

  // Serves the store with `manifest` in place of the ingested one and runs `local`, then `stream`.
  std::pair<RunReport, RunReport> LocalAndStreamWith(const Manifest& manifest) {
    Store store(store_dir_.path());
    EXPECT_TRUE(store.WriteManifest(manifest).ok());
    ServeProcess server(store_dir_.path(), 0);
    RunReport local = Run("", "local", "f16", 16);
    return {std::move(local), Run(server.url(), "stream", "f16", 16)};
  }

  // Runs `stream` on `manifest`, which it must ignore, computing every chunk with local's tokens.
  // Returns the run's first warning.
  std::string StreamWithManifest(const Manifest& manifest) {
    const auto [local, stream] = LocalAndStreamWith(manifest);
    EXPECT_EQ(stream.tokens, local.tokens);
    EXPECT_EQ(stream.load.n_streamed, 0);
    EXPECT_FALSE(stream.warnings.empty());
    return stream.warnings.empty() ? std::string() : stream.warnings[0];
  }

  // Writes the context's token ids into `dir` and returns the start of a `sparkv run` command
  // line that loads it with the fixture's query, in chunks of kChunkTokens.
  std::string RunCommand(const testing::TempDir& dir) const {
    std::string ids;
    for (TokenId id : context_) ids += std::to_string(id) + " ";
    std::ofstream(dir.File("context.txt")) << ids;
    return testing::SparkvBinary() + " --log-level error run --model " + testing::Stories260KGguf() + " --tokens " +
           dir.File("context.txt") + " --query-tokens '403 261' --chunk-tokens " + std::to_string(kChunkTokens);
  }

  std::unique_ptr<Model> model_;
  std::unique_ptr<Engine> engine_;
  std::vector<TokenId> context_;
  std::vector<TokenId> query_;
  testing::TempDir store_dir_;
  Manifest manifest_;
  Profile profile_;
};

TEST_F(EndToEndTest, F16StreamAndHybridMatchLocalTokens) {
  ServeProcess server(store_dir_.path(), 0);
  const RunReport local = Run("", "local", "f16", 64);
  const RunReport stream = Run(server.url(), "stream", "f16", 64);
  const RunReport hybrid = Run(server.url(), "hybrid", "f16", 64);

  ASSERT_EQ(local.tokens.size(), 64u);
  EXPECT_EQ(local.load.n_streamed, 0);
  EXPECT_EQ(stream.load.n_streamed, 4);
  EXPECT_EQ(stream.load.n_fallback, 0);
  EXPECT_GT(stream.load.stream_bytes, 0u);
  EXPECT_EQ(stream.tokens, local.tokens);
  EXPECT_EQ(hybrid.tokens, local.tokens);
  EXPECT_EQ(hybrid.load.n_fallback, 0);
}

TEST_F(EndToEndTest, HybridComputesBeforeManifestArrives) {
  // Every response waits for its first byte, so the manifest arrives long after the compute path
  // could have started. Hybrid must not leave the CPU idle meanwhile.
  ServeProcess server(store_dir_.path(), 0, 300);
  const RunReport local = Run("", "local", "f16", 16);
  const RunReport hybrid = Run(server.url(), "hybrid", "f16", 16);
  EXPECT_EQ(hybrid.tokens, local.tokens);
  ASSERT_EQ(hybrid.load.chunks.size(), 4u);
  EXPECT_GT(hybrid.manifest_s, 0.0);
  EXPECT_LT(hybrid.load.chunks[0].compute_start_s, hybrid.manifest_s) << "chunk 0 waited for the manifest";
  EXPECT_FALSE(hybrid.load.chunks[0].streamed);
  // The manifest either came while chunks were left (then the plan may stream some) or was
  // abandoned when compute finished: both without a warning.
  for (const std::string& warning : hybrid.warnings) ADD_FAILURE() << warning;

  // `stream` still waits: it streams every chunk.
  const RunReport stream = Run(server.url(), "stream", "f16", 16);
  EXPECT_EQ(stream.tokens, local.tokens);
  EXPECT_EQ(stream.load.n_streamed, 4);
}

TEST_F(EndToEndTest, PiecewisePrefillMatchesLocal) {
  // Chunks of 128 tokens: hybrid prefills them in pieces of 64 so that a re-plan can still move
  // a chunk to the stream path. The KV cache and the tokens must not change.
  testing::TempDir store;
  IngestOptions ingest;
  ingest.chunk_tokens = 128;
  ingest.codecs = {"f16"};
  ASSERT_TRUE(IngestContext(*model_, *engine_, context_, ingest, store.path()).ok());
  ServeProcess server(store.path(), 0);
  RunOptions options;
  options.chunk_tokens = 128;
  options.n_generate = 32;
  options.timeout_s = 10;
  options.strategy = "local";
  Result<RunReport> local = RunRequest(*model_, *engine_, profile_, context_, query_, options);
  ASSERT_TRUE(local.ok()) << local.status().ToString();
  options.strategy = "hybrid";
  options.server_url = server.url();
  // A bandwidth hint far below the link's makes the first plan compute, so the stream path
  // measures the link while the compute path works through its pieces.
  options.bandwidth_hint_mbit = 0.001;
  Result<RunReport> hybrid = RunRequest(*model_, *engine_, profile_, context_, query_, options);
  ASSERT_TRUE(hybrid.ok()) << hybrid.status().ToString();
  EXPECT_EQ(hybrid->tokens, local->tokens);
  EXPECT_EQ(hybrid->load.n_streamed + hybrid->load.n_computed, 2);
  EXPECT_EQ(hybrid->load.n_fallback, 0);

  // A hint far above the profile's compute speed: the first plan may stop the head start's
  // prefill of chunk 0 between pieces and stream the chunk over the rows computed so far.
  // Whether it does depends on when the manifest arrives; the tokens must match either way.
  options.bandwidth_hint_mbit = 10000;
  for (const char* strategy : {"hybrid", "sparkv", "cake"}) {
    options.strategy = strategy;
    Result<RunReport> fast = RunRequest(*model_, *engine_, profile_, context_, query_, options);
    ASSERT_TRUE(fast.ok()) << strategy << ": " << fast.status().ToString();
    EXPECT_EQ(fast->tokens, local->tokens) << strategy;
    EXPECT_EQ(fast->load.n_streamed + fast->load.n_computed, 2) << strategy;
    RecordProperty(std::string(strategy) + "_prefills_stopped", fast->load.stats.n_abandoned);
  }
}

TEST_F(EndToEndTest, HybridDoesNotWaitForASilentServer) {
  // A listening socket that never responds: the kernel accepts the connection and no process reads it.
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address)), 0);
  ASSERT_EQ(::listen(fd, 4), 0);
  socklen_t length = sizeof(address);
  ASSERT_EQ(::getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length), 0);
  const std::string url = "http://127.0.0.1:" + std::to_string(ntohs(address.sin_port));

  const RunReport local = Run("", "local", "f16", 8);
  // Run() allows 10 s without a byte. The compute path finishes the load long before that, and
  // the manifest request is then abandoned instead of timing out.
  const RunReport hybrid = Run(url, "hybrid", "f16", 8);
  ::close(fd);
  EXPECT_EQ(hybrid.tokens, local.tokens);
  EXPECT_EQ(hybrid.load.n_streamed, 0);
  EXPECT_EQ(hybrid.load.n_computed, 4);
  for (const std::string& warning : hybrid.warnings) {
    EXPECT_EQ(warning.find("timed out"), std::string::npos) << "the request waited for its timeout: " << warning;
  }
}

TEST_F(EndToEndTest, MixedPlanMatchesLocalLogits) {
  ServeProcess server(store_dir_.path(), 0);
  const std::vector<ChunkRange> chunks = SplitIntoChunks(static_cast<int32_t>(context_.size()), kChunkTokens);
  const std::vector<Hash128> keys = ChunkKeys(RootKey(model_->fingerprint(), kChunkTokens), context_, chunks);

  // Chunks 1 and 3 stream, 0 and 2 are computed: each path waits on the other.
  std::vector<LoadChunk> plan(chunks.size());
  for (size_t j = 0; j < chunks.size(); ++j) {
    plan[j].range = chunks[j];
    plan[j].key = keys[j];
    plan[j].stream = j % 2 == 1;
    plan[j].codec = "f16";
    plan[j].bytes = manifest_.chunks[j].levels.at("f16").bytes;
  }
  std::unique_ptr<BlobSource> source = MakeHttpSource(server.url());
  engine_->kv_cache().Clear();
  Loader loader(engine_.get(), source.get(), model_->fingerprint());
  Result<LoadReport> report = loader.Load(context_, plan);
  ASSERT_TRUE(report.ok()) << report.status().ToString();
  EXPECT_EQ(report->n_streamed, 2);
  EXPECT_EQ(report->n_computed, 2);
  std::vector<float> mixed_logits;
  ASSERT_TRUE(engine_->Prefill(query_, static_cast<Position>(context_.size()), &mixed_logits).ok());

  engine_->kv_cache().Clear();
  ASSERT_TRUE(engine_->Prefill(context_, 0, nullptr).ok());
  std::vector<float> local_logits;
  ASSERT_TRUE(engine_->Prefill(query_, static_cast<Position>(context_.size()), &local_logits).ok());
  ASSERT_EQ(mixed_logits.size(), local_logits.size());
  // f16 blobs of an f16 cache are lossless, so the logits agree exactly.
  for (size_t i = 0; i < local_logits.size(); ++i) EXPECT_EQ(mixed_logits[i], local_logits[i]) << "logit " << i;
}

TEST_F(EndToEndTest, Q8StreamAgreesWithLocalOnMostTokens) {
  ServeProcess server(store_dir_.path(), 0);
  const RunReport local = Run("", "local", "f16", 64);
  const RunReport stream = Run(server.url(), "stream", "q8", 64);
  ASSERT_EQ(stream.load.n_streamed, 4);
  ASSERT_EQ(local.tokens.size(), 64u);

  // Share of positions where the two greedy continuations agree. Because q8 is lossy, this is a
  // measurement with a loose floor, not an identity.
  size_t agree = 0;
  for (size_t i = 0; i < std::min(local.tokens.size(), stream.tokens.size()); ++i) agree += local.tokens[i] == stream.tokens[i];
  const double share = static_cast<double>(agree) / 64.0;
  RecordProperty("q8_top1_agreement_of_64", std::to_string(share));
  std::printf("q8 stream: %zu of 64 greedy tokens agree with local (%.1f%%)\n", agree, 100.0 * share);
  EXPECT_GE(share, 0.5);
}

TEST_F(EndToEndTest, LossyStreamIsWarned) {
  ServeProcess server(store_dir_.path(), 0);
  const RunReport lossless = Run(server.url(), "stream", "f16", 4);
  ASSERT_EQ(lossless.load.n_streamed, 4);
  for (const std::string& warning : lossless.warnings) EXPECT_EQ(warning.find("lossy"), std::string::npos) << warning;

  const RunReport lossy = Run(server.url(), "stream", "q8", 4);
  ASSERT_EQ(lossy.load.n_streamed, 4);
  for (const ChunkOutcome& chunk : lossy.load.chunks) EXPECT_EQ(chunk.codec, "q8");
  bool warned = false;
  for (const std::string& warning : lossy.warnings) {
    warned = warned || warning.rfind("chunks 0-3 were streamed at q8 (lossy); output may differ", 0) == 0;
  }
  EXPECT_TRUE(warned) << ::testing::PrintToString(lossy.warnings);
}

TEST_F(EndToEndTest, NoAllowedLevelIsWarned) {
  // The store contains f16 and q8 but not q4. Without a bandwidth hint no probe runs either.
  ServeProcess server(store_dir_.path(), 0);
  const RunReport local = Run("", "local", "f16", 8);
  const RunReport stream = Run(server.url(), "stream", "q4", 8);
  EXPECT_EQ(stream.tokens, local.tokens);
  EXPECT_EQ(stream.load.n_streamed, 0);
  EXPECT_EQ(stream.probe_bytes, 0u);
  ASSERT_EQ(stream.warnings.size(), 1u) << ::testing::PrintToString(stream.warnings);
  EXPECT_NE(stream.warnings[0].find("levels f16,q8"), std::string::npos) << stream.warnings[0];
  EXPECT_NE(stream.warnings[0].find("none of --levels q4"), std::string::npos) << stream.warnings[0];

  // The same with a bandwidth hint: one warning, not one per chunk.
  const RunReport hinted = Run(server.url(), "stream", "q4", 8, 100.0);
  EXPECT_EQ(hinted.load.n_streamed, 0);
  ASSERT_EQ(hinted.warnings.size(), 1u) << ::testing::PrintToString(hinted.warnings);
  EXPECT_NE(hinted.warnings[0].find("none of --levels q4"), std::string::npos) << hinted.warnings[0];
}

TEST_F(EndToEndTest, HintNamesOnlyDecodableLevels) {
  // A newer server stores a level this build does not know ("zip"), beside q8 or alone. The
  // hint must name levels `run --levels` accepts, never the unknown one.
  auto rename_levels = [this](const std::map<std::string, std::string>& renames) {
    Manifest manifest = manifest_;
    for (ManifestChunk& chunk : manifest.chunks) {
      std::map<std::string, LevelEntry> levels;
      for (const auto& [name, level] : chunk.levels) {
        const auto renamed = renames.find(name);
        if (renamed == renames.end()) {
          levels.emplace(name, level);
        } else if (!renamed->second.empty()) {
          levels.emplace(renamed->second, level);
        }
      }
      chunk.levels = std::move(levels);
    }
    Result<Store> store = Store::Open(store_dir_.path());
    ASSERT_TRUE(store.ok()) << store.status().ToString();
    ASSERT_TRUE(store->WriteManifest(manifest).ok());
  };
  ServeProcess server(store_dir_.path(), 0);

  rename_levels({{"f16", "zip"}});
  const RunReport mixed = Run(server.url(), "stream", "q4", 4);
  EXPECT_EQ(mixed.load.n_streamed, 0);
  ASSERT_EQ(mixed.warnings.size(), 1u) << ::testing::PrintToString(mixed.warnings);
  EXPECT_NE(mixed.warnings[0].find("the server has levels q8,zip"), std::string::npos) << mixed.warnings[0];
  EXPECT_NE(mixed.warnings[0].find("(pass --levels q8, or ingest with --codecs q4)"), std::string::npos)
      << mixed.warnings[0];

  rename_levels({{"f16", "zip"}, {"q8", ""}});
  const RunReport unknown = Run(server.url(), "stream", "f16", 4);
  EXPECT_EQ(unknown.load.n_streamed, 0);
  ASSERT_EQ(unknown.warnings.size(), 1u) << ::testing::PrintToString(unknown.warnings);
  EXPECT_EQ(unknown.warnings[0].find("--levels zip"), std::string::npos) << unknown.warnings[0];
  EXPECT_NE(unknown.warnings[0].find("this build cannot decode that level; ingest the context again with --codecs f16"),
            std::string::npos)
      << unknown.warnings[0];
}

TEST_F(EndToEndTest, EmptyOrRepeatedLevelsRejected) {
  RunOptions options;
  options.strategy = "local";
  options.chunk_tokens = kChunkTokens;
  options.levels = {};
  Result<RunReport> empty = RunRequest(*model_, *engine_, profile_, context_, query_, options);
  ASSERT_FALSE(empty.ok());
  EXPECT_EQ(empty.status().code(), ErrorCode::kInvalidArgument);
  EXPECT_NE(empty.status().message().find("--levels f16"), std::string::npos) << empty.status().ToString();

  options.levels = {"f16", "q8", "f16"};
  Result<RunReport> repeated = RunRequest(*model_, *engine_, profile_, context_, query_, options);
  ASSERT_FALSE(repeated.ok());
  EXPECT_NE(repeated.status().message().find("'f16' is listed twice"), std::string::npos)
      << repeated.status().ToString();
}

TEST_F(EndToEndTest, IngestRejectsRepeatedCodecs) {
  testing::TempDir store;
  IngestOptions ingest;
  ingest.chunk_tokens = kChunkTokens;
  ingest.codecs = {"f16", "q8", "f16"};
  Result<IngestReport> report = IngestContext(*model_, *engine_, context_, ingest, store.path());
  ASSERT_FALSE(report.ok());
  EXPECT_EQ(report.status().code(), ErrorCode::kInvalidArgument);
  EXPECT_NE(report.status().message().find("'f16' more than once"), std::string::npos) << report.status().ToString();
  EXPECT_TRUE(std::filesystem::is_empty(store.path())) << "nothing may be written";
}

TEST_F(EndToEndTest, ServerKilledMidTransferFallsBackToCompute) {
  const RunReport local = Run("", "local", "f16", 16);
  // At 0.05 Mbit/s one 13 KB blob takes about two seconds, so the kill lands mid-transfer.
  ServeProcess server(store_dir_.path(), 0.05);
  std::thread killer([&server] {
    std::this_thread::sleep_for(std::chrono::milliseconds(800));
    server.Kill();
  });
  // The bandwidth hint skips the probe, so the kill hits the loader's first blob transfer.
  const RunReport stream = Run(server.url(), "stream", "f16", 16, 0.05);
  killer.join();

  EXPECT_EQ(stream.tokens, local.tokens);
  EXPECT_EQ(stream.load.n_streamed + stream.load.n_computed, 4);
  EXPECT_EQ(stream.load.n_fallback, 4);
  ASSERT_FALSE(stream.load.chunks.empty());
  EXPECT_GT(stream.load.chunks[0].bytes, 0u) << "the transfer was cut before any byte arrived";
  EXPECT_FALSE(stream.load.chunks[0].error.empty());
  EXPECT_FALSE(stream.warnings.empty());
}

TEST_F(EndToEndTest, FlippedByteBlobIsRejectedAndRecomputed) {
  // Damage one byte in the payload of chunk 2's f16 blob. The manifest's digest catches it first.
  // With the digest rewritten to the damaged file's, as a manifest written after the damage would
  // list it, the blob's own checksum does.
  Store store(store_dir_.path());
  const std::string path = store.BlobPath(manifest_.chunks[2].key, "f16");
  std::string bytes = std::move(ReadFileToString(path)).value();
  bytes[bytes.size() / 2] ^= 0x40;
  ASSERT_TRUE(WriteFileAtomic(path, bytes).ok());
  Manifest damaged_listed = manifest_;
  damaged_listed.chunks[2].levels.at("f16").digest = Hash128Of(bytes.data(), bytes.size());

  const RunReport local = Run("", "local", "f16", 32);
  for (const auto& [manifest, expected] : {std::pair{manifest_, "digest"}, std::pair{damaged_listed, "checksum"}}) {
    ASSERT_TRUE(store.WriteManifest(manifest).ok());
    ServeProcess server(store_dir_.path(), 0);
    const RunReport stream = Run(server.url(), "stream", "f16", 32);
    EXPECT_EQ(stream.tokens, local.tokens);
    EXPECT_EQ(stream.load.n_fallback, 1);
    ASSERT_EQ(stream.load.chunks.size(), 4u);
    EXPECT_TRUE(stream.load.chunks[2].fell_back);
    EXPECT_NE(stream.load.chunks[2].error.find(expected), std::string::npos) << stream.load.chunks[2].error;
    EXPECT_TRUE(stream.load.chunks[3].streamed);
  }
}

TEST_F(EndToEndTest, RefusedConnectionComputesEverything) {
  // A port the kernel just handed out and that was closed again has no listener.
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address)), 0);
  socklen_t length = sizeof(address);
  ASSERT_EQ(::getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length), 0);
  const int port = ntohs(address.sin_port);
  ::close(fd);

  const RunReport local = Run("", "local", "f16", 16);
  const RunReport stream = Run("http://127.0.0.1:" + std::to_string(port), "stream", "f16", 16);
  EXPECT_EQ(stream.tokens, local.tokens);
  EXPECT_EQ(stream.load.n_streamed, 0);
  ASSERT_FALSE(stream.warnings.empty());
  EXPECT_NE(stream.warnings[0].find("manifest"), std::string::npos);
}

TEST_F(EndToEndTest, ManifestForAnotherModelIsNotUsed) {
  // Rewrite the manifest with another fingerprint, as a server with a different model would.
  Manifest lying = manifest_;
  lying.model_fingerprint.low ^= 1;
  const std::string warning = StreamWithManifest(lying);
  EXPECT_NE(warning.find("mismatch"), std::string::npos) << warning;
}

TEST_F(EndToEndTest, ManifestOverstatingBlobSizeIsNotUsed) {
  // Chunk 1's f16 blob is listed at 1 TB: no f16 blob of 64 tokens of this model is that large.
  Manifest lying = manifest_;
  lying.chunks[1].levels.at("f16").bytes = uint64_t{1} << 40;
  const std::string warning = StreamWithManifest(lying);
  EXPECT_NE(warning.find("manifest chunk 1 lists its f16 blob at 1099511627776 bytes"), std::string::npos) << warning;
  EXPECT_NE(warning.find("ingest the context again"), std::string::npos) << warning;
}

TEST_F(EndToEndTest, BlobUnlikeManifestDigestIsComputed) {
  // Chunk 2's f16 digest no longer matches its blob, as when the store changed after the manifest.
  Manifest lying = manifest_;
  lying.chunks[2].levels.at("f16").digest.low ^= 1;
  const auto [local, stream] = LocalAndStreamWith(lying);
  EXPECT_EQ(stream.tokens, local.tokens);
  EXPECT_EQ(stream.load.n_streamed, 3);
  ASSERT_EQ(stream.load.chunks.size(), 4u);
  EXPECT_TRUE(stream.load.chunks[2].fell_back);
  EXPECT_NE(stream.load.chunks[2].error.find("differs from the manifest's"), std::string::npos)
      << stream.load.chunks[2].error;
}

TEST_F(EndToEndTest, MissingProbedBlobStreamsTheOthers) {
  // The bandwidth probe reads the last chunk's blob first. Without it the probe moves on, and only
  // that chunk is computed.
  Store store(store_dir_.path());
  ASSERT_TRUE(std::filesystem::remove(store.BlobPath(manifest_.chunks[3].key, "f16")));
  ServeProcess server(store_dir_.path(), 0);
  const RunReport local = Run("", "local", "f16", 16);
  const RunReport stream = Run(server.url(), "stream", "f16", 16);
  EXPECT_EQ(stream.tokens, local.tokens);
  EXPECT_EQ(stream.load.n_streamed, 3);
  ASSERT_EQ(stream.load.chunks.size(), 4u);
  EXPECT_TRUE(stream.load.chunks[3].fell_back);
  EXPECT_GT(stream.bandwidth_estimate_bps, 0.0);
  ASSERT_FALSE(stream.warnings.empty());
  EXPECT_NE(stream.warnings.back().find("chunk 3 [192, 201)"), std::string::npos) << stream.warnings.back();
}

TEST_F(EndToEndTest, RunCommandPrintsJsonReport) {
  ServeProcess server(store_dir_.path(), 0);
  testing::TempDir dir;
  const std::string command = RunCommand(dir) + " --server " + server.url() + " --strategy hybrid -n 8 --json";
  const auto [status, output] = testing::RunShell(command);
  ASSERT_EQ(status, 0) << output;

  const nlohmann::json report = nlohmann::json::parse(output);
  EXPECT_EQ(report["strategy"], "hybrid");
  EXPECT_GT(report["ttft_s"].get<double>(), 0.0);
  EXPECT_EQ(report["chunks_streamed"].get<int>() + report["chunks_computed"].get<int>(), 4);
  EXPECT_TRUE(report.contains("stream_bytes"));
  EXPECT_EQ(report["tokens"].size(), 8u);
}

}  // namespace
}  // namespace sparkv

namespace sparkv {
namespace {

// Generated byte tokens can form invalid UTF-8; the JSON report must still be valid JSON.
TEST(RunCommandTest, JsonSurvivesInvalidUtf8Text) {
  testing::TempDir dir;
  // With the golden context, greedy decoding emits byte tokens that are not valid UTF-8 alone.
  std::string context;
  for (TokenId id : testing::GoldenContextTokens()) context += std::to_string(id) + " ";
  std::ofstream(dir.File("context.txt")) << context;
  const std::string command = testing::SparkvBinary() + " --log-level error run --model " + testing::Stories260KGguf() +
                              " --tokens " + dir.File("context.txt") + " --strategy local -n 64 --json";
  const auto [status, output] = testing::RunShell(command);
  ASSERT_EQ(status, 0) << output;

  const nlohmann::json report = nlohmann::json::parse(output);
  EXPECT_EQ(report["tokens"].size(), 64u);
  EXPECT_TRUE(report["text"].is_string());
}

TEST_F(EndToEndTest, RunCommandListsStreamedLevels) {
  ServeProcess server(store_dir_.path(), 0);
  testing::TempDir dir;
  const std::string base = RunCommand(dir) + " --server " + server.url() + " --strategy stream --levels q8 -n 4";
  const auto [text_status, text] = testing::RunShell(base);
  ASSERT_EQ(text_status, 0) << text;
  EXPECT_NE(text.find("at levels  q8 -> 4 chunks (lossy)"), std::string::npos) << text;
  EXPECT_NE(text.find("warning: chunks 0-3 were streamed at q8 (lossy)"), std::string::npos) << text;
  EXPECT_NE(text.find("pass --levels f16 for lossless"), std::string::npos) << text;

  const auto [json_status, json] = testing::RunShell(base + " --json");
  ASSERT_EQ(json_status, 0) << json;
  const nlohmann::json report = nlohmann::json::parse(json);
  EXPECT_EQ(report["streamed_codecs"], nlohmann::json({{"q8", 4}}));
  ASSERT_EQ(report["chunk_timeline"].size(), 4u);
  EXPECT_EQ(report["prefills_stopped"], 0) << "stream computes nothing";
  EXPECT_EQ(report["races"], 0) << "stream computes nothing";
  for (const nlohmann::json& chunk : report["chunk_timeline"]) {
    EXPECT_EQ(chunk["codec"], "q8");
    EXPECT_EQ(chunk["prefill_stopped"], false);
  }
}

TEST_F(EndToEndTest, RunEmulatedSlowdownKeepsTokens) {
  ServeProcess server(store_dir_.path(), 0);
  testing::TempDir dir;
  const std::string base = RunCommand(dir) + " -n 6";
  const auto [local_status, local_out] = testing::RunShell(base + " --strategy local --json");
  ASSERT_EQ(local_status, 0) << local_out;
  const auto [slow_status, slow_out] =
      testing::RunShell(base + " --server " + server.url() + " --strategy hybrid --emulate-slowdown 4 --json");
  ASSERT_EQ(slow_status, 0) << slow_out;
  const nlohmann::json local = nlohmann::json::parse(local_out);
  const nlohmann::json slow = nlohmann::json::parse(slow_out);
  EXPECT_EQ(slow["tokens"], local["tokens"]) << "f16 blobs or local compute, at any speed, give the same tokens";
  ASSERT_EQ(slow["chunk_timeline"].size(), 4u);
  for (const nlohmann::json& chunk : slow["chunk_timeline"]) EXPECT_TRUE(chunk.contains("prefill_interrupted"));

  for (const std::string bad : {"0.5", "nan", "2000", "text"}) {
    const auto [status, output] = testing::RunShell(base + " --strategy local --emulate-slowdown " + bad + " 2>&1");
    EXPECT_NE(status, 0) << bad;
    EXPECT_NE(output.find("--emulate-slowdown: '" + bad + "' is not a number from 1 to 100"), std::string::npos)
        << bad << ": " << output;
  }
}

TEST(RunCommandTest, EmptyLevelListIsRejected) {
  testing::TempDir dir;
  std::ofstream(dir.File("context.txt")) << "1 403 261";
  const std::pair<const char*, const char*> cases[] = {
      {"''", "names no codec"}, {"','", "--levels ',': item 1 is empty"}, {"f16,,q8", "'f16,,q8': item 2 is empty"}};
  for (const auto& [levels, expected] : cases) {
    const std::string command = testing::SparkvBinary() + " --log-level error run --model " +
                                testing::Stories260KGguf() + " --tokens " + dir.File("context.txt") + " --levels " +
                                levels + " 2>&1";
    const auto [status, output] = testing::RunShell(command);
    EXPECT_NE(status, 0) << levels;
    EXPECT_NE(output.find(expected), std::string::npos) << levels << ": " << output;
  }
}

// --query-tokens takes the ids inline or, like --tokens, from a file; both give the same run.
// Names the model cannot affect fail before the model loads and the profile is measured.
TEST(RunCommandTest, BadNamesFailBeforeProfiling) {
  testing::TempDir dir;
  std::ofstream(dir.File("context.txt")) << "1 403 261";
  const std::pair<const char*, const char*> cases[] = {{"--strategy bogus", "unknown strategy 'bogus'"},
                                                       {"--levels f16,q9", "unknown codec level 'q9'"},
                                                       {"--server http//foo", "--server 'http//foo'"}};
  for (const auto& [flag, expected] : cases) {
    const std::string command = "SPARKV_CACHE=" + dir.File("cache") + " " + testing::SparkvBinary() +
                                " --log-level info run --model " + testing::Stories260KGguf() + " --tokens " +
                                dir.File("context.txt") + " " + flag + " 2>&1";
    const auto [status, output] = testing::RunShell(command);
    EXPECT_NE(status, 0) << flag;
    EXPECT_NE(output.find(expected), std::string::npos) << flag << ": " << output;
    EXPECT_EQ(output.find("profile"), std::string::npos) << flag << ": " << output;
  }
}

TEST(RunCommandTest, QueryTokensInlineOrFromFile) {
  testing::TempDir dir;
  std::ofstream(dir.File("context.txt")) << "1 403 261 17 29";
  std::ofstream(dir.File("q.txt")) << "403\n261\n";
  std::ofstream(dir.File("bad.txt")) << "403 two";
  const std::string base = testing::SparkvBinary() + " --log-level error run --model " + testing::Stories260KGguf() +
                           " --tokens " + dir.File("context.txt") + " --strategy local -n 4 --json --query-tokens ";
  const auto [inline_status, inline_out] = testing::RunShell(base + "'403 261'");
  ASSERT_EQ(inline_status, 0) << inline_out;
  const auto [file_status, file_out] = testing::RunShell(base + dir.File("q.txt"));
  ASSERT_EQ(file_status, 0) << file_out;
  const nlohmann::json inline_report = nlohmann::json::parse(inline_out);
  const nlohmann::json file_report = nlohmann::json::parse(file_out);
  EXPECT_EQ(inline_report["n_query"], 2);
  EXPECT_EQ(file_report["n_query"], 2);
  EXPECT_EQ(file_report["tokens"], inline_report["tokens"]);

  const auto [missing_status, missing_out] = testing::RunShell(base + dir.File("absent.txt") + " 2>&1");
  EXPECT_NE(missing_status, 0);
  EXPECT_NE(missing_out.find("--query-tokens '" + dir.File("absent.txt") + "' is neither token ids nor an existing file"),
            std::string::npos)
      << missing_out;
  const auto [bad_status, bad_out] = testing::RunShell(base + dir.File("bad.txt") + " 2>&1");
  EXPECT_NE(bad_status, 0);
  EXPECT_NE(bad_out.find("--query-tokens: token file '" + dir.File("bad.txt") + "': 'two' at index 1 is not a token id"),
            std::string::npos)
      << bad_out;
  // Given but empty: an error, not the default query.
  const auto [empty_status, empty_out] = testing::RunShell(base + "'' 2>&1");
  EXPECT_NE(empty_status, 0) << empty_out;
  EXPECT_NE(empty_out.find("contains no token ids"), std::string::npos) << empty_out;
}

TEST(IngestCommandTest, RepeatedCodecIsRejected) {
  testing::TempDir dir;
  std::ofstream(dir.File("context.txt")) << "1 403 261 17 29";
  const std::string command = testing::SparkvBinary() + " --log-level error ingest --model " +
                              testing::Stories260KGguf() + " --tokens " + dir.File("context.txt") + " --store " +
                              dir.File("store") + " --codecs f16,f16 2>&1";
  const auto [status, output] = testing::RunShell(command);
  EXPECT_NE(status, 0);
  EXPECT_NE(output.find("'f16' more than once"), std::string::npos) << output;
}

TEST(IngestCommandTest, EmptyCodecItemIsRejected) {
  testing::TempDir dir;
  std::ofstream(dir.File("context.txt")) << "1 403 261 17 29";
  const std::string command = testing::SparkvBinary() + " --log-level error ingest --model " +
                              testing::Stories260KGguf() + " --tokens " + dir.File("context.txt") + " --store " +
                              dir.File("store") + " --codecs f16,,q8 2>&1";
  const auto [status, output] = testing::RunShell(command);
  EXPECT_NE(status, 0);
  EXPECT_NE(output.find("--codecs 'f16,,q8': item 2 is empty"), std::string::npos) << output;
}

TEST(EvalCodecCommandTest, RepeatedOrEmptyLevelsRejected) {
  for (const char* levels : {"q8,q4,q8", "','"}) {
    const std::string command = testing::SparkvBinary() + " --log-level error eval-codec --model " +
                                testing::Stories260KGguf() + " --generate 16 --continuation 8 --levels " + levels +
                                " 2>&1";
    const auto [status, output] = testing::RunShell(command);
    EXPECT_NE(status, 0) << levels;
    EXPECT_TRUE(output.find("more than once") != std::string::npos || output.find("item 1 is empty") != std::string::npos)
        << levels << ": " << output;
  }
}

TEST(LossyStreamWarningTest, GroupsChunksByCodec) {
  LoadReport load;
  load.chunks.resize(9);
  const char* codecs[9] = {"f16", "q8", "q8", "q8", "", "q4", "q8", "f16ans", "q4"};
  for (size_t j = 0; j < 9; ++j) {
    load.chunks[j].codec = codecs[j];
    load.chunks[j].streamed = codecs[j][0] != '\0';
  }
  load.chunks[8].streamed = false;  // fell back: computed, so not lossy
  load.chunks[8].fell_back = true;
  EXPECT_EQ(LossyStreamWarning(load),
            "chunks 1-3, 6 were streamed at q8, chunk 5 at q4 (lossy); output may differ from a full local prefill; "
            "pass --levels f16 for lossless");

  for (ChunkOutcome& chunk : load.chunks) {
    if (chunk.codec != "f16ans") chunk.streamed = false;
  }
  EXPECT_EQ(LossyStreamWarning(load), "") << "f16ans is lossless";
}

TEST(RunCommandTest, UnknownLevelIsRejected) {
  testing::TempDir dir;
  std::ofstream(dir.File("context.txt")) << "1 403 261";
  const std::string command = testing::SparkvBinary() + " --log-level error run --model " + testing::Stories260KGguf() +
                              " --tokens " + dir.File("context.txt") + " --levels bogus 2>&1";
  const auto [status, output] = testing::RunShell(command);
  EXPECT_NE(status, 0);
  EXPECT_NE(output.find("unknown codec level 'bogus'"), std::string::npos) << output;
}

}  // namespace
}  // namespace sparkv
