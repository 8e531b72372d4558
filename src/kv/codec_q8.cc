// q8: symmetric absmax quantization in groups of kGroup elements along each row.
//
// Payload, per layer, K then V, each block:
//   scales [n_tokens][n_groups] f16 little-endian, n_groups = ceil(row_width / kGroup)
//   quants [n_tokens][row_width] int8 in [-127, 127]
// Element i of group g decodes to quants[i] * scale[g]. The encoder picks the smallest f16 scale
// s >= absmax / 127, so |q| <= 127 and the error per element is at most s / 2 (plus one
// f32 rounding), i.e. about absmax(group) / 254. The last group of a row may be shorter.
#include <algorithm>
#include <cmath>
#include <string>

#include "kv/codec.h"
#include "common/f16.h"
#include "kv/row_convert.h"

namespace sparkv {
namespace {

constexpr int64_t kGroup = 32;
constexpr uint16_t kF16Infinity = 0x7c00;

int64_t GroupCount(int64_t row_width) { return (row_width + kGroup - 1) / kGroup; }

class Q8CodecImpl final : public Codec {
 public:
  CodecId id() const override { return CodecId::kQ8; }
  std::string_view name() const override { return "q8"; }
  int quality_rank() const override { return 1; }

  uint64_t MaxPayloadBytes(const KvShape& shape) const override {
    const uint64_t row_bytes =
        static_cast<uint64_t>(GroupCount(shape.row_width())) * 2 + shape.row_width();
    return static_cast<uint64_t>(shape.n_layer) * 2 * shape.n_tokens * row_bytes;
  }

  Result<std::vector<uint8_t>> Encode(const KvSlice& source) const override {
    SPARKV_RETURN_IF_ERROR(CheckSlice(source, "q8 encode source"));
    const KvShape shape = ShapeOf(source);
    const int64_t width = shape.row_width();
    const int64_t n_groups = GroupCount(width);

    std::vector<uint8_t> payload(MaxPayloadBytes(shape));
    std::vector<float> row(static_cast<size_t>(width));  // [row_width] f32
    uint8_t* out = payload.data();
    for (int32_t l = 0; l < shape.n_layer; ++l) {
      for (int kv = 0; kv < 2; ++kv) {
        const uint8_t* block = kv == 0 ? source.k[l] : source.v[l];
        uint8_t* scales = out;
        auto* quants = reinterpret_cast<int8_t*>(out + shape.n_tokens * n_groups * 2);
        for (int32_t t = 0; t < shape.n_tokens; ++t) {
          internal::RowToF32(source.elem, block + t * source.row_bytes(), width, row.data());
          for (int64_t g = 0; g < n_groups; ++g) {
            const int64_t begin = g * kGroup;
            const int64_t end = std::min(begin + kGroup, width);
            const uint16_t scale =
                QuantizeGroup(row.data() + begin, end - begin, quants + t * width + begin);
            if (scale >= kF16Infinity) {
              return InvalidArgumentError(
                  "q8 encode of layer " + std::to_string(l) + (kv == 0 ? " K" : " V") + " row " +
                  std::to_string(source.begin + t) + ": " +
                  UnencodableReason(row.data() + begin, end - begin));
            }
            std::memcpy(scales + (t * n_groups + g) * 2, &scale, 2);
          }
        }
        out += shape.n_tokens * (n_groups * 2 + width);
      }
    }
    return payload;
  }

  Status Decode(std::span<const uint8_t> payload, const KvSlice& destination) const override {
    SPARKV_RETURN_IF_ERROR(CheckSlice(destination, "q8 decode destination"));
    const KvShape shape = ShapeOf(destination);
    const uint64_t expected = MaxPayloadBytes(shape);
    if (payload.size() != expected) {
      return CorruptionError("q8 payload is " + std::to_string(payload.size()) +
                             " bytes; a slice of " + std::to_string(shape.n_layer) + " layers x " +
                             std::to_string(shape.n_tokens) + " tokens x " +
                             std::to_string(shape.row_width()) + " wide needs " +
                             std::to_string(expected));
    }

    const int64_t width = shape.row_width();
    const int64_t n_groups = GroupCount(width);
    const int64_t n_scales = shape.n_tokens * n_groups;
    const int64_t block_bytes = n_scales * 2 + shape.n_tokens * width;

    // First pass: every scale must be one the encoder can produce (finite, not negative), so a
    // payload is rejected before any cache row changes.
    for (int64_t b = 0; b < 2 * shape.n_layer; ++b) {
      const uint8_t* scales = payload.data() + b * block_bytes;
      for (int64_t i = 0; i < n_scales; ++i) {
        uint16_t h;
        std::memcpy(&h, scales + 2 * i, 2);
        if (h >= kF16Infinity) {
          return CorruptionError("q8 scale " + std::to_string(i) + " of block " +
                                 std::to_string(b) + " is 0x" + HexU16(h) +
                                 ", not a finite non-negative f16");
        }
      }
    }

    std::vector<float> row(static_cast<size_t>(width));  // [row_width] f32
    const uint8_t* in = payload.data();
    for (int32_t l = 0; l < shape.n_layer; ++l) {
      for (uint8_t* block : {destination.k[l], destination.v[l]}) {
        const uint8_t* scales = in;
        const auto* quants = reinterpret_cast<const int8_t*>(in + n_scales * 2);
        for (int32_t t = 0; t < shape.n_tokens; ++t) {
          const int8_t* q = quants + t * width;
          for (int64_t g = 0; g < n_groups; ++g) {
            uint16_t h;
            std::memcpy(&h, scales + (t * n_groups + g) * 2, 2);
            const float scale = F16ToF32(h);
            const int64_t end = std::min((g + 1) * kGroup, width);
            for (int64_t i = g * kGroup; i < end; ++i) row[i] = static_cast<float>(q[i]) * scale;
          }
          internal::F32ToRow(row.data(), width, destination.elem,
                             block + t * destination.row_bytes());
        }
        in += block_bytes;
      }
    }
    return Status::Ok();
  }

 private:
  // Writes n quants for values [n] f32 and returns the group's f16 scale, or a value >=
  // kF16Infinity when the group contains NaN or infinity or its absmax is past 127 * 65504.
  static uint16_t QuantizeGroup(const float* values, int64_t n, int8_t* quants) {
    // For non-negative floats the bit patterns order like the values, and NaN and infinity sort
    // above every finite value. So an integer max is exact, and it vectorizes without fast-math.
    uint32_t absmax_bits = 0;
    for (int64_t i = 0; i < n; ++i) {
      uint32_t bits;
      std::memcpy(&bits, &values[i], 4);
      absmax_bits = std::max(absmax_bits, bits & 0x7fffffffu);
    }
    if (absmax_bits > 0x7f7fffffu) return kF16Infinity;  // above FLT_MAX: NaN or infinity
    float absmax;
    std::memcpy(&absmax, &absmax_bits, 4);

    // Round the scale up to the next f16 so that absmax / scale <= 127 after rounding.
    const float minimum_scale = absmax / 127.0f;
    uint16_t h = F32ToF16(minimum_scale);
    if (F16ToF32(h) < minimum_scale) ++h;  // positive f16 bit patterns increase with their value
    if (h >= kF16Infinity) return kF16Infinity;

    const float scale = F16ToF32(h);
    const float inverse = scale > 0.0f ? 1.0f / scale : 0.0f;
    // Adding and subtracting 1.5 * 2^23 rounds |x| < 2^22 to the nearest integer, ties to even,
    // in the default rounding mode: nearbyint without a library call.
    constexpr float kRound = 12582912.0f;
    for (int64_t i = 0; i < n; ++i) {
      const float q = (values[i] * inverse + kRound) - kRound;
      quants[i] = static_cast<int8_t>(std::clamp(q, -127.0f, 127.0f));
    }
    return h;
  }

  // Explains why QuantizeGroup rejected values [n] f32, for the error message.
  static std::string UnencodableReason(const float* values, int64_t n) {
    for (int64_t i = 0; i < n; ++i) {
      if (!std::isfinite(values[i])) {
        return "element " + std::to_string(i) + " of its group is " + std::to_string(values[i]) +
               "; q8 encodes finite values only";
      }
    }
    return "a group's absmax exceeds 127 * 65504, past the range of an f16 scale";
  }

  static std::string HexU16(uint16_t value) {
    static constexpr char kDigits[] = "0123456789abcdef";
    std::string text(4, '0');
    for (int i = 0; i < 4; ++i) text[3 - i] = kDigits[(value >> (4 * i)) & 0xf];
    return text;
  }
};

}  // namespace

const Codec& Q8Codec() {
  static const Q8CodecImpl codec;
  return codec;
}

}  // namespace sparkv
