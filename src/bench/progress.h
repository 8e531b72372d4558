// A one-line progress display for long benchmark sweeps: runs done of the total, time elapsed and
// an estimate of the time left, redrawn in place on a terminal. Logs and pipes get nothing, so a
// CI log or a JSON report on stdout stays clean.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdio>
#include <string>

namespace sparkv {

// A width no line reaches: FormatProgress with it never shortens the line.
inline constexpr size_t kNoColumnLimit = static_cast<size_t>(-1);

// Formats the line, e.g. "[#####...............]  25/100 runs, 0:10 elapsed, about 0:30 left".
// `detail`, when not empty, follows the count after a comma (e.g. "point 3/10"). The estimate
// assumes the remaining runs take as long as the finished ones on average. Before the first run
// finishes it reads "estimating". Times are m:ss, or h:mm:ss from an hour on.
//
// The line has at most `columns - 1` characters, so that it never wraps in a terminal that wide
// (a wrapped line cannot be redrawn in place). Parts go in this order until it fits: the bar
// shrinks to 10 cells, the elapsed time goes, the bar goes, the detail goes. The count and the
// estimate stay; on a very narrow terminal the line is cut at the limit.
std::string FormatProgress(size_t n_done, size_t n_total, double elapsed_s, const std::string& detail = "",
                           size_t columns = kNoColumnLimit);

// The width of the terminal `stream` writes to, in characters: the window size the terminal
// reports, else $COLUMNS when it contains a positive number, else 80.
size_t TerminalColumns(FILE* stream);

// True when `stream` is a terminal (the only place an overwritten line reads well).
bool IsTerminal(FILE* stream);

class ProgressLine {
 public:
  // Draws on `stream` only when `enabled`; callers pass IsTerminal(stderr) && !json_on_stdout.
  // Nothing is drawn before `quiet_s` seconds have passed.
  ProgressLine(FILE* stream, bool enabled, double quiet_s = kQuietSeconds);
  ~ProgressLine();
  ProgressLine(const ProgressLine&) = delete;
  ProgressLine& operator=(const ProgressLine&) = delete;

  // Redraws the line with FormatProgress, fitted to TerminalColumns(stream) at each redraw (the
  // window may be resized during a sweep). A sweep shorter than the quiet time shows nothing, and
  // redraws come at most every kRedrawSeconds (the last one always), so a fast sweep neither
  // flickers nor slows down.
  void Update(size_t n_done, size_t n_total, const std::string& detail = "");
  // Erases the line, so that what is printed next starts at the left margin. Called by the
  // destructor too; a second call does nothing.
  void Finish();

  static constexpr double kQuietSeconds = 0.5;
  static constexpr double kRedrawSeconds = 0.1;

 private:
  FILE* stream_;
  bool enabled_;
  double quiet_s_;
  bool drawn_ = false;  // a line is on screen and must be erased by Finish()
  std::chrono::steady_clock::time_point start_;
  double last_draw_s_ = -1.0;  // elapsed seconds at the last redraw
};

}  // namespace sparkv
