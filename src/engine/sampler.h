// Picks the next token from logits: greedy at temperature 0, otherwise temperature-scaled
// softmax restricted to the smallest set of tokens whose probability reaches top_p (nucleus
// sampling), drawn with a seeded generator so runs repeat exactly.
#pragma once

#include <cstdint>
#include <random>
#include <span>
#include <vector>

#include "model/model.h"

namespace sparkv {

struct SamplerOptions {
  float temperature = 0.0f;  // Default: 0 = greedy (argmax, lowest id on ties)
  float top_p = 1.0f;        // in (0, 1]. Default: 1 = the whole vocabulary
  uint64_t seed = 0;
};

class Sampler {
 public:
  explicit Sampler(SamplerOptions options) : options_(options), rng_(options.seed) {}

  // REQUIRES: logits not empty.
  TokenId Sample(std::span<const float> logits);

  static TokenId Argmax(std::span<const float> logits);

 private:
  SamplerOptions options_;
  std::mt19937_64 rng_;
  std::vector<std::pair<float, TokenId>> candidates_;  // [n_vocab] (probability, id) scratch
};

}  // namespace sparkv
