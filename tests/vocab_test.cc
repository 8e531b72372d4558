// Vocabularies: reading and writing tokenizer.ggml.* metadata through real GGUF files, rejection of
// inconsistent metadata, and the placeholder and byte-level builders.
#include "model/vocab.h"

#include <gtest/gtest.h>

#include <cstdio>
#include <memory>
#include <ostream>
#include <string>
#include <unordered_set>
#include <vector>

#include "gguf/gguf.h"
#include "model/tokenizer.h"
#include "test_support.h"

namespace sparkv {
namespace {

constexpr std::string_view kSpace = "\xE2\x96\x81";  // U+2581

Result<Vocab> ReadVocabFromFile(const std::string& path) {
  SPARKV_ASSIGN_OR_RETURN(std::unique_ptr<gguf::File> file, gguf::File::Open(path));
  return ReadVocab(*file);
}

// Writes `writer` to a file in `dir` and reads the vocabulary back.
Result<Vocab> WriteAndRead(const gguf::Writer& writer, const testing::TempDir& dir) {
  const std::string path = dir.File("vocab.gguf");
  SPARKV_RETURN_IF_ERROR(writer.WriteFile(path));
  return ReadVocabFromFile(path);
}

void ExpectSameVocab(const Vocab& actual, const Vocab& expected) {
  EXPECT_EQ(actual.model, expected.model);
  EXPECT_EQ(actual.pieces, expected.pieces);
  EXPECT_EQ(actual.scores, expected.scores);
  EXPECT_EQ(actual.types, expected.types);
  EXPECT_EQ(actual.bos_id, expected.bos_id);
  EXPECT_EQ(actual.eos_id, expected.eos_id);
  EXPECT_EQ(actual.unk_id, expected.unk_id);
  EXPECT_EQ(actual.add_bos, expected.add_bos);
  EXPECT_EQ(actual.add_space_prefix, expected.add_space_prefix);
}

TEST(ReadVocab, ReadsLlama2Vocabulary) {
  const auto vocab = ReadVocabFromFile(testing::DataPath("vocab/llama-spm.gguf"));
  ASSERT_TRUE(vocab.ok()) << vocab.status().ToString();
  EXPECT_EQ(vocab->model, "llama");
  ASSERT_EQ(vocab->size(), 32000);
  EXPECT_EQ(vocab->scores.size(), 32000u);
  EXPECT_EQ(vocab->types.size(), 32000u);
  EXPECT_EQ(vocab->pieces[0], "<unk>");
  EXPECT_EQ(vocab->types[0], TokenType::kUnknown);
  EXPECT_EQ(vocab->types[1], TokenType::kControl);
  EXPECT_EQ(vocab->types[2], TokenType::kControl);
  EXPECT_EQ(vocab->pieces[3 + 0x0A], "<0x0A>");
  EXPECT_EQ(vocab->types[3 + 0x0A], TokenType::kByte);
  EXPECT_EQ(vocab->pieces[15043], std::string(kSpace) + "Hello");  // from the test vectors
  EXPECT_EQ(vocab->bos_id, 1);
  EXPECT_EQ(vocab->eos_id, 2);
  EXPECT_EQ(vocab->unk_id, 0);
  EXPECT_TRUE(vocab->add_space_prefix);
}

TEST(ReadVocab, RoundTripsLlama2Vocabulary) {
  const auto original = ReadVocabFromFile(testing::DataPath("vocab/llama-spm.gguf"));
  ASSERT_TRUE(original.ok()) << original.status().ToString();
  gguf::Writer writer;
  WriteVocab(*original, &writer);
  testing::TempDir dir;
  const auto copy = WriteAndRead(writer, dir);
  ASSERT_TRUE(copy.ok()) << copy.status().ToString();
  ExpectSameVocab(*copy, *original);
}

TEST(ReadVocab, RoundTripsEveryField) {
  Vocab original = MakeByteLevelVocab(1000);
  original.bos_id = 7;
  original.eos_id = 999;
  original.unk_id = 3;
  original.add_bos = false;
  original.add_space_prefix = false;
  original.types[500] = TokenType::kUserDefined;
  original.types[501] = TokenType::kUndefined;
  original.scores[502] = 1.5f;
  gguf::Writer writer;
  WriteVocab(original, &writer);
  testing::TempDir dir;
  const auto copy = WriteAndRead(writer, dir);
  ASSERT_TRUE(copy.ok()) << copy.status().ToString();
  ExpectSameVocab(*copy, original);
}

TEST(ReadVocab, AppliesLlamaDefaultsForOptionalKeys) {
  gguf::Writer writer;
  writer.Set("tokenizer.ggml.model", gguf::Value::Str("llama"));
  writer.Set("tokenizer.ggml.tokens", gguf::Value::StringArray({"<unk>", "<s>", "</s>", "a"}));
  testing::TempDir dir;
  const auto vocab = WriteAndRead(writer, dir);
  ASSERT_TRUE(vocab.ok()) << vocab.status().ToString();
  EXPECT_EQ(vocab->scores, std::vector<float>(4, 0.0f));
  EXPECT_EQ(vocab->types, std::vector<TokenType>(4, TokenType::kNormal));
  EXPECT_EQ(vocab->unk_id, 0);
  EXPECT_EQ(vocab->bos_id, 1);
  EXPECT_EQ(vocab->eos_id, 2);
  EXPECT_TRUE(vocab->add_bos);
  EXPECT_TRUE(vocab->add_space_prefix);
}

TEST(ReadVocab, FindsEndOfTurnTokens) {
  // A chatml-style vocabulary: <|im_end|> is a control token that closes a turn, the end-of-turn
  // key names another id, and a normal token with the same text as a marker does not count.
  Vocab original = MakeByteLevelVocab(400);
  original.pieces[300] = "<|im_end|>";
  original.types[300] = TokenType::kControl;
  original.pieces[301] = "<|eot_id|>";  // a normal token here
  gguf::Writer writer;
  WriteVocab(original, &writer);
  writer.Set("tokenizer.ggml.eot_token_id", gguf::Value::U32(350));
  testing::TempDir dir;
  const auto vocab = WriteAndRead(writer, dir);
  ASSERT_TRUE(vocab.ok()) << vocab.status().ToString();
  EXPECT_TRUE(vocab->EndsGeneration(vocab->eos_id));
  EXPECT_TRUE(vocab->EndsGeneration(300));
  EXPECT_TRUE(vocab->EndsGeneration(350));
  EXPECT_FALSE(vocab->EndsGeneration(301));
  EXPECT_FALSE(vocab->EndsGeneration(299));

  writer.Set("tokenizer.ggml.eot_token_id", gguf::Value::U32(400));
  const auto broken = WriteAndRead(writer, dir);
  ASSERT_FALSE(broken.ok());
  EXPECT_NE(broken.status().message().find("eot_token_id = 400"), std::string::npos) << broken.status().message();
}

TEST(ReadVocab, DropsDefaultIdsOutOfRange) {
  gguf::Writer writer;
  writer.Set("tokenizer.ggml.model", gguf::Value::Str("llama"));
  writer.Set("tokenizer.ggml.tokens", gguf::Value::StringArray({"<unk>", "<s>"}));
  testing::TempDir dir;
  const auto vocab = WriteAndRead(writer, dir);
  ASSERT_TRUE(vocab.ok()) << vocab.status().ToString();
  EXPECT_EQ(vocab->bos_id, 1);
  EXPECT_EQ(vocab->eos_id, -1);
}

// Each case starts from a valid vocabulary, replaces one key and expects ReadVocab to fail with
// `code` and a message naming `expected_text`.
struct BrokenCase {
  const char* name;
  std::string key;
  gguf::Value value;
  ErrorCode code;
  std::string expected_text;
};

void PrintTo(const BrokenCase& broken, std::ostream* out) { *out << broken.name; }

class ReadVocabRejects : public ::testing::TestWithParam<BrokenCase> {};

TEST_P(ReadVocabRejects, BrokenMetadata) {
  const BrokenCase& broken = GetParam();
  gguf::Writer writer;
  WriteVocab(MakeByteLevelVocab(300), &writer);
  writer.Set(broken.key, broken.value);
  testing::TempDir dir;
  const auto vocab = WriteAndRead(writer, dir);
  ASSERT_FALSE(vocab.ok());
  EXPECT_EQ(vocab.status().code(), broken.code) << vocab.status().ToString();
  EXPECT_NE(vocab.status().message().find(broken.expected_text), std::string::npos)
      << vocab.status().ToString();
}

std::vector<BrokenCase> BrokenCases() {
  const std::vector<float> short_scores(299, 0.0f);
  const std::vector<int32_t> long_types(301, 1);
  std::vector<int32_t> bad_types(300, 1);
  bad_types[42] = 9;
  return {
      {"ShortScores", "tokenizer.ggml.scores", gguf::Value::F32Array(short_scores),
       ErrorCode::kInvalidArgument, "tokenizer.ggml.scores has 299 entries"},
      {"LongTypes", "tokenizer.ggml.token_type", gguf::Value::I32Array(long_types),
       ErrorCode::kInvalidArgument, "tokenizer.ggml.token_type has 301 entries"},
      {"UnknownTokenType", "tokenizer.ggml.token_type", gguf::Value::I32Array(bad_types),
       ErrorCode::kInvalidArgument, "token_type[42] = 9"},
      {"BosOutOfRange", "tokenizer.ggml.bos_token_id", gguf::Value::U32(300),
       ErrorCode::kInvalidArgument, "bos_token_id = 300 is out of range"},
      {"EosOutOfRange", "tokenizer.ggml.eos_token_id", gguf::Value::U32(0xFFFFFFFFu),
       ErrorCode::kInvalidArgument, "eos_token_id = 4294967295 is out of range"},
      {"UnkOutOfRange", "tokenizer.ggml.unknown_token_id", gguf::Value::U32(1000),
       ErrorCode::kInvalidArgument, "unknown_token_id = 1000 is out of range"},
      {"NegativeBos", "tokenizer.ggml.bos_token_id", gguf::Value::I32(-1),
       ErrorCode::kInvalidArgument, "bos_token_id"},
      {"TokensNotStrings", "tokenizer.ggml.tokens", gguf::Value::I32Array({1, 2, 3}),
       ErrorCode::kInvalidArgument, "tokenizer.ggml.tokens"},
      {"EmptyTokens", "tokenizer.ggml.tokens", gguf::Value::StringArray({}),
       ErrorCode::kInvalidArgument, "tokenizer.ggml.tokens has 0 entries"},
      {"ScoresNotFloats", "tokenizer.ggml.scores", gguf::Value::I32Array(long_types),
       ErrorCode::kInvalidArgument, "tokenizer.ggml.scores"},
      {"ModelNotString", "tokenizer.ggml.model", gguf::Value::U32(1), ErrorCode::kInvalidArgument,
       "tokenizer.ggml.model"},
  };
}

INSTANTIATE_TEST_SUITE_P(Cases, ReadVocabRejects, ::testing::ValuesIn(BrokenCases()),
                         [](const ::testing::TestParamInfo<BrokenCase>& case_info) {
                           return std::string(case_info.param.name);
                         });

TEST(ReadVocab, RejectsFileWithoutTokens) {
  gguf::Writer writer;
  writer.Set("tokenizer.ggml.model", gguf::Value::Str("llama"));
  testing::TempDir dir;
  const auto vocab = WriteAndRead(writer, dir);
  ASSERT_FALSE(vocab.ok());
  EXPECT_EQ(vocab.status().code(), ErrorCode::kNotFound);
  EXPECT_NE(vocab.status().message().find("tokenizer.ggml.tokens"), std::string::npos);
}

TEST(MakePlaceholderVocab, GivesOnePiecePerId) {
  for (int32_t n_vocab : {1, 2, 3, 100, 258, 259, 512, 32000}) {
    const Vocab vocab = MakePlaceholderVocab(n_vocab);
    ASSERT_EQ(vocab.size(), n_vocab);
    ASSERT_EQ(vocab.scores.size(), vocab.pieces.size());
    ASSERT_EQ(vocab.types.size(), vocab.pieces.size());
    const std::unordered_set<std::string> unique(vocab.pieces.begin(), vocab.pieces.end());
    EXPECT_EQ(unique.size(), vocab.pieces.size()) << "n_vocab " << n_vocab;
    EXPECT_EQ(vocab.pieces[0], "<unk>");
    EXPECT_EQ(vocab.types[0], TokenType::kUnknown);
    EXPECT_EQ(vocab.bos_id, n_vocab > 1 ? 1 : -1);
    EXPECT_EQ(vocab.eos_id, n_vocab > 2 ? 2 : -1);
    EXPECT_TRUE(Tokenizer::Create(vocab).ok()) << "n_vocab " << n_vocab;
  }
}

TEST(MakePlaceholderVocab, AddsByteTokensWhenTheyFit) {
  const Vocab with_bytes = MakePlaceholderVocab(512);
  EXPECT_EQ(with_bytes.pieces[1], "<s>");
  EXPECT_EQ(with_bytes.pieces[2], "</s>");
  EXPECT_EQ(with_bytes.pieces[3], "<0x00>");
  EXPECT_EQ(with_bytes.types[3], TokenType::kByte);
  EXPECT_EQ(with_bytes.pieces[258], "<0xFF>");
  EXPECT_EQ(with_bytes.pieces[259], "[259]");
  EXPECT_EQ(with_bytes.types[259], TokenType::kNormal);

  const Vocab without_bytes = MakePlaceholderVocab(258);
  EXPECT_EQ(without_bytes.pieces[3], "[3]");
  EXPECT_EQ(without_bytes.pieces[257], "[257]");
}

TEST(MakeByteLevelVocab, HasExactSizeAndFixedLayout) {
  for (int32_t n_vocab : {259, 260, 1000, 32000, 100000}) {
    const Vocab vocab = MakeByteLevelVocab(n_vocab);
    ASSERT_EQ(vocab.size(), n_vocab);
    ASSERT_EQ(vocab.scores.size(), vocab.pieces.size());
    ASSERT_EQ(vocab.types.size(), vocab.pieces.size());
    EXPECT_EQ(vocab.model, "llama");
    EXPECT_EQ(vocab.pieces[0], "<unk>");
    EXPECT_EQ(vocab.types[0], TokenType::kUnknown);
    EXPECT_EQ(vocab.pieces[1], "<s>");
    EXPECT_EQ(vocab.types[1], TokenType::kControl);
    EXPECT_EQ(vocab.pieces[2], "</s>");
    EXPECT_EQ(vocab.types[2], TokenType::kControl);
    for (int byte = 0; byte < 256; ++byte) {
      char piece[8];
      std::snprintf(piece, sizeof(piece), "<0x%02X>", byte);
      EXPECT_EQ(vocab.pieces[3 + byte], piece);
      EXPECT_EQ(vocab.types[3 + byte], TokenType::kByte);
    }
    const std::unordered_set<std::string> unique(vocab.pieces.begin(), vocab.pieces.end());
    EXPECT_EQ(unique.size(), vocab.pieces.size()) << "n_vocab " << n_vocab;
  }
}

TEST(MakeByteLevelVocab, IsDeterministic) {
  const Vocab first = MakeByteLevelVocab(32000);
  const Vocab second = MakeByteLevelVocab(32000);
  ExpectSameVocab(first, second);
}

TEST(MakeByteLevelVocab, FillsLlamaSizeWithRealPieces) {
  const Vocab vocab = MakeByteLevelVocab(32000);
  EXPECT_EQ(vocab.pieces[259], kSpace);
  int n_normal = 0;
  for (TokenType type : vocab.types) n_normal += type == TokenType::kNormal;
  EXPECT_EQ(n_normal, 32000 - 259);
  const std::unordered_set<std::string> pieces(vocab.pieces.begin(), vocab.pieces.end());
  for (const char* word : {"the", "and", "model", "cache"}) {
    EXPECT_TRUE(pieces.contains(std::string(kSpace) + word)) << word;
  }
}

TEST(MakeByteLevelVocab, ScoresFallInListOrder) {
  const Vocab vocab = MakeByteLevelVocab(32000);
  for (size_t id = 260; id < vocab.pieces.size(); ++id) {
    ASSERT_LT(vocab.scores[id], vocab.scores[id - 1]) << "id " << id;
  }
}

// Every multi-character piece must be reachable by merges: dropping its last character gives
// a piece too (or a single character, which needs no piece).
TEST(MakeByteLevelVocab, PiecesExtendShorterPieces) {
  for (int32_t n_vocab : {300, 2000, 32000}) {
    const Vocab vocab = MakeByteLevelVocab(n_vocab);
    const std::unordered_set<std::string> pieces(vocab.pieces.begin(), vocab.pieces.end());
    for (size_t id = 259; id < vocab.pieces.size(); ++id) {
      if (vocab.types[id] != TokenType::kNormal) continue;
      const std::string& piece = vocab.pieces[id];
      size_t last = piece.size() - 1;
      while (last > 0 && (static_cast<uint8_t>(piece[last]) & 0xC0) == 0x80) --last;
      if (last == 0) continue;  // a single character
      const std::string prefix = piece.substr(0, last);
      const bool prefix_is_one_char = prefix == kSpace || prefix.size() == 1;
      EXPECT_TRUE(prefix_is_one_char || pieces.contains(prefix)) << "'" << piece << "'";
    }
  }
}

}  // namespace
}  // namespace sparkv
