// The fast decode paths against their references: the AVX2 rANS decoder against the scalar one,
// AVX2 dequantization against the scalar loop, and parallel chunk decoding against serial.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstring>
#include <random>
#include <vector>

#include "kv/codec.h"
#include "kv/rans.h"
#include "kv/row_convert.h"
#include "kv_test_cache.h"

namespace sparkv {
namespace {

using testing::TestKvCache;

std::vector<uint8_t> GeometricSymbols(size_t n, int n_symbols, double p, uint32_t seed) {
  std::mt19937 rng(seed);
  std::geometric_distribution<int> geometric(p);
  std::vector<uint8_t> symbols(n);
  for (auto& s : symbols) s = static_cast<uint8_t>(std::min(geometric(rng), n_symbols - 1));
  return symbols;
}

TEST(RansDecoders, Avx2MatchesScalarOnValidStreams) {
  if (!rans::HasAvx2Decoder()) GTEST_SKIP() << "this CPU has no AVX2";
  // Lengths around multiples of the eight states, and skews from nearly one symbol to uniform.
  for (size_t n : {0, 1, 7, 8, 9, 15, 16, 17, 63, 1000, 65536}) {
    for (double p : {0.95, 0.4, 0.05}) {
      const std::vector<uint8_t> symbols = GeometricSymbols(n, 255, p, static_cast<uint32_t>(n));
      const rans::FrequencyTable table =
          rans::NormalizeCounts(rans::CountSymbols(symbols, 255));
      std::vector<uint8_t> stream;
      rans::Encode(symbols, table, stream);
      const rans::DecodeTable decode_table(table);
      std::vector<uint8_t> scalar(n, 0xaa), avx2(n, 0x55);
      ASSERT_TRUE(rans::DecodeScalar(stream, decode_table, scalar, "test").ok()) << n << " " << p;
      ASSERT_TRUE(rans::DecodeAvx2(stream, decode_table, avx2, "test").ok()) << n << " " << p;
      EXPECT_EQ(scalar, symbols) << n << " " << p;
      EXPECT_EQ(avx2, symbols) << n << " " << p;
    }
  }
}

TEST(RansDecoders, Avx2RejectsDamagedStreamsLikeScalar) {
  if (!rans::HasAvx2Decoder()) GTEST_SKIP() << "this CPU has no AVX2";
  const std::vector<uint8_t> symbols = GeometricSymbols(3000, 16, 0.3, 11);
  const rans::FrequencyTable table = rans::NormalizeCounts(rans::CountSymbols(symbols, 16));
  std::vector<uint8_t> stream;
  rans::Encode(symbols, table, stream);
  const rans::DecodeTable decode_table(table);
  std::vector<uint8_t> scalar(symbols.size()), avx2(symbols.size());
  int rejected = 0;
  for (size_t bit = 0; bit < 8 * stream.size(); bit += 7) {
    std::vector<uint8_t> flipped = stream;
    flipped[bit / 8] ^= static_cast<uint8_t>(1u << (bit % 8));
    const Status a = rans::DecodeScalar(flipped, decode_table, scalar, "test");
    const Status b = rans::DecodeAvx2(flipped, decode_table, avx2, "test");
    ASSERT_EQ(a.ToString(), b.ToString()) << "bit " << bit;
    if (a.ok()) {
      ASSERT_EQ(scalar, avx2) << "bit " << bit;
    } else {
      ++rejected;
    }
  }
  EXPECT_GT(rejected, 0);
  for (size_t size = 0; size < stream.size(); size += 5) {
    const auto truncated = std::span<const uint8_t>(stream).first(size);
    ASSERT_EQ(rans::DecodeScalar(truncated, decode_table, scalar, "test").ToString(),
              rans::DecodeAvx2(truncated, decode_table, avx2, "test").ToString())
        << size;
  }
}

TEST(Dequantize, DispatchedRowsEqualTheScalarReference) {
  std::mt19937 rng(3);
  for (int64_t width : {1, 7, 8, 9, 32, 64, 77}) {
    const int64_t n_tokens = 5;
    std::vector<uint8_t> levels(static_cast<size_t>(width * n_tokens));
    for (auto& q : levels) q = static_cast<uint8_t>(rng() % 128);
    std::vector<uint8_t> params(static_cast<size_t>(4 * width));
    for (int64_t c = 0; c < width; ++c) {
      // Negative minimums and steps of varied magnitude, as real channels have.
      const uint16_t lo = static_cast<uint16_t>(0x8000 | (0x3000 + rng() % 0x0c00));
      const uint16_t step = static_cast<uint16_t>(0x1000 + rng() % 0x2000);
      std::memcpy(params.data() + 2 * c, &lo, 2);
      std::memcpy(params.data() + 2 * (width + c), &step, 2);
    }
    for (KvElemType elem : {KvElemType::kF16, KvElemType::kF32}) {
      const int64_t row_bytes = width * (elem == KvElemType::kF32 ? 4 : 2);
      std::vector<uint8_t> reference(static_cast<size_t>(row_bytes * n_tokens), 0x11);
      std::vector<uint8_t> fast(reference.size(), 0x22);
      internal::DequantizeRowsScalar(levels.data(), params.data(), width, n_tokens, elem,
                                     reference.data(), row_bytes);
      internal::DequantizeRows(levels.data(), params.data(), width, n_tokens, elem, fast.data(),
                               row_bytes);
      EXPECT_EQ(fast, reference) << "width " << width;
    }
  }
}

const Codec* const kEntropyCoded[] = {&F16AnsCodec(), &Ans6Codec(), &Ans4Codec(), &Ans3Codec(),
                                      &Ans2Codec()};

TEST(ParallelDecode, GivesTheSerialOutputForEveryThreadCount) {
  for (const Codec* codec : AllCodecs()) {
    for (KvElemType elem : {KvElemType::kF16, KvElemType::kF32}) {
      TestKvCache source(KvElemType::kF16, 5, 4, 8, 64, 128);
      source.FillRandom(31);
      Result<std::vector<uint8_t>> payload = codec->Encode(source.slice());
      ASSERT_TRUE(payload.ok()) << payload.status().ToString();
      TestKvCache serial(elem, 5, 4, 8, 64, 128);
      ASSERT_TRUE(codec->Decode(*payload, serial.slice()).ok()) << codec->name();
      for (int n_threads : {0, 1, 2, 3, 16}) {
        TestKvCache parallel(elem, 5, 4, 8, 64, 128);
        parallel.FillBytes(0x77);
        ASSERT_TRUE(codec->DecodeParallel(*payload, parallel.slice(), n_threads).ok())
            << codec->name() << " threads " << n_threads;
        EXPECT_EQ(parallel.AllBytes(), serial.AllBytes())
            << codec->name() << " threads " << n_threads;
      }
    }
  }
}

TEST(ParallelDecode, RejectsDamageLikeSerialAndWritesNothing) {
  for (const Codec* codec : kEntropyCoded) {
    TestKvCache source(KvElemType::kF16, 4, 2, 40, 0, 48);
    source.FillRandom(32);
    Result<std::vector<uint8_t>> payload = codec->Encode(source.slice());
    ASSERT_TRUE(payload.ok());
    TestKvCache target(KvElemType::kF16, 4, 2, 40, 0, 48);
    target.FillBytes(0x5a);
    const std::vector<uint8_t> before = target.AllBytes();
    int rejected = 0;
    for (size_t bit = 0; bit < 8 * payload->size(); bit += 37) {
      std::vector<uint8_t> flipped = *payload;
      flipped[bit / 8] ^= static_cast<uint8_t>(1u << (bit % 8));
      TestKvCache serial(KvElemType::kF16, 4, 2, 40, 0, 48);
      const Status expected = codec->Decode(flipped, serial.slice());
      const Status status = codec->DecodeParallel(flipped, target.slice(), 3);
      ASSERT_EQ(status.ToString(), expected.ToString()) << codec->name() << " bit " << bit;
      if (!status.ok()) {
        ++rejected;
        ASSERT_EQ(target.AllBytes(), before) << codec->name() << " bit " << bit;
      } else {
        target.FillBytes(0x5a);
      }
    }
    EXPECT_GT(rejected, 0) << codec->name();
  }
}

TEST(EntropyCodedLevels, RejectAnUnknownPayloadVersion) {
  for (const Codec* codec : kEntropyCoded) {
    TestKvCache source(KvElemType::kF16, 2, 1, 16, 0, 8);
    source.FillRandom(33);
    Result<std::vector<uint8_t>> payload = codec->Encode(source.slice());
    ASSERT_TRUE(payload.ok());
    EXPECT_EQ((*payload)[0], rans::kStreamVersion) << codec->name();
    for (uint8_t version : {0, 1, 3, 255}) {
      (*payload)[0] = version;
      TestKvCache destination(KvElemType::kF16, 2, 1, 16, 0, 8);
      const Status status = codec->Decode(*payload, destination.slice());
      EXPECT_EQ(status.code(), ErrorCode::kCorruption) << codec->name();
      EXPECT_NE(status.message().find("version " + std::to_string(version)), std::string::npos)
          << status.ToString();
      EXPECT_NE(status.message().find("re-encode"), std::string::npos) << status.ToString();
    }
  }
}

}  // namespace
}  // namespace sparkv
