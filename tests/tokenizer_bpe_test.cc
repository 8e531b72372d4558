// Byte-level BPE tokenizer: pre-tokenizer splits, Unicode classes and whole encodings compared
// with vectors that tools/gen_bpe_vectors.py computes with the `regex` module and a Python BPE
// over a vocabulary it trains (tests/data/bpe/), plus round trips and the errors of Create.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "gguf/gguf.h"
#include "model/bpe_pretokenizer.h"
#include "model/tokenizer.h"
#include "model/unicode.h"
#include "model/vocab.h"
#include "test_support.h"

namespace sparkv {
namespace {

std::string FixturePath(const std::string& name) {
  return (std::filesystem::path(__FILE__).parent_path() / "data" / "bpe" / name).string();
}

std::vector<std::string> ReadLines(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  EXPECT_TRUE(in.good()) << "cannot open " << path << "; run tools/gen_bpe_vectors.py";
  std::vector<std::string> lines;
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  return lines;
}

std::vector<std::string> SplitOn(const std::string& text, char separator) {
  std::vector<std::string> fields;
  size_t begin = 0;
  while (true) {
    const size_t end = text.find(separator, begin);
    fields.push_back(text.substr(begin, end == std::string::npos ? std::string::npos : end - begin));
    if (end == std::string::npos) return fields;
    begin = end + 1;
  }
}

std::string FromHex(const std::string& hex) {
  std::string bytes;
  for (size_t i = 0; i + 1 < hex.size(); i += 2) {
    bytes.push_back(static_cast<char>(std::stoi(hex.substr(i, 2), nullptr, 16)));
  }
  return bytes;
}

std::string Hex(std::string_view bytes) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string hex;
  for (char c : bytes) {
    hex.push_back(kDigits[static_cast<uint8_t>(c) >> 4]);
    hex.push_back(kDigits[static_cast<uint8_t>(c) & 15]);
  }
  return hex;
}

// The generated vocabulary: <|endoftext|> (id 0), the 256 byte characters, merged pieces, two
// whole words no merge reaches, then <|im_start|>, <|im_end|>, <|begin_of_text|>, <|eot_id|>
// (control) and <tool> (user-defined).
Vocab FixtureVocab(const std::string& pre) {
  Vocab vocab;
  vocab.model = "gpt2";
  vocab.pre = pre;
  for (const std::string& line : ReadLines(FixturePath("tokens.tsv"))) {
    const size_t tab = line.find('\t');
    vocab.types.push_back(static_cast<TokenType>(std::stoi(line.substr(0, tab))));
    vocab.pieces.push_back(line.substr(tab + 1));
  }
  vocab.scores.assign(vocab.pieces.size(), 0.0f);
  vocab.merges = ReadLines(FixturePath("merges.txt"));
  vocab.bos_id = -1;
  vocab.eos_id = 0;
  vocab.unk_id = -1;
  vocab.add_bos = false;
  vocab.add_space_prefix = false;
  return vocab;
}

TokenId IdOf(const Vocab& vocab, const std::string& piece) {
  for (TokenId id = 0; id < vocab.size(); ++id) {
    if (vocab.pieces[id] == piece) return id;
  }
  return -1;
}

Tokenizer MakeTokenizer(const Vocab& vocab) {
  Result<Tokenizer> tokenizer = Tokenizer::Create(vocab);
  EXPECT_TRUE(tokenizer.ok()) << tokenizer.status().ToString();
  return std::move(tokenizer).value();
}

TEST(UnicodeClasses, MatchTheRegexModule) {
  const std::vector<std::string> lines = ReadLines(FixturePath("unicode_classes.tsv"));
  ASSERT_GT(lines.size(), 10000u);
  int checked = 0;
  for (const std::string& line : lines) {
    if (line.starts_with("#")) continue;
    const std::vector<std::string> fields = SplitOn(line, '\t');
    ASSERT_EQ(fields.size(), 2u) << line;
    const uint32_t code_point = static_cast<uint32_t>(std::stoul(fields[0], nullptr, 16));
    EXPECT_EQ(static_cast<int>(ClassOf(code_point)), std::stoi(fields[1])) << "U+" << fields[0];
    ++checked;
  }
  EXPECT_GT(checked, 10000);
  EXPECT_STREQ(UnicodeTableVersion(), "14.0.0");
}

TEST(DecodeUtf8, RejectsOverlongSurrogatesAndTruncatedSequences) {
  EXPECT_TRUE(DecodeUtf8("\xE2\x82\xAC", 0).valid);
  EXPECT_EQ(DecodeUtf8("\xE2\x82\xAC", 0).code_point, 0x20ACu);
  EXPECT_EQ(DecodeUtf8("\xF0\x9F\x99\x82", 0).code_point, 0x1F642u);
  for (std::string_view bad : {"\xC0\xAF", "\xE0\x80\xAF", "\xED\xA0\x80", "\xF4\x90\x80\x80", "\xE4\xB8", "\x80",
                               "\xFF"}) {
    const Utf8Char c = DecodeUtf8(bad, 0);
    EXPECT_FALSE(c.valid) << Hex(bad);
    EXPECT_EQ(c.n_bytes, 1) << Hex(bad);
  }
}

TEST(PreTokenize, MatchesTheRegexModuleOnEveryVector) {
  const std::vector<std::string> lines = ReadLines(FixturePath("split_vectors.tsv"));
  ASSERT_GT(lines.size(), 900u);
  for (const std::string& line : lines) {
    const std::vector<std::string> fields = SplitOn(line, '\t');
    ASSERT_EQ(fields.size(), 3u) << line;
    Result<PreTokenizer> pre = PreTokenizerFromName(fields[0]);
    ASSERT_TRUE(pre.ok()) << pre.status().ToString();
    const std::string text = FromHex(fields[1]);
    std::vector<std::string> expected;
    if (!fields[2].empty()) {
      for (const std::string& piece : SplitOn(fields[2], ',')) expected.push_back(piece);
    }
    std::vector<std::string> actual;
    for (std::string_view piece : PreTokenize(*pre, text)) actual.push_back(Hex(piece));
    EXPECT_EQ(actual, expected) << fields[0] << " on hex " << fields[1];
  }
}

TEST(PreTokenize, SplitsDigitsByModel) {
  auto pieces = [](PreTokenizer pre, std::string_view text) {
    std::vector<std::string> out;
    for (std::string_view piece : PreTokenize(pre, text)) out.emplace_back(piece);
    return out;
  };
  using Pieces = std::vector<std::string>;
  EXPECT_EQ(pieces(PreTokenizer::kGpt2, "a 12345"), (Pieces{"a", " 12345"}));
  EXPECT_EQ(pieces(PreTokenizer::kLlama3, "a 12345"), (Pieces{"a", " ", "123", "45"}));
  EXPECT_EQ(pieces(PreTokenizer::kQwen2, "a 123"), (Pieces{"a", " ", "1", "2", "3"}));
  EXPECT_EQ(pieces(PreTokenizer::kGpt2, "IT'S"), (Pieces{"IT", "'", "S"}));
  EXPECT_EQ(pieces(PreTokenizer::kLlama3, "IT'S"), (Pieces{"IT", "'S"}));
}

TEST(PreTokenizerFromName, NamesTheBadValueAndTheSupportedOnes) {
  EXPECT_EQ(*PreTokenizerFromName(""), PreTokenizer::kGpt2);
  EXPECT_EQ(*PreTokenizerFromName("llama3"), PreTokenizer::kLlama3);
  const Result<PreTokenizer> bad = PreTokenizerFromName("deepseek-llm");
  ASSERT_FALSE(bad.ok());
  const std::string message = bad.status().ToString();
  EXPECT_NE(message.find("'deepseek-llm'"), std::string::npos) << message;
  EXPECT_NE(message.find("llama-bpe"), std::string::npos) << message;
  EXPECT_NE(message.find("qwen2"), std::string::npos) << message;
}

TEST(BpeTokenizer, MatchesThePythonReferenceOnEveryVector) {
  const std::vector<std::string> lines = ReadLines(FixturePath("encode_vectors.tsv"));
  ASSERT_GT(lines.size(), 200u);
  std::string loaded_pre;
  std::optional<Tokenizer> tokenizer;
  int with_special = 0;
  for (const std::string& line : lines) {
    const std::vector<std::string> fields = SplitOn(line, '\t');
    ASSERT_EQ(fields.size(), 4u) << line;
    if (!tokenizer || loaded_pre != fields[0]) {
      tokenizer = MakeTokenizer(FixtureVocab(fields[0]));
      loaded_pre = fields[0];
    }
    const bool parse_special = fields[1] == "1";
    const std::string text = FromHex(fields[2]);
    std::vector<TokenId> expected;
    std::istringstream numbers(fields[3]);
    for (TokenId id; numbers >> id;) expected.push_back(id);
    EXPECT_EQ(tokenizer->Encode(text, /*add_special=*/false, parse_special), expected)
        << fields[0] << " parse_special=" << parse_special << " text '" << text << "'";
    with_special += parse_special;
  }
  EXPECT_GT(with_special, 50);
}

TEST(BpeTokenizer, RoundTripsEveryVectorText) {
  for (const char* pre : {"gpt-2", "llama-bpe", "qwen2"}) {
    const Tokenizer tokenizer = MakeTokenizer(FixtureVocab(pre));
    for (const std::string& line : ReadLines(FixturePath("split_vectors.tsv"))) {
      const std::vector<std::string> fields = SplitOn(line, '\t');
      const std::string text = FromHex(fields[1]);
      if (text.find("<tool>") != std::string::npos) continue;  // user-defined, always a token
      const std::vector<TokenId> ids = tokenizer.Encode(text, /*add_special=*/true);
      EXPECT_EQ(tokenizer.Decode(ids), text) << pre << " hex " << fields[1];
    }
  }
}

TEST(BpeTokenizer, TakesAWholeWordTokenOnlyForLlama3) {
  const Vocab vocab = FixtureVocab("llama-bpe");
  const TokenId quokka = IdOf(vocab, "\xC4\xA0quokka");  // "Ġquokka"
  ASSERT_GE(quokka, 0);
  EXPECT_EQ(MakeTokenizer(vocab).Encode(" quokka", false), std::vector<TokenId>{quokka});
  for (const char* pre : {"gpt-2", "qwen2"}) {
    const std::vector<TokenId> ids = MakeTokenizer(FixtureVocab(pre)).Encode(" quokka", false);
    EXPECT_GT(ids.size(), 1u) << pre;
  }
}

TEST(BpeTokenizer, SplitsOutSpecialTokens) {
  const Vocab vocab = FixtureVocab("qwen2");
  const Tokenizer tokenizer = MakeTokenizer(vocab);
  const TokenId im_start = IdOf(vocab, "<|im_start|>");
  const TokenId tool = IdOf(vocab, "<tool>");
  ASSERT_GE(im_start, 0);
  ASSERT_GE(tool, 0);
  const std::vector<TokenId> parsed = tokenizer.Encode("<|im_start|>user", false, /*parse_special=*/true);
  ASSERT_FALSE(parsed.empty());
  EXPECT_EQ(parsed.front(), im_start);
  const std::vector<TokenId> plain = tokenizer.Encode("<|im_start|>user", false, /*parse_special=*/false);
  EXPECT_EQ(std::count(plain.begin(), plain.end(), im_start), 0);
  EXPECT_EQ(tokenizer.Decode(plain), "<|im_start|>user");
  const std::vector<TokenId> with_tool = tokenizer.Encode("a<tool>", false, /*parse_special=*/false);
  ASSERT_FALSE(with_tool.empty());
  EXPECT_EQ(with_tool.back(), tool);
  EXPECT_EQ(tokenizer.DecodeToken(tool), "<tool>");
  EXPECT_EQ(tokenizer.DecodeToken(im_start), "");
}

TEST(BpeTokenizer, HonoursAddBosAndAddEos) {
  Vocab vocab = FixtureVocab("llama-bpe");
  vocab.bos_id = IdOf(vocab, "<|begin_of_text|>");
  vocab.eos_id = IdOf(vocab, "<|eot_id|>");
  const std::vector<TokenId> body = MakeTokenizer(vocab).Encode("hi", false);
  ASSERT_FALSE(body.empty());
  EXPECT_EQ(MakeTokenizer(vocab).Encode("hi", true), body);  // neither key set

  vocab.add_bos = true;
  std::vector<TokenId> expected = {vocab.bos_id};
  expected.insert(expected.end(), body.begin(), body.end());
  EXPECT_EQ(MakeTokenizer(vocab).Encode("hi", true), expected);
  EXPECT_EQ(MakeTokenizer(vocab).Encode("hi", false), body);

  vocab.add_eos = true;
  expected.push_back(vocab.eos_id);
  EXPECT_EQ(MakeTokenizer(vocab).Encode("hi", true), expected);
  EXPECT_EQ(MakeTokenizer(vocab).Encode("", true), (std::vector<TokenId>{vocab.bos_id, vocab.eos_id}));
}

TEST(BpeTokenizer, SurvivesAGgufRoundTrip) {
  Vocab original = FixtureVocab("qwen2");
  original.chat_template = "{{ '<|im_start|>' }}";
  original.add_eos = true;
  gguf::Writer writer;
  WriteVocab(original, &writer);
  testing::TempDir dir;
  const std::string path = dir.File("bpe.gguf");
  ASSERT_TRUE(writer.WriteFile(path).ok());
  auto file = gguf::File::Open(path);
  ASSERT_TRUE(file.ok()) << file.status().ToString();
  Result<Vocab> copy = ReadVocab(**file);
  ASSERT_TRUE(copy.ok()) << copy.status().ToString();
  EXPECT_EQ(copy->model, "gpt2");
  EXPECT_EQ(copy->pre, "qwen2");
  EXPECT_EQ(copy->merges, original.merges);
  EXPECT_EQ(copy->pieces, original.pieces);
  EXPECT_EQ(copy->chat_template, original.chat_template);
  EXPECT_TRUE(copy->add_eos);
  EXPECT_FALSE(copy->add_bos);
  const std::string text = "It's 2026: caf\xC3\xA9 \xE6\x9D\xB1\xE4\xBA\xAC!";
  EXPECT_EQ(MakeTokenizer(*copy).Encode(text, false), MakeTokenizer(original).Encode(text, false));
}

TEST(BpeTokenizer, CreateRejectsUnknownPreTokenizer) {
  const Result<Tokenizer> tokenizer = Tokenizer::Create(FixtureVocab("falcon"));
  ASSERT_FALSE(tokenizer.ok());
  EXPECT_NE(tokenizer.status().ToString().find("'falcon'"), std::string::npos) << tokenizer.status().ToString();
}

TEST(BpeTokenizer, CreateRejectsAMalformedMerge) {
  Vocab vocab = FixtureVocab("gpt-2");
  vocab.merges[5] = "nospace";
  const Result<Tokenizer> tokenizer = Tokenizer::Create(vocab);
  ASSERT_FALSE(tokenizer.ok());
  EXPECT_NE(tokenizer.status().ToString().find("merge 5 reads 'nospace'"), std::string::npos)
      << tokenizer.status().ToString();
}

TEST(BpeTokenizer, CreateRejectsAMissingByteWithoutUnknownToken) {
  Vocab vocab = FixtureVocab("gpt-2");
  const TokenId a = IdOf(vocab, "a");
  ASSERT_GE(a, 0);
  vocab.pieces[a] = "\xC4\xA0\xC4\xA0\xC4\xA0unused";
  const Result<Tokenizer> tokenizer = Tokenizer::Create(vocab);
  ASSERT_FALSE(tokenizer.ok());
  EXPECT_NE(tokenizer.status().ToString().find("byte 0x61"), std::string::npos) << tokenizer.status().ToString();

  vocab.unk_id = 0;
  const Tokenizer with_unk = MakeTokenizer(vocab);
  const std::vector<TokenId> ids = with_unk.Encode("a", false);
  EXPECT_EQ(ids, std::vector<TokenId>{0});
}

}  // namespace
}  // namespace sparkv
