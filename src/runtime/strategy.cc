#include "runtime/strategy.h"

#include <algorithm>

#include "plan/planner.h"

namespace sparkv {
namespace {

// sparkv-adaptive's race_ratio: an idle compute path races the frontier chunk when computing it
// takes at most 3 times as long as the stream path is predicted to need. On the 120-point trace
// sweep of docs/planner.md, 3 and above kept every point within 10% of the hindsight optimum.
// 2 left one point above and 1 left four. Races cost energy on a steady link (same section).
constexpr double kAdaptiveRaceRatio = 3.0;

// sparkv-adaptive's fade margin: plans that stay optimal on a link 30% slower than predicted are
// preferred while they cost at most 0.2% of the predicted TTFT. On the 120-point trace sweep and
// the matrices (docs/planner.md, "Fade margin") this removed the one point more than 2% behind
// cake and slowed none. Margins of 20% to 50% and slacks of 0.05% to 0.5% gave the same.
constexpr double kAdaptiveFadeMargin = 0.3;
constexpr double kAdaptiveFadeSlack = 0.002;

std::vector<Strategy> BuiltIn() {
  std::vector<Strategy> s;
  s.push_back({"local", "local", "compute every chunk on the device", false, false, false, false, false});
  s.push_back({"stream", "stream", "stream every chunk at one level", false, false, false, false, false});
  s.push_back({"cachegen", "cachegen", "stream every chunk, level per chunk from predicted bandwidth (CacheGen)",
               false, false, false, false, false});
  s.push_back({"split", "split", "compute a prefix, stream the suffix at one level; best split by the model",
               false, false, false, false, true});
  s.push_back({"cake", "cake", "compute from the front, stream from the back until they meet (Cake), one level",
               false, true, true, false, true});
  s.push_back({"greedy", "greedy", "stream a chunk when it arrives before compute reaches it (greedy)", false, false,
               false, false, true});
  s.push_back({"exact", "exact", "the optimal plan under the cost model, followed as planned", false, false, false,
               false, true});
  s.push_back({"sparkv", "exact", "the optimal plan under the cost model, followed as planned", false, false, false,
               false, true});
  s.push_back({"sparkv-adaptive", "exact",
               "the optimal plan, re-solved as bandwidth and device speed change; suffix fetched from the back",
               true, true, false, true, true, kAdaptiveRaceRatio, kAdaptiveFadeMargin, kAdaptiveFadeSlack, true});
  return s;
}

}  // namespace

Strategy WithRaceRatio(Strategy s, double ratio) {
  if (ratio > 0.0 && s.replan) s.race_ratio = ratio;
  return s;
}

Result<Strategy> FindStrategy(std::string_view name) {
  const std::string_view wanted = name == "hybrid" ? std::string_view("sparkv-adaptive") : name;
  for (Strategy& s : BuiltIn()) {
    if (s.name == wanted) return s;
  }
  if (const Planner* planner = FindPlanner(wanted)) {
    return Strategy{std::string(wanted), std::string(wanted), std::string(planner->description()), false, false,
                    false, false, false};
  }
  std::string known = "hybrid";
  for (const std::string& n : StrategyNames()) known += ", " + n;
  return InvalidArgumentError("unknown strategy '" + std::string(name) + "'; known: " + known);
}

std::vector<std::string> StrategyNames() {
  std::vector<std::string> names;
  for (const Strategy& s : BuiltIn()) names.push_back(s.name);
  for (const std::string& p : PlannerNames()) {
    if (std::find(names.begin(), names.end(), p) == names.end()) names.push_back(p);
  }
  return names;
}

}  // namespace sparkv
