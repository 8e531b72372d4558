// A KV cache owned by a test: per layer K and V buffers of rows [begin, end), with an optional
// byte offset so that codecs also meet rows that are not aligned to their element size.
#pragma once

#include <cstdint>
#include <cstring>
#include <random>
#include <vector>

#include "common/f16.h"
#include "common/kv_slice.h"

namespace sparkv::testing {

class TestKvCache {
 public:
  TestKvCache(KvElemType elem, int32_t n_layer, int32_t n_head_kv, int32_t head_dim,
              int32_t begin, int32_t end, size_t misalign = 0)
      : misalign_(misalign) {
    shape_.elem = elem;
    shape_.n_layer = n_layer;
    shape_.n_head_kv = n_head_kv;
    shape_.head_dim = head_dim;
    shape_.begin = begin;
    shape_.end = end;
    const size_t bytes = misalign + shape_.layer_bytes();
    k_.assign(static_cast<size_t>(n_layer), std::vector<uint8_t>(bytes, 0));
    v_.assign(static_cast<size_t>(n_layer), std::vector<uint8_t>(bytes, 0));
  }

  KvSlice slice() {
    KvSlice slice = shape_;
    slice.k.clear();
    slice.v.clear();
    for (int32_t l = 0; l < shape_.n_layer; ++l) {
      slice.k.push_back(k_[l].data() + misalign_);
      slice.v.push_back(v_[l].data() + misalign_);
    }
    return slice;
  }

  int64_t n_elements_per_block() const {
    return static_cast<int64_t>(shape_.n_tokens()) * shape_.row_width();
  }

  // Element `i` of layer `l`'s K (is_v false) or V block, i in [0, n_tokens * row_width).
  float Get(int32_t l, bool is_v, int64_t i) const {
    const uint8_t* p = (is_v ? v_ : k_)[l].data() + misalign_;
    if (shape_.elem == KvElemType::kF32) {
      float f;
      std::memcpy(&f, p + 4 * i, 4);
      return f;
    }
    uint16_t h;
    std::memcpy(&h, p + 2 * i, 2);
    return F16ToF32(h);
  }

  void Set(int32_t l, bool is_v, int64_t i, float value) {
    uint8_t* p = (is_v ? v_ : k_)[l].data() + misalign_;
    if (shape_.elem == KvElemType::kF32) {
      std::memcpy(p + 4 * i, &value, 4);
    } else {
      const uint16_t h = F32ToF16(value);
      std::memcpy(p + 2 * i, &h, 2);
    }
  }

  // Normal values with a per-row spread that varies, like real K rows with outlier channels.
  void FillRandom(uint32_t seed, float stddev = 1.0f) {
    std::mt19937 rng(seed);
    std::normal_distribution<float> normal(0.0f, stddev);
    std::uniform_real_distribution<float> spread(0.05f, 4.0f);
    for (int32_t l = 0; l < shape_.n_layer; ++l) {
      for (bool is_v : {false, true}) {
        for (int64_t i = 0; i < n_elements_per_block(); ++i) {
          Set(l, is_v, i, normal(rng) * spread(rng));
        }
      }
    }
  }

  // Values from integer arithmetic only, so the bytes are the same with every standard library
  // (std::normal_distribution's output is not specified). Range about [-4, 4].
  void FillPattern(uint32_t seed) {
    uint32_t state = seed * 2654435761u + 1;
    for (int32_t l = 0; l < shape_.n_layer; ++l) {
      for (bool is_v : {false, true}) {
        for (int64_t i = 0; i < n_elements_per_block(); ++i) {
          state = state * 1664525u + 1013904223u;
          Set(l, is_v, i, static_cast<float>(static_cast<int32_t>(state >> 20) - 2048) / 512.0f);
        }
      }
    }
  }

  // Every byte of every block, padding included, to check that a failed decode wrote nothing.
  std::vector<uint8_t> AllBytes() const {
    std::vector<uint8_t> all;
    for (const auto* blocks : {&k_, &v_}) {
      for (const auto& block : *blocks) all.insert(all.end(), block.begin(), block.end());
    }
    return all;
  }

  void FillBytes(uint8_t value) {
    for (auto* blocks : {&k_, &v_}) {
      for (auto& block : *blocks) std::fill(block.begin(), block.end(), value);
    }
  }

 private:
  KvSlice shape_;  // shape only; pointers come from slice()
  size_t misalign_;
  std::vector<std::vector<uint8_t>> k_;  // [n_layer][misalign + n_tokens * row_bytes]
  std::vector<std::vector<uint8_t>> v_;  // [n_layer][misalign + n_tokens * row_bytes]
};

}  // namespace sparkv::testing
