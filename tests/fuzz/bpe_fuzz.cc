// Feeds arbitrary bytes to the byte-level BPE tokenizer over the vocabulary in tests/data/bpe/.
// The first byte picks the pre-tokenizer (gpt-2, llama-bpe, qwen2) and whether special tokens are
// parsed; the rest is the text. Checks: the pre-tokenizer's pieces are non-empty and cover the
// text in order, every id is in range, and without special tokens the text decodes back exactly.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <string_view>
#include <vector>

#include "model/bpe_pretokenizer.h"
#include "model/tokenizer.h"
#include "model/vocab.h"

namespace {

std::vector<std::string> ReadLines(const std::string& name) {
  const std::filesystem::path path = std::filesystem::path(__FILE__).parent_path().parent_path() / "data" / "bpe" / name;
  std::ifstream in(path, std::ios::binary);
  if (!in.good()) std::abort();  // the fixture is committed beside the tests
  std::vector<std::string> lines;
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  return lines;
}

sparkv::Tokenizer* MakeTokenizer(const char* pre) {
  sparkv::Vocab vocab;
  vocab.model = "gpt2";
  vocab.pre = pre;
  for (const std::string& line : ReadLines("tokens.tsv")) {
    const size_t tab = line.find('\t');
    vocab.types.push_back(static_cast<sparkv::TokenType>(std::stoi(line.substr(0, tab))));
    vocab.pieces.push_back(line.substr(tab + 1));
  }
  vocab.scores.assign(vocab.pieces.size(), 0.0f);
  vocab.merges = ReadLines("merges.txt");
  vocab.bos_id = -1;
  vocab.eos_id = 0;
  vocab.unk_id = -1;
  vocab.add_bos = false;
  vocab.add_space_prefix = false;
  return new sparkv::Tokenizer(sparkv::Tokenizer::Create(vocab).value());
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static sparkv::Tokenizer* const tokenizers[3] = {MakeTokenizer("gpt-2"), MakeTokenizer("llama-bpe"),
                                                   MakeTokenizer("qwen2")};
  static const sparkv::PreTokenizer pres[3] = {sparkv::PreTokenizer::kGpt2, sparkv::PreTokenizer::kLlama3,
                                               sparkv::PreTokenizer::kQwen2};
  if (size == 0) return 0;
  const int pre_index = data[0] % 3;
  const bool parse_special = (data[0] & 0x80) != 0;
  const std::string_view text(reinterpret_cast<const char*>(data + 1), size - 1);

  size_t covered = 0;
  for (std::string_view piece : sparkv::PreTokenize(pres[pre_index], text)) {
    if (piece.empty() || piece.data() != text.data() + covered) std::abort();
    covered += piece.size();
  }
  if (covered != text.size()) std::abort();

  const sparkv::Tokenizer& tokenizer = *tokenizers[pre_index];
  const std::vector<sparkv::TokenId> ids = tokenizer.Encode(text, /*add_special=*/true, parse_special);
  for (sparkv::TokenId id : ids) {
    if (id < 0 || id >= tokenizer.n_vocab()) std::abort();
  }
  if (!parse_special && text.find("<tool>") == std::string_view::npos && tokenizer.Decode(ids) != text) std::abort();
  return 0;
}
