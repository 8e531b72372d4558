// Files: read-only memory maps, whole-file reads and atomic writes.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>

#include "sparkv/status.h"

namespace sparkv {

// A read-only, private memory map of a whole file. Move-only; unmaps on destruction.
class MappedFile {
 public:
  static Result<MappedFile> Open(const std::string& path);

  MappedFile() = default;
  MappedFile(MappedFile&& other) noexcept;
  MappedFile& operator=(MappedFile&& other) noexcept;
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;
  ~MappedFile();

  const uint8_t* data() const { return data_; }
  size_t size() const { return size_; }
  std::span<const uint8_t> bytes() const { return {data_, size_}; }
  const std::string& path() const { return path_; }

 private:
  const uint8_t* data_ = nullptr;
  size_t size_ = 0;
  std::string path_;
};

Result<std::string> ReadFileToString(const std::string& path);

// Writes `bytes` to `path` so that readers see either the old file or the whole new one:
// a temporary file in the same folder, fsync, rename, then fsync of the folder.
Status WriteFileAtomic(const std::string& path, std::span<const uint8_t> bytes);
Status WriteFileAtomic(const std::string& path, std::string_view text);

// Creates `path` and its missing parents.
Status CreateDirectories(const std::string& path);

}  // namespace sparkv
