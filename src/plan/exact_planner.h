// The exact planner (DESIGN.md 6): dynamic programming over chunks in index order that keeps only
// the Pareto-optimal states of the recurrence, so its plan is optimal under the cost model.
#pragma once

#include <cstddef>

#include "plan/plan.h"

namespace sparkv {

// The front can grow to tens of thousands of states on long contexts with several levels (every
// distinct sum of transfer times is a new trade-off), so it can be thinned. Both rules below drop
// a state only for a kept one that is no later on the network and at most some delta_j later on
// the CPU. A step of the recurrence moves its output by at most what it moved its input when the
// bandwidth is constant, so the TTFT found is then at most sum_j delta_j above the optimum;
// ExactStats reports that sum. With a varying bandwidth a delay can cost more than itself (a
// transfer pushed into an outage), and the sum is only indicative.
struct ExactOptions {
  // Drop states within epsilon_s of a kept one on the CPU (delta_j = epsilon_s). 0 = exact.
  double epsilon_s = 0.0;

  // Thin each front to about max_front states spaced evenly in c (delta_j = c range / max_front).
  // 0 = no limit, exact.
  size_t max_front = 0;

  // The tie-break pass keeps at most this many states per chunk; past it the pass gives up and
  // the plan keeps the optimal TTFT with a tie-break that is not guaranteed. 0 skips the pass.
  // This pass costs O(F^2) per chunk for a front of F states. The front reached 11k states on the
  // benchmark's 64 chunks with a looping trace, so the default cap bounds such solves and logs a
  // warning. Pass std::numeric_limits<size_t>::max() for an exact tie-break at any cost.
  size_t max_tie_states = 4096;
};

struct ExactStats {
  size_t max_front = 0;     // largest number of states kept after one chunk
  size_t total_states = 0;  // states kept, summed over chunks (8 bytes each until the end)
  size_t max_tie_front = 0;  // largest tie-break front
  bool tie_break_complete = false;  // false when the tie-break pass gave up or was skipped
  double ttft_error_bound_s = 0.0;  // sum_j delta_j (see ExactOptions); 0 when the plan is exact
};

// The plan minimizing TTFT, then the sum of quality ranks, then streamed bytes, over every
// per-chunk choice (compute, or stream at any allowed level). `stats` may be null.
// REQUIRES: ValidatePlanInput(input).ok().
Plan SolveExact(const PlanInput& input, const ExactOptions& options, ExactStats* stats);

}  // namespace sparkv
