#include <mutex>

#include "plan/planner.h"
#include "plan/planner_util.h"

namespace sparkv {
namespace {

struct Registry {
  std::mutex mu;
  std::vector<std::unique_ptr<Planner>> planners;  // never shrinks: FindPlanner hands out pointers
};

Registry& GetRegistry() {
  static Registry* registry = [] {
    auto* r = new Registry;
    // The built-in strategies; a new one is a new *_planner.cc file plus one line here.
    for (auto make : {plan_internal::MakeLocalPlanner, plan_internal::MakeStreamPlanner,
                      plan_internal::MakeSplitPlanner, plan_internal::MakeCakePlanner,
                      plan_internal::MakeCacheGenPlanner, plan_internal::MakeGreedyPlanner,
                      plan_internal::MakeExactPlanner}) {
      r->planners.push_back(make());
    }
    return r;
  }();
  return *registry;
}

// REQUIRES: r.mu held.
const Planner* FindLocked(Registry& r, std::string_view name) {
  for (const auto& p : r.planners) {
    if (p->name() == name) return p.get();
  }
  return nullptr;
}

}  // namespace

const Planner* FindPlanner(std::string_view name) {
  Registry& r = GetRegistry();
  std::lock_guard<std::mutex> lock(r.mu);
  return FindLocked(r, name);
}

std::vector<std::string> PlannerNames() {
  Registry& r = GetRegistry();
  std::lock_guard<std::mutex> lock(r.mu);
  std::vector<std::string> names;
  for (const auto& p : r.planners) names.emplace_back(p->name());
  return names;
}

Status RegisterPlanner(std::unique_ptr<Planner> planner) {
  if (planner == nullptr || planner->name().empty()) {
    return InvalidArgumentError("RegisterPlanner: the planner is null or has an empty name");
  }
  Registry& r = GetRegistry();
  std::lock_guard<std::mutex> lock(r.mu);
  if (FindLocked(r, planner->name()) != nullptr) {
    return InvalidArgumentError("RegisterPlanner: a strategy named \"" +
                                std::string(planner->name()) + "\" exists; pick another name");
  }
  r.planners.push_back(std::move(planner));
  return Status::Ok();
}

Result<Plan> SolvePlan(std::string_view strategy, const PlanInput& input) {
  const Planner* planner = FindPlanner(strategy);
  if (planner == nullptr) {
    std::string known;
    for (const std::string& n : PlannerNames()) known += (known.empty() ? "" : ", ") + n;
    return NotFoundError("no planning strategy named \"" + std::string(strategy) +
                         "\"; known: " + known);
  }
  SPARKV_RETURN_IF_ERROR(ValidatePlanInput(input));
  return planner->Solve(input);
}

bool TimelineBetter(const Timeline& x, const Timeline& y) {
  if (x.ttft_s != y.ttft_s) return x.ttft_s < y.ttft_s;
  if (x.quality_rank_sum != y.quality_rank_sum) return x.quality_rank_sum < y.quality_rank_sum;
  return x.streamed_bytes < y.streamed_bytes;
}

}  // namespace sparkv
