// The exact planner against brute force, its tie-breaking, and re-planning from a partial load.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <random>
#include <vector>

#include "plan/exact_planner.h"
#include "plan/planner.h"
#include "plan_random_input.h"

namespace sparkv {
namespace {

using Path = Decision::Path;

// Every combination of compute or stream-at-an-allowed-level over the pending chunks, each
// predicted by Simulate(); the best under TimelineBetter.
Plan BruteForce(const PlanInput& in) {
  const size_t n = in.chunks.size();
  std::vector<std::vector<Decision>> options(n);
  for (size_t j = 0; j < n; ++j) {
    if (!in.IsPending(j)) {
      options[j] = {{Path::kCommitted, -1}};
      continue;
    }
    options[j] = {{Path::kCompute, -1}};
    for (size_t l = 0; l < in.chunks[j].levels.size(); ++l) {
      if (in.LevelAllowed(j, l)) options[j].push_back({Path::kStream, static_cast<int>(l)});
    }
  }
  std::vector<size_t> pick(n, 0);
  std::vector<Decision> d(n);
  Plan best;
  bool have = false;
  while (true) {
    for (size_t j = 0; j < n; ++j) d[j] = options[j][pick[j]];
    const Timeline t = Simulate(in, d);
    if (!have || TimelineBetter(t, best.predicted)) {
      best.decisions = d;
      best.predicted = t;
      have = true;
    }
    size_t j = 0;
    while (j < n && ++pick[j] == options[j].size()) pick[j++] = 0;
    if (j == n) break;
  }
  return best;
}

// With a constant bandwidth the recurrence is monotone even in floating point, so the exact
// planner must find the brute-force optimum bit for bit, tie-breaks included. With steps and
// traces the integral can round either way at a rate change; the optimum must then agree to
// rounding, and the tie-breaks are checked whenever the two TTFTs are equal.
void ExpectMatchesBruteForce(const PlanInput& in, bool constant_bandwidth) {
  const Plan exact = SolveExact(in, ExactOptions{}, nullptr);
  const Plan brute = BruteForce(in);
  EXPECT_EQ(Simulate(in, exact.decisions).ttft_s, exact.predicted.ttft_s);
  EXPECT_LE(brute.predicted.ttft_s, exact.predicted.ttft_s);  // brute force sees every plan
  if (constant_bandwidth) {
    EXPECT_EQ(exact.predicted.ttft_s, brute.predicted.ttft_s);
  } else {
    EXPECT_NEAR(exact.predicted.ttft_s, brute.predicted.ttft_s, 1e-9 * brute.predicted.ttft_s);
  }
  if (exact.predicted.ttft_s == brute.predicted.ttft_s) {
    EXPECT_EQ(exact.predicted.quality_rank_sum, brute.predicted.quality_rank_sum);
    EXPECT_EQ(exact.predicted.streamed_bytes, brute.predicted.streamed_bytes);
  }
}

class ExactVsBruteForceTest : public ::testing::TestWithParam<uint64_t> {};

TEST_P(ExactVsBruteForceTest, MatchesOnEightChunksWithThreeLevels) {
  std::mt19937_64 rng(GetParam());
  const PlanInput in = testing::RandomPlanInput(rng, {.n_chunks = 8, .n_levels = 3});
  ExpectMatchesBruteForce(in, in.bandwidth.steps().size() == 1);
}

TEST_P(ExactVsBruteForceTest, MatchesWithConstantBandwidth) {
  std::mt19937_64 rng(GetParam() + 1000);
  const PlanInput in = testing::RandomPlanInput(
      rng, {.n_chunks = 7, .n_levels = 4, .allow_varying_bandwidth = false});
  ExpectMatchesBruteForce(in, true);
}

INSTANTIATE_TEST_SUITE_P(Seeds, ExactVsBruteForceTest, ::testing::Range<uint64_t>(0, 60));

TEST(ExactPlannerTest, MatchesBruteForceOnTwelveChunks) {
  for (uint64_t seed = 0; seed < 3; ++seed) {
    std::mt19937_64 rng(seed + 77);
    const PlanInput in = testing::RandomPlanInput(rng, {.n_chunks = 12, .n_levels = 2});
    ExpectMatchesBruteForce(in, in.bandwidth.steps().size() == 1);
  }
}

TEST(ExactPlannerTest, MatchesBruteForceOnFourteenChunksWithOneLevel) {
  for (uint64_t seed = 0; seed < 3; ++seed) {
    std::mt19937_64 rng(seed + 99);
    const PlanInput in = testing::RandomPlanInput(rng, {.n_chunks = 14, .n_levels = 1});
    ExpectMatchesBruteForce(in, in.bandwidth.steps().size() == 1);
  }
}

// Exact tie-break at any cost: these inputs are small enough for it.
const ExactOptions kExactTies{.max_tie_states = std::numeric_limits<size_t>::max()};

void ExpectMatchesBruteForceWithExactTies(const PlanInput& in) {
  ExactStats stats;
  const Plan exact = SolveExact(in, kExactTies, &stats);
  const Plan brute = BruteForce(in);
  EXPECT_TRUE(stats.tie_break_complete);
  EXPECT_EQ(Simulate(in, exact.decisions).ttft_s, exact.predicted.ttft_s);
  EXPECT_NEAR(exact.predicted.ttft_s, brute.predicted.ttft_s, 1e-9 * brute.predicted.ttft_s);
  if (exact.predicted.ttft_s == brute.predicted.ttft_s) {
    EXPECT_EQ(exact.predicted.quality_rank_sum, brute.predicted.quality_rank_sum);
    EXPECT_EQ(exact.predicted.streamed_bytes, brute.predicted.streamed_bytes);
  }
}

class ExactInputClassTest : public ::testing::TestWithParam<uint64_t> {};

TEST_P(ExactInputClassTest, MatchesWithBandwidthSteps) {
  std::mt19937_64 rng(GetParam() + 2000);
  PlanInput in = testing::RandomPlanInput(rng, {.n_chunks = 9, .n_levels = 3});
  // A fast link that drops to a tenth of its rate, and an outage, during the load.
  const double rate = in.bandwidth.RateAt(0.0) > 0.0 ? in.bandwidth.RateAt(0.0) : 1e8;
  in.bandwidth = BandwidthModel::Steps({{0.0, rate}, {0.2, rate / 10}, {0.5, 0.0}, {0.6, rate}})
                     .value();
  ExpectMatchesBruteForceWithExactTies(in);
}

TEST_P(ExactInputClassTest, MatchesReplanWithCommittedChunks) {
  std::mt19937_64 rng(GetParam() + 3000);
  PlanInput in = testing::RandomPlanInput(rng, {.n_chunks = 10, .n_levels = 3});
  std::uniform_int_distribution<int> state(0, 3);
  in.progress.assign(in.chunks.size(), {});
  for (size_t j = 0; j < 3; ++j) {
    in.progress[j].state = static_cast<ChunkProgress::State>(state(rng));
    if (in.progress[j].state == ChunkProgress::State::kStreaming) {
      in.progress[j].arrival_s = 0.05 * static_cast<double>(j + 1);
      in.progress[j].decode_seconds = 0.01;
    }
  }
  in.start_time_s = 0.02;
  in.network_busy_until_s = 0.04;
  in.cpu_busy_until_s = 0.03;
  ASSERT_TRUE(ValidatePlanInput(in).ok());
  ExpectMatchesBruteForceWithExactTies(in);
}

TEST_P(ExactInputClassTest, MatchesUnderAQualityFloor) {
  std::mt19937_64 rng(GetParam() + 4000);
  PlanInput in = testing::RandomPlanInput(rng, {.n_chunks = 9, .n_levels = 4});
  in.max_quality_rank = static_cast<int>(GetParam() % 3);
  const Plan exact = SolveExact(in, kExactTies, nullptr);
  for (size_t j = 0; j < in.chunks.size(); ++j) {
    if (exact.decisions[j].path != Path::kStream) continue;
    EXPECT_LE(in.chunks[j].levels[static_cast<size_t>(exact.decisions[j].level)].quality_rank,
              in.max_quality_rank);
  }
  ExpectMatchesBruteForceWithExactTies(in);
}

TEST_P(ExactInputClassTest, MatchesWithDecodeOnASpareCore) {
  std::mt19937_64 rng(GetParam() + 5000);
  PlanInput in = testing::RandomPlanInput(rng, {.n_chunks = 9, .n_levels = 3});
  in.decode_on_spare_core = true;
  ExpectMatchesBruteForceWithExactTies(in);
}

TEST_P(ExactInputClassTest, BreaksTtftTiesLikeBruteForce) {
  // Compute is slow and the link fast, so the CPU hides most transfers. Many plans then share the
  // optimal TTFT and only quality and bytes separate them. Some chunks also get a copy of a level
  // and a level worse in every way.
  std::mt19937_64 rng(GetParam() + 6000);
  PlanInput in = testing::RandomPlanInput(
      rng, {.n_chunks = 8, .n_levels = 3, .allow_varying_bandwidth = false});
  in.bandwidth = BandwidthModel::Constant(in.bandwidth.RateAt(0.0) * 8);
  for (size_t j = 0; j < in.chunks.size(); j += 3) {
    in.chunks[j].levels.push_back(in.chunks[j].levels[1]);   // an exact copy
    LevelOption worse = in.chunks[j].levels[2];
    worse.bytes += 1000;
    worse.quality_rank += 1;
    in.chunks[j].levels.push_back(worse);  // dominated by level 2
  }
  ExactStats stats;
  const Plan exact = SolveExact(in, kExactTies, &stats);
  const Plan brute = BruteForce(in);
  EXPECT_TRUE(stats.tie_break_complete);
  EXPECT_EQ(exact.predicted.ttft_s, brute.predicted.ttft_s);
  EXPECT_EQ(exact.predicted.quality_rank_sum, brute.predicted.quality_rank_sum);
  EXPECT_EQ(exact.predicted.streamed_bytes, brute.predicted.streamed_bytes);
}

INSTANTIATE_TEST_SUITE_P(Seeds, ExactInputClassTest, ::testing::Range<uint64_t>(0, 12));

TEST(ExactPlannerTest, DefaultTieBreakMatchesUnlimited) {
  std::mt19937_64 rng(42);
  const PlanInput in = testing::RandomPlanInput(
      rng, {.n_chunks = 24, .n_levels = 4, .allow_varying_bandwidth = false});
  ExactStats by_default, unlimited;
  const Plan a = SolveExact(in, {}, &by_default);
  const Plan b = SolveExact(in, kExactTies, &unlimited);
  ASSERT_TRUE(unlimited.tie_break_complete);
  if (by_default.tie_break_complete) {
    EXPECT_EQ(a.predicted.quality_rank_sum, b.predicted.quality_rank_sum);
    EXPECT_EQ(a.predicted.streamed_bytes, b.predicted.streamed_bytes);
  }
  EXPECT_EQ(a.predicted.ttft_s, b.predicted.ttft_s);
}

TEST(ExactPlannerTest, PrefersLosslessWhenTheCpuHidesTheTransfer) {
  // Compute is slow (1 s per chunk) and both levels of chunk 1 arrive long before the CPU is
  // done with chunk 0, so they tie on TTFT; the lossless one must win the tie.
  PlanInput in;
  in.chunks.push_back({0, 0, 100, {}});
  in.chunks.push_back({1, 100, 200, {{"q4", 100, 0.0, 2}, {"f16", 400, 0.0, 0}}});
  in.compute = {0.01, 0.0, 0.0};
  in.bandwidth = BandwidthModel::Constant(10000);
  in.decode_on_spare_core = true;
  const Plan p = SolveExact(in, ExactOptions{}, nullptr);
  EXPECT_EQ(p.decisions[0].path, Path::kCompute);
  ASSERT_EQ(p.decisions[1].path, Path::kStream);
  EXPECT_EQ(in.chunks[1].levels[static_cast<size_t>(p.decisions[1].level)].codec, "f16");
}

TEST(ExactPlannerTest, PrefersFewerBytesWhenQualityTies) {
  PlanInput in;
  in.chunks.push_back({0, 0, 100, {}});
  in.chunks.push_back({1, 100, 200, {{"q8", 300, 0.0, 1}, {"q8z", 200, 0.0, 1}}});
  in.compute = {0.01, 0.0, 0.0};
  in.bandwidth = BandwidthModel::Constant(10000);
  in.decode_on_spare_core = true;
  const Plan p = SolveExact(in, ExactOptions{}, nullptr);
  ASSERT_EQ(p.decisions[1].path, Path::kStream);
  EXPECT_EQ(p.decisions[1].level, 1);
}

TEST(ExactPlannerTest, ThinnedFrontStaysWithinItsReportedBound) {
  for (uint64_t seed = 0; seed < 8; ++seed) {
    std::mt19937_64 rng(seed + 500);
    const PlanInput in = testing::RandomPlanInput(
        rng, {.n_chunks = 24, .n_levels = 4, .allow_varying_bandwidth = false});
    ExactStats exact_stats, beam_stats, even_stats;
    const Plan exact = SolveExact(in, {}, &exact_stats);
    // max_front up to 16 keeps a beam of the lowest bounds; above, states spread evenly in c.
    const Plan beam = SolveExact(in, {.epsilon_s = 1e-3, .max_front = 4}, &beam_stats);
    const Plan even = SolveExact(in, {.max_front = 24}, &even_stats);
    EXPECT_EQ(exact_stats.ttft_error_bound_s, 0.0);
    for (const auto& [approx, stats] : {std::pair{&beam, &beam_stats}, std::pair{&even, &even_stats}}) {
      EXPECT_GE(approx->predicted.ttft_s, exact.predicted.ttft_s);
      EXPECT_LE(approx->predicted.ttft_s, exact.predicted.ttft_s + stats->ttft_error_bound_s + 1e-9);
      EXPECT_LE(stats->max_front, 24u);
    }
  }
}

TEST(ExactPlannerTest, BudgetedSolveStaysCertified) {
  for (uint64_t seed = 0; seed < 6; ++seed) {
    std::mt19937_64 rng(seed + 900);
    const PlanInput small = testing::RandomPlanInput(rng, {.n_chunks = 10, .n_levels = 4});
    ExactStats small_stats;
    const Plan small_exact = SolveExact(small, {}, nullptr);
    const Plan small_budget = SolveExact(small, {.max_candidates = kDefaultExactBudget}, &small_stats);
    EXPECT_EQ(small_budget.predicted.ttft_s, small_exact.predicted.ttft_s);
    EXPECT_EQ(small_stats.ttft_error_bound_s, 0.0);

    // Unlimited solves of random inputs grow fast with the chunk count, so "large" stays small
    // and the budget smaller still.
    const PlanInput large = testing::RandomPlanInput(
        rng, {.n_chunks = 32, .n_levels = 4, .allow_varying_bandwidth = false});
    ExactStats large_stats;
    const Plan large_exact = SolveExact(large, {}, nullptr);
    const Plan large_budget = SolveExact(large, {.max_candidates = 1000}, &large_stats);
    EXPECT_GE(large_budget.predicted.ttft_s, large_exact.predicted.ttft_s);
    EXPECT_LE(large_budget.predicted.ttft_s,
              large_exact.predicted.ttft_s + large_stats.ttft_error_bound_s + 1e-9);
    // The budget is spent, give or take the smallest front allowed per chunk.
    EXPECT_LE(large_stats.n_candidates, 1000u + 2u * 16u * 5u * 32u);
  }
}

// The timeline of `plan` cut after chunk k: chunks [0, k) committed (the last one still
// arriving if it was streamed), both paths busy as predicted.
PlanInput StateAfter(const PlanInput& in, const Plan& plan, size_t k) {
  PlanInput mid = in;
  const Timeline& t = plan.predicted;
  mid.progress.assign(in.chunks.size(), {});
  double network = InitialNetworkTime(in);
  double cpu = InitialCpuTime(in);
  for (size_t j = 0; j < k; ++j) {
    mid.progress[j].state = ChunkProgress::State::kResident;
    if (plan.decisions[j].path == Path::kStream) network = t.chunks[j].end_s;
    if (j + 1 < k) cpu = t.chunks[j].resident_s;
  }
  if (k > 0 && plan.decisions[k - 1].path == Path::kStream) {
    const LevelOption& l = in.chunks[k - 1].levels[static_cast<size_t>(plan.decisions[k - 1].level)];
    mid.progress[k - 1] = {ChunkProgress::State::kStreaming, t.chunks[k - 1].end_s, l.decode_seconds};
  } else if (k > 0) {
    cpu = t.chunks[k - 1].resident_s;
  }
  mid.start_time_s = std::min(network, cpu);
  mid.network_busy_until_s = network;
  mid.cpu_busy_until_s = cpu;
  return mid;
}

TEST(ReplanTest, ResolvingFromTheInitialStateGivesTheSamePlan) {
  for (uint64_t seed = 0; seed < 10; ++seed) {
    std::mt19937_64 rng(seed + 300);
    const PlanInput in = testing::RandomPlanInput(rng, {.n_chunks = 16, .n_levels = 3});
    PlanInput again = in;
    again.progress.assign(in.chunks.size(), {});  // all pending, stated explicitly
    again.start_time_s = 0.0;
    again.network_busy_until_s = 0.0;
    again.cpu_busy_until_s = 0.0;
    for (const std::string& name : PlannerNames()) {
      if (name.starts_with("test-")) continue;
      const Plan first = FindPlanner(name)->Solve(in);
      const Plan second = FindPlanner(name)->Solve(again);
      EXPECT_EQ(first.decisions, second.decisions) << name;
      EXPECT_EQ(first.predicted.ttft_s, second.predicted.ttft_s) << name;
    }
  }
}

TEST(ReplanTest, ResolvingMidLoadOnPredictionKeepsTheOptimum) {
  // When execution goes exactly as predicted, the rest of the optimal plan is still optimal
  // from any intermediate state, so re-solving must predict the same TTFT.
  for (uint64_t seed = 0; seed < 20; ++seed) {
    std::mt19937_64 rng(seed + 400);
    const PlanInput in = testing::RandomPlanInput(
        rng, {.n_chunks = 12, .n_levels = 3, .allow_varying_bandwidth = false});
    const Plan plan = SolveExact(in, {}, nullptr);
    for (size_t k = 0; k <= in.chunks.size(); k += 3) {
      const PlanInput mid = StateAfter(in, plan, k);
      ASSERT_TRUE(ValidatePlanInput(mid).ok());
      const Plan again = SolveExact(mid, {}, nullptr);
      EXPECT_NEAR(again.predicted.ttft_s, plan.predicted.ttft_s, 1e-12 * plan.predicted.ttft_s)
          << "seed " << seed << " k " << k;
      for (size_t j = 0; j < k; ++j) EXPECT_EQ(again.decisions[j].path, Path::kCommitted);
    }
  }
}

TEST(ReplanTest, SlowerLinkMovesChunksToCompute) {
  // After a bandwidth collapse mid-load, re-planning streams fewer of the remaining chunks.
  std::mt19937_64 rng(11);
  PlanInput in = testing::RandomPlanInput(
      rng, {.n_chunks = 16, .n_levels = 2, .allow_varying_bandwidth = false});
  in.max_quality_rank = 10;
  in.bandwidth = BandwidthModel::Constant(in.chunks[0].levels[0].bytes /
                                          in.compute.ChunkSeconds(0, in.chunks[0].end));
  const Plan plan = SolveExact(in, {}, nullptr);
  ASSERT_GT(plan.predicted.n_streamed, 0);
  PlanInput mid = StateAfter(in, plan, 4);
  const int32_t before = SolveExact(mid, {}, nullptr).predicted.n_streamed;
  mid.bandwidth = BandwidthModel::Constant(1.0);  // 1 B/s
  const Plan after = SolveExact(mid, {}, nullptr);
  EXPECT_EQ(after.predicted.n_streamed, 0);
  EXPECT_GT(before, 0);
}

}  // namespace
}  // namespace sparkv
