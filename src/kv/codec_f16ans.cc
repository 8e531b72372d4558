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
    // Where each plane's bytes are: in `planes`, or inside the payload for a raw run.
    std::vector<const uint8_t*> plane_at(2 * n_blocks);  // [block][high, low]
    std::vector<Status> parsed(static_cast<size_t>(shape.n_layer));
    internal::ParallelFor(shape.n_layer, n_threads, [&](int64_t l) {
      parsed[l] = DecodeLayer(l, layers[l], n, planes.get() + 4 * l * n, plane_at.data() + 4 * l);
    });
    for (const Status& status : parsed) SPARKV_RETURN_IF_ERROR(status);

    internal::ParallelFor(static_cast<int64_t>(n_blocks), n_threads, [&](int64_t b) {
      const uint8_t* high = plane_at[2 * b];
      const uint8_t* low = plane_at[2 * b + 1];
      uint8_t* block = (b % 2 ? destination.v : destination.k)[b / 2];
      internal::JoinF16Planes(low, high, static_cast<int64_t>(n), destination.elem, block);
    });
    return Status::Ok();
  }

 private:
  // Decodes layer l's part into its four planes ([K, V][high, low][n] at `planes`), the coded
  // runs together (rans::RunBatch), and points plane_at[0, 4) at the planes' bytes: in `planes`,
  // or inside `layer` for a raw run, which is not copied.
  static Status DecodeLayer(int64_t l, std::span<const uint8_t> layer, size_t n, uint8_t* planes,
                            const uint8_t** plane_at) {
    rans::RunBatch batch;
    Status parse_status;
    for (int kv = 0; kv < 2 && parse_status.ok(); ++kv) {
      for (int byte : {1, 0}) {
        std::string label = "f16ans layer " + std::to_string(l) + (kv ? " V" : " K") +
                            (byte ? " high" : " low") + " bytes";
        const int k = 2 * kv + (1 - byte);
        uint8_t* plane = planes + k * n;
        const uint8_t* raw = nullptr;
        parse_status = batch.Add(layer, 256, std::span(plane, n), std::move(label), &raw);
        if (!parse_status.ok()) break;
        plane_at[k] = raw != nullptr ? raw : plane;
      }
    }
    for (const Status& status : batch.Finish()) SPARKV_RETURN_IF_ERROR(status);
    SPARKV_RETURN_IF_ERROR(parse_status);
    if (!layer.empty()) {
      return CorruptionError("f16ans layer " + std::to_string(l) + " has " +
                             std::to_string(layer.size()) + " bytes after its last run");
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
