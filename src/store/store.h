// A chunk store: plain files under one root folder, served as they are by `sparkv serve` or any
// static HTTP server (DESIGN.md section 4):
//   <root>/v1/contexts/<context-key>/manifest.json
//   <root>/v1/chunks/<chunk-key>/<codec>.skv
// Every write is atomic (temporary file, fsync, rename), so readers never see half a file. Blobs
// are immutable: once a valid blob is stored under a key and codec, later writes keep it.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>

#include "common/file_util.h"
#include "common/hash.h"
#include "store/manifest.h"
#include "sparkv/status.h"

namespace sparkv {

class Store {
 public:
  // Does not touch the disk; folders are created by the first write.
  explicit Store(std::string root);
  // Creates the root folder if it is missing; fails if it cannot be created or is not a folder.
  static Result<Store> Open(std::string root);

  const std::string& root() const { return root_; }

  // Paths relative to the root; the same strings are the URL paths, without the leading '/'.
  static std::string ManifestRelativePath(const Hash128& context_key);
  // REQUIRES: IsLevelName(codec_name); the server and the store reject other names.
  static std::string BlobRelativePath(const Hash128& chunk_key, std::string_view codec_name);

  std::string ManifestPath(const Hash128& context_key) const;
  std::string BlobPath(const Hash128& chunk_key, std::string_view codec_name) const;

  // Stores a whole blob as BlobPath(chunk_key, codec_name) after checking it (VerifyBlob) and that
  // its header names the same chunk key and codec (Mismatch otherwise). If a valid blob is already
  // stored there it is kept, and the returned entry describes the stored file, which the caller
  // lists in its manifest. An invalid stored file is replaced. Safe against concurrent writers in
  // any processes: exactly one file wins and every writer gets its entry.
  Result<LevelEntry> WriteBlob(const Hash128& chunk_key, std::string_view codec_name,
                               std::span<const uint8_t> blob);

  // Maps a stored blob. NotFound if absent. The bytes are not verified here: DecodeBlob does it.
  Result<MappedFile> ReadBlob(const Hash128& chunk_key, std::string_view codec_name) const;

  // Validates and writes manifest.json under its context key, replacing an older one.
  Status WriteManifest(const Manifest& manifest);

  // Reads and parses manifest.json; Mismatch if its context key is not `context_key`.
  Result<Manifest> ReadManifest(const Hash128& context_key) const;

 private:
  std::string root_;
};

}  // namespace sparkv
