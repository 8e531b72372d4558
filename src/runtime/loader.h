// The two-path loader makes every chunk of a context resident in the engine's KV cache. Streamed
// chunks are fetched, verified and decoded into cache rows on one thread while the calling thread
// prefills the others, and, for re-planning strategies, a third thread re-solves the plan. Which
// chunk goes where, and when, is the LoadController's decision (runtime/controller.h), the same
// code the simulator runs.
//
// Correctness never depends on the network. Prefill of a chunk needs every earlier chunk
// resident. When the stream path fails for a chunk (transfer error, timeout, bad checksum, wrong
// fingerprint or key, short body), the compute path computes it instead. So the cache always ends
// up with the KV a full local prefill would produce, bit-exact with the f16 codec on an f16 cache.
#pragma once

#include <cstdint>
#include <functional>
#include <span>
#include <string>
#include <vector>

#include "common/hash.h"
#include "engine/engine.h"
#include "kv/chunk_key.h"
#include "plan/plan.h"
#include "runtime/blob_source.h"
#include "runtime/controller.h"
#include "runtime/strategy.h"
#include "sparkv/status.h"

namespace sparkv {

// One chunk of the load. The fields after `key` serve the fixed-plan overload of Load only.
struct LoadChunk {
  ChunkRange range;
  Hash128 key;
  bool stream = false;
  std::string codec;   // stream only: the level to fetch
  uint64_t bytes = 0;  // stream only: blob size from the manifest
};

// Outcome of one chunk, with times in seconds since the load started.
struct ChunkOutcome {
  bool planned_stream = false;  // the first plan streamed it
  bool streamed = false;     // the chunk became resident through the stream path
  bool fell_back = false;    // a transfer or decode of it failed, so it was computed
  bool cancelled = false;    // its transfer was cancelled because computing it was faster
  bool prefill_abandoned = false;  // a prefill of it stopped between pieces for the stream path
  bool prefill_interrupted = false;  // its blob arrived during a prefill piece, which stopped between layers
  std::string codec;
  uint64_t bytes = 0;        // bytes received for this chunk (also for failed transfers)
  double transfer_start_s = 0.0;
  double transfer_end_s = 0.0;
  double decode_s = 0.0;     // stream only: CPU seconds of verify and decode
  int32_t decode_threads = 0;  // stream only: threads the decode could use (LoaderOptions)
  double compute_start_s = 0.0;  // computed chunks only
  double compute_end_s = 0.0;
  double resident_s = 0.0;   // rows marked resident
  std::string error;         // why the stream path failed, empty otherwise
};

struct LoadReport {
  std::vector<ChunkOutcome> chunks;  // [n_chunks]
  double all_resident_s = 0.0;
  uint64_t stream_bytes = 0;
  double stream_busy_s = 0.0;   // sum of transfer times
  double compute_busy_s = 0.0;  // sum of prefill times
  double decode_busy_s = 0.0;   // sum of blob verify and decode times
  int32_t n_streamed = 0;
  int32_t n_computed = 0;
  int32_t n_fallback = 0;
  std::string strategy;
  Plan initial_plan;        // the strategy's first plan
  double plan_s = 0.0;      // solving the first plan
  ControllerStats stats;    // re-plans, moves, cancellations
  double final_bytes_per_s = 0.0;    // the bandwidth predicted at the end
  double device_speed_factor = 1.0;  // measured / profiled compute time at the end
};

// Fetches from the server what the first plan needs (the manifest's levels, a bandwidth
// measurement) and returns the fresh plan input for the load's chunks with those levels. It runs
// on the stream path's thread before the first transfer, while the compute path prefills.
// An input without any level means the server cannot help; every chunk is then computed.
// `keep_going` returns false once the compute path has finished the load: pass it to the fetches
// as their progress function so that they stop.
using ConnectFunction = std::function<PlanInput(const ProgressFunction& keep_going)>;

struct LoaderOptions {
  // After a transport failure (refused, reset, timed out), the remaining streamed chunks go to the
  // compute path at once instead of each waiting for its own failure.
  bool abandon_stream_after_transport_error = true;
  // Threads a streamed chunk's decode may use while the compute path is idle (waiting for a
  // streamed chunk, or done). While it prefills, decoding stays on one thread so that it does
  // not take compute's cores. 0 = the engine's thread count (the session's).
  int decode_threads = 0;
};

class Loader {
 public:
  // `source` may be null when no chunk streams. The engine's KV cache must be empty over the
  // context's positions.
  Loader(Engine* engine, BlobSource* source, const Hash128& model_fingerprint, LoaderOptions options = {});

  // Loads `chunks` (contiguous from position 0) of `tokens` by `strategy`. `input` is the fresh
  // plan input for the same chunks (levels from the manifest, costs from the profile, predicted
  // bandwidth). Returns an error only when the compute path itself fails (a bug or a broken
  // model) or the input is inconsistent, never because of the network.
  Result<LoadReport> Load(std::span<const TokenId> tokens, std::span<const LoadChunk> chunks, PlanInput input,
                          const Strategy& strategy);

  // Loads as above, but the compute path starts at once while the stream path runs `connect`. The
  // strategy's first plan is solved when `connect` returns, from the state the compute path has
  // reached by then. `input` carries the costs and no levels.
  Result<LoadReport> Load(std::span<const TokenId> tokens, std::span<const LoadChunk> chunks, PlanInput input,
                          const Strategy& strategy, ConnectFunction connect);

  // Follows a fixed plan: the chunks with `stream` set are fetched at their codec, the rest
  // computed. Stream failures still fall back to compute.
  Result<LoadReport> Load(std::span<const TokenId> tokens, std::span<const LoadChunk> chunks);

 private:
  Engine* engine_;
  BlobSource* source_;
  Hash128 fingerprint_;
  LoaderOptions options_;
};

}  // namespace sparkv
