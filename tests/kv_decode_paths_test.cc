// The fast decode paths against their references: the AVX2 and AVX-512 rANS decoders against the
// scalar one, AVX2 dequantization against the scalar loop, and parallel chunk decoding against
// serial.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstring>
#include <iterator>
#include <random>
#include <string>
#include <vector>

#include "kv/codec.h"
#include "kv/group_quant.h"
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

// A single-stream decoder under test, with the CPU check it needs.
struct SingleDecoder {
  const char* name;
  bool (*available)();
  Status (*decode)(std::span<const uint8_t>, const rans::DecodeTable&, std::span<uint8_t>,
                   std::string_view);
};
const SingleDecoder kAvx2Single{"AVX2", rans::HasAvx2Decoder, rans::DecodeAvx2};
const SingleDecoder kAvx512Single{"AVX-512", rans::HasAvx512Decoder, rans::DecodeAvx512};

void ExpectMatchesScalarOnValidStreams(const SingleDecoder& decoder) {
  // Lengths around multiples of the eight states, and skews from nearly one symbol to uniform.
  for (size_t n : {0, 1, 7, 8, 9, 15, 16, 17, 63, 1000, 65536}) {
    for (double p : {0.95, 0.4, 0.05}) {
      const std::vector<uint8_t> symbols = GeometricSymbols(n, 255, p, static_cast<uint32_t>(n));
      const rans::FrequencyTable table =
          rans::NormalizeCounts(rans::CountSymbols(symbols, 255));
      std::vector<uint8_t> stream;
      rans::Encode(symbols, table, stream);
      const rans::DecodeTable decode_table(table);
      std::vector<uint8_t> scalar(n, 0xaa), tested(n, 0x55);
      ASSERT_TRUE(rans::DecodeScalar(stream, decode_table, scalar, "test").ok()) << n << " " << p;
      ASSERT_TRUE(decoder.decode(stream, decode_table, tested, "test").ok())
          << decoder.name << " " << n << " " << p;
      EXPECT_EQ(scalar, symbols) << n << " " << p;
      EXPECT_EQ(tested, symbols) << decoder.name << " " << n << " " << p;
    }
  }
}

void ExpectRejectsDamagedStreamsLikeScalar(const SingleDecoder& decoder) {
  const std::vector<uint8_t> symbols = GeometricSymbols(3000, 16, 0.3, 11);
  const rans::FrequencyTable table = rans::NormalizeCounts(rans::CountSymbols(symbols, 16));
  std::vector<uint8_t> stream;
  rans::Encode(symbols, table, stream);
  const rans::DecodeTable decode_table(table);
  std::vector<uint8_t> scalar(symbols.size()), tested(symbols.size());
  int rejected = 0;
  for (size_t bit = 0; bit < 8 * stream.size(); bit += 7) {
    std::vector<uint8_t> flipped = stream;
    flipped[bit / 8] ^= static_cast<uint8_t>(1u << (bit % 8));
    const Status scalar_status = rans::DecodeScalar(flipped, decode_table, scalar, "test");
    const Status tested_status = decoder.decode(flipped, decode_table, tested, "test");
    ASSERT_EQ(scalar_status.ToString(), tested_status.ToString()) << decoder.name << " bit " << bit;
    if (scalar_status.ok()) {
      ASSERT_EQ(scalar, tested) << decoder.name << " bit " << bit;
    } else {
      ++rejected;
    }
  }
  EXPECT_GT(rejected, 0);
  for (size_t size = 0; size < stream.size(); size += 5) {
    const auto truncated = std::span<const uint8_t>(stream).first(size);
    ASSERT_EQ(rans::DecodeScalar(truncated, decode_table, scalar, "test").ToString(),
              decoder.decode(truncated, decode_table, tested, "test").ToString())
        << decoder.name << " " << size;
  }
}

TEST(RansDecoders, Avx2MatchesScalarOnValidStreams) {
  if (!rans::HasAvx2Decoder()) GTEST_SKIP() << "this CPU has no AVX2";
  ExpectMatchesScalarOnValidStreams(kAvx2Single);
}

TEST(RansDecoders, Avx2RejectsDamagedStreamsLikeScalar) {
  if (!rans::HasAvx2Decoder()) GTEST_SKIP() << "this CPU has no AVX2";
  ExpectRejectsDamagedStreamsLikeScalar(kAvx2Single);
}

TEST(RansDecoders, Avx512MatchesScalarOnValidStreams) {
  if (!rans::HasAvx512Decoder()) GTEST_SKIP() << "this CPU has no AVX-512 F, BW, VL, DQ and VNNI";
  ExpectMatchesScalarOnValidStreams(kAvx512Single);
}

TEST(RansDecoders, Avx512RejectsDamagedStreamsLikeScalar) {
  if (!rans::HasAvx512Decoder()) GTEST_SKIP() << "this CPU has no AVX-512 F, BW, VL, DQ and VNNI";
  ExpectRejectsDamagedStreamsLikeScalar(kAvx512Single);
}

// Streams of varied lengths, skews and alphabets, each with its own table, as DecodeStreams gets
// them from a codec.
struct StreamSet {
  std::vector<std::vector<uint8_t>> symbols, streams;
  std::vector<rans::DecodeTable> tables;
  std::vector<std::string> labels;

  void Add(std::vector<uint8_t> coded, int n_symbols) {
    const rans::FrequencyTable table = rans::NormalizeCounts(rans::CountSymbols(coded, n_symbols));
    streams.emplace_back();
    rans::Encode(coded, table, streams.back());
    tables.emplace_back(table);
    labels.push_back("stream " + std::to_string(labels.size()));
    symbols.push_back(std::move(coded));
  }

  // Jobs decoding stream k into outputs[k], which is resized to the stream's length.
  std::vector<rans::StreamJob> Jobs(std::vector<std::vector<uint8_t>>& outputs, uint8_t fill) const {
    outputs.resize(streams.size());
    std::vector<rans::StreamJob> jobs;
    for (size_t k = 0; k < streams.size(); ++k) {
      outputs[k].assign(symbols[k].size(), fill);
      jobs.push_back({streams[k], &tables[k], outputs[k], labels[k]});
    }
    return jobs;
  }
};

// A many-stream decoder under test, with the CPU check it needs and how many streams it
// interleaves.
struct StreamsDecoder {
  const char* name;
  bool (*available)();
  void (*decode)(std::span<const rans::StreamJob>, std::span<Status>);
  int interleave;
};
const StreamsDecoder kAvx2Streams{"AVX2", rans::HasAvx2Decoder, rans::DecodeStreamsAvx2,
                                  rans::kMaxInterleave};
const StreamsDecoder kAvx512Streams{"AVX-512", rans::HasAvx512Decoder, rans::DecodeStreamsAvx512,
                                    rans::kMaxInterleaveAvx512};

void ExpectInterleavedStreamsMatchScalar(const StreamsDecoder& decoder) {
  const size_t lengths[] = {0, 1, 7, 8, 9, 15, 16, 17, 63, 64, 65, 1000, 4099, 16384, 65536};
  std::mt19937 rng(21);
  for (int trial = 0; trial < 90; ++trial) {
    // From one stream to two full batches and one more: the decoder interleaves up to
    // `interleave` streams and takes the rest in further batches. Lengths differ so that one
    // stream runs out while another goes on. Every fourth trial gives all streams one length, as
    // a codec does.
    StreamSet set;
    const int n_streams = 1 + trial % (2 * decoder.interleave + 1);
    const size_t common = lengths[rng() % std::size(lengths)];
    for (int k = 0; k < n_streams; ++k) {
      const size_t n = trial % 4 == 3 ? common : lengths[rng() % std::size(lengths)];
      const int n_symbols = 2 + static_cast<int>(rng() % 254);
      const double p = 0.02 + 0.9 * std::uniform_real_distribution<double>(0, 1)(rng);
      set.Add(GeometricSymbols(n, n_symbols, p, static_cast<uint32_t>(rng())), n_symbols);
    }
    std::vector<std::vector<uint8_t>> scalar, tested;
    std::vector<rans::StreamJob> scalar_jobs = set.Jobs(scalar, 0xaa);
    std::vector<rans::StreamJob> tested_jobs = set.Jobs(tested, 0x55);
    std::vector<Status> scalar_statuses(scalar_jobs.size()), tested_statuses(tested_jobs.size());
    rans::DecodeStreamsScalar(scalar_jobs, scalar_statuses);
    decoder.decode(tested_jobs, tested_statuses);
    for (int k = 0; k < n_streams; ++k) {
      ASSERT_TRUE(scalar_statuses[k].ok()) << scalar_statuses[k].ToString();
      ASSERT_TRUE(tested_statuses[k].ok()) << decoder.name << " trial " << trial << " stream " << k
                                         << ": " << tested_statuses[k].ToString();
      EXPECT_EQ(scalar[k], set.symbols[k]) << "trial " << trial << " stream " << k;
      EXPECT_EQ(tested[k], set.symbols[k]) << decoder.name << " trial " << trial << " stream " << k;
    }
  }
}

// A damaged stream beside intact ones: it fails exactly as alone and the others still decode.
// `damaged` picks which of n_streams streams is damaged.
void ExpectInterleavedStreamsRejectDamageLikeScalar(const StreamsDecoder& decoder, int n_streams,
                                                    int damaged) {
  StreamSet set;
  for (int k = 0; k < n_streams; ++k) {
    const int n_symbols = k == damaged ? 200 : 5 + 11 * k;
    const double p = k == damaged ? 0.05 : 0.6 - 0.05 * k;
    set.Add(GeometricSymbols(2500 + 300 * static_cast<size_t>(k), n_symbols, p,
                             static_cast<uint32_t>(41 + k)),
            n_symbols);
  }
  const std::vector<uint8_t> intact = set.streams[damaged];
  int rejected = 0;
  const auto check = [&](const std::string& what) {
    std::vector<std::vector<uint8_t>> scalar, tested;
    std::vector<rans::StreamJob> scalar_jobs = set.Jobs(scalar, 0);
    std::vector<rans::StreamJob> tested_jobs = set.Jobs(tested, 0);
    std::vector<Status> scalar_statuses(n_streams), tested_statuses(n_streams);
    rans::DecodeStreamsScalar(scalar_jobs, scalar_statuses);
    decoder.decode(tested_jobs, tested_statuses);
    for (int k = 0; k < n_streams; ++k) {
      ASSERT_EQ(tested_statuses[k].ToString(), scalar_statuses[k].ToString())
          << decoder.name << " " << what << " stream " << k;
      if (k != damaged) {
        ASSERT_TRUE(tested_statuses[k].ok()) << decoder.name << " " << what;
        ASSERT_EQ(tested[k], set.symbols[k]) << decoder.name << " " << what << " stream " << k;
      }
    }
    if (!tested_statuses[damaged].ok()) {
      ++rejected;
      EXPECT_NE(tested_statuses[damaged].ToString().find("stream " + std::to_string(damaged)),
                std::string::npos)
          << what;
    }
  };
  for (size_t bit = 0; bit < 8 * intact.size(); bit += 11) {
    set.streams[damaged] = intact;
    set.streams[damaged][bit / 8] ^= static_cast<uint8_t>(1u << (bit % 8));
    check("bit " + std::to_string(bit));
  }
  for (size_t size = 0; size < intact.size(); size += 7) {
    set.streams[damaged].assign(intact.begin(), intact.begin() + static_cast<ptrdiff_t>(size));
    check("truncated to " + std::to_string(size));
  }
  EXPECT_GT(rejected, static_cast<int>(intact.size()) / 7) << decoder.name;
}

TEST(RansDecoders, InterleavedStreamsMatchScalar) {
  if (!rans::HasAvx2Decoder()) GTEST_SKIP() << "this CPU has no AVX2";
  ExpectInterleavedStreamsMatchScalar(kAvx2Streams);
}

TEST(RansDecoders, InterleavedStreamsRejectDamageLikeScalar) {
  if (!rans::HasAvx2Decoder()) GTEST_SKIP() << "this CPU has no AVX2";
  ExpectInterleavedStreamsRejectDamageLikeScalar(kAvx2Streams, 3, 1);
}

TEST(RansDecoders, Avx512StreamsMatchScalar) {
  if (!rans::HasAvx512Decoder()) GTEST_SKIP() << "this CPU has no AVX-512 F, BW, VL, DQ and VNNI";
  ExpectInterleavedStreamsMatchScalar(kAvx512Streams);
}

// The damaged stream as the first or second half of a register, and as a stream that runs alone
// (the fifth of five: two pairs and a single).
TEST(RansDecoders, Avx512StreamsRejectDamageLikeScalar) {
  if (!rans::HasAvx512Decoder()) GTEST_SKIP() << "this CPU has no AVX-512 F, BW, VL, DQ and VNNI";
  ExpectInterleavedStreamsRejectDamageLikeScalar(kAvx512Streams, 3, 1);
  ExpectInterleavedStreamsRejectDamageLikeScalar(kAvx512Streams, 8, 6);
  ExpectInterleavedStreamsRejectDamageLikeScalar(kAvx512Streams, 5, 4);
}

// DecodeStreams and Decode take the widest decoder this CPU has. Whichever it is, they give the
// scalar decoder's symbols and statuses.
TEST(RansDecoders, DispatchedMatchesScalar) {
  StreamSet set;
  for (int k = 0; k < 11; ++k) {
    const int n_symbols = 3 + 23 * k;
    set.Add(GeometricSymbols(16384 + 5 * static_cast<size_t>(k), n_symbols, 0.1 + 0.07 * k,
                             static_cast<uint32_t>(70 + k)),
            n_symbols);
  }
  set.streams[7].resize(set.streams[7].size() - 3);  // one truncated stream among intact ones
  std::vector<std::vector<uint8_t>> scalar, dispatched;
  std::vector<rans::StreamJob> scalar_jobs = set.Jobs(scalar, 0);
  std::vector<rans::StreamJob> dispatched_jobs = set.Jobs(dispatched, 1);
  std::vector<Status> scalar_statuses(11), dispatched_statuses(11);
  rans::DecodeStreamsScalar(scalar_jobs, scalar_statuses);
  rans::DecodeStreams(dispatched_jobs, dispatched_statuses);
  for (size_t k = 0; k < 11; ++k) {
    ASSERT_EQ(dispatched_statuses[k].ToString(), scalar_statuses[k].ToString()) << k;
    EXPECT_EQ(dispatched_statuses[k].ok(), k != 7) << k;
    if (k != 7) {
      EXPECT_EQ(dispatched[k], set.symbols[k]) << k;
    }
    std::vector<uint8_t> single(set.symbols[k].size(), 2);
    ASSERT_EQ(rans::Decode(set.streams[k], set.tables[k], single, set.labels[k]).ToString(),
              scalar_statuses[k].ToString())
        << k;
    if (k != 7) {
      EXPECT_EQ(single, set.symbols[k]) << k;
    }
  }
}

// A RunBatch over raw and coded runs gives ReadRun's symbols, and at the first damaged run the
// error ReadRun meets first.
TEST(RansRunBatch, MatchesReadingRunByRun) {
  std::vector<std::vector<uint8_t>> runs;
  runs.push_back(GeometricSymbols(5000, 31, 0.5, 51));  // coded
  std::mt19937 rng(52);
  runs.emplace_back(300);
  for (auto& s : runs.back()) s = static_cast<uint8_t>(rng() % 31);  // uniform: stays raw
  runs.push_back(GeometricSymbols(4000, 31, 0.8, 53));  // coded
  runs.push_back(GeometricSymbols(17, 31, 0.9, 54));
  std::vector<uint8_t> payload;
  for (const auto& run : runs) rans::AppendRun(run, 31, payload);

  const auto read_one_by_one = [&](std::span<const uint8_t> in, std::vector<std::vector<uint8_t>>& out) {
    for (size_t r = 0; r < runs.size(); ++r) {
      out[r].assign(runs[r].size(), 0);
      SPARKV_RETURN_IF_ERROR(rans::ReadRun(in, 31, out[r], "run " + std::to_string(r)));
    }
    return in.empty() ? Status::Ok() : CorruptionError("bytes left after the last run");
  };
  const auto read_batched = [&](std::span<const uint8_t> in, std::vector<std::vector<uint8_t>>& out) {
    rans::RunBatch batch;
    Status parse_status;
    size_t r = 0;
    for (; r < runs.size(); ++r) {
      out[r].assign(runs[r].size(), 0);
      parse_status = batch.Add(in, 31, out[r], "run " + std::to_string(r));
      if (!parse_status.ok()) break;
    }
    for (const Status& status : batch.Finish()) SPARKV_RETURN_IF_ERROR(status);
    SPARKV_RETURN_IF_ERROR(parse_status);
    return in.empty() ? Status::Ok() : CorruptionError("bytes left after the last run");
  };

  std::vector<std::vector<uint8_t>> serial(runs.size()), batched(runs.size());
  ASSERT_TRUE(read_one_by_one(payload, serial).ok());
  ASSERT_TRUE(read_batched(payload, batched).ok());
  EXPECT_EQ(serial, runs);
  EXPECT_EQ(batched, runs);

  int rejected = 0;
  for (size_t bit = 0; bit < 8 * payload.size(); bit += 13) {
    std::vector<uint8_t> flipped = payload;
    flipped[bit / 8] ^= static_cast<uint8_t>(1u << (bit % 8));
    const Status expected = read_one_by_one(flipped, serial);
    const Status status = read_batched(flipped, batched);
    ASSERT_EQ(status.ToString(), expected.ToString()) << "bit " << bit;
    if (!status.ok()) ++rejected;
  }
  EXPECT_GT(rejected, 0);
}

TEST(JoinF16Planes, DispatchedMatchesTheScalarReference) {
  std::mt19937 rng(61);
  for (int64_t n : {0, 1, 31, 32, 33, 64, 100, 1027}) {
    std::vector<uint8_t> low(static_cast<size_t>(n)), high(static_cast<size_t>(n));
    for (auto& b : low) b = static_cast<uint8_t>(rng());
    for (KvElemType elem : {KvElemType::kF16, KvElemType::kF32}) {
      // Any high byte into f16. Into f32 only finite values: F16C and the scalar conversion may
      // quiet a NaN differently (kv/row_convert.h).
      for (auto& b : high) {
        b = static_cast<uint8_t>(rng());
        if (elem == KvElemType::kF32 && (b & 0x7c) == 0x7c) b &= 0xbf;
      }
      const size_t elem_bytes = elem == KvElemType::kF32 ? 4 : 2;
      // One byte of offset: cache rows need not be aligned.
      std::vector<uint8_t> reference(1 + n * elem_bytes, 0x11), fast(1 + n * elem_bytes, 0x22);
      internal::JoinF16PlanesScalar(low.data(), high.data(), n, elem, reference.data() + 1);
      internal::JoinF16Planes(low.data(), high.data(), n, elem, fast.data() + 1);
      EXPECT_EQ(std::vector(fast.begin() + 1, fast.end()),
                std::vector(reference.begin() + 1, reference.end()))
          << "n " << n;
      for (int64_t i = 0; i < n && elem == KvElemType::kF16; ++i) {
        ASSERT_EQ(reference[1 + 2 * i], low[i]);
        ASSERT_EQ(reference[2 + 2 * i], high[i]);
      }
    }
  }
}

// UnpackRowAvx2 against the layout of kv/group_quant.h: fields packed least significant bit
// first, element i decoding to q * scale[i / 32].
TEST(GroupQuantUnpack, Avx2MatchesTheLayout) {
  if (!internal::HasAvx2()) GTEST_SKIP() << "this CPU has no AVX2";
  std::mt19937 rng(71);
  for (int bits = 2; bits <= 16; ++bits) {
    for (internal::FieldCode code : {internal::FieldCode::kOffset, internal::FieldCode::kTwosComplement}) {
      for (int64_t n : {1, 8, 15, 16, 17, 40, 64, 100, 256}) {
        std::vector<uint32_t> fields(static_cast<size_t>(n));
        for (auto& field : fields) field = static_cast<uint32_t>(rng()) & ((1u << bits) - 1);
        const size_t row_bytes = static_cast<size_t>((n * bits + 7) / 8);
        std::vector<uint8_t> packed(row_bytes, 0);
        for (int64_t i = 0; i < n; ++i) {
          for (int b = 0; b < bits; ++b) {
            const int64_t bit = i * bits + b;
            if ((fields[i] >> b) & 1) packed[bit / 8] |= static_cast<uint8_t>(1u << (bit % 8));
          }
        }
        std::vector<float> scales(static_cast<size_t>((n + 31) / 32));
        for (auto& scale : scales) scale = std::uniform_real_distribution<float>(0.001f, 2.0f)(rng);

        std::vector<float> row(static_cast<size_t>(n), -7.0f);
        const int64_t done = internal::UnpackRowAvx2(packed.data(), n, bits, code, scales.data(), row.data());
        EXPECT_EQ(done % 8, 0) << bits << " bits, n " << n;
        // Each step loads 16 bytes from the byte its eight fields start at, never past the row.
        if (done > 0) {
          EXPECT_LE((done - 8) * bits / 8 + 16, static_cast<int64_t>(row_bytes)) << bits << " bits";
        }
        if (n >= 8 && row_bytes >= 16) {
          EXPECT_GT(done, 0) << bits << " bits, n " << n;
        }
        const int32_t q_max = (1 << (bits - 1)) - 1;
        for (int64_t i = 0; i < done; ++i) {
          const auto field = static_cast<int32_t>(fields[i]);
          const int32_t q = code == internal::FieldCode::kOffset
                                ? field - q_max
                                : (field >= (1 << (bits - 1)) ? field - (1 << bits) : field);
          ASSERT_EQ(row[i], static_cast<float>(q) * scales[i / 32])
              << bits << " bits, n " << n << ", element " << i;
        }
        for (int64_t i = done; i < n; ++i) ASSERT_EQ(row[i], -7.0f) << "wrote past " << done;
      }
    }
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
      for (int n_threads : {0, 1, 2, 3, 4, 16}) {
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

// Values that repeat within channels, so that every run is rANS-coded, f16ans's low bytes too
// (random values leave them raw), and a layer's coded runs decode interleaved.
void FillRepetitive(TestKvCache& cache, int32_t n_layer, int64_t width) {
  for (int32_t l = 0; l < n_layer; ++l) {
    for (bool is_v : {false, true}) {
      for (int64_t i = 0; i < cache.n_elements_per_block(); ++i) {
        const int64_t t = i / width;
        const int64_t c = i % width;
        cache.Set(l, is_v, i, static_cast<float>((t / 8 + c + l) % 5 - 2) / 4.0f +
                                  static_cast<float>((t * c + (is_v ? 1 : 0)) % 3) / 64.0f);
      }
    }
  }
}

TEST(ParallelDecode, CodedRunsMatchSerial) {
  for (const Codec* codec : kEntropyCoded) {
    TestKvCache source(KvElemType::kF16, 4, 2, 72, 0, 80);
    FillRepetitive(source, 4, 144);
    Result<std::vector<uint8_t>> payload = codec->Encode(source.slice());
    ASSERT_TRUE(payload.ok()) << payload.status().ToString();
    if (codec == &F16AnsCodec()) {
      // Below one byte per element only if the low bytes are coded as well.
      ASSERT_LT(payload->size(), static_cast<size_t>(2 * 4 * source.n_elements_per_block()));
    }
    TestKvCache serial(KvElemType::kF16, 4, 2, 72, 0, 80);
    ASSERT_TRUE(codec->Decode(*payload, serial.slice()).ok()) << codec->name();
    if (codec == &F16AnsCodec()) {
      EXPECT_EQ(serial.AllBytes(), source.AllBytes());
    }
    for (int n_threads = 1; n_threads <= 4; ++n_threads) {
      TestKvCache parallel(KvElemType::kF16, 4, 2, 72, 0, 80);
      parallel.FillBytes(0x77);
      ASSERT_TRUE(codec->DecodeParallel(*payload, parallel.slice(), n_threads).ok())
          << codec->name() << " threads " << n_threads;
      EXPECT_EQ(parallel.AllBytes(), serial.AllBytes()) << codec->name() << " threads " << n_threads;
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

// AddLevelRows against its scalar reference: widths around the 32-byte vector, symbols and
// references that leave the range on either side, and output rows wider than the input.
TEST(AddLevelRows, DispatchedMatchesScalar) {
  std::mt19937 rng(8);
  for (int64_t n : {1, 5, 31, 32, 33, 64, 100}) {
    for (int64_t n_rows : {1, 3, 15}) {
      for (uint16_t offset : {0, 7, 127}) {
        std::vector<uint8_t> symbols(static_cast<size_t>(n * n_rows)), reference(n);
        for (auto& s : symbols) s = static_cast<uint8_t>(rng() % 255);
        for (auto& r : reference) r = static_cast<uint8_t>(rng() % 128);
        const int64_t stride = n + 3;
        std::vector<uint8_t> expected(static_cast<size_t>(stride * n_rows), 0x11);
        std::vector<uint8_t> dispatched(expected.size(), 0x11);
        const uint16_t expected_seen = internal::AddLevelRowsScalar(
            symbols.data(), n, n_rows, reference.data(), offset, expected.data(), stride);
        const uint16_t dispatched_seen = internal::AddLevelRows(
            symbols.data(), n, n_rows, reference.data(), offset, dispatched.data(), stride);
        EXPECT_EQ(dispatched_seen, expected_seen) << n << " " << n_rows << " " << offset;
        EXPECT_EQ(dispatched, expected) << n << " " << n_rows << " " << offset;
        // The reference result itself: the first element's sum, and the bytes between rows kept.
        EXPECT_EQ(expected[0], static_cast<uint8_t>(symbols[0] + reference[0] - offset));
        const auto first_sum = static_cast<uint16_t>(symbols[0] + reference[0] - offset);
        EXPECT_EQ(expected_seen & first_sum, first_sum) << "the OR misses element 0";
        EXPECT_EQ(expected[n], 0x11);
      }
    }
  }
}

// Builds an ans payload by hand for one layer of two tokens and 4-wide rows. Both blocks have
// `bits`, lo 0 and step 1 in every channel, and one channel group in `mode` (0 direct, 1 delta).
// The group's raw run contains `symbols`: token 0's four, then token 1's.
std::vector<uint8_t> HandMadeAnsPayload(int bits, uint8_t mode, const std::vector<uint8_t>& symbols) {
  std::vector<uint8_t> layer;
  for (int block = 0; block < 2; ++block) {
    layer.push_back(static_cast<uint8_t>(bits));
    for (int c = 0; c < 4; ++c) layer.insert(layer.end(), {0x00, 0x00});  // lo: f16 0
    for (int c = 0; c < 4; ++c) layer.insert(layer.end(), {0x00, 0x3c});  // step: f16 1
    layer.push_back(mode);
    layer.push_back(1);  // a raw run
    layer.insert(layer.end(), symbols.begin(), symbols.end());
  }
  std::vector<uint8_t> payload = {rans::kStreamVersion};
  const auto layer_bytes = static_cast<uint32_t>(layer.size());
  payload.resize(5);
  std::memcpy(payload.data() + 1, &layer_bytes, 4);
  payload.insert(payload.end(), layer.begin(), layer.end());
  return payload;
}

// Levels must lie in [0, 2^bits). The decoder checks each token's levels at once, so this checks
// that a level just past either end is rejected and that the levels at both ends are kept.
TEST(AnsLevels, RejectLevelsOutsideRange) {
  struct Case {
    uint8_t mode;
    std::vector<uint8_t> symbols;
    std::vector<float> levels;  // empty: the payload is rejected
  };
  // 2 bits: 4 levels. A delta symbol is the difference + 3, and token 1 is relative to token 0.
  const Case cases[] = {
      {0, {0, 1, 2, 3, 3, 2, 1, 0}, {0, 1, 2, 3, 3, 2, 1, 0}},
      {0, {0, 1, 2, 3, 3, 4, 1, 0}, {}},  // level 4
      {1, {3, 4, 5, 6, 3, 3, 3, 2}, {0, 1, 2, 3, 0, 1, 2, 2}},
      {1, {2, 4, 5, 6, 3, 3, 3, 3}, {}},  // token 0: level -1
      {1, {3, 4, 5, 6, 3, 3, 3, 4}, {}},  // token 1: level 3 + 1
  };
  for (const Case& c : cases) {
    const std::vector<uint8_t> payload = HandMadeAnsPayload(2, c.mode, c.symbols);
    TestKvCache destination(KvElemType::kF32, 1, 1, 4, 0, 2);
    const Status status = Ans2Codec().Decode(payload, destination.slice());
    if (c.levels.empty()) {
      EXPECT_EQ(status.code(), ErrorCode::kCorruption) << status.ToString();
      EXPECT_NE(status.message().find("level outside [0, 4)"), std::string::npos)
          << status.ToString();
      continue;
    }
    ASSERT_TRUE(status.ok()) << status.ToString();
    for (int64_t i = 0; i < 8; ++i) {
      EXPECT_EQ(destination.Get(0, false, i), c.levels[i]) << "K element " << i;
      EXPECT_EQ(destination.Get(0, true, i), c.levels[i]) << "V element " << i;
    }
  }
}

}  // namespace
}  // namespace sparkv
