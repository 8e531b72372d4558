// UTF-8 decoding and the code point classes that the byte-level BPE pre-tokenizers split on.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

namespace sparkv {

enum class CodePointClass : uint8_t {
  kOther = 0,
  kLetter = 1,      // general category L (Lu, Ll, Lt, Lm, Lo), regex \p{L}
  kNumber = 2,      // general category N (Nd, Nl, No), regex \p{N}
  kWhitespace = 3,  // the White_Space property, regex \s
};

struct CodePointRange {
  uint32_t first;
  uint32_t last;
  CodePointClass cls;
};

// One character of UTF-8 text. A byte that does not start a well-formed sequence becomes a
// character of its own with `valid` false, as Python's "surrogateescape" error handler does.
struct Utf8Char {
  uint32_t code_point = 0;  // the raw byte when !valid
  uint8_t n_bytes = 1;
  bool valid = true;
};

// Decodes the character at `text[offset]`. Well-formed means the shortest form, no surrogates
// (U+D800..U+DFFF) and at most U+10FFFF.
// REQUIRES: offset < text.size().
Utf8Char DecodeUtf8(std::string_view text, size_t offset);

// The class of a code point, from the table tools/gen_unicode_tables.py generates.
CodePointClass ClassOf(uint32_t code_point);

// The Unicode version the class table was generated from, e.g. "14.0.0".
const char* UnicodeTableVersion();

// Appends the UTF-8 form of `code_point` (at most U+10FFFF) to `out`.
void AppendUtf8(uint32_t code_point, std::string* out);

}  // namespace sparkv
