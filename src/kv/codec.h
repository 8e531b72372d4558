// Codecs turn the KV of one chunk (every layer, K then V, rows [begin, end)) into a payload and
// back. Each codec is one implementation file (codec_<name>.cc) plus one line in the registry in
// codec.cc; ids are stored in blob headers and never renumbered.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "common/kv_slice.h"
#include "sparkv/status.h"

namespace sparkv {

// Stored in blob headers: never renumber, never reuse a retired number.
enum class CodecId : uint16_t {
  kF16 = 1,  // IEEE binary16, row-major; lossless w.r.t. an f16 cache
  kQ8 = 2,   // int8 K and V, one f16 scale per group of 32 along the row
  kQ4 = 3,   // 4-bit levels, f16 min and step per group: K down channels, V along rows
  kF16Ans = 4,  // f16 split into high and low byte planes, each rANS-coded; lossless like f16
  kAns6 = 5,    // per-channel levels (6 bits, more on the first layers), deltas, rANS-coded
  kAns4 = 6,    // the same with 4 bits
  kAns3 = 7,    // the same with 3 bits
  kAns2 = 8,    // the same with 2 bits
  kQ10 = 9,     // 10-bit K and 9-bit V integers, one f16 scale per group of 32 along the row
};

// Limits that keep every size computation inside uint64 and reject absurd headers early.
inline constexpr int32_t kMaxLayers = 1024;
inline constexpr int32_t kMaxRowWidth = 1 << 20;  // n_head_kv * head_dim
inline constexpr int32_t kMaxChunkRows = 1 << 20;  // rows (tokens) in one slice

// The dimensions a payload depends on.
struct KvShape {
  int32_t n_layer = 0;
  int32_t n_head_kv = 0;
  int32_t head_dim = 0;
  int32_t n_tokens = 0;

  int64_t row_width() const { return static_cast<int64_t>(n_head_kv) * head_dim; }
  // Elements in one layer's K (or V) block: n_tokens * row_width.
  uint64_t block_elements() const { return static_cast<uint64_t>(n_tokens) * row_width(); }
  bool operator==(const KvShape&) const = default;
};

KvShape ShapeOf(const KvSlice& slice);

// Checks that every dimension is positive and within the limits above. `label` names the shape in
// the message, e.g. "blob header".
Status CheckShape(const KvShape& shape, std::string_view label);

// CheckShape plus: begin >= 0, one non-null K and V pointer per layer.
Status CheckSlice(const KvSlice& slice, std::string_view label);

class Codec {
 public:
  virtual ~Codec() = default;

  virtual CodecId id() const = 0;
  // Short lowercase name, [a-z0-9_]; the blob's file name is "<name>.skv".
  virtual std::string_view name() const = 0;

  // Where this codec ranks in reconstruction quality: 0 for lossless, larger for lossier. The
  // planner's quality floor compares these; equal ranks mean interchangeable quality.
  virtual int quality_rank() const = 0;

  // Upper bound on the payload Encode returns for a slice of this shape, in bytes.
  // REQUIRES: CheckShape(shape) is ok.
  virtual uint64_t MaxPayloadBytes(const KvShape& shape) const = 0;

  // Encodes every layer of `source`, K then V. Fails on an invalid slice, or on values the codec
  // cannot represent (q8 rejects NaN and infinity).
  virtual Result<std::vector<uint8_t>> Encode(const KvSlice& source) const = 0;

  // Decodes `payload` into `destination` (an f16 or f32 cache). Validates the payload's size and
  // contents against destination's shape before writing any row, and never reads past `payload`.
  // On error the destination is untouched.
  virtual Status Decode(std::span<const uint8_t> payload, const KvSlice& destination) const = 0;

  // Decode spread over up to n_threads threads (<= 1: the calling thread only), with exactly
  // Decode's result and output. Codecs whose payloads index their layers (f16ans, ans*) decode
  // layers apart; the others decode serially.
  virtual Status DecodeParallel(std::span<const uint8_t> payload, const KvSlice& destination,
                                int n_threads) const {
    (void)n_threads;
    return Decode(payload, destination);
  }
};

// Registry. Returns nullptr for an unknown name or id.
const Codec* FindCodec(std::string_view name);
const Codec* FindCodec(CodecId id);
// Returns every codec of this build, in ascending id order.
std::span<const Codec* const> AllCodecs();
// Returns the names of AllCodecs() joined by ", ", for help texts and error messages.
std::string CodecNames();

// The codecs, for the registry; each lives in its own codec_<name>.cc.
const Codec& F16Codec();
const Codec& Q8Codec();
const Codec& Q4Codec();
const Codec& F16AnsCodec();
const Codec& Ans6Codec();
const Codec& Ans4Codec();
const Codec& Ans3Codec();
const Codec& Ans2Codec();
const Codec& Q10Codec();

}  // namespace sparkv
