// f16ans: lossless like f16, entropy-coded. Each block's f16 values are split into two byte
// planes. The high bytes (sign, exponent, two mantissa bits) repeat a few values and code well.
// The low bytes are close to uniform and usually stay raw.
//
// Payload:
//   layer sizes  [n_layer] u32, bytes of each layer's part, so layers can be decoded apart
//   per layer, K then V, each block: the high-byte run then the low-byte run, each a rans::Run
//   of n_tokens * row_width symbols (alphabet 256) in row-major element order.
#include <cstring>
#include <string>

#include "kv/codec.h"
#include "kv/rans.h"
#include "kv/row_convert.h"

namespace sparkv {
namespace {

class F16AnsCodecImpl final : public Codec {
 public:
  CodecId id() const override { return CodecId::kF16Ans; }
  std::string_view name() const override { return "f16ans"; }
  int quality_rank() const override { return 0; }

  uint64_t MaxPayloadBytes(const KvShape& shape) const override {
    // A run is never longer than its raw form: one kind byte plus one byte per symbol.
    return static_cast<uint64_t>(shape.n_layer) * (4 + 2 * 2 * (1 + shape.block_elements()));
  }

  Result<std::vector<uint8_t>> Encode(const KvSlice& source) const override {
    SPARKV_RETURN_IF_ERROR(CheckSlice(source, "f16ans encode source"));
    const KvShape shape = ShapeOf(source);
    const int64_t n = static_cast<int64_t>(shape.block_elements());

    std::vector<uint8_t> payload(4 * static_cast<size_t>(shape.n_layer));
    payload.reserve(MaxPayloadBytes(shape));
    std::vector<uint8_t> f16(2 * static_cast<size_t>(n));  // [n] f16 bytes of one block
    std::vector<uint8_t> plane(static_cast<size_t>(n));   // [n] one byte of each f16
    for (int32_t l = 0; l < shape.n_layer; ++l) {
      const size_t layer_start = payload.size();
      for (const uint8_t* block : {source.k[l], source.v[l]}) {
        internal::RowToF16(source.elem, block, n, f16.data());
        for (int byte : {1, 0}) {
          for (int64_t i = 0; i < n; ++i) plane[i] = f16[2 * i + byte];
          rans::AppendRun(plane, 256, payload);
        }
      }
      const auto layer_bytes = static_cast<uint32_t>(payload.size() - layer_start);
      std::memcpy(payload.data() + 4 * l, &layer_bytes, 4);
    }
    return payload;
  }

  Status Decode(std::span<const uint8_t> payload, const KvSlice& destination) const override {
    SPARKV_RETURN_IF_ERROR(CheckSlice(destination, "f16ans decode destination"));
    const KvShape shape = ShapeOf(destination);
    const int64_t n = static_cast<int64_t>(shape.block_elements());
    const size_t index_bytes = 4 * static_cast<size_t>(shape.n_layer);
    if (payload.size() < index_bytes || payload.size() > MaxPayloadBytes(shape)) {
      return CorruptionError("f16ans payload of " + std::to_string(payload.size()) +
                             " bytes is outside [" + std::to_string(index_bytes) + ", " +
                             std::to_string(MaxPayloadBytes(shape)) + "] for its shape");
    }

    // Decode every plane into scratch first, so a damaged layer leaves the cache untouched.
    std::vector<uint8_t> f16(static_cast<size_t>(shape.n_layer) * 4 * n);  // [n_layer][K, V][n] f16
    std::vector<uint8_t> plane(static_cast<size_t>(n));                   // [n] one byte plane
    std::span<const uint8_t> in = payload.subspan(index_bytes);
    for (int32_t l = 0; l < shape.n_layer; ++l) {
      uint32_t layer_bytes;
      std::memcpy(&layer_bytes, payload.data() + 4 * l, 4);
      if (layer_bytes > in.size()) {
        return CorruptionError("f16ans layer " + std::to_string(l) + " size " +
                               std::to_string(layer_bytes) + " exceeds the " +
                               std::to_string(in.size()) + " payload bytes that remain");
      }
      std::span<const uint8_t> layer = in.first(layer_bytes);
      for (int kv = 0; kv < 2; ++kv) {
        uint8_t* out = f16.data() + (2 * static_cast<size_t>(l) + kv) * 2 * n;
        for (int byte : {1, 0}) {
          const std::string label = "f16ans layer " + std::to_string(l) + (kv ? " V" : " K") +
                                    (byte ? " high" : " low") + " bytes";
          SPARKV_RETURN_IF_ERROR(rans::ReadRun(layer, 256, plane, label));
          for (int64_t i = 0; i < n; ++i) out[2 * i + byte] = plane[i];
        }
      }
      if (!layer.empty()) {
        return CorruptionError("f16ans layer " + std::to_string(l) + " has " +
                               std::to_string(layer.size()) + " bytes after its last run");
      }
      in = in.subspan(layer_bytes);
    }
    if (!in.empty()) {
      return CorruptionError("f16ans payload has " + std::to_string(in.size()) +
                             " bytes after its last layer");
    }

    for (int32_t l = 0; l < shape.n_layer; ++l) {
      internal::F16ToRow(f16.data() + 4 * static_cast<size_t>(l) * n, n, destination.elem,
                         destination.k[l]);
      internal::F16ToRow(f16.data() + (4 * static_cast<size_t>(l) + 2) * n, n, destination.elem,
                         destination.v[l]);
    }
    return Status::Ok();
  }
};

}  // namespace

const Codec& F16AnsCodec() {
  static const F16AnsCodecImpl codec;
  return codec;
}

}  // namespace sparkv
