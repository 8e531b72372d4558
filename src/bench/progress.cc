#include "bench/progress.h"

#include <sys/ioctl.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>

#include "common/clock.h"

namespace sparkv {
namespace {

constexpr size_t kBarWidth = 20;
// Width assumed when neither the terminal nor $COLUMNS gives one.
constexpr size_t kDefaultColumns = 80;

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

std::string FormatProgress(size_t n_done, size_t n_total, double elapsed_s, const std::string& detail,
                           size_t columns) {
  n_done = std::min(n_done, n_total);
  // The count is padded to the total's width, so the rest of the line does not shift as it grows.
  const std::string total = std::to_string(n_total);
  const std::string done = std::to_string(n_done);
  const std::string count =
      std::string(total.size() - std::min(total.size(), done.size()), ' ') + done + "/" + total + " runs";
  std::string estimate;
  if (n_done == n_total) {
    estimate = "done";
  } else if (n_done == 0) {
    estimate = "estimating";
  } else {
    const double left_s = elapsed_s * static_cast<double>(n_total - n_done) / static_cast<double>(n_done);
    estimate = "about " + Duration(left_s) + " left";
  }
  const auto compose = [&](size_t bar_width, bool with_detail, bool with_elapsed) {
    std::string line;
    if (bar_width > 0) {
      const size_t filled = n_total == 0 ? bar_width : n_done * bar_width / n_total;
      line = "[" + std::string(filled, '#') + std::string(bar_width - filled, '.') + "] ";
    }
    line += count;
    if (with_detail && !detail.empty()) line += ", " + detail;
    if (with_elapsed) line += ", " + Duration(elapsed_s) + " elapsed";
    return line + ", " + estimate;
  };

  // The last column stays free: a line that fills it makes some terminals wrap at once.
  const size_t limit = columns == 0 ? 0 : columns - 1;
  struct Form {
    size_t bar_width;
    bool with_detail;
    bool with_elapsed;
  };
  constexpr Form kForms[] = {{kBarWidth, true, true},  {kBarWidth / 2, true, true}, {kBarWidth / 2, true, false},
                             {0, true, false},          {0, false, false}};
  std::string line;
  for (const Form& form : kForms) {
    line = compose(form.bar_width, form.with_detail, form.with_elapsed);
    if (line.size() <= limit) return line;
  }
  return line.substr(0, limit);
}

size_t TerminalColumns(FILE* stream) {
  winsize size{};
  if (stream != nullptr && ::ioctl(::fileno(stream), TIOCGWINSZ, &size) == 0 && size.ws_col > 0) return size.ws_col;
  if (const char* text = std::getenv("COLUMNS"); text != nullptr && *text != '\0') {
    char* end = nullptr;
    const long value = std::strtol(text, &end, 10);
    if (*end == '\0' && value > 0 && value <= 100000) return static_cast<size_t>(value);
  }
  return kDefaultColumns;
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
  std::fprintf(stream_, "\r%s\x1b[K", FormatProgress(n_done, n_total, elapsed_s, detail, TerminalColumns(stream_)).c_str());
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
