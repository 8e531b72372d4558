// The vocabulary a tokenizer works from, as stored in GGUF `tokenizer.ggml.*` metadata.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "gguf/gguf.h"
#include "sparkv/status.h"

namespace sparkv {

// Token types of GGUF `tokenizer.ggml.token_type`, fixed by llama.cpp's llama_token_type.
enum class TokenType : int32_t {
  kUndefined = 0,
  kNormal = 1,
  kUnknown = 2,
  kControl = 3,
  kUserDefined = 4,
  kUnused = 5,
  kByte = 6,
};

struct Vocab {
  std::string model = "llama";         // tokenizer.ggml.model: "llama" (SentencePiece) or "gpt2"
  std::vector<std::string> pieces;     // [n_vocab] token text, SentencePiece uses U+2581 for space
  std::vector<float> scores;           // [n_vocab] merge priority, higher merges first (SPM only)
  std::vector<TokenType> types;        // [n_vocab]
  int32_t bos_id = 1;
  int32_t eos_id = 2;
  int32_t unk_id = 0;
  bool add_bos = true;                 // tokenizer.ggml.add_bos_token
  bool add_eos = false;                // tokenizer.ggml.add_eos_token
  bool add_space_prefix = true;
  // Byte-level BPE ("gpt2") only. Merges are tokenizer.ggml.merges, each "LEFT RIGHT" in the
  // GPT-2 byte alphabet, and the lowest index merges first.
  std::vector<std::string> merges;
  std::string pre;                     // tokenizer.ggml.pre, the pre-tokenizer; empty when absent
  std::string chat_template;           // tokenizer.chat_template (Jinja text), empty when absent

  // Tokens after which generation stops: eos_id, tokenizer.ggml.eot_token_id and eom_token_id,
  // and control tokens that end a turn in common chat formats (<|im_end|>, <|eot_id|>,
  // <|eom_id|>, <|end|>, <|endoftext|>). Filled by ReadVocab; empty means only eos_id.
  std::vector<int32_t> end_of_generation;

  int32_t size() const { return static_cast<int32_t>(pieces.size()); }
  // True for eos_id and every id in end_of_generation.
  bool EndsGeneration(int32_t id) const;
};

// Reads the vocabulary from GGUF metadata; checks that the arrays agree in length and that the
// special ids are in range.
Result<Vocab> ReadVocab(const gguf::File& file);

// Writes the vocabulary as GGUF metadata keys.
void WriteVocab(const Vocab& vocab, gguf::Writer* writer);

// One placeholder piece per id ("<unk>", "<s>", "</s>", then "<0x00>".. for bytes when n_vocab
// allows, then "[id]"), for models whose real tokenizer is not available.
Vocab MakePlaceholderVocab(int32_t n_vocab);

// True when `vocab` is MakePlaceholderVocab's for its size: text then spells byte by byte and
// generated ids print as "[id]".
bool IsPlaceholderVocab(const Vocab& vocab);

// A self-contained SentencePiece-style vocabulary of `n_vocab` pieces: <unk>, <s>, </s>, the 256
// byte tokens, then deterministic multi-byte pieces, so that any UTF-8 text tokenizes.
// REQUIRES: n_vocab >= 259.
Vocab MakeByteLevelVocab(int32_t n_vocab);

}  // namespace sparkv
