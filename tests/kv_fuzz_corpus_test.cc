// The seed corpora of the blob and manifest fuzzers (tests/fuzz/corpus/blob, .../manifest) are
// generated here. The test fails when the committed seeds differ from what this build writes, so
// a format change cannot leave the fuzzers starting from stale inputs. To regenerate them, run
// this test with SPARKV_WRITE_FUZZ_CORPUS=1 and commit the files. The exception is
// blob/q8_version2_*.skv: q8 blobs as earlier builds wrote them, kept byte for byte.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <numeric>

#include "common/file_util.h"
#include "kv/blob.h"
#include "kv/chunk_key.h"
#include "kv/format.h"
#include "kv_test_cache.h"
#include "store/manifest.h"

namespace sparkv {
namespace {

using Seeds = std::map<std::string, std::string>;  // file name -> bytes

const Hash128 kFingerprint{0x5eed, 0xf00d};

Seeds BlobSeeds() {
  Seeds seeds;
  for (const Codec* codec : AllCodecs()) {
    for (KvElemType elem : {KvElemType::kF16, KvElemType::kF32}) {
      // Small enough for the fuzzer to mutate quickly; 40 wide so q8 has a short second group.
      testing::TestKvCache cache(elem, 2, 1, 40, 16, 19);
      cache.FillPattern(7);
      Result<std::vector<uint8_t>> blob =
          EncodeBlob(*codec, BlobIdentity{kFingerprint, Hash128{1, 2}, 16, 19}, cache.slice());
      EXPECT_TRUE(blob.ok()) << blob.status().ToString();
      if (!blob.ok()) continue;
      const std::string name = std::string(codec->name()) + (elem == KvElemType::kF16 ? "_from_f16" : "_from_f32");
      seeds[name + ".skv"] = std::string(blob->begin(), blob->end());
    }

    // Uniform patterns leave the entropy-coded runs raw, so add a chunk whose values repeat
    // within channels: its runs are rANS-coded and the fuzzer starts from coded streams too.
    testing::TestKvCache repetitive(KvElemType::kF16, 2, 1, 40, 0, 64);
    for (int32_t l = 0; l < 2; ++l) {
      for (bool is_v : {false, true}) {
        for (int64_t i = 0; i < repetitive.n_elements_per_block(); ++i) {
          const int64_t t = i / 40;
          const int64_t c = i % 40;
          repetitive.Set(l, is_v, i, static_cast<float>((t / 8 + c) % 5 - 2) / 4.0f +
                                         static_cast<float>((t * c) % 3) / 64.0f);
        }
      }
    }
    Result<std::vector<uint8_t>> blob =
        EncodeBlob(*codec, BlobIdentity{kFingerprint, Hash128{3, 4}, 0, 64}, repetitive.slice());
    EXPECT_TRUE(blob.ok()) << blob.status().ToString();
    if (blob.ok()) {
      seeds[std::string(codec->name()) + "_repetitive.skv"] = std::string(blob->begin(), blob->end());
    }
  }
  return seeds;
}

Seeds ManifestSeeds() {
  Seeds seeds;
  for (int32_t n_tokens : {5, 40}) {
    Manifest manifest;
    manifest.format_version = kFormatVersion;
    manifest.model_fingerprint = kFingerprint;
    manifest.model_name = "stories260K";
    manifest.chunk_tokens = 16;
    manifest.n_tokens = n_tokens;
    std::vector<int32_t> tokens(static_cast<size_t>(n_tokens));
    std::iota(tokens.begin(), tokens.end(), 1);
    const auto chunks = SplitIntoChunks(n_tokens, 16);
    const auto keys = ChunkKeys(RootKey(kFingerprint, 16), tokens, chunks);
    for (size_t j = 0; j < chunks.size(); ++j) {
      ManifestChunk chunk{chunks[j].index, chunks[j].begin, chunks[j].end, keys[j], {}};
      chunk.levels["f16"] = LevelEntry{4000 + j, Hash128{j, 16}};
      chunk.levels["q8"] = LevelEntry{2200 + j, Hash128{j, 8}};
      manifest.chunks.push_back(chunk);
    }
    manifest.context_key = keys.back();
    seeds["context_" + std::to_string(n_tokens) + ".json"] = ToJson(manifest);
  }
  return seeds;
}

std::filesystem::path CorpusDir(const std::string& name) {
  return std::filesystem::path(__FILE__).parent_path() / "fuzz" / "corpus" / name;
}

void CheckOrWrite(const std::string& name, const Seeds& seeds) {
  const std::filesystem::path dir = CorpusDir(name);
  if (std::getenv("SPARKV_WRITE_FUZZ_CORPUS") != nullptr) {
    ASSERT_TRUE(CreateDirectories(dir.string()).ok());
    for (const auto& [file, bytes] : seeds) {
      ASSERT_TRUE(WriteFileAtomic((dir / file).string(), std::string_view(bytes)).ok());
    }
  }
  for (const auto& [file, bytes] : seeds) {
    Result<std::string> committed = ReadFileToString((dir / file).string());
    ASSERT_TRUE(committed.ok()) << committed.status().ToString()
                                << " (run with SPARKV_WRITE_FUZZ_CORPUS=1 to write the seeds)";
    EXPECT_EQ(*committed, bytes) << (dir / file) << " is stale: run with SPARKV_WRITE_FUZZ_CORPUS=1";
  }
}

TEST(FuzzCorpus, BlobSeedsAreCurrentAndValid) {
  const Seeds seeds = BlobSeeds();
  ASSERT_EQ(seeds.size(), 3 * AllCodecs().size());
  for (const auto& [file, bytes] : seeds) {
    const std::span<const uint8_t> blob(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size());
    EXPECT_TRUE(VerifyBlob(blob).ok()) << file;
  }
  CheckOrWrite("blob", seeds);
}

// q8 payload version 2 (10-bit K, 9-bit V), as builds from before q10 existed wrote it: these two
// blobs were the committed q8 seeds then. This build writes q8 version 1 again but must still
// decode them, and the fuzzer starts from that layout too.
TEST(FuzzCorpus, Q8Version2SeedsOfEarlierBuildsStillDecode) {
  for (KvElemType elem : {KvElemType::kF16, KvElemType::kF32}) {
    const std::string file =
        std::string("q8_version2_") + (elem == KvElemType::kF16 ? "from_f16" : "from_f32") + ".skv";
    Result<std::string> bytes = ReadFileToString((CorpusDir("blob") / file).string());
    ASSERT_TRUE(bytes.ok()) << bytes.status().ToString();
    const std::span<const uint8_t> blob(reinterpret_cast<const uint8_t*>(bytes->data()), bytes->size());
    Result<BlobHeader> header = VerifyBlob(blob);
    ASSERT_TRUE(header.ok()) << file << ": " << header.status().ToString();
    ASSERT_EQ(header->codec, CodecId::kQ8) << file;
    ASSERT_EQ(blob[kBlobHeaderBytes], 2) << file << " does not start with payload version 2";

    // The seeds' source: values k / 512 in [-4, 4), exact in f16 and f32.
    testing::TestKvCache source(elem, 2, 1, 40, 16, 19);
    source.FillPattern(7);
    testing::TestKvCache decoded(KvElemType::kF32, 2, 1, 40, 16, 19);
    const Status status = DecodeBlob(
        blob, ExpectationFor(BlobIdentity{kFingerprint, Hash128{1, 2}, 16, 19}, CodecId::kQ8, decoded.slice()),
        decoded.slice());
    ASSERT_TRUE(status.ok()) << file << ": " << status.ToString();
    // Within half a 10-bit (K) or 9-bit (V) step of a group whose absmax is at most 4, with room
    // for the scale's f16 rounding: 8-bit fields would miss this for K.
    for (int32_t l = 0; l < 2; ++l) {
      for (bool is_v : {false, true}) {
        const double bound = 4.0 / (is_v ? 255.0 : 511.0) / 2.0 * 1.01;
        for (int64_t i = 0; i < source.n_elements_per_block(); ++i) {
          ASSERT_LE(std::fabs(decoded.Get(l, is_v, i) - source.Get(l, is_v, i)), bound)
              << file << " layer " << l << (is_v ? " V " : " K ") << i;
        }
      }
    }
  }
}

TEST(FuzzCorpus, ManifestSeedsAreCurrentAndValid) {
  const Seeds seeds = ManifestSeeds();
  for (const auto& [file, json] : seeds) EXPECT_TRUE(ParseManifest(json).ok()) << file;
  CheckOrWrite("manifest", seeds);
}

}  // namespace
}  // namespace sparkv
