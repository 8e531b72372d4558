#include "engine/thread_pool.h"

#include <algorithm>

namespace sparkv {
namespace {

// Spin iterations before a thread falls back to a futex wait. A forward pass issues ParallelFor
// calls back to back, so a short spin catches the next job without a syscall. A longer spin would
// burn a core that other processes on a small machine need.
constexpr int kSpinIterations = 4000;

}  // namespace

ThreadPool::ThreadPool(int n_threads) {
  if (n_threads <= 0) n_threads = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  n_threads_ = n_threads;
  workers_.reserve(static_cast<size_t>(n_threads - 1));
  for (int w = 1; w < n_threads; ++w) workers_.emplace_back([this, w] { WorkerLoop(w); });
}

ThreadPool::~ThreadPool() {
  stop_.store(true, std::memory_order_release);
  generation_.fetch_add(1, std::memory_order_acq_rel);
  generation_.notify_all();
  for (std::thread& t : workers_) t.join();
}

void ThreadPool::Drain(int worker) {
  for (;;) {
    const int64_t begin = next_.fetch_add(chunk_, std::memory_order_relaxed);
    if (begin >= n_) return;
    call_(ctx_, begin, std::min(n_, begin + chunk_), worker);
  }
}

void ThreadPool::Run(int64_t n, int64_t grain, Call call, void* ctx) {
  if (n <= 0) return;
  grain = std::max<int64_t>(grain, 1);
  if (n_threads_ == 1 || n <= grain) {
    call(ctx, 0, n, 0);
    return;
  }

  // Four chunks per thread balance uneven chunks (attention rows grow with position) without
  // making the shared counter hot.
  const int64_t target_chunks = static_cast<int64_t>(n_threads_) * 4;
  chunk_ = std::max(grain, (n + target_chunks - 1) / target_chunks);
  call_ = call;
  ctx_ = ctx;
  n_ = n;
  next_.store(0, std::memory_order_relaxed);
  n_busy_.store(n_threads_ - 1, std::memory_order_relaxed);
  generation_.fetch_add(1, std::memory_order_release);
  generation_.notify_all();

  Drain(0);

  for (int spin = 0; spin < kSpinIterations; ++spin) {
    if (n_busy_.load(std::memory_order_acquire) == 0) return;
    CpuRelax();
  }
  for (int32_t busy = n_busy_.load(std::memory_order_acquire); busy != 0;
       busy = n_busy_.load(std::memory_order_acquire)) {
    n_busy_.wait(busy, std::memory_order_acquire);
  }
}

void ThreadPool::WorkerLoop(int worker) {
  uint32_t seen = 0;
  for (;;) {
    uint32_t now = generation_.load(std::memory_order_acquire);
    for (int spin = 0; now == seen && spin < kSpinIterations; ++spin) {
      CpuRelax();
      now = generation_.load(std::memory_order_acquire);
    }
    while (now == seen) {
      generation_.wait(seen, std::memory_order_acquire);
      now = generation_.load(std::memory_order_acquire);
    }
    seen = now;
    if (stop_.load(std::memory_order_acquire)) return;

    Drain(worker);
    if (n_busy_.fetch_sub(1, std::memory_order_acq_rel) == 1) n_busy_.notify_one();
  }
}

}  // namespace sparkv
