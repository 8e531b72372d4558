// The exact planner (DESIGN.md 6): dynamic programming over chunks in index order that keeps only
// the Pareto-optimal states of the recurrence, so its plan is optimal under the cost model.
#pragma once

#include <cstddef>

#include "plan/plan.h"

namespace sparkv {

// The front can grow to tens of thousands of states on long contexts with several levels (every
// distinct sum of transfer times is a new trade-off), so it can be thinned. A thinned solve
// certifies its own error. Every state it drops carries a lower bound on the TTFT of any plan
// through it, so the optimum is at least the least such bound. ExactStats reports the gap
// between the plan found and that bound (0 when nothing was dropped: the plan is optimal).
struct ExactOptions {
  // Drop states within epsilon_s of a kept one on the CPU. 0 = exact.
  double epsilon_s = 0.0;

  // Thin each front to the max_front states with the lowest lower bounds (a beam). 0 = no limit.
  size_t max_front = 0;

  // Work budget in candidate states (successors made from a front state by one choice, about
  // 50 ns each at a constant rate). When set, a front larger than the budget left affords for
  // the chunks to come is thinned, to no fewer than the quick pass's front (2 to 16 states,
  // about an eighth of the budget spread over the chunks). Fronts that fit stay whole, so small
  // inputs are solved exactly and large ones in time proportional to the budget. 0 = no budget.
  size_t max_candidates = 0;

  // The tie-break pass keeps at most this many states per chunk; past it the pass gives up and
  // the plan keeps the optimal TTFT with a tie-break that is not guaranteed. 0 skips the pass.
  // This pass costs O(F^2) per chunk for a front of F states. The front reached 11k states on the
  // benchmark's 64 chunks with a looping trace, so the default cap bounds such solves and logs a
  // warning. Pass std::numeric_limits<size_t>::max() for an exact tie-break at any cost.
  size_t max_tie_states = 4096;
};

// The budget of the registered "exact" planner, the one strategies and re-plans use. Inputs whose
// fronts fit (64 alike chunks with 4 levels at a constant rate) are solved exactly. At 256 chunks
// the solve makes about 15k candidates in under a millisecond at a constant rate and lands
// within about 1% of the optimum on the benchmark's inputs (docs/planner.md). The hindsight
// optimum uses no budget.
inline constexpr size_t kDefaultExactBudget = size_t{1} << 14;

struct ExactStats {
  size_t max_front = 0;     // largest number of states kept after one chunk
  size_t total_states = 0;  // states kept, summed over chunks (8 bytes each until the end)
  size_t n_candidates = 0;  // candidate states made, all passes
  size_t max_tie_front = 0;  // largest tie-break front
  bool tie_break_complete = false;  // false when the tie-break pass gave up or was skipped
  // The plan's TTFT minus a proven lower bound on the optimum; 0 when no state was thinned away
  // or the certificate shows the plan optimal.
  double ttft_error_bound_s = 0.0;
};

// The plan minimizing TTFT, then the sum of quality ranks, then streamed bytes, over every
// per-chunk choice (compute, or stream at any allowed level), within ExactStats's error bound
// when `options` thins the fronts. `stats` may be null.
// REQUIRES: ValidatePlanInput(input).ok().
Plan SolveExact(const PlanInput& input, const ExactOptions& options, ExactStats* stats);

}  // namespace sparkv
