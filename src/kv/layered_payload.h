// The frame of the payloads that index their layers (f16ans, ans*), so layers can be decoded
// apart and on several threads:
//   u8 version            the rANS stream version the runs inside use (rans::kStreamVersion)
//   [n_layer] u32         bytes of each layer's part
//   the layers' parts, in order, with nothing after the last
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>
#include <vector>

#include "sparkv/status.h"

namespace sparkv::internal {

inline size_t LayeredHeaderBytes(int32_t n_layer) { return 1 + 4 * static_cast<size_t>(n_layer); }

// Resizes `out` to the frame's header: the version, then n_layer sizes to fill in with
// SetLayerBytes.
void StartLayeredPayload(int32_t n_layer, std::vector<uint8_t>& out);
void SetLayerBytes(int32_t layer, uint32_t bytes, std::vector<uint8_t>& out);

// Splits `payload` into its n_layer parts ([n_layer] spans into payload). Corruption naming
// `codec` when the header is truncated, the version is not rans::kStreamVersion, a layer size
// passes the end, or bytes follow the last layer.
Result<std::vector<std::span<const uint8_t>>> SplitLayeredPayload(std::span<const uint8_t> payload,
                                                                  int32_t n_layer,
                                                                  std::string_view codec);

}  // namespace sparkv::internal
