// "cake": the bidirectional baseline after Cake (ICML 2025). The device computes pending chunks
// from the front while the network fetches them from the back, one codec for all; where the two
// meet is the boundary. Cake's race ignores decode time; the returned timeline is Simulate()'s,
// like every other strategy's, so the comparison is on equal terms. Each candidate codec is raced
// and the best predicted timeline kept.
#include "plan/planner_util.h"

namespace sparkv::plan_internal {
namespace {

class CakePlanner final : public Planner {
 public:
  std::string_view name() const override { return "cake"; }
  std::string_view description() const override {
    return "compute from the front, stream from the back until they meet (Cake), one level";
  }

  Plan Solve(const PlanInput& in) const override {
    Plan best = MakePlan(name(), in, ComputeAllDecisions(in));
    for (const std::string& codec : CandidateCodecs(in)) {
      Plan candidate = MakePlan(name(), in, Race(in, codec));
      if (TimelineBetter(candidate.predicted, best.predicted)) best = std::move(candidate);
    }
    return best;
  }

 private:
  static std::vector<Decision> Race(const PlanInput& in, const std::string& codec) {
    std::vector<Decision> d = ComputeAllDecisions(in);
    double c = InitialCpuTime(in);
    double a = InitialNetworkTime(in);

    // [front, back) are the chunks neither path has taken yet. Each round, the path whose next
    // chunk would finish first takes it; a chunk without the codec stops the stream path.
    size_t front = 0;
    size_t back = in.chunks.size();
    bool stream_open = true;
    while (front < back) {
      if (!in.IsPending(front)) {
        ++front;
        continue;
      }
      if (!in.IsPending(back - 1)) {
        --back;
        continue;
      }
      const double compute_end =
          c + in.compute.ChunkSeconds(in.chunks[front].begin, in.chunks[front].end);
      const int level = stream_open ? AllowedLevelWithCodec(in, back - 1, codec) : -1;
      if (level < 0) stream_open = false;
      const double arrival =
          stream_open
              ? StreamArrival(in, a, in.chunks[back - 1].levels[static_cast<size_t>(level)].bytes)
              : compute_end;
      if (!stream_open || compute_end <= arrival) {
        c = compute_end;
        ++front;
      } else {
        a = arrival;
        --back;
        d[back] = {Decision::Path::kStream, level};
      }
    }
    return d;
  }
};

}  // namespace

std::unique_ptr<Planner> MakeCakePlanner() { return std::make_unique<CakePlanner>(); }

}  // namespace sparkv::plan_internal
