#include "plan/exact_planner.h"

#include <algorithm>
#include <cassert>
#include <cmath>
#include <cstdint>
#include <iterator>
#include <limits>
#include <map>
#include <utility>
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
  double bound = 0.0;    // lower bound on the TTFT of any plan through this state (LowerBound)
};

bool LessByTime(const Node& x, const Node& y) {
  if (x.a != y.a) return x.a < y.a;  // the common case, decided without the tuple
  return std::tie(x.c, x.quality_sum, x.bytes) < std::tie(y.c, y.quality_sum, y.bytes);
}

// Appends candidates that arrive in non-decreasing a to the staircase (a rising, c falling) that
// starts at (*out)[begin], dropping each candidate that a kept one dominates in (a, c) or ties
// with and beats in (quality_sum, bytes). The result equals a sort in (a, c, quality_sum, bytes)
// order followed by PruneByTime's sweep. `ordered` turns false if a candidate's a fell below the
// last kept one; the caller then sorts the raw candidates instead.
class StaircaseBuilder {
 public:
  explicit StaircaseBuilder(std::vector<Node>* out) : out_(out), begin_(out->size()) {}

  void Push(const Node& x) {
    while (out_->size() > begin_) {
      const Node& back = out_->back();
      if (x.a < back.a) {
        ordered_ = false;
        return;
      }
      if (x.a != back.a || !LessByTime(x, back)) break;
      out_->pop_back();  // same a, and x is earlier in order: x dominates it
    }
    if (out_->size() == begin_ || x.c < out_->back().c) out_->push_back(x);
  }

  bool ordered() const { return ordered_; }
  size_t begin() const { return begin_; }

 private:
  std::vector<Node>* out_;
  size_t begin_;
  bool ordered_ = true;
};

// The staircase of the union of two staircases, into *out (cleared first).
void MergeStaircases(const Node* x, size_t n_x, const Node* y, size_t n_y, std::vector<Node>* out) {
  out->clear();
  double min_c = std::numeric_limits<double>::infinity();
  size_t i = 0;
  size_t k = 0;
  while (i < n_x || k < n_y) {
    const Node& next = k == n_y || (i < n_x && LessByTime(x[i], y[k])) ? x[i++] : y[k++];
    if (next.c < min_c) {
      out->push_back(next);
      min_c = next.c;
    }
  }
}

// Candidates arrive as segments, one per choice for the chunk, each in the order of the front it
// was expanded from. A front is sorted by a, and every choice maps a to a non-decreasing a'
// because the arrival is monotone in the start. So each segment is sorted by a already, and
// merging them costs O(F k) for F candidates in k segments instead of a sort's O(F log F). Runs of equal a are then
// sorted by the full (a, c, quality_sum, bytes) order that the sweeps below rely on.
// `segment_begin` contains [n_segments + 1] offsets into `candidates`.
void MergeSegments(const std::vector<Node>& candidates, const std::vector<size_t>& segment_begin,
                   std::vector<Node>* merged) {
  merged->clear();
  merged->reserve(candidates.size());
  const size_t n_segments = segment_begin.size() - 1;
  std::vector<size_t> head(segment_begin.begin(), segment_begin.end() - 1);
  for (;;) {
    size_t pick = n_segments;
    for (size_t k = 0; k < n_segments; ++k) {
      if (head[k] == segment_begin[k + 1]) continue;
      if (pick == n_segments || candidates[head[k]].a < candidates[head[pick]].a) pick = k;
    }
    if (pick == n_segments) break;
    merged->push_back(candidates[head[pick]++]);
  }
  for (size_t i = 0; i < merged->size();) {
    size_t end = i + 1;
    while (end < merged->size() && (*merged)[end].a == (*merged)[i].a) ++end;
    if (end - i > 1) std::sort(merged->begin() + static_cast<std::ptrdiff_t>(i),
                               merged->begin() + static_cast<std::ptrdiff_t>(end), LessByTime);
    i = end;
  }
}

// Pass 1 dominance, on time alone: k is no later on the network and on the CPU. Completing both
// with the same choices keeps the relation (the recurrence is monotone in a and c), so the best
// TTFT reachable from k is never worse than from x.
// `sorted` is in (a, c, quality_sum, bytes) order. A sweep that keeps a candidate only when its c
// is below every kept one leaves the staircase of non-dominated states. Of states equal in
// (a, c), the first, best in (quality_sum, bytes), is kept.
// Two optional rules drop more, and each dropped state's lower bound goes into
// *min_dropped_bound (see SolveExact for why that bounds the error): epsilon_s drops a state
// within epsilon_s of a kept one on the CPU, and max_front keeps max_front states, either spread
// evenly in c along the staircase or those with the lowest lower bounds (a beam).
enum class Thin : uint8_t { kEvenInC, kLowestBound };
void PruneByTime(const std::vector<Node>& sorted, double epsilon_s, size_t max_front, Thin thin,
                 std::vector<Node>* kept, double* min_dropped_bound) {
  kept->clear();
  double min_c = std::numeric_limits<double>::infinity();
  for (const Node& x : sorted) {
    if (x.c < min_c - epsilon_s || kept->empty()) {
      kept->push_back(x);
      min_c = std::min(min_c, x.c);
    } else if (x.c < min_c) {
      *min_dropped_bound = std::min(*min_dropped_bound, x.bound);  // within epsilon, not dominated
    }
  }
  if (max_front == 0 || kept->size() <= max_front) return;

  size_t n_kept = 0;
  if (thin == Thin::kLowestBound) {
    // The max_front-th lowest bound; ties at it are broken by position so exactly max_front stay.
    std::vector<std::pair<double, size_t>> order(kept->size());
    for (size_t i = 0; i < kept->size(); ++i) order[i] = {(*kept)[i].bound, i};
    std::nth_element(order.begin(), order.begin() + static_cast<std::ptrdiff_t>(max_front - 1), order.end());
    const std::pair<double, size_t> cut = order[max_front - 1];
    for (size_t i = 0; i < kept->size(); ++i) {
      const Node& x = (*kept)[i];
      if (std::make_pair(x.bound, i) <= cut) {
        (*kept)[n_kept++] = x;
      } else {
        *min_dropped_bound = std::min(*min_dropped_bound, x.bound);
      }
    }
  } else {
    // Along the staircase a rises and c falls. The first and last states stay, and the others
    // only when at least (c range) / max_front below the previous kept one in c.
    const double delta = (kept->front().c - kept->back().c) / static_cast<double>(max_front);
    const Node last = kept->back();
    n_kept = 1;
    for (size_t i = 1; i + 1 < kept->size(); ++i) {
      const Node& x = (*kept)[i];
      if (x.c <= (*kept)[n_kept - 1].c - delta) {
        (*kept)[n_kept++] = x;
      } else {
        *min_dropped_bound = std::min(*min_dropped_bound, x.bound);
      }
    }
    (*kept)[n_kept++] = last;
  }
  kept->resize(n_kept);
}

// Pass 2 dominance, for the tie-break: k is no later on either path and no worse in
// (quality_sum, bytes) ordered lexicographically; sums are translation invariant, so k's best
// completion is never worse than x's under (TTFT, quality_sum, bytes).
// `sorted` is in (a, c, quality_sum, bytes) order, so every state kept before x is no later than
// x on the network. So x is dominated exactly when some kept state is no later on the CPU and no
// worse in the sums. The kept states that no other kept state dominates in (c, sums) form a
// staircase: a map from c to sums that fall as c rises. The entry with the largest c not above
// x.c has the best sums among kept states no later than x on the CPU, so one O(log F) lookup
// decides.
void PruneFully(const std::vector<Node>& sorted, std::vector<Node>* kept) {
  using Sums = std::pair<int64_t, uint64_t>;  // (quality_sum, bytes)
  std::map<double, Sums> staircase;
  kept->clear();
  for (const Node& x : sorted) {
    const Sums sums{x.quality_sum, x.bytes};
    auto it = staircase.upper_bound(x.c);
    if (it != staircase.begin() && std::prev(it)->second <= sums) continue;  // dominated
    kept->push_back(x);
    // Entries from x.c on that x now dominates leave the staircase; `it` is the first above x.c.
    auto drop = it;
    if (drop != staircase.begin() && std::prev(drop)->first == x.c) --drop;
    while (drop != staircase.end() && drop->second >= sums) drop = staircase.erase(drop);
    staircase[x.c] = sums;
  }
}

class ExactPlanner final : public Planner {
 public:
  std::string_view name() const override { return "exact"; }
  std::string_view description() const override {
    return "optimal per-chunk path and level under the cost model (Pareto dynamic programming)";
  }
  Plan Solve(const PlanInput& in) const override {
    return SolveExact(in, ExactOptions{.max_candidates = kDefaultExactBudget}, nullptr);
  }
};


// The successors of every state in `front` through chunk j that `keep` accepts, with the same
// arithmetic as Simulate() so that a plan's TTFT here matches Simulate's bit for bit, merged into
// `sorted` in (a, c, quality_sum, bytes) order. Only levels in `useful[j]` are tried (see
// UsefulLevels). `keep` may set the candidate's bound. `front` must be sorted by a; `scratch` and
// `segment_begin` are reused buffers.
template <typename Keep>
void Expand(const PlanInput& in, size_t j, const std::vector<std::vector<int32_t>>& useful,
            const std::vector<Node>& front, const Keep& keep, std::vector<Node>* scratch,
            std::vector<size_t>* segment_begin, std::vector<Node>* sorted) {
  const ChunkSpec& chunk = in.chunks[j];
  scratch->clear();
  segment_begin->assign(1, 0);
  auto add = [&](Node next) {
    if (keep(next)) scratch->push_back(next);
  };
  auto close_segment = [&] {
    const auto begin = scratch->begin() + static_cast<std::ptrdiff_t>(segment_begin->back());
    // Rounding could in principle break the monotonicity of the arrival; sort if it did.
    if (!std::is_sorted(begin, scratch->end(), [](const Node& x, const Node& y) { return x.a < y.a; })) {
      std::sort(begin, scratch->end(), LessByTime);
    }
    segment_begin->push_back(scratch->size());
  };
  if (!in.IsPending(j)) {
    const ChunkProgress& p = in.progress[j];
    for (size_t s = 0; s < front.size(); ++s) {
      Node next = front[s];
      next.parent = static_cast<int32_t>(s);
      next.level = -1;
      if (p.state == ChunkProgress::State::kStreaming) {
        next.c = in.decode_on_spare_core ? std::max(next.c, p.arrival_s + p.decode_seconds)
                                         : std::max(next.c, p.arrival_s) + p.decode_seconds;
      }
      add(next);
    }
    close_segment();
  } else {
    const double t_c = in.compute.ChunkSeconds(chunk.begin, chunk.end);
    for (size_t s = 0; s < front.size(); ++s) {
      const Node& x = front[s];
      add({x.a, x.c + t_c, x.quality_sum, x.bytes, static_cast<int32_t>(s), -1});
    }
    close_segment();
    for (const int32_t l : useful[j]) {
      const LevelOption& opt = chunk.levels[static_cast<size_t>(l)];
      for (size_t s = 0; s < front.size(); ++s) {
        const Node& x = front[s];
        const double arrival = StreamArrival(in, x.a, opt.bytes);
        if (!std::isfinite(arrival)) continue;  // the link never delivers it
        const double c = in.decode_on_spare_core ? std::max(x.c, arrival + opt.decode_seconds)
                                                 : std::max(x.c, arrival) + opt.decode_seconds;
        add({arrival, c, x.quality_sum + opt.quality_rank, x.bytes + opt.bytes,
             static_cast<int32_t>(s), l});
      }
      close_segment();
    }
  }
  MergeSegments(*scratch, *segment_begin, sorted);
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
    for (int k = 0; k < kWeights; ++k) weight_[k] = static_cast<double>(k) / (kWeights - 1);
    const size_t n = in.chunks.size();
    double max_rate = 0.0;
    for (const BandwidthStep& s : in.bandwidth.steps()) max_rate = std::max(max_rate, s.bytes_per_s);
    suffix_.assign((n + 1) * kWeights, 0.0);
    std::vector<std::pair<double, double>> options;  // (cpu, net) seconds per allowed level
    for (size_t j = n; j-- > 0;) {
      const ChunkSpec& chunk = in.chunks[j];
      const double t_c = in.compute.ChunkSeconds(chunk.begin, chunk.end);
      options.clear();
      for (size_t l = 0; l < chunk.levels.size() && max_rate > 0.0; ++l) {
        if (!in.LevelAllowed(j, l)) continue;
        const LevelOption& opt = chunk.levels[l];
        options.emplace_back(in.decode_on_spare_core ? 0.0 : opt.decode_seconds,
                             in.request_overhead_s + static_cast<double>(opt.bytes) / max_rate);
      }
      for (int k = 0; k < kWeights; ++k) {
        const double w = weight_[k];
        double least = 0.0;
        if (in.IsPending(j)) {
          least = w * t_c;
          for (const auto& [cpu, net] : options) least = std::min(least, w * cpu + (1.0 - w) * net);
        }
        suffix_[j * kWeights + k] = suffix_[(j + 1) * kWeights + k] + least;
      }
    }
  }

  // Bound for a state after chunks [0, j). The weighted sum is concave in w (a linear term plus
  // a sum of minima of linear functions), so a climb from any grid point to a neighbour that is
  // higher stops at the maximum. Neighbouring states of a front have their maxima at nearby w, so
  // the climb starts from *hint, where the previous call stopped, and usually takes three
  // evaluations. Any grid point gives a valid bound, so rounding cannot make the result unsafe.
  double operator()(size_t j, const Node& x, int* hint) const {
    const double* s = &suffix_[j * kWeights];
    auto f = [&](int k) { return weight_[k] * x.c + (1.0 - weight_[k]) * x.a + s[k]; };
    int k = std::clamp(*hint, 0, kWeights - 1);
    double best = f(k);
    for (const int step : {1, -1}) {
      const int start = k;
      for (int next = k + step; next >= 0 && next < kWeights; next += step) {
        const double value = f(next);
        if (!(value > best)) break;
        k = next;
        best = value;
      }
      if (k != start) break;  // f rises on one side of its maximum only
    }
    *hint = k;
    return std::max(std::max(x.a, x.c), best) + query_;
  }

 private:
  double query_;
  double weight_[kWeights];     // k / (kWeights - 1)
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

namespace {

// The front a quick first pass is thinned to; its plan becomes the one the full pass must beat.
// Under a candidate budget the quick pass gets about an eighth of it, in fronts of
// kMinQuickFront to kQuickFront states, and no front of the full pass is thinned below that.
constexpr size_t kQuickFront = 16;
constexpr size_t kMinQuickFront = 2;
constexpr size_t kQuickShare = 8;

// Buffers and shared inputs of one solve.
struct Solver {
  const PlanInput& in;
  const std::vector<std::vector<int32_t>> useful;
  const LowerBound bound;
  const Node start;
  std::vector<Node> front, next, candidates, scratch, merge_buffer;
  std::vector<size_t> segment_begin;
  Trail trail;

  explicit Solver(const PlanInput& input)
      : in(input), useful(UsefulLevels(input)), bound(input),
        start{InitialNetworkTime(input), InitialCpuTime(input), 0, 0, -1, -1} {}

  // Choices tried for chunk j, the compute path included.
  size_t Width(size_t j) const { return in.IsPending(j) ? 1 + useful[j].size() : 1; }
};

// Pass 1's successors of s.front through chunk j, reduced to their (a, c) staircase in
// s.candidates; returns how many successors were made. The successors of one choice come in
// the order of the front, so with non-decreasing a (the arrival is monotone in the start), and
// StaircaseBuilder reduces them as they come. The staircases of the choices are then merged two
// at a time. A stream choice stops early once a successor's transfer (plus decode, with a spare
// core) ends no earlier than its parent's CPU time. From there on the network sets the CPU time,
// so each later parent, later on the network, makes a successor no earlier on either path.
size_t ExpandStaircase(Solver& s, size_t j) {
  const PlanInput& in = s.in;
  const std::vector<Node>& front = s.front;
  size_t n_made = 0;
  bool first_segment = true;

  auto add_segment = [&](const auto& successor, const auto& ends_segment) {
    s.scratch.clear();
    StaircaseBuilder stairs(&s.scratch);
    for (size_t i = 0; i < front.size() && stairs.ordered(); ++i) {
      const Node y = successor(front[i], static_cast<int32_t>(i));
      ++n_made;
      if (!std::isfinite(y.a)) continue;  // the link never delivers it
      stairs.Push(y);
      if (ends_segment(front[i], y)) break;
    }
    if (!stairs.ordered()) {
      // Rounding broke the monotonicity of the arrival: sort every successor, then sweep.
      std::vector<Node> raw;
      for (size_t i = 0; i < front.size(); ++i) {
        const Node y = successor(front[i], static_cast<int32_t>(i));
        if (std::isfinite(y.a)) raw.push_back(y);
      }
      std::sort(raw.begin(), raw.end(), LessByTime);
      s.scratch.clear();
      StaircaseBuilder sorted(&s.scratch);
      for (const Node& y : raw) sorted.Push(y);
    }

    if (first_segment) {
      s.candidates.swap(s.scratch);
      first_segment = false;
    } else {
      MergeStaircases(s.candidates.data(), s.candidates.size(), s.scratch.data(), s.scratch.size(),
                      &s.merge_buffer);
      s.candidates.swap(s.merge_buffer);
    }
  };

  const auto never = [](const Node&, const Node&) { return false; };
  s.candidates.clear();
  if (!in.IsPending(j)) {
    const ChunkProgress& p = in.progress[j];
    const bool arriving = p.state == ChunkProgress::State::kStreaming;
    add_segment(
        [&](const Node& x, int32_t parent) {
          Node next = x;
          next.parent = parent;
          next.level = -1;
          if (arriving) {
            next.c = in.decode_on_spare_core ? std::max(x.c, p.arrival_s + p.decode_seconds)
                                             : std::max(x.c, p.arrival_s) + p.decode_seconds;
          }
          return next;
        },
        never);
    return n_made;
  }

  const ChunkSpec& chunk = in.chunks[j];
  const double t_c = in.compute.ChunkSeconds(chunk.begin, chunk.end);
  add_segment(
      [&](const Node& x, int32_t parent) {
        return Node{x.a, x.c + t_c, x.quality_sum, x.bytes, parent, -1};
      },
      never);

  // At a constant rate, the arithmetic of StreamArrival without its call and branches.
  const std::vector<BandwidthStep>& steps = in.bandwidth.steps();
  const double constant_rate = steps.size() == 1 ? steps[0].bytes_per_s : 0.0;
  for (const int32_t l : s.useful[j]) {
    const LevelOption& opt = chunk.levels[static_cast<size_t>(l)];
    const double slack = in.decode_on_spare_core ? opt.decode_seconds : 0.0;
    const double transfer_s =
        constant_rate > 0.0 && opt.bytes > 0 ? static_cast<double>(opt.bytes) / constant_rate : -1.0;
    add_segment(
        [&](const Node& x, int32_t parent) {
          const double arrival = transfer_s >= 0.0 ? (x.a + in.request_overhead_s) + transfer_s
                                                   : StreamArrival(in, x.a, opt.bytes);
          const double c = in.decode_on_spare_core ? std::max(x.c, arrival + opt.decode_seconds)
                                                   : std::max(x.c, arrival) + opt.decode_seconds;
          return Node{arrival, c, x.quality_sum + opt.quality_rank, x.bytes + opt.bytes, parent, l};
        },
        [&](const Node& x, const Node& y) { return y.a + slack >= x.c; });
  }
  return n_made;
}

struct PassResult {
  bool found = false;  // false when every state was pruned against the target
  Key key;
  std::vector<Decision> decisions;
};

// Pass 1: the (a, c) Pareto fronts, one layer per chunk, pruned against `target` by the lower
// bound. Only the current front is kept whole. Each front is thinned to at most `max_front`
// states (0 = no limit) or, when a candidate budget is given, to what the budget left affords
// for the chunks still to come. The minimum bound over the states thinned away goes into
// *min_dropped_bound.
PassResult TimePass(Solver& s, double target, double eps, size_t max_front, size_t min_front,
                    Thin thin, size_t* budget, ExactStats* stats, double* min_dropped_bound) {
  const size_t n = s.in.chunks.size();
  s.front.assign(1, s.start);
  s.trail.Reset();
  size_t remaining_width = 0;
  for (size_t j = 0; j < n; ++j) remaining_width += s.Width(j);
  for (size_t j = 0; j < n && !s.front.empty(); ++j) {
    size_t cap = max_front;
    if (budget != nullptr) {
      // Spread what is left evenly: a front of F states costs F * Width(j) candidates.
      const size_t afford = std::max<size_t>(min_front, *budget / std::max<size_t>(1, remaining_width));
      cap = cap == 0 ? afford : std::min(cap, afford);
    }
    remaining_width -= s.Width(j);
    const size_t n_made = ExpandStaircase(s, j);
    // The lower bound rises with a and c, so a state the staircase dropped has a bound no lower
    // than its dominator's: pruning against the target after the staircase drops the same states
    // as before it, and computes fewer bounds.
    size_t n_kept = 0;
    int hint = LowerBound::kWeights / 2;
    for (Node& x : s.candidates) {
      x.bound = s.bound(j + 1, x, &hint);
      if (!CannotBeat(x.bound, target)) s.candidates[n_kept++] = x;
    }
    s.candidates.resize(n_kept);
    stats->n_candidates += n_made;
    if (budget != nullptr) *budget -= std::min(*budget, n_made);
    PruneByTime(s.candidates, eps, cap, thin, &s.next, min_dropped_bound);
    s.front.swap(s.next);
    s.trail.AddLayer(s.front);
    stats->max_front = std::max(stats->max_front, s.front.size());
    stats->total_states += s.front.size();
  }
  PassResult result;
  if (s.front.empty() || s.trail.layer_begin.size() != n + 1) return result;
  const size_t best = BestFinal(s.in, s.front);
  result.found = true;
  result.key = FinalKey(s.in, s.front[best]);
  result.decisions = Backtrack(s.in, s.trail, best);
  return result;
}

}  // namespace

Plan SolveExact(const PlanInput& in, const ExactOptions& options, ExactStats* stats) {
  const size_t n = in.chunks.size();
  const double eps = std::max(0.0, options.epsilon_s);
  ExactStats local_stats;
  Solver solver(in);
  size_t budget_left = options.max_candidates;
  size_t* budget = options.max_candidates > 0 ? &budget_left : nullptr;

  // The plan to beat starts as computing everything, then becomes a quick pass's plan. Fronts
  // thinned to a few states give a plan close to the optimum in O(n) work, and the closer the
  // plan to beat, the more states the lower bound prunes in the full pass.
  Plan local = plan_internal::MakePlan("exact", in, plan_internal::ComputeAllDecisions(in));
  Key best_key{local.predicted.ttft_s, local.predicted.quality_rank_sum, local.predicted.streamed_bytes};
  std::vector<Decision> decisions = std::move(local.decisions);
  auto offer = [&](PassResult&& r) {
    if (r.found && r.key < best_key) {
      best_key = r.key;
      decisions = std::move(r.decisions);
    }
  };
  size_t total_width = 0;
  for (size_t j = 0; j < n; ++j) total_width += solver.Width(j);
  const size_t quick_front =
      budget == nullptr ? kQuickFront
                        : std::clamp(options.max_candidates / (kQuickShare * std::max<size_t>(1, total_width)),
                                     kMinQuickFront, kQuickFront);
  const bool quick_is_final = options.max_front > 0 && options.max_front <= quick_front;
  // Certificate. A state dominated exactly has a dominator whose completion is no worse, so by
  // induction from the last chunk its plans are covered by kept or dropped states. Every plan the
  // passes did not find therefore runs through a state dropped by another rule, or through one
  // pruned against a target no better than the best plan found. Its TTFT is at least that
  // state's lower bound, so the optimum is at least min(best found, least dropped bound).
  double min_dropped_bound = std::numeric_limits<double>::infinity();
  ExactStats quick_stats;
  double quick_dropped = std::numeric_limits<double>::infinity();
  offer(TimePass(solver, std::get<0>(best_key), eps, quick_is_final ? options.max_front : quick_front,
                 quick_front, Thin::kLowestBound, nullptr, &quick_stats, &quick_dropped));
  local_stats.n_candidates += quick_stats.n_candidates;
  if (budget != nullptr) budget_left -= std::min(budget_left, quick_stats.n_candidates);
  // A full pass whose budget affords fronts not much wider than the quick pass's would mostly
  // redo its work.
  const bool full_pass_affordable =
      budget == nullptr || budget_left / std::max<size_t>(1, total_width) >= 2 * quick_front;
  if (quick_is_final || !full_pass_affordable) {
    local_stats.max_front = quick_stats.max_front;
    local_stats.total_states = quick_stats.total_states;
    min_dropped_bound = quick_dropped;
  } else {
    // States of plans as fast as the quick one survive the pruning (their bounds do not exceed
    // its TTFT), so this pass finds the optimum unless it thins its fronts. An empty result
    // means rounding pruned them all, and the quick plan is kept.
    offer(TimePass(solver, std::get<0>(best_key), eps, options.max_front, quick_front, Thin::kEvenInC,
                   budget, &local_stats, &min_dropped_bound));
  }
  // A bound computed in floating point may sit a rounding error above the true optimum.
  local_stats.ttft_error_bound_s =
      std::isfinite(min_dropped_bound) ? std::max(0.0, std::get<0>(best_key) - min_dropped_bound) : 0.0;

  // Pass 2: among plans as fast as the best so far, the best in (quality_sum, bytes). Pass 1
  // cannot see these ties: a state that is later on the network but better in quality may end
  // at the same TTFT when the CPU hides the difference. States are pruned by full dominance and
  // by the lower bound against that TTFT. A state whose (quality_sum, bytes) already reaches the
  // best plan's is dropped too, because both sums only grow. The pass gives up past
  // max_tie_states states in a front or when the candidate budget runs out. When the budget
  // already forced pass 1 to thin its fronts, whatever it left would run out here too, and the
  // pass is not started.
  const double limit = std::get<0>(best_key);
  solver.front.assign(1, solver.start);
  solver.trail.Reset();
  const bool budget_thinned = budget != nullptr && std::isfinite(min_dropped_bound);
  bool complete = options.max_tie_states > 0 && !budget_thinned;
  int hint = LowerBound::kWeights / 2;
  for (size_t j = 0; j < n && complete; ++j) {
    const size_t cost = solver.front.size() * solver.Width(j);
    if (budget != nullptr && cost > budget_left) {
      complete = false;
      break;
    }
    if (budget != nullptr) budget_left -= cost;
    local_stats.n_candidates += cost;
    Expand(in, j, solver.useful, solver.front,
           [&](Node& x) {
             return std::tie(x.quality_sum, x.bytes) < std::tie(std::get<1>(best_key), std::get<2>(best_key)) &&
                    !CannotBeat(solver.bound(j + 1, x, &hint), limit);
           },
           &solver.scratch, &solver.segment_begin, &solver.candidates);
    PruneFully(solver.candidates, &solver.next);
    solver.front.swap(solver.next);
    solver.trail.AddLayer(solver.front);
    local_stats.max_tie_front = std::max(local_stats.max_tie_front, solver.front.size());
    // An empty front is a complete search too: nothing beats the best plan's tie-break.
    complete = solver.front.size() <= options.max_tie_states;
    if (solver.front.empty()) break;
  }
  local_stats.tie_break_complete = complete;
  if (complete && !solver.front.empty() && solver.trail.layer_begin.size() == n + 1) {
    const size_t tie_best = BestFinal(in, solver.front);
    if (FinalKey(in, solver.front[tie_best]) < best_key) {
      best_key = FinalKey(in, solver.front[tie_best]);
      decisions = Backtrack(in, solver.trail, tie_best);
    }
  }

  if (!complete && options.max_tie_states > 0 && budget == nullptr) {
    SPARKV_LOG_WARN("exact plan: the tie-break front passed %zu states; the TTFT is optimal but "
                    "the quality tie-break may not be", options.max_tie_states);
  }
  Plan plan = plan_internal::MakePlan("exact", in, std::move(decisions));
  assert(plan.predicted.ttft_s == std::get<0>(best_key));
  SPARKV_LOG_DEBUG("exact plan: %zu chunks, front up to %zu states (%zu in all), %zu candidates, "
                   "tie-break front up to %zu%s, TTFT within %.6f s of the optimum", n,
                   local_stats.max_front, local_stats.total_states, local_stats.n_candidates,
                   local_stats.max_tie_front, complete ? "" : " (gave up)",
                   local_stats.ttft_error_bound_s);
  if (stats != nullptr) *stats = local_stats;
  return plan;
}

namespace plan_internal {

std::unique_ptr<Planner> MakeExactPlanner() { return std::make_unique<ExactPlanner>(); }

}  // namespace plan_internal
}  // namespace sparkv
