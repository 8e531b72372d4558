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

}  // namespace sparkv
