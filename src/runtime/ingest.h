// `sparkv ingest`: the server side of SparKV. Prefills a context with the same model the devices
// run, cuts its KV into chunks, encodes every chunk at every requested codec level and writes
// blobs and a manifest into a store.
#pragma once

#include <span>
#include <string>
#include <vector>

#include "engine/engine.h"
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
};

// Prefills `tokens` on `engine` (its KV cache is cleared first) and writes the store under
// `store_root`. Writes are atomic; blobs already present from a context with the same prefix are
// kept, since equal chunk keys mean equal KV.
Result<IngestReport> IngestContext(const Model& model, Engine& engine, std::span<const TokenId> tokens,
                                   const IngestOptions& options, const std::string& store_root);

}  // namespace sparkv
