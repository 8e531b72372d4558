// q8: symmetric absmax quantization in groups of kGroup elements along each row.
//
// Payload version 2, the one this build writes:
//   u8 version = 2
//   per layer, K then V, each block:
//     scales [n_tokens][n_groups] f16 little-endian, n_groups = ceil(row_width / kGroup)
//     quants [n_tokens] rows of ceil(row_width * b / 8) bytes. Element i of a row is the b-bit
//            field at bits [i * b, (i + 1) * b) of its row, least significant bit first, holding
//            q + q_max; b = 10 for K and 9 for V, q_max = 2^(b-1) - 1, q in [-q_max, q_max].
// Version 1 (no version byte): the same blocks with b = 8 for both and quants stored as int8
// [n_tokens][row_width]. Its size differs from version 2's for every shape, so a reader tells the
// two apart by size and still decodes version 1.
//
// Element i of group g decodes to q * scale[g]. The encoder picks the smallest f16 scale
// s >= absmax / q_max, so |q| <= q_max and the error per element is at most s / 2 (plus one f32
// rounding), about absmax(group) / (2 q_max). The last group of a row may be shorter. The field
// 2^b - 1, which the encoder never writes, decodes to q_max + 1.
//
// Why more than 8 bits: on the stories260K model, 8-bit K and V changed the top-1 token at 2.1% of
// positions. Keys need about 10 bits and values 9 before that falls to 0.5%, and most of the
// remaining changes are near-ties (measurements in docs/benchmarks.md).
#include <algorithm>
#include <cmath>
#include <cstring>
#include <string>

#include "kv/codec.h"
#include "common/f16.h"
#include "kv/row_convert.h"

namespace sparkv {
namespace {

constexpr int64_t kGroup = 32;
constexpr uint16_t kF16Infinity = 0x7c00;
constexpr uint8_t kPayloadVersion = 2;
constexpr int kKeyBits = 10;    // version 2's field width of K quants
constexpr int kValueBits = 9;   // version 2's field width of V quants
constexpr int kVersion1Bits = 8;

int64_t GroupCount(int64_t row_width) { return (row_width + kGroup - 1) / kGroup; }

int32_t QMax(int bits) { return (int32_t{1} << (bits - 1)) - 1; }

// Bytes of one row of b-bit fields.
uint64_t PackedRowBytes(int64_t row_width, int bits) {
  return (static_cast<uint64_t>(row_width) * bits + 7) / 8;
}

// Bytes of one block (scales and quants) whose quants are `bits` wide.
uint64_t BlockBytes(const KvShape& shape, int bits) {
  return static_cast<uint64_t>(shape.n_tokens) *
         (static_cast<uint64_t>(GroupCount(shape.row_width())) * 2 +
          PackedRowBytes(shape.row_width(), bits));
}

uint64_t Version1Bytes(const KvShape& shape) {
  return static_cast<uint64_t>(shape.n_layer) * 2 * BlockBytes(shape, kVersion1Bits);
}

uint64_t Version2Bytes(const KvShape& shape) {
  return 1 + static_cast<uint64_t>(shape.n_layer) *
                 (BlockBytes(shape, kKeyBits) + BlockBytes(shape, kValueBits));
}

// Writes fields [n] (each < 2^bits) to `out` least significant bit first; fills exactly
// PackedRowBytes(n, bits) bytes.
void PackRow(const uint32_t* fields, int64_t n, int bits, uint8_t* out) {
  uint64_t pending = 0;  // bits not yet written, lowest first
  int n_pending = 0;
  for (int64_t i = 0; i < n; ++i) {
    pending |= static_cast<uint64_t>(fields[i]) << n_pending;
    n_pending += bits;
    while (n_pending >= 8) {
      *out++ = static_cast<uint8_t>(pending);
      pending >>= 8;
      n_pending -= 8;
    }
  }
  if (n_pending > 0) *out = static_cast<uint8_t>(pending);
}

// Reads the n fields of a row packed by PackRow and writes (field - q_max) * scale of its group
// to row [n] f32. Reads exactly PackedRowBytes(n, bits) bytes of `in`.
void UnpackRow(const uint8_t* in, int64_t n, int bits, const float* scales, float* row) {
  const uint32_t mask = (uint32_t{1} << bits) - 1;
  const auto q_max = static_cast<float>(QMax(bits));
  uint64_t pending = 0;
  int n_pending = 0;
  for (int64_t i = 0; i < n; ++i) {
    while (n_pending < bits) {
      pending |= static_cast<uint64_t>(*in++) << n_pending;
      n_pending += 8;
    }
    const auto field = static_cast<uint32_t>(pending) & mask;
    pending >>= bits;
    n_pending -= bits;
    row[i] = (static_cast<float>(field) - q_max) * scales[i / kGroup];
  }
}

class Q8CodecImpl final : public Codec {
 public:
  CodecId id() const override { return CodecId::kQ8; }
  std::string_view name() const override { return "q8"; }
  int quality_rank() const override { return 1; }

  // Returns version 2's size, the larger of the two versions for every shape.
  uint64_t MaxPayloadBytes(const KvShape& shape) const override { return Version2Bytes(shape); }

  Result<std::vector<uint8_t>> Encode(const KvSlice& source) const override {
    SPARKV_RETURN_IF_ERROR(CheckSlice(source, "q8 encode source"));
    const KvShape shape = ShapeOf(source);
    const int64_t width = shape.row_width();
    const int64_t n_groups = GroupCount(width);

    std::vector<uint8_t> payload(Version2Bytes(shape));
    payload[0] = kPayloadVersion;
    std::vector<float> row(static_cast<size_t>(width));        // [row_width] f32
    std::vector<uint32_t> fields(static_cast<size_t>(width));  // [row_width] q + q_max
    uint8_t* out = payload.data() + 1;
    for (int32_t l = 0; l < shape.n_layer; ++l) {
      for (bool is_v : {false, true}) {
        const int bits = is_v ? kValueBits : kKeyBits;
        const uint8_t* block = is_v ? source.v[l] : source.k[l];
        uint8_t* scales = out;
        uint8_t* quants = out + shape.n_tokens * n_groups * 2;
        const uint64_t row_bytes = PackedRowBytes(width, bits);
        for (int32_t t = 0; t < shape.n_tokens; ++t) {
          internal::RowToF32(source.elem, block + t * source.row_bytes(), width, row.data());
          for (int64_t g = 0; g < n_groups; ++g) {
            const int64_t begin = g * kGroup;
            const int64_t end = std::min(begin + kGroup, width);
            const uint16_t scale =
                QuantizeGroup(row.data() + begin, end - begin, QMax(bits), fields.data() + begin);
            if (scale >= kF16Infinity) {
              return InvalidArgumentError(
                  "q8 encode of layer " + std::to_string(l) + (is_v ? " V" : " K") + " row " +
                  std::to_string(source.begin + t) + ": " +
                  UnencodableReason(row.data() + begin, end - begin));
            }
            std::memcpy(scales + (t * n_groups + g) * 2, &scale, 2);
          }
          PackRow(fields.data(), width, bits, quants + t * row_bytes);
        }
        out += BlockBytes(shape, bits);
      }
    }
    return payload;
  }

  Status Decode(std::span<const uint8_t> payload, const KvSlice& destination) const override {
    SPARKV_RETURN_IF_ERROR(CheckSlice(destination, "q8 decode destination"));
    const KvShape shape = ShapeOf(destination);
    const uint64_t version2_bytes = Version2Bytes(shape);
    const uint64_t version1_bytes = Version1Bytes(shape);
    if (payload.size() == version1_bytes) return DecodeBlocks(payload, destination, 1);
    if (payload.size() != version2_bytes) {
      return CorruptionError("q8 payload is " + std::to_string(payload.size()) +
                             " bytes; a slice of " + std::to_string(shape.n_layer) + " layers x " +
                             std::to_string(shape.n_tokens) + " tokens x " +
                             std::to_string(shape.row_width()) + " wide needs " +
                             std::to_string(version2_bytes) + " (version 2) or " +
                             std::to_string(version1_bytes) + " (version 1)");
    }
    if (payload[0] != kPayloadVersion) {
      return CorruptionError("q8 payload has version " + std::to_string(payload[0]) +
                             ", but this build reads only version " +
                             std::to_string(kPayloadVersion) +
                             " and version-less version 1; re-encode the chunk with this build "
                             "(sparkv ingest)");
    }
    return DecodeBlocks(payload.subspan(1), destination, 2);
  }

 private:
  // Decodes the blocks of a payload of `version`, without its version byte. The caller has already
  // checked that `blocks` has exactly that version's size for the destination's shape.
  static Status DecodeBlocks(std::span<const uint8_t> blocks, const KvSlice& destination,
                             int version) {
    const KvShape shape = ShapeOf(destination);
    const int64_t width = shape.row_width();
    const int64_t n_groups = GroupCount(width);
    const int64_t n_scales = shape.n_tokens * n_groups;
    const auto bits_of = [version](bool is_v) {
      if (version == 1) return kVersion1Bits;
      return is_v ? kValueBits : kKeyBits;
    };

    // First pass: every scale must be one the encoder can produce (finite, not negative), so a
    // payload is rejected before any cache row changes.
    const uint8_t* in = blocks.data();
    for (int32_t l = 0; l < shape.n_layer; ++l) {
      for (bool is_v : {false, true}) {
        for (int64_t i = 0; i < n_scales; ++i) {
          uint16_t h;
          std::memcpy(&h, in + 2 * i, 2);
          if (h >= kF16Infinity) {
            return CorruptionError("q8 scale " + std::to_string(i) + " of layer " +
                                   std::to_string(l) + (is_v ? " V" : " K") + " is 0x" +
                                   HexU16(h) + ", not a finite non-negative f16");
          }
        }
        in += BlockBytes(shape, bits_of(is_v));
      }
    }

    std::vector<float> row(static_cast<size_t>(width));          // [row_width] f32
    std::vector<float> scales(static_cast<size_t>(n_groups));    // [n_groups] f32 of one row
    in = blocks.data();
    for (int32_t l = 0; l < shape.n_layer; ++l) {
      for (bool is_v : {false, true}) {
        const int bits = bits_of(is_v);
        uint8_t* block = is_v ? destination.v[l] : destination.k[l];
        const uint8_t* quants = in + n_scales * 2;
        const uint64_t row_bytes = PackedRowBytes(width, bits);
        for (int32_t t = 0; t < shape.n_tokens; ++t) {
          internal::ConvertF16ToF32(in + t * n_groups * 2, n_groups,
                                    reinterpret_cast<uint8_t*>(scales.data()));
          if (version == 1) {
            const auto* q = reinterpret_cast<const int8_t*>(quants + t * row_bytes);
            for (int64_t i = 0; i < width; ++i) {
              row[i] = static_cast<float>(q[i]) * scales[i / kGroup];
            }
          } else {
            UnpackRow(quants + t * row_bytes, width, bits, scales.data(), row.data());
          }
          internal::F32ToRow(row.data(), width, destination.elem,
                             block + t * destination.row_bytes());
        }
        in += BlockBytes(shape, bits);
      }
    }
    return Status::Ok();
  }

  // Writes n fields q + q_max for values [n] f32 and returns the group's f16 scale, or a value >=
  // kF16Infinity when the group contains NaN or infinity or its absmax is past q_max * 65504.
  static uint16_t QuantizeGroup(const float* values, int64_t n, int32_t q_max, uint32_t* fields) {
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

    // Round the scale up to the next f16 so that absmax / scale <= q_max after rounding.
    const auto limit = static_cast<float>(q_max);
    const float minimum_scale = absmax / limit;
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
      fields[i] = static_cast<uint32_t>(std::clamp(q, -limit, limit) + limit);
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
    return "a group's absmax exceeds 511 * 65504 (K) or 255 * 65504 (V), past the range of an "
           "f16 scale";
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
