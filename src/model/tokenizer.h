// Tokenizers over GGUF vocabularies. Model "llama": SentencePiece-style BPE, matching llama.cpp's
// SPM tokenizer token for token (checked against llama.cpp's test vectors for the Llama 2
// vocabulary). Model "gpt2": byte-level BPE with rank-ordered merges over the GPT-2 byte alphabet,
// after the pre-tokenizer that `tokenizer.ggml.pre` names (model/bpe_pretokenizer.h).
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
  // Builds the look-up tables and picks the implementation from vocab.model. Fails for other
  // models, for arrays of different lengths, for a vocabulary that can neither spell every byte
  // (as a <0xNN> token for "llama", as a one-character token of the GPT-2 byte alphabet for
  // "gpt2") nor fall back to an unknown token, for an unsupported tokenizer.ggml.pre, and for a
  // merge that is not two pieces separated by one space.
  static Result<Tokenizer> Create(const Vocab& vocab);

  // Encodes text. With add_special, the BOS id comes first when the vocabulary's add_bos is set
  // and it has a BOS token. Likewise the EOS id comes last when add_eos is set. Empty text gives
  // no other tokens. Invalid UTF-8 is spelled with byte tokens.
  //
  // Special tokens: a user-defined token's text (type 4) found verbatim in `text` always becomes
  // that token. With parse_special, so does the text of a control or unknown token (types 3 and
  // 2, e.g. "<|im_start|>", "<s>"). At each position the longest such text wins, and the text
  // between matches is encoded as usual; for "llama" vocabularies with a space prefix, each such
  // piece of text that starts the input or follows a special token gets the prefix.
  // NOTE: as in llama.cpp, in SPM a truncated lead byte just before a space joins the first
  // bytes of that space's U+2581 into one symbol. Such text decodes with U+2581 for the space.
  std::vector<TokenId> Encode(std::string_view text, bool add_special, bool parse_special = false) const;

  // The text of one token: for "llama", U+2581 becomes a space and <0xNN> byte tokens become the
  // raw byte; for "gpt2", each character of the GPT-2 byte alphabet becomes its byte; user-defined
  // tokens read as written. Control and unknown tokens (and ids out of range) give an empty
  // string. Bytes of one multi-byte character may be split across tokens, so this is not always
  // valid UTF-8.
  std::string DecodeToken(TokenId id) const;

  // The text of a token sequence. As SentencePiece does, when the vocabulary adds a space
  // prefix, the leading space of the first text piece (control tokens skipped) is dropped, so
  // Decode(Encode(text, add_special)) == text for any text without U+2581 the vocabulary can
  // spell. For "gpt2" vocabularies it holds for any bytes without the text of a user-defined
  // token.
  std::string Decode(std::span<const TokenId> ids) const;

  const Vocab& vocab() const;
  int32_t n_vocab() const { return vocab().size(); }

 private:
  struct Tables;

  explicit Tokenizer(std::shared_ptr<const Tables> tables) : tables_(std::move(tables)) {}

  std::shared_ptr<const Tables> tables_;
};

}  // namespace sparkv
