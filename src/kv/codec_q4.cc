// q4: asymmetric 4-bit quantization (kv/quantize.h) with one f16 minimum and step per group.
// Keys vary most between channels because a few outlier channels carry large values in every
// token, so K groups run down one channel across kGroup tokens. Values vary most between tokens,
// so V groups run along one row across kGroup channels.
//
// Payload, per layer, K then V, each block:
//   params  K: [ceil(n_tokens / kGroup)][row_width] pairs (lo f16, step f16)
//           V: [n_tokens][ceil(row_width / kGroup)] pairs (lo f16, step f16)
//   quants  [n_tokens][row_width] 4-bit levels packed two per byte, element i of the block in
//           byte i / 2 (low nibble for even i), ceil(n_tokens * row_width / 2) bytes
// Element error is at most step / 2 of its group, plus f32 rounding.
#include <algorithm>
#include <string>

#include "kv/codec.h"
#include "kv/quantize.h"
#include "kv/row_convert.h"

namespace sparkv {
namespace {

using internal::LoadU16;
using internal::StoreU16;

constexpr int64_t kGroup = 32;
constexpr int kLevels = 16;

int64_t CeilDiv(int64_t a, int64_t b) { return (a + b - 1) / b; }

// Pairs in one block's params.
int64_t ParamCount(const KvShape& shape, bool is_v) {
  return is_v ? shape.n_tokens * CeilDiv(shape.row_width(), kGroup)
              : CeilDiv(shape.n_tokens, kGroup) * shape.row_width();
}

uint64_t BlockBytes(const KvShape& shape, bool is_v) {
  return static_cast<uint64_t>(ParamCount(shape, is_v)) * 4 + (shape.block_elements() + 1) / 2;
}

class Q4CodecImpl final : public Codec {
 public:
  CodecId id() const override { return CodecId::kQ4; }
  std::string_view name() const override { return "q4"; }
  int quality_rank() const override { return 5; }

  uint64_t MaxPayloadBytes(const KvShape& shape) const override {
    return static_cast<uint64_t>(shape.n_layer) * (BlockBytes(shape, false) + BlockBytes(shape, true));
  }

  Result<std::vector<uint8_t>> Encode(const KvSlice& source) const override {
    SPARKV_RETURN_IF_ERROR(CheckSlice(source, "q4 encode source"));
    const KvShape shape = ShapeOf(source);
    const int64_t width = shape.row_width();
    const int64_t n = static_cast<int64_t>(shape.block_elements());

    std::vector<uint8_t> payload(MaxPayloadBytes(shape), 0);
    std::vector<float> values(static_cast<size_t>(n));  // [n_tokens][row_width] f32
    uint8_t* out = payload.data();
    for (int32_t l = 0; l < shape.n_layer; ++l) {
      for (bool is_v : {false, true}) {
        const uint8_t* block = is_v ? source.v[l] : source.k[l];
        internal::RowToF32(source.elem, block, n, values.data());
        uint8_t* params = out;
        uint8_t* quants = out + ParamCount(shape, is_v) * 4;

        // Group g contains elements first + j * stride for j in [0, count).
        const auto quantize_group = [&](int64_t g, int64_t first, int64_t stride,
                                        int64_t count) -> Status {
          float lo = values[first];
          float hi = lo;
          for (int64_t j = 0; j < count; ++j) {
            const float x = values[first + j * stride];
            lo = std::min(lo, x);
            hi = std::max(hi, x);
            if (x != x) lo = x;  // NaN: make ChooseMinStep fail
          }
          internal::MinStep ms;
          if (!internal::ChooseMinStep(lo, hi, kLevels, &ms)) {
            return InvalidArgumentError(
                "q4 encode of layer " + std::to_string(l) + (is_v ? " V" : " K") +
                ": a group starting at row " + std::to_string(source.begin + first / width) +
                " column " + std::to_string(first % width) +
                " holds a value that is not finite or lies outside the f16 range +-65504");
          }
          StoreU16(params + 4 * g, ms.lo);
          StoreU16(params + 4 * g + 2, ms.step);
          const float lo_f = F16ToF32(ms.lo);
          const float step = F16ToF32(ms.step);
          const float inverse = step > 0.0f ? 1.0f / step : 0.0f;
          for (int64_t j = 0; j < count; ++j) {
            const int64_t i = first + j * stride;
            const int q = internal::QuantizeLevel(values[i], lo_f, inverse, kLevels);
            quants[i / 2] |= static_cast<uint8_t>(q << (4 * (i & 1)));
          }
          return Status::Ok();
        };

        if (is_v) {
          const int64_t n_groups = CeilDiv(width, kGroup);
          for (int64_t t = 0; t < shape.n_tokens; ++t) {
            for (int64_t g = 0; g < n_groups; ++g) {
              const int64_t begin = g * kGroup;
              SPARKV_RETURN_IF_ERROR(quantize_group(t * n_groups + g, t * width + begin, 1,
                                                    std::min(kGroup, width - begin)));
            }
          }
        } else {
          for (int64_t tg = 0; tg * kGroup < shape.n_tokens; ++tg) {
            const int64_t count = std::min<int64_t>(kGroup, shape.n_tokens - tg * kGroup);
            for (int64_t c = 0; c < width; ++c) {
              SPARKV_RETURN_IF_ERROR(
                  quantize_group(tg * width + c, tg * kGroup * width + c, width, count));
            }
          }
        }
        out += BlockBytes(shape, is_v);
      }
    }
    return payload;
  }

  Status Decode(std::span<const uint8_t> payload, const KvSlice& destination) const override {
    SPARKV_RETURN_IF_ERROR(CheckSlice(destination, "q4 decode destination"));
    const KvShape shape = ShapeOf(destination);
    const uint64_t expected = MaxPayloadBytes(shape);
    if (payload.size() != expected) {
      return CorruptionError("q4 payload is " + std::to_string(payload.size()) +
                             " bytes; a slice of " + std::to_string(shape.n_layer) + " layers x " +
                             std::to_string(shape.n_tokens) + " tokens x " +
                             std::to_string(shape.row_width()) + " wide needs " +
                             std::to_string(expected));
    }

    // Every lo and step must be finite and every step non-negative, as the encoder writes them;
    // check all of them before the first row changes.
    const uint8_t* in = payload.data();
    for (int32_t l = 0; l < shape.n_layer; ++l) {
      for (bool is_v : {false, true}) {
        const int64_t n_params = ParamCount(shape, is_v);
        for (int64_t p = 0; p < n_params; ++p) {
          const uint16_t lo = LoadU16(in + 4 * p);
          const uint16_t step = LoadU16(in + 4 * p + 2);
          if ((lo & 0x7fff) >= internal::kF16Infinity || step >= internal::kF16Infinity) {
            return CorruptionError("q4 layer " + std::to_string(l) + (is_v ? " V" : " K") +
                                   " group " + std::to_string(p) +
                                   " has a non-finite minimum or a negative or non-finite step");
          }
        }
        in += BlockBytes(shape, is_v);
      }
    }

    const int64_t width = shape.row_width();
    const int64_t n_v_groups = CeilDiv(width, kGroup);
    std::vector<float> lo(static_cast<size_t>(width));    // [row_width] f32, this row's minima
    std::vector<float> step(static_cast<size_t>(width));  // [row_width] f32, this row's steps
    std::vector<float> row(static_cast<size_t>(width));   // [row_width] f32
    std::vector<float> params;                            // [n_params][lo, step] f32 of a block
    in = payload.data();
    for (int32_t l = 0; l < shape.n_layer; ++l) {
      for (bool is_v : {false, true}) {
        uint8_t* block = is_v ? destination.v[l] : destination.k[l];
        // All (lo, step) pairs of the block at once, through the bulk f16 conversion.
        const int64_t n_params = ParamCount(shape, is_v);
        params.resize(static_cast<size_t>(2 * n_params));
        internal::ConvertF16ToF32(in, 2 * n_params, reinterpret_cast<uint8_t*>(params.data()));
        const uint8_t* quants = in + n_params * 4;
        for (int64_t t = 0; t < shape.n_tokens; ++t) {
          // K rows share params with the other rows of their token group: reload on entry only.
          if (is_v || t % kGroup == 0) {
            for (int64_t c = 0; c < width; ++c) {
              const int64_t p = is_v ? t * n_v_groups + c / kGroup : (t / kGroup) * width + c;
              lo[c] = params[2 * p];
              step[c] = params[2 * p + 1];
            }
          }
          const int64_t first = t * width;
          if (width % 2 == 0) {
            // Rows start on a byte: unpack both nibbles of each byte, which vectorizes.
            const uint8_t* bytes = quants + first / 2;
            for (int64_t c = 0; c < width; c += 2) {
              const uint8_t pair = bytes[c / 2];
              row[c] = lo[c] + static_cast<float>(pair & 0xf) * step[c];
              row[c + 1] = lo[c + 1] + static_cast<float>(pair >> 4) * step[c + 1];
            }
          } else {
            for (int64_t c = 0; c < width; ++c) {
              const int64_t i = first + c;
              const int q = (quants[i / 2] >> (4 * (i & 1))) & 0xf;
              row[c] = lo[c] + static_cast<float>(q) * step[c];
            }
          }
          internal::F32ToRow(row.data(), width, destination.elem,
                             block + t * destination.row_bytes());
        }
        in += BlockBytes(shape, is_v);
      }
    }
    return Status::Ok();
  }
};

}  // namespace

const Codec& Q4Codec() {
  static const Q4CodecImpl codec;
  return codec;
}

}  // namespace sparkv
