// f16: the payload is, per layer, K then V, each [n_tokens][row_width] IEEE binary16 little-endian.
// From an f16 cache this is a byte copy (lossless); from an f32 cache values round to nearest even.
#include <cstring>
#include <string>

#include "kv/codec.h"
#include "kv/row_convert.h"

namespace sparkv {
namespace {

class F16CodecImpl final : public Codec {
 public:
  CodecId id() const override { return CodecId::kF16; }
  std::string_view name() const override { return "f16"; }
  int quality_rank() const override { return 0; }

  uint64_t MaxPayloadBytes(const KvShape& shape) const override {
    return static_cast<uint64_t>(shape.n_layer) * 2 * shape.block_elements() * 2;
  }

  Result<std::vector<uint8_t>> Encode(const KvSlice& source) const override {
    SPARKV_RETURN_IF_ERROR(CheckSlice(source, "f16 encode source"));
    const KvShape shape = ShapeOf(source);
    const int64_t width = shape.row_width();
    const size_t block_bytes = shape.block_elements() * 2;

    std::vector<uint8_t> payload(MaxPayloadBytes(shape));
    uint8_t* out = payload.data();
    for (int32_t l = 0; l < shape.n_layer; ++l) {
      for (const uint8_t* block : {source.k[l], source.v[l]}) {
        if (source.elem == KvElemType::kF16) {
          std::memcpy(out, block, block_bytes);  // rows are contiguous: one copy per block
        } else {
          internal::RowToF16(source.elem, block, width * shape.n_tokens, out);
        }
        out += block_bytes;
      }
    }
    return payload;
  }

  Status Decode(std::span<const uint8_t> payload, const KvSlice& destination) const override {
    SPARKV_RETURN_IF_ERROR(CheckSlice(destination, "f16 decode destination"));
    const KvShape shape = ShapeOf(destination);
    const uint64_t expected = MaxPayloadBytes(shape);
    if (payload.size() != expected) {
      return CorruptionError("f16 payload is " + std::to_string(payload.size()) +
                             " bytes; a slice of " + std::to_string(shape.n_layer) + " layers x " +
                             std::to_string(shape.n_tokens) + " tokens x " +
                             std::to_string(shape.row_width()) + " wide needs " +
                             std::to_string(expected));
    }

    const int64_t n_block = static_cast<int64_t>(shape.block_elements());
    const uint8_t* in = payload.data();
    for (int32_t l = 0; l < shape.n_layer; ++l) {
      for (uint8_t* block : {destination.k[l], destination.v[l]}) {
        internal::F16ToRow(in, n_block, destination.elem, block);
        in += n_block * 2;
      }
    }
    return Status::Ok();
  }
};

}  // namespace

const Codec& F16Codec() {
  static const F16CodecImpl codec;
  return codec;
}

}  // namespace sparkv
