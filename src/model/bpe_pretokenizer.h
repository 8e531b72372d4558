// The pre-tokenizers of byte-level BPE vocabularies. They cut text into pieces before merging, so
// that no token spans, say, a letter and a digit. Each one is a hand-written matcher of the split
// pattern its model was trained with, and GGUF names the one to use in `tokenizer.ggml.pre`.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "sparkv/status.h"

namespace sparkv {

enum class PreTokenizer {
  // GPT-2: 's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
  kGpt2,
  // Llama 3: (?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}|
  //          ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+
  kLlama3,
  // Qwen2: as Llama 3, but every digit is a piece of its own (\p{N} instead of \p{N}{1,3}).
  kQwen2,
};

// Maps a `tokenizer.ggml.pre` value to its pre-tokenizer: "gpt-2" or "gpt2"; "llama-bpe",
// "llama3" or "llama-v3"; "qwen2". An empty name (the key is missing, as in GGUF files written
// before the key existed) means GPT-2, the pattern byte-level BPE started with. Any other name
// is an error that names the value and the supported ones: a different split would give ids
// the model was not trained on, silently.
Result<PreTokenizer> PreTokenizerFromName(std::string_view name);

// The canonical name of a pre-tokenizer ("gpt-2", "llama-bpe", "qwen2").
const char* PreTokenizerName(PreTokenizer pre);

// The supported `tokenizer.ggml.pre` values, comma-separated, for error messages.
std::string SupportedPreTokenizerNames();

// Cuts `text` into pieces that cover it in order. A byte that is not part of well-formed UTF-8
// is a character of class "other" (not a letter, number or whitespace).
std::vector<std::string_view> PreTokenize(PreTokenizer pre, std::string_view text);

}  // namespace sparkv
