#include "kv/rans.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstring>
#include <random>
#include <vector>

namespace sparkv::rans {
namespace {

// Symbols drawn from a geometric-like distribution over n_symbols, like quantized deltas.
std::vector<uint8_t> SkewedSymbols(size_t n, int n_symbols, uint32_t seed) {
  std::mt19937 rng(seed);
  std::geometric_distribution<int> geometric(0.4);
  std::vector<uint8_t> symbols(n);
  for (auto& s : symbols) s = static_cast<uint8_t>(std::min(geometric(rng), n_symbols - 1));
  return symbols;
}

std::vector<uint8_t> EncodeWithOwnTable(const std::vector<uint8_t>& symbols, int n_symbols,
                                        FrequencyTable* table) {
  *table = NormalizeCounts(CountSymbols(symbols, n_symbols));
  std::vector<uint8_t> stream;
  Encode(symbols, *table, stream);
  return stream;
}

TEST(Rans, RoundTripsSkewedSymbols) {
  for (size_t n : {1, 2, 3, 4, 5, 7, 8, 100, 4096, 100000}) {
    const std::vector<uint8_t> symbols = SkewedSymbols(n, 16, static_cast<uint32_t>(n));
    FrequencyTable table;
    const std::vector<uint8_t> stream = EncodeWithOwnTable(symbols, 16, &table);
    std::vector<uint8_t> decoded(n);
    ASSERT_TRUE(Decode(stream, DecodeTable(table), decoded, "test").ok()) << n;
    EXPECT_EQ(decoded, symbols) << n;
    if (n >= 4096) {
      // Geometric(0.4) has an entropy of about 2.43 bits per symbol.
      EXPECT_LT(static_cast<double>(stream.size()) * 8 / n, 2.6) << n;
    }
  }
}

TEST(Rans, SingleSymbolCostsOnlyTheHeader) {
  const std::vector<uint8_t> symbols(5000, 3);
  FrequencyTable table;
  const std::vector<uint8_t> stream = EncodeWithOwnTable(symbols, 4, &table);
  EXPECT_EQ(table.freq[3], kRansTotal);
  EXPECT_EQ(stream.size(), kStreamHeaderBytes);
  std::vector<uint8_t> decoded(symbols.size());
  ASSERT_TRUE(Decode(stream, DecodeTable(table), decoded, "test").ok());
  EXPECT_EQ(decoded, symbols);
}

TEST(Rans, AllByteValuesRoundTrip) {
  std::vector<uint8_t> symbols(3000);
  for (size_t i = 0; i < symbols.size(); ++i) symbols[i] = static_cast<uint8_t>(i * 7 % 256);
  symbols.resize(symbols.size() + 20000, 0);  // one dominant symbol squeezes the rare ones to 1
  FrequencyTable table;
  const std::vector<uint8_t> stream = EncodeWithOwnTable(symbols, 256, &table);
  uint32_t sum = 0;
  for (int s = 0; s < 256; ++s) {
    EXPECT_GE(table.freq[s], 1) << s;
    sum += table.freq[s];
  }
  EXPECT_EQ(sum, kRansTotal);
  std::vector<uint8_t> decoded(symbols.size());
  ASSERT_TRUE(Decode(stream, DecodeTable(table), decoded, "test").ok());
  EXPECT_EQ(decoded, symbols);
}

TEST(Rans, EmptyStreamIsOnlyTheStates) {
  FrequencyTable table = NormalizeCounts(std::vector<uint64_t>{1, 1});
  std::vector<uint8_t> stream;
  Encode({}, table, stream);
  EXPECT_EQ(stream.size(), kStreamHeaderBytes);
  EXPECT_TRUE(Decode(stream, DecodeTable(table), {}, "test").ok());
  EXPECT_EQ(Decode(std::span(stream).first(3), DecodeTable(table), {}, "test").code(),
            ErrorCode::kCorruption);
}

TEST(Rans, DamagedStreamsAreRejected) {
  const std::vector<uint8_t> symbols = SkewedSymbols(2000, 16, 5);
  FrequencyTable table;
  const std::vector<uint8_t> stream = EncodeWithOwnTable(symbols, 16, &table);
  const DecodeTable decode_table(table);
  std::vector<uint8_t> decoded(symbols.size());

  // Start state below 2^16.
  std::vector<uint8_t> low_state = stream;
  low_state[3] = 0;
  low_state[2] = 0;
  EXPECT_EQ(Decode(low_state, decode_table, decoded, "test").code(), ErrorCode::kCorruption);

  // Every truncation, one extra byte, and a flip of every bit.
  for (size_t size = 0; size < stream.size(); ++size) {
    ASSERT_EQ(Decode(std::span(stream).first(size), decode_table, decoded, "test").code(),
              ErrorCode::kCorruption)
        << size;
  }
  std::vector<uint8_t> extended = stream;
  extended.push_back(0);
  EXPECT_EQ(Decode(extended, decode_table, decoded, "test").code(), ErrorCode::kCorruption);
  int accepted = 0;
  for (size_t bit = 0; bit < 8 * stream.size(); ++bit) {
    std::vector<uint8_t> flipped = stream;
    flipped[bit / 8] ^= static_cast<uint8_t>(1u << (bit % 8));
    if (Decode(flipped, decode_table, decoded, "test").ok()) ++accepted;
  }
  // rANS carries no error-detecting code (the blob checksum is that), but a flip almost always
  // leaves a final state other than 2^16 or changes how many bytes the decoder consumes.
  EXPECT_LT(accepted, static_cast<int>(stream.size()) / 10);

  // Decoding more or fewer symbols than were coded.
  std::vector<uint8_t> longer(symbols.size() + 1);
  EXPECT_EQ(Decode(stream, decode_table, longer, "test").code(), ErrorCode::kCorruption);
  std::vector<uint8_t> shorter(symbols.size() - 1);
  EXPECT_EQ(Decode(stream, decode_table, shorter, "test").code(), ErrorCode::kCorruption);
}

TEST(RansTable, SerializationRoundTripsAndStaysSmall) {
  std::vector<uint64_t> counts(255, 0);
  counts[0] = 5;
  counts[100] = 1000;
  counts[254] = 3;
  const FrequencyTable table = NormalizeCounts(counts);
  std::vector<uint8_t> bytes;
  AppendTable(table, bytes);
  EXPECT_LE(bytes.size(), 12u);  // three varints and two zero runs
  bytes.push_back(0xee);         // the caller's next byte

  std::span<const uint8_t> in(bytes);
  Result<FrequencyTable> read = ReadTable(in, 255, "test");
  ASSERT_TRUE(read.ok()) << read.status().ToString();
  EXPECT_EQ(read->freq, table.freq);
  ASSERT_EQ(in.size(), 1u);
  EXPECT_EQ(in[0], 0xee);
}

TEST(RansTable, DamagedTablesAreRejected) {
  const FrequencyTable table = NormalizeCounts(std::vector<uint64_t>{3, 0, 0, 9, 1});
  std::vector<uint8_t> bytes;
  AppendTable(table, bytes);
  for (size_t size = 0; size < bytes.size(); ++size) {
    std::span<const uint8_t> in = std::span(bytes).first(size);
    EXPECT_EQ(ReadTable(in, 5, "test").status().code(), ErrorCode::kCorruption) << size;
  }
  const std::vector<std::vector<uint8_t>> damaged = {
      {0x80, 0x80, 0x01, 0, 3, 0},     // overlong varint
      {0x81, 0x20, 0, 3},              // frequency 4097, above 2^12
      {0x80, 0x20, 0, 9},              // zero run past the alphabet
      {0x80, 0x10, 0x80, 0x10, 1, 0, 0},  // sum 4097
      {1, 1, 1, 1, 1},                 // sum 5
  };
  for (const auto& bad : damaged) {
    std::span<const uint8_t> in(bad);
    EXPECT_EQ(ReadTable(in, 5, "test").status().code(), ErrorCode::kCorruption)
        << "case of " << bad.size() << " bytes";
  }
}

TEST(RansRun, KeepsIncompressibleSymbolsRaw) {
  std::mt19937 rng(9);
  std::vector<uint8_t> uniform(300);
  for (auto& s : uniform) s = static_cast<uint8_t>(rng());
  std::vector<uint8_t> run;
  AppendRun(uniform, 256, run);
  ASSERT_EQ(run.size(), 1 + uniform.size());
  EXPECT_EQ(run[0], 1);

  std::span<const uint8_t> in(run);
  std::vector<uint8_t> decoded(uniform.size());
  ASSERT_TRUE(ReadRun(in, 256, decoded, "test").ok());
  EXPECT_EQ(decoded, uniform);
  EXPECT_TRUE(in.empty());

  // A raw symbol outside a smaller alphabet and an unknown kind are rejected.
  in = std::span<const uint8_t>(run);
  EXPECT_EQ(ReadRun(in, 16, decoded, "test").code(), ErrorCode::kCorruption);
  run[0] = 2;
  in = std::span<const uint8_t>(run);
  EXPECT_EQ(ReadRun(in, 256, decoded, "test").code(), ErrorCode::kCorruption);
}

TEST(RansRun, CodesSkewedSymbolsAndRejectsABadLength) {
  const std::vector<uint8_t> symbols = SkewedSymbols(5000, 15, 3);
  std::vector<uint8_t> run;
  AppendRun(symbols, 15, run);
  EXPECT_EQ(run[0], 0);
  EXPECT_LT(run.size(), symbols.size() / 2);

  std::span<const uint8_t> in(run);
  std::vector<uint8_t> decoded(symbols.size());
  ASSERT_TRUE(ReadRun(in, 15, decoded, "test").ok());
  EXPECT_EQ(decoded, symbols);

  // The stream length sits right before the stream: make it one byte too long.
  std::vector<uint8_t> longer = run;
  std::span<const uint8_t> table_bytes = std::span<const uint8_t>(run).subspan(1);
  ASSERT_TRUE(ReadTable(table_bytes, 15, "test").ok());
  const size_t at = run.size() - table_bytes.size();
  uint32_t stream_bytes;
  std::memcpy(&stream_bytes, longer.data() + at, 4);
  ++stream_bytes;
  std::memcpy(longer.data() + at, &stream_bytes, 4);
  in = std::span<const uint8_t>(longer);
  EXPECT_EQ(ReadRun(in, 15, decoded, "test").code(), ErrorCode::kCorruption);
}

}  // namespace
}  // namespace sparkv::rans
