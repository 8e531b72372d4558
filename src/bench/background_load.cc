#include "bench/background_load.h"

#include <chrono>

namespace sparkv {
namespace {

using Clock = std::chrono::steady_clock;

// Short enough that a duty cycle reads as a steady share of a core at the engine's time scale
// (one chunk's prefill takes tens of milliseconds or more), long enough that sleeping and waking
// cost little of it.
constexpr std::chrono::microseconds kPeriod{10000};

}  // namespace

BackgroundLoad::BackgroundLoad(int n_threads, double duty) {
  for (int i = 0; i < n_threads; ++i) threads_.emplace_back([this, duty] { Spin(duty); });
}

BackgroundLoad::~BackgroundLoad() {
  stop_.store(true);
  for (std::thread& thread : threads_) thread.join();
}

void BackgroundLoad::Spin(double duty) {
  const auto busy = std::chrono::duration_cast<Clock::duration>(kPeriod * duty);
  // Integer arithmetic the compiler cannot drop, so the core really stays busy.
  volatile uint64_t sink = 1;
  while (!stop_.load(std::memory_order_relaxed)) {
    const Clock::time_point period_start = Clock::now();
    uint64_t n = 0;
    while (Clock::now() - period_start < busy) {
      for (int k = 0; k < 256; ++k) sink = sink * 6364136223846793005ull + 1442695040888963407ull;
      ++n;
    }
    n_spins_.fetch_add(n, std::memory_order_relaxed);
    if (busy < kPeriod) std::this_thread::sleep_until(period_start + kPeriod);
  }
}

}  // namespace sparkv
