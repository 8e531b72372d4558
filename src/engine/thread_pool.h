// A fixed set of worker threads that split index ranges between them. Threads are created once.
// A ParallelFor call wakes them after a short spin or through a futex wait, so a call costs
// microseconds rather than a thread creation.
#pragma once

#include <atomic>
#include <cstdint>
#include <thread>
#include <type_traits>
#include <vector>

namespace sparkv {

// Tells the CPU that this thread spins on a memory location, which saves power and frees the
// core's other hyperthread on x86.
inline void CpuRelax() {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#endif
}

class ThreadPool {
 public:
  // n_threads counts the calling thread too. Default: 0 = std::thread::hardware_concurrency().
  explicit ThreadPool(int n_threads = 0);
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  int n_threads() const { return n_threads_; }

  // Calls fn(begin, end) or fn(begin, end, worker) over disjoint ranges that cover [0, n). Each
  // range is at least `grain` long except the last. `worker` is in [0, n_threads()) and names the
  // thread, so callers can index per-thread scratch. Returns when every range is done.
  // REQUIRES: not called from inside fn, and from one thread at a time.
  template <typename Fn>
  void ParallelFor(int64_t n, int64_t grain, Fn&& fn) {
    using F = std::remove_reference_t<Fn>;
    Run(n, grain, [](void* ctx, int64_t begin, int64_t end, int worker) {
      F& f = *static_cast<F*>(ctx);
      if constexpr (std::is_invocable_v<F&, int64_t, int64_t, int>) {
        f(begin, end, worker);
      } else {
        f(begin, end);
      }
    }, const_cast<void*>(static_cast<const void*>(&fn)));
  }
  template <typename Fn>
  void ParallelFor(int64_t n, Fn&& fn) {
    ParallelFor(n, 1, std::forward<Fn>(fn));
  }

 private:
  using Call = void (*)(void* ctx, int64_t begin, int64_t end, int worker);

  void Run(int64_t n, int64_t grain, Call call, void* ctx);
  void WorkerLoop(int worker);
  void Drain(int worker);

  int n_threads_ = 1;
  std::vector<std::thread> workers_;  // n_threads_ - 1; the caller is worker 0

  // The current job; written by the caller before `generation_` moves on.
  Call call_ = nullptr;
  void* ctx_ = nullptr;
  int64_t n_ = 0;
  int64_t chunk_ = 1;
  std::atomic<int64_t> next_{0};       // first index not yet claimed
  std::atomic<uint32_t> generation_{0};  // bumped once per job; workers wait on it
  std::atomic<int32_t> n_busy_{0};       // workers still inside the current job
  std::atomic<bool> stop_{false};
};

}  // namespace sparkv
