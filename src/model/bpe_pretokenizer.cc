#include "model/bpe_pretokenizer.h"

#include <array>
#include <cstdint>
#include <utility>

#include "model/unicode.h"

namespace sparkv {
namespace {

struct NamedPreTokenizer {
  std::string_view name;
  PreTokenizer pre;
};

// The first name of each pre-tokenizer is its canonical one.
constexpr std::array<NamedPreTokenizer, 6> kNames = {{
    {"gpt-2", PreTokenizer::kGpt2},
    {"gpt2", PreTokenizer::kGpt2},
    {"llama-bpe", PreTokenizer::kLlama3},
    {"llama3", PreTokenizer::kLlama3},
    {"llama-v3", PreTokenizer::kLlama3},
    {"qwen2", PreTokenizer::kQwen2},
}};

// One decoded character of the text being split.
struct Char {
  uint32_t code_point;  // 0xFFFFFFFF for a byte outside well-formed UTF-8
  uint32_t offset;      // of its first byte in the text
  CodePointClass cls;
};

class Splitter {
 public:
  Splitter(PreTokenizer pre, std::string_view text) : pre_(pre), text_(text) {
    chars_.reserve(text.size());
    for (size_t offset = 0; offset < text.size();) {
      const Utf8Char c = DecodeUtf8(text, offset);
      if (c.valid) {
        chars_.push_back(Char{c.code_point, static_cast<uint32_t>(offset), ClassOf(c.code_point)});
      } else {
        chars_.push_back(Char{0xFFFFFFFF, static_cast<uint32_t>(offset), CodePointClass::kOther});
      }
      offset += c.n_bytes;
    }
  }

  std::vector<std::string_view> Split() {
    std::vector<std::string_view> pieces;
    for (size_t i = 0; i < chars_.size();) {
      const size_t end = pre_ == PreTokenizer::kGpt2 ? MatchGpt2(i) : MatchLlama3(i);
      const size_t begin_byte = chars_[i].offset;
      const size_t end_byte = end < chars_.size() ? chars_[end].offset : text_.size();
      pieces.push_back(text_.substr(begin_byte, end_byte - begin_byte));
      i = end;
    }
    return pieces;
  }

 private:
  uint32_t At(size_t i) const { return i < chars_.size() ? chars_[i].code_point : 0xFFFFFFFF; }
  bool Is(size_t i, CodePointClass cls) const { return i < chars_.size() && chars_[i].cls == cls; }
  bool IsLetter(size_t i) const { return Is(i, CodePointClass::kLetter); }
  bool IsNumber(size_t i) const { return Is(i, CodePointClass::kNumber); }
  bool IsSpace(size_t i) const { return Is(i, CodePointClass::kWhitespace); }
  bool IsOther(size_t i) const { return Is(i, CodePointClass::kOther); }
  bool IsNewline(size_t i) const { return At(i) == '\r' || At(i) == '\n'; }

  size_t RunOf(size_t i, CodePointClass cls) const {
    while (Is(i, cls)) ++i;
    return i;
  }

  // Matches 's 't 're 've 'm 'll 'd at i and returns the end, or `i` when none matches. GPT-2
  // takes lower case only. Llama 3 and Qwen2 ignore case, and under Unicode case folding
  // U+017F LATIN SMALL LETTER LONG S also counts as s.
  size_t MatchContraction(size_t i, bool ignore_case) const {
    if (At(i) != '\'') return i;
    auto lower = [&](size_t k) {
      const uint32_t c = At(k);
      if (!ignore_case) return c;
      if (c == 0x17F) return uint32_t{'s'};
      return c >= 'A' && c <= 'Z' ? c + ('a' - 'A') : c;
    };
    const uint32_t first = lower(i + 1);
    if (first == 's' || first == 't' || first == 'm' || first == 'd') return i + 2;
    const uint32_t second = lower(i + 2);
    if ((first == 'r' && second == 'e') || (first == 'v' && second == 'e') || (first == 'l' && second == 'l')) {
      return i + 3;
    }
    return i;
  }

  // Matches \s+(?!\S)|\s+ at a whitespace character i. At the end of the text the whole run is
  // one piece. Otherwise the run leaves its last character to lead the next piece, unless the
  // run is that single character.
  size_t MatchSpaceRun(size_t i) const {
    const size_t end = RunOf(i, CodePointClass::kWhitespace);
    if (end == chars_.size() || end - i == 1) return end;
    return end - 1;
  }

  size_t MatchGpt2(size_t i) const {
    if (size_t end = MatchContraction(i, /*ignore_case=*/false); end != i) return end;
    const size_t start = At(i) == ' ' && i + 1 < chars_.size() && !IsSpace(i + 1) ? i + 1 : i;
    if (IsLetter(start)) return RunOf(start, CodePointClass::kLetter);
    if (IsNumber(start)) return RunOf(start, CodePointClass::kNumber);
    if (IsOther(start)) return RunOf(start, CodePointClass::kOther);
    return MatchSpaceRun(i);
  }

  size_t MatchLlama3(size_t i) const {
    if (size_t end = MatchContraction(i, /*ignore_case=*/true); end != i) return end;
    // [^\r\n\p{L}\p{N}]?\p{L}+
    if (IsLetter(i)) return RunOf(i, CodePointClass::kLetter);
    if (!IsNewline(i) && !IsNumber(i) && IsLetter(i + 1)) return RunOf(i + 1, CodePointClass::kLetter);
    // \p{N}{1,3} for Llama 3, \p{N} for Qwen2
    if (IsNumber(i)) {
      const size_t limit = pre_ == PreTokenizer::kQwen2 ? 1 : 3;
      size_t end = i;
      while (end - i < limit && IsNumber(end)) ++end;
      return end;
    }
    //  ?[^\s\p{L}\p{N}]+[\r\n]*
    const size_t start = At(i) == ' ' && IsOther(i + 1) ? i + 1 : i;
    if (IsOther(start)) {
      size_t end = RunOf(start, CodePointClass::kOther);
      while (IsNewline(end)) ++end;
      return end;
    }
    // \s*[\r\n]+ takes the whitespace run up to its last line break.
    const size_t run_end = RunOf(i, CodePointClass::kWhitespace);
    for (size_t k = run_end; k > i; --k) {
      if (IsNewline(k - 1)) return k;
    }
    return MatchSpaceRun(i);
  }

  PreTokenizer pre_;
  std::string_view text_;
  std::vector<Char> chars_;
};

}  // namespace

Result<PreTokenizer> PreTokenizerFromName(std::string_view name) {
  if (name.empty()) return PreTokenizer::kGpt2;
  for (const NamedPreTokenizer& named : kNames) {
    if (named.name == name) return named.pre;
  }
  return UnsupportedError("tokenizer.ggml.pre '" + std::string(name) + "' is not a supported pre-tokenizer; " +
                          "the supported ones are " + SupportedPreTokenizerNames() +
                          " (convert the model with a tokenizer of one of these kinds)");
}

const char* PreTokenizerName(PreTokenizer pre) {
  switch (pre) {
    case PreTokenizer::kGpt2:
      return "gpt-2";
    case PreTokenizer::kLlama3:
      return "llama-bpe";
    case PreTokenizer::kQwen2:
      return "qwen2";
  }
  return "unknown";
}

std::string SupportedPreTokenizerNames() {
  std::string names;
  for (const NamedPreTokenizer& named : kNames) {
    if (!names.empty()) names += ", ";
    names += named.name;
  }
  return names;
}

std::vector<std::string_view> PreTokenize(PreTokenizer pre, std::string_view text) {
  return Splitter(pre, text).Split();
}

}  // namespace sparkv
