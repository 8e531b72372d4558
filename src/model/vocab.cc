#include "model/vocab.h"

#include <cstdio>
#include <string_view>
#include <unordered_set>
#include <utility>
#include <variant>

namespace sparkv {
namespace {

constexpr std::string_view kKeyModel = "tokenizer.ggml.model";
constexpr std::string_view kKeyTokens = "tokenizer.ggml.tokens";
constexpr std::string_view kKeyScores = "tokenizer.ggml.scores";
constexpr std::string_view kKeyTypes = "tokenizer.ggml.token_type";
constexpr std::string_view kKeyBos = "tokenizer.ggml.bos_token_id";
constexpr std::string_view kKeyEos = "tokenizer.ggml.eos_token_id";
constexpr std::string_view kKeyUnk = "tokenizer.ggml.unknown_token_id";
constexpr std::string_view kKeyAddBos = "tokenizer.ggml.add_bos_token";
constexpr std::string_view kKeyAddEos = "tokenizer.ggml.add_eos_token";
constexpr std::string_view kKeyAddSpacePrefix = "tokenizer.ggml.add_space_prefix";
constexpr std::string_view kKeyMerges = "tokenizer.ggml.merges";
constexpr std::string_view kKeyPre = "tokenizer.ggml.pre";
constexpr std::string_view kKeyChatTemplate = "tokenizer.chat_template";

constexpr std::string_view kSpaceMarker = "\xE2\x96\x81";  // U+2581, SentencePiece's space

std::string BytePiece(int byte) {
  char text[8];
  std::snprintf(text, sizeof(text), "<0x%02X>", byte);
  return text;
}

// Common English words for MakeByteLevelVocab, most frequent first. Written for this project.
constexpr std::string_view kWords =
    "the of and to in a is that for it as was with be by on not he this are or his from at which "
    "but have an they you were her she there one all we their can has been if more when will "
    "would who so no what up out into its them about than then some could time only two other "
    "new these may like first any my now such do over also our after most made many did before "
    "must through back years where much your way well down should because each just those people "
    "how too little state good very make world still own see men work long get here between both "
    "life being under never day same another know while last might us great old year off come "
    "since against go came right used take three states himself few house use during without "
    "again place around however home small found thought went say part once general high upon "
    "school every does got united left number course war until always away something fact though "
    "water less public put think almost hand enough far took head yet government system better "
    "set told nothing night end why called find look going asked later knew point next city "
    "business give group toward young days let room president side social given present several "
    "order national possible rather second face per among form important often things looked early "
    "white case john become large big need four within felt along children saw best church ever "
    "least power development light thing seemed family interest want members mind country area "
    "others done turned although open problem certain kind began different door thus help sense "
    "means whole matter perhaps itself york times law human line above name example action company "
    "hands local show whether five history gave today either act feet across taken past quite "
    "anything seen having death week experience body word half really field am car words already "
    "information tell together college shall money period held keep sure free real probably seems "
    "behind cannot political air question office brought whose special heard major problems ago "
    "became federal moment study available known result street economic boy position reason change "
    "south board individual job society areas west close turn love community true court force full "
    "am art story model token cache memory network stream compute chunk prefill decode query "
    "context answer text data server client device energy speed fast slow send load read write "
    "file test run plan cost price level value begin stop start ";

// Splits kWords into its words, skipping repeats.
std::vector<std::string_view> WordList() {
  std::vector<std::string_view> words;
  std::unordered_set<std::string_view> seen;
  size_t begin = 0;
  while (begin < kWords.size()) {
    size_t end = kWords.find(' ', begin);
    if (end == std::string_view::npos) end = kWords.size();
    const std::string_view word = kWords.substr(begin, end - begin);
    if (!word.empty() && seen.insert(word).second) words.push_back(word);
    begin = end + 1;
  }
  return words;
}

// Collects unique pieces in order until the vocabulary is full.
class PieceCollector {
 public:
  PieceCollector(Vocab* vocab, size_t n_vocab) : vocab_(vocab), n_vocab_(n_vocab) {
    seen_.reserve(n_vocab);
    for (const std::string& piece : vocab->pieces) seen_.insert(piece);
  }

  bool full() const { return vocab_->pieces.size() >= n_vocab_; }

  // Scores fall by one per piece, so pieces listed earlier merge first.
  void Add(std::string piece) {
    if (full() || !seen_.insert(piece).second) return;
    const float rank = static_cast<float>(vocab_->pieces.size() - 259);
    vocab_->pieces.push_back(std::move(piece));
    vocab_->scores.push_back(-rank);
    vocab_->types.push_back(TokenType::kNormal);
  }

 private:
  Vocab* vocab_;
  size_t n_vocab_;
  std::unordered_set<std::string> seen_;
};

Result<int32_t> ReadSpecialId(const gguf::File& file, std::string_view key, int32_t fallback,
                              size_t n_vocab) {
  if (file.Find(key) == nullptr) {
    return fallback >= 0 && static_cast<size_t>(fallback) < n_vocab ? fallback : -1;
  }
  SPARKV_ASSIGN_OR_RETURN(const uint64_t id, file.GetUint(key));
  if (id >= n_vocab) {
    return InvalidArgumentError("GGUF file '" + file.path() + "': " + std::string(key) + " = " +
                                std::to_string(id) + " is out of range for a vocabulary of " +
                                std::to_string(n_vocab) + " tokens; the file is damaged or its "
                                "token list is incomplete");
  }
  return static_cast<int32_t>(id);
}

Status LengthMismatch(const gguf::File& file, std::string_view key, size_t n, size_t n_tokens) {
  return InvalidArgumentError("GGUF file '" + file.path() + "': " + std::string(key) + " has " +
                              std::to_string(n) + " entries but " + std::string(kKeyTokens) +
                              " has " + std::to_string(n_tokens) + "; they must match one to one");
}

}  // namespace

Result<Vocab> ReadVocab(const gguf::File& file) {
  Vocab vocab;
  SPARKV_ASSIGN_OR_RETURN(vocab.model, file.GetString(kKeyModel));
  const bool is_spm = vocab.model == "llama";

  SPARKV_ASSIGN_OR_RETURN(const gguf::Value::Array* tokens,
                          file.GetArray(kKeyTokens, gguf::ValueType::kString));
  const size_t n_vocab = tokens->size();
  if (n_vocab == 0 || n_vocab > static_cast<size_t>(INT32_MAX)) {
    return InvalidArgumentError("GGUF file '" + file.path() + "': " + std::string(kKeyTokens) +
                                " has " + std::to_string(n_vocab) +
                                " entries; a vocabulary needs 1 to 2^31-1 tokens");
  }
  vocab.pieces.reserve(n_vocab);
  for (const gguf::Value& token : *tokens) {
    const auto* text = std::get_if<std::string>(&token.data);
    if (text == nullptr) return InternalError("GGUF reader returned a string array element that is not a string");
    vocab.pieces.push_back(*text);
  }

  // Scores and types are optional, as in llama.cpp: 0 and normal when absent.
  vocab.scores.assign(n_vocab, 0.0f);
  if (file.Find(kKeyScores) != nullptr) {
    SPARKV_ASSIGN_OR_RETURN(const gguf::Value::Array* scores,
                            file.GetArray(kKeyScores, gguf::ValueType::kFloat32));
    if (scores->size() != n_vocab) return LengthMismatch(file, kKeyScores, scores->size(), n_vocab);
    for (size_t i = 0; i < n_vocab; ++i) {
      const auto* score = std::get_if<double>(&(*scores)[i].data);
      if (score == nullptr) return InternalError("GGUF reader returned an f32 array element that is not a float");
      vocab.scores[i] = static_cast<float>(*score);
    }
  }
  vocab.types.assign(n_vocab, TokenType::kNormal);
  if (file.Find(kKeyTypes) != nullptr) {
    SPARKV_ASSIGN_OR_RETURN(const gguf::Value::Array* types,
                            file.GetArray(kKeyTypes, gguf::ValueType::kInt32));
    if (types->size() != n_vocab) return LengthMismatch(file, kKeyTypes, types->size(), n_vocab);
    for (size_t i = 0; i < n_vocab; ++i) {
      const auto* type = std::get_if<int64_t>(&(*types)[i].data);
      if (type == nullptr) return InternalError("GGUF reader returned an i32 array element that is not an integer");
      if (*type < static_cast<int64_t>(TokenType::kUndefined) ||
          *type > static_cast<int64_t>(TokenType::kByte)) {
        return InvalidArgumentError("GGUF file '" + file.path() + "': " + std::string(kKeyTypes) +
                                    "[" + std::to_string(i) + "] = " + std::to_string(*type) +
                                    " is not a llama.cpp token type (0..6)");
      }
      vocab.types[i] = static_cast<TokenType>(*type);
    }
  }

  // Defaults follow llama.cpp: SentencePiece vocabularies use <unk>=0, <s>=1, </s>=2 and add BOS
  // and a space prefix. Other models name their special tokens explicitly.
  SPARKV_ASSIGN_OR_RETURN(vocab.bos_id, ReadSpecialId(file, kKeyBos, is_spm ? 1 : -1, n_vocab));
  SPARKV_ASSIGN_OR_RETURN(vocab.eos_id, ReadSpecialId(file, kKeyEos, is_spm ? 2 : -1, n_vocab));
  SPARKV_ASSIGN_OR_RETURN(vocab.unk_id, ReadSpecialId(file, kKeyUnk, is_spm ? 0 : -1, n_vocab));
  SPARKV_ASSIGN_OR_RETURN(vocab.add_bos, file.GetBoolOr(kKeyAddBos, is_spm));
  SPARKV_ASSIGN_OR_RETURN(vocab.add_eos, file.GetBoolOr(kKeyAddEos, false));
  SPARKV_ASSIGN_OR_RETURN(vocab.add_space_prefix, file.GetBoolOr(kKeyAddSpacePrefix, is_spm));

  if (file.Find(kKeyMerges) != nullptr) {
    SPARKV_ASSIGN_OR_RETURN(const gguf::Value::Array* merges,
                            file.GetArray(kKeyMerges, gguf::ValueType::kString));
    vocab.merges.reserve(merges->size());
    for (const gguf::Value& merge : *merges) {
      const auto* text = std::get_if<std::string>(&merge.data);
      if (text == nullptr) return InternalError("GGUF reader returned a string array element that is not a string");
      vocab.merges.push_back(*text);
    }
  }
  if (file.Find(kKeyPre) != nullptr) {
    SPARKV_ASSIGN_OR_RETURN(vocab.pre, file.GetString(kKeyPre));
  }
  // End of generation: the ids the file names, then control tokens that close a chat turn.
  for (std::string_view key : {std::string_view("tokenizer.ggml.eot_token_id"),
                               std::string_view("tokenizer.ggml.eom_token_id")}) {
    SPARKV_ASSIGN_OR_RETURN(const int32_t id, ReadSpecialId(file, key, -1, n_vocab));
    if (id >= 0) vocab.end_of_generation.push_back(id);
  }
  for (size_t i = 0; i < n_vocab; ++i) {
    if (vocab.types[i] != TokenType::kControl) continue;
    const std::string& text = vocab.pieces[i];
    if (text == "<|im_end|>" || text == "<|eot_id|>" || text == "<|eom_id|>" || text == "<|end|>" ||
        text == "<|endoftext|>") {
      vocab.end_of_generation.push_back(static_cast<int32_t>(i));
    }
  }
  if (file.Find(kKeyChatTemplate) != nullptr) {
    SPARKV_ASSIGN_OR_RETURN(vocab.chat_template, file.GetString(kKeyChatTemplate));
  }
  return vocab;
}

void WriteVocab(const Vocab& vocab, gguf::Writer* writer) {
  writer->Set(std::string(kKeyModel), gguf::Value::Str(vocab.model));
  writer->Set(std::string(kKeyTokens), gguf::Value::StringArray(vocab.pieces));
  writer->Set(std::string(kKeyScores), gguf::Value::F32Array(vocab.scores));
  std::vector<int32_t> types;
  types.reserve(vocab.types.size());
  for (TokenType type : vocab.types) types.push_back(static_cast<int32_t>(type));
  writer->Set(std::string(kKeyTypes), gguf::Value::I32Array(types));

  // GGUF stores special ids unsigned, so a negative id (no such token) is left out.
  const std::pair<std::string_view, int32_t> ids[] = {
      {kKeyBos, vocab.bos_id}, {kKeyEos, vocab.eos_id}, {kKeyUnk, vocab.unk_id}};
  for (const auto& [key, id] : ids) {
    if (id >= 0) writer->Set(std::string(key), gguf::Value::U32(static_cast<uint32_t>(id)));
  }
  writer->Set(std::string(kKeyAddBos), gguf::Value::Bool(vocab.add_bos));
  writer->Set(std::string(kKeyAddSpacePrefix), gguf::Value::Bool(vocab.add_space_prefix));
  // Keys added with byte-level BPE are left out at their defaults, so that the files written for
  // SentencePiece vocabularies stay byte for byte as they were.
  if (vocab.add_eos) writer->Set(std::string(kKeyAddEos), gguf::Value::Bool(true));
  if (!vocab.merges.empty()) writer->Set(std::string(kKeyMerges), gguf::Value::StringArray(vocab.merges));
  if (!vocab.pre.empty()) writer->Set(std::string(kKeyPre), gguf::Value::Str(vocab.pre));
  if (!vocab.chat_template.empty()) {
    writer->Set(std::string(kKeyChatTemplate), gguf::Value::Str(vocab.chat_template));
  }
}

Vocab MakePlaceholderVocab(int32_t n_vocab) {
  const size_t n = n_vocab > 0 ? static_cast<size_t>(n_vocab) : 0;
  Vocab vocab;
  vocab.pieces.reserve(n);
  vocab.types.reserve(n);
  const bool has_bytes = n >= 3 + 256;
  for (size_t id = 0; id < n; ++id) {
    if (id == 0) {
      vocab.pieces.push_back("<unk>");
      vocab.types.push_back(TokenType::kUnknown);
    } else if (id == 1 || id == 2) {
      vocab.pieces.push_back(id == 1 ? "<s>" : "</s>");
      vocab.types.push_back(TokenType::kControl);
    } else if (has_bytes && id < 3 + 256) {
      vocab.pieces.push_back(BytePiece(static_cast<int>(id - 3)));
      vocab.types.push_back(TokenType::kByte);
    } else {
      // Appended piecewise: `"[" + std::to_string(id)` trips a false g++ 12 -Wrestrict warning.
      std::string piece = "[";
      piece += std::to_string(id);
      piece += ']';
      vocab.pieces.push_back(std::move(piece));
      vocab.types.push_back(TokenType::kNormal);
    }
  }
  vocab.scores.assign(n, 0.0f);
  vocab.unk_id = n > 0 ? 0 : -1;
  vocab.bos_id = n > 1 ? 1 : -1;
  vocab.eos_id = n > 2 ? 2 : -1;
  return vocab;
}

bool IsPlaceholderVocab(const Vocab& vocab) {
  if (vocab.pieces.empty()) return false;
  return vocab.pieces == MakePlaceholderVocab(static_cast<int32_t>(vocab.pieces.size())).pieces;
}

Vocab MakeByteLevelVocab(int32_t n_vocab) {
  const size_t n = n_vocab > 259 ? static_cast<size_t>(n_vocab) : 259;
  Vocab vocab;
  vocab.pieces.reserve(n);
  vocab.scores.reserve(n);
  vocab.types.reserve(n);
  vocab.pieces = {"<unk>", "<s>", "</s>"};
  vocab.types = {TokenType::kUnknown, TokenType::kControl, TokenType::kControl};
  for (int byte = 0; byte < 256; ++byte) {
    vocab.pieces.push_back(BytePiece(byte));
    vocab.types.push_back(TokenType::kByte);
  }
  vocab.scores.assign(vocab.pieces.size(), 0.0f);

  // Pieces come in rounds of growing length, so a piece is listed only after every prefix it is
  // merged from. Whatever n_vocab cuts off, each listed piece stays reachable by merges.
  PieceCollector collector(&vocab, n);
  const std::string space(kSpaceMarker);
  collector.Add(space);  // First, so that the dummy space prefix never falls back to bytes.
  for (char c = '!'; c <= '~'; ++c) collector.Add(std::string(1, c));
  for (char c = '!'; c <= '~'; ++c) collector.Add(space + c);

  // Words: prefixes of 2, 3, ... characters of "word", "▁word" and "▁Word".
  const std::vector<std::string_view> words = WordList();
  size_t longest = 0;
  for (std::string_view word : words) longest = std::max(longest, word.size());
  for (size_t length = 2; length <= longest + 1 && !collector.full(); ++length) {
    for (std::string_view word : words) {
      std::string capitalized(word);
      capitalized[0] = static_cast<char>(capitalized[0] - 'a' + 'A');
      if (length <= word.size()) collector.Add(std::string(word.substr(0, length)));
      if (length - 1 <= word.size()) {
        collector.Add(space + std::string(word.substr(0, length - 1)));
        collector.Add(space + capitalized.substr(0, length - 1));
      }
    }
  }

  // Letter n-grams: bigrams with and without the space marker, then trigrams likewise.
  for (char a = 'a'; a <= 'z'; ++a) {
    for (char b = 'a'; b <= 'z'; ++b) collector.Add({a, b});
  }
  for (char a = 'a'; a <= 'z'; ++a) {
    for (char b = 'a'; b <= 'z'; ++b) collector.Add(space + a + b);
  }
  for (char a = 'A'; a <= 'Z'; ++a) {
    for (char b = 'a'; b <= 'z'; ++b) collector.Add(space + a + b);
  }
  for (char a = 'a'; a <= 'z' && !collector.full(); ++a) {
    for (char b = 'a'; b <= 'z'; ++b) {
      for (char c = 'a'; c <= 'z'; ++c) collector.Add({a, b, c});
    }
  }
  for (char a = 'a'; a <= 'z' && !collector.full(); ++a) {
    for (char b = 'a'; b <= 'z'; ++b) {
      for (char c = 'a'; c <= 'z'; ++c) collector.Add(space + a + b + c);
    }
  }

  // Padding no merge can reach: a merge into "<unused7>" needs "<" and "unused7>" as pieces, and
  // no other piece contains '>' after a letter.
  for (size_t id = vocab.pieces.size(); id < n; ++id) {
    vocab.pieces.push_back("<unused" + std::to_string(id) + ">");
    vocab.scores.push_back(-1e9f);
    vocab.types.push_back(TokenType::kUnused);
  }
  return vocab;
}

bool Vocab::EndsGeneration(int32_t id) const {
  if (id == eos_id) return true;
  for (int32_t end : end_of_generation) {
    if (end == id) return true;
  }
  return false;
}

}  // namespace sparkv
