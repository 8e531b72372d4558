#include "net/pacer.h"

#include <algorithm>

namespace sparkv {

Pacer::Pacer(Link link, double offset_s)
    : link_(std::move(link)),
      origin_(Clock::now() - std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(offset_s))) {
  const double two_ms_of_bytes = link_.mean_bytes_per_s() * 0.002;
  piece_bytes_ = static_cast<size_t>(
      std::clamp(two_ms_of_bytes, double{Link::kPacketBytes}, 64.0 * 1024.0));
}

Pacer::Clock::time_point Pacer::Reserve(size_t n_bytes) {
  const double now_s = std::chrono::duration<double>(Clock::now() - origin_).count();
  double finish_s = 0;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    // A sender back within the slack continues where the link became free. After a longer
    // pause the bytes start now: otherwise the slack would let the first bytes of every new
    // response through at once, and a short transfer would measure up to twice the rate.
    const bool continuing = link_.FreeAt(cursor_) >= now_s - kIdleSlackS;
    finish_s = link_.Send(&cursor_, continuing ? now_s - kIdleSlackS : now_s, n_bytes);
  }
  return origin_ + std::chrono::duration_cast<Clock::duration>(
                       std::chrono::duration<double>(finish_s));
}

}  // namespace sparkv
