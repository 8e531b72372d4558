// The planning strategies: registry, the shape of each baseline's plans, and how they rank.
#include <gtest/gtest.h>

#include <algorithm>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "plan/planner.h"
#include "plan_random_input.h"

namespace sparkv {
namespace {

using Path = Decision::Path;

Plan SolveOrDie(std::string_view strategy, const PlanInput& in) {
  Result<Plan> plan = SolvePlan(strategy, in);
  EXPECT_TRUE(plan.ok()) << plan.status().ToString();
  return plan.ok() ? std::move(plan).value() : Plan{};
}

TEST(PlannerRegistryTest, ListsEveryBuiltInStrategy) {
  const std::vector<std::string> names = PlannerNames();
  for (const char* expected : {"local", "stream", "split", "cake", "cachegen", "greedy", "exact"}) {
    EXPECT_NE(std::find(names.begin(), names.end(), expected), names.end()) << expected;
    const Planner* p = FindPlanner(expected);
    ASSERT_NE(p, nullptr) << expected;
    EXPECT_EQ(p->name(), expected);
    EXPECT_FALSE(p->description().empty());
  }
  EXPECT_EQ(FindPlanner("hybrid-of-the-future"), nullptr);
  EXPECT_EQ(SolvePlan("hybrid-of-the-future", PlanInput{}).status().code(), ErrorCode::kNotFound);
}

class EveryOtherChunk final : public Planner {
 public:
  std::string_view name() const override { return "test-every-other"; }
  std::string_view description() const override { return "streams odd chunks at level 0"; }
  Plan Solve(const PlanInput& in) const override {
    Plan p;
    p.strategy = std::string(name());
    for (size_t j = 0; j < in.chunks.size(); ++j) {
      p.decisions.push_back(j % 2 == 1 ? Decision{Path::kStream, 0} : Decision{Path::kCompute, -1});
    }
    p.predicted = Simulate(in, p.decisions);
    return p;
  }
};

TEST(PlannerRegistryTest, RegistersNewStrategiesByName) {
  ASSERT_TRUE(RegisterPlanner(std::make_unique<EveryOtherChunk>()).ok());
  EXPECT_FALSE(RegisterPlanner(std::make_unique<EveryOtherChunk>()).ok());  // name taken
  EXPECT_FALSE(RegisterPlanner(nullptr).ok());
  std::mt19937_64 rng(3);
  PlanInput in = testing::RandomPlanInput(rng, {});
  in.max_quality_rank = 10;
  const Plan p = SolveOrDie("test-every-other", in);
  EXPECT_EQ(p.predicted.n_streamed, 4);
}

TEST(PlannerRegistryTest, SolvePlanRejectsInvalidInput) {
  PlanInput in;
  in.chunks.push_back({0, 10, 5, {}});
  EXPECT_EQ(SolvePlan("local", in).status().code(), ErrorCode::kInvalidArgument);
}

// Pending chunks before some k are computed, from k on streamed at one codec.
bool IsPrefixComputeSuffixStream(const PlanInput& in, const Plan& p) {
  bool streaming = false;
  std::set<std::string> codecs;
  for (size_t j = 0; j < p.decisions.size(); ++j) {
    const Decision& d = p.decisions[j];
    if (d.path == Path::kStream) {
      streaming = true;
      codecs.insert(in.chunks[j].levels[static_cast<size_t>(d.level)].codec);
    } else if (d.path == Path::kCompute && streaming) {
      return false;
    }
  }
  return codecs.size() <= 1;
}

class RandomPlannerTest : public ::testing::TestWithParam<uint64_t> {};

TEST_P(RandomPlannerTest, BaselinesKeepTheirShape) {
  std::mt19937_64 rng(GetParam());
  const PlanInput in = testing::RandomPlanInput(rng, {.n_chunks = 16, .n_levels = 4});

  const Plan local = SolveOrDie("local", in);
  EXPECT_EQ(local.predicted.n_streamed, 0);
  EXPECT_EQ(local.predicted.n_computed, 16);

  // f16 has quality rank 0, allowed under any floor, so streaming needs no compute.
  const Plan stream = SolveOrDie("stream", in);
  EXPECT_EQ(stream.predicted.n_computed, 0);
  for (size_t j = 0; j < in.chunks.size(); ++j) {
    const int level = stream.decisions[j].level;
    for (size_t l = 0; l < in.chunks[j].levels.size(); ++l) {
      if (in.LevelAllowed(j, l)) {
        EXPECT_LE(in.chunks[j].levels[static_cast<size_t>(level)].bytes, in.chunks[j].levels[l].bytes);
      }
    }
  }
  const Plan cachegen = SolveOrDie("cachegen", in);
  EXPECT_EQ(cachegen.predicted.n_computed, 0);

  EXPECT_TRUE(IsPrefixComputeSuffixStream(in, SolveOrDie("split", in)));
  EXPECT_TRUE(IsPrefixComputeSuffixStream(in, SolveOrDie("cake", in)));
}

TEST_P(RandomPlannerTest, ExactIsNoWorseThanAnyOtherStrategy) {
  std::mt19937_64 rng(GetParam());
  const PlanInput in = testing::RandomPlanInput(rng, {.n_chunks = 24, .n_levels = 4});
  const Plan exact = SolveOrDie("exact", in);
  for (const std::string& name : PlannerNames()) {
    if (name == "exact" || name.starts_with("test-")) continue;
    const Plan other = SolveOrDie(name, in);
    // Equal up to rounding of the time-varying bandwidth integral (see plan_exact_test).
    EXPECT_LE(exact.predicted.ttft_s, other.predicted.ttft_s * (1 + 1e-12)) << name;
  }
}

TEST_P(RandomPlannerTest, SplitIsNoWorseThanComputeOrStreamAtOneLevel) {
  std::mt19937_64 rng(GetParam());
  PlanInput in = testing::RandomPlanInput(rng, {.n_chunks = 16, .n_levels = 3});
  in.level_codec = "q8";
  in.max_quality_rank = 10;
  const Plan split = SolveOrDie("split", in);
  EXPECT_LE(split.predicted.ttft_s, SolveOrDie("local", in).predicted.ttft_s);
  EXPECT_LE(split.predicted.ttft_s, SolveOrDie("stream", in).predicted.ttft_s);
  for (size_t j = 0; j < in.chunks.size(); ++j) {
    if (split.decisions[j].path == Path::kStream) {
      EXPECT_EQ(in.chunks[j].levels[static_cast<size_t>(split.decisions[j].level)].codec, "q8");
    }
  }
}

TEST_P(RandomPlannerTest, CacheGenMeetsTheLocalDeadlineWhenTheSmallestLevelsDo) {
  std::mt19937_64 rng(GetParam());
  const PlanInput in = testing::RandomPlanInput(rng, {.n_chunks = 16, .n_levels = 4});
  const double deadline = SolveOrDie("local", in).predicted.ttft_s;
  const Plan smallest = SolveOrDie("stream", in);
  const Plan cachegen = SolveOrDie("cachegen", in);
  if (smallest.predicted.ttft_s <= deadline) {
    EXPECT_LE(cachegen.predicted.ttft_s, deadline);
    EXPECT_LE(cachegen.predicted.quality_rank_sum, smallest.predicted.quality_rank_sum);
  } else {
    EXPECT_EQ(cachegen.decisions, smallest.decisions);
  }
}

TEST_P(RandomPlannerTest, EveryStrategyRespectsTheQualityFloor) {
  std::mt19937_64 rng(GetParam());
  PlanInput in = testing::RandomPlanInput(rng, {.n_chunks = 12, .n_levels = 4});
  in.max_quality_rank = 1;
  for (const std::string& name : PlannerNames()) {
    if (name.starts_with("test-")) continue;
    const Plan p = SolveOrDie(name, in);
    EXPECT_TRUE(ValidateDecisions(in, p.decisions).ok()) << name;
    for (size_t j = 0; j < in.chunks.size(); ++j) {
      if (p.decisions[j].path == Path::kStream) {
        EXPECT_LE(in.chunks[j].levels[static_cast<size_t>(p.decisions[j].level)].quality_rank, 1)
            << name;
      }
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Seeds, RandomPlannerTest, ::testing::Range<uint64_t>(0, 40));

TEST(GreedyPlannerTest, StreamsWhenTheBlobBeatsTheComputePath) {
  // Compute takes 1 s per chunk; a blob arrives in 0.1 s: every chunk is streamed.
  PlanInput in;
  for (int32_t j = 0; j < 4; ++j) in.chunks.push_back({j, 100 * j, 100 * (j + 1), {{"q8", 100, 0.0, 1}}});
  in.compute = {0.01, 0.0, 0.0};
  in.bandwidth = BandwidthModel::Constant(1000);
  EXPECT_EQ(SolveOrDie("greedy", in).predicted.n_streamed, 4);

  // A link 100x slower: computing is faster for every chunk.
  in.bandwidth = BandwidthModel::Constant(10);
  EXPECT_EQ(SolveOrDie("greedy", in).predicted.n_computed, 4);
}

TEST(LocalPlannerTest, LinkThatNeverDeliversLeavesOnlyCompute) {
  std::mt19937_64 rng(9);
  PlanInput in = testing::RandomPlanInput(rng, {.n_chunks = 6});
  in.bandwidth = BandwidthModel();  // no network
  const Plan exact = SolveOrDie("exact", in);
  EXPECT_EQ(exact.predicted.n_streamed, 0);
  EXPECT_EQ(exact.predicted.ttft_s, SolveOrDie("local", in).predicted.ttft_s);
  EXPECT_EQ(SolveOrDie("greedy", in).predicted.n_streamed, 0);
}

}  // namespace
}  // namespace sparkv
