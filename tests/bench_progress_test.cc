// The progress line of long `sparkv bench` sweeps: its text, that it draws and erases in place on
// a terminal, and that it stays silent elsewhere (the CLI side is in bench_cli_test.cc).
#include "bench/progress.h"

#include <gtest/gtest.h>

#include <cstdio>
#include <cstdlib>
#include <string>

namespace sparkv {
namespace {

// What has been written to `file` so far.
std::string Contents(FILE* file) {
  std::fflush(file);
  std::rewind(file);
  std::string text;
  for (int ch = std::fgetc(file); ch != EOF; ch = std::fgetc(file)) text += static_cast<char>(ch);
  return text;
}

TEST(FormatProgressTest, ShowsCountElapsedAndEstimate) {
  EXPECT_EQ(FormatProgress(25, 100, 10.0), "[#####...............]  25/100 runs, 0:10 elapsed, about 0:30 left");
  EXPECT_EQ(FormatProgress(1, 4, 75.0, "point 1/2"),
            "[#####...............] 1/4 runs, point 1/2, 1:15 elapsed, about 3:45 left");
}

TEST(FormatProgressTest, EstimatesAfterFirstRun) {
  EXPECT_EQ(FormatProgress(0, 8, 3.0), "[....................] 0/8 runs, 0:03 elapsed, estimating");
}

TEST(FormatProgressTest, FinishedSweepSaysDone) {
  EXPECT_EQ(FormatProgress(8, 8, 3.0), "[####################] 8/8 runs, 0:03 elapsed, done");
  // More done than the total (a caller's miscount) is shown as finished, not as an overfull bar.
  EXPECT_EQ(FormatProgress(9, 8, 3.0), "[####################] 8/8 runs, 0:03 elapsed, done");
  EXPECT_EQ(FormatProgress(0, 0, 0.0), "[####################] 0/0 runs, 0:00 elapsed, done");
}

TEST(FormatProgressTest, LongTimesShowHours) {
  EXPECT_EQ(FormatProgress(1, 3, 3725.0), "[######..............] 1/3 runs, 1:02:05 elapsed, about 2:04:10 left");
}

// A long sweep's line as `sparkv bench` draws it: 91 characters in full, too wide for 80 columns.
TEST(FormatProgressTest, FitsTheTerminalWidth) {
  const std::string detail = "point 12/240";
  const std::string full = FormatProgress(1234, 12000, 3725.0, detail);
  ASSERT_GT(full.size(), 79u) << full;

  // Wide enough: nothing is dropped.
  EXPECT_EQ(FormatProgress(1234, 12000, 3725.0, detail, 200), full);

  // 80 columns: at most 79 characters, and the count, detail and estimate are still there.
  const std::string at80 = FormatProgress(1234, 12000, 3725.0, detail, 80);
  EXPECT_LE(at80.size(), 79u) << at80;
  EXPECT_NE(at80.find(" 1234/12000 runs"), std::string::npos) << at80;
  EXPECT_NE(at80.find(detail), std::string::npos) << at80;
  EXPECT_NE(at80.find("left"), std::string::npos) << at80;

  // 40 columns: the bar, elapsed time and detail give way to the count and the estimate.
  const std::string at40 = FormatProgress(1234, 12000, 3725.0, detail, 40);
  EXPECT_LE(at40.size(), 39u) << at40;
  EXPECT_EQ(at40.rfind(" 1234/12000 runs, about ", 0), 0u) << at40;
  EXPECT_EQ(at40.find(detail), std::string::npos) << at40;
}

TEST(FormatProgressTest, NeverExceedsTheWidth) {
  for (size_t columns = 0; columns <= 120; ++columns) {
    for (const size_t n_done : {size_t{0}, size_t{7}, size_t{100}}) {
      const std::string line = FormatProgress(n_done, 100, 125.0, "point 3/10", columns);
      EXPECT_LE(line.size(), columns == 0 ? 0 : columns - 1) << columns << ": " << line;
    }
  }
}

TEST(TerminalColumnsTest, FileUsesColumnsVariableElse80) {
  FILE* file = std::tmpfile();
  ASSERT_NE(file, nullptr);
  const char* saved = std::getenv("COLUMNS");
  const std::string restore = saved != nullptr ? saved : "";
  ::setenv("COLUMNS", "132", 1);
  EXPECT_EQ(TerminalColumns(file), 132u);
  ::setenv("COLUMNS", "wide", 1);
  EXPECT_EQ(TerminalColumns(file), 80u);
  ::unsetenv("COLUMNS");
  EXPECT_EQ(TerminalColumns(file), 80u);
  if (saved != nullptr) ::setenv("COLUMNS", restore.c_str(), 1);
  std::fclose(file);
}

TEST(ProgressLineTest, DisabledLineWritesNothing) {
  FILE* file = std::tmpfile();
  ASSERT_NE(file, nullptr);
  {
    ProgressLine line(file, /*enabled=*/false, /*quiet_s=*/0.0);
    line.Update(1, 4);
    line.Update(4, 4);
    line.Finish();
  }
  EXPECT_EQ(Contents(file), "");
  std::fclose(file);
}

TEST(ProgressLineTest, EnabledLineRedrawsAndErases) {
  FILE* file = std::tmpfile();
  ASSERT_NE(file, nullptr);
  {
    ProgressLine line(file, /*enabled=*/true, /*quiet_s=*/0.0);
    line.Update(1, 4);
    line.Update(4, 4);  // the last update is always drawn
  }
  const std::string text = Contents(file);
  EXPECT_EQ(text.rfind("\r[#####...............] 1/4 runs, ", 0), 0u) << text;
  EXPECT_NE(text.find("\r[####################] 4/4 runs, "), std::string::npos) << text;
  EXPECT_EQ(text.find('\n'), std::string::npos) << "a progress line never ends a line: " << text;
  const std::string erase = "\r\x1b[K";
  ASSERT_GE(text.size(), erase.size());
  EXPECT_EQ(text.substr(text.size() - erase.size()), erase) << "the destructor erases the line";
  std::fclose(file);
}

TEST(ProgressLineTest, UndrawnLineErasesNothing) {
  FILE* file = std::tmpfile();
  ASSERT_NE(file, nullptr);
  {
    // A quiet time no test reaches: updates are held back, so Finish has nothing to erase.
    ProgressLine line(file, /*enabled=*/true, /*quiet_s=*/1e9);
    line.Update(1, 4);
    line.Finish();
  }
  EXPECT_EQ(Contents(file), "");
  std::fclose(file);
}

TEST(ProgressLineTest, FilesAndPipesAreNoTerminal) {
  FILE* file = std::tmpfile();
  ASSERT_NE(file, nullptr);
  EXPECT_FALSE(IsTerminal(file));
  std::fclose(file);
  FILE* pipe = ::popen("true", "r");
  ASSERT_NE(pipe, nullptr);
  EXPECT_FALSE(IsTerminal(pipe));
  ::pclose(pipe);
  EXPECT_FALSE(IsTerminal(nullptr));
}

}  // namespace
}  // namespace sparkv
