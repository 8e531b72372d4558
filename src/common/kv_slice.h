// A writable or readable view of rows [begin, end) of every layer of a KV cache. The engine's
// cache hands these out; codecs encode from them and decode into them, so a streamed chunk is
// written straight into cache rows without an intermediate copy.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

namespace sparkv {

// Element type of a KV cache; stored in blob headers, so never renumber.
enum class KvElemType : uint8_t {
  kF32 = 0,
  kF16 = 1,
};

inline size_t KvElemBytes(KvElemType type) { return type == KvElemType::kF32 ? 4 : 2; }

struct KvSlice {
  KvElemType elem = KvElemType::kF16;
  int32_t n_layer = 0;
  int32_t n_head_kv = 0;
  int32_t head_dim = 0;
  int32_t begin = 0;  // first position, inclusive
  int32_t end = 0;    // last position, exclusive
  // k[l] and v[l] point at row `begin` of layer l. Rows are contiguous and each row is one
  // position: [n_tokens][n_head_kv * head_dim] elements of `elem`.
  std::vector<uint8_t*> k;  // [n_layer]
  std::vector<uint8_t*> v;  // [n_layer]

  int32_t n_tokens() const { return end - begin; }
  int32_t row_width() const { return n_head_kv * head_dim; }
  size_t row_bytes() const { return static_cast<size_t>(row_width()) * KvElemBytes(elem); }
  size_t layer_bytes() const { return row_bytes() * static_cast<size_t>(n_tokens()); }
};

}  // namespace sparkv
