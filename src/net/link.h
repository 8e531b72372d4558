// A model of one bottleneck network link: how many bytes it can carry, and when.
//
// Two kinds: a constant rate, and a mahimahi packet-delivery trace. Each trace line is a
// millisecond offset at which one 1500-byte packet may cross. A repeated value means several
// packets in that millisecond, and the schedule repeats with a period equal to the last offset.
// The server's pacer and the planner's simulator share this model, so a simulated transfer and a
// paced real one see the same link. Times are seconds since the link's origin (trace offset 0);
// sizes are bytes; 1 Mbit = 10^6 bits, as in the mahimahi traces' published averages.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "sparkv/status.h"

namespace sparkv {

// Position on a link's schedule: capacity before this point has been used or lost. A fresh
// cursor is at the link's origin with nothing used.
struct LinkCursor {
  double time_s = 0;               // constant-rate links: the time the link becomes free
  uint64_t opportunity = 0;        // trace links: index of the next delivery opportunity, counted
                                   // across loops of the trace
  uint32_t n_bytes_used = 0;       // trace links: bytes already placed in that opportunity
};

class Link {
 public:
  static constexpr uint32_t kPacketBytes = 1500;  // mahimahi's packet size per opportunity

  // A link that carries `rate_mbit` megabits per second without pause.
  // REQUIRES: rate_mbit > 0 and finite.
  static Result<Link> Constant(double rate_mbit);

  // Parses mahimahi trace text: one non-negative integer per line, non-decreasing, at least one
  // line, the last offset above 0 (it is the loop period). `name` appears in error messages.
  static Result<Link> ParseMahimahi(std::string_view text, const std::string& name);
  static Result<Link> LoadMahimahi(const std::string& path);

  bool is_trace() const { return !offsets_ms_.empty(); }
  // Long-run average: the constant rate, or the trace's bytes per loop over its period.
  double mean_bytes_per_s() const;
  double mean_mbit() const { return mean_bytes_per_s() * 8.0 / 1e6; }
  // Trace links: the loop period in milliseconds and the opportunities per loop; 0 otherwise.
  uint32_t period_ms() const { return period_ms_; }
  size_t n_opportunities_per_loop() const { return offsets_ms_.size(); }

  // Sends `n_bytes` that are ready at `start_s` after everything the cursor has already carried:
  // if the cursor lies before `start_s` the link sat idle and that capacity is lost. Moves the
  // cursor past the bytes and returns the time at which the last of them has crossed
  // (`start_s` or the cursor's time when n_bytes is 0).
  double Send(LinkCursor* cursor, double start_s, uint64_t n_bytes) const;

  // When `n_bytes` sent at `start_s` over an otherwise idle link have all crossed.
  double FinishTime(double start_s, uint64_t n_bytes) const;

  // Bytes the link can carry over [begin_s, end_s) when kept busy, counting a trace opportunity
  // as whole when its millisecond lies in the interval.
  double Capacity(double begin_s, double end_s) const;

  // The time from which the link is free after the bytes already sent through `cursor`: for a
  // trace link, the time of its next unused delivery opportunity.
  double FreeAt(const LinkCursor& cursor) const {
    return is_trace() ? OpportunityTime(cursor.opportunity) : cursor.time_s;
  }

 private:
  Link() = default;

  // Trace links: time in seconds of opportunity `index` (counted across loops), and the index of
  // the first opportunity at or after `time_s`.
  double OpportunityTime(uint64_t index) const;
  uint64_t FirstOpportunityAtOrAfter(double time_s) const;

  double bytes_per_s_ = 0;             // constant-rate links
  std::vector<uint32_t> offsets_ms_;   // [n_opportunities_per_loop], non-decreasing, trace links
  uint32_t period_ms_ = 0;             // the last offset
};

}  // namespace sparkv
