// A strategy is what `run`, `simulate` and `bench` select by name: a planner plus how the executor
// follows its plan (DESIGN.md 6). Static strategies follow their first plan; `cake` lets the
// boundary between the paths float; `sparkv-adaptive` re-plans as the load goes.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "sparkv/status.h"

namespace sparkv {

struct Strategy {
  std::string name;     // as on the command line and in reports
  std::string planner;  // the planner registry's name for the first plan (and re-plans)
  std::string description;
  // Re-solve the remaining chunks after every completion and when a prediction drifts.
  bool replan = false;
  // When the streamed chunks form a suffix, fetch them from the back while the compute path takes
  // chunks from the front, so the boundary lands wherever the paths meet.
  bool float_boundary = false;
  // The stream path keeps taking chunks from the back until the paths meet, whatever the first
  // plan chose (Cake's rule).
  bool claim_until_meet = false;
  // The compute path may take a chunk it waits for, cancelling its transfer, when computing it is
  // predicted to end sooner.
  bool cancel_transfers = false;
  // The compute path starts on the first chunks at once, while the stream path fetches the
  // manifest and measures the link. The first plan then starts from wherever compute has got to.
  // Off for strategies that stream every chunk.
  bool head_start = false;
  // An idle compute path races the stream path for the chunk it waits for when computing it is
  // predicted to take at most this many times as long as the stream path needs (re-planning
  // strategies). Above 1 it hedges against the link fading before the blob arrives: the prefill
  // costs energy, and stops as soon as the blob does. At 1 the compute path races only after the
  // link's recent predictions missed. Once three transfers in a row arrived within 10% of their
  // predicted time, the link counts as steady and the hedge stops until a prediction misses.
  double race_ratio = 1.0;
  // A margin against a fading link (re-planning strategies). Every solve also plans for a link
  // `fade_margin` slower than predicted (0.3: 30% slower) and takes that plan instead when, at the
  // predicted rate, its TTFT is at most `fade_slack` (a fraction) above the optimum's. A plan that
  // needs the whole predicted rate turns any fade into a late first token. 0 turns this off.
  double fade_margin = 0.0;
  double fade_slack = 0.0;
  // An idle stream path fetches the last pending chunk even when the plan computes it (re-planning
  // strategies), as Cake's stream path does. It hedges against a link better than predicted and
  // costs radio energy when the compute path gets there first.
  bool hedge_fetch = false;
};

// Built-in strategies, and any planner added with RegisterPlanner() as a static strategy of the
// same name. "hybrid" is the default and means "sparkv-adaptive".
Result<Strategy> FindStrategy(std::string_view name);

// Returns `s` with race_ratio set to `ratio` when `ratio` > 0 and `s` re-plans; other strategies
// never race, and 0 keeps the strategy's own ratio.
Strategy WithRaceRatio(Strategy s, double ratio);

// The built-in names, in a fixed order, then registered planners that are not among them.
std::vector<std::string> StrategyNames();

}  // namespace sparkv
