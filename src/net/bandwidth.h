// Bandwidth prediction from throughput samples of transfers in progress.
//
// The prediction is the harmonic mean of the last n_window samples, which weighs slow periods
// more than fast bursts. It is divided by (1 + the largest relative prediction error over the
// same window), so after the link surprised the predictor, plans stay conservative until the
// window contains only accurately predicted samples again.
#pragma once

#include <cstddef>
#include <deque>

namespace sparkv {

struct BandwidthEstimatorOptions {
  size_t n_window = 5;             // samples in the harmonic mean and in the error window
  double initial_bytes_per_s = 0;  // the prediction before any sample; 0 = no estimate yet
  // Upper bound on the relative error the discount uses: the divisor stays <= 1 + this. A step
  // from 20 to 2 Mbit/s is a relative error of 9; without a bound the prediction would fall to a
  // tenth of the new rate until the window forgets the step. Default: no bound.
  double max_error_discount = 1e300;
};

class BandwidthEstimator {
 public:
  explicit BandwidthEstimator(BandwidthEstimatorOptions options = {});

  // One throughput sample: `n_bytes` arrived over `seconds`. Samples with no bytes or no
  // duration carry no rate and are ignored.
  void AddSample(size_t n_bytes, double seconds);

  // Predicted bytes per second for the next transfer (discounted; see the file comment).
  double PredictBytesPerSecond() const;
  // The harmonic mean alone, before the discount.
  double HarmonicMeanBytesPerSecond() const;
  // The divisor applied now: 1 + the largest relative error in the window (bounded by
  // max_error_discount), >= 1.
  double SafetyDivisor() const;

  size_t n_samples() const { return n_samples_; }

 private:
  BandwidthEstimatorOptions options_;
  std::deque<double> rates_;   // [<= n_window] bytes per second, oldest first
  std::deque<double> errors_;  // [<= n_window] |predicted - actual| / actual per sample
  size_t n_samples_ = 0;
};

// Turns the cumulative progress of one transfer (as HttpClient's on_progress reports it) into
// samples for a BandwidthEstimator: a sample closes once it spans min_bytes or min_seconds.
class ProgressSampler {
 public:
  ProgressSampler(BandwidthEstimator* estimator, size_t min_bytes = 64 * 1024,
                  double min_seconds = 0.020);

  // `bytes_so_far` and `seconds` are cumulative since the transfer started.
  void OnProgress(size_t bytes_so_far, double seconds);
  // Emits what is left of an open sample when the transfer ends, if it spans min_seconds / 4 or
  // more. Shorter leftovers are too noisy to keep.
  void Finish(size_t total_bytes, double total_seconds);

 private:
  BandwidthEstimator* estimator_;
  size_t min_bytes_;
  double min_seconds_;
  size_t sample_start_bytes_ = 0;
  double sample_start_seconds_ = -1;  // < 0 until the first progress report
};

}  // namespace sparkv
