#include "engine/sampler.h"

#include <algorithm>
#include <cmath>

namespace sparkv {

TokenId Sampler::Argmax(std::span<const float> logits) {
  return static_cast<TokenId>(std::max_element(logits.begin(), logits.end()) - logits.begin());
}

TokenId Sampler::Sample(std::span<const float> logits) {
  if (options_.temperature <= 0.0f) return Argmax(logits);

  // Softmax of logits / temperature, in double so the cumulative sum does not drift.
  const float max = *std::max_element(logits.begin(), logits.end());
  candidates_.resize(logits.size());
  double total = 0.0;
  for (size_t i = 0; i < logits.size(); ++i) {
    const float p = std::exp((logits[i] - max) / options_.temperature);
    candidates_[i] = {p, static_cast<TokenId>(i)};
    total += p;
  }

  // Highest probability first (lowest id on ties), cut after the mass reaches top_p.
  std::sort(candidates_.begin(), candidates_.end(), [](const auto& a, const auto& b) {
    return a.first != b.first ? a.first > b.first : a.second < b.second;
  });
  const double top_p = std::clamp(static_cast<double>(options_.top_p), 0.0, 1.0);
  size_t n_keep = 0;
  double kept = 0.0;
  while (n_keep < candidates_.size()) {
    kept += candidates_[n_keep].first;
    ++n_keep;
    if (kept >= top_p * total) break;
  }

  const double draw = std::uniform_real_distribution<double>(0.0, kept)(rng_);
  double cumulative = 0.0;
  for (size_t i = 0; i < n_keep; ++i) {
    cumulative += candidates_[i].first;
    if (draw < cumulative) return candidates_[i].second;
  }
  return candidates_[n_keep - 1].second;
}

}  // namespace sparkv
