#include <gtest/gtest.h>

#include <map>
#include <vector>

#include "engine/sampler.h"

namespace sparkv {
namespace {

TEST(SamplerTest, GreedyPicksTheLargestLogitAndTheLowestIdOnTies) {
  Sampler sampler(SamplerOptions{});
  const std::vector<float> logits = {0.1f, 3.0f, -2.0f, 3.0f, 1.0f};
  EXPECT_EQ(sampler.Sample(logits), 1);
  EXPECT_EQ(Sampler::Argmax(std::vector<float>{-5.0f, -1.0f, -3.0f}), 1);
}

TEST(SamplerTest, SameSeedGivesTheSameSequence) {
  const std::vector<float> logits = {1.0f, 1.2f, 0.8f, 1.1f, 0.9f};
  SamplerOptions options{.temperature = 1.0f, .top_p = 1.0f, .seed = 42};
  Sampler a(options), b(options);
  std::vector<TokenId> seq_a, seq_b;
  for (int i = 0; i < 50; ++i) {
    seq_a.push_back(a.Sample(logits));
    seq_b.push_back(b.Sample(logits));
  }
  EXPECT_EQ(seq_a, seq_b);
  options.seed = 43;
  Sampler c(options);
  std::vector<TokenId> seq_c;
  for (int i = 0; i < 50; ++i) seq_c.push_back(c.Sample(logits));
  EXPECT_NE(seq_a, seq_c);
}

TEST(SamplerTest, TopPExcludesTheTail) {
  // Probabilities ~0.64, 0.24, 0.09, 0.03: top_p 0.8 keeps the first two only.
  const std::vector<float> logits = {3.0f, 2.0f, 1.0f, 0.0f};
  Sampler sampler(SamplerOptions{.temperature = 1.0f, .top_p = 0.8f, .seed = 1});
  std::map<TokenId, int> counts;
  for (int i = 0; i < 2000; ++i) ++counts[sampler.Sample(logits)];
  EXPECT_EQ(counts.count(2), 0u);
  EXPECT_EQ(counts.count(3), 0u);
  EXPECT_GT(counts[0], counts[1]);
  EXPECT_GT(counts[1], 0);
}

TEST(SamplerTest, FrequenciesFollowTheSoftmax) {
  // Two tokens with logit gap ln 3 at temperature 1: 3:1 odds. 20000 draws put the share of
  // token 0 within 0.75 +- 0.02 (over 6 standard deviations).
  const std::vector<float> logits = {std::log(3.0f), 0.0f};
  Sampler sampler(SamplerOptions{.temperature = 1.0f, .top_p = 1.0f, .seed = 9});
  int zeros = 0;
  for (int i = 0; i < 20000; ++i) zeros += sampler.Sample(logits) == 0;
  EXPECT_NEAR(zeros / 20000.0, 0.75, 0.02);
}

}  // namespace
}  // namespace sparkv
