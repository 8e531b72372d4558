// SentencePiece-style BPE tokenizer over a GGUF `llama` vocabulary, matching llama.cpp's SPM
// tokenizer token for token (checked against llama.cpp's test vectors for the Llama 2 vocabulary).
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "model/vocab.h"
#include "sparkv/status.h"

namespace sparkv {

// The same alias as in model/model.h, repeated so that this header stays free of the weights API.
using TokenId = int32_t;

// Turns text into token ids and back. It is immutable after Create, copies share the tables,
// and all methods may be called from several threads at once.
class Tokenizer {
 public:
  // Builds the look-up tables. Fails for vocabulary models other than "llama" (SentencePiece),
  // for arrays of different lengths, and for a vocabulary that can neither spell every byte as
  // a <0xNN> token nor fall back to an unknown token.
  static Result<Tokenizer> Create(const Vocab& vocab);

  // Encodes UTF-8 text. With add_bos, the BOS id comes first when the vocabulary has one, and
  // empty text gives no other tokens. Invalid UTF-8 is spelled with byte tokens.
  // NOTE: as in llama.cpp, a truncated lead byte just before a space joins the first bytes of
  // that space's U+2581 into one symbol. Such text decodes with U+2581 in place of the space.
  std::vector<TokenId> Encode(std::string_view text, bool add_bos) const;

  // The text of one token: U+2581 becomes a space, <0xNN> byte tokens become the raw byte,
  // control and unknown tokens (and ids out of range) give an empty string. Bytes of one
  // multi-byte character may be split across tokens, so this is not always valid UTF-8.
  std::string DecodeToken(TokenId id) const;

  // The text of a token sequence. As SentencePiece does, when the vocabulary adds a space
  // prefix, the leading space of the first text piece (control tokens skipped) is dropped, so
  // Decode(Encode(text, add_bos)) == text for any text without U+2581 the vocabulary can spell.
  std::string Decode(std::span<const TokenId> ids) const;

  const Vocab& vocab() const;
  int32_t n_vocab() const { return vocab().size(); }

 private:
  struct Tables;

  explicit Tokenizer(std::shared_ptr<const Tables> tables) : tables_(std::move(tables)) {}

  std::shared_ptr<const Tables> tables_;
};

}  // namespace sparkv
