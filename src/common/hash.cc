#include "common/hash.h"

#include <xxhash.h>

#include <cstring>

namespace sparkv {

std::string Hash128::Hex() const {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string text(32, '0');
  for (int i = 0; i < 16; ++i) {
    text[15 - i] = kDigits[(high >> (4 * i)) & 0xf];
    text[31 - i] = kDigits[(low >> (4 * i)) & 0xf];
  }
  return text;
}

bool Hash128::FromHex(std::string_view text, Hash128* out) {
  if (text.size() != 32) return false;
  uint64_t parts[2] = {0, 0};
  for (size_t i = 0; i < 32; ++i) {
    const char c = text[i];
    uint64_t digit;
    if (c >= '0' && c <= '9') digit = c - '0';
    else if (c >= 'a' && c <= 'f') digit = c - 'a' + 10;
    else return false;
    parts[i / 16] = (parts[i / 16] << 4) | digit;
  }
  out->high = parts[0];
  out->low = parts[1];
  return true;
}

Hash128 Hash128Of(const void* data, size_t n_bytes) {
  const XXH128_hash_t h = XXH3_128bits(data, n_bytes);
  return Hash128{h.high64, h.low64};
}

uint64_t Checksum64(const void* data, size_t n_bytes) { return XXH3_64bits(data, n_bytes); }

Hasher128::Hasher128() : state_(XXH3_createState()) {
  XXH3_128bits_reset(static_cast<XXH3_state_t*>(state_));
}

Hasher128::~Hasher128() { XXH3_freeState(static_cast<XXH3_state_t*>(state_)); }

void Hasher128::Update(const void* data, size_t n_bytes) {
  XXH3_128bits_update(static_cast<XXH3_state_t*>(state_), data, n_bytes);
}

void Hasher128::UpdateU64(uint64_t value) {
  unsigned char bytes[8];
  for (int i = 0; i < 8; ++i) bytes[i] = static_cast<unsigned char>(value >> (8 * i));
  Update(bytes, sizeof(bytes));
}

void Hasher128::UpdateString(std::string_view text) {
  UpdateU64(text.size());
  Update(text.data(), text.size());
}

void Hasher128::UpdateHash(const Hash128& hash) {
  UpdateU64(hash.high);
  UpdateU64(hash.low);
}

Hash128 Hasher128::Finish() const {
  const XXH128_hash_t h = XXH3_128bits_digest(static_cast<XXH3_state_t*>(state_));
  return Hash128{h.high64, h.low64};
}

}  // namespace sparkv
