// "cachegen": stream every chunk, choosing each chunk's level from the predicted bandwidth, after
// CacheGen (SIGCOMM 2024). CacheGen adapts its level so that loading meets a deadline; here the
// deadline is what computing everything locally would take (streaming that misses it has no
// point). Walking the chunks in order, each gets its best-quality allowed level such that, with
// every later chunk at its smallest level, the predicted TTFT still meets the deadline; when no
// level does, the smallest. A chunk with no allowed level is computed.
#include <algorithm>

#include "plan/planner_util.h"

namespace sparkv::plan_internal {
namespace {

class CacheGenPlanner final : public Planner {
 public:
  std::string_view name() const override { return "cachegen"; }
  std::string_view description() const override {
    return "stream every chunk, level per chunk from predicted bandwidth (CacheGen)";
  }

  Plan Solve(const PlanInput& in) const override {
    const double deadline = Simulate(in, ComputeAllDecisions(in)).ttft_s;

    // Start from the fastest all-stream plan, then raise quality chunk by chunk while it fits.
    std::vector<Decision> d = ComputeAllDecisions(in);
    for (size_t j = 0; j < d.size(); ++j) {
      if (!in.IsPending(j)) continue;
      const int smallest = SmallestAllowedLevel(in, j);
      if (smallest >= 0) d[j] = {Decision::Path::kStream, smallest};
    }
    for (size_t j = 0; j < d.size(); ++j) {
      if (d[j].path != Decision::Path::kStream) continue;
      const int smallest = d[j].level;
      for (int level : LevelsByQuality(in, j)) {
        if (level == smallest) break;  // nothing better fits; keep the smallest
        d[j].level = level;
        if (Simulate(in, d).ttft_s <= deadline) break;
        d[j].level = smallest;
      }
    }
    return MakePlan(name(), in, std::move(d));
  }

 private:
  // Allowed levels of chunk j, best quality first, then fewer bytes.
  static std::vector<int> LevelsByQuality(const PlanInput& in, size_t j) {
    const std::vector<LevelOption>& levels = in.chunks[j].levels;
    std::vector<int> order;
    for (size_t l = 0; l < levels.size(); ++l) {
      if (in.LevelAllowed(j, l)) order.push_back(static_cast<int>(l));
    }
    std::stable_sort(order.begin(), order.end(), [&levels](int x, int y) {
      const LevelOption& lx = levels[static_cast<size_t>(x)];
      const LevelOption& ly = levels[static_cast<size_t>(y)];
      if (lx.quality_rank != ly.quality_rank) return lx.quality_rank < ly.quality_rank;
      return lx.bytes < ly.bytes;
    });
    return order;
  }
};

}  // namespace

std::unique_ptr<Planner> MakeCacheGenPlanner() { return std::make_unique<CacheGenPlanner>(); }

}  // namespace sparkv::plan_internal
