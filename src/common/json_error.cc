#include "common/json_error.h"

namespace sparkv {

std::string JsonErrorPlace(std::string_view text, size_t byte) {
  const size_t end = byte == 0 || byte > text.size() ? text.size() : byte - 1;
  size_t line = 1;
  size_t line_start = 0;
  for (size_t i = 0; i < end; ++i) {
    if (text[i] == '\n') {
      ++line;
      line_start = i + 1;
    }
  }
  return "line " + std::to_string(line) + ", column " + std::to_string(end - line_start + 1);
}

}  // namespace sparkv
