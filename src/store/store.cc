#include "store/store.h"

#include <fcntl.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>

#include "common/log.h"
#include "kv/blob.h"

namespace sparkv {
namespace {

// A stored blob that passes VerifyBlob and is filed under `chunk_key` and `codec`.
Result<LevelEntry> StoredEntry(const std::string& path, const Hash128& chunk_key, CodecId codec) {
  SPARKV_ASSIGN_OR_RETURN(MappedFile file, MappedFile::Open(path));
  Result<BlobHeader> header = VerifyBlob(file.bytes());
  if (!header.ok()) return header.status().WithContext(path);
  if (header->identity.chunk_key != chunk_key || header->codec != codec) {
    return CorruptionError(path + ": contains chunk " + header->identity.chunk_key.Hex() + " codec " +
                           std::to_string(static_cast<int>(header->codec)) +
                           ", not what its path names");
  }
  return LevelEntry{file.size(), Hash128Of(file.data(), file.size())};
}

void SyncFolder(const std::string& folder) {
  const int fd = ::open(folder.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd >= 0) {
    ::fsync(fd);
    ::close(fd);
  }
}

std::string FolderOf(const std::string& path) { return path.substr(0, path.rfind('/')); }

}  // namespace

Store::Store(std::string root) : root_(std::move(root)) {
  while (root_.size() > 1 && root_.back() == '/') root_.pop_back();
}

Result<Store> Store::Open(std::string root) {
  if (root.empty()) return InvalidArgumentError("the store root folder is empty; pass a folder path");
  Store store(std::move(root));
  SPARKV_RETURN_IF_ERROR(CreateDirectories(store.root_));
  return store;
}

std::string Store::ManifestRelativePath(const Hash128& context_key) {
  return "v1/contexts/" + context_key.Hex() + "/manifest.json";
}

std::string Store::BlobRelativePath(const Hash128& chunk_key, std::string_view codec_name) {
  return "v1/chunks/" + chunk_key.Hex() + "/" + std::string(codec_name) + ".skv";
}

std::string Store::ManifestPath(const Hash128& context_key) const {
  return root_ + "/" + ManifestRelativePath(context_key);
}

std::string Store::BlobPath(const Hash128& chunk_key, std::string_view codec_name) const {
  return root_ + "/" + BlobRelativePath(chunk_key, codec_name);
}

Result<LevelEntry> Store::WriteBlob(const Hash128& chunk_key, std::string_view codec_name,
                                    std::span<const uint8_t> blob) {
  SPARKV_ASSIGN_OR_RETURN(const BlobHeader header, VerifyBlob(blob));
  const Hash128& key = header.identity.chunk_key;
  const std::string_view header_codec = FindCodec(header.codec)->name();  // VerifyBlob checked it
  if (key != chunk_key || header_codec != codec_name) {
    return MismatchError("blob header names chunk " + key.Hex() + " codec " +
                         std::string(header_codec) + " but it is being stored as chunk " +
                         chunk_key.Hex() + " codec " + std::string(codec_name.substr(0, 40)));
  }
  const std::string path = BlobPath(key, codec_name);
  SPARKV_RETURN_IF_ERROR(CreateDirectories(FolderOf(path)));

  // Keep a valid stored blob: manifests written earlier list its digest.
  if (::access(path.c_str(), F_OK) == 0) {
    Result<LevelEntry> stored = StoredEntry(path, key, header.codec);
    if (stored.ok()) return stored;
    SPARKV_LOG_WARN("replacing damaged blob %s: %s", path.c_str(), stored.status().ToString().c_str());
    SPARKV_RETURN_IF_ERROR(WriteFileAtomic(path, blob));
    return LevelEntry{blob.size(), Hash128Of(blob.data(), blob.size())};
  }

  // Write the whole file under a private name, then link it into place: link() fails when the
  // name exists, so of several concurrent writers exactly one file wins and the rest adopt it.
  static std::atomic<uint64_t> counter{0};
  const std::string staging = path + ".staging." + std::to_string(::getpid()) + "." +
                              std::to_string(counter.fetch_add(1));
  SPARKV_RETURN_IF_ERROR(WriteFileAtomic(staging, blob));
  const int linked = ::link(staging.c_str(), path.c_str());
  const int link_error = errno;
  if (linked != 0 && link_error != EEXIST) {
    // Filesystems without hard links: fall back to rename, where the last writer wins.
    SPARKV_LOG_DEBUG("link to %s failed (%s); renaming instead", path.c_str(), std::strerror(link_error));
    if (::rename(staging.c_str(), path.c_str()) != 0) {
      const int rename_error = errno;
      ::unlink(staging.c_str());
      return IoError("rename '" + staging + "' to '" + path + "' failed: " + std::strerror(rename_error));
    }
    SyncFolder(FolderOf(path));
    return LevelEntry{blob.size(), Hash128Of(blob.data(), blob.size())};
  }
  ::unlink(staging.c_str());
  SyncFolder(FolderOf(path));
  if (linked == 0) return LevelEntry{blob.size(), Hash128Of(blob.data(), blob.size())};

  // Another writer got there first; its file is complete, because it was linked whole.
  Result<LevelEntry> stored = StoredEntry(path, key, header.codec);
  if (stored.ok()) return stored;
  SPARKV_LOG_WARN("replacing damaged blob %s: %s", path.c_str(), stored.status().ToString().c_str());
  SPARKV_RETURN_IF_ERROR(WriteFileAtomic(path, blob));
  return LevelEntry{blob.size(), Hash128Of(blob.data(), blob.size())};
}

Result<MappedFile> Store::ReadBlob(const Hash128& chunk_key, std::string_view codec_name) const {
  if (!IsLevelName(codec_name)) {
    return InvalidArgumentError("codec name '" + std::string(codec_name.substr(0, 40)) +
                                "' is not 1 to 32 characters of [a-z0-9_-]");
  }
  return MappedFile::Open(BlobPath(chunk_key, codec_name));
}

Status Store::WriteManifest(const Manifest& manifest) {
  SPARKV_RETURN_IF_ERROR(ValidateManifest(manifest));
  const std::string path = ManifestPath(manifest.context_key);
  SPARKV_RETURN_IF_ERROR(CreateDirectories(FolderOf(path)));
  return WriteFileAtomic(path, ToJson(manifest));
}

Result<Manifest> Store::ReadManifest(const Hash128& context_key) const {
  const std::string path = ManifestPath(context_key);
  SPARKV_ASSIGN_OR_RETURN(const std::string text, ReadFileToString(path));
  Result<Manifest> manifest = ParseManifest(text);
  if (!manifest.ok()) return manifest.status().WithContext(path);
  if (manifest->context_key != context_key) {
    return MismatchError(path + ": context_key is " + manifest->context_key.Hex() +
                         " but the file is stored under " + context_key.Hex());
  }
  return manifest;
}

}  // namespace sparkv
