// The one version number of SparKV's stored formats: chunk-key derivation, the `.skv` blob layout
// and manifest.json. It is hashed into every chunk key, so bumping it gives every chunk a new key
// and a reader never mixes KV written under different rules.
#pragma once

#include <bit>
#include <cstdint>

namespace sparkv {

inline constexpr uint32_t kFormatVersion = 1;

// Blobs and keys are written with memcpy of little-endian integers and IEEE floats.
static_assert(std::endian::native == std::endian::little, "SparKV formats assume a little-endian host");

}  // namespace sparkv
