// Chunks and their prefix-chained keys (DESIGN.md section 3). A context of n tokens is cut into
// chunks of `chunk_tokens` tokens from position 0; the last chunk may be shorter. Chunk j's key
// hashes the key of chunk j-1 with chunk j's tokens, so two contexts that share a prefix share the
// keys (and the stored blobs) of every chunk inside that prefix. The exact bytes hashed are
// specified in docs/formats.md.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "common/hash.h"

namespace sparkv {

inline constexpr int32_t kDefaultChunkTokens = 256;
// Upper bound on chunk_tokens accepted from a manifest; larger chunks defeat planning anyway.
inline constexpr int32_t kMaxChunkTokens = 1 << 16;

// Chunk `index` covers token positions [begin, end).
struct ChunkRange {
  int32_t index = 0;
  int32_t begin = 0;
  int32_t end = 0;

  int32_t n_tokens() const { return end - begin; }
  bool operator==(const ChunkRange&) const = default;
};

// Cuts positions [0, n_tokens) into chunks of `chunk_tokens`; the last one contains the remainder.
// Returns no chunks when n_tokens <= 0 or chunk_tokens <= 0.
std::vector<ChunkRange> SplitIntoChunks(int32_t n_tokens, int32_t chunk_tokens);

// key(-1): XXH3-128 of the model fingerprint, the chunk size and kFormatVersion.
Hash128 RootKey(const Hash128& model_fingerprint, int32_t chunk_tokens);

// key(j) = XXH3-128(key(j-1) || tokens[chunks[j].begin, chunks[j].end) as int32 little-endian),
// one key per chunk, in order. The context key is the last one.
// REQUIRES: chunks are contiguous from 0 and lie inside `tokens`, as SplitIntoChunks returns
// them. A violation is a bug in the caller, so it is always checked and aborts.
std::vector<Hash128> ChunkKeys(const Hash128& root, std::span<const int32_t> tokens,
                               std::span<const ChunkRange> chunks);

}  // namespace sparkv
