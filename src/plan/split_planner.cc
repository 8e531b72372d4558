// "split": compute the pending chunks before a boundary k and stream those from k on, all at one
// codec; every k and codec is tried and the best predicted timeline kept. This is the first
// end-to-end version of the hybrid.
#include "plan/planner_util.h"

namespace sparkv::plan_internal {
namespace {

class SplitPlanner final : public Planner {
 public:
  std::string_view name() const override { return "split"; }
  std::string_view description() const override {
    return "compute a prefix, stream the suffix at one level; best boundary and level";
  }
  Plan Solve(const PlanInput& in) const override {
    const size_t n = in.chunks.size();
    Plan best = MakePlan(name(), in, ComputeAllDecisions(in));
    for (const std::string& codec : CandidateCodecs(in)) {
      // The suffix from k can stream only if every pending chunk in it offers the codec, so k
      // runs down from n while they do.
      std::vector<Decision> d = ComputeAllDecisions(in);
      for (size_t k = n; k-- > 0;) {
        if (!in.IsPending(k)) continue;
        const int level = AllowedLevelWithCodec(in, k, codec);
        if (level < 0) break;
        d[k] = {Decision::Path::kStream, level};
        Plan candidate = MakePlan(name(), in, d);
        if (TimelineBetter(candidate.predicted, best.predicted)) best = std::move(candidate);
      }
    }
    return best;
  }
};

}  // namespace

std::unique_ptr<Planner> MakeSplitPlanner() { return std::make_unique<SplitPlanner>(); }

}  // namespace sparkv::plan_internal
