// "local": compute every chunk on the device; the baseline with no network at all.
#include "plan/planner_util.h"

namespace sparkv::plan_internal {
namespace {

class LocalPlanner final : public Planner {
 public:
  std::string_view name() const override { return "local"; }
  std::string_view description() const override { return "compute every chunk on the device"; }
  Plan Solve(const PlanInput& in) const override {
    return MakePlan(name(), in, ComputeAllDecisions(in));
  }
};

}  // namespace

std::unique_ptr<Planner> MakeLocalPlanner() { return std::make_unique<LocalPlanner>(); }

}  // namespace sparkv::plan_internal
