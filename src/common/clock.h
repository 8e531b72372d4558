// Monotonic time for measuring durations. Wall-clock time is never used for a measurement.
#pragma once

#include <chrono>

namespace sparkv {

using SteadyClock = std::chrono::steady_clock;

// Seconds elapsed since `start`, a time taken from SteadyClock.
inline double SecondsSince(SteadyClock::time_point start) {
  return std::chrono::duration<double>(SteadyClock::now() - start).count();
}

}  // namespace sparkv
