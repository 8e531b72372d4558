// "greedy": a dependency-aware greedy in the spirit of the SparKV paper. Walking the pending
// chunks in index order with the recurrence's state (a, c), each chunk takes the option that
// makes it resident earliest: streaming wins when its blob arrives (and decodes) before the
// compute path would have finished it. Ties go to better quality, so computing (lossless) wins a
// tie with streaming, then to the earlier network time, then to fewer bytes. It never looks ahead.
#include <algorithm>
#include <tuple>

#include "plan/planner_util.h"

namespace sparkv::plan_internal {
namespace {

class GreedyPlanner final : public Planner {
 public:
  std::string_view name() const override { return "greedy"; }
  std::string_view description() const override {
    return "per chunk in order, the path that makes it resident earliest";
  }

  Plan Solve(const PlanInput& in) const override {
    std::vector<Decision> d = ComputeAllDecisions(in);
    double a = InitialNetworkTime(in);
    double c = InitialCpuTime(in);
    for (size_t j = 0; j < d.size(); ++j) {
      const ChunkSpec& chunk = in.chunks[j];
      if (!in.IsPending(j)) {
        const ChunkProgress& p = in.progress[j];
        if (p.state == ChunkProgress::State::kStreaming) c = AfterDecode(in, c, p.arrival_s, p.decode_seconds);
        continue;
      }

      // Key of an option: (c', quality rank, a', bytes); compute is (c + t_c, 0, a, 0).
      auto best_key = std::make_tuple(c + in.compute.ChunkSeconds(chunk.begin, chunk.end), 0, a,
                                      uint64_t{0});
      int best_level = -1;
      for (size_t l = 0; l < chunk.levels.size(); ++l) {
        if (!in.LevelAllowed(j, l)) continue;
        const LevelOption& opt = chunk.levels[l];
        const double arrival = StreamArrival(in, a, opt.bytes);
        const auto key = std::make_tuple(AfterDecode(in, c, arrival, opt.decode_seconds),
                                         opt.quality_rank, arrival, opt.bytes);
        if (key < best_key) {
          best_key = key;
          best_level = static_cast<int>(l);
        }
      }
      if (best_level >= 0) d[j] = {Decision::Path::kStream, best_level};
      c = std::get<0>(best_key);
      a = std::get<2>(best_key);
    }
    return MakePlan(name(), in, std::move(d));
  }

 private:
  // The recurrence's CPU time after a streamed chunk arriving at `arrival` is decoded.
  static double AfterDecode(const PlanInput& in, double c, double arrival, double decode) {
    return in.decode_on_spare_core ? std::max(c, arrival + decode) : std::max(c, arrival) + decode;
  }
};

}  // namespace

std::unique_ptr<Planner> MakeGreedyPlanner() { return std::make_unique<GreedyPlanner>(); }

}  // namespace sparkv::plan_internal
