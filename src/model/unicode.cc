#include "model/unicode.h"

#include <algorithm>
#include <iterator>
#include <string>

namespace sparkv {
namespace {

#include "model/unicode_tables.inc"

bool IsContinuation(std::string_view text, size_t offset) {
  return offset < text.size() && (static_cast<uint8_t>(text[offset]) & 0xC0) == 0x80;
}

}  // namespace

Utf8Char DecodeUtf8(std::string_view text, size_t offset) {
  const uint8_t lead = static_cast<uint8_t>(text[offset]);
  const Utf8Char invalid{lead, 1, false};
  if (lead < 0x80) return Utf8Char{lead, 1, true};
  size_t n = 0;
  uint32_t code_point = 0;
  uint32_t minimum = 0;
  if (lead >= 0xC2 && lead <= 0xDF) {
    n = 2;
    code_point = lead & 0x1F;
    minimum = 0x80;
  } else if (lead >= 0xE0 && lead <= 0xEF) {
    n = 3;
    code_point = lead & 0x0F;
    minimum = 0x800;
  } else if (lead >= 0xF0 && lead <= 0xF4) {
    n = 4;
    code_point = lead & 0x07;
    minimum = 0x10000;
  } else {
    return invalid;  // a continuation byte, C0, C1 or F5..FF
  }
  for (size_t k = 1; k < n; ++k) {
    if (!IsContinuation(text, offset + k)) return invalid;
    code_point = (code_point << 6) | (static_cast<uint8_t>(text[offset + k]) & 0x3F);
  }
  if (code_point < minimum || code_point > 0x10FFFF || (code_point >= 0xD800 && code_point <= 0xDFFF)) {
    return invalid;
  }
  return Utf8Char{code_point, static_cast<uint8_t>(n), true};
}

CodePointClass ClassOf(uint32_t code_point) {
  // The first range whose last code point is not below code_point.
  const auto* end = std::end(kCodePointRanges);
  const auto* found = std::lower_bound(std::begin(kCodePointRanges), end, code_point,
                                       [](const CodePointRange& range, uint32_t cp) { return range.last < cp; });
  if (found == end || found->first > code_point) return CodePointClass::kOther;
  return found->cls;
}

const char* UnicodeTableVersion() { return kUnicodeVersion; }

void AppendUtf8(uint32_t code_point, std::string* out) {
  if (code_point < 0x80) {
    out->push_back(static_cast<char>(code_point));
  } else if (code_point < 0x800) {
    out->push_back(static_cast<char>(0xC0 | (code_point >> 6)));
    out->push_back(static_cast<char>(0x80 | (code_point & 0x3F)));
  } else if (code_point < 0x10000) {
    out->push_back(static_cast<char>(0xE0 | (code_point >> 12)));
    out->push_back(static_cast<char>(0x80 | ((code_point >> 6) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | (code_point & 0x3F)));
  } else {
    out->push_back(static_cast<char>(0xF0 | (code_point >> 18)));
    out->push_back(static_cast<char>(0x80 | ((code_point >> 12) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | ((code_point >> 6) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | (code_point & 0x3F)));
  }
}

}  // namespace sparkv
