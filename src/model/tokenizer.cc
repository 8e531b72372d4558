#include "model/tokenizer.h"

#include <algorithm>
#include <array>
#include <cstdio>
#include <queue>
#include <string>
#include <utility>

#include "common/hash.h"

namespace sparkv {
namespace {

// SentencePiece's stand-in for a space, U+2581 LOWER ONE EIGHTH BLOCK, in UTF-8.
constexpr std::string_view kSpaceMarker = "\xE2\x96\x81";

// Returns the length of the UTF-8 sequence a lead byte announces, from its high nibble.
// Continuation bytes count as one byte so that any input splits, the same way llama.cpp splits.
size_t Utf8SequenceLength(uint8_t lead) {
  static constexpr std::array<uint8_t, 16> kLengths = {1, 1, 1, 1, 1, 1, 1, 1,
                                                       1, 1, 1, 1, 2, 2, 3, 4};
  return kLengths[lead >> 4];
}

std::string BytePieceText(uint8_t byte) {
  char text[8];
  std::snprintf(text, sizeof(text), "<0x%02X>", byte);
  return text;
}

// Parses "<0xNN>" with hex digits of either case. Returns false for any other text.
bool ParseBytePiece(std::string_view piece, uint8_t* byte) {
  if (piece.size() != 6 || piece.substr(0, 3) != "<0x" || piece[5] != '>') return false;
  int value = 0;
  for (char c : piece.substr(3, 2)) {
    value <<= 4;
    if (c >= '0' && c <= '9') {
      value |= c - '0';
    } else if (c >= 'a' && c <= 'f') {
      value |= c - 'a' + 10;
    } else if (c >= 'A' && c <= 'F') {
      value |= c - 'A' + 10;
    } else {
      return false;
    }
  }
  *byte = static_cast<uint8_t>(value);
  return true;
}

std::string ReplaceSpaceMarkers(std::string_view piece) {
  std::string text;
  text.reserve(piece.size());
  size_t begin = 0;
  while (begin < piece.size()) {
    const size_t found = piece.find(kSpaceMarker, begin);
    if (found == std::string_view::npos) {
      text.append(piece.substr(begin));
      break;
    }
    text.append(piece.substr(begin, found - begin));
    text.push_back(' ');
    begin = found + kSpaceMarker.size();
  }
  return text;
}

// Maps piece text to token id with open addressing and linear probing over XXH3-64 hashes.
// Without a heap node per piece, Tokenizer::Create runs in half the time std::unordered_map
// needs (bench/tokenizer_bench.cc), and Encode's look-ups read one flat slot array.
class PieceTable {
 public:
  // REQUIRES: `pieces` outlives the table and never changes.
  explicit PieceTable(const std::vector<std::string>* pieces) : pieces_(pieces) {
    size_t capacity = 16;
    while (capacity < 2 * pieces->size()) capacity *= 2;
    slots_.assign(capacity, Slot{});
    mask_ = capacity - 1;
    for (size_t id = 0; id < pieces->size(); ++id) Insert(static_cast<TokenId>(id));
  }

  // Returns the id of `piece`, or -1 when no token has that text.
  TokenId Find(std::string_view piece) const {
    const uint64_t hash = Checksum64(piece.data(), piece.size());
    for (size_t i = hash & mask_;; i = (i + 1) & mask_) {
      const Slot& slot = slots_[i];
      if (slot.id < 0) return -1;
      if (slot.hash == hash && (*pieces_)[slot.id] == piece) return slot.id;
    }
  }

 private:
  struct Slot {
    uint64_t hash = 0;
    TokenId id = -1;  // -1 marks an empty slot
  };

  // A later duplicate piece replaces an earlier one, as in llama.cpp's text-to-token map.
  void Insert(TokenId id) {
    const std::string& piece = (*pieces_)[id];
    const uint64_t hash = Checksum64(piece.data(), piece.size());
    for (size_t i = hash & mask_;; i = (i + 1) & mask_) {
      Slot& slot = slots_[i];
      if (slot.id < 0 || (slot.hash == hash && (*pieces_)[slot.id] == piece)) {
        slot = Slot{hash, id};
        return;
      }
    }
  }

  const std::vector<std::string>* pieces_;
  std::vector<Slot> slots_;  // [power of two], at most half full
  size_t mask_ = 0;
};

// A run of bytes of the escaped text during merging. Symbols merged into their left neighbour
// keep n == 0.
struct Symbol {
  size_t begin = 0;  // byte offset into the escaped text
  size_t n = 0;      // bytes
  TokenId id = -1;   // the merged piece's token, -1 while the symbol is a single character
  ptrdiff_t prev = -1;
  ptrdiff_t next = -1;
};

// A candidate merge of symbols `left` and its right neighbour `right`, valid while their byte
// counts still add up to `n` (otherwise one of them changed after the candidate was queued).
struct Bigram {
  float score = 0.0f;
  TokenId id = -1;  // the merged piece's token
  ptrdiff_t left = -1;
  ptrdiff_t right = -1;
  size_t n = 0;
};

// Orders the queue so that the top is the highest score, and among equal scores the leftmost.
struct BigramLess {
  bool operator()(const Bigram& a, const Bigram& b) const {
    return a.score < b.score || (a.score == b.score && a.left > b.left);
  }
};

}  // namespace

struct Tokenizer::Tables {
  explicit Tables(const Vocab& source) : vocab(source), piece_to_id(&vocab.pieces) {}

  Vocab vocab;
  PieceTable piece_to_id;  // views vocab.pieces, which never change once Tables is built
  std::array<TokenId, 256> byte_to_id{};  // the <0xNN> token of each byte, or the unknown token
  std::vector<std::string> texts;          // [n_vocab] what DecodeToken returns for each id
};

Result<Tokenizer> Tokenizer::Create(const Vocab& vocab) {
  if (vocab.model != "llama") {
    return UnsupportedError("tokenizer model '" + vocab.model +
                            "' is not supported; the supported model is 'llama' (SentencePiece "
                            "BPE with byte fallback)");
  }
  const size_t n_vocab = vocab.pieces.size();
  if (vocab.scores.size() != n_vocab || vocab.types.size() != n_vocab) {
    return InvalidArgumentError("vocabulary arrays differ in length: " + std::to_string(n_vocab) +
                                " pieces, " + std::to_string(vocab.scores.size()) + " scores, " +
                                std::to_string(vocab.types.size()) +
                                " types; every token needs one entry in each");
  }
  if (n_vocab == 0) return InvalidArgumentError("vocabulary is empty; it needs at least one token");
  if (n_vocab > static_cast<size_t>(INT32_MAX)) {
    return InvalidArgumentError("vocabulary has " + std::to_string(n_vocab) +
                                " tokens, more than a TokenId can address");
  }

  auto tables = std::make_shared<Tables>(vocab);
  const std::vector<std::string>& pieces = tables->vocab.pieces;

  tables->texts.resize(n_vocab);
  for (size_t id = 0; id < n_vocab; ++id) {
    switch (vocab.types[id]) {
      case TokenType::kByte: {
        uint8_t byte = 0;
        if (!ParseBytePiece(pieces[id], &byte)) {
          return InvalidArgumentError("token " + std::to_string(id) + " has byte type but reads '" +
                                      pieces[id] + "'; byte tokens must read <0xNN>");
        }
        tables->texts[id] = std::string(1, static_cast<char>(byte));
        break;
      }
      case TokenType::kControl:
      case TokenType::kUnknown:
      case TokenType::kUnused:
        break;  // no surface text, as llama.cpp renders them without its `special` flag
      default:
        tables->texts[id] = ReplaceSpaceMarkers(pieces[id]);
        break;
    }
  }

  const bool has_unk = vocab.unk_id >= 0 && static_cast<size_t>(vocab.unk_id) < n_vocab;
  for (int byte = 0; byte < 256; ++byte) {
    const TokenId found = tables->piece_to_id.Find(BytePieceText(static_cast<uint8_t>(byte)));
    if (found >= 0) {
      tables->byte_to_id[byte] = found;
    } else if (has_unk) {
      tables->byte_to_id[byte] = vocab.unk_id;
    } else {
      return InvalidArgumentError("vocabulary has no token " +
                                  BytePieceText(static_cast<uint8_t>(byte)) +
                                  " and no valid unknown token (unk_id " +
                                  std::to_string(vocab.unk_id) +
                                  "); text with that byte could not be encoded");
    }
  }
  return Tokenizer(std::move(tables));
}

const Vocab& Tokenizer::vocab() const { return tables_->vocab; }

std::vector<TokenId> Tokenizer::Encode(std::string_view text, bool add_bos) const {
  const Vocab& vocab = tables_->vocab;
  std::vector<TokenId> ids;
  if (add_bos && vocab.bos_id >= 0 && vocab.bos_id < vocab.size()) ids.push_back(vocab.bos_id);
  if (text.empty()) return ids;

  // SentencePiece normalization as llama.cpp applies it: optional dummy space, then every
  // space becomes U+2581. No other normalization (no NFKC, no whitespace folding).
  std::string escaped;
  escaped.reserve(text.size() + text.size() / 2 + kSpaceMarker.size());
  if (vocab.add_space_prefix) escaped.append(kSpaceMarker);
  for (char c : text) {
    if (c == ' ') {
      escaped.append(kSpaceMarker);
    } else {
      escaped.push_back(c);
    }
  }

  // One symbol per UTF-8 character.
  std::vector<Symbol> symbols;
  symbols.reserve(escaped.size());
  for (size_t offset = 0; offset < escaped.size();) {
    Symbol symbol;
    symbol.begin = offset;
    symbol.n = std::min(Utf8SequenceLength(static_cast<uint8_t>(escaped[offset])),
                        escaped.size() - offset);
    symbol.prev = static_cast<ptrdiff_t>(symbols.size()) - 1;
    symbol.next = offset + symbol.n < escaped.size() ? static_cast<ptrdiff_t>(symbols.size()) + 1 : -1;
    symbols.push_back(symbol);
    offset += symbol.n;
  }

  std::priority_queue<Bigram, std::vector<Bigram>, BigramLess> queue;
  auto try_add_bigram = [&](ptrdiff_t left, ptrdiff_t right) {
    if (left < 0 || right < 0) return;
    const size_t n = symbols[left].n + symbols[right].n;
    const TokenId id = tables_->piece_to_id.Find(std::string_view(escaped).substr(symbols[left].begin, n));
    if (id < 0) return;
    queue.push(Bigram{vocab.scores[id], id, left, right, n});
  };
  for (size_t i = 1; i < symbols.size(); ++i) {
    try_add_bigram(static_cast<ptrdiff_t>(i) - 1, static_cast<ptrdiff_t>(i));
  }

  // A merge makes at most two queued candidates stale. They stay in the queue and are skipped
  // when popped, so the whole loop is O(n log n).
  while (!queue.empty()) {
    const Bigram bigram = queue.top();
    queue.pop();
    Symbol& left = symbols[bigram.left];
    Symbol& right = symbols[bigram.right];
    if (left.n == 0 || right.n == 0 || left.n + right.n != bigram.n) continue;

    left.n += right.n;
    left.id = bigram.id;
    right.n = 0;
    left.next = right.next;
    if (right.next >= 0) symbols[right.next].prev = bigram.left;

    try_add_bigram(left.prev, bigram.left);
    try_add_bigram(bigram.left, left.next);
  }

  // Every merged symbol is a vocabulary piece. A single character may not be, and then its bytes
  // are spelled with byte tokens.
  for (ptrdiff_t i = symbols.empty() ? -1 : 0; i >= 0; i = symbols[i].next) {
    const std::string_view piece = std::string_view(escaped).substr(symbols[i].begin, symbols[i].n);
    const TokenId id = symbols[i].id >= 0 ? symbols[i].id : tables_->piece_to_id.Find(piece);
    if (id >= 0) {
      ids.push_back(id);
      continue;
    }
    for (char byte : piece) ids.push_back(tables_->byte_to_id[static_cast<uint8_t>(byte)]);
  }
  return ids;
}

std::string Tokenizer::DecodeToken(TokenId id) const {
  if (id < 0 || id >= n_vocab()) return {};
  return tables_->texts[id];
}

std::string Tokenizer::Decode(std::span<const TokenId> ids) const {
  const Vocab& vocab = tables_->vocab;
  std::string text;
  bool at_start = vocab.add_space_prefix;
  for (TokenId id : ids) {
    if (id < 0 || id >= n_vocab()) continue;
    std::string_view piece = tables_->texts[id];
    if (piece.empty()) continue;
    // Encode's dummy space is the leading U+2581 of the first piece with text. A byte token holds
    // no U+2581, so its leading 0x20 byte is real text and stays.
    if (at_start && vocab.types[id] != TokenType::kByte && piece.front() == ' ') {
      piece.remove_prefix(1);
    }
    at_start = false;
    text.append(piece);
  }
  return text;
}

}  // namespace sparkv
