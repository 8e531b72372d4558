#include "kv/chunk_key.h"

#include <gtest/gtest.h>

#include <climits>
#include <cstring>
#include <numeric>

#include "kv/format.h"

namespace sparkv {
namespace {

std::vector<int32_t> Iota(int32_t n, int32_t first = 0) {
  std::vector<int32_t> tokens(static_cast<size_t>(n));
  std::iota(tokens.begin(), tokens.end(), first);
  return tokens;
}

std::vector<Hash128> KeysOf(const Hash128& fingerprint, int32_t chunk_tokens,
                            const std::vector<int32_t>& tokens) {
  const auto chunks = SplitIntoChunks(static_cast<int32_t>(tokens.size()), chunk_tokens);
  return ChunkKeys(RootKey(fingerprint, chunk_tokens), tokens, chunks);
}

void AppendLe(std::vector<uint8_t>* bytes, uint64_t value, int n_bytes) {
  for (int i = 0; i < n_bytes; ++i) bytes->push_back(static_cast<uint8_t>(value >> (8 * i)));
}

const Hash128 kFingerprint{0x0123456789abcdefull, 0xfedcba9876543210ull};

TEST(SplitIntoChunks, ExactMultipleGivesFullChunks) {
  const auto chunks = SplitIntoChunks(768, 256);
  ASSERT_EQ(chunks.size(), 3u);
  EXPECT_EQ(chunks[0], (ChunkRange{0, 0, 256}));
  EXPECT_EQ(chunks[1], (ChunkRange{1, 256, 512}));
  EXPECT_EQ(chunks[2], (ChunkRange{2, 512, 768}));
}

TEST(SplitIntoChunks, LastChunkHoldsTheRemainder) {
  const auto chunks = SplitIntoChunks(600, 256);
  ASSERT_EQ(chunks.size(), 3u);
  EXPECT_EQ(chunks[2], (ChunkRange{2, 512, 600}));
}

TEST(SplitIntoChunks, ContextShorterThanOneChunk) {
  const auto chunks = SplitIntoChunks(1, 256);
  ASSERT_EQ(chunks.size(), 1u);
  EXPECT_EQ(chunks[0], (ChunkRange{0, 0, 1}));
}

TEST(SplitIntoChunks, EmptyOrInvalidInputGivesNoChunks) {
  EXPECT_TRUE(SplitIntoChunks(0, 256).empty());
  EXPECT_TRUE(SplitIntoChunks(-5, 256).empty());
  EXPECT_TRUE(SplitIntoChunks(100, 0).empty());
  EXPECT_TRUE(SplitIntoChunks(100, -1).empty());
}

TEST(SplitIntoChunks, NoOverflowNearInt32Max) {
  const auto chunks = SplitIntoChunks(INT32_MAX, 1 << 30);
  ASSERT_EQ(chunks.size(), 2u);
  EXPECT_EQ(chunks[1].begin, 1 << 30);
  EXPECT_EQ(chunks[1].end, INT32_MAX);
}

TEST(SplitIntoChunks, CoversEveryPositionOnceForManySizes) {
  for (int32_t n = 1; n <= 70; ++n) {
    for (int32_t size = 1; size <= 17; ++size) {
      const auto chunks = SplitIntoChunks(n, size);
      ASSERT_EQ(static_cast<int32_t>(chunks.size()), (n + size - 1) / size) << n << " " << size;
      int32_t next = 0;
      for (size_t j = 0; j < chunks.size(); ++j) {
        EXPECT_EQ(chunks[j].index, static_cast<int32_t>(j));
        EXPECT_EQ(chunks[j].begin, next);
        EXPECT_GT(chunks[j].n_tokens(), 0);
        EXPECT_LE(chunks[j].n_tokens(), size);
        if (j + 1 < chunks.size()) {
          EXPECT_EQ(chunks[j].n_tokens(), size);
        }
        next = chunks[j].end;
      }
      EXPECT_EQ(next, n);
    }
  }
}

TEST(ChunkKeys, RootKeyHashesTheDocumentedBytes) {
  // docs/formats.md: fingerprint high u64, low u64, chunk_tokens i32, kFormatVersion u32, all LE.
  std::vector<uint8_t> bytes;
  AppendLe(&bytes, kFingerprint.high, 8);
  AppendLe(&bytes, kFingerprint.low, 8);
  AppendLe(&bytes, 256, 4);
  AppendLe(&bytes, kFormatVersion, 4);
  EXPECT_EQ(RootKey(kFingerprint, 256), Hash128Of(bytes.data(), bytes.size()));
}

TEST(ChunkKeys, ChunkKeyHashesTheDocumentedBytes) {
  const auto tokens = Iota(5, 1000);
  const Hash128 root = RootKey(kFingerprint, 3);
  const auto keys = KeysOf(kFingerprint, 3, tokens);
  ASSERT_EQ(keys.size(), 2u);

  Hash128 previous = root;
  for (int j = 0; j < 2; ++j) {
    std::vector<uint8_t> bytes;
    AppendLe(&bytes, previous.high, 8);
    AppendLe(&bytes, previous.low, 8);
    for (int t = 3 * j; t < std::min(3 * j + 3, 5); ++t) {
      AppendLe(&bytes, static_cast<uint32_t>(tokens[t]), 4);
    }
    EXPECT_EQ(keys[j], Hash128Of(bytes.data(), bytes.size())) << "chunk " << j;
    previous = keys[j];
  }
}

TEST(ChunkKeys, SharedPrefixGivesEqualKeys) {
  auto a = Iota(1000);
  auto b = Iota(900);
  b.resize(1100, 7);  // same first 900 tokens, then different ones
  const auto keys_a = KeysOf(kFingerprint, 256, a);
  const auto keys_b = KeysOf(kFingerprint, 256, b);
  ASSERT_EQ(keys_a.size(), 4u);
  ASSERT_EQ(keys_b.size(), 5u);
  for (int j = 0; j < 3; ++j) EXPECT_EQ(keys_a[j], keys_b[j]) << "chunk " << j;
  EXPECT_NE(keys_a[3], keys_b[3]);
}

TEST(ChunkKeys, TokenChangeChangesThatKeyAndAllLater) {
  const auto tokens = Iota(1024);
  const auto base = KeysOf(kFingerprint, 128, tokens);
  for (int32_t position : {0, 127, 128, 500, 1023}) {
    auto changed = tokens;
    changed[position] += 1;
    const auto keys = KeysOf(kFingerprint, 128, changed);
    const int32_t first_changed = position / 128;
    for (int32_t j = 0; j < static_cast<int32_t>(keys.size()); ++j) {
      if (j < first_changed) {
        EXPECT_EQ(keys[j], base[j]) << "position " << position << " chunk " << j;
      } else {
        EXPECT_NE(keys[j], base[j]) << "position " << position << " chunk " << j;
      }
    }
  }
}

TEST(ChunkKeys, ShortLastChunkDiffersFromLongerContext) {
  const auto long_context = Iota(512);
  const auto short_context = Iota(300);
  const auto long_keys = KeysOf(kFingerprint, 256, long_context);
  const auto short_keys = KeysOf(kFingerprint, 256, short_context);
  EXPECT_EQ(long_keys[0], short_keys[0]);
  EXPECT_NE(long_keys[1], short_keys[1]);
}

TEST(ChunkKeys, FingerprintAndChunkSizeChangeTheRoot) {
  const Hash128 other_fingerprint{kFingerprint.high, kFingerprint.low ^ 1};
  EXPECT_NE(RootKey(kFingerprint, 256), RootKey(other_fingerprint, 256));
  EXPECT_NE(RootKey(kFingerprint, 256), RootKey(kFingerprint, 128));
  EXPECT_EQ(RootKey(kFingerprint, 256), RootKey(kFingerprint, 256));

  const auto tokens = Iota(512);
  const auto keys = KeysOf(kFingerprint, 256, tokens);
  const auto other_keys = KeysOf(other_fingerprint, 256, tokens);
  for (size_t j = 0; j < keys.size(); ++j) EXPECT_NE(keys[j], other_keys[j]);
}

TEST(ChunkKeys, KeysAreUrlSafeHex) {
  for (const Hash128& key : KeysOf(kFingerprint, 16, Iota(100))) {
    const std::string hex = key.Hex();
    ASSERT_EQ(hex.size(), 32u);
    EXPECT_EQ(hex.find_first_not_of("0123456789abcdef"), std::string::npos) << hex;
  }
}

TEST(ChunkKeysDeathTest, ChunksOutsideTheTokensAbort) {
  const auto tokens = Iota(10);
  const std::vector<ChunkRange> past_end = {{0, 0, 8}, {1, 8, 12}};
  EXPECT_DEATH(ChunkKeys(RootKey(kFingerprint, 8), tokens, past_end), "SplitIntoChunks");
  const std::vector<ChunkRange> gap = {{0, 0, 4}, {1, 5, 8}};
  EXPECT_DEATH(ChunkKeys(RootKey(kFingerprint, 4), tokens, gap), "SplitIntoChunks");
}

}  // namespace
}  // namespace sparkv
