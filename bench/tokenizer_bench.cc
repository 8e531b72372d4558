// Tokenizer speed: building the byte-level vocabulary, building a Tokenizer, and encoding and
// decoding about 10k characters with the Llama 2 and the byte-level vocabularies.
#include <benchmark/benchmark.h>

#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>
#include <vector>

#include "gguf/gguf.h"
#include "model/tokenizer.h"
#include "model/vocab.h"

namespace sparkv {
namespace {

// Returns the shared data folder: $SPARKV_DATA, else `shared/data` beside this checkout.
std::string DataDir() {
  if (const char* from_env = std::getenv("SPARKV_DATA")) return from_env;
  std::string source = __FILE__;
  for (int level = 0; level < 3; ++level) source = source.substr(0, source.rfind('/'));
  return source + "/shared/data";
}

// Returns about 10k characters of English prose, code and a few non-ASCII words.
std::string SampleText() {
  const std::string paragraph =
      "Before the first output token the device must hold the KV cache of the whole context. "
      "It can compute each chunk locally or stream it from a server that precomputed it, and "
      "the planner picks per chunk.\n    for (int i = 0; i < n_tokens; ++i) sum += weights[i];\n"
      "Grüße aus Köln, naïve café, Привет мир, 日本語のテキスト, emoji 🚀🦙 ✅ 3.14159.\n";
  std::string text;
  while (text.size() < 10000) text += paragraph;
  return text;
}

const Tokenizer& Llama2Tokenizer() {
  static const Tokenizer* tokenizer = [] {
    auto file = gguf::File::Open(DataDir() + "/vocab/llama-spm.gguf");
    if (!file.ok()) {
      std::fprintf(stderr, "%s\n", file.status().ToString().c_str());
      std::abort();
    }
    auto vocab = ReadVocab(**file);
    auto created = vocab.ok() ? Tokenizer::Create(*vocab) : Result<Tokenizer>(vocab.status());
    if (!created.ok()) {
      std::fprintf(stderr, "%s\n", created.status().ToString().c_str());
      std::abort();
    }
    return new Tokenizer(std::move(created).value());
  }();
  return *tokenizer;
}

const Tokenizer& ByteLevelTokenizer() {
  static const Tokenizer* tokenizer =
      new Tokenizer(Tokenizer::Create(MakeByteLevelVocab(32000)).value());
  return *tokenizer;
}

void BM_MakeByteLevelVocab(benchmark::State& state) {
  for (auto _ : state) {
    Vocab vocab = MakeByteLevelVocab(static_cast<int32_t>(state.range(0)));
    benchmark::DoNotOptimize(vocab.pieces.data());
  }
}
BENCHMARK(BM_MakeByteLevelVocab)->Arg(32000)->Unit(benchmark::kMillisecond);

void BM_CreateTokenizer(benchmark::State& state) {
  const Vocab vocab = MakeByteLevelVocab(32000);
  for (auto _ : state) {
    auto tokenizer = Tokenizer::Create(vocab);
    benchmark::DoNotOptimize(tokenizer.ok());
  }
}
BENCHMARK(BM_CreateTokenizer)->Unit(benchmark::kMillisecond);

void RunEncode(benchmark::State& state, const Tokenizer& tokenizer) {
  const std::string text = SampleText();
  size_t n_tokens = 0;
  for (auto _ : state) {
    const std::vector<TokenId> ids = tokenizer.Encode(text, true);
    n_tokens = ids.size();
    benchmark::DoNotOptimize(ids.data());
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * text.size()));
  state.counters["n_bytes"] = static_cast<double>(text.size());
  state.counters["n_tokens"] = static_cast<double>(n_tokens);
}

void BM_EncodeLlama2(benchmark::State& state) { RunEncode(state, Llama2Tokenizer()); }
BENCHMARK(BM_EncodeLlama2)->Unit(benchmark::kMicrosecond);

void BM_EncodeByteLevel(benchmark::State& state) { RunEncode(state, ByteLevelTokenizer()); }
BENCHMARK(BM_EncodeByteLevel)->Unit(benchmark::kMicrosecond);

void BM_DecodeLlama2(benchmark::State& state) {
  const std::string text = SampleText();
  const std::vector<TokenId> ids = Llama2Tokenizer().Encode(text, true);
  for (auto _ : state) {
    const std::string decoded = Llama2Tokenizer().Decode(ids);
    benchmark::DoNotOptimize(decoded.data());
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * text.size()));
}
BENCHMARK(BM_DecodeLlama2)->Unit(benchmark::kMicrosecond);

}  // namespace
}  // namespace sparkv
