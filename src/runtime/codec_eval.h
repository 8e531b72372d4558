// Codec quality: how much each codec level changes the model's predictions after a context whose KV
// went through Encode and Decode. The reference is exact KV, from the same engine and KV cache type
// prefilling the context locally.
//
// The context's KV is cut into chunks as ingest cuts it, and each chunk is encoded and decoded on
// its own, so payload sizes and errors are those a device would see. Every comparison feeds the
// same tokens at positions [n_context, n_context + n_continuation) on top of the exact or the
// decoded context KV; those positions play the part of the query and the generated text.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "common/kv_slice.h"
#include "model/model.h"
#include "sparkv/status.h"

namespace sparkv {

struct CodecEvalOptions {
  // Codec names to evaluate. Default: empty = every codec in AllCodecs(), in id order.
  std::vector<std::string> levels;
  int32_t chunk_tokens = 64;      // tokens per encoded chunk, as `sparkv ingest --chunk-tokens`
  int32_t n_continuation = 200;   // tokens fed after the context; REQUIRES >= 1
  uint64_t seed = 0;  // seed of the temperature-1 continuation the perplexities are measured on
  int n_threads = 0;              // Default: 0 = every core
  KvElemType kv_type = KvElemType::kF16;
};

// The figures for one codec level. KL divergences are in nats.
struct CodecLevelQuality {
  std::string level;
  uint64_t payload_bytes = 0;     // sum of the encoded payloads of every chunk, headers excluded
  double bytes_per_token = 0.0;   // payload_bytes / n_context
  double size_vs_f16 = 0.0;       // payload_bytes / the same rows as raw f16 (K and V, all layers)
  // KL(exact || level) of the next-token distribution at each continuation position, teacher-forced
  // on the exact model's greedy continuation.
  double mean_kl = 0.0;
  double max_kl = 0.0;
  double top1_agreement = 0.0;    // fraction of those positions whose argmax matches exact, [0, 1]
  // Free-running greedy tokens after the shared first continuation token that equal the exact
  // model's, counted until the first difference; n_continuation when all match.
  int32_t identical_prefix = 0;
  double ppl_exact = 0.0;         // perplexity of the sampled continuation under exact KV
  double ppl_level = 0.0;         // the same under decoded KV
  double ppl_change_pct = 0.0;    // 100 * (ppl_level / ppl_exact - 1)
};

struct CodecEvalReport {
  int32_t n_context = 0;
  int32_t n_continuation = 0;
  int32_t chunk_tokens = 0;
  int32_t n_chunks = 0;
  KvElemType kv_type = KvElemType::kF16;
  double f16_bytes_per_token = 0.0;  // raw f16 K and V of one position over every layer
  // The exact model's greedy tokens: [n_continuation + 1]. Entry 0 follows the context. Entries
  // [0, n_continuation) are fed, and entry i + 1 is the argmax after feeding entry i.
  std::vector<TokenId> greedy_continuation;
  // Tokens sampled from the exact model at temperature 1 with `seed`, laid out the same way.
  std::vector<TokenId> sampled_continuation;
  std::vector<CodecLevelQuality> levels;  // in the order requested
};

// Evaluates each level on `context` (BOS first, as the engine takes it).
// REQUIRES: context not empty, context.size() + n_continuation <= the model's n_ctx_train, every
// level a known codec; otherwise InvalidArgument naming the value.
Result<CodecEvalReport> EvaluateCodecs(const Model& model, std::span<const TokenId> context,
                                       const CodecEvalOptions& options);

// A context of `n_tokens` tokens: the model's BOS followed by n_tokens - 1 tokens sampled at
// temperature 1 from the model with `seed`.
// REQUIRES: 1 <= n_tokens <= n_ctx_train.
Result<std::vector<TokenId>> SampleContext(const Model& model, int32_t n_tokens, uint64_t seed,
                                           int n_threads);

}  // namespace sparkv
