// Feeds arbitrary bytes to the tokenizer over the 32000-piece byte-level vocabulary: every id must
// be in range, and well-formed UTF-8 without U+2581 must decode back to itself.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>
#include <vector>

#include "model/tokenizer.h"
#include "model/vocab.h"

namespace {

// Checks the byte structure of UTF-8 (lead byte, then the continuation bytes it announces).
// Overlong forms and surrogates pass, because the tokenizer splits on structure alone.
bool IsWellFormedUtf8(std::string_view text) {
  for (size_t i = 0; i < text.size();) {
    const uint8_t lead = static_cast<uint8_t>(text[i]);
    size_t n = 0;
    if (lead < 0x80) {
      n = 1;
    } else if ((lead & 0xE0) == 0xC0) {
      n = 2;
    } else if ((lead & 0xF0) == 0xE0) {
      n = 3;
    } else if ((lead & 0xF8) == 0xF0) {
      n = 4;
    } else {
      return false;
    }
    if (i + n > text.size()) return false;
    for (size_t k = 1; k < n; ++k) {
      if ((static_cast<uint8_t>(text[i + k]) & 0xC0) != 0x80) return false;
    }
    i += n;
  }
  return true;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const sparkv::Tokenizer* tokenizer =
      new sparkv::Tokenizer(sparkv::Tokenizer::Create(sparkv::MakeByteLevelVocab(32000)).value());
  const std::string_view text(reinterpret_cast<const char*>(data), size);

  const std::vector<sparkv::TokenId> ids = tokenizer->Encode(text, /*add_bos=*/true);
  for (sparkv::TokenId id : ids) {
    if (id < 0 || id >= tokenizer->n_vocab()) std::abort();
  }

  const bool has_space_marker = text.find("\xE2\x96\x81") != std::string_view::npos;
  if (IsWellFormedUtf8(text) && !has_space_marker && tokenizer->Decode(ids) != text) std::abort();
  return 0;
}
