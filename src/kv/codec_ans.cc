// The ans family (ans6, ans4, ans3, ans2): lossy, entropy-coded. One member differs from the next
// only in its base bit width N.
//
// Quantization: in each block (one layer's K or V), channel c gets its own lo and step
// (kv/quantize.h) over all tokens of the chunk with 2^b levels, b = N + extra bits on the first
// layers, which errors hurt most (they feed every later layer). The error of an element is at
// most step_c / 2.
//
// Symbols: channels are cut into groups of kChannelGroup. Per group the encoder codes either the
// levels themselves ("direct") or deltas against an anchor token, whichever it estimates smaller.
// Tokens form groups of kTokenGroup whose first token is the anchor. The other tokens code
// q - q_anchor, and the anchor codes q - q_previous_anchor (q itself for token 0). Neighbouring
// tokens are alike in many channels, so deltas pile up near 0. A delta symbol is
// difference + (2^b - 1), in an alphabet of 2^(b+1) - 1 symbols, coded with rans::AppendRun.
//
// Payload (kv/layered_payload.h):
//   u8 version (rans::kStreamVersion), layer sizes [n_layer] u32, bytes of each layer's part
//   per layer, K then V, each block:
//     u8 b, in [1, 7]
//     lo   [row_width] f16, step [row_width] f16
//     per channel group: u8 mode (0 direct, 1 delta), then a run of n_tokens * group_width
//     symbols in order token, then channel.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "kv/codec.h"
#include "kv/layered_payload.h"
#include "kv/parallel.h"
#include "kv/quantize.h"
#include "kv/rans.h"
#include "kv/row_convert.h"

namespace sparkv {
namespace {

using internal::LoadU16;
using internal::StoreU16;

constexpr int64_t kChannelGroup = 64;
constexpr int64_t kTokenGroup = 16;
constexpr int kMaxBits = 7;  // 2^(b+1) - 1 symbols must fit a byte

int64_t ChannelGroups(int64_t width) { return (width + kChannelGroup - 1) / kChannelGroup; }

// The reference level a symbol of token t is relative to in delta mode: q of the anchor of t's
// group, or for an anchor the previous anchor's q (0 for token 0). `q` is [n_tokens][stride].
inline int DeltaReference(const uint8_t* q, int64_t t, int64_t stride) {
  const int64_t anchor = t - t % kTokenGroup;
  if (t != anchor) return q[anchor * stride];
  return anchor == 0 ? 0 : q[(anchor - kTokenGroup) * stride];
}

// Estimated coded bytes of symbols with these counts: the entropy, plus about two bytes per
// table entry.
double EstimatedBytes(const std::vector<uint64_t>& counts) {
  uint64_t total = 0;
  for (uint64_t c : counts) total += c;
  double bits = 0.0;
  for (uint64_t c : counts) {
    if (c != 0) bits += 8.0 * 2 + static_cast<double>(c) * std::log2(static_cast<double>(total) / c);
  }
  return bits / 8.0;
}

class AnsCodecImpl final : public Codec {
 public:
  AnsCodecImpl(CodecId id, std::string_view name, int base_bits, int quality_rank)
      : id_(id), name_(name), base_bits_(base_bits), quality_rank_(quality_rank) {}

  CodecId id() const override { return id_; }
  std::string_view name() const override { return name_; }
  int quality_rank() const override { return quality_rank_; }

  // Bits of layer l: two more on layer 0 and one more on layer 1.
  int BitsForLayer(int32_t l) const {
    int extra = 0;
    if (l == 0) extra = 2;
    if (l == 1) extra = 1;
    return std::min(kMaxBits, base_bits_ + extra);
  }

  uint64_t MaxPayloadBytes(const KvShape& shape) const override {
    const uint64_t width = static_cast<uint64_t>(shape.row_width());
    const uint64_t block = 1 + 4 * width + 2 * static_cast<uint64_t>(ChannelGroups(width)) +
                           shape.block_elements();
    return internal::LayeredHeaderBytes(shape.n_layer) + static_cast<uint64_t>(shape.n_layer) * 2 * block;
  }

  Result<std::vector<uint8_t>> Encode(const KvSlice& source) const override {
    const std::string label = std::string(name_) + " encode source";
    SPARKV_RETURN_IF_ERROR(CheckSlice(source, label));
    const KvShape shape = ShapeOf(source);
    const int64_t width = shape.row_width();
    const int64_t n_tokens = shape.n_tokens;
    const int64_t n = static_cast<int64_t>(shape.block_elements());

    std::vector<uint8_t> payload;
    internal::StartLayeredPayload(shape.n_layer, payload);
    std::vector<float> values(static_cast<size_t>(n));      // [n_tokens][row_width] f32
    std::vector<uint8_t> levels(static_cast<size_t>(n));    // [n_tokens][row_width] q
    std::vector<uint8_t> direct, delta;                     // [n_tokens][group width] symbols
    std::vector<float> lo(width), hi(width);                // [row_width] f32
    for (int32_t l = 0; l < shape.n_layer; ++l) {
      const size_t layer_start = payload.size();
      const int bits = BitsForLayer(l);
      const int n_levels = 1 << bits;
      const int n_symbols = 2 * n_levels - 1;
      for (bool is_v : {false, true}) {
        internal::RowToF32(source.elem, is_v ? source.v[l] : source.k[l], n, values.data());
        payload.push_back(static_cast<uint8_t>(bits));

        // Channel ranges, then levels. NaN poisons lo so ChooseMinStep rejects it.
        std::copy(values.begin(), values.begin() + width, lo.begin());
        std::copy(values.begin(), values.begin() + width, hi.begin());
        for (int64_t t = 1; t < n_tokens; ++t) {
          const float* row = values.data() + t * width;
          for (int64_t c = 0; c < width; ++c) {
            lo[c] = row[c] != row[c] ? row[c] : std::min(lo[c], row[c]);
            hi[c] = std::max(hi[c], row[c]);
          }
        }
        const size_t params_at = payload.size();
        payload.resize(params_at + 4 * width);
        for (int64_t c = 0; c < width; ++c) {
          internal::MinStep ms;
          if (lo[c] != lo[c] || !internal::ChooseMinStep(lo[c], hi[c], n_levels, &ms)) {
            return InvalidArgumentError(std::string(name_) + " encode of layer " + std::to_string(l) +
                                        (is_v ? " V" : " K") + ": channel " + std::to_string(c) +
                                        " holds a value that is not finite or lies outside the "
                                        "f16 range +-65504");
          }
          StoreU16(payload.data() + params_at + 2 * c, ms.lo);
          StoreU16(payload.data() + params_at + 2 * (width + c), ms.step);
          const float step = F16ToF32(ms.step);
          lo[c] = F16ToF32(ms.lo);
          hi[c] = step > 0.0f ? 1.0f / step : 0.0f;  // now the inverse step
        }
        for (int64_t t = 0; t < n_tokens; ++t) {
          for (int64_t c = 0; c < width; ++c) {
            levels[t * width + c] = static_cast<uint8_t>(
                internal::QuantizeLevel(values[t * width + c], lo[c], hi[c], n_levels));
          }
        }

        for (int64_t c0 = 0; c0 < width; c0 += kChannelGroup) {
          const int64_t group_width = std::min(kChannelGroup, width - c0);
          direct.resize(static_cast<size_t>(n_tokens * group_width));
          delta.resize(direct.size());
          for (int64_t t = 0; t < n_tokens; ++t) {
            for (int64_t c = 0; c < group_width; ++c) {
              const uint8_t* column = levels.data() + c0 + c;
              const int q = column[t * width];
              direct[t * group_width + c] = static_cast<uint8_t>(q);
              delta[t * group_width + c] =
                  static_cast<uint8_t>(q - DeltaReference(column, t, width) + n_levels - 1);
            }
          }
          const bool use_delta = EstimatedBytes(rans::CountSymbols(delta, n_symbols)) <
                                 EstimatedBytes(rans::CountSymbols(direct, n_symbols));
          payload.push_back(use_delta ? 1 : 0);
          rans::AppendRun(use_delta ? delta : direct, n_symbols, payload);
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
    const std::string name(name_);
    SPARKV_RETURN_IF_ERROR(CheckSlice(destination, name + " decode destination"));
    const KvShape shape = ShapeOf(destination);
    if (payload.size() > MaxPayloadBytes(shape)) {
      return CorruptionError(name + " payload of " + std::to_string(payload.size()) +
                             " bytes exceeds the bound of " + std::to_string(MaxPayloadBytes(shape)) +
                             " for its shape");
    }
    SPARKV_ASSIGN_OR_RETURN(const std::vector<std::span<const uint8_t>> layers,
                            internal::SplitLayeredPayload(payload, shape.n_layer, name));

    // Pass 1 parses and checks every layer into scratch levels and parameters. Pass 2 writes the
    // cache, so a payload that fails anywhere leaves it untouched.
    const auto n = static_cast<size_t>(shape.block_elements());
    const size_t n_blocks = 2 * static_cast<size_t>(shape.n_layer);
    const std::unique_ptr<uint8_t[]> levels(new uint8_t[n_blocks * n]);  // [block][n_tokens][row_width]
    std::vector<const uint8_t*> params(n_blocks);  // per block: lo [row_width] f16, step [row_width] f16
    std::vector<Status> parsed(static_cast<size_t>(shape.n_layer));
    internal::ParallelFor(shape.n_layer, n_threads, [&](int64_t l) {
      parsed[l] = ParseLayer(static_cast<int32_t>(l), layers[l], shape, levels.get() + 2 * l * n,
                             params.data() + 2 * l);
    });
    for (const Status& status : parsed) SPARKV_RETURN_IF_ERROR(status);

    internal::ParallelFor(static_cast<int64_t>(n_blocks), n_threads, [&](int64_t b) {
      uint8_t* block = (b % 2 ? destination.v : destination.k)[b / 2];
      internal::DequantizeRows(levels.get() + b * n, params[b], shape.row_width(), shape.n_tokens,
                               destination.elem, block, destination.row_bytes());
    });
    return Status::Ok();
  }

 private:
  // Parses layer l's part into levels ([K, V][n_tokens][row_width]) and points params[0] and
  // params[1] at the K and V parameters inside `layer`. The layer's coded runs are decoded
  // together (rans::RunBatch); errors come out in the order a run-by-run reader meets them.
  Status ParseLayer(int32_t l, std::span<const uint8_t> layer, const KvShape& shape,
                    uint8_t* levels, const uint8_t** params) const {
    const int64_t width = shape.row_width();
    const int64_t n_tokens = shape.n_tokens;
    const auto n = static_cast<size_t>(shape.block_elements());
    // [K, V][channel group][n_tokens][group width]: the group from channel c0 starts at
    // n_tokens * c0 in its block.
    const std::unique_ptr<uint8_t[]> symbols(new uint8_t[2 * n]);
    struct Group {
      std::span<const uint8_t> run;  // into `symbols`
      bool is_delta = false;
      int n_levels = 0;
      int64_t group_width = 0;
      uint8_t* out = nullptr;  // the group's first level in `levels`
      std::string label;
    };
    std::vector<Group> groups;
    groups.reserve(static_cast<size_t>(2 * ChannelGroups(width)));
    rans::RunBatch batch;

    const auto parse = [&]() -> Status {
      for (int kv = 0; kv < 2; ++kv) {
        const std::string where =
            std::string(name_) + " layer " + std::to_string(l) + (kv ? " V" : " K");
        if (layer.size() < 1 + 4 * static_cast<size_t>(width)) {
          return CorruptionError(where + ": block header is truncated");
        }
        const int bits = layer[0];
        if (bits < 1 || bits > kMaxBits) {
          return CorruptionError(where + ": bit width " + std::to_string(bits) + " is outside [1, " +
                                 std::to_string(kMaxBits) + "]");
        }
        params[kv] = layer.data() + 1;
        for (int64_t c = 0; c < width; ++c) {
          const uint16_t lo = LoadU16(params[kv] + 2 * c);
          const uint16_t step = LoadU16(params[kv] + 2 * (width + c));
          if ((lo & 0x7fff) >= internal::kF16Infinity || step >= internal::kF16Infinity) {
            return CorruptionError(where + ": channel " + std::to_string(c) +
                                   " has a non-finite minimum or a negative or non-finite step");
          }
        }
        layer = layer.subspan(1 + 4 * width);

        const int n_levels = 1 << bits;
        for (int64_t c0 = 0; c0 < width; c0 += kChannelGroup) {
          const int64_t group_width = std::min(kChannelGroup, width - c0);
          std::string label = where + " channels from " + std::to_string(c0);
          if (layer.empty()) return CorruptionError(label + ": the mode byte is missing");
          const uint8_t mode = layer[0];
          if (mode > 1) {
            return CorruptionError(label + ": mode " + std::to_string(mode) +
                                   " is neither 0 (direct) nor 1 (delta)");
          }
          layer = layer.subspan(1);
          const std::span<uint8_t> run(symbols.get() + kv * n + n_tokens * c0,
                                       static_cast<size_t>(n_tokens * group_width));
          SPARKV_RETURN_IF_ERROR(batch.Add(layer, 2 * n_levels - 1, run, label));
          groups.push_back(
              Group{run, mode == 1, n_levels, group_width, levels + kv * n + c0, std::move(label)});
        }
      }
      if (!layer.empty()) {
        return CorruptionError(std::string(name_) + " layer " + std::to_string(l) + " has " +
                               std::to_string(layer.size()) + " bytes after its last block");
      }
      return Status::Ok();
    };
    const Status parse_status = parse();

    const std::span<const Status> decoded = batch.Finish();
    for (size_t g = 0; g < groups.size(); ++g) {
      SPARKV_RETURN_IF_ERROR(decoded[g]);
      const Group& group = groups[g];
      SPARKV_RETURN_IF_ERROR(ResolveLevels(group.run, group.is_delta, group.n_levels,
                                           group.group_width, group.out, width, group.label));
    }
    return parse_status;
  }

  // Turns a run of symbols ([n_tokens][group_width]) into levels at out ([n_tokens][stride]);
  // Corruption when a level falls outside [0, n_levels).
  static Status ResolveLevels(std::span<const uint8_t> run, bool is_delta, int n_levels,
                              int64_t group_width, uint8_t* out, int64_t stride,
                              const std::string& label) {
    const int64_t n_tokens = static_cast<int64_t>(run.size()) / group_width;
    const std::vector<uint8_t> zeros(static_cast<size_t>(group_width), 0);  // token 0's reference
    const auto offset = static_cast<uint16_t>(is_delta ? n_levels - 1 : 0);
    // n_levels is a power of two, so a level is in range exactly when it has no bit at or above
    // n_levels. In 16 bits a level below 0 wraps past n_levels, so it sets such a bit too.
    const auto outside = static_cast<uint16_t>(~(n_levels - 1));

    // Resolves tokens [begin, end) against one reference row, and on a level out of range
    // names the first token that has one.
    const auto resolve = [&](int64_t begin, int64_t end, const uint8_t* reference) -> Status {
      const auto rows = [&](int64_t first, int64_t count) {
        return internal::AddLevelRows(run.data() + first * group_width, group_width, count,
                                      reference, offset, out + first * stride, stride);
      };
      if ((rows(begin, end - begin) & outside) == 0) return Status::Ok();
      int64_t t = begin;
      while (t + 1 < end && (rows(t, 1) & outside) == 0) ++t;
      return CorruptionError(label + ": token " + std::to_string(t) +
                             " decodes to a level outside [0, " + std::to_string(n_levels) + ")");
    };

    if (!is_delta) return resolve(0, n_tokens, zeros.data());
    // An anchor is relative to the previous anchor, and the other tokens of its group to it.
    for (int64_t anchor = 0; anchor < n_tokens; anchor += kTokenGroup) {
      const uint8_t* previous = anchor == 0 ? zeros.data() : out + (anchor - kTokenGroup) * stride;
      SPARKV_RETURN_IF_ERROR(resolve(anchor, anchor + 1, previous));
      SPARKV_RETURN_IF_ERROR(
          resolve(anchor + 1, std::min(anchor + kTokenGroup, n_tokens), out + anchor * stride));
    }
    return Status::Ok();
  }

  CodecId id_;
  std::string_view name_;
  int base_bits_;
  int quality_rank_;
};

}  // namespace

const Codec& Ans6Codec() {
  static const AnsCodecImpl codec(CodecId::kAns6, "ans6", 6, 3);
  return codec;
}
const Codec& Ans4Codec() {
  static const AnsCodecImpl codec(CodecId::kAns4, "ans4", 4, 4);
  return codec;
}
const Codec& Ans3Codec() {
  static const AnsCodecImpl codec(CodecId::kAns3, "ans3", 3, 6);
  return codec;
}
const Codec& Ans2Codec() {
  static const AnsCodecImpl codec(CodecId::kAns2, "ans2", 2, 7);
  return codec;
}

}  // namespace sparkv
