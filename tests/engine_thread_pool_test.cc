#include <gtest/gtest.h>

#include <atomic>
#include <mutex>
#include <set>
#include <vector>

#include "engine/thread_pool.h"

namespace sparkv {
namespace {

TEST(ThreadPoolTest, CoversEveryIndexExactlyOnce) {
  ThreadPool pool(4);
  for (int64_t n : {1, 2, 3, 7, 64, 1000, 12345}) {
    for (int64_t grain : {1, 5, 100}) {
      std::vector<std::atomic<int>> hits(static_cast<size_t>(n));
      pool.ParallelFor(n, grain, [&](int64_t begin, int64_t end) {
        EXPECT_LT(begin, end);
        for (int64_t i = begin; i < end; ++i) hits[i].fetch_add(1);
      });
      for (int64_t i = 0; i < n; ++i) ASSERT_EQ(hits[i].load(), 1) << "n " << n << " index " << i;
    }
  }
}

TEST(ThreadPoolTest, ZeroItemsCallsNothing) {
  ThreadPool pool(3);
  bool called = false;
  pool.ParallelFor(0, [&](int64_t, int64_t) { called = true; });
  EXPECT_FALSE(called);
}

TEST(ThreadPoolTest, WorkerIndexIsInRangeAndRangesAreDisjointPerCall) {
  ThreadPool pool(3);
  std::mutex mutex;
  std::set<int> workers;
  pool.ParallelFor(3000, 1, [&](int64_t begin, int64_t end, int worker) {
    EXPECT_GE(worker, 0);
    EXPECT_LT(worker, pool.n_threads());
    std::lock_guard<std::mutex> lock(mutex);
    workers.insert(worker);
  });
  EXPECT_FALSE(workers.empty());
}

TEST(ThreadPoolTest, ManyBackToBackCallsAllComplete) {
  // Exercises the spin and futex hand-offs: each call must see the previous one finished.
  ThreadPool pool(2);
  int64_t total = 0;
  for (int call = 0; call < 20000; ++call) {
    std::atomic<int64_t> sum{0};
    pool.ParallelFor(16, 1, [&](int64_t begin, int64_t end) {
      for (int64_t i = begin; i < end; ++i) sum.fetch_add(i);
    });
    total += sum.load();
  }
  EXPECT_EQ(total, int64_t{20000} * (15 * 16 / 2));
}

TEST(ThreadPoolTest, SingleThreadRunsInline) {
  ThreadPool pool(1);
  EXPECT_EQ(pool.n_threads(), 1);
  const std::thread::id caller = std::this_thread::get_id();
  pool.ParallelFor(100, [&](int64_t begin, int64_t end) {
    EXPECT_EQ(std::this_thread::get_id(), caller);
    EXPECT_EQ(begin, 0);
    EXPECT_EQ(end, 100);
  });
}

TEST(ThreadPoolTest, DefaultUsesEveryCore) {
  ThreadPool pool;
  EXPECT_EQ(pool.n_threads(), static_cast<int>(std::max(1u, std::thread::hardware_concurrency())));
}

}  // namespace
}  // namespace sparkv
