// The link model shared by the server's pacer and the planner's simulator: constant-rate and
// mahimahi trace links, their parser, and what it rejects.
#include <gtest/gtest.h>

#include <chrono>
#include <random>
#include <thread>
#include <string>

#include "net/link.h"
#include "net/pacer.h"
#include "test_support.h"

namespace sparkv {
namespace {

constexpr double kPacket = Link::kPacketBytes;

Link MustParse(const std::string& text) {
  Result<Link> link = Link::ParseMahimahi(text, "inline");
  EXPECT_TRUE(link.ok()) << link.status().ToString();
  return std::move(link).value();
}

TEST(ConstantLink, FinishTimeIsBytesOverRate) {
  Result<Link> link = Link::Constant(16);
  ASSERT_TRUE(link.ok());
  const double bytes_per_s = 16e6 / 8;
  EXPECT_DOUBLE_EQ(link->mean_bytes_per_s(), bytes_per_s);
  EXPECT_DOUBLE_EQ(link->FinishTime(1.5, 3'000'000), 1.5 + 3'000'000 / bytes_per_s);
  EXPECT_DOUBLE_EQ(link->Capacity(2.0, 2.5), 0.5 * bytes_per_s);
}

TEST(ConstantLink, SendsQueueAndIdleTimeIsLost) {
  Result<Link> link = Link::Constant(8);  // 1e6 bytes/s
  ASSERT_TRUE(link.ok());
  LinkCursor cursor;
  EXPECT_DOUBLE_EQ(link->Send(&cursor, 0.0, 500'000), 0.5);
  // Ready at 0.1 s, but the link is busy until 0.5 s.
  EXPECT_DOUBLE_EQ(link->Send(&cursor, 0.1, 500'000), 1.0);
  // Ready at 3 s: the link idled from 1 s to 3 s and that capacity is gone.
  EXPECT_DOUBLE_EQ(link->Send(&cursor, 3.0, 250'000), 3.25);
}

TEST(ConstantLink, RejectsRatesThatAreNotPositive) {
  EXPECT_EQ(Link::Constant(0).status().code(), ErrorCode::kInvalidArgument);
  EXPECT_EQ(Link::Constant(-3).status().code(), ErrorCode::kInvalidArgument);
  EXPECT_EQ(Link::Constant(std::nan("")).status().code(), ErrorCode::kInvalidArgument);
}

TEST(TraceLink, MeanRateIsLoopBytesOverPeriod) {
  const Link link = MustParse("1\n1\n3\n4\n");
  EXPECT_TRUE(link.is_trace());
  EXPECT_EQ(link.period_ms(), 4u);
  EXPECT_EQ(link.n_opportunities_per_loop(), 4u);
  EXPECT_DOUBLE_EQ(link.mean_bytes_per_s(), 4 * kPacket / 0.004);
}

TEST(TraceLink, OpportunitiesUsedInOrderAndLoop) {
  // Opportunities at 0, 0, 2, 5 ms, then 5, 5, 7, 10 ms in the second loop, and so on.
  const Link link = MustParse("0\n0\n2\n5\n");
  EXPECT_DOUBLE_EQ(link.FinishTime(0, 1), 0.0);
  EXPECT_DOUBLE_EQ(link.FinishTime(0, 2 * kPacket), 0.0);
  EXPECT_DOUBLE_EQ(link.FinishTime(0, 2 * kPacket + 1), 0.002);
  EXPECT_DOUBLE_EQ(link.FinishTime(0, 4 * kPacket), 0.005);
  EXPECT_DOUBLE_EQ(link.FinishTime(0, 6 * kPacket), 0.005);
  EXPECT_DOUBLE_EQ(link.FinishTime(0, 7 * kPacket), 0.007);
  // Starting at 1 ms skips both opportunities at 0 ms.
  EXPECT_DOUBLE_EQ(link.FinishTime(0.001, kPacket), 0.002);
  // Far into the trace: loop 100 starts at 500 ms.
  EXPECT_DOUBLE_EQ(link.FinishTime(0.5011, kPacket), 0.502);
}

TEST(TraceLink, SmallSendsShareOnePacketOpportunity) {
  const Link link = MustParse("0\n3\n");
  LinkCursor cursor;
  EXPECT_DOUBLE_EQ(link.Send(&cursor, 0, 1000), 0.0);
  EXPECT_DOUBLE_EQ(link.Send(&cursor, 0, 500), 0.0);  // fills the rest of the 0 ms packet
  EXPECT_DOUBLE_EQ(link.Send(&cursor, 0, 1), 0.003);
  EXPECT_DOUBLE_EQ(link.Send(&cursor, 0, kPacket), 0.003);  // loop 2 starts at 3 ms as well
}

TEST(TraceLink, IdleOpportunitiesAreLost) {
  const Link link = MustParse("0\n1\n2\n3\n4\n5\n");
  LinkCursor cursor;
  EXPECT_DOUBLE_EQ(link.Send(&cursor, 0, kPacket), 0.0);
  EXPECT_DOUBLE_EQ(link.Send(&cursor, 0.0035, kPacket), 0.004);
  EXPECT_DOUBLE_EQ(link.Send(&cursor, 0.0, kPacket), 0.005);
}

TEST(TraceLink, CapacityOverWholeLoopsMatchesTheMeanRate) {
  const Link link = MustParse("0\n0\n0\n7\n9\n9\n20\n");
  for (int n_loops = 1; n_loops <= 5; ++n_loops) {
    const double seconds = n_loops * link.period_ms() / 1000.0;
    const double expected = link.mean_bytes_per_s() * seconds;
    EXPECT_NEAR(link.Capacity(0.0001, 0.0001 + seconds), expected, expected * 1e-9);
  }
}

TEST(TraceLink, SplitSendsMatchOneSend) {
  const Link link = MustParse("0\n0\n1\n4\n4\n4\n9\n13\n");
  std::mt19937 random(7);
  std::uniform_int_distribution<uint64_t> size(1, 40 * 1500);
  for (int trial = 0; trial < 200; ++trial) {
    const uint64_t a = size(random);
    const uint64_t b = size(random);
    EXPECT_LE(link.FinishTime(0, std::min(a, b)), link.FinishTime(0, std::max(a, b)));

    // Back-to-back sends on one cursor finish when one send of the total would.
    LinkCursor cursor;
    link.Send(&cursor, 0, a);
    EXPECT_DOUBLE_EQ(link.Send(&cursor, 0, b), link.FinishTime(0, a + b));
  }
}

TEST(TraceLink, SharedTracesHaveTheirPublishedAverageRates) {
  // Averages from the data README; the parser must reproduce them from the files.
  const struct {
    const char* file;
    double mbit;
  } traces[] = {{"Verizon-LTE-short.down", 5.0},
                {"TMobile-LTE-short.down", 16.7},
                {"ATT-LTE-driving-2016.down", 4.6},
                {"TMobile-UMTS-driving.down", 2.0}};
  for (const auto& trace : traces) {
    Result<Link> link = Link::LoadMahimahi(testing::DataPath(std::string("traces/") + trace.file));
    ASSERT_TRUE(link.ok()) << link.status().ToString();
    EXPECT_NEAR(link->mean_mbit(), trace.mbit, 0.05) << trace.file;
    // The last opportunity of the first loop is at the period.
    const uint64_t loop_bytes = link->n_opportunities_per_loop() * Link::kPacketBytes;
    EXPECT_DOUBLE_EQ(link->FinishTime(0, loop_bytes), link->period_ms() / 1000.0) << trace.file;
  }
}

TEST(TraceLink, BrokenTracesAreRejected) {
  const char* broken[] = {
      "",                 // no opportunities
      "\n\n",             // blank lines only
      "0\n0\n",           // no period
      "1\nabc\n",         // not a number
      "1\n-2\n",          // negative
      "1\n2.5\n",         // not an integer
      "5\n3\n",           // goes back in time
      "1\n99999999999\n", // beyond any real trace
      "1\n184467440737095516160\n",  // overflows 64 bits
  };
  for (const char* text : broken) {
    Result<Link> link = Link::ParseMahimahi(text, "broken");
    ASSERT_FALSE(link.ok()) << "accepted: " << text;
    EXPECT_EQ(link.status().code(), ErrorCode::kCorruption) << text;
    EXPECT_NE(link.status().message().find("broken"), std::string::npos);
  }
  EXPECT_EQ(Link::LoadMahimahi("/nonexistent/trace.down").status().code(), ErrorCode::kNotFound);
}

TEST(TraceLink, WindowsLineEndingsAndTrailingSpacesAreAccepted) {
  const Link link = MustParse("0\r\n2 \r\n4\r\n");
  EXPECT_EQ(link.period_ms(), 4u);
  EXPECT_EQ(link.n_opportunities_per_loop(), 3u);
}

}  // namespace
}  // namespace sparkv

namespace sparkv {
namespace {

// The schedule a Pacer computes, not elapsed time: Reserve returns when the bytes cross the link.
TEST(PacerSchedule, NewResponseAfterPauseGetsNoBurst) {
  Pacer pacer(std::move(Link::Constant(8.0)).value());  // 1 MB/s
  // Idle for longer than the pacer's slack, so the next bytes start now.
  std::this_thread::sleep_for(std::chrono::milliseconds(30));
  const Pacer::Clock::time_point before = Pacer::Clock::now();
  const Pacer::Clock::time_point first = pacer.Reserve(100'000);
  EXPECT_GE(std::chrono::duration<double>(first - before).count(), 0.1 - 1e-6);
  // A sender that comes straight back continues where the link became free.
  const Pacer::Clock::time_point second = pacer.Reserve(100'000);
  EXPECT_NEAR(std::chrono::duration<double>(second - first).count(), 0.1, 1e-6);
}

TEST(ConstantLink, FreeAtFollowsTheCursor) {
  const Link link = std::move(Link::Constant(8.0)).value();
  LinkCursor cursor;
  EXPECT_DOUBLE_EQ(link.FreeAt(cursor), 0.0);
  link.Send(&cursor, 2.0, 500'000);
  EXPECT_DOUBLE_EQ(link.FreeAt(cursor), 2.5);
}

}  // namespace
}  // namespace sparkv
