#include "runtime/session.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <limits>

#include "common/clock.h"
#include "common/format.h"
#include "common/log.h"
#include "kv/blob.h"
#include "kv/chunk_key.h"
#include "plan/planner.h"
#include "runtime/blob_source.h"
#include "runtime/simulator.h"
#include "runtime/strategy.h"
#include "store/manifest.h"

namespace sparkv {
namespace {

using Clock = std::chrono::steady_clock;

// Bytes fetched to estimate bandwidth before planning: large enough to span many TCP segments and
// pacing intervals, small enough to cost little of the stream path's time.
constexpr uint64_t kProbeBytes = 128 * 1024;
// Blobs the probe tries before it gives up on a server whose blobs are missing or damaged.
constexpr int kMaxProbeBlobs = 3;

// Fetches and checks the manifest against what this device computed. Chunks whose key differs are
// not offered to the stream path.
Result<Manifest> FetchCheckedManifest(BlobSource& source, const Model& model, const std::vector<ChunkRange>& chunks,
                                      const std::vector<Hash128>& keys, int32_t chunk_tokens,
                                      const ProgressFunction& on_progress) {
  SPARKV_ASSIGN_OR_RETURN(FetchedBytes fetched, source.FetchManifest(keys.back(), on_progress));
  SPARKV_ASSIGN_OR_RETURN(Manifest manifest, ParseManifest(fetched.bytes));
  if (manifest.model_fingerprint != model.fingerprint()) {
    return MismatchError("the server's manifest is for model " + manifest.model_fingerprint.Hex() +
                         ", this device runs " + model.fingerprint().Hex() +
                         " (ingest the context with the same GGUF)");
  }
  if (manifest.chunk_tokens != chunk_tokens || manifest.chunks.size() != chunks.size()) {
    return MismatchError("the server's manifest has " + std::to_string(manifest.chunks.size()) + " chunks of " +
                         std::to_string(manifest.chunk_tokens) + " tokens, this request has " +
                         std::to_string(chunks.size()) + " of " + std::to_string(chunk_tokens) +
                         " (pass the same --chunk-tokens as the ingest)");
  }
  const HParams& hp = model.hparams();
  for (size_t j = 0; j < chunks.size(); ++j) {
    const ManifestChunk& entry = manifest.chunks[j];
    if (entry.key != keys[j] || entry.begin != chunks[j].begin || entry.end != chunks[j].end) {
      return MismatchError("manifest chunk " + std::to_string(j) + " has key " + entry.key.Hex() + " over [" +
                           std::to_string(entry.begin) + ", " + std::to_string(entry.end) + "), expected " +
                           keys[j].Hex() + " over [" + std::to_string(chunks[j].begin) + ", " +
                           std::to_string(chunks[j].end) + ")");
    }
    // A blob larger than its codec can produce for this model's KV rows would hold the link for
    // nothing, and the plan would rest on that size.
    const KvShape shape{hp.n_layer, hp.n_head_kv, hp.head_dim, entry.end - entry.begin};
    for (const auto& [name, level] : entry.levels) {
      const Codec* codec = FindCodec(name);
      if (codec == nullptr) continue;  // a level this build cannot decode is never planned
      const uint64_t bound = kBlobHeaderBytes + codec->MaxPayloadBytes(shape);
      if (level.bytes > bound) {
        return MismatchError("manifest chunk " + std::to_string(j) + " lists its " + name + " blob at " +
                             std::to_string(level.bytes) + " bytes, more than the " + std::to_string(bound) +
                             " that " + std::to_string(shape.n_tokens) +
                             " tokens of this model can take (ingest the context again)");
      }
    }
  }
  return manifest;
}

std::string JoinNames(const std::vector<std::string>& names) {
  std::string joined;
  for (const std::string& name : names) joined += (joined.empty() ? "" : ",") + name;
  return joined;
}

std::string NoAllowedLevelWarning(const Manifest& manifest, const std::vector<std::string>& levels) {
  std::vector<std::string> stored;
  for (const ManifestChunk& chunk : manifest.chunks) {
    for (const auto& [codec, level] : chunk.levels) {
      if (std::find(stored.begin(), stored.end(), codec) == stored.end()) stored.push_back(codec);
    }
  }
  if (stored.empty()) return "the server's manifest lists no blob at any level; computing every chunk";
  // The hint names only levels `run --levels` accepts: a newer server may store codecs this build
  // cannot decode.
  std::vector<std::string> decodable;
  for (const std::string& codec : stored) {
    if (FindCodec(codec) != nullptr) decodable.push_back(codec);
  }
  const std::string start = "the server has levels " + JoinNames(stored) + " for this context, none of --levels " +
                            JoinNames(levels) + "; computing every chunk";
  if (decodable.empty()) {
    return start + " (this build cannot decode " + (stored.size() == 1 ? "that level" : "any of them") +
           "; ingest the context again with --codecs " + JoinNames(levels) + ", or update this build)";
  }
  return start + " (pass --levels " + JoinNames(decodable) + ", or ingest with --codecs " + JoinNames(levels) + ")";
}

// "0-2, 5, 7-8" for the sorted indices {0, 1, 2, 5, 7, 8}.
std::string FormatIndexRanges(const std::vector<int32_t>& indices) {
  std::string text;
  for (size_t i = 0; i < indices.size();) {
    size_t last = i;
    while (last + 1 < indices.size() && indices[last + 1] == indices[last] + 1) ++last;
    text += (text.empty() ? "" : ", ") + std::to_string(indices[i]);
    if (last > i) text += "-" + std::to_string(indices[last]);
    i = last + 1;
  }
  return text;
}

}  // namespace

std::string LossyStreamWarning(const LoadReport& load) {
  // Codecs in the order they first appear, each with the chunks it carried.
  std::vector<std::pair<std::string, std::vector<int32_t>>> lossy;
  for (size_t j = 0; j < load.chunks.size(); ++j) {
    const ChunkOutcome& chunk = load.chunks[j];
    if (!chunk.streamed || CodecQualityRank(chunk.codec) == 0) continue;
    auto entry = std::find_if(lossy.begin(), lossy.end(), [&](const auto& e) { return e.first == chunk.codec; });
    if (entry == lossy.end()) entry = lossy.insert(lossy.end(), {chunk.codec, {}});
    entry->second.push_back(static_cast<int32_t>(j));
  }
  if (lossy.empty()) return "";
  std::string text;
  for (size_t i = 0; i < lossy.size(); ++i) {
    const auto& [codec, indices] = lossy[i];
    const bool one = indices.size() == 1;
    text += i > 0 ? ", " : "";
    text += (one ? "chunk " : "chunks ") + FormatIndexRanges(indices);
    if (i == 0) text += one ? " was streamed" : " were streamed";
    text += " at " + codec;
  }
  return text + " (lossy); output may differ from a full local prefill; pass --levels f16 for lossless";
}

int CodecQualityRank(const std::string& codec) {
  const Codec* found = FindCodec(codec);
  // A level this build does not know is treated as the lossiest; the loader rejects it anyway.
  return found != nullptr ? found->quality_rank() : std::numeric_limits<int>::max() / 2;
}

Status CheckRunOptions(const RunOptions& options) {
  if (options.chunk_tokens <= 0 || options.chunk_tokens > kMaxChunkTokens) {
    return InvalidArgumentError("chunk size " + std::to_string(options.chunk_tokens) + " is outside [1, " +
                                std::to_string(kMaxChunkTokens) + "]");
  }
  if (options.levels.empty()) {
    return InvalidArgumentError("the list of codec levels to stream is empty; pass --levels f16 (lossless) or a "
                                "comma-separated list such as f16,q8");
  }
  for (size_t i = 0; i < options.levels.size(); ++i) {
    const std::string& codec = options.levels[i];
    if (std::find(options.levels.begin(), options.levels.begin() + i, codec) != options.levels.begin() + i) {
      return InvalidArgumentError("codec level '" + codec + "' is listed twice in --levels; list each level once");
    }
    if (FindCodec(codec) == nullptr) {
      return InvalidArgumentError("unknown codec level '" + codec + "'; known: " + CodecNames());
    }
  }
  if (!(options.bandwidth_hint_mbit >= 0.0) || !std::isfinite(options.bandwidth_hint_mbit)) {
    return InvalidArgumentError("bandwidth hint " + FormatNumber(options.bandwidth_hint_mbit) +
                                " Mbit/s must be finite and >= 0 (0 measures it)");
  }
  if (!std::isfinite(options.sampling.temperature) || options.sampling.temperature < 0.0f ||
      !(options.sampling.top_p > 0.0f && options.sampling.top_p <= 1.0f)) {
    return InvalidArgumentError("sampling temperature must be finite and >= 0 and top-p in (0, 1]");
  }
  if (!(options.timeout_s > 0.0) || !std::isfinite(options.timeout_s)) {
    return InvalidArgumentError("HTTP timeout " + std::to_string(options.timeout_s) +
                                " s must be positive and finite (--timeout)");
  }
  if (Result<Strategy> strategy = FindStrategy(options.strategy); !strategy.ok()) return strategy.status();
  if (!options.server_url.empty()) SPARKV_RETURN_IF_ERROR(CheckServerUrl(options.server_url));
  return Status::Ok();
}

Result<RunReport> RunRequest(const Model& model, Engine& engine, const Profile& profile,
                             std::span<const TokenId> context, std::span<const TokenId> query,
                             const RunOptions& options) {
  const HParams& hp = model.hparams();
  if (context.empty() || query.empty()) {
    return InvalidArgumentError("a request needs at least one context token and one query token");
  }
  for (std::span<const TokenId> part : {context, query}) {
    for (size_t i = 0; i < part.size(); ++i) {
      if (part[i] < 0 || part[i] >= hp.n_vocab) {
        return InvalidArgumentError("token " + std::to_string(part[i]) + " at index " + std::to_string(i) +
                                    " is outside the model's vocabulary [0, " + std::to_string(hp.n_vocab) + ")");
      }
    }
  }
  const int64_t needed = static_cast<int64_t>(context.size() + query.size()) + options.n_generate;
  if (needed > engine.kv_cache().n_positions()) {
    return InvalidArgumentError("context, query and generated tokens need " + std::to_string(needed) +
                                " KV positions, the engine has " + std::to_string(engine.kv_cache().n_positions()));
  }
  SPARKV_RETURN_IF_ERROR(CheckRunOptions(options));
  SPARKV_ASSIGN_OR_RETURN(Strategy found, FindStrategy(options.strategy));
  const Strategy strategy = WithRaceRatio(std::move(found), options.race_ratio);

  RunReport report;
  if (needed > hp.n_ctx_train) {
    report.warnings.push_back("context, query and generated tokens need " + std::to_string(needed) +
                              " positions, past the model's trained context of " + std::to_string(hp.n_ctx_train) +
                              "; output quality past that is not what the model was trained for");
    SPARKV_LOG_WARN("%s", report.warnings.back().c_str());
  }
  report.strategy = options.strategy;
  report.planner = strategy.name;
  report.server = options.server_url;
  report.n_context = static_cast<int32_t>(context.size());
  report.n_query = static_cast<int32_t>(query.size());
  engine.kv_cache().Clear();

  // The request starts here: everything below counts toward TTFT.
  const Clock::time_point start = Clock::now();
  const std::vector<ChunkRange> chunks = SplitIntoChunks(report.n_context, options.chunk_tokens);
  const std::vector<Hash128> keys = ChunkKeys(RootKey(model.fingerprint(), options.chunk_tokens), context, chunks);
  report.n_chunks = static_cast<int32_t>(chunks.size());

  std::unique_ptr<BlobSource> source;
  const bool wants_network = options.strategy != "local";
  if (wants_network && options.server_url.empty()) {
    report.warnings.push_back("no --server given: every chunk is computed locally");
  } else if (wants_network) {
    HttpSourceOptions source_options;
    // A request fails when it stops moving, not when it is slow. A large blob on a slow link may
    // take longer than the timeout and still be the right choice, and the adaptive controller
    // cancels a transfer that computing would beat.
    source_options.timeout_s = 0.0;
    source_options.stall_timeout_s = options.timeout_s;
    source = MakeHttpSource(options.server_url, source_options);
  }

  // The compute-only input: costs from the profile, no level.
  Manifest local_only;
  for (const ChunkRange& chunk : chunks) local_only.chunks.push_back({chunk.index, chunk.begin, chunk.end, {}, {}});
  PlanInput local_input = MakePlanInput(profile, local_only, {}, report.n_query, CodecQualityRank);

  // What the stream path needs before its first plan: the manifest (which levels exist for each
  // chunk, and their sizes) and the bandwidth (a hint, or a short probe of a blob the plan is
  // likely to stream). Returns an input without levels when the server cannot help.
  bool stream_usable = false;
  const auto connect = [&](const ProgressFunction& keep_going) -> PlanInput {
    Result<Manifest> fetched = FetchCheckedManifest(*source, model, chunks, keys, options.chunk_tokens, keep_going);
    report.manifest_s = SecondsSince(start);
    if (!fetched.ok()) {
      if (fetched.status().code() == ErrorCode::kCancelled) {
        // Every chunk is resident already: not a failure, but a slow or silent server shows here.
        SPARKV_LOG_INFO("the manifest from %s had not arrived when the local prefill finished (%.3f s)",
                        options.server_url.c_str(), report.manifest_s);
        return local_input;
      }
      std::string hint;
      if (fetched.status().code() == ErrorCode::kNotFound) {
        hint = " (the key covers the model, the tokens and the chunk size: was this context ingested with the same"
               " GGUF and --chunk-tokens " + std::to_string(options.chunk_tokens) +
               ", and is --server the store's root, without a path the server lacks?)";
      }
      report.warnings.push_back("manifest " + keys.back().Hex() + " from " + options.server_url +
                                " unusable, computing every chunk: " + fetched.status().ToString() + hint);
      SPARKV_LOG_WARN("%s", report.warnings.back().c_str());
      return local_input;
    }
    PlanInput input = MakePlanInput(profile, *fetched, options.levels, report.n_query, CodecQualityRank);
    // A store without any allowed level leaves nothing to stream, so warn instead of computing quietly.
    if (std::all_of(input.chunks.begin(), input.chunks.end(),
                    [](const ChunkSpec& spec) { return spec.levels.empty(); })) {
      report.warnings.push_back(NoAllowedLevelWarning(*fetched, options.levels));
      SPARKV_LOG_WARN("%s", report.warnings.back().c_str());
      return local_input;
    }
    double bandwidth = options.bandwidth_hint_mbit * 1e6 / 8.0;
    double overhead = 0.0;
    if (bandwidth <= 0.0) {
      // The probe reads the start of the last blobs the plan may stream. A blob missing or damaged
      // on the server fails only its own chunk later, so the probe moves on to the next one. A
      // server that cannot be reached ends it.
      const Clock::time_point probe_start = Clock::now();
      Result<FetchedBytes> probe = UnavailableError("no chunk has a level to probe");
      int n_tried = 0;
      for (size_t j = input.chunks.size(); j-- > 0 && n_tried < kMaxProbeBlobs;) {
        if (input.chunks[j].levels.empty()) continue;
        const LevelOption& level = input.chunks[j].levels.front();
        const uint64_t probe_end = std::min<uint64_t>(kProbeBytes, level.bytes);
        probe = source->FetchBlob(keys[j], level.codec, probe_end, probe_end, keep_going);
        ++n_tried;
        if (probe.ok() || probe.status().code() == ErrorCode::kCancelled || IsTransportError(probe.status())) break;
        SPARKV_LOG_WARN("bandwidth probe of chunk %zu failed, trying an earlier chunk: %s", j,
                        probe.status().ToString().c_str());
      }
      report.probe_s = SecondsSince(probe_start);
      if (!probe.ok() && probe.status().code() == ErrorCode::kCancelled) return local_input;
      if (!probe.ok() || probe->seconds <= probe->first_byte_seconds) {
        const std::string reason = probe.ok() ? "the probe returned too fast to time" : probe.status().ToString();
        report.warnings.push_back("bandwidth probe failed (" + std::to_string(n_tried) +
                                  (n_tried == 1 ? " blob" : " blobs") + " tried), computing every chunk: " + reason);
        SPARKV_LOG_WARN("%s", report.warnings.back().c_str());
        return local_input;
      }
      report.probe_bytes = probe->bytes.size();
      overhead = probe->first_byte_seconds;
      bandwidth = static_cast<double>(probe->bytes.size()) / (probe->seconds - probe->first_byte_seconds);
    }
    report.bandwidth_estimate_bps = bandwidth;
    input.bandwidth = BandwidthModel::Constant(bandwidth);
    input.request_overhead_s = overhead;
    if (strategy.name == "stream") {
      for (size_t j = 0; j < chunks.size(); ++j) {
        if (input.chunks[j].levels.empty()) {
          report.warnings.push_back("chunk " + std::to_string(j) + " has no allowed level on the server; computing it");
        }
      }
    }
    stream_usable = true;
    return input;
  };

  std::vector<LoadChunk> load_chunks(chunks.size());
  for (size_t j = 0; j < chunks.size(); ++j) {
    load_chunks[j].range = chunks[j];
    load_chunks[j].key = keys[j];
  }
  if (source != nullptr && strategy.head_start) {
    // The compute path starts on the first chunks at once. The first plan that may stream is
    // solved when the stream path has the manifest and the bandwidth.
    Loader loader(&engine, source.get(), model.fingerprint());
    SPARKV_ASSIGN_OR_RETURN(report.load, loader.Load(context, load_chunks, local_input, strategy, connect));
    report.predicted_ttft_s = report.load.initial_plan.predicted.ttft_s;
  } else {
    // Strategies that stream everything wait for the manifest: computing meanwhile would not be
    // the strategy any more.
    PlanInput input = source != nullptr ? connect(ProgressFunction()) : local_input;
    const double connected_s = SecondsSince(start);
    SPARKV_ASSIGN_OR_RETURN(const Strategy local, FindStrategy("local"));
    const Strategy& followed = stream_usable ? strategy : local;
    Loader loader(&engine, stream_usable ? source.get() : nullptr, model.fingerprint());
    SPARKV_ASSIGN_OR_RETURN(report.load, loader.Load(context, load_chunks, std::move(input), followed));
    report.predicted_ttft_s = report.load.initial_plan.predicted.ttft_s + connected_s;
  }
  report.load_s = SecondsSince(start);
  report.plan_s = report.load.plan_s;
  SPARKV_LOG_INFO("plan %s: %d of %zu chunks streamed first, predicted TTFT %.3f s at %.2f Mbit/s; %d re-plans, %d "
                  "moves, %d cancellations, %d races",
                  report.planner.c_str(), report.load.initial_plan.predicted.n_streamed, chunks.size(),
                  report.predicted_ttft_s, report.bandwidth_estimate_bps * 8 / 1e6, report.load.stats.n_replans, report.load.stats.n_moved,
                  report.load.stats.n_cancelled, report.load.stats.n_raced);
  for (size_t j = 0; j < report.load.chunks.size(); ++j) {
    const ChunkOutcome& outcome = report.load.chunks[j];
    if (outcome.fell_back) {
      report.warnings.push_back("chunk " + std::to_string(j) + " [" + std::to_string(chunks[j].begin) + ", " +
                                std::to_string(chunks[j].end) + "): stream path fell back to compute: " +
                                outcome.error);
    }
  }
  if (std::string lossy = LossyStreamWarning(report.load); !lossy.empty()) {
    report.warnings.push_back(std::move(lossy));
    SPARKV_LOG_WARN("%s", report.warnings.back().c_str());
  }

  // Query prefill and the first token end the TTFT.
  std::vector<float> logits;
  const Clock::time_point query_start = Clock::now();
  SPARKV_RETURN_IF_ERROR(engine.Prefill(query, report.n_context, &logits));
  report.query_prefill_s = SecondsSince(query_start);
  Sampler sampler(options.sampling);
  const Clock::time_point sample_start = Clock::now();
  TokenId token = sampler.Sample(logits);
  report.first_token_s = SecondsSince(sample_start);
  report.ttft_s = SecondsSince(start);
  report.tokens.push_back(token);

  // Generation after the first token is outside TTFT.
  const Clock::time_point decode_start = Clock::now();
  Position position = report.n_context + report.n_query;
  for (int32_t i = 1; i < options.n_generate && !model.vocab().EndsGeneration(token); ++i) {
    SPARKV_RETURN_IF_ERROR(engine.Decode(token, position++, &logits));
    token = sampler.Sample(logits);
    report.tokens.push_back(token);
  }
  const double decode_seconds = SecondsSince(decode_start);
  if (report.tokens.size() > 1 && decode_seconds > 0) {
    report.decode_tokens_per_s = static_cast<double>(report.tokens.size() - 1) / decode_seconds;
  }
  return report;
}

}  // namespace sparkv
