// The device's KV cache: per layer a K and a V matrix of [n_positions][n_head_kv * head_dim]
// elements (f16 by default, f32 optional), allocated once, plus a record of which positions hold
// valid rows. Rows arrive by two paths: the engine's prefill, and codecs decoding streamed chunks
// straight into a KvSlice. A mutex guards the residency record, so a network thread can mark rows
// while the compute thread reads it. The rows themselves are not locked: a writer of one range and
// a reader of another must keep their ranges disjoint.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <vector>

#include "common/kv_slice.h"
#include "sparkv/status.h"

namespace sparkv {

struct KvCacheShape {
  int32_t n_layer = 0;
  int32_t n_head_kv = 0;
  int32_t head_dim = 0;
  int32_t n_positions = 0;  // capacity: positions [0, n_positions)
  KvElemType elem = KvElemType::kF16;

  int32_t row_width() const { return n_head_kv * head_dim; }
  size_t row_bytes() const { return static_cast<size_t>(row_width()) * KvElemBytes(elem); }
};

class KvCache {
 public:
  // Allocates every layer; fails on non-positive sizes or when the byte count overflows.
  static Result<std::unique_ptr<KvCache>> Create(const KvCacheShape& shape);

  const KvCacheShape& shape() const { return shape_; }
  int32_t n_positions() const { return shape_.n_positions; }
  size_t total_bytes() const { return 2 * static_cast<size_t>(shape_.n_layer) * layer_bytes_; }

  // Rows [begin, end) of every layer. The slice aliases the cache and stays valid for its life.
  // REQUIRES: 0 <= begin <= end <= n_positions().
  KvSlice Slice(int32_t begin, int32_t end);
  // Same, checking the range: InvalidArgument names the range and the capacity.
  Result<KvSlice> CheckedSlice(int32_t begin, int32_t end);

  // Row `pos` of layer `layer`: row_width() elements of shape().elem.
  uint8_t* k_row(int32_t layer, int32_t pos) { return k_[layer].get() + static_cast<size_t>(pos) * shape_.row_bytes(); }
  uint8_t* v_row(int32_t layer, int32_t pos) { return v_[layer].get() + static_cast<size_t>(pos) * shape_.row_bytes(); }

  // Residency of positions; ranges are half-open and clamped to the capacity. Thread-safe.
  void MarkResident(int32_t begin, int32_t end);
  void MarkNotResident(int32_t begin, int32_t end);
  bool IsResident(int32_t begin, int32_t end) const;  // true for an empty range
  // The first position in [begin, end) that is not resident, or end when all are.
  int32_t FirstNotResident(int32_t begin, int32_t end) const;
  int32_t n_resident() const;
  // Forgets every row (marks all positions not resident); the bytes stay allocated.
  void Clear();

 private:
  explicit KvCache(const KvCacheShape& shape) : shape_(shape) {}

  KvCacheShape shape_;
  size_t layer_bytes_ = 0;
  std::vector<std::unique_ptr<uint8_t[]>> k_;  // [n_layer] of [n_positions][row_width], elem
  std::vector<std::unique_ptr<uint8_t[]>> v_;  // [n_layer] of [n_positions][row_width], elem

  mutable std::mutex mutex_;
  std::vector<bool> resident_;  // [n_positions]; guarded by mutex_
};

}  // namespace sparkv
