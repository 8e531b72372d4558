#include "store/store.h"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <filesystem>
#include <numeric>
#include <set>
#include <thread>

#include "kv/blob.h"
#include "kv/chunk_key.h"
#include "kv/format.h"
#include "kv_test_cache.h"
#include "test_support.h"

namespace sparkv {
namespace {

using testing::TempDir;
using testing::TestKvCache;

const Hash128 kFingerprint{0xfeed, 0xbeef};

std::vector<uint8_t> MakeBlob(const Codec& codec, const Hash128& key, KvElemType elem,
                              uint32_t seed = 1) {
  TestKvCache cache(elem, 2, 2, 8, 0, 16);
  cache.FillRandom(seed);
  Result<std::vector<uint8_t>> blob =
      EncodeBlob(codec, BlobIdentity{kFingerprint, key, 0, 16}, cache.slice());
  EXPECT_TRUE(blob.ok()) << blob.status().ToString();
  return blob.ok() ? std::move(blob).value() : std::vector<uint8_t>{};
}

std::vector<uint8_t> ReadAll(const std::string& path) {
  Result<MappedFile> file = MappedFile::Open(path);
  EXPECT_TRUE(file.ok()) << file.status().ToString();
  if (!file.ok()) return {};
  return std::vector<uint8_t>(file->data(), file->data() + file->size());
}

// Every file under `root` whose name is not a final store file name.
std::vector<std::string> LeftoverFiles(const std::string& root) {
  std::vector<std::string> leftovers;
  for (const auto& entry : std::filesystem::recursive_directory_iterator(root)) {
    if (!entry.is_regular_file()) continue;
    const std::string name = entry.path().filename().string();
    if (name != "manifest.json" && name != "f16.skv" && name != "q8.skv") leftovers.push_back(name);
  }
  return leftovers;
}

ino_t InodeOf(const std::string& path) {
  struct stat info {};
  EXPECT_EQ(::stat(path.c_str(), &info), 0) << path;
  return info.st_ino;
}

TEST(StorePaths, MatchTheDocumentedLayout) {
  const Hash128 key{0x0123456789abcdefull, 0x0011223344556677ull};
  EXPECT_EQ(Store::ManifestRelativePath(key), "v1/contexts/0123456789abcdef0011223344556677/manifest.json");
  EXPECT_EQ(Store::BlobRelativePath(key, "q8"), "v1/chunks/0123456789abcdef0011223344556677/q8.skv");
  EXPECT_EQ(Store("/srv/store/").BlobPath(key, "f16"),
            "/srv/store/v1/chunks/0123456789abcdef0011223344556677/f16.skv");
}

TEST(StoreOpen, CreatesTheRootAndRejectsAFile) {
  TempDir dir;
  Result<Store> store = Store::Open(dir.File("a/b/store"));
  ASSERT_TRUE(store.ok()) << store.status().ToString();
  EXPECT_TRUE(std::filesystem::is_directory(dir.File("a/b/store")));

  ASSERT_TRUE(WriteFileAtomic(dir.File("plain"), std::string_view("x")).ok());
  EXPECT_FALSE(Store::Open(dir.File("plain")).ok());
  EXPECT_EQ(Store::Open("").status().code(), ErrorCode::kInvalidArgument);
}

TEST(StoreBlobs, WriteThenReadRoundTrips) {
  TempDir dir;
  Store store(dir.path());
  const Hash128 key{1, 2};
  const std::vector<uint8_t> blob = MakeBlob(Q8Codec(), key, KvElemType::kF16);
  Result<LevelEntry> entry = store.WriteBlob(key, "q8", blob);
  ASSERT_TRUE(entry.ok()) << entry.status().ToString();
  EXPECT_EQ(entry->bytes, blob.size());
  EXPECT_EQ(entry->digest, Hash128Of(blob.data(), blob.size()));

  Result<MappedFile> read = store.ReadBlob(key, "q8");
  ASSERT_TRUE(read.ok()) << read.status().ToString();
  EXPECT_EQ(std::vector<uint8_t>(read->data(), read->data() + read->size()), blob);
  EXPECT_EQ(store.ReadBlob(key, "f16").status().code(), ErrorCode::kNotFound);
  EXPECT_EQ(store.ReadBlob(key, "../q8").status().code(), ErrorCode::kInvalidArgument);
  EXPECT_TRUE(LeftoverFiles(dir.path()).empty());
}

TEST(StoreBlobs, SameBlobTwiceIsWrittenOnce) {
  TempDir dir;
  Store store(dir.path());
  const Hash128 key{3, 4};
  const std::vector<uint8_t> blob = MakeBlob(F16Codec(), key, KvElemType::kF16);
  Result<LevelEntry> first = store.WriteBlob(key, "f16", blob);
  ASSERT_TRUE(first.ok());
  const ino_t inode = InodeOf(store.BlobPath(key, "f16"));
  Result<LevelEntry> second = store.WriteBlob(key, "f16", blob);
  ASSERT_TRUE(second.ok());
  EXPECT_EQ(*first, *second);
  EXPECT_EQ(InodeOf(store.BlobPath(key, "f16")), inode) << "the file was rewritten";
}

TEST(StoreBlobs, AStoredValidBlobIsKeptAndReported) {
  TempDir dir;
  Store store(dir.path());
  const Hash128 key{5, 6};
  const std::vector<uint8_t> from_f16 = MakeBlob(F16Codec(), key, KvElemType::kF16);
  const std::vector<uint8_t> from_f32 = MakeBlob(F16Codec(), key, KvElemType::kF32);
  ASSERT_NE(from_f16, from_f32);  // the header records the source element type
  Result<LevelEntry> first = store.WriteBlob(key, "f16", from_f16);
  ASSERT_TRUE(first.ok());
  Result<LevelEntry> second = store.WriteBlob(key, "f16", from_f32);
  ASSERT_TRUE(second.ok());
  EXPECT_EQ(*second, *first);
  EXPECT_EQ(ReadAll(store.BlobPath(key, "f16")), from_f16);
}

TEST(StoreBlobs, ADamagedStoredBlobIsReplaced) {
  TempDir dir;
  Store store(dir.path());
  const Hash128 key{7, 8};
  const std::vector<uint8_t> blob = MakeBlob(Q8Codec(), key, KvElemType::kF32);
  ASSERT_TRUE(store.WriteBlob(key, "q8", blob).ok());
  std::vector<uint8_t> damaged = blob;
  damaged.resize(damaged.size() / 2);
  ASSERT_TRUE(WriteFileAtomic(store.BlobPath(key, "q8"), damaged).ok());

  Result<LevelEntry> entry = store.WriteBlob(key, "q8", blob);
  ASSERT_TRUE(entry.ok()) << entry.status().ToString();
  EXPECT_EQ(entry->digest, Hash128Of(blob.data(), blob.size()));
  EXPECT_EQ(ReadAll(store.BlobPath(key, "q8")), blob);
}

TEST(StoreBlobs, InvalidOrMisfiledBlobsAreNotWritten) {
  TempDir dir;
  Store store(dir.path());
  const Hash128 key{9, 10};
  std::vector<uint8_t> blob = MakeBlob(Q8Codec(), key, KvElemType::kF16);

  std::vector<uint8_t> damaged = blob;
  damaged.back() ^= 1;
  EXPECT_EQ(store.WriteBlob(key, "q8", damaged).status().code(), ErrorCode::kCorruption);
  EXPECT_EQ(store.WriteBlob(Hash128{9, 11}, "q8", blob).status().code(), ErrorCode::kMismatch);
  EXPECT_EQ(store.WriteBlob(key, "f16", blob).status().code(), ErrorCode::kMismatch);
  EXPECT_EQ(store.WriteBlob(key, "q8", std::span<const uint8_t>()).status().code(), ErrorCode::kCorruption);
  EXPECT_FALSE(std::filesystem::exists(store.BlobPath(key, "q8")));
  EXPECT_FALSE(std::filesystem::exists(store.BlobPath(key, "f16")));
}

TEST(StoreBlobs, ConcurrentWritersAgreeOnOneFile) {
  TempDir dir;
  Store store(dir.path());
  const Hash128 key{11, 12};
  // Two different valid encodings of the same chunk, written by racing threads.
  const std::vector<uint8_t> variants[2] = {MakeBlob(Q8Codec(), key, KvElemType::kF16),
                                            MakeBlob(Q8Codec(), key, KvElemType::kF32)};
  for (int round = 0; round < 20; ++round) {
    std::filesystem::remove_all(dir.File("v1"));
    constexpr int kWriters = 8;
    std::vector<Result<LevelEntry>> entries(kWriters, InternalError("not run"));
    std::vector<std::thread> writers;
    for (int w = 0; w < kWriters; ++w) {
      writers.emplace_back([&, w] { entries[w] = store.WriteBlob(key, "q8", variants[w % 2]); });
    }
    for (std::thread& writer : writers) writer.join();

    const std::vector<uint8_t> stored = ReadAll(store.BlobPath(key, "q8"));
    ASSERT_TRUE(stored == variants[0] || stored == variants[1]);
    const LevelEntry on_disk{stored.size(), Hash128Of(stored.data(), stored.size())};
    for (int w = 0; w < kWriters; ++w) {
      ASSERT_TRUE(entries[w].ok()) << entries[w].status().ToString();
      EXPECT_EQ(*entries[w], on_disk) << "round " << round << " writer " << w;
    }
    const auto leftovers = LeftoverFiles(dir.path());
    EXPECT_TRUE(leftovers.empty()) << leftovers.front();
  }
}

TEST(StoreBlobs, ContextsWithACommonPrefixShareChunkFiles) {
  TempDir dir;
  Store store(dir.path());
  std::vector<int32_t> a(40);
  std::iota(a.begin(), a.end(), 1);
  std::vector<int32_t> b = a;
  b[35] = 999;  // differs only in the last chunk
  std::set<std::string> keys;
  for (const auto* tokens : {&a, &b}) {
    const auto chunks = SplitIntoChunks(40, 16);
    const auto chunk_keys = ChunkKeys(RootKey(kFingerprint, 16), *tokens, chunks);
    for (size_t j = 0; j < chunks.size(); ++j) {
      TestKvCache cache(KvElemType::kF16, 1, 1, 4, chunks[j].begin, chunks[j].end);
      cache.FillRandom(static_cast<uint32_t>(j));
      const BlobIdentity identity{kFingerprint, chunk_keys[j], chunks[j].begin, chunks[j].end};
      Result<std::vector<uint8_t>> blob = EncodeBlob(F16Codec(), identity, cache.slice());
      ASSERT_TRUE(blob.ok());
      ASSERT_TRUE(store.WriteBlob(chunk_keys[j], "f16", *blob).ok());
      keys.insert(chunk_keys[j].Hex());
    }
  }
  EXPECT_EQ(keys.size(), 4u);  // 3 chunks each, the first 2 shared
  size_t n_files = 0;
  for (const auto& entry : std::filesystem::recursive_directory_iterator(dir.File("v1/chunks"))) {
    n_files += entry.is_regular_file();
  }
  EXPECT_EQ(n_files, keys.size());
}

Manifest OneChunkManifest(const Hash128& key) {
  Manifest manifest;
  manifest.format_version = kFormatVersion;
  manifest.model_fingerprint = kFingerprint;
  manifest.model_name = "test";
  manifest.chunk_tokens = 256;
  manifest.n_tokens = 16;
  manifest.context_key = key;
  manifest.chunks.push_back(ManifestChunk{0, 0, 16, key, {{"q8", LevelEntry{500, Hash128{1, 1}}}}});
  return manifest;
}

TEST(StoreManifests, WriteThenReadRoundTrips) {
  TempDir dir;
  Store store(dir.path());
  const Manifest manifest = OneChunkManifest(Hash128{21, 22});
  ASSERT_TRUE(store.WriteManifest(manifest).ok());
  Result<Manifest> read = store.ReadManifest(Hash128{21, 22});
  ASSERT_TRUE(read.ok()) << read.status().ToString();
  EXPECT_EQ(*read, manifest);
  EXPECT_TRUE(std::filesystem::exists(dir.File(Store::ManifestRelativePath(Hash128{21, 22}))));
  EXPECT_TRUE(LeftoverFiles(dir.path()).empty());
}

TEST(StoreManifests, MissingInvalidOrMisfiledManifestsAreRejected) {
  TempDir dir;
  Store store(dir.path());
  EXPECT_EQ(store.ReadManifest(Hash128{1, 1}).status().code(), ErrorCode::kNotFound);

  Manifest invalid = OneChunkManifest(Hash128{2, 2});
  invalid.chunks[0].end = 15;
  EXPECT_EQ(store.WriteManifest(invalid).code(), ErrorCode::kInvalidArgument);
  EXPECT_FALSE(std::filesystem::exists(store.ManifestPath(Hash128{2, 2})));

  // A manifest copied under another context's name.
  ASSERT_TRUE(store.WriteManifest(OneChunkManifest(Hash128{3, 3})).ok());
  ASSERT_TRUE(CreateDirectories(dir.File("v1/contexts/" + Hash128{4, 4}.Hex())).ok());
  std::filesystem::copy_file(store.ManifestPath(Hash128{3, 3}), store.ManifestPath(Hash128{4, 4}));
  EXPECT_EQ(store.ReadManifest(Hash128{4, 4}).status().code(), ErrorCode::kMismatch);

  ASSERT_TRUE(WriteFileAtomic(store.ManifestPath(Hash128{3, 3}), std::string_view("{\"chunks\":")).ok());
  EXPECT_EQ(store.ReadManifest(Hash128{3, 3}).status().code(), ErrorCode::kCorruption);
}

}  // namespace
}  // namespace sparkv
