// Runs the layers of one chunk on several threads for the codecs whose payloads index their
// layers (f16ans, ans*).
#pragma once

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <thread>
#include <vector>

namespace sparkv::internal {

// Calls body(i) once for every i in [0, n), on the calling thread plus up to n_threads - 1
// threads started here, and returns when every call has returned. Which thread runs which i is
// unspecified, so body must write only to the outputs of its own i. n_threads <= 1 runs
// everything on the calling thread, in order.
template <typename Body>
void ParallelFor(int64_t n, int n_threads, const Body& body) {
  const int64_t n_workers = std::min<int64_t>(std::max(n_threads, 1), n);
  if (n_workers <= 1) {
    for (int64_t i = 0; i < n; ++i) body(i);
    return;
  }
  std::atomic<int64_t> next{0};
  const auto work = [&] {
    for (int64_t i = next.fetch_add(1); i < n; i = next.fetch_add(1)) body(i);
  };
  std::vector<std::thread> threads;
  threads.reserve(static_cast<size_t>(n_workers - 1));
  for (int64_t t = 1; t < n_workers; ++t) threads.emplace_back(work);
  work();
  for (std::thread& thread : threads) thread.join();
}

}  // namespace sparkv::internal
