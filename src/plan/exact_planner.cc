#include "plan/exact_planner.h"

#include <algorithm>
#include <cassert>
#include <cmath>
#include <cstdint>
#include <limits>
#include <tuple>
#include <vector>

#include "common/log.h"
#include "plan/planner_util.h"

namespace sparkv {
namespace {

// A state of the recurrence after some prefix of the chunks, with the secondary criteria the
// objective breaks ties with, and a link back to the state it came from.
struct Node {
  double a;              // network free (s)
  double c;              // CPU free (s)
  int64_t quality_sum;   // sum of quality_rank over streamed chunks so far
  uint64_t bytes;        // streamed bytes so far
  int32_t parent;        // index in the previous layer
  int32_t level;         // the choice for this chunk: level index, or -1 for compute/committed
};

// Pass 1 dominance, on time alone: k is no later on the network and (within epsilon_s) on the
// CPU. Completing both with the same choices keeps the relation (the recurrence is monotone in a
// and c), so the best TTFT reachable from k is never worse than from x.
// Sorted by (a, c, quality_sum, bytes), a sweep that keeps a candidate only when its c is below
// every kept one (minus epsilon_s) leaves the staircase of non-dominated states; of states equal
// in (a, c), the first, best in (quality_sum, bytes), is kept.
// When more than max_front states remain, the staircase is thinned to states at least
// delta = (c range) / max_front apart in c, first and last kept; every dropped state then has a
// kept one no later on the network and less than delta later on the CPU. Returns that delta
// (0 when nothing was thinned).
double PruneByTime(std::vector<Node>* candidates, double epsilon_s, size_t max_front,
                   std::vector<Node>* kept) {
  std::sort(candidates->begin(), candidates->end(), [](const Node& x, const Node& y) {
    return std::tie(x.a, x.c, x.quality_sum, x.bytes) < std::tie(y.a, y.c, y.quality_sum, y.bytes);
  });
  kept->clear();
  double min_c = std::numeric_limits<double>::infinity();
  for (const Node& x : *candidates) {
    if (x.c < min_c - epsilon_s || kept->empty()) {
      kept->push_back(x);
      min_c = std::min(min_c, x.c);
    }
  }
  if (max_front == 0 || kept->size() <= max_front) return 0.0;

  // Along the staircase a rises and c falls.
  const double delta = (kept->front().c - kept->back().c) / static_cast<double>(max_front);
  const Node last = kept->back();
  size_t n_kept = 1;
  for (size_t i = 1; i + 1 < kept->size(); ++i) {
    if ((*kept)[i].c <= (*kept)[n_kept - 1].c - delta) (*kept)[n_kept++] = (*kept)[i];
  }
  (*kept)[n_kept++] = last;
  kept->resize(n_kept);
  return delta;
}

// Pass 2 dominance, for the tie-break: k is no later on either path and no worse in
// (quality_sum, bytes) ordered lexicographically; sums are translation invariant, so k's best
// completion is never worse than x's under (TTFT, quality_sum, bytes).
bool DominatesFully(const Node& k, const Node& x) {
  if (k.a > x.a || k.c > x.c) return false;
  if (k.quality_sum != x.quality_sum) return k.quality_sum < x.quality_sum;
  return k.bytes <= x.bytes;
}

void PruneFully(std::vector<Node>* candidates, std::vector<Node>* kept) {
  std::sort(candidates->begin(), candidates->end(), [](const Node& x, const Node& y) {
    return std::tie(x.a, x.c, x.quality_sum, x.bytes) < std::tie(y.a, y.c, y.quality_sum, y.bytes);
  });
  kept->clear();
  for (const Node& x : *candidates) {
    bool dominated = false;
    for (size_t i = kept->size(); i-- > 0;) {  // the latest kept are the closest in a
      if (DominatesFully((*kept)[i], x)) {
        dominated = true;
        break;
      }
    }
    if (!dominated) kept->push_back(x);
  }
}

class ExactPlanner final : public Planner {
 public:
  std::string_view name() const override { return "exact"; }
  std::string_view description() const override {
    return "optimal per-chunk path and level under the cost model (Pareto dynamic programming)";
  }
  Plan Solve(const PlanInput& in) const override { return SolveExact(in, ExactOptions{}, nullptr); }
};


// Appends the successors of every state in `front` through chunk j, with the same arithmetic as
// Simulate() so that a plan's TTFT here matches Simulate's bit for bit.
// Only levels in `useful[j]` are tried (see UsefulLevels).
void Expand(const PlanInput& in, size_t j, const std::vector<std::vector<int32_t>>& useful,
            const std::vector<Node>& front, std::vector<Node>* candidates) {
  const ChunkSpec& chunk = in.chunks[j];
  candidates->clear();
  for (size_t s = 0; s < front.size(); ++s) {
    const Node& x = front[s];
    const auto parent = static_cast<int32_t>(s);
    if (!in.IsPending(j)) {
      Node next = x;
      next.parent = parent;
      next.level = -1;
      const ChunkProgress& p = in.progress[j];
      if (p.state == ChunkProgress::State::kStreaming) {
        next.c = in.decode_on_spare_core ? std::max(x.c, p.arrival_s + p.decode_seconds)
                                         : std::max(x.c, p.arrival_s) + p.decode_seconds;
      }
      candidates->push_back(next);
      continue;
    }
    candidates->push_back({x.a, x.c + in.compute.ChunkSeconds(chunk.begin, chunk.end),
                           x.quality_sum, x.bytes, parent, -1});
    for (const int32_t l : useful[j]) {
      const LevelOption& opt = chunk.levels[static_cast<size_t>(l)];
      const double arrival = StreamArrival(in, x.a, opt.bytes);
      if (!std::isfinite(arrival)) continue;  // the link never delivers it
      const double c = in.decode_on_spare_core ? std::max(x.c, arrival + opt.decode_seconds)
                                               : std::max(x.c, arrival) + opt.decode_seconds;
      candidates->push_back({arrival, c, x.quality_sum + opt.quality_rank, x.bytes + opt.bytes,
                             parent, l});
    }
  }
}

// Per chunk, the allowed levels worth trying. A level is dropped when another allowed level of
// the same chunk has no more bytes, no more decode time and no worse quality rank. On a full tie
// the lower index is kept. Arrival times do not decrease with bytes, so streaming the other
// level reaches a state no later on either path and no worse in (quality_sum, bytes).
std::vector<std::vector<int32_t>> UsefulLevels(const PlanInput& in) {
  std::vector<std::vector<int32_t>> useful(in.chunks.size());
  for (size_t j = 0; j < in.chunks.size(); ++j) {
    if (!in.IsPending(j)) continue;
    const std::vector<LevelOption>& levels = in.chunks[j].levels;
    for (size_t l = 0; l < levels.size(); ++l) {
      if (!in.LevelAllowed(j, l)) continue;
      bool dominated = false;
      for (size_t k = 0; k < levels.size() && !dominated; ++k) {
        if (k == l || !in.LevelAllowed(j, k)) continue;
        const LevelOption& x = levels[k];
        const LevelOption& y = levels[l];
        const bool no_worse = x.bytes <= y.bytes && x.decode_seconds <= y.decode_seconds &&
                              x.quality_rank <= y.quality_rank;
        const bool tie = x.bytes == y.bytes && x.decode_seconds == y.decode_seconds &&
                         x.quality_rank == y.quality_rank;
        dominated = no_worse && (!tie || k < l);
      }
      if (!dominated) useful[j].push_back(static_cast<int32_t>(l));
    }
  }
  return useful;
}

// Lower bounds on the TTFT still reachable from a state, to drop states that cannot beat a
// plan already known. Relaxation: each remaining pending chunk costs either its compute time on
// the CPU, or for some allowed level a transfer at the fastest rate the link ever has on the
// network plus (shared core) its decode on the CPU; ordering and waiting are ignored. For any
// weight w in [0, 1], TTFT >= w * (CPU finish) + (1 - w) * (network finish), and each chunk
// adds at least min over its options of w * cpu + (1 - w) * net. So
//   LB = query + max over w of  w * c + (1 - w) * a + sum over remaining chunks of that minimum.
class LowerBound {
 public:
  static constexpr int kWeights = 17;  // w = 0, 1/16, ..., 1

  explicit LowerBound(const PlanInput& in) : query_(in.query_seconds) {
    const size_t n = in.chunks.size();
    double max_rate = 0.0;
    for (const BandwidthStep& s : in.bandwidth.steps()) max_rate = std::max(max_rate, s.bytes_per_s);
    suffix_.assign((n + 1) * kWeights, 0.0);
    for (size_t j = n; j-- > 0;) {
      const ChunkSpec& chunk = in.chunks[j];
      const double t_c = in.compute.ChunkSeconds(chunk.begin, chunk.end);
      for (int k = 0; k < kWeights; ++k) {
        const double w = static_cast<double>(k) / (kWeights - 1);
        double least = 0.0;
        if (in.IsPending(j)) {
          least = w * t_c;
          for (size_t l = 0; l < chunk.levels.size() && max_rate > 0.0; ++l) {
            if (!in.LevelAllowed(j, l)) continue;
            const LevelOption& opt = chunk.levels[l];
            const double net = in.request_overhead_s + static_cast<double>(opt.bytes) / max_rate;
            const double cpu = in.decode_on_spare_core ? 0.0 : opt.decode_seconds;
            least = std::min(least, w * cpu + (1.0 - w) * net);
          }
        }
        suffix_[j * kWeights + k] = suffix_[(j + 1) * kWeights + k] + least;
      }
    }
  }

  // Bound for a state after chunks [0, j).
  double operator()(size_t j, const Node& x) const {
    double best = std::max(x.a, x.c);
    const double* s = &suffix_[j * kWeights];
    for (int k = 0; k < kWeights; ++k) {
      const double w = static_cast<double>(k) / (kWeights - 1);
      best = std::max(best, w * x.c + (1.0 - w) * x.a + s[k]);
    }
    return best + query_;
  }

 private:
  double query_;
  std::vector<double> suffix_;  // [n_chunks + 1][kWeights], seconds
};

// Bounds are computed in floating point; a state is dropped only when its bound exceeds the
// plan to beat by more than rounding could explain.
bool CannotBeat(double bound, double target) { return bound > target + 1e-9 * std::fabs(target); }

using Key = std::tuple<double, int64_t, uint64_t>;  // (TTFT, quality_sum, bytes)

Key FinalKey(const PlanInput& in, const Node& x) {
  return {std::max(x.a, x.c) + in.query_seconds, x.quality_sum, x.bytes};
}

// Index of the best final state, and the decisions it stands for.
size_t BestFinal(const PlanInput& in, const std::vector<Node>& last) {
  size_t best = 0;
  for (size_t s = 1; s < last.size(); ++s) {
    if (FinalKey(in, last[s]) < FinalKey(in, last[best])) best = s;
  }
  return best;
}

// Back link of one kept state. All layers share one buffer of 8 bytes per state, so a solve holds
// ExactStats::total_states * 8 bytes to the end and only the current front in full.
struct Link {
  int32_t parent;  // index in the previous layer
  int32_t level;   // level index, or -1 for compute/committed
};

struct Trail {
  std::vector<Link> links;
  std::vector<size_t> layer_begin;  // [n_layers + 1], offsets into links; layer 0 follows chunk 0

  void Reset() {
    links.clear();
    layer_begin.assign(1, 0);
  }
  void AddLayer(const std::vector<Node>& front) {
    for (const Node& x : front) links.push_back({x.parent, x.level});
    layer_begin.push_back(links.size());
  }
};

// Decisions of the state `best` of the last layer; the links of the states after chunk j start
// at trail.layer_begin[j].
std::vector<Decision> Backtrack(const PlanInput& in, const Trail& trail, size_t best) {
  std::vector<Decision> decisions = plan_internal::ComputeAllDecisions(in);
  size_t s = best;
  for (size_t j = in.chunks.size(); j-- > 0;) {
    const Link& x = trail.links[trail.layer_begin[j] + s];
    if (x.level >= 0) decisions[j] = {Decision::Path::kStream, x.level};
    s = static_cast<size_t>(x.parent);
  }
  return decisions;
}

}  // namespace

Plan SolveExact(const PlanInput& in, const ExactOptions& options, ExactStats* stats) {
  const size_t n = in.chunks.size();
  const double eps = std::max(0.0, options.epsilon_s);
  ExactStats local_stats;
  const std::vector<std::vector<int32_t>> useful = UsefulLevels(in);

  // The plan to beat: the best single split (prefix computed, suffix streamed at one level),
  // which DESIGN.md 6 expects within a few percent of the optimum on alike chunks.
  const LowerBound bound(in);
  const Plan split = FindPlanner("split")->Solve(in);
  const double target = split.predicted.ttft_s;

  // Pass 1: the (a, c) Pareto fronts, one layer per chunk. Only the current front is kept whole.
  const Node start{InitialNetworkTime(in), InitialCpuTime(in), 0, 0, -1, -1};
  std::vector<Node> front{start};
  std::vector<Node> next;
  std::vector<Node> candidates;
  Trail trail;
  trail.Reset();
  for (size_t j = 0; j < n && !front.empty(); ++j) {
    Expand(in, j, useful, front, &candidates);
    std::erase_if(candidates, [&](const Node& x) { return CannotBeat(bound(j + 1, x), target); });
    const double delta = PruneByTime(&candidates, eps, options.max_front, &next);
    front.swap(next);
    trail.AddLayer(front);
    local_stats.ttft_error_bound_s += eps + delta;
    local_stats.max_front = std::max(local_stats.max_front, front.size());
    local_stats.total_states += front.size();
  }
  // An empty front means no plan beats the split by more than rounding: the split is optimal
  // in TTFT (or, with thinning, the best found), and pass 2 still breaks ties against it.
  Key best_key{split.predicted.ttft_s, split.predicted.quality_rank_sum,
               split.predicted.streamed_bytes};
  std::vector<Decision> decisions = split.decisions;
  if (!front.empty() && trail.layer_begin.size() == n + 1) {
    const size_t best = BestFinal(in, front);
    if (FinalKey(in, front[best]) < best_key) {
      best_key = FinalKey(in, front[best]);
      decisions = Backtrack(in, trail, best);
    }
  }

  // Pass 2: among plans as fast as the best so far, the best in (quality_sum, bytes). Pass 1
  // cannot see these ties: a state that is later on the network but better in quality may end
  // at the same TTFT when the CPU hides the difference. States are pruned by full dominance and
  // by the lower bound against that TTFT. A state whose (quality_sum, bytes) already reaches the
  // best plan's is dropped too, because both sums only grow.
  const double limit = std::get<0>(best_key);
  front.assign(1, start);
  trail.Reset();
  bool complete = options.max_tie_states > 0;
  for (size_t j = 0; j < n && complete; ++j) {
    Expand(in, j, useful, front, &candidates);
    std::erase_if(candidates, [&](const Node& x) {
      return std::tie(x.quality_sum, x.bytes) >= std::tie(std::get<1>(best_key), std::get<2>(best_key)) ||
             CannotBeat(bound(j + 1, x), limit);
    });
    PruneFully(&candidates, &next);
    front.swap(next);
    trail.AddLayer(front);
    local_stats.max_tie_front = std::max(local_stats.max_tie_front, front.size());
    // An empty front is a complete search too: nothing beats the best plan's tie-break.
    complete = front.size() <= options.max_tie_states;
    if (front.empty()) break;
  }
  local_stats.tie_break_complete = complete;
  if (complete && !front.empty() && trail.layer_begin.size() == n + 1) {
    const size_t tie_best = BestFinal(in, front);
    if (FinalKey(in, front[tie_best]) < best_key) {
      best_key = FinalKey(in, front[tie_best]);
      decisions = Backtrack(in, trail, tie_best);
    }
  }

  if (!complete && options.max_tie_states > 0) {
    SPARKV_LOG_WARN("exact plan: the tie-break front passed %zu states; the TTFT is optimal but "
                    "the quality tie-break may not be", options.max_tie_states);
  }
  Plan plan = plan_internal::MakePlan("exact", in, std::move(decisions));
  assert(plan.predicted.ttft_s == std::get<0>(best_key));
  SPARKV_LOG_DEBUG("exact plan: %zu chunks, front up to %zu states (%zu in all), tie-break front "
                   "up to %zu%s", n, local_stats.max_front, local_stats.total_states,
                   local_stats.max_tie_front, complete ? "" : " (gave up)");
  if (stats != nullptr) *stats = local_stats;
  return plan;
}

namespace plan_internal {

std::unique_ptr<Planner> MakeExactPlanner() { return std::make_unique<ExactPlanner>(); }

}  // namespace plan_internal
}  // namespace sparkv
