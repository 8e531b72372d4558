#include "kv/group_quant.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <string>

#include "common/f16.h"
#include "kv/row_convert.h"

namespace sparkv::internal {
namespace {

constexpr uint16_t kF16Infinity = 0x7c00;

int64_t GroupCount(int64_t row_width) { return (row_width + kQuantGroup - 1) / kQuantGroup; }

int32_t QMax(int bits) { return (int32_t{1} << (bits - 1)) - 1; }

int BitsOf(const GroupQuantLayout& layout, bool is_v) {
  return is_v ? layout.value_bits : layout.key_bits;
}

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

std::string LayerName(int32_t layer, bool is_v) {
  return "layer " + std::to_string(layer) + (is_v ? " V" : " K");
}

std::string HexU16(uint16_t value) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string text(4, '0');
  for (int i = 0; i < 4; ++i) text[3 - i] = kDigits[(value >> (4 * i)) & 0xf];
  return text;
}

// Writes fields [n] (each < 2^bits) to `out` least significant bit first; fills exactly
// PackedRowBytes(n, bits) bytes.
void PackRow(const uint32_t* fields, int64_t n, int bits, uint8_t* out) {
  if (bits == 8) {
    for (int64_t i = 0; i < n; ++i) out[i] = static_cast<uint8_t>(fields[i]);
    return;
  }
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

// Returns the integer q of a field. Integer arithmetic, so every field maps to an exact q.
int32_t FieldToQ(uint32_t field, int bits, FieldCode code) {
  if (code == FieldCode::kOffset) return static_cast<int32_t>(field) - QMax(bits);
  const uint32_t sign = uint32_t{1} << (bits - 1);
  return static_cast<int32_t>(field & (sign - 1)) - static_cast<int32_t>(field & sign);
}

// Reads the n fields of a row packed by PackRow and writes q * scale of its group to row [n] f32.
// Reads exactly PackedRowBytes(n, bits) bytes of `in`.
void UnpackRow(const uint8_t* in, int64_t n, int bits, FieldCode code, const float* scales,
               float* row) {
  if (bits == 8 && code == FieldCode::kTwosComplement) {
    const auto* q = reinterpret_cast<const int8_t*>(in);
    for (int64_t i = 0; i < n; ++i) row[i] = static_cast<float>(q[i]) * scales[i / kQuantGroup];
    return;
  }
  // The AVX2 kernel stops at a multiple of eight fields, which starts at a byte boundary, so the
  // loop below continues from there with nothing pending.
  const int64_t done = HasAvx2() && bits <= 16 ? UnpackRowAvx2(in, n, bits, code, scales, row) : 0;
  in += done * bits / 8;
  const uint32_t mask = (uint32_t{1} << bits) - 1;
  uint64_t pending = 0;
  int n_pending = 0;
  for (int64_t i = done; i < n; ++i) {
    while (n_pending < bits) {
      pending |= static_cast<uint64_t>(*in++) << n_pending;
      n_pending += 8;
    }
    const auto field = static_cast<uint32_t>(pending) & mask;
    pending >>= bits;
    n_pending -= bits;
    row[i] = static_cast<float>(FieldToQ(field, bits, code)) * scales[i / kQuantGroup];
  }
}

// Writes the n fields of q for values [n] f32 and returns the group's f16 scale, or a value >=
// kF16Infinity when the group contains NaN or infinity or its absmax is past q_max * 65504.
uint16_t QuantizeGroup(const float* values, int64_t n, int bits, FieldCode code,
                       uint32_t* fields) {
  // For non-negative floats the bit patterns order like the values, and NaN and infinity sort
  // above every finite value. So an integer max is exact, and it vectorizes without fast-math.
  uint32_t absmax_bits = 0;
  for (int64_t i = 0; i < n; ++i) {
    uint32_t value_bits;
    std::memcpy(&value_bits, &values[i], 4);
    absmax_bits = std::max(absmax_bits, value_bits & 0x7fffffffu);
  }
  if (absmax_bits > 0x7f7fffffu) return kF16Infinity;  // above FLT_MAX: NaN or infinity
  float absmax;
  std::memcpy(&absmax, &absmax_bits, 4);

  // Round the scale up to the next f16 so that absmax / scale <= q_max after rounding.
  const auto limit = static_cast<float>(QMax(bits));
  const float minimum_scale = absmax / limit;
  uint16_t h = F32ToF16(minimum_scale);
  if (F16ToF32(h) < minimum_scale) ++h;  // positive f16 bit patterns increase with their value
  if (h >= kF16Infinity) return kF16Infinity;

  const float scale = F16ToF32(h);
  const float inverse = scale > 0.0f ? 1.0f / scale : 0.0f;
  // The field is q + q_max (offset) or q modulo 2^bits (two's complement).
  const float bias = code == FieldCode::kOffset ? limit : 0.0f;
  const uint32_t mask = (uint32_t{1} << bits) - 1;
  // Adding and subtracting 1.5 * 2^23 rounds |x| < 2^22 to the nearest integer, ties to even,
  // in the default rounding mode: nearbyint without a library call.
  constexpr float kRound = 12582912.0f;
  for (int64_t i = 0; i < n; ++i) {
    const float q = (values[i] * inverse + kRound) - kRound;
    const auto biased = static_cast<int32_t>(std::clamp(q, -limit, limit) + bias);
    fields[i] = static_cast<uint32_t>(biased) & mask;
  }
  return h;
}

// Explains why QuantizeGroup rejected values [n] f32, for the error message.
std::string UnencodableReason(const GroupQuantLayout& layout, const float* values, int64_t n) {
  for (int64_t i = 0; i < n; ++i) {
    if (!std::isfinite(values[i])) {
      return "element " + std::to_string(i) + " of its group is " + std::to_string(values[i]) +
             "; " + std::string(layout.codec) + " encodes finite values only";
    }
  }
  std::string limit = std::to_string(QMax(layout.key_bits)) + " * 65504";
  if (layout.key_bits != layout.value_bits) {
    limit += " (K) or " + std::to_string(QMax(layout.value_bits)) + " * 65504 (V)";
  }
  return "a group's absmax exceeds " + limit + ", past the range of an f16 scale";
}

// Decodes the blocks of `payload` (version byte already skipped) in `layout`. The caller checked
// that `blocks` has exactly the layout's size for the destination's shape.
Status DecodeBlocks(const GroupQuantLayout& layout, std::span<const uint8_t> blocks,
                    const KvSlice& destination) {
  const KvShape shape = ShapeOf(destination);
  const int64_t width = shape.row_width();
  const int64_t n_groups = GroupCount(width);
  const int64_t n_scales = shape.n_tokens * n_groups;

  // First pass: every scale must be one the encoder can produce (finite, not negative), so a
  // payload is rejected before any cache row changes.
  const uint8_t* in = blocks.data();
  for (int32_t l = 0; l < shape.n_layer; ++l) {
    for (bool is_v : {false, true}) {
      for (int64_t i = 0; i < n_scales; ++i) {
        uint16_t h;
        std::memcpy(&h, in + 2 * i, 2);
        if (h >= kF16Infinity) {
          return CorruptionError(std::string(layout.codec) + " scale " + std::to_string(i) +
                                 " of " + LayerName(l, is_v) + " is 0x" + HexU16(h) +
                                 ", not a finite non-negative f16");
        }
      }
      in += BlockBytes(shape, BitsOf(layout, is_v));
    }
  }

  std::vector<float> row(static_cast<size_t>(width));        // [row_width] f32
  std::vector<float> scales(static_cast<size_t>(n_groups));  // [n_groups] f32 of one row
  in = blocks.data();
  for (int32_t l = 0; l < shape.n_layer; ++l) {
    for (bool is_v : {false, true}) {
      const int bits = BitsOf(layout, is_v);
      uint8_t* block = is_v ? destination.v[l] : destination.k[l];
      const uint8_t* quants = in + n_scales * 2;
      const uint64_t row_bytes = PackedRowBytes(width, bits);
      for (int32_t t = 0; t < shape.n_tokens; ++t) {
        ConvertF16ToF32(in + t * n_groups * 2, n_groups, reinterpret_cast<uint8_t*>(scales.data()));
        UnpackRow(quants + t * row_bytes, width, bits, layout.code, scales.data(), row.data());
        F32ToRow(row.data(), width, destination.elem, block + t * destination.row_bytes());
      }
      in += BlockBytes(shape, bits);
    }
  }
  return Status::Ok();
}

}  // namespace

uint64_t GroupQuantPayloadBytes(const GroupQuantLayout& layout, const KvShape& shape) {
  const uint64_t version_bytes = layout.version == kNoVersionByte ? 0 : 1;
  return version_bytes + static_cast<uint64_t>(shape.n_layer) *
                             (BlockBytes(shape, layout.key_bits) +
                              BlockBytes(shape, layout.value_bits));
}

Result<std::vector<uint8_t>> GroupQuantEncode(const GroupQuantLayout& layout,
                                              const KvSlice& source) {
  SPARKV_RETURN_IF_ERROR(CheckSlice(source, std::string(layout.codec) + " encode source"));
  const KvShape shape = ShapeOf(source);
  const int64_t width = shape.row_width();
  const int64_t n_groups = GroupCount(width);

  std::vector<uint8_t> payload(GroupQuantPayloadBytes(layout, shape));
  uint8_t* out = payload.data();
  if (layout.version != kNoVersionByte) *out++ = static_cast<uint8_t>(layout.version);
  std::vector<float> row(static_cast<size_t>(width));        // [row_width] f32
  std::vector<uint32_t> fields(static_cast<size_t>(width));  // [row_width] fields, < 2^bits
  for (int32_t l = 0; l < shape.n_layer; ++l) {
    for (bool is_v : {false, true}) {
      const int bits = BitsOf(layout, is_v);
      const uint8_t* block = is_v ? source.v[l] : source.k[l];
      uint8_t* scales = out;
      uint8_t* quants = out + shape.n_tokens * n_groups * 2;
      const uint64_t row_bytes = PackedRowBytes(width, bits);
      for (int32_t t = 0; t < shape.n_tokens; ++t) {
        RowToF32(source.elem, block + t * source.row_bytes(), width, row.data());
        for (int64_t g = 0; g < n_groups; ++g) {
          const int64_t begin = g * kQuantGroup;
          const int64_t end = std::min(begin + kQuantGroup, width);
          const uint16_t scale =
              QuantizeGroup(row.data() + begin, end - begin, bits, layout.code, fields.data() + begin);
          if (scale >= kF16Infinity) {
            return InvalidArgumentError(
                std::string(layout.codec) + " encode of " + LayerName(l, is_v) + " row " +
                std::to_string(source.begin + t) + ": " +
                UnencodableReason(layout, row.data() + begin, end - begin));
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

Status GroupQuantDecode(std::span<const GroupQuantLayout> readable,
                        std::span<const uint8_t> payload, const KvSlice& destination) {
  const std::string_view codec = readable.empty() ? "group-quantized" : readable[0].codec;
  SPARKV_RETURN_IF_ERROR(CheckSlice(destination, std::string(codec) + " decode destination"));
  const KvShape shape = ShapeOf(destination);

  const GroupQuantLayout* version_mismatch = nullptr;
  std::string sizes;  // "N (label) or M (label)", for the size error
  for (const GroupQuantLayout& layout : readable) {
    const uint64_t bytes = GroupQuantPayloadBytes(layout, shape);
    sizes += (sizes.empty() ? "" : " or ") + std::to_string(bytes) + " (" +
             std::string(layout.label) + ")";
    if (payload.size() != bytes) continue;
    if (layout.version == kNoVersionByte) return DecodeBlocks(layout, payload, destination);
    if (payload[0] == layout.version) return DecodeBlocks(layout, payload.subspan(1), destination);
    version_mismatch = &layout;
  }

  if (version_mismatch != nullptr) {
    std::string known;
    for (const GroupQuantLayout& layout : readable) {
      known += (known.empty() ? "" : "; ") + std::string(layout.label);
    }
    return CorruptionError(std::string(codec) + " payload has the size of " +
                           std::string(version_mismatch->label) + " but starts with version " +
                           std::to_string(payload[0]) + ", not " +
                           std::to_string(version_mismatch->version) + "; this build reads " +
                           std::string(codec) + " payloads of " + known +
                           ". Re-encode the chunk with this build (sparkv ingest)");
  }
  return CorruptionError(std::string(codec) + " payload is " + std::to_string(payload.size()) +
                         " bytes; a slice of " + std::to_string(shape.n_layer) + " layers x " +
                         std::to_string(shape.n_tokens) + " tokens x " +
                         std::to_string(shape.row_width()) + " wide needs " + sizes);
}

}  // namespace sparkv::internal
