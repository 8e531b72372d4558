// Paces response bodies in real time through one shared Link: every response drawing from the
// same Pacer competes for the same capacity, as flows through one bottleneck do.
#pragma once

#include <chrono>
#include <cstddef>
#include <mutex>

#include "net/link.h"

namespace sparkv {

class Pacer {
 public:
  using Clock = std::chrono::steady_clock;

  // The link's origin (trace offset 0) lies `offset_s` seconds before the moment of
  // construction, so the first byte meets the schedule `offset_s` into it.
  // REQUIRES: offset_s >= 0 and finite.
  explicit Pacer(Link link, double offset_s = 0.0);

  // Queues `n_bytes` that are ready now behind everything reserved before, and returns when the
  // last of them has crossed the link. The caller writes them at that time. Thread-safe.
  Clock::time_point Reserve(size_t n_bytes);

  const Link& link() const { return link_; }

  // A write size that keeps each paced write near 2 ms of link time: small enough that
  // concurrent responses interleave finely, large enough to keep the write count modest.
  size_t piece_bytes() const { return piece_bytes_; }

 private:
  // A sender that comes back within this long after its last bytes crossed still counts as
  // keeping the link busy. Waking from a sleep takes up to several milliseconds on a loaded
  // machine, and counting that as idle time would lose capacity on every write: with 2 ms a
  // 16 Mbit/s fetch measured 15.0 Mbit/s under load, with 10 ms 16.0. A sender back after a
  // longer pause gets no such credit, so a new response does not start with a burst.
  static constexpr double kIdleSlackS = 0.010;

  Link link_;
  Clock::time_point origin_;
  size_t piece_bytes_;
  std::mutex mutex_;
  LinkCursor cursor_;  // guarded by mutex_
};

}  // namespace sparkv
