// Hashes with a specified, stable algorithm (XXH3 from xxHash 0.8), never std::hash:
// chunk keys, fingerprints and checksums are stored in files and compared across machines.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>

namespace sparkv {

// A 128-bit XXH3 digest. Its string form is 32 lowercase hex digits, safe in a URL path.
struct Hash128 {
  uint64_t high = 0;
  uint64_t low = 0;

  std::string Hex() const;
  // Parses 32 hex digits; returns false on any other input.
  static bool FromHex(std::string_view text, Hash128* out);

  bool operator==(const Hash128&) const = default;
};

// XXH3-128 of a byte range.
Hash128 Hash128Of(const void* data, size_t n_bytes);

// XXH3-64 of a byte range, used as a payload checksum.
uint64_t Checksum64(const void* data, size_t n_bytes);

// Incremental XXH3-128. Feeding the same bytes in any split gives the same digest.
class Hasher128 {
 public:
  Hasher128();
  ~Hasher128();
  Hasher128(const Hasher128&) = delete;
  Hasher128& operator=(const Hasher128&) = delete;

  void Update(const void* data, size_t n_bytes);
  void UpdateString(std::string_view text);  // length-prefixed, so "ab"+"c" differs from "a"+"bc"
  void UpdateU64(uint64_t value);            // little-endian
  void UpdateHash(const Hash128& hash);      // high then low, little-endian
  Hash128 Finish() const;

 private:
  void* state_;  // XXH3_state_t*
};

}  // namespace sparkv
