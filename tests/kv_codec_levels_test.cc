// Round trips and damaged payloads for q4, f16ans and the ans family.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>

#include "common/f16.h"
#include "kv/codec.h"
#include "kv_test_cache.h"

namespace sparkv {
namespace {

using testing::TestKvCache;

constexpr KvElemType kElemTypes[] = {KvElemType::kF16, KvElemType::kF32};
// Widths around the q4 group (32) and the ans channel group (64), odd ones, and stories260K's 4x8.
constexpr std::pair<int32_t, int32_t> kHeadShapes[] = {{1, 1},  {1, 5},  {3, 7},  {4, 8},
                                                      {1, 33}, {1, 64}, {1, 65}, {5, 27}};
// Token ranges: one token, fewer than a group, and several groups with a short last one.
constexpr std::pair<int32_t, int32_t> kRanges[] = {{7, 8}, {0, 13}, {256, 333}};

const Codec* const kLossy[] = {&Q4Codec(), &Ans6Codec(), &Ans4Codec(), &Ans3Codec(), &Ans2Codec()};
const Codec* const kEntropyCoded[] = {&F16AnsCodec(), &Ans6Codec(), &Ans4Codec(), &Ans3Codec(),
                                      &Ans2Codec()};

int AnsBaseBits(const Codec& codec) { return codec.name()[3] - '0'; }

// Largest error the codec may make on element i (row t, column c) of layer l's K or V block of
// `source`: half the step of its group, where the step is at most the group's range, widened by
// one f16 ulp of the rounded-down minimum, over (levels - 1), rounded up to an f16. Plus f32
// rounding and, for an f16 destination, half an f16 ulp of the result.
double ErrorBound(const Codec& codec, const TestKvCache& source, int32_t l, bool is_v, int64_t t,
                  int64_t c, int64_t n_tokens, int64_t width, KvElemType destination_elem) {
  int64_t first = 0, stride = 1, count = 0, n_levels = 0;
  if (codec.id() == CodecId::kQ4) {
    n_levels = 16;
    if (is_v) {
      first = t * width + c / 32 * 32;
      count = std::min<int64_t>(32, width - c / 32 * 32);
    } else {
      first = t / 32 * 32 * width + c;
      stride = width;
      count = std::min<int64_t>(32, n_tokens - t / 32 * 32);
    }
  } else {
    int bits = AnsBaseBits(codec) + (l == 0 ? 2 : 0) + (l == 1 ? 1 : 0);
    n_levels = int64_t{1} << std::min(bits, 7);
    first = c;
    stride = width;
    count = n_tokens;
  }
  double lo = std::numeric_limits<double>::max(), hi = -lo;
  for (int64_t j = 0; j < count; ++j) {
    const double x = source.Get(l, is_v, first + j * stride);
    lo = std::min(lo, x);
    hi = std::max(hi, x);
  }
  const double range = hi - lo + std::fabs(lo) * std::ldexp(1.0, -10) + std::ldexp(1.0, -24);
  const double step = range / static_cast<double>(n_levels - 1) * (1 + std::ldexp(1.0, -10)) +
                      std::ldexp(1.0, -24);
  const double x = source.Get(l, is_v, t * width + c);
  double bound = step / 2 + (std::fabs(x) + step) * std::ldexp(1.0, -21);
  if (destination_elem == KvElemType::kF16) {
    bound += (std::fabs(x) + bound) * std::ldexp(1.0, -11) + std::ldexp(1.0, -25);
  }
  return bound;
}

TEST(CodecLevels, IdsNamesAndRanksAreStable) {
  const std::pair<const char*, int> expected[] = {{"q4", 3},   {"f16ans", 4}, {"ans6", 5},
                                                  {"ans4", 6}, {"ans3", 7},   {"ans2", 8},
                                                  {"q10", 9}};
  for (auto [name, id] : expected) {
    const Codec* codec = FindCodec(name);
    ASSERT_NE(codec, nullptr) << name;
    EXPECT_EQ(static_cast<int>(codec->id()), id) << name;
  }
  EXPECT_EQ(F16Codec().quality_rank(), 0);
  EXPECT_EQ(F16AnsCodec().quality_rank(), 0);
  // q10 (10-bit K, 9-bit V) sits between the lossless levels and 8-bit q8.
  EXPECT_GT(Q10Codec().quality_rank(), F16Codec().quality_rank());
  EXPECT_LT(Q10Codec().quality_rank(), Q8Codec().quality_rank());
  EXPECT_LT(Q8Codec().quality_rank(), Ans6Codec().quality_rank());
  EXPECT_LT(Ans6Codec().quality_rank(), Ans4Codec().quality_rank());
  EXPECT_LT(Ans4Codec().quality_rank(), Ans3Codec().quality_rank());
  EXPECT_LT(Ans3Codec().quality_rank(), Ans2Codec().quality_rank());
}

TEST(F16AnsCodec, RoundTripIsBitExactOnF16Caches) {
  for (auto [n_head_kv, head_dim] : kHeadShapes) {
    for (auto [begin, end] : kRanges) {
      TestKvCache source(KvElemType::kF16, 3, n_head_kv, head_dim, begin, end, 1);
      source.FillRandom(21 + head_dim);
      Result<std::vector<uint8_t>> payload = F16AnsCodec().Encode(source.slice());
      ASSERT_TRUE(payload.ok()) << payload.status().ToString();
      EXPECT_LE(payload->size(), F16AnsCodec().MaxPayloadBytes(ShapeOf(source.slice())));

      TestKvCache decoded(KvElemType::kF16, 3, n_head_kv, head_dim, begin, end);
      ASSERT_TRUE(F16AnsCodec().Decode(*payload, decoded.slice()).ok());
      for (int32_t l = 0; l < 3; ++l) {
        for (bool is_v : {false, true}) {
          for (int64_t i = 0; i < source.n_elements_per_block(); ++i) {
            ASSERT_EQ(F32ToF16(decoded.Get(l, is_v, i)), F32ToF16(source.Get(l, is_v, i)))
                << "width " << n_head_kv * head_dim << " layer " << l << " element " << i;
          }
        }
      }
    }
  }
}

TEST(F16AnsCodec, IsSmallerThanF16OnRealShapedChunks) {
  // stories260K: 5 layers, 4 KV heads of 8, a 256-token chunk.
  TestKvCache source(KvElemType::kF16, 5, 4, 8, 0, 256);
  source.FillRandom(22);
  Result<std::vector<uint8_t>> payload = F16AnsCodec().Encode(source.slice());
  ASSERT_TRUE(payload.ok());
  EXPECT_LT(payload->size(), F16Codec().MaxPayloadBytes(ShapeOf(source.slice())) * 9 / 10);

  TestKvCache decoded(KvElemType::kF32, 5, 4, 8, 0, 256);
  ASSERT_TRUE(F16AnsCodec().Decode(*payload, decoded.slice()).ok());
  for (int64_t i = 0; i < source.n_elements_per_block(); ++i) {
    ASSERT_EQ(decoded.Get(4, true, i), source.Get(4, true, i)) << i;
  }
}

TEST(LossyLevels, ErrorStaysWithinTheStepBound) {
  for (const Codec* codec : kLossy) {
    for (KvElemType source_elem : kElemTypes) {
      for (KvElemType destination_elem : kElemTypes) {
        for (auto [n_head_kv, head_dim] : kHeadShapes) {
          for (auto [begin, end] : kRanges) {
            const int64_t width = n_head_kv * head_dim;
            const int64_t n_tokens = end - begin;
            TestKvCache source(source_elem, 3, n_head_kv, head_dim, begin, end, 1);
            source.FillRandom(23 + static_cast<uint32_t>(width), 2.0f);
            Result<std::vector<uint8_t>> payload = codec->Encode(source.slice());
            ASSERT_TRUE(payload.ok()) << codec->name() << ": " << payload.status().ToString();
            ASSERT_LE(payload->size(), codec->MaxPayloadBytes(ShapeOf(source.slice())));

            TestKvCache decoded(destination_elem, 3, n_head_kv, head_dim, begin, end);
            ASSERT_TRUE(codec->Decode(*payload, decoded.slice()).ok()) << codec->name();
            double worst_ratio = 0.0;
            for (int32_t l = 0; l < 3; ++l) {
              for (bool is_v : {false, true}) {
                for (int64_t t = 0; t < n_tokens; ++t) {
                  for (int64_t c = 0; c < width; ++c) {
                    const double x = source.Get(l, is_v, t * width + c);
                    const double error = std::fabs(decoded.Get(l, is_v, t * width + c) - x);
                    const double bound = ErrorBound(*codec, source, l, is_v, t, c, n_tokens, width,
                                                    destination_elem);
                    ASSERT_LE(error, bound) << codec->name() << " width " << width << " tokens "
                                            << n_tokens << " layer " << l << (is_v ? " V" : " K")
                                            << " row " << t << " column " << c;
                    worst_ratio = std::max(worst_ratio, error / bound);
                  }
                }
              }
            }
            if (width * n_tokens >= 64 && n_tokens > 1) {  // one token: every K group is exact
              EXPECT_GT(worst_ratio, 0.2) << codec->name() << " width " << width;
            }
          }
        }
      }
    }
  }
}

TEST(LossyLevels, RejectValuesTheyCannotRepresent) {
  for (const Codec* codec : kLossy) {
    for (float bad : {std::numeric_limits<float>::quiet_NaN(),
                      std::numeric_limits<float>::infinity(), -1e10f}) {
      TestKvCache source(KvElemType::kF32, 2, 1, 40, 0, 4);
      source.FillRandom(24);
      source.Set(1, true, 77, bad);
      Result<std::vector<uint8_t>> payload = codec->Encode(source.slice());
      ASSERT_FALSE(payload.ok()) << codec->name() << " " << bad;
      EXPECT_EQ(payload.status().code(), ErrorCode::kInvalidArgument);
      EXPECT_NE(payload.status().message().find("layer 1 V"), std::string::npos)
          << payload.status().message();
    }
  }
}

TEST(AnsLevels, GiveTheFirstLayersMoreBits) {
  TestKvCache source(KvElemType::kF16, 3, 1, 8, 0, 20);
  source.FillRandom(25);
  for (const Codec* codec : {&Ans6Codec(), &Ans4Codec(), &Ans3Codec(), &Ans2Codec()}) {
    Result<std::vector<uint8_t>> payload = codec->Encode(source.slice());
    ASSERT_TRUE(payload.ok());
    // The K block of layer 0 starts right after the version byte and the [3] u32 layer sizes,
    // with its bit width.
    const int base = AnsBaseBits(*codec);
    EXPECT_EQ((*payload)[13], std::min(base + 2, 7)) << codec->name();
    uint32_t layer0_bytes;
    std::memcpy(&layer0_bytes, payload->data() + 1, 4);
    EXPECT_EQ((*payload)[13 + layer0_bytes], base + 1) << codec->name();
  }
}

TEST(AnsLevels, CodeDeltasWhenTokensAreAlike) {
  // Slowly drifting rows: every token is close to its anchor.
  TestKvCache smooth(KvElemType::kF32, 1, 2, 32, 0, 256);
  TestKvCache shuffled(KvElemType::kF32, 1, 2, 32, 0, 256);
  for (int64_t t = 0; t < 256; ++t) {
    for (int64_t c = 0; c < 64; ++c) {
      const float value = std::sin(0.002f * static_cast<float>(t) + static_cast<float>(c));
      smooth.Set(0, false, t * 64 + c, value);
      smooth.Set(0, true, t * 64 + c, value);
      const int64_t u = (t * 97) % 256;  // the same values in another token order
      const float other = std::sin(0.002f * static_cast<float>(u) + static_cast<float>(c));
      shuffled.Set(0, false, t * 64 + c, other);
      shuffled.Set(0, true, t * 64 + c, other);
    }
  }
  Result<std::vector<uint8_t>> smooth_payload = Ans4Codec().Encode(smooth.slice());
  Result<std::vector<uint8_t>> shuffled_payload = Ans4Codec().Encode(shuffled.slice());
  ASSERT_TRUE(smooth_payload.ok());
  ASSERT_TRUE(shuffled_payload.ok());
  // Mode byte of layer 0's K block: after the version, the u32 layer size, the bit width and 64
  // lo/step pairs.
  EXPECT_EQ((*smooth_payload)[1 + 4 + 1 + 4 * 64], 1);
  EXPECT_LT(smooth_payload->size() * 3, shuffled_payload->size() * 2);
}

TEST(EntropyCodedLevels, DamagedPayloadsAreRejectedWithoutWriting) {
  for (const Codec* codec : kEntropyCoded) {
    TestKvCache source(KvElemType::kF16, 2, 2, 40, 0, 24);
    source.FillRandom(26);
    Result<std::vector<uint8_t>> payload = codec->Encode(source.slice());
    ASSERT_TRUE(payload.ok());
    TestKvCache destination(KvElemType::kF32, 2, 2, 40, 0, 24);
    destination.FillBytes(0x5a);
    const std::vector<uint8_t> before = destination.AllBytes();

    for (size_t size = 0; size < payload->size(); size += 1 + size / 16) {
      const std::span<const uint8_t> truncated = std::span(*payload).first(size);
      ASSERT_EQ(codec->Decode(truncated, destination.slice()).code(), ErrorCode::kCorruption)
          << codec->name() << " size " << size;
    }
    std::vector<uint8_t> extended = *payload;
    extended.push_back(0);
    EXPECT_EQ(codec->Decode(extended, destination.slice()).code(), ErrorCode::kCorruption)
        << codec->name();

    // Flips in raw planes or in a step can decode to other values: the blob checksum catches
    // those. Every rejected flip must leave the cache as it was.
    int rejected = 0;
    for (size_t bit = 0; bit < 8 * payload->size(); bit += 29) {
      std::vector<uint8_t> flipped = *payload;
      flipped[bit / 8] ^= static_cast<uint8_t>(1u << (bit % 8));
      TestKvCache target(KvElemType::kF32, 2, 2, 40, 0, 24);
      target.FillBytes(0x5a);
      const Status status = codec->Decode(flipped, target.slice());
      if (!status.ok()) {
        ++rejected;
        ASSERT_EQ(status.code(), ErrorCode::kCorruption) << codec->name() << " bit " << bit;
        ASSERT_EQ(target.AllBytes(), before) << codec->name() << " bit " << bit;
      }
    }
    EXPECT_GT(rejected, 0) << codec->name();
    EXPECT_EQ(destination.AllBytes(), before) << codec->name();
  }
}

}  // namespace
}  // namespace sparkv
