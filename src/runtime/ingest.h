// `sparkv ingest`: the server side of SparKV. Prefills a context with the same model the devices
// run, cuts its KV into chunks, encodes every chunk at every requested codec level and writes
// blobs and a manifest into a store.
#pragma once

#include <map>
#include <span>
#include <string>
#include <vector>

#include "engine/engine.h"
#include "kv/codec.h"
#include "model/model.h"
#include "sparkv/status.h"
#include "store/manifest.h"

namespace sparkv {

struct IngestOptions {
  int32_t chunk_tokens = 256;
  std::vector<std::string> codecs = {"f16", "q8"};  // at least one; each name once
};

struct IngestReport {
  Manifest manifest;
  double prefill_s = 0.0;
  double encode_s = 0.0;
  std::map<std::string, uint64_t> bytes_per_codec;  // total blob bytes per level
  // Total bytes the context takes as f16 blobs, whether or not f16 was ingested: the lossless
  // size every other level is meant to undercut.
  uint64_t f16_bytes = 0;
  // One line per level that came out larger than f16 (short chunks, where per-chunk headers and
  // tables outweigh the compression), naming the sizes and a larger --chunk-tokens.
  std::vector<std::string> warnings;
};

// Looks up the codecs that IngestOptions::codecs names. InvalidArgument for an unknown name (the
// message lists the known ones), a name given twice, or an empty list.
Result<std::vector<const Codec*>> FindIngestCodecs(std::span<const std::string> names);

// Prefills `tokens` on `engine` (its KV cache is cleared first) and writes the store under
// `store_root`. Writes are atomic; blobs already present from a context with the same prefix are
// kept, since equal chunk keys mean equal KV.
Result<IngestReport> IngestContext(const Model& model, Engine& engine, std::span<const TokenId> tokens,
                                   const IngestOptions& options, const std::string& store_root);

// Builds IngestReport::warnings: one line per level in `bytes_per_codec` (total blob bytes) above
// `f16_bytes`, for a context of `n_tokens` cut into chunks of `chunk_tokens`.
std::vector<std::string> LargerThanF16Warnings(const std::map<std::string, uint64_t>& bytes_per_codec,
                                               uint64_t f16_bytes, int32_t n_tokens, int32_t chunk_tokens);

}  // namespace sparkv
