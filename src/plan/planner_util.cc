#include "plan/planner_util.h"

#include <algorithm>

namespace sparkv::plan_internal {

std::vector<Decision> ComputeAllDecisions(const PlanInput& in) {
  std::vector<Decision> d(in.chunks.size());
  for (size_t j = 0; j < d.size(); ++j) {
    if (!in.IsPending(j)) d[j].path = Decision::Path::kCommitted;
  }
  return d;
}

Plan MakePlan(std::string_view strategy, const PlanInput& in, std::vector<Decision> decisions) {
  Plan p;
  p.strategy = std::string(strategy);
  p.predicted = Simulate(in, decisions);
  p.decisions = std::move(decisions);
  return p;
}

int SmallestAllowedLevel(const PlanInput& in, size_t j) {
  int best = -1;
  const std::vector<LevelOption>& levels = in.chunks[j].levels;
  for (size_t l = 0; l < levels.size(); ++l) {
    if (!in.LevelAllowed(j, l)) continue;
    if (best < 0) {
      best = static_cast<int>(l);
      continue;
    }
    const LevelOption& b = levels[static_cast<size_t>(best)];
    if (levels[l].bytes < b.bytes ||
        (levels[l].bytes == b.bytes && levels[l].quality_rank < b.quality_rank)) {
      best = static_cast<int>(l);
    }
  }
  return best;
}

int AllowedLevelWithCodec(const PlanInput& in, size_t j, std::string_view codec) {
  const std::vector<LevelOption>& levels = in.chunks[j].levels;
  for (size_t l = 0; l < levels.size(); ++l) {
    if (levels[l].codec == codec && in.LevelAllowed(j, l)) return static_cast<int>(l);
  }
  return -1;
}

std::vector<std::string> CandidateCodecs(const PlanInput& in) {
  if (!in.level_codec.empty()) return {in.level_codec};
  std::vector<std::string> codecs;
  for (size_t j = 0; j < in.chunks.size(); ++j) {
    if (!in.IsPending(j)) continue;
    for (size_t l = 0; l < in.chunks[j].levels.size(); ++l) {
      const std::string& codec = in.chunks[j].levels[l].codec;
      if (in.LevelAllowed(j, l) && std::find(codecs.begin(), codecs.end(), codec) == codecs.end()) {
        codecs.push_back(codec);
      }
    }
  }
  return codecs;
}

}  // namespace sparkv::plan_internal
