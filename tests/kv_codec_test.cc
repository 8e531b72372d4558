#include "kv/codec.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <set>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "common/f16.h"
#include "kv_test_cache.h"

namespace sparkv {
namespace {

using testing::TestKvCache;

constexpr KvElemType kElemTypes[] = {KvElemType::kF16, KvElemType::kF32};
// Row widths (n_head_kv * head_dim) around the q8 and q10 group size of 32 and odd ones.
constexpr std::pair<int32_t, int32_t> kHeadShapes[] = {{1, 1}, {1, 5}, {3, 7},  {1, 31},
                                                      {1, 32}, {1, 33}, {2, 32}, {4, 64}, {5, 51}};

const char* ElemName(KvElemType elem) { return elem == KvElemType::kF16 ? "f16" : "f32"; }

TEST(CodecRegistry, IdsAndNamesAreStable) {
  ASSERT_NE(FindCodec("f16"), nullptr);
  ASSERT_NE(FindCodec("q8"), nullptr);
  EXPECT_EQ(static_cast<int>(FindCodec("f16")->id()), 1);
  EXPECT_EQ(static_cast<int>(FindCodec("q8")->id()), 2);
  EXPECT_EQ(FindCodec(CodecId::kF16), FindCodec("f16"));
  EXPECT_EQ(FindCodec(CodecId::kQ8), FindCodec("q8"));
  ASSERT_NE(FindCodec("q10"), nullptr);
  EXPECT_EQ(static_cast<int>(FindCodec("q10")->id()), 9);
  EXPECT_EQ(FindCodec(CodecId::kQ10), FindCodec("q10"));
}

TEST(CodecRegistry, UnknownNameOrIdIsNotFound) {
  EXPECT_EQ(FindCodec("q3"), nullptr);
  EXPECT_EQ(FindCodec(""), nullptr);
  EXPECT_EQ(FindCodec(static_cast<CodecId>(0)), nullptr);
  EXPECT_EQ(FindCodec(static_cast<CodecId>(999)), nullptr);
}

TEST(CodecRegistry, UniqueAscendingIdsAndSafeNames) {
  std::set<std::string_view> names;
  int previous_id = 0;
  for (const Codec* codec : AllCodecs()) {
    const int id = static_cast<int>(codec->id());
    EXPECT_GT(id, previous_id) << codec->name();
    previous_id = id;
    EXPECT_TRUE(names.insert(codec->name()).second) << codec->name();
    EXPECT_FALSE(codec->name().empty());
    EXPECT_EQ(codec->name().find_first_not_of("abcdefghijklmnopqrstuvwxyz0123456789_"),
              std::string_view::npos)
        << codec->name();
  }
  EXPECT_GE(names.size(), 2u);
}

TEST(F16Codec, RoundTripIsBitExactOnF16Caches) {
  for (auto [n_head_kv, head_dim] : kHeadShapes) {
    for (size_t misalign : {0, 1}) {
      TestKvCache source(KvElemType::kF16, 3, n_head_kv, head_dim, 256, 300, misalign);
      source.FillRandom(11);
      Result<std::vector<uint8_t>> payload = F16Codec().Encode(source.slice());
      ASSERT_TRUE(payload.ok()) << payload.status().ToString();
      EXPECT_EQ(payload->size(), F16Codec().MaxPayloadBytes(ShapeOf(source.slice())));

      TestKvCache decoded(KvElemType::kF16, 3, n_head_kv, head_dim, 256, 300, 1 - misalign);
      ASSERT_TRUE(F16Codec().Decode(*payload, decoded.slice()).ok());
      for (int32_t l = 0; l < 3; ++l) {
        for (bool is_v : {false, true}) {
          for (int64_t i = 0; i < source.n_elements_per_block(); ++i) {
            ASSERT_EQ(F32ToF16(decoded.Get(l, is_v, i)), F32ToF16(source.Get(l, is_v, i)))
                << "layer " << l << (is_v ? " V " : " K ") << i;
          }
        }
      }
    }
  }
}

TEST(F16Codec, F32CacheRoundsToNearestF16) {
  for (KvElemType destination_elem : kElemTypes) {
    TestKvCache source(KvElemType::kF32, 2, 3, 7, 0, 17);
    source.FillRandom(12);
    Result<std::vector<uint8_t>> payload = F16Codec().Encode(source.slice());
    ASSERT_TRUE(payload.ok()) << payload.status().ToString();

    TestKvCache decoded(destination_elem, 2, 3, 7, 0, 17);
    ASSERT_TRUE(F16Codec().Decode(*payload, decoded.slice()).ok());
    for (int32_t l = 0; l < 2; ++l) {
      for (bool is_v : {false, true}) {
        for (int64_t i = 0; i < source.n_elements_per_block(); ++i) {
          const float expected = F16ToF32(F32ToF16(source.Get(l, is_v, i)));
          ASSERT_EQ(decoded.Get(l, is_v, i), expected) << ElemName(destination_elem) << " " << i;
        }
      }
    }
  }
}

// The group-quantized levels (kv/group_quant.h) and the largest |q| of their K and V fields: q8
// writes 8-bit K and V, q10 10-bit K and 9-bit V.
struct GroupQuantLevel {
  const Codec* codec;
  double key_q_max;
  double value_q_max;

  double QMax(bool is_v) const { return is_v ? value_q_max : key_q_max; }
};

std::vector<GroupQuantLevel> GroupQuantLevels() {
  return {{&Q8Codec(), 127.0, 127.0}, {&Q10Codec(), 511.0, 255.0}};
}

// The bound of a group-quantized level, per element x of a group with absolute maximum m: the
// scale s is the smallest f16 >= m / q_max, so s <= m / q_max * (1 + 2^-10) + 2^-24 (an f16 ulp,
// relative for normals, 2^-24 for subnormals); rounding to the nearest quant leaves
// |x - q s| <= s / 2; f32 products add ~2^-23 relative. An f16 destination adds half an f16 ulp of
// the result: |x| 2^-11 + 2^-25.
double GroupQuantBound(double absmax, double x, KvElemType destination_elem, double q_max) {
  double bound = (absmax / q_max * (1.0 + std::ldexp(1.0, -10)) + std::ldexp(1.0, -24)) / 2.0;
  bound += std::fabs(x) * std::ldexp(1.0, -22);
  if (destination_elem == KvElemType::kF16) {
    bound += (std::fabs(x) + bound) * std::ldexp(1.0, -11) + std::ldexp(1.0, -25);
  }
  return bound;
}

TEST(GroupQuantLevels, ErrorStaysWithinTheStatedBound) {
  for (const GroupQuantLevel& level : GroupQuantLevels()) {
    for (KvElemType source_elem : kElemTypes) {
      for (KvElemType destination_elem : kElemTypes) {
        for (auto [n_head_kv, head_dim] : kHeadShapes) {
          const int32_t width = n_head_kv * head_dim;
          TestKvCache source(source_elem, 2, n_head_kv, head_dim, 5, 28, 1);
          source.FillRandom(13 + width, 3.0f);
          Result<std::vector<uint8_t>> payload = level.codec->Encode(source.slice());
          ASSERT_TRUE(payload.ok()) << payload.status().ToString();
          EXPECT_LE(payload->size(), level.codec->MaxPayloadBytes(ShapeOf(source.slice())));

          TestKvCache decoded(destination_elem, 2, n_head_kv, head_dim, 5, 28, 0);
          ASSERT_TRUE(level.codec->Decode(*payload, decoded.slice()).ok());

          double worst_ratio = 0.0;  // error / bound over all elements
          for (int32_t l = 0; l < 2; ++l) {
            for (bool is_v : {false, true}) {
              for (int32_t t = 0; t < 23; ++t) {
                for (int32_t group = 0; group * 32 < width; ++group) {
                  const int32_t begin = group * 32;
                  const int32_t end = std::min(begin + 32, width);
                  double absmax = 0.0;
                  for (int32_t i = begin; i < end; ++i) {
                    absmax = std::max(absmax, std::fabs(double{source.Get(l, is_v, t * width + i)}));
                  }
                  for (int32_t i = begin; i < end; ++i) {
                    const double x = source.Get(l, is_v, t * width + i);
                    const double error = std::fabs(decoded.Get(l, is_v, t * width + i) - x);
                    const double bound =
                        GroupQuantBound(absmax, x, destination_elem, level.QMax(is_v));
                    ASSERT_LE(error, bound)
                        << level.codec->name() << " " << ElemName(source_elem) << "->"
                        << ElemName(destination_elem) << " width " << width << " layer " << l
                        << " row " << t << " column " << i << " absmax " << absmax;
                    worst_ratio = std::max(worst_ratio, error / bound);
                  }
                }
              }
            }
          }
          // Quantization really happened: some element used a good part of its error budget.
          if (width >= 5) {
            EXPECT_GT(worst_ratio, 0.1) << level.codec->name() << " width " << width;
          }
        }
      }
    }
  }
}

// q10's fields have 4 times q8's resolution for K (q_max 511 against 127) and 2 times for V (255):
// on the same values, its largest error per block kind shrinks about that much.
TEST(GroupQuantLevels, Q10ErrorIsBelowQ8Error) {
  TestKvCache source(KvElemType::kF32, 2, 4, 8, 0, 64, 1);
  source.FillRandom(18, 2.0f);
  double worst[2][2] = {};  // [q8, q10][K, V]
  for (int c = 0; c < 2; ++c) {
    const Codec& codec = c == 0 ? Q8Codec() : Q10Codec();
    Result<std::vector<uint8_t>> payload = codec.Encode(source.slice());
    ASSERT_TRUE(payload.ok()) << payload.status().ToString();
    TestKvCache decoded(KvElemType::kF32, 2, 4, 8, 0, 64);
    ASSERT_TRUE(codec.Decode(*payload, decoded.slice()).ok());
    for (int32_t l = 0; l < 2; ++l) {
      for (bool is_v : {false, true}) {
        for (int64_t e = 0; e < source.n_elements_per_block(); ++e) {
          const double error = std::fabs(decoded.Get(l, is_v, e) - source.Get(l, is_v, e));
          worst[c][is_v] = std::max(worst[c][is_v], error);
        }
      }
    }
  }
  EXPECT_GT(worst[1][0], 0.0);
  EXPECT_GT(worst[1][1], 0.0);
  EXPECT_GT(worst[0][0], 3.0 * worst[1][0]);
  EXPECT_GT(worst[0][1], 1.5 * worst[1][1]);
}

TEST(GroupQuantLevels, PayloadSizesMatchTheLayout) {
  TestKvCache source(KvElemType::kF16, 22, 4, 64, 0, 256);  // TinyLlama's K/V row of 256
  source.FillRandom(19);
  const KvShape shape = ShapeOf(source.slice());
  const double n_elements = 2.0 * shape.n_layer * static_cast<double>(shape.block_elements());
  EXPECT_EQ(F16Codec().MaxPayloadBytes(shape), static_cast<uint64_t>(n_elements * 2));

  // q8: one byte per element and one f16 scale per 32 elements, no version byte.
  Result<std::vector<uint8_t>> q8 = Q8Codec().Encode(source.slice());
  ASSERT_TRUE(q8.ok());
  EXPECT_EQ(q8->size(), static_cast<uint64_t>(n_elements * (1 + 2.0 / 32)));

  // q10: one version byte; per element half of 10 bits (K) and half of 9 bits (V), and one f16
  // scale per 32 elements.
  const auto q10_bytes = 1 + static_cast<uint64_t>(n_elements * ((10.0 + 9.0) / 2 / 8 + 2.0 / 32));
  Result<std::vector<uint8_t>> q10 = Q10Codec().Encode(source.slice());
  ASSERT_TRUE(q10.ok());
  EXPECT_EQ(q10->size(), q10_bytes);
  EXPECT_EQ(Q10Codec().MaxPayloadBytes(shape), q10_bytes);
  // q8's bound admits the version 2 payloads of earlier builds, which have q10's size.
  EXPECT_EQ(Q8Codec().MaxPayloadBytes(shape), q10_bytes);

  // Rows of odd widths round their packed fields up to whole bytes: 5 elements of 10 and 9 bits
  // take 7 and 6 bytes, plus one scale each.
  EXPECT_EQ(Q10Codec().MaxPayloadBytes(KvShape{1, 1, 5, 3}), 1u + 3 * (7 + 2) + 3 * (6 + 2));
}

TEST(GroupQuantLevels, ZeroAndTinyGroupsDecodeNearZero) {
  TestKvCache source(KvElemType::kF32, 1, 1, 64, 0, 3);
  // Row 0 all zero; row 1 far below the smallest f16 normal; row 2 mixes 1e3 with 1e-3.
  for (int64_t i = 0; i < 64; ++i) {
    source.Set(0, false, i, 0.0f);
    source.Set(0, false, 64 + i, (i % 2 ? 1 : -1) * 1e-7f * static_cast<float>(i));
    source.Set(0, false, 128 + i, i == 3 ? 1000.0f : 1e-3f);
  }
  for (const GroupQuantLevel& level : GroupQuantLevels()) {
    Result<std::vector<uint8_t>> payload = level.codec->Encode(source.slice());
    ASSERT_TRUE(payload.ok()) << payload.status().ToString();
    TestKvCache decoded(KvElemType::kF32, 1, 1, 64, 0, 3);
    ASSERT_TRUE(level.codec->Decode(*payload, decoded.slice()).ok());
    const double q_max = level.key_q_max;
    for (int64_t i = 0; i < 64; ++i) {
      EXPECT_EQ(decoded.Get(0, false, i), 0.0f) << level.codec->name() << " " << i;
      EXPECT_LE(std::fabs(decoded.Get(0, false, 64 + i) - source.Get(0, false, 64 + i)),
                GroupQuantBound(63e-7, 0, KvElemType::kF32, q_max))
          << level.codec->name() << " " << i;
    }
    EXPECT_NEAR(decoded.Get(0, false, 128 + 3), 1000.0f,
                GroupQuantBound(1000.0, 1000.0, KvElemType::kF32, q_max));
    EXPECT_NEAR(decoded.Get(0, false, 128 + 40), 1e-3f,
                GroupQuantBound(1e-3, 1e-3, KvElemType::kF32, q_max));
  }
}

TEST(GroupQuantLevels, RejectValuesTheyCannotRepresent) {
  for (const GroupQuantLevel& level : GroupQuantLevels()) {
    for (float bad : {std::numeric_limits<float>::quiet_NaN(), std::numeric_limits<float>::infinity(),
                      -std::numeric_limits<float>::infinity(), 1e10f}) {
      TestKvCache source(KvElemType::kF32, 2, 1, 40, 0, 4);
      source.FillRandom(14);
      source.Set(1, true, 77, bad);
      Result<std::vector<uint8_t>> payload = level.codec->Encode(source.slice());
      ASSERT_FALSE(payload.ok()) << level.codec->name() << " " << bad;
      EXPECT_EQ(payload.status().code(), ErrorCode::kInvalidArgument);
      EXPECT_NE(payload.status().message().find(std::string(level.codec->name()) +
                                                " encode of layer 1 V row 1"),
                std::string::npos)
          << payload.status().message();
    }
  }
}

TEST(Codecs, DecodeRejectsWrongPayloadSize) {
  for (const Codec* codec : AllCodecs()) {
    TestKvCache source(KvElemType::kF16, 2, 2, 9, 0, 5);
    source.FillRandom(15);
    Result<std::vector<uint8_t>> payload = codec->Encode(source.slice());
    ASSERT_TRUE(payload.ok());

    for (int64_t delta : {int64_t{-1}, int64_t{1}, -static_cast<int64_t>(payload->size())}) {
      std::vector<uint8_t> resized = *payload;
      resized.resize(static_cast<size_t>(static_cast<int64_t>(resized.size()) + delta), 0);
      TestKvCache destination(KvElemType::kF32, 2, 2, 9, 0, 5);
      destination.FillBytes(0xa5);
      const std::vector<uint8_t> before = destination.AllBytes();
      const Status status = codec->Decode(resized, destination.slice());
      EXPECT_EQ(status.code(), ErrorCode::kCorruption) << codec->name() << " delta " << delta;
      EXPECT_EQ(destination.AllBytes(), before) << codec->name();
    }
  }
}

TEST(GroupQuantLevels, DecodeRejectsNonFiniteOrNegativeScales) {
  TestKvCache source(KvElemType::kF16, 2, 1, 40, 0, 3);
  source.FillRandom(16);
  // Layer 1's V block is the last; its scales come first: [3 rows][2 groups] f16. A q8 block is
  // 3 rows of 2 scales and 40 bytes. A q10 K block is 3 rows of 2 scales and 50 bytes of 10-bit
  // fields, a V block 3 rows of 2 scales and 45 bytes, after one version byte.
  const std::pair<const Codec*, size_t> last_blocks[] = {
      {&Q8Codec(), 3 * 3 * (4 + 40)}, {&Q10Codec(), 1 + 3 * (4 + 50) + 3 * (4 + 45) + 3 * (4 + 50)}};
  for (auto [codec, last_block] : last_blocks) {
    Result<std::vector<uint8_t>> payload = codec->Encode(source.slice());
    ASSERT_TRUE(payload.ok());
    ASSERT_EQ(payload->size() - last_block, codec == &Q8Codec() ? 3u * (4 + 40) : 3u * (4 + 45));
    for (uint16_t bad_scale : {uint16_t{0x7c00}, uint16_t{0x7e00}, uint16_t{0xbc00}}) {
      std::vector<uint8_t> damaged = *payload;
      std::memcpy(damaged.data() + last_block + 2 * 5, &bad_scale, 2);
      TestKvCache destination(KvElemType::kF16, 2, 1, 40, 0, 3);
      const std::vector<uint8_t> before = destination.AllBytes();
      const Status status = codec->Decode(damaged, destination.slice());
      EXPECT_EQ(status.code(), ErrorCode::kCorruption) << codec->name() << " " << bad_scale;
      EXPECT_NE(status.message().find("layer 1 V"), std::string::npos) << status.message();
      EXPECT_EQ(destination.AllBytes(), before) << codec->name();
    }
  }
}

// q10 payloads start with version 1. Another first byte is rejected with a re-ingest hint.
TEST(Q10Codec, RejectsUnknownPayloadVersion) {
  TestKvCache source(KvElemType::kF16, 2, 1, 40, 0, 3);
  source.FillRandom(17);
  Result<std::vector<uint8_t>> payload = Q10Codec().Encode(source.slice());
  ASSERT_TRUE(payload.ok());
  ASSERT_EQ((*payload)[0], 1);
  for (uint8_t version : {uint8_t{0}, uint8_t{2}, uint8_t{3}, uint8_t{255}}) {
    std::vector<uint8_t> damaged = *payload;
    damaged[0] = version;
    TestKvCache destination(KvElemType::kF16, 2, 1, 40, 0, 3);
    const std::vector<uint8_t> before = destination.AllBytes();
    const Status status = Q10Codec().Decode(damaged, destination.slice());
    EXPECT_EQ(status.code(), ErrorCode::kCorruption) << int{version};
    EXPECT_NE(status.message().find("sparkv ingest"), std::string::npos) << status.message();
    EXPECT_EQ(destination.AllBytes(), before);
  }
}

// A payload of q8 version 2's size whose first byte is not 2 is neither version: it is rejected
// with a re-ingest hint, not decoded as something else.
TEST(Q8Codec, RejectsUnknownVersionAtVersion2Size) {
  TestKvCache source(KvElemType::kF16, 2, 1, 40, 0, 3);
  source.FillRandom(17);
  Result<std::vector<uint8_t>> payload = Q10Codec().Encode(source.slice());
  ASSERT_TRUE(payload.ok());
  for (uint8_t version : {uint8_t{0}, uint8_t{1}, uint8_t{3}, uint8_t{255}}) {
    std::vector<uint8_t> damaged = *payload;
    damaged[0] = version;
    TestKvCache destination(KvElemType::kF16, 2, 1, 40, 0, 3);
    const std::vector<uint8_t> before = destination.AllBytes();
    const Status status = Q8Codec().Decode(damaged, destination.slice());
    EXPECT_EQ(status.code(), ErrorCode::kCorruption) << int{version};
    EXPECT_NE(status.message().find("version 2 (10-bit K, 9-bit V)"), std::string::npos)
        << status.message();
    EXPECT_NE(status.message().find("sparkv ingest"), std::string::npos) << status.message();
    EXPECT_EQ(destination.AllBytes(), before);
  }
}

// q8 version 1: no version byte, per block the scales [n_tokens][2] f16 then int8 quants
// [n_tokens][40]. Group 0 of every row contains +-127, so a source of q * scale quantizes back to q.
struct Version1Example {
  static constexpr int32_t kWidth = 40;  // two groups per row: 32 and 8 elements
  static constexpr int32_t kTokens = 2;

  static int Q(int block, int32_t t, int32_t i) {
    if (i % 32 == 0) return t % 2 == 0 ? 127 : -127;
    return (i * 37 + t * 5 + block * 11) % 255 - 127;
  }
  static float Scale(int32_t i) { return i < 32 ? 0.5f : 0.25f; }

  static std::vector<uint8_t> Payload() {
    std::vector<uint8_t> payload;
    for (int block = 0; block < 2; ++block) {  // one layer: K, then V
      for (int32_t t = 0; t < kTokens; ++t) {
        for (float scale : {Scale(0), Scale(32)}) {
          const uint16_t h = F32ToF16(scale);
          payload.push_back(static_cast<uint8_t>(h));
          payload.push_back(static_cast<uint8_t>(h >> 8));
        }
      }
      for (int32_t t = 0; t < kTokens; ++t) {
        for (int32_t i = 0; i < kWidth; ++i) {
          payload.push_back(static_cast<uint8_t>(static_cast<int8_t>(Q(block, t, i))));
        }
      }
    }
    return payload;
  }
};

// q8 blobs written before and after its 10/9-bit interlude contain these bytes.
TEST(Q8Codec, WritesVersion1Payloads) {
  TestKvCache source(KvElemType::kF32, 1, 1, Version1Example::kWidth, 0, Version1Example::kTokens);
  for (int block = 0; block < 2; ++block) {
    for (int32_t t = 0; t < Version1Example::kTokens; ++t) {
      for (int32_t i = 0; i < Version1Example::kWidth; ++i) {
        source.Set(0, block == 1, t * Version1Example::kWidth + i,
                   static_cast<float>(Version1Example::Q(block, t, i)) * Version1Example::Scale(i));
      }
    }
  }
  Result<std::vector<uint8_t>> payload = Q8Codec().Encode(source.slice());
  ASSERT_TRUE(payload.ok()) << payload.status().ToString();
  EXPECT_EQ(*payload, Version1Example::Payload());
}

// Version 1 decodes to q * scale, including the int8 -128 that the encoder never writes.
TEST(Q8Codec, DecodesVersion1Payloads) {
  std::vector<uint8_t> payload = Version1Example::Payload();
  const size_t v_quants = payload.size() - Version1Example::kTokens * Version1Example::kWidth;
  payload[v_quants + 1] = 0x80;
  TestKvCache destination(KvElemType::kF32, 1, 1, Version1Example::kWidth, 0, Version1Example::kTokens);
  const Status status = Q8Codec().Decode(payload, destination.slice());
  ASSERT_TRUE(status.ok()) << status.ToString();
  for (int block = 0; block < 2; ++block) {
    for (int32_t t = 0; t < Version1Example::kTokens; ++t) {
      for (int32_t i = 0; i < Version1Example::kWidth; ++i) {
        const int q = block == 1 && t == 0 && i == 1 ? -128 : Version1Example::Q(block, t, i);
        EXPECT_EQ(destination.Get(0, block == 1, t * Version1Example::kWidth + i),
                  static_cast<float>(q) * Version1Example::Scale(i))
            << "block " << block << " row " << t << " element " << i;
      }
    }
  }
}

// A one-row payload of 7 elements per block with packed 10-bit K and 9-bit V fields (70 and 63
// bits: rows end inside a byte) after `version`. The last byte of each row sets its padding bits
// too; a reader ignores them.
std::vector<uint8_t> PackedFieldsPayload(uint8_t version) {
  std::vector<uint8_t> payload = {version};
  const std::vector<uint8_t> k_quants = {0xff, 0x03, 0x00, 0x00, 0x00, 0x00, 0x00, 0xf0, 0xff};
  const std::vector<uint8_t> v_quants = {0xff, 0x01, 0x00, 0x00, 0x00, 0x00, 0xc0, 0xff};
  for (const std::vector<uint8_t>* quants : {&k_quants, &v_quants}) {
    const uint16_t scale = F32ToF16(0.125f);
    payload.push_back(static_cast<uint8_t>(scale));
    payload.push_back(static_cast<uint8_t>(scale >> 8));
    payload.insert(payload.end(), quants->begin(), quants->end());
  }
  return payload;
}

// Every field of a 10/9-bit row decodes to (field - q_max) * scale, including the code 2^b - 1
// that the encoder never writes. So arbitrary bytes decode, and no row is read past its end. q10
// version 1 and the q8 version 2 payloads that builds before q10 wrote share these rows.
TEST(GroupQuantLevels, PackedFieldsDecodeByOffset) {
  const std::pair<const Codec*, uint8_t> cases[] = {{&Q10Codec(), 1}, {&Q8Codec(), 2}};
  for (auto [codec, version] : cases) {
    const std::vector<uint8_t> payload = PackedFieldsPayload(version);
    TestKvCache destination(KvElemType::kF32, 1, 1, 7, 0, 1);
    ASSERT_EQ(payload.size(), codec->MaxPayloadBytes(ShapeOf(destination.slice())));
    const Status status = codec->Decode(payload, destination.slice());
    ASSERT_TRUE(status.ok()) << codec->name() << ": " << status.ToString();
    // K: field 0 is 0x3ff = 1023 -> (1023 - 511) * 0.125; fields 1..5 are 0 -> -511 * 0.125; the
    // last field, bits 60..69, takes byte 7's high nibble and byte 8's low six bits: 1023 again.
    // V: fields 0 and 6 (bits 54..62) are 0x1ff = 511 -> 256 * 0.125, the others -255 * 0.125.
    for (int i = 0; i < 7; ++i) {
      const bool end = i == 0 || i == 6;
      EXPECT_EQ(destination.Get(0, false, i), (end ? 512 : -511) * 0.125f) << codec->name() << " K " << i;
      EXPECT_EQ(destination.Get(0, true, i), (end ? 256 : -255) * 0.125f) << codec->name() << " V " << i;
    }
  }
}

// q8 version 2 is q10's layout under version byte 2. So a q10 payload relabelled as version 2
// decodes under q8 to the same cache.
TEST(Q8Codec, DecodesVersion2PayloadsOfEarlierBuilds) {
  TestKvCache source(KvElemType::kF16, 3, 2, 24, 7, 30, 1);
  source.FillRandom(20, 2.0f);
  Result<std::vector<uint8_t>> payload = Q10Codec().Encode(source.slice());
  ASSERT_TRUE(payload.ok());
  TestKvCache by_q10(KvElemType::kF32, 3, 2, 24, 7, 30);
  ASSERT_TRUE(Q10Codec().Decode(*payload, by_q10.slice()).ok());

  std::vector<uint8_t> version2 = *payload;
  version2[0] = 2;
  TestKvCache by_q8(KvElemType::kF32, 3, 2, 24, 7, 30);
  const Status status = Q8Codec().Decode(version2, by_q8.slice());
  ASSERT_TRUE(status.ok()) << status.ToString();
  EXPECT_EQ(by_q8.AllBytes(), by_q10.AllBytes());
}

TEST(Codecs, RejectInvalidSlices) {
  TestKvCache cache(KvElemType::kF16, 2, 2, 8, 10, 20);
  for (const Codec* codec : AllCodecs()) {
    KvSlice missing_layer = cache.slice();
    missing_layer.k.pop_back();
    EXPECT_EQ(codec->Encode(missing_layer).status().code(), ErrorCode::kInvalidArgument);

    KvSlice null_pointer = cache.slice();
    null_pointer.v[1] = nullptr;
    EXPECT_EQ(codec->Encode(null_pointer).status().code(), ErrorCode::kInvalidArgument);

    KvSlice empty = cache.slice();
    empty.end = empty.begin;
    EXPECT_EQ(codec->Encode(empty).status().code(), ErrorCode::kInvalidArgument);

    KvSlice bad_elem = cache.slice();
    bad_elem.elem = static_cast<KvElemType>(9);
    EXPECT_EQ(codec->Encode(bad_elem).status().code(), ErrorCode::kInvalidArgument);

    KvSlice too_wide = cache.slice();
    too_wide.head_dim = kMaxRowWidth;
    EXPECT_EQ(codec->Decode({}, too_wide).code(), ErrorCode::kInvalidArgument);
  }
}

TEST(Codecs, KeepKAndVOfEveryLayerApart) {
  for (const Codec* codec : AllCodecs()) {
    TestKvCache source(KvElemType::kF32, 4, 1, 8, 0, 2);
    for (int32_t l = 0; l < 4; ++l) {
      for (int64_t i = 0; i < 16; ++i) {
        source.Set(l, false, i, static_cast<float>(10 * l + 1));
        source.Set(l, true, i, static_cast<float>(-(10 * l + 2)));
      }
    }
    Result<std::vector<uint8_t>> payload = codec->Encode(source.slice());
    ASSERT_TRUE(payload.ok());
    TestKvCache decoded(KvElemType::kF32, 4, 1, 8, 0, 2);
    ASSERT_TRUE(codec->Decode(*payload, decoded.slice()).ok());
    for (int32_t l = 0; l < 4; ++l) {
      EXPECT_NEAR(decoded.Get(l, false, 15), 10 * l + 1, 0.5) << codec->name() << " layer " << l;
      EXPECT_NEAR(decoded.Get(l, true, 15), -(10 * l + 2), 0.5) << codec->name() << " layer " << l;
    }
  }
}

}  // namespace
}  // namespace sparkv
