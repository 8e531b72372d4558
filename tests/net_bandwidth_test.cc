// Bandwidth prediction on synthetic sample streams: harmonic mean over a window, the safety
// discount after prediction errors, and sampling of cumulative transfer progress.
#include <gtest/gtest.h>

#include <vector>

#include "net/bandwidth.h"

namespace sparkv {
namespace {

TEST(BandwidthEstimator, HasNoEstimateBeforeSamplesUnlessGivenAGuess) {
  BandwidthEstimator empty;
  EXPECT_EQ(empty.PredictBytesPerSecond(), 0);
  BandwidthEstimator guessed(BandwidthEstimatorOptions{.n_window = 5, .initial_bytes_per_s = 1e6});
  EXPECT_EQ(guessed.PredictBytesPerSecond(), 1e6);
}

TEST(BandwidthEstimator, SteadyStreamPredictsItsRateWithoutDiscount) {
  BandwidthEstimator estimator;
  for (int i = 0; i < 20; ++i) estimator.AddSample(65536, 65536 / 2.5e6);
  EXPECT_NEAR(estimator.PredictBytesPerSecond(), 2.5e6, 1e-3);
  EXPECT_DOUBLE_EQ(estimator.SafetyDivisor(), 1.0);
}

TEST(BandwidthEstimator, PredictionIsTheHarmonicMeanOfTheWindow) {
  BandwidthEstimator estimator(BandwidthEstimatorOptions{.n_window = 3});
  const std::vector<double> rates = {8e6, 1e6, 2e6, 4e6};  // the first leaves the window
  for (double rate : rates) estimator.AddSample(100000, 100000 / rate);
  const double expected = 3.0 / (1 / 1e6 + 1 / 2e6 + 1 / 4e6);
  EXPECT_NEAR(estimator.HarmonicMeanBytesPerSecond(), expected, expected * 1e-12);
  EXPECT_EQ(estimator.n_samples(), 4u);
}

TEST(BandwidthEstimator, HarmonicMeanFavoursSlowSamples) {
  BandwidthEstimator estimator(BandwidthEstimatorOptions{.n_window = 2});
  estimator.AddSample(1000, 1000 / 1e6);
  estimator.AddSample(1000, 1000 / 9e6);
  EXPECT_LT(estimator.HarmonicMeanBytesPerSecond(), (1e6 + 9e6) / 2);
  EXPECT_GT(estimator.HarmonicMeanBytesPerSecond(), 1e6);
}

TEST(BandwidthEstimator, DropDiscountsUntilWindowClears) {
  const size_t n_window = 4;
  BandwidthEstimator estimator(BandwidthEstimatorOptions{.n_window = n_window});
  for (size_t i = 0; i < n_window; ++i) estimator.AddSample(4000, 4000 / 4e6);
  EXPECT_DOUBLE_EQ(estimator.SafetyDivisor(), 1.0);

  // Predicted 4e6 for a 1e6 sample: relative error 3, so the divisor becomes 4.
  estimator.AddSample(1000, 1000 / 1e6);
  EXPECT_NEAR(estimator.SafetyDivisor(), 4.0, 1e-9);
  EXPECT_LT(estimator.PredictBytesPerSecond(), 1e6);

  // The discount stays while any mis-predicted sample is in the error window: the window of
  // rates needs n_window samples to hold only the new rate, and predictions are exact only after.
  for (size_t i = 0; i < n_window - 1; ++i) estimator.AddSample(1000, 1000 / 1e6);
  EXPECT_GT(estimator.SafetyDivisor(), 1.0);
  for (size_t i = 0; i < n_window; ++i) estimator.AddSample(1000, 1000 / 1e6);
  EXPECT_NEAR(estimator.SafetyDivisor(), 1.0, 1e-9);
  EXPECT_NEAR(estimator.PredictBytesPerSecond(), 1e6, 1e-3);
}

TEST(BandwidthEstimator, SamplesWithoutBytesOrTimeAreIgnored) {
  BandwidthEstimator estimator;
  estimator.AddSample(0, 1.0);
  estimator.AddSample(1000, 0.0);
  estimator.AddSample(1000, -1.0);
  EXPECT_EQ(estimator.n_samples(), 0u);
  EXPECT_EQ(estimator.PredictBytesPerSecond(), 0);
}

TEST(ProgressSampler, CumulativeProgressAtASteadyRateYieldsThatRate) {
  BandwidthEstimator estimator;
  ProgressSampler sampler(&estimator, /*min_bytes=*/64 * 1024, /*min_seconds=*/0.020);
  const double rate = 3e6;
  const double latency = 0.050;  // before the first byte; must not count as throughput
  size_t bytes = 0;
  for (int i = 0; i < 200; ++i) {
    bytes += 8192;
    sampler.OnProgress(bytes, latency + bytes / rate);
  }
  sampler.Finish(bytes, latency + bytes / rate);
  EXPECT_GE(estimator.n_samples(), 10u);
  EXPECT_NEAR(estimator.PredictBytesPerSecond(), rate, rate * 1e-6);
}

TEST(ProgressSampler, SamplesCloseOnBytesOrOnTime) {
  BandwidthEstimator by_bytes;
  ProgressSampler bytes_sampler(&by_bytes, /*min_bytes=*/1000, /*min_seconds=*/100.0);
  bytes_sampler.OnProgress(0, 0.0);
  bytes_sampler.OnProgress(999, 0.001);
  EXPECT_EQ(by_bytes.n_samples(), 0u);
  bytes_sampler.OnProgress(1000, 0.002);
  EXPECT_EQ(by_bytes.n_samples(), 1u);

  BandwidthEstimator by_time;
  ProgressSampler time_sampler(&by_time, /*min_bytes=*/1 << 30, /*min_seconds=*/0.020);
  time_sampler.OnProgress(0, 0.0);
  time_sampler.OnProgress(10, 0.019);
  EXPECT_EQ(by_time.n_samples(), 0u);
  time_sampler.OnProgress(20, 0.021);
  EXPECT_EQ(by_time.n_samples(), 1u);
  EXPECT_NEAR(by_time.PredictBytesPerSecond(), 20 / 0.021, 1e-6);
}

}  // namespace
}  // namespace sparkv
