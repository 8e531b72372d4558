#include "kv/layered_payload.h"

#include <cstring>
#include <string>

#include "kv/rans.h"

namespace sparkv::internal {

void StartLayeredPayload(int32_t n_layer, std::vector<uint8_t>& out) {
  out.assign(LayeredHeaderBytes(n_layer), 0);
  out[0] = rans::kStreamVersion;
}

void SetLayerBytes(int32_t layer, uint32_t bytes, std::vector<uint8_t>& out) {
  std::memcpy(out.data() + 1 + 4 * static_cast<size_t>(layer), &bytes, 4);
}

Result<std::vector<std::span<const uint8_t>>> SplitLayeredPayload(std::span<const uint8_t> payload,
                                                                  int32_t n_layer,
                                                                  std::string_view codec) {
  const std::string name(codec);
  const size_t header_bytes = LayeredHeaderBytes(n_layer);
  if (payload.size() < header_bytes) {
    return CorruptionError(name + " payload of " + std::to_string(payload.size()) +
                           " bytes is shorter than its " + std::to_string(header_bytes) +
                           "-byte header for " + std::to_string(n_layer) + " layers");
  }
  if (payload[0] != rans::kStreamVersion) {
    return CorruptionError(name + " payload has version " + std::to_string(payload[0]) +
                           ", but this build reads only version " +
                           std::to_string(rans::kStreamVersion) +
                           "; re-encode the chunk with this build (sparkv ingest)");
  }
  std::vector<std::span<const uint8_t>> layers(static_cast<size_t>(n_layer));
  std::span<const uint8_t> in = payload.subspan(header_bytes);
  for (int32_t l = 0; l < n_layer; ++l) {
    uint32_t layer_bytes;
    std::memcpy(&layer_bytes, payload.data() + 1 + 4 * static_cast<size_t>(l), 4);
    if (layer_bytes > in.size()) {
      return CorruptionError(name + " layer " + std::to_string(l) + " size " +
                             std::to_string(layer_bytes) + " exceeds the " +
                             std::to_string(in.size()) + " payload bytes that remain");
    }
    layers[l] = in.first(layer_bytes);
    in = in.subspan(layer_bytes);
  }
  if (!in.empty()) {
    return CorruptionError(name + " payload has " + std::to_string(in.size()) +
                           " bytes after its last layer");
  }
  return layers;
}

}  // namespace sparkv::internal
