#include "kv/blob.h"

#include <gtest/gtest.h>

#include <cstring>
#include <limits>

#include "kv/format.h"
#include "kv_test_cache.h"

namespace sparkv {
namespace {

using testing::TestKvCache;

// Offsets from the header table in kv/blob.h and docs/formats.md.
constexpr size_t kVersionAt = 8;
constexpr size_t kCodecAt = 12;
constexpr size_t kElemAt = 14;
constexpr size_t kFingerprintAt = 16;
constexpr size_t kKeyAt = 32;
constexpr size_t kBeginAt = 48;
constexpr size_t kEndAt = 52;
constexpr size_t kLayerAt = 56;
constexpr size_t kHeadKvAt = 60;
constexpr size_t kHeadDimAt = 64;
constexpr size_t kPayloadBytesAt = 72;
constexpr size_t kHeaderChecksumAt = 88;

constexpr int32_t kLayers = 3;
constexpr int32_t kHeads = 2;
constexpr int32_t kHeadDim = 12;
constexpr int32_t kBegin = 256;
constexpr int32_t kEnd = 301;

const BlobIdentity kIdentity{Hash128{0x1111, 0x2222}, Hash128{0xabcdef, 0x123456}, kBegin, kEnd};

template <typename T>
void Poke(std::vector<uint8_t>* blob, size_t at, T value) {
  std::memcpy(blob->data() + at, &value, sizeof(T));
}

template <typename T>
T Peek(const std::vector<uint8_t>& blob, size_t at) {
  T value;
  std::memcpy(&value, blob.data() + at, sizeof(T));
  return value;
}

// Recomputes the header checksum, so that a test reaches the check behind it.
void Reseal(std::vector<uint8_t>* blob) {
  Poke(blob, kHeaderChecksumAt, Checksum64(blob->data(), kHeaderChecksumAt));
}

class BlobTest : public ::testing::Test {
 protected:
  void SetUp() override {
    source_.FillRandom(21);
    Result<std::vector<uint8_t>> blob = EncodeBlob(Q8Codec(), kIdentity, source_.slice());
    ASSERT_TRUE(blob.ok()) << blob.status().ToString();
    blob_ = std::move(blob).value();
    destination_.FillBytes(0x5a);
  }

  BlobExpectation Expected() const { return BlobExpectation{kIdentity, CodecId::kQ8, kLayers, kHeads, kHeadDim}; }

  // Decodes `blob` into a destination filled with a sentinel; returns the status and checks that
  // a failure left every destination byte as it was.
  Status DecodeExpectingUntouchedOnError(const std::vector<uint8_t>& blob,
                                         const BlobExpectation& expected) {
    const std::vector<uint8_t> before = destination_.AllBytes();
    const Status status = DecodeBlob(blob, expected, destination_.slice());
    if (!status.ok()) {
      EXPECT_EQ(destination_.AllBytes(), before) << "a rejected blob wrote into the cache: " << status.ToString();
    }
    return status;
  }

  TestKvCache source_{KvElemType::kF16, kLayers, kHeads, kHeadDim, kBegin, kEnd};
  TestKvCache destination_{KvElemType::kF32, kLayers, kHeads, kHeadDim, kBegin, kEnd};
  std::vector<uint8_t> blob_;
};

TEST_F(BlobTest, RoundTripMatchesTheCodecItself) {
  for (const Codec* codec : AllCodecs()) {
    Result<std::vector<uint8_t>> blob = EncodeBlob(*codec, kIdentity, source_.slice());
    ASSERT_TRUE(blob.ok());
    const BlobExpectation expected = ExpectationFor(kIdentity, codec->id(), destination_.slice());
    ASSERT_TRUE(DecodeBlob(*blob, expected, destination_.slice()).ok()) << codec->name();

    Result<std::vector<uint8_t>> payload = codec->Encode(source_.slice());
    ASSERT_TRUE(payload.ok());
    TestKvCache direct(KvElemType::kF32, kLayers, kHeads, kHeadDim, kBegin, kEnd);
    ASSERT_TRUE(codec->Decode(*payload, direct.slice()).ok());
    EXPECT_EQ(destination_.AllBytes(), direct.AllBytes()) << codec->name();
    EXPECT_EQ(blob->size(), kBlobHeaderBytes + payload->size());
  }
}

TEST_F(BlobTest, HeaderFieldsSitAtTheDocumentedOffsets) {
  EXPECT_EQ(std::memcmp(blob_.data(), "SPKVBLOB", 8), 0);
  EXPECT_EQ(Peek<uint32_t>(blob_, kVersionAt), kFormatVersion);
  EXPECT_EQ(Peek<uint16_t>(blob_, kCodecAt), 2);
  EXPECT_EQ(blob_[kElemAt], static_cast<uint8_t>(KvElemType::kF16));
  EXPECT_EQ(Peek<uint64_t>(blob_, kFingerprintAt), kIdentity.model_fingerprint.high);
  EXPECT_EQ(Peek<uint64_t>(blob_, kFingerprintAt + 8), kIdentity.model_fingerprint.low);
  EXPECT_EQ(Peek<uint64_t>(blob_, kKeyAt), kIdentity.chunk_key.high);
  EXPECT_EQ(Peek<uint64_t>(blob_, kKeyAt + 8), kIdentity.chunk_key.low);
  EXPECT_EQ(Peek<int32_t>(blob_, kBeginAt), kBegin);
  EXPECT_EQ(Peek<int32_t>(blob_, kEndAt), kEnd);
  EXPECT_EQ(Peek<int32_t>(blob_, kLayerAt), kLayers);
  EXPECT_EQ(Peek<int32_t>(blob_, kHeadKvAt), kHeads);
  EXPECT_EQ(Peek<int32_t>(blob_, kHeadDimAt), kHeadDim);
  EXPECT_EQ(Peek<uint64_t>(blob_, kPayloadBytesAt), blob_.size() - kBlobHeaderBytes);
  EXPECT_EQ(Peek<uint64_t>(blob_, 80), Checksum64(blob_.data() + 96, blob_.size() - 96));
  EXPECT_EQ(Peek<uint64_t>(blob_, 88), Checksum64(blob_.data(), 88));
}

TEST_F(BlobTest, ParseBlobHeaderReadsEveryField) {
  Result<BlobHeader> header = ParseBlobHeader(blob_);
  ASSERT_TRUE(header.ok()) << header.status().ToString();
  EXPECT_EQ(header->format_version, kFormatVersion);
  EXPECT_EQ(header->codec, CodecId::kQ8);
  EXPECT_EQ(header->source_elem, KvElemType::kF16);
  EXPECT_EQ(header->identity.model_fingerprint, kIdentity.model_fingerprint);
  EXPECT_EQ(header->identity.chunk_key, kIdentity.chunk_key);
  EXPECT_EQ(header->identity.begin, kBegin);
  EXPECT_EQ(header->identity.end, kEnd);
  EXPECT_EQ(header->shape(), (KvShape{kLayers, kHeads, kHeadDim, kEnd - kBegin}));
  EXPECT_EQ(header->payload_bytes, blob_.size() - kBlobHeaderBytes);

  // The header alone parses: a reader may look at it before the payload arrives.
  const std::vector<uint8_t> header_only(blob_.begin(), blob_.begin() + kBlobHeaderBytes);
  EXPECT_TRUE(ParseBlobHeader(header_only).ok());
}

TEST_F(BlobTest, TruncatedAtEveryLengthIsCorruption) {
  for (size_t length = 0; length < blob_.size(); ++length) {
    const std::vector<uint8_t> truncated(blob_.begin(), blob_.begin() + length);
    const Status status = DecodeExpectingUntouchedOnError(truncated, Expected());
    ASSERT_EQ(status.code(), ErrorCode::kCorruption) << "length " << length << ": " << status.ToString();
    if (length < kBlobHeaderBytes) {
      EXPECT_EQ(ParseBlobHeader(truncated).status().code(), ErrorCode::kCorruption) << length;
    }
  }
}

TEST_F(BlobTest, TrailingBytesAreCorruption) {
  std::vector<uint8_t> longer = blob_;
  longer.push_back(0);
  const Status status = DecodeExpectingUntouchedOnError(longer, Expected());
  EXPECT_EQ(status.code(), ErrorCode::kCorruption);
  EXPECT_NE(status.message().find("trailing"), std::string::npos) << status.message();
}

TEST_F(BlobTest, WrongMagicIsCorruption) {
  for (size_t i = 0; i < 8; ++i) {
    std::vector<uint8_t> damaged = blob_;
    damaged[i] ^= 0x20;
    const Status status = DecodeExpectingUntouchedOnError(damaged, Expected());
    EXPECT_EQ(status.code(), ErrorCode::kCorruption) << i;
    EXPECT_NE(status.message().find("magic"), std::string::npos) << status.message();
  }
}

TEST_F(BlobTest, OtherFormatVersionIsUnsupported) {
  for (uint32_t version : {0u, kFormatVersion + 1, 0xffffffffu}) {
    std::vector<uint8_t> damaged = blob_;
    Poke(&damaged, kVersionAt, version);
    Reseal(&damaged);
    const Status status = DecodeExpectingUntouchedOnError(damaged, Expected());
    EXPECT_EQ(status.code(), ErrorCode::kUnsupported) << version;
    EXPECT_NE(status.message().find(std::to_string(version)), std::string::npos) << status.message();
  }
}

TEST_F(BlobTest, UnknownCodecIdIsUnsupported) {
  for (uint16_t id : {uint16_t{0}, uint16_t{999}, uint16_t{0xffff}}) {
    std::vector<uint8_t> damaged = blob_;
    Poke(&damaged, kCodecAt, id);
    Reseal(&damaged);
    const Status status = DecodeExpectingUntouchedOnError(damaged, Expected());
    EXPECT_EQ(status.code(), ErrorCode::kUnsupported) << id;
    EXPECT_NE(status.message().find("codec id " + std::to_string(id)), std::string::npos) << status.message();
  }
}

TEST_F(BlobTest, FlippedHeaderByteIsRejected) {
  for (size_t i = 8; i < kBlobHeaderBytes; ++i) {
    std::vector<uint8_t> damaged = blob_;
    damaged[i] ^= 0x01;
    const Status status = DecodeExpectingUntouchedOnError(damaged, Expected());
    EXPECT_FALSE(status.ok()) << "byte " << i;
  }
}

TEST_F(BlobTest, FlippedPayloadByteAnywhereFailsTheChecksum) {
  for (size_t i = kBlobHeaderBytes; i < blob_.size(); ++i) {
    std::vector<uint8_t> damaged = blob_;
    damaged[i] ^= 0x80;
    const Status status = DecodeExpectingUntouchedOnError(damaged, Expected());
    ASSERT_EQ(status.code(), ErrorCode::kCorruption) << "byte " << i;
    ASSERT_NE(status.message().find("checksum"), std::string::npos) << status.message();
  }
}

TEST_F(BlobTest, WrongFingerprintIsMismatchNamingBothValues) {
  BlobExpectation expected = Expected();
  expected.identity.model_fingerprint.low ^= 1;
  const Status status = DecodeExpectingUntouchedOnError(blob_, expected);
  EXPECT_EQ(status.code(), ErrorCode::kMismatch);
  EXPECT_NE(status.message().find("model fingerprint"), std::string::npos) << status.message();
  EXPECT_NE(status.message().find(expected.identity.model_fingerprint.Hex()), std::string::npos);
  EXPECT_NE(status.message().find(kIdentity.model_fingerprint.Hex()), std::string::npos);
}

TEST_F(BlobTest, WrongChunkKeyIsMismatch) {
  BlobExpectation expected = Expected();
  expected.identity.chunk_key.high ^= 1;
  const Status status = DecodeExpectingUntouchedOnError(blob_, expected);
  EXPECT_EQ(status.code(), ErrorCode::kMismatch);
  EXPECT_NE(status.message().find("chunk key"), std::string::npos) << status.message();
  EXPECT_NE(status.message().find(expected.identity.chunk_key.Hex()), std::string::npos);
}

TEST_F(BlobTest, WrongRangeCodecOrShapeIsMismatch) {
  struct Case {
    const char* field;
    void (*change)(BlobExpectation*);
  };
  const Case cases[] = {
      {"token range", [](BlobExpectation* e) { e->identity.begin += 1; }},
      {"token range", [](BlobExpectation* e) { e->identity.end -= 1; }},
      {"codec is q8 (id 2) but f16 (id 1)", [](BlobExpectation* e) { e->codec = CodecId::kF16; }},
      {"shape", [](BlobExpectation* e) { e->n_layer += 1; }},
      {"shape", [](BlobExpectation* e) { e->n_head_kv = 1; }},
      {"shape", [](BlobExpectation* e) { e->head_dim = 24; }},
  };
  for (const Case& c : cases) {
    BlobExpectation expected = Expected();
    c.change(&expected);
    const Status status = DecodeExpectingUntouchedOnError(blob_, expected);
    EXPECT_EQ(status.code(), ErrorCode::kMismatch) << c.field;
    EXPECT_NE(status.message().find(c.field), std::string::npos) << status.message();
  }
}

TEST_F(BlobTest, DestinationOfAnotherShapeIsInvalidArgument) {
  TestKvCache smaller(KvElemType::kF32, kLayers, kHeads, kHeadDim, kBegin, kEnd - 1);
  EXPECT_EQ(DecodeBlob(blob_, Expected(), smaller.slice()).code(), ErrorCode::kInvalidArgument);
  TestKvCache fewer_layers(KvElemType::kF32, kLayers - 1, kHeads, kHeadDim, kBegin, kEnd);
  EXPECT_EQ(DecodeBlob(blob_, Expected(), fewer_layers.slice()).code(), ErrorCode::kInvalidArgument);
}

TEST_F(BlobTest, OverflowingPayloadSizeIsCorruption) {
  const uint64_t actual = blob_.size() - kBlobHeaderBytes;
  for (uint64_t size : {std::numeric_limits<uint64_t>::max(), uint64_t{1} << 63,
                        std::numeric_limits<uint64_t>::max() - kBlobHeaderBytes + 1, actual + 1,
                        actual - 1, uint64_t{0}}) {
    std::vector<uint8_t> damaged = blob_;
    Poke(&damaged, kPayloadBytesAt, size);
    Reseal(&damaged);
    const Status status = DecodeExpectingUntouchedOnError(damaged, Expected());
    EXPECT_EQ(status.code(), ErrorCode::kCorruption) << size << ": " << status.ToString();
  }
}

TEST_F(BlobTest, AbsurdShapeFieldsAreCorruption) {
  struct Case {
    size_t at;
    int32_t value;
  };
  const Case cases[] = {
      {kLayerAt, 0},          {kLayerAt, -1},        {kLayerAt, std::numeric_limits<int32_t>::max()},
      {kHeadKvAt, 0},         {kHeadKvAt, -3},       {kHeadDimAt, 1 << 30},
      {kBeginAt, -1},         {kBeginAt, kEnd},      {kBeginAt, std::numeric_limits<int32_t>::min()},
      {kEndAt, kBegin},       {kEndAt, std::numeric_limits<int32_t>::max()},
  };
  for (const Case& c : cases) {
    std::vector<uint8_t> damaged = blob_;
    Poke(&damaged, c.at, c.value);
    Reseal(&damaged);
    const Status status = DecodeExpectingUntouchedOnError(damaged, Expected());
    EXPECT_EQ(status.code(), ErrorCode::kCorruption) << "offset " << c.at << " value " << c.value
                                                     << ": " << status.ToString();
  }
}

TEST_F(BlobTest, ReservedFieldsAndUnknownElementTypeAreCorruption) {
  for (size_t at : {size_t{15}, size_t{68}, size_t{71}, kElemAt}) {
    std::vector<uint8_t> damaged = blob_;
    damaged[at] = 7;
    Reseal(&damaged);
    EXPECT_EQ(ParseBlobHeader(damaged).status().code(), ErrorCode::kCorruption) << at;
  }
}

TEST_F(BlobTest, EncodeRejectsIdentityOutsideTheSlice) {
  BlobIdentity shifted = kIdentity;
  shifted.begin += 1;
  EXPECT_EQ(EncodeBlob(F16Codec(), shifted, source_.slice()).status().code(), ErrorCode::kInvalidArgument);
}

}  // namespace
}  // namespace sparkv
