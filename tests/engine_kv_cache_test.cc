#include <gtest/gtest.h>

#include <atomic>
#include <cstring>
#include <thread>

#include "engine/kv_cache.h"

namespace sparkv {
namespace {

KvCacheShape SmallShape(KvElemType elem) {
  KvCacheShape shape;
  shape.n_layer = 3;
  shape.n_head_kv = 2;
  shape.head_dim = 4;
  shape.n_positions = 100;
  shape.elem = elem;
  return shape;
}

TEST(KvCacheTest, RejectsNonPositiveAndOverflowingShapes) {
  KvCacheShape shape = SmallShape(KvElemType::kF16);
  shape.n_positions = 0;
  EXPECT_EQ(KvCache::Create(shape).status().code(), ErrorCode::kInvalidArgument);
  shape = SmallShape(KvElemType::kF16);
  shape.head_dim = -1;
  EXPECT_EQ(KvCache::Create(shape).status().code(), ErrorCode::kInvalidArgument);
  shape = SmallShape(KvElemType::kF32);
  shape.n_layer = 1 << 30;
  shape.n_head_kv = 1 << 30;
  shape.head_dim = 1 << 30;
  shape.n_positions = 1 << 30;
  EXPECT_EQ(KvCache::Create(shape).status().code(), ErrorCode::kInvalidArgument);
}

TEST(KvCacheTest, SliceAliasesCacheRows) {
  for (KvElemType elem : {KvElemType::kF16, KvElemType::kF32}) {
    auto cache = KvCache::Create(SmallShape(elem));
    ASSERT_TRUE(cache.ok());
    KvSlice slice = (*cache)->Slice(10, 20);
    EXPECT_EQ(slice.n_tokens(), 10);
    EXPECT_EQ(slice.row_bytes(), (*cache)->shape().row_bytes());
    EXPECT_EQ(slice.elem, elem);
    ASSERT_EQ(slice.k.size(), 3u);
    for (int l = 0; l < 3; ++l) {
      std::memset(slice.k[l], 0x11 * (l + 1), slice.layer_bytes());
      std::memset(slice.v[l], 0x22 * (l + 1), slice.layer_bytes());
      EXPECT_EQ((*cache)->k_row(l, 10)[0], 0x11 * (l + 1));
      EXPECT_EQ((*cache)->k_row(l, 19)[slice.row_bytes() - 1], 0x11 * (l + 1));
      EXPECT_EQ((*cache)->v_row(l, 15)[3], 0x22 * (l + 1));
    }
    EXPECT_EQ((*cache)->total_bytes(), 2u * 3 * 100 * slice.row_bytes());
  }
}

TEST(KvCacheTest, CheckedSliceRejectsRangesOutsideTheCache) {
  auto cache = KvCache::Create(SmallShape(KvElemType::kF16));
  ASSERT_TRUE(cache.ok());
  EXPECT_FALSE((*cache)->CheckedSlice(-1, 5).ok());
  EXPECT_FALSE((*cache)->CheckedSlice(5, 4).ok());
  EXPECT_FALSE((*cache)->CheckedSlice(90, 101).ok());
  EXPECT_TRUE((*cache)->CheckedSlice(0, 100).ok());
}

TEST(KvCacheTest, ResidencyTracksMarkedRanges) {
  auto cache = KvCache::Create(SmallShape(KvElemType::kF16));
  ASSERT_TRUE(cache.ok());
  KvCache& c = **cache;
  EXPECT_TRUE(c.IsResident(5, 5));
  EXPECT_FALSE(c.IsResident(0, 1));
  c.MarkResident(0, 32);
  c.MarkResident(64, 96);
  EXPECT_TRUE(c.IsResident(0, 32));
  EXPECT_FALSE(c.IsResident(0, 33));
  EXPECT_EQ(c.FirstNotResident(0, 100), 32);
  EXPECT_EQ(c.FirstNotResident(64, 100), 96);
  EXPECT_TRUE(c.IsResident(70, 96));
  EXPECT_EQ(c.n_resident(), 64);
  c.MarkNotResident(10, 12);
  EXPECT_EQ(c.FirstNotResident(0, 100), 10);
  EXPECT_FALSE(c.IsResident(90, 101)) << "positions past the capacity are never resident";
  c.Clear();
  EXPECT_EQ(c.n_resident(), 0);
  EXPECT_FALSE(c.IsResident(0, 1));
}

TEST(KvCacheTest, ConcurrentMarkingFromTwoThreadsLosesNothing) {
  KvCacheShape shape = SmallShape(KvElemType::kF16);
  shape.n_positions = 4096;
  auto cache = KvCache::Create(shape);
  ASSERT_TRUE(cache.ok());
  KvCache& c = **cache;
  // Interleaved single-position marks; std::vector<bool> shares words, so a missing lock would
  // lose bits.
  std::thread even([&] { for (int p = 0; p < 4096; p += 2) c.MarkResident(p, p + 1); });
  std::thread odd([&] { for (int p = 1; p < 4096; p += 2) c.MarkResident(p, p + 1); });
  even.join();
  odd.join();
  EXPECT_EQ(c.n_resident(), 4096);
  EXPECT_TRUE(c.IsResident(0, 4096));
}

}  // namespace
}  // namespace sparkv
