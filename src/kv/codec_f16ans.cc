// f16ans: lossless like f16, entropy-coded. Each block's f16 values are split into two byte
// planes. The high bytes (sign, exponent, two mantissa bits) repeat a few values and code well.
// The low bytes are close to uniform and usually stay raw.
//
// Payload (kv/layered_payload.h):
//   u8 version (rans::kStreamVersion), layer sizes [n_layer] u32, bytes of each layer's part
//   per layer, K then V, each block: the high-byte run then the low-byte run, each a rans::Run
//   of n_tokens * row_width symbols (alphabet 256) in row-major element order.
#include <algorithm>
#include <cstring>
#include <memory>
#include <string>

#include "kv/codec.h"
#include "kv/layered_payload.h"
#include "kv/parallel.h"
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
    return internal::LayeredHeaderBytes(shape.n_layer) +
           static_cast<uint64_t>(shape.n_layer) * 2 * 2 * (1 + shape.block_elements());
  }

  Result<std::vector<uint8_t>> Encode(const KvSlice& source) const override {
    SPARKV_RETURN_IF_ERROR(CheckSlice(source, "f16ans encode source"));
    const KvShape shape = ShapeOf(source);
    const int64_t n = static_cast<int64_t>(shape.block_elements());

    std::vector<uint8_t> payload;
    internal::StartLayeredPayload(shape.n_layer, payload);
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
      internal::SetLayerBytes(l, static_cast<uint32_t>(payload.size() - layer_start), payload);
    }
    return payload;
  }

  Status Decode(std::span<const uint8_t> payload, const KvSlice& destination) const override {
    return DecodeParallel(payload, destination, 1);
  }

  Status DecodeParallel(std::span<const uint8_t> payload, const KvSlice& destination,
                        int n_threads) const override {
    SPARKV_RETURN_IF_ERROR(CheckSlice(destination, "f16ans decode destination"));
    const KvShape shape = ShapeOf(destination);
    if (payload.size() > MaxPayloadBytes(shape)) {
      return CorruptionError("f16ans payload of " + std::to_string(payload.size()) +
                             " bytes exceeds the bound of " + std::to_string(MaxPayloadBytes(shape)) +
                             " for its shape");
    }
    SPARKV_ASSIGN_OR_RETURN(const std::vector<std::span<const uint8_t>> layers,
                            internal::SplitLayeredPayload(payload, shape.n_layer, "f16ans"));

    // Decode every plane into scratch first, so a damaged layer leaves the cache untouched.
    const auto n = static_cast<size_t>(shape.block_elements());
    const size_t n_blocks = 2 * static_cast<size_t>(shape.n_layer);
    const std::unique_ptr<uint8_t[]> planes(new uint8_t[n_blocks * 2 * n]);  // [block][high, low][n]
    std::vector<Status> parsed(static_cast<size_t>(shape.n_layer));
    internal::ParallelFor(shape.n_layer, n_threads, [&](int64_t l) {
      std::span<const uint8_t> layer = layers[l];
      for (int kv = 0; kv < 2; ++kv) {
        for (int byte : {1, 0}) {
          const std::string label = "f16ans layer " + std::to_string(l) + (kv ? " V" : " K") +
                                    (byte ? " high" : " low") + " bytes";
          uint8_t* plane = planes.get() + ((2 * l + kv) * 2 + (1 - byte)) * n;
          parsed[l] = rans::ReadRun(layer, 256, std::span(plane, n), label);
          if (!parsed[l].ok()) return;
        }
      }
      if (!layer.empty()) {
        parsed[l] = CorruptionError("f16ans layer " + std::to_string(l) + " has " +
                                    std::to_string(layer.size()) + " bytes after its last run");
      }
    });
    for (const Status& status : parsed) SPARKV_RETURN_IF_ERROR(status);

    internal::ParallelFor(static_cast<int64_t>(n_blocks), n_threads, [&](int64_t b) {
      const uint8_t* high = planes.get() + 2 * b * n;
      const uint8_t* low = high + n;
      uint8_t* block = (b % 2 ? destination.v : destination.k)[b / 2];
      const size_t elem_bytes = destination.elem == KvElemType::kF32 ? 4 : 2;
      // Joined a slice at a time in a buffer that stays in L1, then converted into the cache.
      constexpr size_t kSlice = 2048;
      uint16_t f16[kSlice];  // [kSlice] f16
      for (size_t begin = 0; begin < n; begin += kSlice) {
        const size_t count = std::min(kSlice, n - begin);
        for (size_t i = 0; i < count; ++i) {
          f16[i] = static_cast<uint16_t>(high[begin + i] << 8 | low[begin + i]);
        }
        internal::F16ToRow(reinterpret_cast<const uint8_t*>(f16), static_cast<int64_t>(count),
                           destination.elem, block + begin * elem_bytes);
      }
    });
    return Status::Ok();
  }
};

}  // namespace

const Codec& F16AnsCodec() {
  static const F16AnsCodecImpl codec;
  return codec;
}

}  // namespace sparkv
