// Tokenizer: llama.cpp's Llama 2 test vectors, a quadratic reference merge, round trips through
// the self-contained byte-level vocabulary, and rejection of vocabularies it cannot handle.
#include "model/tokenizer.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdio>
#include <fstream>
#include <iterator>
#include <memory>
#include <sstream>
#include <string>
#include <unordered_map>
#include <vector>

#include "gguf/gguf.h"
#include "model/vocab.h"
#include "test_support.h"

namespace sparkv {
namespace {

struct VocabCase {
  std::string text;
  std::vector<TokenId> ids;
};

std::string ReadWholeFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  EXPECT_TRUE(in.good()) << "cannot open " << path;
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

// Splits the .inp file as llama.cpp's test-tokenizer-0 does: on "\n__ggml_vocab_test__\n", so
// each case keeps every newline of its own except the one before the separator line, and the
// final separator ends the list without an empty case after it.
std::vector<VocabCase> ReadVocabCases(const std::string& stem) {
  const std::string inp = ReadWholeFile(stem + ".inp");
  const std::string separator = "\n__ggml_vocab_test__\n";
  std::vector<std::string> texts;
  for (size_t begin = 0; begin < inp.size();) {
    const size_t end = inp.find(separator, begin);
    if (end == std::string::npos) {
      texts.push_back(inp.substr(begin));
      break;
    }
    texts.push_back(inp.substr(begin, end - begin));
    begin = end + separator.size();
  }

  std::ifstream out(stem + ".out");
  std::vector<VocabCase> cases;
  size_t index = 0;
  for (std::string line; std::getline(out, line); ++index) {
    VocabCase test_case;
    if (index < texts.size()) test_case.text = texts[index];
    std::istringstream numbers(line);
    for (TokenId id; numbers >> id;) test_case.ids.push_back(id);
    cases.push_back(std::move(test_case));
  }
  EXPECT_EQ(cases.size(), texts.size()) << "the .inp and .out files disagree on the case count";
  return cases;
}

class Llama2Tokenizer : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    auto file = gguf::File::Open(testing::DataPath("vocab/llama-spm.gguf"));
    ASSERT_TRUE(file.ok()) << file.status().ToString();
    auto vocab = ReadVocab(**file);
    ASSERT_TRUE(vocab.ok()) << vocab.status().ToString();
    auto tokenizer = Tokenizer::Create(*vocab);
    ASSERT_TRUE(tokenizer.ok()) << tokenizer.status().ToString();
    tokenizer_ = new Tokenizer(std::move(tokenizer).value());
  }
  static void TearDownTestSuite() {
    delete tokenizer_;
    tokenizer_ = nullptr;
  }

  static Tokenizer* tokenizer_;
};

Tokenizer* Llama2Tokenizer::tokenizer_ = nullptr;

TEST_F(Llama2Tokenizer, EncodesLlamaCppTestVectors) {
  ASSERT_NE(tokenizer_, nullptr);
  const std::vector<VocabCase> cases = ReadVocabCases(testing::DataPath("vocab/llama-spm"));
  ASSERT_EQ(cases.size(), 46u);
  for (const VocabCase& test_case : cases) {
    EXPECT_EQ(tokenizer_->Encode(test_case.text, /*add_special=*/false), test_case.ids)
        << "text: '" << test_case.text << "'";
  }
}

TEST_F(Llama2Tokenizer, DecodesTestVectorsToText) {
  ASSERT_NE(tokenizer_, nullptr);
  for (const VocabCase& test_case : ReadVocabCases(testing::DataPath("vocab/llama-spm"))) {
    EXPECT_EQ(tokenizer_->Decode(test_case.ids), test_case.text);
    const std::vector<TokenId> with_bos = tokenizer_->Encode(test_case.text, /*add_special=*/true);
    EXPECT_EQ(tokenizer_->Decode(with_bos), test_case.text);
  }
}

TEST_F(Llama2Tokenizer, AddsBosOnlyWhenAsked) {
  ASSERT_NE(tokenizer_, nullptr);
  const std::vector<TokenId> plain = tokenizer_->Encode("Hello world", false);
  const std::vector<TokenId> with_bos = tokenizer_->Encode("Hello world", true);
  ASSERT_EQ(with_bos.size(), plain.size() + 1);
  EXPECT_EQ(with_bos[0], tokenizer_->vocab().bos_id);
  EXPECT_EQ(std::vector<TokenId>(with_bos.begin() + 1, with_bos.end()), plain);
  EXPECT_EQ(tokenizer_->Encode("", true), std::vector<TokenId>{tokenizer_->vocab().bos_id});
  EXPECT_TRUE(tokenizer_->Encode("", false).empty());
}

TEST_F(Llama2Tokenizer, DecodeTokenMapsEveryTokenType) {
  ASSERT_NE(tokenizer_, nullptr);
  const Vocab& vocab = tokenizer_->vocab();
  for (TokenId id = 0; id < vocab.size(); ++id) {
    const std::string text = tokenizer_->DecodeToken(id);
    switch (vocab.types[id]) {
      case TokenType::kByte: {
        ASSERT_EQ(text.size(), 1u) << vocab.pieces[id];
        EXPECT_EQ(vocab.pieces[id], "<0x" + std::string(1, "0123456789ABCDEF"[static_cast<uint8_t>(text[0]) >> 4]) +
                                        std::string(1, "0123456789ABCDEF"[text[0] & 15]) + ">");
        break;
      }
      case TokenType::kControl:
      case TokenType::kUnknown:
        EXPECT_EQ(text, "") << vocab.pieces[id];
        break;
      default:
        EXPECT_EQ(text.find("\xE2\x96\x81"), std::string::npos) << vocab.pieces[id];
        EXPECT_EQ(text.size() + 2 * std::count(text.begin(), text.end(), ' '), vocab.pieces[id].size())
            << vocab.pieces[id];
        break;
    }
  }
  EXPECT_EQ(tokenizer_->DecodeToken(-1), "");
  EXPECT_EQ(tokenizer_->DecodeToken(vocab.size()), "");
}

TEST_F(Llama2Tokenizer, DecodeDropsOnlyDummySpace) {
  ASSERT_NE(tokenizer_, nullptr);
  const std::vector<TokenId> hello = tokenizer_->Encode("Hello", false);  // "▁Hello"
  ASSERT_EQ(hello.size(), 1u);
  const TokenId bos = tokenizer_->vocab().bos_id;
  EXPECT_EQ(tokenizer_->DecodeToken(hello[0]), " Hello");
  EXPECT_EQ(tokenizer_->Decode(std::vector<TokenId>{hello[0], hello[0]}), "Hello Hello");
  EXPECT_EQ(tokenizer_->Decode(std::vector<TokenId>{bos, hello[0]}), "Hello");
  EXPECT_EQ(tokenizer_->Decode(std::vector<TokenId>{bos, bos, hello[0]}), "Hello");
}

// Encodes by the merge rule spelled out directly: rescan every adjacent pair, merge the best
// scored (ties: leftmost), repeat. It is quadratic, so it serves only to check Encode.
std::vector<TokenId> ReferenceEncode(const Vocab& vocab, std::string_view text) {
  std::unordered_map<std::string, TokenId> ids;
  for (size_t id = 0; id < vocab.pieces.size(); ++id) ids[vocab.pieces[id]] = static_cast<TokenId>(id);

  std::string escaped = vocab.add_space_prefix ? "\xE2\x96\x81" : "";
  for (char c : text) escaped += c == ' ' ? std::string("\xE2\x96\x81") : std::string(1, c);
  if (text.empty()) return {};
  std::vector<std::string> symbols;
  for (size_t i = 0; i < escaped.size();) {
    const uint8_t lead = static_cast<uint8_t>(escaped[i]);
    size_t n = 1;
    if (lead >= 0xF0) {
      n = 4;
    } else if (lead >= 0xE0) {
      n = 3;
    } else if (lead >= 0xC0) {
      n = 2;
    }
    n = std::min(n, escaped.size() - i);
    symbols.push_back(escaped.substr(i, n));
    i += n;
  }
  while (true) {
    ptrdiff_t best = -1;
    float best_score = 0.0f;
    for (size_t i = 0; i + 1 < symbols.size(); ++i) {
      const auto found = ids.find(symbols[i] + symbols[i + 1]);
      if (found == ids.end()) continue;
      if (best < 0 || vocab.scores[found->second] > best_score) {
        best = static_cast<ptrdiff_t>(i);
        best_score = vocab.scores[found->second];
      }
    }
    if (best < 0) break;
    symbols[best] += symbols[best + 1];
    symbols.erase(symbols.begin() + best + 1);
  }

  std::vector<TokenId> out;
  for (const std::string& symbol : symbols) {
    const auto found = ids.find(symbol);
    if (found != ids.end()) {
      out.push_back(found->second);
      continue;
    }
    for (char byte : symbol) {
      char piece[8];
      std::snprintf(piece, sizeof(piece), "<0x%02X>", static_cast<uint8_t>(byte));
      out.push_back(ids.at(piece));
    }
  }
  return out;
}

// A long text mixing every test vector, so merges interact across thousands of characters.
std::string LongMixedText() {
  std::string text;
  const std::vector<VocabCase> cases = ReadVocabCases(testing::DataPath("vocab/llama-spm"));
  for (int round = 0; text.size() < 12000; ++round) {
    for (size_t i = 0; i < cases.size(); ++i) text += cases[(i * 7 + round) % cases.size()].text + " ";
  }
  return text;
}

TEST_F(Llama2Tokenizer, MatchesReferenceOnLongText) {
  ASSERT_NE(tokenizer_, nullptr);
  const std::string text = LongMixedText().substr(0, 3000);
  const std::vector<TokenId> ids = tokenizer_->Encode(text, false);
  EXPECT_EQ(ids, ReferenceEncode(tokenizer_->vocab(), text));
  EXPECT_EQ(tokenizer_->Decode(ids), text);
}

TEST_F(Llama2Tokenizer, RoundTripsLongText) {
  ASSERT_NE(tokenizer_, nullptr);
  const std::string text = LongMixedText();
  const std::vector<TokenId> ids = tokenizer_->Encode(text, true);
  EXPECT_LT(ids.size(), text.size());
  EXPECT_EQ(tokenizer_->Decode(ids), text);
}

TEST_F(Llama2Tokenizer, SpellsInvalidUtf8AsByteTokens) {
  ASSERT_NE(tokenizer_, nullptr);
  const std::string text = "ok \x80\xBF done \xFF\xE2\x82";  // stray continuation and lead bytes
  const std::vector<TokenId> ids = tokenizer_->Encode(text, false);
  EXPECT_EQ(tokenizer_->Decode(ids), text);
  EXPECT_EQ(ids, ReferenceEncode(tokenizer_->vocab(), text));

  // A lead byte right before a space joins the first bytes of its U+2581 into one symbol, as in
  // llama.cpp, so only the ids are compared here.
  const std::string swallowing = "ok \xC3 \xF0 x";
  EXPECT_EQ(tokenizer_->Encode(swallowing, false), ReferenceEncode(tokenizer_->vocab(), swallowing));
}

TEST_F(Llama2Tokenizer, ParsesControlTokensOnlyWhenAsked) {
  const Vocab& vocab = tokenizer_->vocab();
  const std::vector<TokenId> hello = tokenizer_->Encode("Hello", false);
  const std::vector<TokenId> world = tokenizer_->Encode("world", false);
  // As in llama.cpp, the text after a special token gets the space prefix again.
  std::vector<TokenId> expected = hello;
  expected.push_back(vocab.eos_id);
  expected.insert(expected.end(), world.begin(), world.end());
  EXPECT_EQ(tokenizer_->Encode("Hello</s>world", false, /*parse_special=*/true), expected);
  EXPECT_EQ(tokenizer_->Encode("<s>", false, /*parse_special=*/true), std::vector<TokenId>{vocab.bos_id});

  const std::vector<TokenId> plain = tokenizer_->Encode("Hello</s>world", false, /*parse_special=*/false);
  EXPECT_EQ(std::count(plain.begin(), plain.end(), vocab.eos_id), 0);
  EXPECT_EQ(tokenizer_->Decode(plain), "Hello</s>world");
}

TEST(Tokenizer, AlwaysSplitsOutUserDefinedTokens) {
  Vocab vocab = MakeByteLevelVocab(1000);
  vocab.pieces[900] = "<sep>";
  vocab.types[900] = TokenType::kUserDefined;
  auto tokenizer = Tokenizer::Create(vocab);
  ASSERT_TRUE(tokenizer.ok()) << tokenizer.status().ToString();
  const std::vector<TokenId> ids = tokenizer->Encode("a<sep>b", false);
  EXPECT_EQ(std::count(ids.begin(), ids.end(), 900), 1);
  EXPECT_EQ(tokenizer->DecodeToken(900), "<sep>");
}

TEST(Tokenizer, HonoursAddBosAndAddEosKeys) {
  Vocab vocab = MakeByteLevelVocab(1000);
  auto plain = Tokenizer::Create(vocab);
  ASSERT_TRUE(plain.ok());
  const std::vector<TokenId> body = plain->Encode("hi", false);
  vocab.add_bos = false;
  vocab.add_eos = true;
  auto tokenizer = Tokenizer::Create(vocab);
  ASSERT_TRUE(tokenizer.ok());
  std::vector<TokenId> expected = body;
  expected.push_back(vocab.eos_id);
  EXPECT_EQ(tokenizer->Encode("hi", true), expected);
  EXPECT_EQ(tokenizer->Encode("hi", false), body);
}

TEST(Tokenizer, RejectsUnknownModel) {
  Vocab vocab = MakeByteLevelVocab(300);
  vocab.model = "bert";
  const auto tokenizer = Tokenizer::Create(vocab);
  ASSERT_FALSE(tokenizer.ok());
  EXPECT_EQ(tokenizer.status().code(), ErrorCode::kUnsupported);
  EXPECT_NE(tokenizer.status().message().find("'bert'"), std::string::npos);
  EXPECT_NE(tokenizer.status().message().find("'llama'"), std::string::npos);
  EXPECT_NE(tokenizer.status().message().find("'gpt2'"), std::string::npos);
}

TEST(Tokenizer, RejectsArraysOfDifferentLengths) {
  Vocab vocab = MakeByteLevelVocab(300);
  vocab.scores.pop_back();
  const auto tokenizer = Tokenizer::Create(vocab);
  ASSERT_FALSE(tokenizer.ok());
  EXPECT_EQ(tokenizer.status().code(), ErrorCode::kInvalidArgument);
  EXPECT_NE(tokenizer.status().message().find("299 scores"), std::string::npos);
}

TEST(Tokenizer, RejectsVocabularyMissingBytes) {
  Vocab vocab = MakePlaceholderVocab(100);  // too small for byte tokens
  vocab.unk_id = -1;
  const auto tokenizer = Tokenizer::Create(vocab);
  ASSERT_FALSE(tokenizer.ok());
  EXPECT_NE(tokenizer.status().message().find("<0x00>"), std::string::npos);
}

TEST(Tokenizer, RejectsBytePieceThatIsNotHex) {
  Vocab vocab = MakeByteLevelVocab(300);
  vocab.pieces[3 + 0x41] = "<0xZZ>";
  const auto tokenizer = Tokenizer::Create(vocab);
  ASSERT_FALSE(tokenizer.ok());
  EXPECT_NE(tokenizer.status().message().find("<0xZZ>"), std::string::npos);
}

TEST(Tokenizer, PlaceholderVocabIsRecognized) {
  EXPECT_TRUE(IsPlaceholderVocab(MakePlaceholderVocab(512)));
  EXPECT_TRUE(IsPlaceholderVocab(MakePlaceholderVocab(100)));
  EXPECT_FALSE(IsPlaceholderVocab(MakeByteLevelVocab(512)));
  Vocab edited = MakePlaceholderVocab(512);
  edited.pieces[300] = "hello";
  EXPECT_FALSE(IsPlaceholderVocab(edited));
  EXPECT_FALSE(IsPlaceholderVocab(Vocab{}));
}

TEST(Tokenizer, FallsBackToUnknownToken) {
  const Vocab vocab = MakePlaceholderVocab(100);
  auto tokenizer = Tokenizer::Create(vocab);
  ASSERT_TRUE(tokenizer.ok()) << tokenizer.status().ToString();
  const std::vector<TokenId> ids = tokenizer->Encode("ab", false);
  EXPECT_EQ(ids, std::vector<TokenId>(ids.size(), vocab.unk_id));
  EXPECT_EQ(ids.size(), 5u);  // three bytes of U+2581, then 'a' and 'b'
}

// Texts that exercise every UTF-8 length, emoji with joiners, controls and spacing.
const std::vector<std::string>& RoundTripTexts() {
  static const std::vector<std::string> texts = {
      "",
      " ",
      "   leading and trailing spaces   ",
      "The quick brown fox jumps over the lazy dog.",
      "Line one\nLine two\r\n\tTabbed line\n\n",
      "Grüße aus Köln, naïve café, Æsir, œuvre",
      "Привет, мир! Ελληνικά. עברית. العربية",
      "日本語のテキスト、中文文本，한국어 텍스트",
      "emoji: 🚀🦙 😶‍🌫️ 👩‍👩‍👧‍👦 🇩🇪 ✅",
      "math ∑ ∫ √2 ≈ 1.414, ½ ¼ ¾, °C",
      "\x01\x02 control \x7F bytes",
      "numbers 3 33 333 3333 1314151 3.14159",
      "MixedCASE words With Capitals AND shouting",
      "'quotes' \"double\" `back` (parens) [brackets] {braces} <angles> <s> </s> <0x41>",
  };
  return texts;
}

class ByteLevelTokenizer : public ::testing::TestWithParam<int32_t> {};

TEST_P(ByteLevelTokenizer, RoundTripsAnyUtf8Text) {
  auto tokenizer = Tokenizer::Create(MakeByteLevelVocab(GetParam()));
  ASSERT_TRUE(tokenizer.ok()) << tokenizer.status().ToString();
  for (const std::string& text : RoundTripTexts()) {
    for (bool add_bos : {false, true}) {
      const std::vector<TokenId> ids = tokenizer->Encode(text, add_bos);
      for (TokenId id : ids) ASSERT_TRUE(id >= 0 && id < tokenizer->n_vocab());
      EXPECT_EQ(tokenizer->Decode(ids), text) << "n_vocab " << GetParam();
    }
  }
}

TEST_P(ByteLevelTokenizer, MatchesQuadraticReference) {
  const Vocab vocab = MakeByteLevelVocab(GetParam());
  auto tokenizer = Tokenizer::Create(vocab);
  ASSERT_TRUE(tokenizer.ok()) << tokenizer.status().ToString();
  for (const std::string& text : RoundTripTexts()) {
    EXPECT_EQ(tokenizer->Encode(text, false), ReferenceEncode(vocab, text)) << text;
  }
}

INSTANTIATE_TEST_SUITE_P(Sizes, ByteLevelTokenizer, ::testing::Values(260, 512, 4096, 32000));

TEST(ByteLevelTokenizer, LargeVocabularyMergesEnglishWords) {
  auto small = Tokenizer::Create(MakeByteLevelVocab(260));
  auto large = Tokenizer::Create(MakeByteLevelVocab(32000));
  ASSERT_TRUE(small.ok()) << small.status().ToString();
  ASSERT_TRUE(large.ok()) << large.status().ToString();
  const std::string text = RoundTripTexts()[3];
  const size_t n_small = small->Encode(text, false).size();
  const size_t n_large = large->Encode(text, false).size();
  EXPECT_EQ(n_small, text.size() + 1);  // one token per character, plus the dummy space
  EXPECT_LT(n_large * 3, text.size());
}

}  // namespace
}  // namespace sparkv
