// One device-side request: load a context's KV by the chosen strategy, prefill the query, sample
// the first token (the end of TTFT) and generate the rest.
#pragma once

#include <string>
#include <vector>

#include "engine/engine.h"
#include "engine/sampler.h"
#include "model/model.h"
#include "plan/cost_model.h"
#include "runtime/loader.h"
#include "sparkv/status.h"

namespace sparkv {

struct RunOptions {
  std::string server_url;                    // empty: no server, so only `local` runs
  std::string strategy = "hybrid";           // local, stream, hybrid, or any planner name
  std::vector<std::string> levels = {"f16"}; // codecs the plan may stream, best quality first; not empty
  int32_t chunk_tokens = 256;
  int32_t n_generate = 16;                   // tokens to generate, the first one included
  SamplerOptions sampling;
  double timeout_s = 60.0;                   // an HTTP request that receives no byte for this long fails
  double bandwidth_hint_mbit = 0.0;          // > 0 skips the bandwidth probe
  double race_ratio = 0.0;                   // re-planning strategies' race ratio; 0 = their own
};

struct RunReport {
  std::string strategy;        // as requested
  std::string planner;         // the planner that made the plan
  std::string server;
  int32_t n_context = 0;
  int32_t n_query = 0;
  int32_t n_chunks = 0;

  // TTFT and its parts, in seconds from the start of the request.
  double ttft_s = 0.0;
  double manifest_s = 0.0;      // fetching and checking the manifest
  double probe_s = 0.0;         // measuring the bandwidth before planning
  double plan_s = 0.0;          // solving the plan
  double load_s = 0.0;          // until every context chunk was resident
  double query_prefill_s = 0.0;
  double first_token_s = 0.0;   // sampling the first token

  double bandwidth_estimate_bps = 0.0;  // bytes per second the plan assumed
  double predicted_ttft_s = 0.0;        // the plan's own prediction
  uint64_t probe_bytes = 0;
  LoadReport load;
  std::vector<std::string> warnings;    // handled failures, e.g. a stream path that fell back

  std::vector<TokenId> tokens;  // generated ids, the first token first
  double decode_tokens_per_s = 0.0;
};

// Checks the options that depend on no model: chunk size, levels, strategy, server URL, sampling,
// timeout and bandwidth hint. RunRequest calls it too; callers may call it first to fail before
// loading a model.
Status CheckRunOptions(const RunOptions& options);

// Runs one request on `engine`, whose KV cache is cleared first and must hold context, query and
// generated tokens. `context` must start with BOS when the model expects one. Stream-path
// problems never fail the request: they are reported in `warnings` and the chunks are computed.
Result<RunReport> RunRequest(const Model& model, Engine& engine, const Profile& profile,
                             std::span<const TokenId> context, std::span<const TokenId> query,
                             const RunOptions& options);

// Returns one line naming the chunks the stream path delivered at a lossy level (quality rank > 0),
// grouped by codec, e.g. "chunks 3-7 were streamed at q8 (lossy)...". Returns "" when every
// streamed chunk was lossless.
std::string LossyStreamWarning(const LoadReport& load);

// Quality rank of a codec level for the planner's quality floor: 0 for lossless f16.
int CodecQualityRank(const std::string& codec);

}  // namespace sparkv
