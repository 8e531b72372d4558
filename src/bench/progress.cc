#include "bench/progress.h"

#include <unistd.h>

#include <algorithm>
#include <cmath>

#include "common/clock.h"

namespace sparkv {
namespace {

constexpr size_t kBarWidth = 20;

std::string Duration(double seconds) {
  const long total = std::lround(std::max(0.0, seconds));
  const long hours = total / 3600;
  char text[32];
  if (hours > 0) {
    std::snprintf(text, sizeof text, "%ld:%02ld:%02ld", hours, total / 60 % 60, total % 60);
  } else {
    std::snprintf(text, sizeof text, "%ld:%02ld", total / 60, total % 60);
  }
  return text;
}

}  // namespace

std::string FormatProgress(size_t n_done, size_t n_total, double elapsed_s, const std::string& detail) {
  n_done = std::min(n_done, n_total);
  const size_t filled = n_total == 0 ? kBarWidth : n_done * kBarWidth / n_total;
  std::string line = "[" + std::string(filled, '#') + std::string(kBarWidth - filled, '.') + "] ";

  // The count is padded to the total's width, so the rest of the line does not shift as it grows.
  const std::string total = std::to_string(n_total);
  const std::string done = std::to_string(n_done);
  line += std::string(total.size() - std::min(total.size(), done.size()), ' ') + done + "/" + total + " runs";
  if (!detail.empty()) line += ", " + detail;
  line += ", " + Duration(elapsed_s) + " elapsed, ";
  if (n_done == n_total) return line + "done";
  if (n_done == 0) return line + "estimating";
  const double left_s = elapsed_s * static_cast<double>(n_total - n_done) / static_cast<double>(n_done);
  return line + "about " + Duration(left_s) + " left";
}

bool IsTerminal(FILE* stream) { return stream != nullptr && ::isatty(::fileno(stream)) == 1; }

ProgressLine::ProgressLine(FILE* stream, bool enabled, double quiet_s)
    : stream_(stream), enabled_(enabled && stream != nullptr), quiet_s_(quiet_s), start_(SteadyClock::now()) {}

ProgressLine::~ProgressLine() { Finish(); }

void ProgressLine::Update(size_t n_done, size_t n_total, const std::string& detail) {
  if (!enabled_) return;
  const double elapsed_s = SecondsSince(start_);
  if (elapsed_s < quiet_s_) return;
  if (last_draw_s_ >= 0.0 && elapsed_s - last_draw_s_ < kRedrawSeconds && n_done < n_total) return;
  last_draw_s_ = elapsed_s;
  // "\r" returns to the line's start and "\x1b[K" erases what a longer earlier line left behind.
  std::fprintf(stream_, "\r%s\x1b[K", FormatProgress(n_done, n_total, elapsed_s, detail).c_str());
  std::fflush(stream_);
  drawn_ = true;
}

void ProgressLine::Finish() {
  if (!drawn_) return;
  std::fputs("\r\x1b[K", stream_);
  std::fflush(stream_);
  drawn_ = false;
}

}  // namespace sparkv
