// What a planner reads and writes (DESIGN.md 6): per-chunk options on both paths, the decisions,
// and the timeline the cost model predicts for them. Simulate() is the one implementation of the
// recurrence; every planner, baseline and report predicts through it.
#pragma once

#include <cstdint>
#include <limits>
#include <span>
#include <string>
#include <vector>

#include "common/hash.h"
#include "plan/cost_model.h"
#include "sparkv/status.h"

namespace sparkv {

// One way to stream a chunk: its blob at one codec level.
struct LevelOption {
  std::string codec;
  uint64_t bytes = 0;           // blob size on the wire
  double decode_seconds = 0.0;  // device CPU time to turn the blob into cache rows
  int quality_rank = 0;         // 0 = best (lossless); larger is lossier
  Hash128 digest{};             // XXH3-128 of the blob, from the manifest; zero when unknown
};

// A chunk of the context, tokens [begin, end).
struct ChunkSpec {
  int32_t index = 0;
  int32_t begin = 0;
  int32_t end = 0;
  std::vector<LevelOption> levels;  // [n_levels], any order; may be empty (compute only)
};

// Where a chunk stands when a plan is (re-)solved. Only kPending chunks are planned; the others
// are already committed to a path and only shape the timeline of the rest.
struct ChunkProgress {
  enum class State : uint8_t {
    kPending = 0,
    kResident = 1,   // in the cache already
    kComputing = 2,  // prefill under way; cpu_busy_until_s covers it
    kStreaming = 3,  // transfer under way; arrives at arrival_s, then needs decode_seconds
  };
  State state = State::kPending;
  double arrival_s = 0.0;       // kStreaming only: predicted arrival of the whole blob
  double decode_seconds = 0.0;  // kStreaming only: decode time still ahead once it arrives
};

struct PlanInput {
  std::vector<ChunkSpec> chunks;  // [n_chunks], in index order, ranges contiguous from chunks[0].begin
  ComputeCost compute;
  BandwidthModel bandwidth;
  double request_overhead_s = 0.0;  // added to every transfer (request latency, headers)
  bool decode_on_spare_core = false;
  double query_seconds = 0.0;  // query prefill + one decode step, added to the TTFT

  // Re-planning state. A fresh plan has start_time_s = 0, both paths idle and every chunk
  // pending; the executor re-solves with "now", the busy-until times and per-chunk progress.
  double start_time_s = 0.0;
  double network_busy_until_s = 0.0;    // transfers already issued end then
  double cpu_busy_until_s = 0.0;        // CPU work already started ends then
  std::vector<ChunkProgress> progress;  // [n_chunks], or empty when every chunk is pending

  // Quality floor: only levels with quality_rank <= max_quality_rank may be streamed.
  int max_quality_rank = std::numeric_limits<int>::max();

  // The codec single-level strategies (stream, split, cake) must use; empty lets them choose.
  std::string level_codec;

  bool IsPending(size_t chunk) const {
    return progress.empty() || progress[chunk].state == ChunkProgress::State::kPending;
  }
  bool LevelAllowed(size_t chunk, size_t level) const {
    return chunks[chunk].levels[level].quality_rank <= max_quality_rank;
  }
};

// Checks sizes, ranges, costs and progress; planners and Simulate require a valid input.
Status ValidatePlanInput(const PlanInput& input);

struct Decision {
  // kCommitted marks a chunk that was not pending: the plan leaves it where it is.
  enum class Path : uint8_t { kCompute = 0, kStream = 1, kCommitted = 2 };
  Path path = Path::kCompute;
  int level = -1;  // index into ChunkSpec::levels when path == kStream, else -1

  bool operator==(const Decision&) const = default;
};

// Checks that decisions has one entry per chunk, committed exactly where the chunk is not
// pending, and only allowed levels.
Status ValidateDecisions(const PlanInput& input, std::span<const Decision> decisions);

struct ChunkTimeline {
  Decision::Path path = Decision::Path::kCompute;
  int level = -1;
  double start_s = 0.0;  // on its path: transfer start (stream) or prefill start (compute)
  double end_s = 0.0;    // transfer arrival (stream) or prefill end (compute)
  double decode_start_s = 0.0;  // stream only
  double decode_end_s = 0.0;    // stream only
  double resident_s = 0.0;      // the chunk is in the cache, and so is every earlier one
};

struct Timeline {
  std::vector<ChunkTimeline> chunks;  // [n_chunks]
  double network_finish_s = 0.0;      // a: the network is done with every streamed chunk
  double compute_finish_s = 0.0;      // c: the CPU is done with prefill and shared-core decode
  double all_resident_s = 0.0;        // max(a, c)
  double ttft_s = 0.0;                // all_resident_s + query_seconds
  uint64_t streamed_bytes = 0;        // over pending chunks planned to stream
  int64_t quality_rank_sum = 0;       // sum of quality_rank over streamed chunks; lower is better
  int32_t n_streamed = 0;
  int32_t n_computed = 0;
};

struct Plan {
  std::string strategy;
  std::vector<Decision> decisions;  // [n_chunks]
  Timeline predicted;
};

// Seconds from the request for a transfer to end when it is issued at start_s: bandwidth
// integrated from start_s + request_overhead_s (the overhead delays the first byte).
double StreamArrival(const PlanInput& input, double start_s, uint64_t bytes);

// The timeline of `decisions` under the cost model, by the recurrence over chunks in index order
// with state (a, c) = (network free, CPU free), starting from
// (max(start, network_busy_until), max(start, cpu_busy_until)):
//   stream j at L, shared CPU:  a' = arrival(a, bytes), c' = max(c, a') + t_d
//   stream j at L, spare core:  a' = arrival(a, bytes), c' = max(c, a' + t_d)
//   compute j:                  a' = a,                 c' = c + t_c(j)
//   committed kStreaming j:     as a stream step with the given arrival, a unchanged
//   committed other:            unchanged
// REQUIRES: ValidatePlanInput(input) and ValidateDecisions(input, decisions) are ok (checked;
// a violation aborts with a message, since it is a bug in the caller).
Timeline Simulate(const PlanInput& input, std::span<const Decision> decisions);

// The initial (a, c) of the recurrence.
double InitialNetworkTime(const PlanInput& input);
double InitialCpuTime(const PlanInput& input);

}  // namespace sparkv
