// "stream": stream every chunk, at input.level_codec when the chunk offers it within the quality
// floor, else at its smallest allowed level. A chunk with no allowed level is computed, since
// there is no other way to get it.
#include "plan/planner_util.h"

namespace sparkv::plan_internal {
namespace {

class StreamPlanner final : public Planner {
 public:
  std::string_view name() const override { return "stream"; }
  std::string_view description() const override {
    return "stream every chunk at one level (--level, default the smallest allowed)";
  }
  Plan Solve(const PlanInput& in) const override {
    std::vector<Decision> d = ComputeAllDecisions(in);
    for (size_t j = 0; j < d.size(); ++j) {
      if (!in.IsPending(j)) continue;
      int level = in.level_codec.empty() ? -1 : AllowedLevelWithCodec(in, j, in.level_codec);
      if (level < 0) level = SmallestAllowedLevel(in, j);
      if (level >= 0) d[j] = {Decision::Path::kStream, level};
    }
    return MakePlan(name(), in, std::move(d));
  }
};

}  // namespace

std::unique_ptr<Planner> MakeStreamPlanner() { return std::make_unique<StreamPlanner>(); }

}  // namespace sparkv::plan_internal
