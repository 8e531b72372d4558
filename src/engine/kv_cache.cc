#include "engine/kv_cache.h"

#include <algorithm>
#include <limits>
#include <new>
#include <string>

namespace sparkv {

Result<std::unique_ptr<KvCache>> KvCache::Create(const KvCacheShape& shape) {
  if (shape.n_layer <= 0 || shape.n_head_kv <= 0 || shape.head_dim <= 0 || shape.n_positions <= 0) {
    return InvalidArgumentError("KV cache shape n_layer=" + std::to_string(shape.n_layer) +
                                " n_head_kv=" + std::to_string(shape.n_head_kv) +
                                " head_dim=" + std::to_string(shape.head_dim) +
                                " n_positions=" + std::to_string(shape.n_positions) +
                                ": every size must be positive");
  }
  if (shape.elem != KvElemType::kF16 && shape.elem != KvElemType::kF32) {
    return InvalidArgumentError("KV cache element type " + std::to_string(static_cast<int>(shape.elem)) +
                                " is neither f16 (1) nor f32 (0)");
  }
  // Sizes in 64 bits: the product of the shape's int32 fields can overflow int32.
  const uint64_t row_width = static_cast<uint64_t>(shape.n_head_kv) * static_cast<uint64_t>(shape.head_dim);
  if (row_width > static_cast<uint64_t>(std::numeric_limits<int32_t>::max())) {
    return InvalidArgumentError("KV row of " + std::to_string(row_width) + " elements (n_head_kv x head_dim) is too wide");
  }
  const size_t row_bytes = shape.row_bytes();
  const size_t limit = std::numeric_limits<size_t>::max() / 4 / static_cast<size_t>(shape.n_layer);
  if (row_bytes > limit / static_cast<size_t>(shape.n_positions)) {
    return InvalidArgumentError("KV cache of " + std::to_string(shape.n_positions) + " positions x " +
                                std::to_string(row_bytes) + " bytes per row overflows; lower n_positions");
  }

  std::unique_ptr<KvCache> cache(new KvCache(shape));
  cache->layer_bytes_ = row_bytes * static_cast<size_t>(shape.n_positions);
  cache->k_.resize(static_cast<size_t>(shape.n_layer));
  cache->v_.resize(static_cast<size_t>(shape.n_layer));
  for (int32_t l = 0; l < shape.n_layer; ++l) {
    // Not zeroed: rows are written before they are marked resident, and only resident rows are read.
    cache->k_[l].reset(new (std::nothrow) uint8_t[cache->layer_bytes_]);
    cache->v_[l].reset(new (std::nothrow) uint8_t[cache->layer_bytes_]);
    if (!cache->k_[l] || !cache->v_[l]) {
      return InvalidArgumentError("cannot allocate a KV cache of " + std::to_string(cache->total_bytes()) +
                                  " bytes; lower n_positions");
    }
  }
  cache->resident_.assign(static_cast<size_t>(shape.n_positions), false);
  return cache;
}

KvSlice KvCache::Slice(int32_t begin, int32_t end) {
  KvSlice slice;
  slice.elem = shape_.elem;
  slice.n_layer = shape_.n_layer;
  slice.n_head_kv = shape_.n_head_kv;
  slice.head_dim = shape_.head_dim;
  slice.begin = begin;
  slice.end = end;
  slice.k.resize(static_cast<size_t>(shape_.n_layer));
  slice.v.resize(static_cast<size_t>(shape_.n_layer));
  for (int32_t l = 0; l < shape_.n_layer; ++l) {
    slice.k[l] = k_row(l, begin);
    slice.v[l] = v_row(l, begin);
  }
  return slice;
}

Result<KvSlice> KvCache::CheckedSlice(int32_t begin, int32_t end) {
  if (begin < 0 || begin > end || end > shape_.n_positions) {
    return InvalidArgumentError("KV slice [" + std::to_string(begin) + ", " + std::to_string(end) +
                                ") is not inside the cache's [0, " + std::to_string(shape_.n_positions) + ")");
  }
  return Slice(begin, end);
}

void KvCache::MarkResident(int32_t begin, int32_t end) {
  std::lock_guard<std::mutex> lock(mutex_);
  for (int32_t p = std::max(begin, 0); p < std::min(end, shape_.n_positions); ++p) resident_[p] = true;
}

void KvCache::MarkNotResident(int32_t begin, int32_t end) {
  std::lock_guard<std::mutex> lock(mutex_);
  for (int32_t p = std::max(begin, 0); p < std::min(end, shape_.n_positions); ++p) resident_[p] = false;
}

int32_t KvCache::FirstNotResident(int32_t begin, int32_t end) const {
  std::lock_guard<std::mutex> lock(mutex_);
  for (int32_t p = std::max(begin, 0); p < end; ++p) {
    if (p >= shape_.n_positions || !resident_[p]) return p;
  }
  return end;
}

bool KvCache::IsResident(int32_t begin, int32_t end) const {
  return begin >= end || FirstNotResident(begin, end) == end;
}

int32_t KvCache::n_resident() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return static_cast<int32_t>(std::count(resident_.begin(), resident_.end(), true));
}

void KvCache::Clear() {
  std::lock_guard<std::mutex> lock(mutex_);
  std::fill(resident_.begin(), resident_.end(), false);
}

}  // namespace sparkv
