// Tests of the load controller and the discrete-event simulator that drives it. Static
// strategies realize their plan when its prediction is right. Adaptive ones react to bandwidth
// steps, outages and a slow device. Failures turn chunks into compute chunks.
#include <gtest/gtest.h>

#include <memory>
#include <random>
#include <utility>

#include "net/link.h"
#include "plan/planner.h"
#include "plan_random_input.h"
#include "runtime/controller.h"
#include "runtime/simulator.h"
#include "runtime/strategy.h"
#include "test_support.h"

namespace sparkv {
namespace {

Strategy Get(const std::string& name) {
  Result<Strategy> s = FindStrategy(name);
  EXPECT_TRUE(s.ok()) << s.status().ToString();
  return *s;
}

// Makes n chunks of 256 tokens, each computed in 1 s or streamed as one `bytes` blob without
// decode cost.
PlanInput UniformInput(int n, uint64_t bytes, double initial_bytes_per_s) {
  PlanInput in;
  in.compute = {1.0 / 256, 0.0, 0.0};
  for (int j = 0; j < n; ++j) {
    ChunkSpec spec{j, j * 256, (j + 1) * 256, {}};
    spec.levels.push_back({"q8", bytes, 0.0, 1});
    in.chunks.push_back(spec);
  }
  in.bandwidth = BandwidthModel::Constant(initial_bytes_per_s);
  return in;
}

TEST(SimulatorTest, StaticPlansMeetTheirPrediction) {
  std::mt19937_64 rng(7);
  for (int trial = 0; trial < 60; ++trial) {
    testing::RandomInputOptions options;
    options.n_chunks = 3 + trial % 10;
    SimScenario scenario;
    scenario.input = testing::RandomPlanInput(rng, options);
    for (ChunkSpec& spec : scenario.input.chunks) {
      for (LevelOption& level : spec.levels) level.decode_seconds = 0.0;
    }
    scenario.actual = scenario.input.bandwidth;
    scenario.timeout_s = 1e9;
    for (const char* name : {"local", "stream", "split", "greedy", "sparkv"}) {
      Result<SimResult> result = SimulateLoad(Get(name), scenario);
      ASSERT_TRUE(result.ok()) << name << ": " << result.status().ToString();
      const double predicted = result->initial_plan.predicted.ttft_s;
      EXPECT_NEAR(result->ttft_s, predicted, 1e-9 * std::max(1.0, predicted)) << name << " trial " << trial;
      EXPECT_EQ(result->n_streamed, result->initial_plan.predicted.n_streamed) << name << " trial " << trial;
      EXPECT_EQ(result->stats.n_replans, 0) << name;
    }
  }
}

TEST(SimulatorTest, HindsightBoundsEveryStrategy) {
  std::mt19937_64 rng(11);
  for (int trial = 0; trial < 30; ++trial) {
    testing::RandomInputOptions options;
    options.n_chunks = 4 + trial % 8;
    SimScenario scenario;
    scenario.input = testing::RandomPlanInput(rng, options);
    // Without decode costs the recurrence covers every schedule the executor can produce; a
    // decode could otherwise run in an idle gap earlier than the recurrence's order allows.
    for (ChunkSpec& spec : scenario.input.chunks) {
      for (LevelOption& level : spec.levels) level.decode_seconds = 0.0;
    }
    scenario.actual = scenario.input.bandwidth;
    // The planner starts from a constant rate, while the link follows the random model.
    scenario.input.bandwidth = BandwidthModel::Constant(scenario.actual.RateAt(0.0) + 1.0);
    scenario.timeout_s = 1e9;
    Result<Plan> optimum = HindsightOptimum(scenario);
    ASSERT_TRUE(optimum.ok()) << optimum.status().ToString();
    for (const char* name : {"local", "stream", "cake", "sparkv", "sparkv-adaptive"}) {
      Result<SimResult> result = SimulateLoad(Get(name), scenario);
      ASSERT_TRUE(result.ok()) << name << ": " << result.status().ToString();
      // Both sides integrate the same bandwidth model, so the bound holds up to rounding.
      EXPECT_GE(result->ttft_s, optimum->predicted.ttft_s * (1 - 1e-9)) << name << " trial " << trial;
      EXPECT_EQ(result->n_streamed + result->n_computed, options.n_chunks) << name;
    }
  }
}

TEST(SimulatorTest, AdaptiveFollowsBandwidthStep) {
  // 24 chunks of 1 s compute; 2 MB per chunk. At 16 MB/s streaming everything takes 3 s; at a
  // third of that the link drops to 0.2 MB/s, where a chunk takes 10 s to arrive.
  SimScenario scenario;
  scenario.input = UniformInput(24, 2'000'000, 16e6);
  scenario.actual = BandwidthModel::Steps({{0.0, 16e6}, {1.0, 0.2e6}}).value();
  Result<SimResult> fixed = SimulateLoad(Get("sparkv"), scenario);
  Result<SimResult> adaptive = SimulateLoad(Get("sparkv-adaptive"), scenario);
  Result<Plan> optimum = HindsightOptimum(scenario);
  ASSERT_TRUE(fixed.ok() && adaptive.ok() && optimum.ok());
  EXPECT_GT(fixed->initial_plan.predicted.n_streamed, 18) << "at 16 MB/s the first plan streams most chunks";
  EXPECT_GT(adaptive->stats.n_replans, 0);
  EXPECT_GT(adaptive->n_computed, 10) << "after the step most chunks must move to the compute path";
  EXPECT_LT(adaptive->ttft_s * 1.2, fixed->ttft_s);
  EXPECT_LT(adaptive->ttft_s, optimum->predicted.ttft_s * 1.25);
}

TEST(SimulatorTest, AdaptiveComputesThroughOutage) {
  SimScenario scenario;
  scenario.input = UniformInput(6, 1'000'000, 4e6);
  // The link dies after half a second and never comes back.
  scenario.actual = BandwidthModel::Steps({{0.0, 4e6}, {0.5, 0.0}}).value();
  scenario.timeout_s = 5.0;
  Result<SimResult> fixed = SimulateLoad(Get("stream"), scenario);
  Result<SimResult> adaptive = SimulateLoad(Get("sparkv-adaptive"), scenario);
  ASSERT_TRUE(fixed.ok()) << fixed.status().ToString();
  ASSERT_TRUE(adaptive.ok()) << adaptive.status().ToString();
  EXPECT_GT(fixed->stats.n_fallback, 0);
  EXPECT_EQ(fixed->n_streamed + fixed->n_computed, 6);
  EXPECT_GT(adaptive->stats.n_cancelled + adaptive->stats.n_moved, 0);
  EXPECT_LT(adaptive->ttft_s, fixed->ttft_s);
}

TEST(SimulatorTest, SlowTransferOutlastsStallTimeout) {
  SimScenario scenario;
  scenario.input = UniformInput(2, 1'000'000, 1e5);  // 10 s per chunk on the link
  scenario.actual = scenario.input.bandwidth;
  scenario.timeout_s = 5.0;
  Result<SimResult> fixed = SimulateLoad(Get("stream"), scenario);
  ASSERT_TRUE(fixed.ok()) << fixed.status().ToString();
  EXPECT_EQ(fixed->stats.n_fallback, 0);
  EXPECT_EQ(fixed->n_streamed, 2);
  EXPECT_GE(fixed->ttft_s, 20.0);  // both chunks crossed the link in full
}

TEST(SimulatorTest, AdaptiveStreamsMoreOnSlowDevice) {
  SimScenario scenario;
  scenario.input = UniformInput(16, 1'000'000, 1e6);  // a chunk takes 1 s either way
  scenario.actual = scenario.input.bandwidth;
  scenario.device_slowdown = 3.0;
  Result<SimResult> fixed = SimulateLoad(Get("sparkv"), scenario);
  Result<SimResult> adaptive = SimulateLoad(Get("sparkv-adaptive"), scenario);
  ASSERT_TRUE(fixed.ok() && adaptive.ok());
  EXPECT_GT(adaptive->n_streamed, fixed->n_streamed);
  EXPECT_LT(adaptive->ttft_s, fixed->ttft_s);
}

TEST(SimulatorTest, AdaptiveMeasuresLinkAfterBadProbe) {
  SimScenario scenario;
  // The probe saw an outage, so the first plan computes everything; the link then runs at 4 MB/s.
  scenario.input = UniformInput(8, 1'000'000, 1.0);
  scenario.actual = BandwidthModel::Constant(4e6);
  Result<SimResult> fixed = SimulateLoad(Get("sparkv"), scenario);
  Result<SimResult> adaptive = SimulateLoad(Get("sparkv-adaptive"), scenario);
  ASSERT_TRUE(fixed.ok() && adaptive.ok());
  EXPECT_EQ(fixed->n_streamed, 0);
  EXPECT_GT(adaptive->n_streamed, 2);
  EXPECT_LT(adaptive->ttft_s, fixed->ttft_s);
}

TEST(SimulatorTest, CakeBoundaryFloats) {
  SimScenario scenario;
  scenario.input = UniformInput(10, 1'000'000, 1e6);
  // The planner expects 1 MB/s, the link gives 3 MB/s: Cake's stream path keeps taking chunks
  // from the back until the paths meet, so it streams more than its plan chose.
  scenario.actual = BandwidthModel::Constant(3e6);
  Result<SimResult> cake = SimulateLoad(Get("cake"), scenario);
  ASSERT_TRUE(cake.ok());
  EXPECT_GT(cake->n_streamed, cake->initial_plan.predicted.n_streamed);
  EXPECT_LT(cake->ttft_s, cake->initial_plan.predicted.ttft_s);
}

TEST(ControllerTest, DataErrorComputesChunk) {
  PlanInput in = UniformInput(3, 1000, 1e9);  // streaming is nearly free: every chunk streams
  auto controller = LoadController::Create(in, Get("stream")).value();
  std::optional<LoadController::Transfer> t = controller->NextTransfer(0.0);
  ASSERT_TRUE(t.has_value());
  EXPECT_EQ(t->chunk, 0);
  EXPECT_FALSE(controller->OnTransferEnd(0, LoadController::TransferResult::kDataError, 0, 0.1, 0.1));
  EXPECT_EQ(controller->stats().n_fallback, 1);
  LoadController::ComputeStep step = controller->NextCompute(0.1);
  EXPECT_EQ(step.kind, LoadController::ComputeStep::Kind::kCompute);
  EXPECT_EQ(step.chunk, 0);
  // The stream path goes on with the other chunks.
  t = controller->NextTransfer(0.1);
  ASSERT_TRUE(t.has_value());
  EXPECT_EQ(t->chunk, 1);
}

TEST(ControllerTest, TransportErrorAbandonsStream) {
  auto controller = LoadController::Create(UniformInput(4, 1000, 1e9), Get("stream")).value();
  ASSERT_TRUE(controller->NextTransfer(0.0).has_value());
  controller->OnTransferEnd(0, LoadController::TransferResult::kTransportError, 0, 0.1, 0.1);
  EXPECT_TRUE(controller->StreamPathDone());
  EXPECT_FALSE(controller->NextTransfer(0.1).has_value());
  EXPECT_EQ(controller->stats().n_fallback, 4);
  for (int32_t j = 0; j < 4; ++j) {
    LoadController::ComputeStep step = controller->NextCompute(1.0 + j);
    ASSERT_EQ(step.kind, LoadController::ComputeStep::Kind::kCompute);
    EXPECT_EQ(step.chunk, j);
    controller->OnComputeEnd(j, 2.0 + j);
  }
  EXPECT_EQ(controller->NextCompute(10.0).kind, LoadController::ComputeStep::Kind::kDone);
}

// Two chunks of 1 s compute and 1 MB, both streamed at a predicted 4 MB/s, fetched from the back.
// Chunk 1 arrives at 0.25 s; chunk 0's transfer has 100 kB by 0.3 s and then stalls. Returns the
// controller at 0.3 s.
std::unique_ptr<LoadController> StalledLastTransfer() {
  auto controller = LoadController::Create(UniformInput(2, 1'000'000, 4e6), Get("sparkv-adaptive")).value();
  EXPECT_EQ(controller->initial_plan().predicted.n_streamed, 2);
  std::optional<LoadController::Transfer> t = controller->NextTransfer(0.0);
  EXPECT_TRUE(t.has_value());
  if (t) {
    EXPECT_EQ(t->chunk, 1);
  }
  EXPECT_TRUE(controller->OnTransferProgress(1, 900'000, 0.25, 0.25));
  EXPECT_TRUE(controller->OnTransferEnd(1, LoadController::TransferResult::kOk, 1'000'000, 0.25, 0.25));
  controller->OnDecodeEnd(1, true, 0.25);
  t = controller->NextTransfer(0.25);
  EXPECT_TRUE(t.has_value());
  if (t) {
    EXPECT_EQ(t->chunk, 0);
  }
  EXPECT_TRUE(controller->OnTransferProgress(0, 100'000, 0.05, 0.3));
  return controller;
}

TEST(ControllerTest, IdleLinkRacesStalledTransfer) {
  std::unique_ptr<LoadController> controller = StalledLastTransfer();
  // The compute path waits while the transfer looks healthy...
  EXPECT_EQ(controller->NextCompute(0.3).kind, LoadController::ComputeStep::Kind::kWait);
  // ...and takes the chunk once its bytes stop coming: 0.9 MB left at any plausible rate now
  // ends later than one second of prefill. The link has nothing else to carry, so the transfer
  // goes on: the first path to finish provides the chunk.
  LoadController::ComputeStep step = controller->NextCompute(30.0);
  ASSERT_EQ(step.kind, LoadController::ComputeStep::Kind::kCompute);
  EXPECT_EQ(step.chunk, 0);
  EXPECT_TRUE(controller->OnTransferProgress(0, 100'000, 29.75, 30.0)) << "the raced transfer must go on";
  EXPECT_EQ(controller->stats().n_raced, 1);
  EXPECT_EQ(controller->stats().n_cancelled, 0);
  // The prefill wins: the transfer is cancelled at its next report, and its end drops the blob.
  controller->OnComputeEnd(0, 31.0);
  EXPECT_TRUE(controller->AllResident());
  EXPECT_FALSE(controller->OnTransferProgress(0, 100'000, 30.8, 31.05));
  EXPECT_FALSE(controller->OnTransferEnd(0, LoadController::TransferResult::kCancelled, 100'000, 30.8, 31.05));
}

// Three chunks of 1 s compute and 1 MB at a predicted 4 MB/s, chunk 1 without a level: the plan
// streams chunks 0 and 2 and computes chunk 1, so the stream path fetches in index order. Returns
// the controller with chunk 0's transfer issued at 0 s and stalled since 0.05 s.
std::unique_ptr<LoadController> StalledFirstOfTwoTransfers() {
  PlanInput in = UniformInput(3, 1'000'000, 4e6);
  in.chunks[1].levels.clear();
  auto controller = LoadController::Create(in, Get("sparkv-adaptive")).value();
  EXPECT_EQ(controller->initial_plan().decisions[0].path, Decision::Path::kStream);
  EXPECT_EQ(controller->initial_plan().decisions[2].path, Decision::Path::kStream);
  std::optional<LoadController::Transfer> t = controller->NextTransfer(0.0);
  EXPECT_TRUE(t.has_value());
  if (t) {
    EXPECT_EQ(t->chunk, 0);
  }
  EXPECT_TRUE(controller->OnTransferProgress(0, 100'000, 0.05, 0.05));
  return controller;
}

TEST(ControllerTest, BusyLinkCancelsStalledTransfer) {
  std::unique_ptr<LoadController> controller = StalledFirstOfTwoTransfers();
  // Chunk 2 still waits for the link, so the compute path's take frees it.
  LoadController::ComputeStep step = controller->NextCompute(30.0);
  ASSERT_EQ(step.kind, LoadController::ComputeStep::Kind::kCompute);
  EXPECT_EQ(step.chunk, 0);
  EXPECT_FALSE(controller->OnTransferProgress(0, 100'000, 29.95, 30.0)) << "the transfer must be cancelled";
  EXPECT_FALSE(controller->OnTransferEnd(0, LoadController::TransferResult::kCancelled, 100'000, 29.95, 30.0));
  EXPECT_EQ(controller->stats().n_cancelled, 1);
  EXPECT_EQ(controller->stats().n_raced, 0);
  std::optional<LoadController::Transfer> t = controller->NextTransfer(30.0);
  ASSERT_TRUE(t.has_value());
  EXPECT_EQ(t->chunk, 2);
}

// As StalledLastTransfer, and at 30 s the compute path races chunk 0. Returns the controller then.
std::unique_ptr<LoadController> RacedChunkZero() {
  std::unique_ptr<LoadController> controller = StalledLastTransfer();
  const LoadController::ComputeStep step = controller->NextCompute(30.0);
  EXPECT_EQ(step.kind, LoadController::ComputeStep::Kind::kCompute);
  EXPECT_TRUE(controller->Racing(0));
  return controller;
}

TEST(ControllerTest, RacedBlobStopsPrefill) {
  std::unique_ptr<LoadController> controller = RacedChunkZero();
  // The link recovers: the blob is here during the first piece, with 224 tokens (0.875 s) of
  // prefill after it, far more than its decode.
  ASSERT_TRUE(controller->OnTransferProgress(0, 1'000'000, 30.0, 30.05));
  EXPECT_TRUE(controller->OnTransferArrived(0, 30.05)) << "the prefill must stop at once";
  EXPECT_TRUE(controller->AwaitingPrefillStop(0)) << "the compute path still writes the chunk's rows";
  // The piece ended before the compute path saw the request: it stops at the boundary.
  EXPECT_FALSE(controller->ContinuePrefill(0, 32, 30.125)) << "the prefill must stop at its piece boundary";
  EXPECT_FALSE(controller->AwaitingPrefillStop(0));
  EXPECT_TRUE(controller->OnTransferEnd(0, LoadController::TransferResult::kOk, 1'000'000, 30.0, 30.125));
  controller->OnDecodeEnd(0, true, 30.13);
  EXPECT_TRUE(controller->AllResident());
  EXPECT_EQ(controller->stats().n_raced, 1);
  EXPECT_EQ(controller->stats().n_abandoned, 1);
}

TEST(ControllerTest, RacedBlobInterruptsPiece) {
  std::unique_ptr<LoadController> controller = RacedChunkZero();
  ASSERT_TRUE(controller->OnTransferProgress(0, 1'000'000, 30.0, 30.05));
  ASSERT_TRUE(controller->OnTransferArrived(0, 30.05));
  // The engine stopped inside the first piece: no token of the chunk was computed.
  controller->OnPrefillInterrupted(0, 0, 30.06);
  EXPECT_FALSE(controller->AwaitingPrefillStop(0));
  EXPECT_TRUE(controller->OnTransferEnd(0, LoadController::TransferResult::kOk, 1'000'000, 30.0, 30.06));
  EXPECT_EQ(controller->NextCompute(30.06).kind, LoadController::ComputeStep::Kind::kWait)
      << "the chunk decodes; the compute path has nothing to do";
  controller->OnDecodeEnd(0, true, 30.07);
  EXPECT_TRUE(controller->AllResident());
  EXPECT_EQ(controller->stats().n_abandoned, 1);
}

TEST(ControllerTest, UnrequestedInterruptResumesLater) {
  // An engine call that ends interrupted without a recorded request (the flag was set for a race
  // that ended meanwhile) must not leave the chunk in prefill.
  auto controller = LoadController::Create(UniformInput(2, 1'000'000, 0.1e6), Get("sparkv-adaptive")).value();
  ASSERT_EQ(controller->NextCompute(0.0).kind, LoadController::ComputeStep::Kind::kCompute);
  ASSERT_TRUE(controller->ContinuePrefill(0, 8, 0.03125));
  controller->OnPrefillInterrupted(0, 8, 0.05);
  const LoadController::ComputeStep step = controller->NextCompute(0.05);
  ASSERT_EQ(step.kind, LoadController::ComputeStep::Kind::kCompute);
  EXPECT_EQ(step.chunk, 0);
  EXPECT_EQ(controller->PrefillStartToken(0), 8) << "the rows of the first piece are kept";
}

TEST(ControllerTest, RacedPrefillKeepsStreamPathOpen) {
  // Two chunks of 1 s compute, 1 MB each at 4 MB/s: the plan streams both in 0.5 s, and the idle
  // compute path races chunk 0 as a hedge.
  auto controller = LoadController::Create(UniformInput(2, 1'000'000, 4e6), Get("sparkv-adaptive")).value();
  ASSERT_EQ(controller->initial_plan().predicted.n_streamed, 2);
  const std::optional<LoadController::Transfer> first = controller->NextTransfer(0.0);
  ASSERT_TRUE(first.has_value());
  ASSERT_EQ(first->chunk, 1) << "the suffix is fetched from the back";
  ASSERT_EQ(controller->NextCompute(0.0).kind, LoadController::ComputeStep::Kind::kCompute);
  ASSERT_TRUE(controller->Racing(0));
  ASSERT_TRUE(controller->OnTransferProgress(1, 1'000'000, 0.25, 0.25));
  ASSERT_TRUE(controller->OnTransferEnd(1, LoadController::TransferResult::kOk, 1'000'000, 0.25, 0.25));
  controller->OnDecodeEnd(1, true, 0.25);
  // Only the raced chunk is left: its blob must still be fetched, so the stream path is not done.
  EXPECT_FALSE(controller->StreamPathDone());
  const std::optional<LoadController::Transfer> raced = controller->NextTransfer(0.25);
  ASSERT_TRUE(raced.has_value());
  EXPECT_EQ(raced->chunk, 0);
}

TEST(ControllerTest, EndedStreamPathLeavesChunksToCompute) {
  auto controller = LoadController::Create(UniformInput(2, 1'000'000, 4e6), Get("sparkv-adaptive")).value();
  ASSERT_EQ(controller->initial_plan().predicted.n_streamed, 2);
  controller->OnStreamPathEnded();
  EXPECT_TRUE(controller->StreamPathDone());
  EXPECT_FALSE(controller->NextTransfer(0.0).has_value());
  const LoadController::ComputeStep step = controller->NextCompute(0.0);
  ASSERT_EQ(step.kind, LoadController::ComputeStep::Kind::kCompute);
  EXPECT_EQ(step.chunk, 0);
  EXPECT_FALSE(controller->Racing(0)) << "nothing can race it any more";
}

TEST(ControllerTest, LastPieceDropsRacedBlob) {
  std::unique_ptr<LoadController> controller = RacedChunkZero();
  for (int32_t done = 32; done < 256; done += 32) {
    ASSERT_TRUE(controller->ContinuePrefill(0, done, 30.0 + done / 256.0)) << "piece ending at " << done;
  }
  // The blob arrives while the last piece runs: stopping after it gains nothing.
  ASSERT_TRUE(controller->OnTransferProgress(0, 1'000'000, 30.9, 30.95));
  controller->OnTransferArrived(0, 30.95);
  EXPECT_TRUE(controller->AwaitingPrefillStop(0));
  controller->OnComputeEnd(0, 31.0);
  EXPECT_FALSE(controller->AwaitingPrefillStop(0));
  EXPECT_FALSE(controller->OnTransferEnd(0, LoadController::TransferResult::kOk, 1'000'000, 30.7, 31.0))
      << "the prefill finished first: the blob is dropped";
  EXPECT_TRUE(controller->AllResident());
  EXPECT_EQ(controller->stats().n_abandoned, 0);
}

// Two chunks of 1.5 s compute and 1 MB at a predicted 1 MB/s: the plan computes chunk 0 and
// streams chunk 1 (TTFT 1.5 s, against 2 s streaming both). Chunk 1's blob arrives after
// `arrival_s` of transfer. Returns the controller then, with chunk 0 in prefill.
std::unique_ptr<LoadController> ChunkOneArrivesAfter(double arrival_s) {
  PlanInput in = UniformInput(2, 1'000'000, 1e6);
  in.compute.a = 1.5 / 256;
  auto controller = LoadController::Create(in, Get("sparkv-adaptive")).value();
  EXPECT_EQ(controller->initial_plan().decisions[0].path, Decision::Path::kCompute);
  EXPECT_EQ(controller->NextCompute(0.0).kind, LoadController::ComputeStep::Kind::kCompute);
  std::optional<LoadController::Transfer> t = controller->NextTransfer(0.0);
  EXPECT_TRUE(t.has_value());
  if (t) {
    EXPECT_EQ(t->chunk, 1);
  }
  EXPECT_TRUE(controller->OnTransferProgress(1, 1'000'000, arrival_s, arrival_s));
  EXPECT_TRUE(controller->OnTransferEnd(1, LoadController::TransferResult::kOk, 1'000'000, arrival_s, arrival_s));
  controller->OnDecodeEnd(1, true, arrival_s);
  return controller;
}

TEST(ControllerTest, MissedPredictionRacesPrefill) {
  // The blob comes in 0.5 s instead of the 1 s predicted: the link is not what the plan assumed,
  // and the idle stream path races chunk 0's prefill (1 s left) with a blob due in about 0.5 s.
  std::unique_ptr<LoadController> controller = ChunkOneArrivesAfter(0.5);
  const std::optional<LoadController::Transfer> t = controller->NextTransfer(0.5);
  ASSERT_TRUE(t.has_value());
  EXPECT_EQ(t->chunk, 0);
  EXPECT_EQ(controller->stats().n_raced, 1);
  EXPECT_TRUE(controller->AwaitingPrefillStop(0));
}

TEST(ControllerTest, SteadyLinkIsNotRaced) {
  // The blob comes when predicted: the prefill (0.5 s left) ends before a blob could.
  std::unique_ptr<LoadController> controller = ChunkOneArrivesAfter(1.0);
  EXPECT_FALSE(controller->NextTransfer(1.0).has_value());
  EXPECT_EQ(controller->stats().n_raced, 0);
}

TEST(ControllerTest, TransferBetweenReportsIsNotCancelled) {
  // Two chunks of 0.4 s compute. A 1 MB blob takes 0.5 s at 2 MB/s, so the plan computes chunk 0
  // and streams chunk 1: TTFT 0.5 s, against 0.8 s computing both.
  PlanInput in = UniformInput(2, 1'000'000, 2e6);
  in.compute.a = 0.4 / 256;
  auto controller = LoadController::Create(in, Get("sparkv-adaptive")).value();
  ASSERT_EQ(controller->initial_plan().predicted.n_streamed, 1);
  std::optional<LoadController::Transfer> t = controller->NextTransfer(0.0);
  ASSERT_TRUE(t.has_value());
  ASSERT_EQ(t->chunk, 1);
  LoadController::ComputeStep step = controller->NextCompute(0.0);
  ASSERT_EQ(step.kind, LoadController::ComputeStep::Kind::kCompute);
  ASSERT_EQ(step.chunk, 0);
  controller->OnComputeEnd(0, 0.4);
  // No progress report has come yet, but the bytes have been flowing since the start: the blob is
  // due at 0.5 s, sooner than 0.4 s of prefill from now.
  EXPECT_EQ(controller->NextCompute(0.4).kind, LoadController::ComputeStep::Kind::kWait);
  EXPECT_TRUE(controller->OnTransferProgress(1, 1'000'000, 0.5, 0.5)) << "the transfer must go on";
  EXPECT_EQ(controller->stats().n_cancelled, 0);
}

PlanInput WithoutLevels(PlanInput in) {
  for (ChunkSpec& spec : in.chunks) spec.levels.clear();
  return in;
}

TEST(SimulatorTest, AdaptiveAbandonsPrefillForFastLink) {
  // Four chunks of 1 s compute and 1 MB. The planner starts from 0.1 MB/s, so it computes every
  // chunk, but the link delivers 20 MB/s: a chunk arrives in 0.05 s.
  SimScenario scenario;
  scenario.input = UniformInput(4, 1'000'000, 0.1e6);
  scenario.actual = BandwidthModel::Constant(20e6);
  Result<SimResult> fixed = SimulateLoad(Get("sparkv"), scenario);
  Result<SimResult> adaptive = SimulateLoad(Get("sparkv-adaptive"), scenario);
  ASSERT_TRUE(fixed.ok());
  ASSERT_TRUE(adaptive.ok());
  EXPECT_EQ(fixed->initial_plan.predicted.n_streamed, 0);
  EXPECT_NEAR(fixed->ttft_s, 4.0, 1e-6);
  // The idle stream path measures the link, a re-plan moves the chunks to it, and the prefill of
  // chunk 0 stops after its first pieces instead of running its whole second.
  EXPECT_EQ(adaptive->stats.n_abandoned, 1);
  EXPECT_TRUE(adaptive->chunks[0].prefill_abandoned);
  EXPECT_TRUE(adaptive->chunks[0].streamed);
  EXPECT_EQ(adaptive->n_streamed, 4);
  EXPECT_LT(adaptive->ttft_s, 1.0) << "chunk 0's whole prefill would take 1 s";
  // Its blob is fetched while the second piece (8 to 40 tokens, 0.031 to 0.156 s) runs, and stops
  // that piece when it arrives, 0.05 s later.
  EXPECT_LT(adaptive->chunks[0].transfer_start_s, 0.156);
  EXPECT_NEAR(adaptive->chunks[0].resident_s, adaptive->chunks[0].transfer_end_s, 1e-9);
  EXPECT_LT(adaptive->chunks[0].resident_s, 0.25) << "the blob must not wait for the piece to end";
}

TEST(SimulatorTest, SlowDeviceRestartsLargeBlobSmaller) {
  // Four chunks profiled at 1 s of compute on a device that takes 2 s. The link delivers 1 MB/s:
  // q8 (1.5 MB) in 1.5 s, f16 (3 MB) in 3 s. Planned for the profiled device, three chunks are
  // computed in 3 s and the last is fetched at f16 in the same 3 s. The first prefill piece shows
  // the slower device, so the stream path must take two chunks. The f16 transfer then restarts as
  // q8: 2 x 1.5 s beside 2 x 2 s of compute, against 3 + 1.5 s had it gone on.
  SimScenario scenario;
  scenario.input = UniformInput(4, 1'500'000, 1e6);
  for (ChunkSpec& spec : scenario.input.chunks) spec.levels.insert(spec.levels.begin(), {"f16", 3'000'000, 0.0, 0});
  scenario.actual = scenario.input.bandwidth;
  scenario.device_slowdown = 2.0;
  // The fade margin would pick q8 for the last chunk at once, because it ties f16 at 1 MB/s and
  // wins at 0.7 MB/s. Without the margin the first plan takes f16, and the restart follows.
  Strategy no_margin = Get("sparkv-adaptive");
  no_margin.fade_margin = 0.0;
  Result<SimResult> adaptive = SimulateLoad(no_margin, scenario);
  Result<Plan> hindsight = HindsightOptimum(scenario);
  ASSERT_TRUE(adaptive.ok()) << adaptive.status().ToString();
  ASSERT_TRUE(hindsight.ok()) << hindsight.status().ToString();
  const Decision& last = adaptive->initial_plan.decisions.back();
  ASSERT_EQ(last.path, Decision::Path::kStream);
  ASSERT_EQ(last.level, 0) << "the first plan must fetch the last chunk at f16 for this test to mean anything";
  EXPECT_EQ(adaptive->stats.n_cancelled, 1);
  EXPECT_EQ(adaptive->n_streamed, 2);
  for (const SimChunk& chunk : adaptive->chunks) {
    if (chunk.streamed) {
      EXPECT_EQ(chunk.codec, "q8");
    }
  }
  EXPECT_NEAR(hindsight->predicted.ttft_s, 4.0, 1e-6);
  EXPECT_LT(adaptive->ttft_s, 1.05 * hindsight->predicted.ttft_s) << "4.5 s had the f16 transfer gone on";
}

// Four chunks of 1 s compute with f16 (3 MB) and q8 (1.5 MB) blobs, planned at 1 MB/s: three
// computed and the last streamed end together at 3 s, at either level. The lossless tie-break
// takes f16, which needs all 3 s of the predicted link; q8 would still arrive in time on a link
// 30% slower.
SimScenario FadingAfterTie(BandwidthModel actual) {
  SimScenario scenario;
  scenario.input = UniformInput(4, 1'500'000, 1e6);
  for (ChunkSpec& spec : scenario.input.chunks) spec.levels.insert(spec.levels.begin(), {"f16", 3'000'000, 0.0, 0});
  scenario.actual = std::move(actual);
  return scenario;
}

TEST(ControllerTest, FadeMarginPrefersSurvivingPlan) {
  const PlanInput input = FadingAfterTie(BandwidthModel::Constant(1e6)).input;
  Strategy adaptive = Get("sparkv-adaptive");
  ASSERT_GT(adaptive.fade_margin, 0.0);
  Strategy no_margin = adaptive;
  no_margin.fade_margin = 0.0;
  const Planner& exact = *FindPlanner("exact");
  const Plan plain = SolveWithFadeMargin(exact, no_margin, input);
  const Plan margined = SolveWithFadeMargin(exact, adaptive, input);
  ASSERT_EQ(plain.decisions.back().path, Decision::Path::kStream);
  EXPECT_EQ(plain.decisions.back().level, 0) << "equal TTFT: the planner prefers lossless f16";
  ASSERT_EQ(margined.decisions.back().path, Decision::Path::kStream);
  EXPECT_EQ(margined.decisions.back().level, 1) << "q8 also arrives in time on a 30% slower link";
  EXPECT_NEAR(margined.predicted.ttft_s, plain.predicted.ttft_s, 1e-9);

  // A slack that q8's plan cannot meet keeps the plain plan: here q8 costs 0.5 s more to decode.
  PlanInput slow_decode = input;
  for (ChunkSpec& spec : slow_decode.chunks) spec.levels[1].decode_seconds = 0.5;
  const Plan plain_kept = SolveWithFadeMargin(exact, adaptive, slow_decode);
  EXPECT_EQ(plain_kept.decisions, exact.Solve(slow_decode).decisions);
}

TEST(SimulatorTest, FadeMarginKeepsTtftOnFade) {
  // The link halves after 1.5 s, when q8 has arrived. f16 would arrive at 4.5 s. Without the
  // margin the last chunk is computed after the others or fetched late, at 4 s or more.
  const SimScenario scenario = FadingAfterTie(BandwidthModel::Steps({{0.0, 1e6}, {1.5, 0.5e6}}).value());
  Strategy no_margin = Get("sparkv-adaptive");
  no_margin.fade_margin = 0.0;
  Result<SimResult> with_margin = SimulateLoad(Get("sparkv-adaptive"), scenario);
  Result<SimResult> without = SimulateLoad(no_margin, scenario);
  Result<Plan> hindsight = HindsightOptimum(scenario);
  ASSERT_TRUE(with_margin.ok()) << with_margin.status().ToString();
  ASSERT_TRUE(without.ok()) << without.status().ToString();
  ASSERT_TRUE(hindsight.ok()) << hindsight.status().ToString();
  EXPECT_NEAR(hindsight->predicted.ttft_s, 3.0, 1e-6);
  EXPECT_LT(with_margin->ttft_s, 1.02 * hindsight->predicted.ttft_s);
  EXPECT_GT(without->ttft_s, 1.2 * hindsight->predicted.ttft_s) << "f16 on the faded link is late";
}

TEST(SimulatorTest, IdleLinkFetchesComputedChunk) {
  // Four chunks of 1 s compute on a device 2x slower (2 s each), q8 blobs of 1.5 MB. The link
  // carries 1.5 MB/s, all but stops from 0.5 s to 3 s, and recovers. Chunk 3's blob arrives at
  // 3.42 s; the link still looks slow then, so the plan computes chunk 2 after chunk 1 (at 4 s).
  // Without the hedge the idle stream path waits and races that prefill from 4 s: 5 s. With it,
  // it fetches chunk 2 at once, which arrives at 4.42 s, the hindsight optimum.
  SimScenario scenario;
  scenario.input = UniformInput(4, 1'500'000, 1.5e6);
  scenario.actual = BandwidthModel::Steps({{0.0, 1.5e6}, {0.5, 0.05e6}, {3.0, 1.5e6}}).value();
  scenario.device_slowdown = 2.0;
  Strategy no_hedge = Get("sparkv-adaptive");
  ASSERT_TRUE(no_hedge.hedge_fetch);
  no_hedge.hedge_fetch = false;
  Result<SimResult> with_hedge = SimulateLoad(Get("sparkv-adaptive"), scenario);
  Result<SimResult> without = SimulateLoad(no_hedge, scenario);
  Result<Plan> hindsight = HindsightOptimum(scenario);
  ASSERT_TRUE(with_hedge.ok()) << with_hedge.status().ToString();
  ASSERT_TRUE(without.ok()) << without.status().ToString();
  ASSERT_TRUE(hindsight.ok()) << hindsight.status().ToString();
  EXPECT_NEAR(with_hedge->ttft_s, hindsight->predicted.ttft_s, 1e-3);
  EXPECT_EQ(with_hedge->n_streamed, 2);
  EXPECT_GT(without->ttft_s, 1.1 * hindsight->predicted.ttft_s) << "the stream path idles from 3.42 s to 4 s";
}

TEST(SimulatorTest, SteadyLinkEndsHedgeRaces) {
  // Twelve chunks of 1 s compute, 1.5 MB blobs on a link that keeps its predicted 1 MB/s. Once
  // three transfers have arrived on time, the compute path no longer hedges: it behaves as with a
  // race ratio of 1. Before the steady-link rule it raced one chunk here, for 0.75 s of CPU and
  // the same TTFT.
  SimScenario scenario;
  scenario.input = UniformInput(12, 1'500'000, 1e6);
  scenario.input.request_overhead_s = 0.05;
  scenario.actual = scenario.input.bandwidth;
  Result<SimResult> adaptive = SimulateLoad(Get("sparkv-adaptive"), scenario);
  Result<SimResult> no_hedge = SimulateLoad(WithRaceRatio(Get("sparkv-adaptive"), 1.0), scenario);
  ASSERT_TRUE(adaptive.ok()) << adaptive.status().ToString();
  ASSERT_TRUE(no_hedge.ok()) << no_hedge.status().ToString();
  EXPECT_EQ(adaptive->stats.n_raced, 0);
  EXPECT_DOUBLE_EQ(adaptive->cpu_busy_s, no_hedge->cpu_busy_s);
  EXPECT_DOUBLE_EQ(adaptive->ttft_s, no_hedge->ttft_s);
}

TEST(SimulatorTest, NoFetchThatCannotBeatCompute) {
  // Four chunks of 5 ms compute, a link of 1 MB/s with 50 ms before each first byte. The whole
  // load is computed before any byte could arrive, so the stream path sends no request at all: on
  // a phone it would only wake the radio. With no overhead it explores as before.
  SimScenario scenario;
  scenario.input = UniformInput(4, 100'000, 1e6);
  scenario.input.compute = {0.005 / 256, 0.0, 0.0};
  scenario.input.request_overhead_s = 0.05;
  scenario.actual = scenario.input.bandwidth;
  Result<SimResult> far = SimulateLoad(Get("sparkv-adaptive"), scenario);
  ASSERT_TRUE(far.ok()) << far.status().ToString();
  EXPECT_EQ(far->n_computed, 4);
  EXPECT_EQ(far->received_bytes, 0u);
  EXPECT_EQ(far->network_busy_s, 0.0);

  scenario.input.request_overhead_s = 0.0;
  Result<SimResult> near = SimulateLoad(Get("sparkv-adaptive"), scenario);
  ASSERT_TRUE(near.ok()) << near.status().ToString();
  EXPECT_GT(near->network_busy_s, 0.0) << "without overhead the idle link explores, as the test shows it can";
}

TEST(SimulatorTest, RaceKeepsRecoveringLinkBlob) {
  // Two chunks of 1 s compute and 1 MB, planned to stream at 4 MB/s. The link carries chunk 1,
  // nearly dies at 0.3 s during chunk 0's transfer, and recovers at 1.5 s. Without a hedge
  // (race_ratio 1), nothing races before the dip.
  SimScenario scenario;
  scenario.input = UniformInput(2, 1'000'000, 4e6);
  scenario.actual = BandwidthModel::Steps({{0.0, 4e6}, {0.3, 0.01e6}, {1.5, 10e6}}).value();
  Strategy strategy = Get("sparkv-adaptive");
  strategy.race_ratio = 1.0;
  Result<SimResult> adaptive = SimulateLoad(strategy, scenario);
  ASSERT_TRUE(adaptive.ok()) << adaptive.status().ToString();
  // The compute path took chunk 0 during the dip, but the transfer went on, and its blob, there
  // at about 1.55 s, stopped the prefill.
  EXPECT_EQ(adaptive->stats.n_raced, 1);
  EXPECT_EQ(adaptive->stats.n_cancelled, 0);
  const SimChunk& chunk = adaptive->chunks[0];
  EXPECT_GE(chunk.compute_start_s, 0.3);
  EXPECT_TRUE(chunk.prefill_abandoned);
  EXPECT_TRUE(chunk.streamed);
  EXPECT_LT(adaptive->ttft_s, chunk.compute_start_s + 1.0) << "the prefill alone would have ended then";
}

// stories260K's profile and blob sizes, 4 chunks of 64 tokens (two prefill pieces each), on the
// ATT LTE trace from its start. The trace opens with a burst: the first two blobs arrive fast, a
// re-plan moves chunk 1 to the stream path, and its blob then comes after computing it would have
// ended. The idle compute path must race it, even though the blob is due within two pieces.
TEST(SimulatorTest, TwoPieceChunkIsRacedAfterBurst) {
  Result<Link> link = Link::LoadMahimahi(testing::DataPath("traces/ATT-LTE-driving-2016.down"));
  ASSERT_TRUE(link.ok()) << link.status().ToString();
  SimScenario scenario;
  scenario.input.compute = {4.725657327542411e-05, 3.745708294747043e-07, 0.0};
  for (int j = 0; j < 4; ++j) {
    ChunkSpec spec{j, j * 64, (j + 1) * 64, {}};
    spec.levels.push_back({"f16", 41056, 2.857687499999994e-07 + 41056 * 1.4824218750000002e-10, 0});
    spec.levels.push_back({"q8", 21856, 7.755411764705851e-07 + 21856 * 1.504779411764706e-09, 1});
    scenario.input.chunks.push_back(spec);
  }
  Result<BandwidthModel> actual = LinkBandwidth(*link, 0.0);
  ASSERT_TRUE(actual.ok()) << actual.status().ToString();
  scenario.actual = *actual;
  scenario.input.bandwidth = BandwidthModel::Constant(scenario.actual.BytesBetween(0.0, 0.5) / 0.5);
  Result<SimResult> adaptive = SimulateLoad(Get("sparkv-adaptive"), scenario);
  Result<Plan> hindsight = HindsightOptimum(scenario);
  ASSERT_TRUE(adaptive.ok()) << adaptive.status().ToString();
  ASSERT_TRUE(hindsight.ok()) << hindsight.status().ToString();
  EXPECT_GE(adaptive->stats.n_raced, 1);
  EXPECT_LT(adaptive->ttft_s, 1.02 * hindsight->predicted.ttft_s)
      << "the prefill of chunk 1 ends before its blob arrives";
}

TEST(StrategyTest, RaceRatioAppliesToReplanningOnly) {
  EXPECT_EQ(WithRaceRatio(Get("sparkv-adaptive"), 1.5).race_ratio, 1.5);
  EXPECT_EQ(WithRaceRatio(Get("sparkv-adaptive"), 0.0).race_ratio, Get("sparkv-adaptive").race_ratio);
  EXPECT_EQ(WithRaceRatio(Get("cake"), 5.0).race_ratio, Get("cake").race_ratio) << "cake does not re-plan";
}

TEST(SimulatorTest, HedgeRacesFrontierFromTheStart) {
  // The link of RaceKeepsRecoveringLinkBlob. Streaming both chunks is predicted to take 0.5 s and
  // computing chunk 0 1 s, within sparkv-adaptive's race ratio. So the compute path races chunk 0
  // from the start, and its prefill wins at 1 s while the blob waits for the link to recover.
  SimScenario scenario;
  scenario.input = UniformInput(2, 1'000'000, 4e6);
  scenario.actual = BandwidthModel::Steps({{0.0, 4e6}, {0.3, 0.01e6}, {1.5, 10e6}}).value();
  Result<SimResult> adaptive = SimulateLoad(Get("sparkv-adaptive"), scenario);
  ASSERT_TRUE(adaptive.ok()) << adaptive.status().ToString();
  EXPECT_GT(Get("sparkv-adaptive").race_ratio, 2.0);
  EXPECT_EQ(adaptive->initial_plan.predicted.n_streamed, 2);
  EXPECT_EQ(adaptive->stats.n_raced, 1);
  const SimChunk& chunk = adaptive->chunks[0];
  EXPECT_EQ(chunk.compute_start_s, 0.0);
  EXPECT_FALSE(chunk.streamed);
  EXPECT_NEAR(adaptive->all_resident_s, 1.0, 1e-6) << "the blob of chunk 0 arrives after 1.5 s";

  // On a steady link the race is a pure hedge: the blob stops the prefill as it arrives, and the
  // load ends as streaming alone would.
  scenario.actual = scenario.input.bandwidth;
  Result<SimResult> steady = SimulateLoad(Get("sparkv-adaptive"), scenario);
  Result<SimResult> stream = SimulateLoad(Get("stream"), scenario);
  ASSERT_TRUE(steady.ok()) << steady.status().ToString();
  ASSERT_TRUE(stream.ok()) << stream.status().ToString();
  EXPECT_TRUE(steady->chunks[0].streamed);
  EXPECT_TRUE(steady->chunks[0].prefill_abandoned);
  EXPECT_NEAR(steady->all_resident_s, stream->all_resident_s, 1e-6);
}

TEST(ControllerTest, SlowDecodeSkipsLinkProbe) {
  // Two chunks of 1 s compute whose only level takes 2 s to decode: fetching one to measure the
  // link could only make the load slower.
  PlanInput in = UniformInput(2, 1'000'000, 0.1e6);
  for (ChunkSpec& spec : in.chunks) spec.levels[0].decode_seconds = 2.0;
  auto controller = LoadController::Create(in, Get("sparkv-adaptive")).value();
  ASSERT_EQ(controller->initial_plan().predicted.n_streamed, 0);
  ASSERT_EQ(controller->NextCompute(0.0).kind, LoadController::ComputeStep::Kind::kCompute);
  EXPECT_FALSE(controller->NextTransfer(0.0).has_value());

  // With a decode cheaper than the prefill the idle stream path does measure the link.
  for (ChunkSpec& spec : in.chunks) spec.levels[0].decode_seconds = 0.01;
  auto probing = LoadController::Create(in, Get("sparkv-adaptive")).value();
  ASSERT_EQ(probing->NextCompute(0.0).kind, LoadController::ComputeStep::Kind::kCompute);
  std::optional<LoadController::Transfer> t = probing->NextTransfer(0.0);
  ASSERT_TRUE(t.has_value());
  EXPECT_EQ(t->chunk, 1);
}

TEST(ControllerTest, TakenBackPrefillResumesWhereItStopped) {
  // As below: a re-plan stops chunk 0's prefill at 32 tokens and fetches its blob. The transfer
  // then stalls, so the compute path takes the chunk back: its rows [0, 32) are still in the
  // cache, and the prefill resumes at token 32.
  auto controller = LoadController::Create(UniformInput(2, 1'000'000, 0.1e6), Get("sparkv-adaptive")).value();
  ASSERT_EQ(controller->NextCompute(0.0).kind, LoadController::ComputeStep::Kind::kCompute);
  EXPECT_EQ(controller->PrefillStartToken(0), 0);
  std::optional<LoadController::Transfer> t = controller->NextTransfer(0.0);
  ASSERT_TRUE(t.has_value());
  ASSERT_TRUE(controller->OnTransferProgress(t->chunk, 1'000'000, 0.05, 0.05));
  ASSERT_TRUE(controller->OnTransferEnd(t->chunk, LoadController::TransferResult::kOk, 1'000'000, 0.05, 0.05));
  controller->OnDecodeEnd(t->chunk, true, 0.05);
  controller->Replan(0.05);
  t = controller->NextTransfer(0.05);
  ASSERT_TRUE(t.has_value());
  ASSERT_EQ(t->chunk, 0);
  ASSERT_FALSE(controller->ContinuePrefill(0, 32, 0.125));

  ASSERT_TRUE(controller->OnTransferProgress(0, 10'000, 0.1, 0.15));
  const LoadController::ComputeStep step = controller->NextCompute(30.0);
  ASSERT_EQ(step.kind, LoadController::ComputeStep::Kind::kCompute);
  ASSERT_EQ(step.chunk, 0);
  EXPECT_EQ(controller->PrefillStartToken(0), 32);
  // The link has nothing else to carry: the transfer goes on, racing the resumed prefill.
  EXPECT_TRUE(controller->OnTransferProgress(0, 10'000, 29.95, 30.0));
  EXPECT_EQ(controller->stats().n_raced, 1);
}

// Streams chunk `chunk` whole: 1 MB that arrives at `end_s`, 0.05 s after its request, and is
// decoded at once.
void StreamChunk(LoadController& controller, int32_t chunk, double end_s) {
  ASSERT_TRUE(controller.OnTransferProgress(chunk, 1'000'000, 0.05, end_s));
  ASSERT_TRUE(controller.OnTransferEnd(chunk, LoadController::TransferResult::kOk, 1'000'000, 0.05, end_s));
  controller.OnDecodeEnd(chunk, true, end_s);
}

TEST(ControllerTest, StoppedPrefillFetchesItsBlobEarly) {
  // Two chunks of 1 s compute and 1 MB. The first plan, at 0.1 MB/s, computes both; the link
  // then proves fast, and a re-plan stops chunk 0's prefill at its first piece boundary.
  auto controller = LoadController::Create(UniformInput(2, 1'000'000, 0.1e6), Get("sparkv-adaptive")).value();
  ASSERT_EQ(controller->initial_plan().predicted.n_streamed, 0);
  LoadController::ComputeStep step = controller->NextCompute(0.0);
  ASSERT_EQ(step.kind, LoadController::ComputeStep::Kind::kCompute);
  ASSERT_EQ(step.chunk, 0);
  // An 8-token first piece measures the device, then the pieces are 32 tokens.
  ASSERT_EQ(controller->PrefillPieceTokens(0), 8);
  ASSERT_TRUE(controller->ContinuePrefill(0, 8, 0.03125));
  ASSERT_EQ(controller->PrefillPieceTokens(0), 32);
  // The idle stream path measures the link with the last chunk: 1 MB in 0.05 s.
  std::optional<LoadController::Transfer> t = controller->NextTransfer(0.0);
  ASSERT_TRUE(t.has_value());
  ASSERT_EQ(t->chunk, 1);
  StreamChunk(*controller, 1, 0.05);
  controller->Replan(0.05);
  ASSERT_EQ(controller->stats().n_replans, 1);

  // Chunk 0's blob is fetched at once, while the prefill runs on to 40 tokens.
  t = controller->NextTransfer(0.05);
  ASSERT_TRUE(t.has_value());
  EXPECT_EQ(t->chunk, 0);
  EXPECT_TRUE(controller->AwaitingPrefillStop(0));
  EXPECT_TRUE(controller->OnTransferProgress(0, 500'000, 0.025, 0.075)) << "the early transfer must go on";
  // Its end is reported only after the prefill stopped at 0.156 s.
  EXPECT_FALSE(controller->ContinuePrefill(0, 40, 0.15625));
  EXPECT_FALSE(controller->AwaitingPrefillStop(0));
  EXPECT_TRUE(controller->OnTransferEnd(0, LoadController::TransferResult::kOk, 1'000'000, 0.1, 0.15625));
  controller->OnDecodeEnd(0, true, 0.16);
  EXPECT_TRUE(controller->AllResident());
  EXPECT_EQ(controller->stats().n_abandoned, 1);
}

TEST(ControllerTest, StoppedPrefillBlobComesAfterBackChunks) {
  // As above with three chunks: the re-plan stops chunk 0's prefill and streams chunks 0 and 1.
  // Those form a suffix of the chunks left, so chunk 1 comes first and the stopped chunk, the
  // frontier, last: if the link fades, the compute path can still race it from its kept rows.
  auto controller = LoadController::Create(UniformInput(3, 1'000'000, 0.1e6), Get("sparkv-adaptive")).value();
  ASSERT_EQ(controller->initial_plan().predicted.n_streamed, 0);
  ASSERT_EQ(controller->NextCompute(0.0).chunk, 0);
  ASSERT_TRUE(controller->ContinuePrefill(0, 8, 0.03125));
  std::optional<LoadController::Transfer> t = controller->NextTransfer(0.0);
  ASSERT_TRUE(t.has_value());
  ASSERT_EQ(t->chunk, 2);
  StreamChunk(*controller, 2, 0.05);
  controller->Replan(0.05);
  ASSERT_EQ(controller->stats().n_replans, 1);

  t = controller->NextTransfer(0.05);
  ASSERT_TRUE(t.has_value());
  EXPECT_EQ(t->chunk, 1) << "the chunk at the back comes before the stopped prefill's blob";
  EXPECT_FALSE(controller->ContinuePrefill(0, 40, 0.15625)) << "the plan still stops the prefill";
  StreamChunk(*controller, 1, 0.1);

  t = controller->NextTransfer(0.16);
  ASSERT_TRUE(t.has_value());
  EXPECT_EQ(t->chunk, 0);
  EXPECT_EQ(controller->stats().n_abandoned, 1);
}

TEST(ControllerTest, PieceSizeFollowsPerCallCost) {
  // Chunks of 256 tokens at 1/256 s per token. A fixed cost per prefill call above 15% of a
  // piece's time makes the pieces larger: 8 tokens take 0.031 s, 32 take 0.125 s, 64 take 0.25 s
  // and 128 take 0.5 s. The first piece is 8 tokens where that cost allows it.
  struct Case {
    double d;
    int32_t first;
    int32_t then;
  };
  for (const Case& c : {Case{0.0, 8, 32}, Case{0.004, 8, 32}, Case{0.01, 32, 32}, Case{0.04, 64, 64},
                        Case{0.07, 128, 128}, Case{0.5, 128, 128}}) {
    PlanInput in = UniformInput(4, 1'000'000, 1e6);
    in.compute.d = c.d;
    std::unique_ptr<LoadController> controller = std::move(LoadController::Create(in, Get("sparkv-adaptive"))).value();
    EXPECT_EQ(controller->PrefillPieceTokens(0), c.first) << "d = " << c.d;
    ASSERT_EQ(controller->NextCompute(0.0).kind, LoadController::ComputeStep::Kind::kCompute);
    controller->ContinuePrefill(0, c.first, in.compute.ChunkSeconds(0, c.first));
    EXPECT_EQ(controller->PrefillPieceTokens(0), c.then) << "d = " << c.d;
  }
}

TEST(ControllerTest, OnlyReplanningStrategiesPrefillInPieces) {
  const PlanInput in = UniformInput(2, 1000, 1e3);
  auto adaptive = LoadController::Create(in, Get("sparkv-adaptive")).value();
  auto fixed = LoadController::Create(in, Get("sparkv")).value();
  EXPECT_EQ(adaptive->PrefillPieceTokens(0), 8) << "the first piece measures the device";
  EXPECT_EQ(fixed->PrefillPieceTokens(0), 256);
  // A chunk without any level to stream has nothing to switch to.
  auto local_only = LoadController::Create(WithoutLevels(in), Get("sparkv-adaptive")).value();
  EXPECT_EQ(local_only->PrefillPieceTokens(0), 256);
}


TEST(ControllerTest, DeferredStartPlansAfterOffer) {
  // Four chunks of 1 s compute; each blob takes 0.25 s at the offered rate.
  const PlanInput full = UniformInput(4, 1'000'000, 4e6);
  auto controller = LoadController::Create(WithoutLevels(full), Get("sparkv-adaptive"), true).value();
  EXPECT_TRUE(controller->awaiting_stream_offer());
  EXPECT_FALSE(controller->NeedsReplan()) << "nothing to plan before the levels are known";
  EXPECT_FALSE(controller->NextTransfer(0.0).has_value());
  LoadController::ComputeStep step = controller->NextCompute(0.0);
  ASSERT_EQ(step.kind, LoadController::ComputeStep::Kind::kCompute);
  EXPECT_EQ(step.chunk, 0);

  // A re-plan snapshot taken before the offer is stale once the offer arrives.
  uint64_t stale_version = 0;
  const PlanInput stale = controller->ReplanInput(0.1, &stale_version);

  // The offer arrives while chunk 0 is being computed.
  uint64_t version = 0;
  const PlanInput snapshot = controller->OfferStreamPath(full, 0.2, &version);
  ASSERT_EQ(snapshot.progress.size(), 4u);
  EXPECT_EQ(snapshot.progress[0].state, ChunkProgress::State::kComputing);
  EXPECT_DOUBLE_EQ(snapshot.start_time_s, 0.2);
  const Plan plan = FindPlanner("exact")->Solve(snapshot);
  SolvedPlans plans;
  plans.keep = plan;
  controller->InstallFirstPlan(plans, version, 0.25);
  EXPECT_FALSE(controller->awaiting_stream_offer());
  EXPECT_EQ(controller->initial_plan().decisions[0].path, Decision::Path::kCommitted);
  EXPECT_EQ(controller->initial_plan().predicted.n_streamed, 3) << "streaming the rest ends before computing any";
  EXPECT_GT(controller->initial_plan().predicted.ttft_s, 0.2);

  // The stale all-compute plan must not undo the first plan.
  controller->InstallPlan(FindPlanner("local")->Solve(stale), stale_version, 0.3);
  EXPECT_EQ(controller->stats().n_replans, 0);
  std::optional<LoadController::Transfer> t = controller->NextTransfer(0.3);
  ASSERT_TRUE(t.has_value());
  EXPECT_EQ(t->chunk, 3) << "the streamed suffix is fetched from the back";
}

TEST(ControllerTest, DeferredStartWithoutOfferComputes) {
  auto controller =
      LoadController::Create(WithoutLevels(UniformInput(3, 1000, 1e6)), Get("sparkv-adaptive"), true).value();
  for (int32_t j = 0; j < 3; ++j) {
    LoadController::ComputeStep step = controller->NextCompute(j);
    ASSERT_EQ(step.kind, LoadController::ComputeStep::Kind::kCompute);
    EXPECT_EQ(step.chunk, j);
    EXPECT_FALSE(controller->NextTransfer(j).has_value());
    controller->OnComputeEnd(j, j + 1.0);
  }
  EXPECT_TRUE(controller->AllResident());
  // A deferred controller starts without levels; offering some at creation is a caller bug.
  EXPECT_FALSE(LoadController::Create(UniformInput(3, 1000, 1e6), Get("sparkv-adaptive"), true).ok());
}

TEST(StrategyTest, NamesResolve) {
  for (const std::string& name : StrategyNames()) EXPECT_TRUE(FindStrategy(name).ok()) << name;
  EXPECT_EQ(Get("hybrid").name, "sparkv-adaptive");
  Result<Strategy> unknown = FindStrategy("fastest");
  ASSERT_FALSE(unknown.ok());
  EXPECT_NE(unknown.status().message().find("sparkv-adaptive"), std::string::npos) << unknown.status().ToString();
}

TEST(LinkBandwidthTest, TraceMatchesLinkCapacity) {
  // Two packets at ms 0, one at ms 3, period 5 ms: 4500 bytes per 5 ms.
  Result<Link> link = Link::ParseMahimahi("0\n0\n3\n5\n", "test");
  ASSERT_TRUE(link.ok()) << link.status().ToString();
  Result<BandwidthModel> model = LinkBandwidth(*link, 0.0);
  ASSERT_TRUE(model.ok());
  // Four opportunities per loop: the line "5" is the last of one loop, at the same millisecond as
  // the next loop's "0" lines. The model starts in the steady state, the link's first loop lacks
  // that one packet.
  EXPECT_NEAR(model->BytesBetween(0.0, 0.005), 4 * 1500.0, 1e-6);
  EXPECT_NEAR(model->BytesBetween(0.0, 0.5), link->Capacity(0.0, 0.5), 1500.0 + 1e-6);
  Result<BandwidthModel> shifted = LinkBandwidth(*link, 0.003);
  ASSERT_TRUE(shifted.ok());
  EXPECT_NEAR(shifted->BytesBetween(0.0, 0.001), link->Capacity(0.008, 0.009), 1e-6);
  EXPECT_NEAR(shifted->BytesBetween(0.002, 0.003), link->Capacity(0.010, 0.011), 1e-6);
  EXPECT_FALSE(LinkBandwidth(*link, -1.0).ok());
}

}  // namespace
}  // namespace sparkv
