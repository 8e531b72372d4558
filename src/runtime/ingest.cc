#include "runtime/ingest.h"

#include <algorithm>
#include <chrono>
#include <cstdio>

#include "common/clock.h"
#include "common/log.h"
#include "kv/blob.h"
#include "kv/chunk_key.h"
#include "kv/format.h"
#include "store/store.h"

namespace sparkv {
namespace {

using Clock = std::chrono::steady_clock;

std::string MiB(uint64_t n_bytes) {
  char text[32];
  std::snprintf(text, sizeof text, "%.2f MiB", static_cast<double>(n_bytes) / 1048576.0);
  return text;
}

}  // namespace

std::vector<std::string> LargerThanF16Warnings(const std::map<std::string, uint64_t>& bytes_per_codec,
                                               uint64_t f16_bytes, int32_t n_tokens, int32_t chunk_tokens) {
  std::vector<std::string> warnings;
  for (const auto& [codec, n_bytes] : bytes_per_codec) {
    if (codec == "f16" || n_bytes <= f16_bytes) continue;
    char per_token[96];
    std::snprintf(per_token, sizeof per_token, "%.1f bytes per token against %.1f",
                  static_cast<double>(n_bytes) / n_tokens, static_cast<double>(f16_bytes) / n_tokens);
    warnings.push_back("level " + codec + " takes " + MiB(n_bytes) + ", more than lossless f16 at " + MiB(f16_bytes) +
                       " (" + per_token + "): at --chunk-tokens " + std::to_string(chunk_tokens) +
                       ", its per-chunk header and tables outweigh the compression; ingest with a larger "
                       "--chunk-tokens (the default is " + std::to_string(kDefaultChunkTokens) + ")");
  }
  return warnings;
}

Result<std::vector<const Codec*>> FindIngestCodecs(std::span<const std::string> names) {
  std::vector<const Codec*> codecs;
  for (const std::string& name : names) {
    const Codec* codec = FindCodec(name);
    if (codec == nullptr) {
      return InvalidArgumentError("--codecs: unknown codec '" + name + "'; known codecs: " + CodecNames());
    }
    // A repeated codec would be encoded and written twice and counted twice in the report.
    if (std::find(codecs.begin(), codecs.end(), codec) != codecs.end()) {
      return InvalidArgumentError("--codecs lists '" + name + "' more than once; list each codec once");
    }
    codecs.push_back(codec);
  }
  if (codecs.empty()) return InvalidArgumentError("--codecs lists no codec; pass e.g. --codecs f16,q8");
  return codecs;
}

Result<IngestReport> IngestContext(const Model& model, Engine& engine, std::span<const TokenId> tokens,
                                   const IngestOptions& options, const std::string& store_root) {
  if (tokens.empty()) return InvalidArgumentError("the context to ingest has no tokens");
  if (static_cast<int64_t>(tokens.size()) > engine.kv_cache().n_positions()) {
    return InvalidArgumentError("the context has " + std::to_string(tokens.size()) +
                                " tokens but the engine's KV cache holds " +
                                std::to_string(engine.kv_cache().n_positions()) + " positions");
  }
  if (options.chunk_tokens <= 0 || options.chunk_tokens > kMaxChunkTokens) {
    return InvalidArgumentError("--chunk-tokens " + std::to_string(options.chunk_tokens) + " is outside [1, " +
                                std::to_string(kMaxChunkTokens) + "]");
  }
  const Codec* f16 = FindCodec("f16");
  if (f16 == nullptr) return InternalError("the f16 codec is not registered");
  SPARKV_ASSIGN_OR_RETURN(const std::vector<const Codec*> codecs, FindIngestCodecs(options.codecs));

  SPARKV_ASSIGN_OR_RETURN(Store store, Store::Open(store_root));
  const std::vector<ChunkRange> chunks = SplitIntoChunks(static_cast<int32_t>(tokens.size()), options.chunk_tokens);
  const std::vector<Hash128> keys = ChunkKeys(RootKey(model.fingerprint(), options.chunk_tokens), tokens, chunks);

  IngestReport report;
  Manifest& manifest = report.manifest;
  manifest.format_version = kFormatVersion;
  manifest.model_fingerprint = model.fingerprint();
  manifest.model_name = model.hparams().name;
  manifest.chunk_tokens = options.chunk_tokens;
  manifest.n_tokens = static_cast<int32_t>(tokens.size());
  manifest.context_key = keys.back();

  engine.kv_cache().Clear();
  for (size_t j = 0; j < chunks.size(); ++j) {
    const ChunkRange& chunk = chunks[j];
    const Clock::time_point prefill_start = Clock::now();
    SPARKV_RETURN_IF_ERROR(engine.Prefill(tokens.subspan(chunk.begin, chunk.n_tokens()), chunk.begin, nullptr));
    report.prefill_s += SecondsSince(prefill_start);

    ManifestChunk entry;
    entry.index = chunk.index;
    entry.begin = chunk.begin;
    entry.end = chunk.end;
    entry.key = keys[j];
    const Clock::time_point encode_start = Clock::now();
    const KvSlice slice = engine.kv_cache().Slice(chunk.begin, chunk.end);
    report.f16_bytes += kBlobHeaderBytes + f16->MaxPayloadBytes(ShapeOf(slice));
    const BlobIdentity identity{model.fingerprint(), keys[j], chunk.begin, chunk.end};
    for (const Codec* codec : codecs) {
      SPARKV_ASSIGN_OR_RETURN(std::vector<uint8_t> blob, EncodeBlob(*codec, identity, slice));
      SPARKV_ASSIGN_OR_RETURN(LevelEntry level, store.WriteBlob(keys[j], codec->name(), blob));
      report.bytes_per_codec[std::string(codec->name())] += level.bytes;
      entry.levels[std::string(codec->name())] = level;
    }
    report.encode_s += SecondsSince(encode_start);
    manifest.chunks.push_back(std::move(entry));
    SPARKV_LOG_DEBUG("ingested chunk %d [%d, %d) key %s", chunk.index, chunk.begin, chunk.end, keys[j].Hex().c_str());
  }

  SPARKV_RETURN_IF_ERROR(store.WriteManifest(manifest));
  report.warnings =
      LargerThanF16Warnings(report.bytes_per_codec, report.f16_bytes, manifest.n_tokens, options.chunk_tokens);
  const int32_t n_ctx_train = model.hparams().n_ctx_train;
  if (n_ctx_train > 0 && manifest.n_tokens > n_ctx_train) {
    report.warnings.push_back("the context has " + std::to_string(manifest.n_tokens) +
                              " tokens, past the model's trained context of " + std::to_string(n_ctx_train) +
                              "; the KV of the positions after it is not what the model was trained for, so "
                              "shorten the context or use a model trained on longer ones");
  }
  SPARKV_LOG_INFO("ingested %zu tokens in %zu chunks as context %s (prefill %.2f s, encode %.2f s)", tokens.size(),
                  chunks.size(), manifest.context_key.Hex().c_str(), report.prefill_s, report.encode_s);
  return report;
}

}  // namespace sparkv
