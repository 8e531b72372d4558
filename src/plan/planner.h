// Planning strategies behind one interface, found by name. Each built-in strategy lives in its own
// *_planner.cc file and is listed once in planner_registry.cc; code outside this module can add
// more at run time with RegisterPlanner().
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "plan/plan.h"
#include "sparkv/status.h"

namespace sparkv {

class Planner {
 public:
  virtual ~Planner() = default;

  // Stable, lowercase, used on the command line and in reports: "exact", "cake", ...
  virtual std::string_view name() const = 0;
  // One line for --help.
  virtual std::string_view description() const = 0;

  // Decides every pending chunk and predicts the timeline with Simulate(); committed chunks get
  // Decision::Path::kCommitted. Plan::strategy is name().
  // REQUIRES: ValidatePlanInput(input).ok(). Thread-safe (planners hold no mutable state).
  virtual Plan Solve(const PlanInput& input) const = 0;
};

// nullptr when no strategy has that name.
const Planner* FindPlanner(std::string_view name);

// Every registered name, built-in ones first in a fixed order.
std::vector<std::string> PlannerNames();

// Adds a strategy; fails when its name is taken or empty. The registry keeps it for the process's
// lifetime, so the pointer FindPlanner returns stays valid.
Status RegisterPlanner(std::unique_ptr<Planner> planner);

// Validates the input, finds the strategy and solves.
Result<Plan> SolvePlan(std::string_view strategy, const PlanInput& input);

// The order the exact planner minimizes: TTFT, then quality (lower quality_rank_sum), then fewer
// streamed bytes. True when `x` is strictly better than `y`.
bool TimelineBetter(const Timeline& x, const Timeline& y);

}  // namespace sparkv
