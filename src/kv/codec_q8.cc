// q8: 8-bit K and V integers, one f16 scale per group of 32 along the row (kv/group_quant.h).
//
// Payload version 1, the one this build writes, has no version byte: per block the scales, then
// quants [n_tokens][row_width] int8 in [-127, 127]. q8 stays an 8-bit level so that it compares
// with the 8-bit baselines it is named after; q10 is the level with wider fields.
//
// Builds from before q10 existed wrote version 2: u8 version 2, then 10-bit K and 9-bit V fields
// of q + q_max. That is q10's layout under another version byte, and q8 still decodes it. The two
// versions differ in size for every shape, so the size identifies the version.
#include "kv/codec.h"
#include "kv/group_quant.h"

namespace sparkv {
namespace {

using internal::FieldCode;
using internal::GroupQuantLayout;

constexpr GroupQuantLayout kVersion1{"q8", "version 1 (8-bit K and V, no version byte)",
                                     internal::kNoVersionByte, 8, 8, FieldCode::kTwosComplement};
constexpr GroupQuantLayout kVersion2{"q8", "version 2 (10-bit K, 9-bit V)", 2, 10, 9,
                                     FieldCode::kOffset};
constexpr GroupQuantLayout kReadable[] = {kVersion1, kVersion2};

class Q8CodecImpl final : public Codec {
 public:
  CodecId id() const override { return CodecId::kQ8; }
  std::string_view name() const override { return "q8"; }
  int quality_rank() const override { return 2; }

  // Version 2's size, the larger of the two, so that blob headers of either version pass.
  uint64_t MaxPayloadBytes(const KvShape& shape) const override {
    return internal::GroupQuantPayloadBytes(kVersion2, shape);
  }

  Result<std::vector<uint8_t>> Encode(const KvSlice& source) const override {
    return internal::GroupQuantEncode(kVersion1, source);
  }

  Status Decode(std::span<const uint8_t> payload, const KvSlice& destination) const override {
    return internal::GroupQuantDecode(kReadable, payload, destination);
  }
};

}  // namespace

const Codec& Q8Codec() {
  static const Q8CodecImpl codec;
  return codec;
}

}  // namespace sparkv
