#include "kv/chunk_key.h"

#include <algorithm>
#include <cstdlib>
#include <cstring>

#include "common/log.h"
#include "kv/format.h"

namespace sparkv {

std::vector<ChunkRange> SplitIntoChunks(int32_t n_tokens, int32_t chunk_tokens) {
  std::vector<ChunkRange> chunks;
  if (n_tokens <= 0 || chunk_tokens <= 0) return chunks;

  chunks.reserve(static_cast<size_t>(n_tokens / chunk_tokens + 1));
  int32_t index = 0;
  // int64_t so that begin + chunk_tokens cannot overflow near INT32_MAX.
  for (int64_t begin = 0; begin < n_tokens; begin += chunk_tokens) {
    const int64_t end = std::min<int64_t>(begin + chunk_tokens, n_tokens);
    chunks.push_back({index++, static_cast<int32_t>(begin), static_cast<int32_t>(end)});
  }
  return chunks;
}

Hash128 RootKey(const Hash128& model_fingerprint, int32_t chunk_tokens) {
  unsigned char bytes[8];
  const uint32_t chunk_tokens_bits = static_cast<uint32_t>(chunk_tokens);
  std::memcpy(bytes, &chunk_tokens_bits, 4);
  std::memcpy(bytes + 4, &kFormatVersion, 4);

  Hasher128 hasher;
  hasher.UpdateHash(model_fingerprint);
  hasher.Update(bytes, sizeof(bytes));
  return hasher.Finish();
}

std::vector<Hash128> ChunkKeys(const Hash128& root, std::span<const int32_t> tokens,
                               std::span<const ChunkRange> chunks) {
  std::vector<Hash128> keys;
  keys.reserve(chunks.size());
  Hash128 previous = root;
  int32_t expected_begin = 0;
  for (size_t j = 0; j < chunks.size(); ++j) {
    const ChunkRange& chunk = chunks[j];
    if (chunk.index != static_cast<int32_t>(j) || chunk.begin != expected_begin ||
        chunk.end <= chunk.begin || static_cast<size_t>(chunk.end) > tokens.size()) {
      SPARKV_LOG_ERROR("chunk %zu is [%d, %d) with index %d; expected index %zu starting at %d "
                       "inside %zu tokens: build chunks with SplitIntoChunks",
                       j, chunk.begin, chunk.end, chunk.index, j, expected_begin, tokens.size());
      std::abort();
    }

    // Token ids are int32 in memory and little-endian on every supported host (kv/format.h),
    // so the span's bytes are the specified layout.
    Hasher128 hasher;
    hasher.UpdateHash(previous);
    hasher.Update(tokens.data() + chunk.begin,
                  static_cast<size_t>(chunk.n_tokens()) * sizeof(int32_t));
    previous = hasher.Finish();
    keys.push_back(previous);
    expected_begin = chunk.end;
  }
  return keys;
}

}  // namespace sparkv
