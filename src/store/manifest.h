// manifest.json: the list of a context's chunks with, per codec level, the blob's size and digest.
// The JSON layout is specified in docs/formats.md.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "common/hash.h"
#include "sparkv/status.h"

namespace sparkv {

// Upper bound on one blob's size accepted from a manifest: far above any realistic chunk, but it
// keeps byte sums and download buffers within reach.
inline constexpr uint64_t kMaxBlobBytes = uint64_t{1} << 40;
// Upper bound on the model name's length in bytes.
inline constexpr size_t kMaxModelNameBytes = 256;
// Upper bound on manifest.json's size; readers reject a larger document before parsing it.
inline constexpr size_t kMaxManifestBytes = size_t{64} << 20;

// One stored blob of a chunk.
struct LevelEntry {
  uint64_t bytes = 0;  // size of the whole .skv file
  Hash128 digest;      // XXH3-128 of the whole .skv file; also its HTTP ETag

  bool operator==(const LevelEntry&) const = default;
};

struct ManifestChunk {
  int32_t index = 0;
  int32_t begin = 0;  // first token position, inclusive
  int32_t end = 0;    // last token position, exclusive
  Hash128 key;
  std::map<std::string, LevelEntry> levels;  // codec name -> blob; names are [a-z0-9_-]+

  bool operator==(const ManifestChunk&) const = default;
};

struct Manifest {
  uint32_t format_version = 0;  // kFormatVersion when written by this build
  Hash128 model_fingerprint;
  std::string model_name;
  int32_t chunk_tokens = 0;
  int32_t n_tokens = 0;
  Hash128 context_key;  // the last chunk's key
  std::vector<ManifestChunk> chunks;

  bool operator==(const Manifest&) const = default;
};

// Checks what ParseManifest checks, on a manifest built in memory: the version is this build's,
// chunks are contiguous from 0 to n_tokens in steps of chunk_tokens (the last may be shorter),
// indexes count from 0, the context key is the last chunk's key, every chunk has at least one
// level, level names are [a-z0-9_-]{1,32} and sizes are in (header size, kMaxBlobBytes].
// InvalidArgument names the chunk index and field.
Status ValidateManifest(const Manifest& manifest);

// Serializes a manifest as pretty-printed JSON. Hashes are 32 lowercase hex digits.
std::string ToJson(const Manifest& manifest);

// Parses and validates manifest.json. Corruption (naming the chunk index and field) for a
// malformed or inconsistent document, Unsupported for another format version.
Result<Manifest> ParseManifest(std::string_view json);

// True for a codec level name that is safe as a file name: [a-z0-9_-], 1 to 32 characters.
bool IsLevelName(std::string_view name);

}  // namespace sparkv
