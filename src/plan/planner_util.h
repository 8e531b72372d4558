// Pieces shared by the built-in planners; not part of the module's interface.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "plan/plan.h"
#include "plan/planner.h"

namespace sparkv::plan_internal {

// kCommitted for chunks that are not pending, kCompute for the rest.
std::vector<Decision> ComputeAllDecisions(const PlanInput& in);

// Packs decisions with their predicted timeline.
Plan MakePlan(std::string_view strategy, const PlanInput& in, std::vector<Decision> decisions);

// The allowed level of chunk j with the fewest bytes (ties: better quality, then lower index);
// -1 when no level is allowed.
int SmallestAllowedLevel(const PlanInput& in, size_t j);

// The allowed level of chunk j encoded with `codec`; -1 when there is none.
int AllowedLevelWithCodec(const PlanInput& in, size_t j, std::string_view codec);

// Codecs a single-level strategy should try: input.level_codec when set, else every codec that
// some pending chunk may stream, in first-seen order.
std::vector<std::string> CandidateCodecs(const PlanInput& in);

// Factories of the built-in strategies, one per *_planner.cc file.
std::unique_ptr<Planner> MakeLocalPlanner();
std::unique_ptr<Planner> MakeStreamPlanner();
std::unique_ptr<Planner> MakeSplitPlanner();
std::unique_ptr<Planner> MakeCakePlanner();
std::unique_ptr<Planner> MakeCacheGenPlanner();
std::unique_ptr<Planner> MakeGreedyPlanner();
std::unique_ptr<Planner> MakeExactPlanner();

}  // namespace sparkv::plan_internal
