// Busy threads that compete with the engine for the CPU during a real benchmark run, standing in
// for other apps on a phone. In the simulator the same effect is the device slowdown: compute
// and decode take `slowdown` times the profiled time. A real run measures the factor it met
// (LoadReport::device_speed_factor), which is the slowdown to simulate it with.
#pragma once

#include <atomic>
#include <cstdint>
#include <thread>
#include <vector>

namespace sparkv {

class BackgroundLoad {
 public:
  // Starts `n_threads` threads that each spin for `duty` of every 10 ms period and sleep for the
  // rest. REQUIRES: n_threads >= 0, duty in (0, 1]. Zero threads start nothing.
  BackgroundLoad(int n_threads, double duty);
  ~BackgroundLoad();  // stops and joins the threads
  BackgroundLoad(const BackgroundLoad&) = delete;
  BackgroundLoad& operator=(const BackgroundLoad&) = delete;

  // Returns the spin iterations so far over all threads. A test reads it to check that they ran.
  uint64_t n_spins() const { return n_spins_.load(std::memory_order_relaxed); }

 private:
  void Spin(double duty);

  std::atomic<bool> stop_{false};
  std::atomic<uint64_t> n_spins_{0};
  std::vector<std::thread> threads_;
};

}  // namespace sparkv
