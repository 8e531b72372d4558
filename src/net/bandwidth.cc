#include "net/bandwidth.h"

#include <algorithm>
#include <cmath>

namespace sparkv {

BandwidthEstimator::BandwidthEstimator(BandwidthEstimatorOptions options) : options_(options) {
  options_.n_window = std::max<size_t>(options_.n_window, 1);
}

void BandwidthEstimator::AddSample(size_t n_bytes, double seconds) {
  if (n_bytes == 0 || !(seconds > 0) || !std::isfinite(seconds)) return;
  const double rate = static_cast<double>(n_bytes) / seconds;

  // Score the prediction the estimator would have made for this sample. The first sample has
  // no prediction to score unless an initial guess was given.
  const double predicted = rates_.empty() ? options_.initial_bytes_per_s : HarmonicMeanBytesPerSecond();
  if (predicted > 0) {
    errors_.push_back(std::abs(predicted - rate) / rate);
    if (errors_.size() > options_.n_window) errors_.pop_front();
  }

  rates_.push_back(rate);
  if (rates_.size() > options_.n_window) rates_.pop_front();
  ++n_samples_;
}

double BandwidthEstimator::HarmonicMeanBytesPerSecond() const {
  if (rates_.empty()) return options_.initial_bytes_per_s;
  double sum_inverse = 0;
  for (double rate : rates_) sum_inverse += 1.0 / rate;
  return static_cast<double>(rates_.size()) / sum_inverse;
}

double BandwidthEstimator::SafetyDivisor() const {
  double max_error = 0;
  for (double error : errors_) max_error = std::max(max_error, error);
  return 1.0 + std::min(max_error, options_.max_error_discount);
}

double BandwidthEstimator::PredictBytesPerSecond() const {
  return HarmonicMeanBytesPerSecond() / SafetyDivisor();
}

ProgressSampler::ProgressSampler(BandwidthEstimator* estimator, size_t min_bytes,
                                 double min_seconds)
    : estimator_(estimator), min_bytes_(min_bytes), min_seconds_(min_seconds) {}

void ProgressSampler::OnProgress(size_t bytes_so_far, double seconds) {
  // The first report opens the first sample: time before the first byte is latency, not
  // throughput, and would drag the rate down.
  if (sample_start_seconds_ < 0) {
    sample_start_bytes_ = bytes_so_far;
    sample_start_seconds_ = seconds;
    return;
  }
  if (bytes_so_far < sample_start_bytes_) return;
  const size_t n_bytes = bytes_so_far - sample_start_bytes_;
  const double span = seconds - sample_start_seconds_;
  if (n_bytes >= min_bytes_ || span >= min_seconds_) {
    estimator_->AddSample(n_bytes, span);
    sample_start_bytes_ = bytes_so_far;
    sample_start_seconds_ = seconds;
  }
}

void ProgressSampler::Finish(size_t total_bytes, double total_seconds) {
  if (sample_start_seconds_ < 0 || total_bytes <= sample_start_bytes_) return;
  const double span = total_seconds - sample_start_seconds_;
  if (span >= min_seconds_ / 4) estimator_->AddSample(total_bytes - sample_start_bytes_, span);
  sample_start_seconds_ = -1;
}

}  // namespace sparkv
