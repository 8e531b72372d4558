#include "model/tokenizer.h"

#include <algorithm>
#include <array>
#include <cstdio>
#include <queue>
#include <string>
#include <unordered_map>
#include <utility>

#include "common/hash.h"
#include "model/bpe_pretokenizer.h"
#include "model/unicode.h"

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

// Returns the GPT-2 byte alphabet. Printable Latin-1 bytes are their own code points. The other
// 68 bytes (controls, space, DEL, NBSP, soft hyphen) take the code points from U+0100 up, in byte
// order, so every byte is a visible character and merges never see a raw space.
std::array<uint32_t, 256> ByteAlphabet() {
  std::array<uint32_t, 256> code_points{};
  uint32_t next = 0x100;
  for (uint32_t byte = 0; byte < 256; ++byte) {
    const bool printable = (byte >= '!' && byte <= '~') || (byte >= 0xA1 && byte <= 0xAC) || byte >= 0xAE;
    code_points[byte] = printable ? byte : next++;
  }
  return code_points;
}

// A merge rule of a byte-level BPE vocabulary: LEFT + RIGHT -> `id`, applied in `rank` order.
struct MergeRule {
  uint32_t rank = 0;
  TokenId id = -1;
};

uint64_t PairKey(TokenId left, TokenId right) {
  return (static_cast<uint64_t>(static_cast<uint32_t>(left)) << 32) | static_cast<uint32_t>(right);
}

// A symbol of a byte-level BPE word during merging. A symbol merged into its left neighbour has
// id -2.
struct BpeSymbol {
  TokenId id = -1;
  int32_t prev = -1;
  int32_t next = -1;
};

struct BpeCandidate {
  uint32_t rank = 0;
  int32_t left = -1;
  TokenId left_id = -1;
  TokenId right_id = -1;
  TokenId merged = -1;
};

// The top of the queue is the lowest rank, and among equal ranks the leftmost pair.
struct BpeCandidateLess {
  bool operator()(const BpeCandidate& a, const BpeCandidate& b) const {
    return a.rank > b.rank || (a.rank == b.rank && a.left > b.left);
  }
};

// A token whose text Encode looks for in the input before tokenizing the rest.
struct SpecialToken {
  TokenId id = -1;
  bool always = false;  // user-defined: matched even without parse_special
};

}  // namespace

struct Tokenizer::Tables {
  explicit Tables(const Vocab& source) : vocab(source), piece_to_id(&vocab.pieces) {}

  Vocab vocab;
  PieceTable piece_to_id;  // views vocab.pieces, which never change once Tables is built
  bool byte_level = false;  // "gpt2" rather than "llama"
  // "llama": the <0xNN> token of each byte, or the unknown token. "gpt2": the token of the
  // byte's character in the byte alphabet, or the unknown token. Create fails without either.
  std::array<TokenId, 256> byte_to_id{};
  std::vector<std::string> texts;  // [n_vocab] what DecodeToken returns for each id

  // Byte-level BPE only.
  PreTokenizer pre = PreTokenizer::kGpt2;
  bool ignore_merges = false;  // a word that is a token as a whole is taken as is (Llama 3)
  std::array<std::string, 256> byte_chars;  // the UTF-8 text of each byte's character
  std::unordered_map<uint64_t, MergeRule> merges;  // by PairKey(left id, right id)

  std::vector<SpecialToken> specials;  // longest text first
  std::array<bool, 256> special_first_byte{};

  void EncodeSpm(std::string_view text, bool add_space_prefix, std::vector<TokenId>* ids) const;
  void EncodeBpeWord(std::string_view word, std::vector<TokenId>* ids) const;
  // The special token whose text starts at text[offset], longest first, or nullptr.
  const SpecialToken* MatchSpecial(std::string_view text, size_t offset, bool parse_special) const;

  Status BuildSpm();
  Status BuildBpe();
  void BuildSpecials();
};

namespace {

Status CheckArrays(const Vocab& vocab) {
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
  return Status::Ok();
}

}  // namespace

void Tokenizer::Tables::BuildSpecials() {
  for (TokenId id = 0; id < vocab.size(); ++id) {
    const TokenType type = vocab.types[id];
    if (vocab.pieces[id].empty()) continue;
    if (type == TokenType::kControl || type == TokenType::kUnknown || type == TokenType::kUserDefined) {
      specials.push_back(SpecialToken{id, type == TokenType::kUserDefined});
      special_first_byte[static_cast<uint8_t>(vocab.pieces[id][0])] = true;
    }
  }
  std::stable_sort(specials.begin(), specials.end(), [&](const SpecialToken& a, const SpecialToken& b) {
    return vocab.pieces[a.id].size() > vocab.pieces[b.id].size();
  });
}

Status Tokenizer::Tables::BuildSpm() {
  const size_t n_vocab = vocab.pieces.size();
  texts.resize(n_vocab);
  for (size_t id = 0; id < n_vocab; ++id) {
    switch (vocab.types[id]) {
      case TokenType::kByte: {
        uint8_t byte = 0;
        if (!ParseBytePiece(vocab.pieces[id], &byte)) {
          return InvalidArgumentError("token " + std::to_string(id) + " has byte type but reads '" +
                                      vocab.pieces[id] + "'; byte tokens must read <0xNN>");
        }
        texts[id] = std::string(1, static_cast<char>(byte));
        break;
      }
      case TokenType::kControl:
      case TokenType::kUnknown:
      case TokenType::kUnused:
        break;  // no surface text, as llama.cpp renders them without its `special` flag
      default:
        texts[id] = ReplaceSpaceMarkers(vocab.pieces[id]);
        break;
    }
  }

  const bool has_unk = vocab.unk_id >= 0 && static_cast<size_t>(vocab.unk_id) < n_vocab;
  for (int byte = 0; byte < 256; ++byte) {
    const TokenId found = piece_to_id.Find(BytePieceText(static_cast<uint8_t>(byte)));
    if (found >= 0) {
      byte_to_id[byte] = found;
    } else if (has_unk) {
      byte_to_id[byte] = vocab.unk_id;
    } else {
      return InvalidArgumentError("vocabulary has no token " + BytePieceText(static_cast<uint8_t>(byte)) +
                                  " and no valid unknown token (unk_id " + std::to_string(vocab.unk_id) +
                                  "); text with that byte could not be encoded");
    }
  }
  return Status::Ok();
}

Status Tokenizer::Tables::BuildBpe() {
  SPARKV_ASSIGN_OR_RETURN(pre, PreTokenizerFromName(vocab.pre));
  ignore_merges = pre == PreTokenizer::kLlama3;

  const std::array<uint32_t, 256> alphabet = ByteAlphabet();
  std::unordered_map<uint32_t, uint8_t> char_to_byte;
  for (int byte = 0; byte < 256; ++byte) {
    AppendUtf8(alphabet[byte], &byte_chars[byte]);
    char_to_byte[alphabet[byte]] = static_cast<uint8_t>(byte);
  }

  const size_t n_vocab = vocab.pieces.size();
  texts.resize(n_vocab);
  for (size_t id = 0; id < n_vocab; ++id) {
    const std::string& piece = vocab.pieces[id];
    switch (vocab.types[id]) {
      case TokenType::kControl:
      case TokenType::kUnknown:
      case TokenType::kUnused:
        break;
      case TokenType::kUserDefined:
        texts[id] = piece;
        break;
      default: {
        // Characters outside the byte alphabet (not produced by Encode) are kept as UTF-8.
        std::string& text = texts[id];
        for (size_t offset = 0; offset < piece.size();) {
          const Utf8Char c = DecodeUtf8(piece, offset);
          const auto found = c.valid ? char_to_byte.find(c.code_point) : char_to_byte.end();
          if (found != char_to_byte.end()) {
            text.push_back(static_cast<char>(found->second));
          } else {
            text.append(piece, offset, c.n_bytes);
          }
          offset += c.n_bytes;
        }
        break;
      }
    }
  }

  const bool has_unk = vocab.unk_id >= 0 && static_cast<size_t>(vocab.unk_id) < n_vocab;
  for (int byte = 0; byte < 256; ++byte) {
    const TokenId found = piece_to_id.Find(byte_chars[byte]);
    if (found >= 0) {
      byte_to_id[byte] = found;
    } else if (has_unk) {
      byte_to_id[byte] = vocab.unk_id;
    } else {
      char hex[8];
      std::snprintf(hex, sizeof(hex), "0x%02X", byte);
      return InvalidArgumentError("byte-level vocabulary has no token '" + byte_chars[byte] + "' for byte " + hex +
                                  " and no valid unknown token (unk_id " + std::to_string(vocab.unk_id) +
                                  "); text with that byte could not be encoded");
    }
  }

  // A merge whose pieces or result are not tokens can never apply, so it is skipped. A repeat of
  // an earlier merge is skipped too, because the earlier rank counts.
  merges.reserve(vocab.merges.size());
  for (size_t rank = 0; rank < vocab.merges.size(); ++rank) {
    const std::string& merge = vocab.merges[rank];
    const size_t space = merge.find(' ');
    if (space == std::string::npos || space == 0 || space + 1 == merge.size() ||
        merge.find(' ', space + 1) != std::string::npos) {
      return InvalidArgumentError("merge " + std::to_string(rank) + " reads '" + merge +
                                  "'; each merge must be two pieces separated by one space");
    }
    const std::string_view text(merge);
    const TokenId left = piece_to_id.Find(text.substr(0, space));
    const TokenId right = piece_to_id.Find(text.substr(space + 1));
    std::string joined(text.substr(0, space));
    joined.append(text.substr(space + 1));
    const TokenId merged = piece_to_id.Find(joined);
    if (left < 0 || right < 0 || merged < 0) continue;
    merges.emplace(PairKey(left, right), MergeRule{static_cast<uint32_t>(rank), merged});
  }
  return Status::Ok();
}

const SpecialToken* Tokenizer::Tables::MatchSpecial(std::string_view text, size_t offset, bool parse_special) const {
  if (!special_first_byte[static_cast<uint8_t>(text[offset])]) return nullptr;
  const std::string_view rest = text.substr(offset);
  for (const SpecialToken& special : specials) {
    if (!special.always && !parse_special) continue;
    if (rest.starts_with(vocab.pieces[special.id])) return &special;
  }
  return nullptr;
}

Result<Tokenizer> Tokenizer::Create(const Vocab& vocab) {
  if (vocab.model != "llama" && vocab.model != "gpt2") {
    return UnsupportedError("tokenizer model '" + vocab.model +
                            "' is not supported; the supported models are 'llama' (SentencePiece BPE with "
                            "byte fallback) and 'gpt2' (byte-level BPE)");
  }
  SPARKV_RETURN_IF_ERROR(CheckArrays(vocab));
  auto tables = std::make_shared<Tables>(vocab);
  tables->byte_level = vocab.model == "gpt2";
  SPARKV_RETURN_IF_ERROR(tables->byte_level ? tables->BuildBpe() : tables->BuildSpm());
  tables->BuildSpecials();
  return Tokenizer(std::move(tables));
}

const Vocab& Tokenizer::vocab() const { return tables_->vocab; }

std::vector<TokenId> Tokenizer::Encode(std::string_view text, bool add_special, bool parse_special) const {
  const Tables& tables = *tables_;
  const Vocab& vocab = tables.vocab;
  std::vector<TokenId> ids;
  if (add_special && vocab.add_bos && vocab.bos_id >= 0 && vocab.bos_id < vocab.size()) ids.push_back(vocab.bos_id);

  // Cuts the text at special tokens and encodes the plain text between them.
  bool after_special = true;  // at the start of the text or just after a special token
  auto encode_plain = [&](std::string_view plain) {
    if (plain.empty()) return;
    if (tables.byte_level) {
      for (std::string_view word : PreTokenize(tables.pre, plain)) tables.EncodeBpeWord(word, &ids);
    } else {
      tables.EncodeSpm(plain, vocab.add_space_prefix && after_special, &ids);
    }
    after_special = false;
  };
  size_t plain_begin = 0;
  for (size_t offset = 0; offset < text.size();) {
    const SpecialToken* special = tables.MatchSpecial(text, offset, parse_special);
    if (special == nullptr) {
      ++offset;
      continue;
    }
    encode_plain(text.substr(plain_begin, offset - plain_begin));
    ids.push_back(special->id);
    after_special = true;
    offset += vocab.pieces[special->id].size();
    plain_begin = offset;
  }
  encode_plain(text.substr(plain_begin));

  if (add_special && vocab.add_eos && vocab.eos_id >= 0 && vocab.eos_id < vocab.size()) ids.push_back(vocab.eos_id);
  return ids;
}

void Tokenizer::Tables::EncodeBpeWord(std::string_view word, std::vector<TokenId>* ids) const {
  if (ignore_merges) {
    std::string whole;
    for (char byte : word) whole += byte_chars[static_cast<uint8_t>(byte)];
    const TokenId id = piece_to_id.Find(whole);
    if (id >= 0) {
      ids->push_back(id);
      return;
    }
  }

  const int32_t n = static_cast<int32_t>(word.size());
  std::vector<BpeSymbol> symbols(word.size());
  for (int32_t i = 0; i < n; ++i) {
    symbols[i] = BpeSymbol{byte_to_id[static_cast<uint8_t>(word[i])], i - 1, i + 1 < n ? i + 1 : -1};
  }

  std::priority_queue<BpeCandidate, std::vector<BpeCandidate>, BpeCandidateLess> queue;
  auto try_add = [&](int32_t left) {
    if (left < 0) return;
    const int32_t right = symbols[left].next;
    if (right < 0) return;
    const TokenId left_id = symbols[left].id;
    const TokenId right_id = symbols[right].id;
    if (left_id < 0 || right_id < 0) return;
    const auto found = merges.find(PairKey(left_id, right_id));
    if (found == merges.end()) return;
    queue.push(BpeCandidate{found->second.rank, left, left_id, right_id, found->second.id});
  };
  for (int32_t i = 0; i + 1 < n; ++i) try_add(i);

  // A candidate is stale once either symbol changed: the left one merged away or into something
  // else, or a different right neighbour.
  while (!queue.empty()) {
    const BpeCandidate candidate = queue.top();
    queue.pop();
    BpeSymbol& left = symbols[candidate.left];
    if (left.id != candidate.left_id || left.next < 0) continue;
    BpeSymbol& right = symbols[left.next];
    if (right.id != candidate.right_id) continue;

    left.id = candidate.merged;
    right.id = -2;
    left.next = right.next;
    if (right.next >= 0) symbols[right.next].prev = candidate.left;
    try_add(left.prev);
    try_add(candidate.left);
  }

  for (int32_t i = n > 0 ? 0 : -1; i >= 0; i = symbols[i].next) {
    if (symbols[i].id >= 0) ids->push_back(symbols[i].id);
  }
}

void Tokenizer::Tables::EncodeSpm(std::string_view text, bool add_space_prefix, std::vector<TokenId>* ids) const {

  // SentencePiece normalization as llama.cpp applies it: optional dummy space, then every
  // space becomes U+2581. No other normalization (no NFKC, no whitespace folding).
  std::string escaped;
  escaped.reserve(text.size() + text.size() / 2 + kSpaceMarker.size());
  if (add_space_prefix) escaped.append(kSpaceMarker);
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
    const TokenId id = piece_to_id.Find(std::string_view(escaped).substr(symbols[left].begin, n));
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
    const TokenId id = symbols[i].id >= 0 ? symbols[i].id : piece_to_id.Find(piece);
    if (id >= 0) {
      ids->push_back(id);
      continue;
    }
    for (char byte : piece) ids->push_back(byte_to_id[static_cast<uint8_t>(byte)]);
  }
}

std::string Tokenizer::DecodeToken(TokenId id) const {
  if (id < 0 || id >= n_vocab()) return {};
  return tables_->texts[id];
}

std::string Tokenizer::Decode(std::span<const TokenId> ids) const {
  const Vocab& vocab = tables_->vocab;
  std::string text;
  bool at_start = !tables_->byte_level && vocab.add_space_prefix;
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
