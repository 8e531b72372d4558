// Simulate(): the recurrence of DESIGN.md 6 on small cases worked out by hand.
#include <gtest/gtest.h>

#include <vector>

#include "plan/plan.h"

namespace sparkv {
namespace {

using Path = Decision::Path;

// Three chunks of 100 tokens. Compute: 100 * 1e-3 + 0.01 = 0.11 s each (c = 0, so position does
// not matter). One level of 1000 B with 0.05 s decode; at 10000 B/s a transfer takes 0.1 s.
PlanInput ThreeChunks(bool spare_core) {
  PlanInput in;
  for (int32_t j = 0; j < 3; ++j) {
    in.chunks.push_back({j, 100 * j, 100 * (j + 1), {{"q8", 1000, 0.05, 1}}});
  }
  in.compute = {1e-3, 0.0, 0.01};
  in.bandwidth = BandwidthModel::Constant(10000);
  in.decode_on_spare_core = spare_core;
  in.query_seconds = 0.02;
  return in;
}

TEST(SimulateTest, ComputeOnlyAddsChunkTimes) {
  const PlanInput in = ThreeChunks(false);
  const std::vector<Decision> d(3, {Path::kCompute, -1});
  const Timeline t = Simulate(in, d);
  EXPECT_DOUBLE_EQ(t.compute_finish_s, 3 * 0.11);
  EXPECT_DOUBLE_EQ(t.network_finish_s, 0.0);
  EXPECT_DOUBLE_EQ(t.ttft_s, 3 * 0.11 + 0.02);
  EXPECT_DOUBLE_EQ(t.chunks[1].start_s, 0.11);
  EXPECT_EQ(t.n_computed, 3);
  EXPECT_EQ(t.streamed_bytes, 0u);
}

TEST(SimulateTest, SharedCoreDecodeWaitsForTheCpu) {
  // compute, compute, stream. The transfer of chunk 2 starts at 0 and arrives at 0.1, but the
  // CPU is busy until 0.22 and then decodes: c = max(0.22, 0.1) + 0.05 = 0.27.
  const PlanInput in = ThreeChunks(false);
  const std::vector<Decision> d = {{Path::kCompute, -1}, {Path::kCompute, -1}, {Path::kStream, 0}};
  const Timeline t = Simulate(in, d);
  EXPECT_DOUBLE_EQ(t.chunks[2].start_s, 0.0);
  EXPECT_DOUBLE_EQ(t.chunks[2].end_s, 0.1);
  EXPECT_DOUBLE_EQ(t.chunks[2].decode_start_s, 0.22);
  EXPECT_DOUBLE_EQ(t.chunks[2].decode_end_s, 0.22 + 0.05);
  EXPECT_DOUBLE_EQ(t.network_finish_s, 0.1);
  EXPECT_DOUBLE_EQ(t.compute_finish_s, 0.22 + 0.05);
  EXPECT_DOUBLE_EQ(t.all_resident_s, 0.22 + 0.05);
  EXPECT_DOUBLE_EQ(t.ttft_s, 0.22 + 0.05 + 0.02);
  EXPECT_EQ(t.streamed_bytes, 1000u);
  EXPECT_EQ(t.quality_rank_sum, 1);
}

TEST(SimulateTest, SpareCoreDecodeRunsBesideCompute) {
  // Same plan with a spare core: decode runs 0.1 .. 0.15 beside prefill; c = max(0.22, 0.15).
  const PlanInput in = ThreeChunks(true);
  const std::vector<Decision> d = {{Path::kCompute, -1}, {Path::kCompute, -1}, {Path::kStream, 0}};
  const Timeline t = Simulate(in, d);
  EXPECT_DOUBLE_EQ(t.chunks[2].decode_start_s, 0.1);
  EXPECT_DOUBLE_EQ(t.chunks[2].decode_end_s, 0.1 + 0.05);
  EXPECT_DOUBLE_EQ(t.compute_finish_s, 0.22);
  EXPECT_DOUBLE_EQ(t.ttft_s, 0.22 + 0.02);
}

TEST(SimulateTest, StreamedPrefixDelaysCompute) {
  // stream, stream, compute, shared core:
  //   chunk 0: a = 0.1, c = max(0, 0.1) + 0.05 = 0.15
  //   chunk 1: a = 0.2, c = max(0.15, 0.2) + 0.05 = 0.25
  //   chunk 2: c = 0.25 + 0.11 = 0.36
  const PlanInput in = ThreeChunks(false);
  const std::vector<Decision> d = {{Path::kStream, 0}, {Path::kStream, 0}, {Path::kCompute, -1}};
  const Timeline t = Simulate(in, d);
  EXPECT_DOUBLE_EQ(t.chunks[0].resident_s, 0.15);
  EXPECT_DOUBLE_EQ(t.chunks[1].start_s, 0.1);
  EXPECT_DOUBLE_EQ(t.chunks[1].resident_s, 0.25);
  EXPECT_DOUBLE_EQ(t.chunks[2].start_s, 0.25);
  EXPECT_DOUBLE_EQ(t.compute_finish_s, 0.36);
  EXPECT_DOUBLE_EQ(t.network_finish_s, 0.2);
}

TEST(SimulateTest, OverheadAndTimeVaryingBandwidthStartAtTheNetworkTime) {
  // 1000 B/s until 1 s, then 4000 B/s; 0.5 s overhead per request; two chunks of 2000 B.
  PlanInput in = ThreeChunks(false);
  in.chunks.resize(2);
  for (ChunkSpec& c : in.chunks) c.levels = {{"f16", 2000, 0.0, 0}};
  in.bandwidth = BandwidthModel::Steps({{0.0, 1000}, {1.0, 4000}}).value();
  in.request_overhead_s = 0.5;
  const std::vector<Decision> d = {{Path::kStream, 0}, {Path::kStream, 0}};
  const Timeline t = Simulate(in, d);
  // Chunk 0: first byte at 0.5; 500 B by 1 s, 1500 B at 4000 B/s: arrives at 1.375.
  EXPECT_DOUBLE_EQ(t.chunks[0].end_s, 1.375);
  // Chunk 1: issued at 1.375, first byte at 1.875, 2000 B at 4000 B/s: 2.375.
  EXPECT_DOUBLE_EQ(t.chunks[1].start_s, 1.375);
  EXPECT_DOUBLE_EQ(t.chunks[1].end_s, 2.375);
  EXPECT_DOUBLE_EQ(t.all_resident_s, 2.375);
}

TEST(SimulateTest, CommittedChunksShapeTheRest) {
  // Re-planning at 0.3 s: chunk 0 resident, chunk 1 arriving at 0.4 with 0.05 s of decode left,
  // network busy until 0.4, CPU idle. Chunk 2 computed: waits for chunk 1 (0.45), then 0.11 s.
  PlanInput in = ThreeChunks(false);
  in.start_time_s = 0.3;
  in.network_busy_until_s = 0.4;
  in.cpu_busy_until_s = 0.0;
  in.progress.resize(3);
  in.progress[0].state = ChunkProgress::State::kResident;
  in.progress[1] = {ChunkProgress::State::kStreaming, 0.4, 0.05};
  const std::vector<Decision> d = {
      {Path::kCommitted, -1}, {Path::kCommitted, -1}, {Path::kCompute, -1}};
  ASSERT_TRUE(ValidateDecisions(in, d).ok());
  const Timeline t = Simulate(in, d);
  EXPECT_DOUBLE_EQ(t.chunks[1].resident_s, 0.45);
  EXPECT_DOUBLE_EQ(t.chunks[2].start_s, 0.45);
  EXPECT_DOUBLE_EQ(t.compute_finish_s, 0.45 + 0.11);
  EXPECT_EQ(t.n_computed, 1);
  EXPECT_EQ(t.n_streamed, 0);

  // Streaming chunk 2 instead queues behind the transfer in flight: issued at 0.4, arrives 0.5.
  const std::vector<Decision> s = {
      {Path::kCommitted, -1}, {Path::kCommitted, -1}, {Path::kStream, 0}};
  const Timeline ts = Simulate(in, s);
  EXPECT_DOUBLE_EQ(ts.chunks[2].start_s, 0.4);
  EXPECT_DOUBLE_EQ(ts.chunks[2].end_s, 0.5);
  EXPECT_DOUBLE_EQ(ts.compute_finish_s, 0.55);
}

TEST(ValidateTest, RejectsBadInputsAndDecisions) {
  PlanInput in = ThreeChunks(false);
  ASSERT_TRUE(ValidatePlanInput(in).ok());

  PlanInput gap = in;
  gap.chunks[1].begin = 150;
  EXPECT_FALSE(ValidatePlanInput(gap).ok());
  PlanInput bad_index = in;
  bad_index.chunks[2].index = 7;
  EXPECT_FALSE(ValidatePlanInput(bad_index).ok());
  PlanInput short_progress = in;
  short_progress.progress.resize(2);
  EXPECT_FALSE(ValidatePlanInput(short_progress).ok());
  PlanInput negative = in;
  negative.compute.a = -1;
  EXPECT_FALSE(ValidatePlanInput(negative).ok());

  const std::vector<Decision> too_few(2);
  EXPECT_FALSE(ValidateDecisions(in, too_few).ok());
  const std::vector<Decision> bad_level = {{Path::kStream, 1}, {}, {}};
  EXPECT_FALSE(ValidateDecisions(in, bad_level).ok());
  const std::vector<Decision> committed_pending = {{Path::kCommitted, -1}, {}, {}};
  EXPECT_FALSE(ValidateDecisions(in, committed_pending).ok());
  PlanInput floor = in;
  floor.max_quality_rank = 0;  // q8 has rank 1
  const std::vector<Decision> below_floor = {{Path::kStream, 0}, {}, {}};
  EXPECT_FALSE(ValidateDecisions(floor, below_floor).ok());
}

}  // namespace
}  // namespace sparkv
