// Number formatting for messages and labels.
#pragma once

#include <cstdio>
#include <string>

namespace sparkv {

// Formats a number as typed on a command line, the shortest of %g: 3, 0.25, 1e+06.
inline std::string FormatNumber(double value) {
  char text[32];
  std::snprintf(text, sizeof text, "%g", value);
  return text;
}

// Formats a count with its noun, singular for 1: "1 chunk", "3 chunks".
inline std::string FormatCount(long long count, const char* singular, const char* plural) {
  return std::to_string(count) + " " + (count == 1 ? singular : plural);
}

}  // namespace sparkv
