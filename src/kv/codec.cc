#include "kv/codec.h"

#include <array>
#include <string>

namespace sparkv {
namespace {

// Adding a codec: append it here, in ascending id order. Never remove or reorder an id.
const std::array<const Codec*, 9>& Registry() {
  static const std::array<const Codec*, 9> codecs = {
      &F16Codec(),  &Q8Codec(),   &Q4Codec(),   &F16AnsCodec(), &Ans6Codec(),
      &Ans4Codec(), &Ans3Codec(), &Ans2Codec(), &Q10Codec()};
  return codecs;
}

}  // namespace

KvShape ShapeOf(const KvSlice& slice) {
  return KvShape{slice.n_layer, slice.n_head_kv, slice.head_dim, slice.n_tokens()};
}

Status CheckShape(const KvShape& shape, std::string_view label) {
  const std::string prefix(label);
  if (shape.n_layer <= 0 || shape.n_layer > kMaxLayers) {
    return InvalidArgumentError(prefix + ": n_layer is " + std::to_string(shape.n_layer) +
                                "; it must be in [1, " + std::to_string(kMaxLayers) + "]");
  }
  if (shape.n_head_kv <= 0 || shape.head_dim <= 0 || shape.row_width() > kMaxRowWidth) {
    return InvalidArgumentError(prefix + ": n_head_kv " + std::to_string(shape.n_head_kv) +
                                " x head_dim " + std::to_string(shape.head_dim) +
                                " must both be positive with a product of at most " +
                                std::to_string(kMaxRowWidth));
  }
  if (shape.n_tokens <= 0 || shape.n_tokens > kMaxChunkRows) {
    return InvalidArgumentError(prefix + ": the token range contains " +
                                std::to_string(shape.n_tokens) + " tokens; it must hold [1, " +
                                std::to_string(kMaxChunkRows) + "]");
  }
  return Status::Ok();
}

Status CheckSlice(const KvSlice& slice, std::string_view label) {
  if (slice.begin < 0 || slice.end < slice.begin) {
    return InvalidArgumentError(std::string(label) + ": token range [" +
                                std::to_string(slice.begin) + ", " + std::to_string(slice.end) +
                                ") must satisfy 0 <= begin <= end");
  }
  SPARKV_RETURN_IF_ERROR(CheckShape(ShapeOf(slice), label));
  if (slice.elem != KvElemType::kF16 && slice.elem != KvElemType::kF32) {
    return InvalidArgumentError(std::string(label) + ": element type " +
                                std::to_string(static_cast<int>(slice.elem)) +
                                " is neither f32 (0) nor f16 (1)");
  }
  if (slice.k.size() != static_cast<size_t>(slice.n_layer) ||
      slice.v.size() != static_cast<size_t>(slice.n_layer)) {
    return InvalidArgumentError(std::string(label) + ": " + std::to_string(slice.k.size()) +
                                " K and " + std::to_string(slice.v.size()) +
                                " V layer pointers for n_layer " + std::to_string(slice.n_layer));
  }
  for (int32_t l = 0; l < slice.n_layer; ++l) {
    if (slice.k[l] == nullptr || slice.v[l] == nullptr) {
      return InvalidArgumentError(std::string(label) + ": layer " + std::to_string(l) +
                                  " has a null K or V pointer");
    }
  }
  return Status::Ok();
}

const Codec* FindCodec(std::string_view name) {
  for (const Codec* codec : Registry()) {
    if (codec->name() == name) return codec;
  }
  return nullptr;
}

const Codec* FindCodec(CodecId id) {
  for (const Codec* codec : Registry()) {
    if (codec->id() == id) return codec;
  }
  return nullptr;
}

std::span<const Codec* const> AllCodecs() { return Registry(); }

std::string CodecNames() {
  std::string names;
  for (const Codec* codec : Registry()) names += (names.empty() ? "" : ", ") + std::string(codec->name());
  return names;
}

}  // namespace sparkv
