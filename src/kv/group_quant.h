// Symmetric absmax quantization in groups of kQuantGroup elements along each row, with K and V
// quants packed at their own bit widths. One implementation for the q8 and q10 codecs and for the
// older q8 payloads they still read; docs/formats.md specifies the layouts.
//
// Payload: an optional u8 version, then per layer, K then V, each block:
//   scales [n_tokens][n_groups] f16 little-endian, n_groups = ceil(row_width / kQuantGroup)
//   quants [n_tokens] rows of ceil(row_width * b / 8) bytes; element i of a row is the b-bit field
//          at bits [i * b, (i + 1) * b) of its row, least significant bit first (b = key_bits for
//          K, value_bits for V). The bits after a row's last field are zero when written and
//          ignored when read.
// A field contains an integer q in [-q_max, q_max], q_max = 2^(b-1) - 1, coded as FieldCode specifies.
// Element i of group g decodes to q * scale[g]. The encoder picks the smallest f16 scale
// s >= absmax / q_max, so the error per element is at most s / 2 (plus one f32 rounding), about
// absmax(group) / (2 q_max). The one field the encoder never writes (2^b - 1 as an offset,
// -2^(b-1) in two's complement) still decodes, to +-(q_max + 1) * s.
#pragma once

#include <cstdint>
#include <span>
#include <string_view>
#include <vector>

#include "kv/codec.h"
#include "sparkv/status.h"

namespace sparkv::internal {

inline constexpr int64_t kQuantGroup = 32;
inline constexpr int kNoVersionByte = -1;

// The coding of q in a b-bit field.
enum class FieldCode : uint8_t {
  kOffset,          // the unsigned field q + q_max
  kTwosComplement,  // the low b bits of q in two's complement; with b = 8, an int8
};

struct GroupQuantLayout {
  std::string_view codec;       // codec name, e.g. "q8", for messages
  std::string_view label;       // how messages name this layout, e.g. "version 1"
  int version = kNoVersionByte;  // the payload's leading version byte, or kNoVersionByte
  int key_bits = 8;              // field width of K quants, in [2, 16]
  int value_bits = 8;            // field width of V quants, in [2, 16]
  FieldCode code = FieldCode::kOffset;
};

// Exact payload size of `layout` for a slice of `shape`.
// REQUIRES: CheckShape(shape) is ok.
uint64_t GroupQuantPayloadBytes(const GroupQuantLayout& layout, const KvShape& shape);

// Encodes every layer of `source`, K then V, in `layout`. Fails on an invalid slice, NaN,
// infinity, or a group whose absmax is past q_max * 65504.
Result<std::vector<uint8_t>> GroupQuantEncode(const GroupQuantLayout& layout,
                                              const KvSlice& source);

// Decodes `payload` in the first of `readable` whose size for the destination's shape equals
// payload.size() and whose version byte (if it has one) matches. Rejects, leaving `destination`
// untouched: a size no layout has, a version byte no layout of that size has (asking for a
// re-ingest), and a scale that is negative or not finite.
Status GroupQuantDecode(std::span<const GroupQuantLayout> readable,
                        std::span<const uint8_t> payload, const KvSlice& destination);

// Unpacks the first fields of a row of n b-bit fields (bits in [2, 16]) and writes q * scale of
// their group to row, as the portable loop does. Stops at a multiple of eight fields before its
// 16-byte loads would pass the row's PackedRowBytes, and returns how many fields it wrote.
// REQUIRES: HasAvx2() (kv/row_convert.h); group_quant_avx2.cc is compiled with -mavx2.
int64_t UnpackRowAvx2(const uint8_t* in, int64_t n, int bits, FieldCode code, const float* scales,
                      float* row);

}  // namespace sparkv::internal
