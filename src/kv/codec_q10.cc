// q10: 10-bit K and 9-bit V integers, one f16 scale per group of 32 along the row
// (kv/group_quant.h).
//
// Payload version 1: u8 version 1, then per block the scales and rows of packed fields of
// q + q_max. On stories260K, 8-bit K and V (q8) change the top-1 token at about 2% of positions.
// Keys need about 10 bits and values 9 before that falls to 0.5%, and most of the remaining
// changes are near-ties. docs/benchmarks.md has the measurements.
#include "kv/codec.h"
#include "kv/group_quant.h"

namespace sparkv {
namespace {

constexpr internal::GroupQuantLayout kVersion1{"q10", "version 1", 1, 10, 9,
                                               internal::FieldCode::kOffset};

class Q10CodecImpl final : public Codec {
 public:
  CodecId id() const override { return CodecId::kQ10; }
  std::string_view name() const override { return "q10"; }
  int quality_rank() const override { return 1; }

  uint64_t MaxPayloadBytes(const KvShape& shape) const override {
    return internal::GroupQuantPayloadBytes(kVersion1, shape);
  }

  Result<std::vector<uint8_t>> Encode(const KvSlice& source) const override {
    return internal::GroupQuantEncode(kVersion1, source);
  }

  Status Decode(std::span<const uint8_t> payload, const KvSlice& destination) const override {
    return internal::GroupQuantDecode(std::span(&kVersion1, 1), payload, destination);
  }
};

}  // namespace

const Codec& Q10Codec() {
  static const Q10CodecImpl codec;
  return codec;
}

}  // namespace sparkv
