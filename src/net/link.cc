#include "net/link.h"

#include <algorithm>
#include <charconv>
#include <cmath>

#include "common/file_util.h"

namespace sparkv {
namespace {

// Offsets past this are certainly a broken file: 2^31 ms is almost 25 days of trace.
constexpr uint64_t kMaxOffsetMs = uint64_t{1} << 31;

std::string_view TrimSpace(std::string_view text) {
  while (!text.empty() && (text.front() == ' ' || text.front() == '\t' || text.front() == '\r')) {
    text.remove_prefix(1);
  }
  while (!text.empty() && (text.back() == ' ' || text.back() == '\t' || text.back() == '\r')) {
    text.remove_suffix(1);
  }
  return text;
}

}  // namespace

Result<Link> Link::Constant(double rate_mbit) {
  if (!(rate_mbit > 0) || !std::isfinite(rate_mbit)) {
    return InvalidArgumentError("link rate " + std::to_string(rate_mbit) +
                                " Mbit/s is not a positive finite number; pass a rate above 0");
  }
  Link link;
  link.bytes_per_s_ = rate_mbit * 1e6 / 8.0;
  return link;
}

Result<Link> Link::ParseMahimahi(std::string_view text, const std::string& name) {
  Link link;
  size_t line_number = 0;
  while (!text.empty()) {
    const size_t newline = text.find('\n');
    std::string_view line = TrimSpace(text.substr(0, newline));
    text = newline == std::string_view::npos ? std::string_view() : text.substr(newline + 1);
    ++line_number;
    if (line.empty()) continue;

    uint64_t offset_ms = 0;
    const auto [end, error] = std::from_chars(line.data(), line.data() + line.size(), offset_ms);
    if (error != std::errc() || end != line.data() + line.size()) {
      return CorruptionError("trace " + name + " line " + std::to_string(line_number) + ": '" +
                             std::string(line) +
                             "' is not a non-negative integer millisecond offset");
    }
    if (offset_ms > kMaxOffsetMs) {
      return CorruptionError("trace " + name + " line " + std::to_string(line_number) +
                             ": offset " + std::to_string(offset_ms) + " ms is beyond " +
                             std::to_string(kMaxOffsetMs) + " ms; the file is not a trace");
    }
    if (!link.offsets_ms_.empty() && offset_ms < link.offsets_ms_.back()) {
      return CorruptionError("trace " + name + " line " + std::to_string(line_number) +
                             ": offset " + std::to_string(offset_ms) +
                             " ms goes back in time (previous " +
                             std::to_string(link.offsets_ms_.back()) +
                             " ms); mahimahi traces are sorted");
    }
    link.offsets_ms_.push_back(static_cast<uint32_t>(offset_ms));
  }

  if (link.offsets_ms_.empty()) {
    return CorruptionError("trace " + name + " is empty: it contains no delivery opportunities");
  }
  link.period_ms_ = link.offsets_ms_.back();
  if (link.period_ms_ == 0) {
    return CorruptionError("trace " + name +
                           " ends at offset 0 ms, so it has no period to loop over; a trace "
                           "must span at least 1 ms");
  }
  return link;
}

Result<Link> Link::LoadMahimahi(const std::string& path) {
  SPARKV_ASSIGN_OR_RETURN(const std::string text, ReadFileToString(path));
  return ParseMahimahi(text, path);
}

double Link::mean_bytes_per_s() const {
  if (!is_trace()) return bytes_per_s_;
  return static_cast<double>(offsets_ms_.size()) * kPacketBytes / (period_ms_ / 1000.0);
}

double Link::OpportunityTime(uint64_t index) const {
  const uint64_t n = offsets_ms_.size();
  const uint64_t loop = index / n;
  return (static_cast<double>(loop) * period_ms_ + offsets_ms_[index % n]) / 1000.0;
}

uint64_t Link::FirstOpportunityAtOrAfter(double time_s) const {
  if (time_s <= 0) return 0;
  // Times that came from OpportunityTime() may not survive the trip through seconds exactly, so
  // a nanosecond of tolerance keeps such an opportunity at its own time rather than before it.
  const double time_ms = time_s * 1000.0 - 1e-6;
  const uint64_t n = offsets_ms_.size();
  uint64_t loop = static_cast<uint64_t>(std::max(0.0, time_ms) / period_ms_);
  const double within_ms = time_ms - static_cast<double>(loop) * period_ms_;

  auto it = std::lower_bound(offsets_ms_.begin(), offsets_ms_.end(), within_ms,
                             [](uint32_t offset, double t) { return offset < t; });
  if (it == offsets_ms_.end()) {
    ++loop;
    it = offsets_ms_.begin();
  }
  return loop * n + static_cast<uint64_t>(it - offsets_ms_.begin());
}

double Link::Send(LinkCursor* cursor, double start_s, uint64_t n_bytes) const {
  if (!is_trace()) {
    const double begin = std::max(cursor->time_s, start_s);
    cursor->time_s = begin + static_cast<double>(n_bytes) / bytes_per_s_;
    return cursor->time_s;
  }

  // An opportunity before start_s passed while the link had nothing to send; it is lost.
  if (OpportunityTime(cursor->opportunity) < start_s - 1e-9) {
    cursor->opportunity = FirstOpportunityAtOrAfter(start_s);
    cursor->n_bytes_used = 0;
  }
  if (n_bytes == 0) return std::max(start_s, OpportunityTime(cursor->opportunity));

  // Fill what is left of the current opportunity, then whole ones; the last byte decides the
  // finish time. An opportunity filled exactly is left behind so the next send starts fresh.
  const uint64_t room = kPacketBytes - cursor->n_bytes_used;
  if (n_bytes <= room) {
    const double finish = OpportunityTime(cursor->opportunity);
    cursor->n_bytes_used += static_cast<uint32_t>(n_bytes);
    if (cursor->n_bytes_used == kPacketBytes) {
      ++cursor->opportunity;
      cursor->n_bytes_used = 0;
    }
    return finish;
  }
  const uint64_t rest = n_bytes - room;
  const uint64_t n_more = (rest + kPacketBytes - 1) / kPacketBytes;
  const uint64_t last = cursor->opportunity + n_more;
  const double finish = OpportunityTime(last);
  const uint32_t used_in_last = static_cast<uint32_t>(rest - (n_more - 1) * kPacketBytes);
  if (used_in_last == kPacketBytes) {
    cursor->opportunity = last + 1;
    cursor->n_bytes_used = 0;
  } else {
    cursor->opportunity = last;
    cursor->n_bytes_used = used_in_last;
  }
  return finish;
}

double Link::FinishTime(double start_s, uint64_t n_bytes) const {
  LinkCursor cursor;
  cursor.time_s = start_s;
  return Send(&cursor, start_s, n_bytes);
}

double Link::Capacity(double begin_s, double end_s) const {
  if (end_s <= begin_s) return 0;
  if (!is_trace()) return (end_s - begin_s) * bytes_per_s_;
  const uint64_t first = FirstOpportunityAtOrAfter(begin_s);
  const uint64_t after_last = FirstOpportunityAtOrAfter(end_s);
  return static_cast<double>(after_last - first) * kPacketBytes;
}

}  // namespace sparkv
