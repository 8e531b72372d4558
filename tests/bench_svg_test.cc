// Tests of the SVG pictures: the documents are well formed (tags balance, every coordinate is a
// finite number, text is escaped), a timeline has one box per chunk and one tick per re-plan.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>
#include <map>
#include <regex>
#include <set>
#include <string>
#include <vector>

#include "bench/svg.h"
#include "runtime/simulator.h"
#include "runtime/strategy.h"

namespace sparkv {
namespace {

// Fails the test unless every element opened in `svg` is closed in order, and returns the
// number of elements by name.
std::map<std::string, int> CheckTagsBalance(const std::string& svg) {
  std::map<std::string, int> counts;
  std::vector<std::string> open;
  size_t pos = 0;
  while ((pos = svg.find('<', pos)) != std::string::npos) {
    const size_t end = svg.find('>', pos);
    if (end == std::string::npos) {
      ADD_FAILURE() << "unterminated tag at " << pos;
      break;
    }
    const std::string tag = svg.substr(pos + 1, end - pos - 1);
    pos = end + 1;
    if (tag.empty()) {
      ADD_FAILURE() << "empty tag";
      continue;
    }
    if (tag[0] == '?') continue;
    if (tag[0] == '/') {
      const std::string name = tag.substr(1);
      if (open.empty() || open.back() != name) {
        ADD_FAILURE() << "closing </" << name << "> does not match " << (open.empty() ? "nothing" : open.back());
      } else {
        open.pop_back();
      }
      continue;
    }
    const std::string name = tag.substr(0, tag.find_first_of(" \n/"));
    ++counts[name];
    if (tag.back() != '/') open.push_back(name);
  }
  EXPECT_TRUE(open.empty()) << open.size() << " elements left open";
  return counts;
}

// Fails the test if a geometric attribute contains anything but finite numbers.
void CheckNumbersFinite(const std::string& svg) {
  static const std::set<std::string> kNumeric = {"x", "y", "x1", "y1", "x2", "y2", "cx", "cy", "r", "width", "height",
                                                 "points"};
  const std::regex attribute(R"(([a-z0-9-]+)="([^"]*)\")");
  for (auto it = std::sregex_iterator(svg.begin(), svg.end(), attribute); it != std::sregex_iterator(); ++it) {
    if (kNumeric.count((*it)[1].str()) == 0) continue;
    std::string value = (*it)[2].str();
    for (char& ch : value) {
      if (ch == ',') ch = ' ';
    }
    const char* p = value.c_str();
    while (*p != '\0') {
      char* next = nullptr;
      const double x = std::strtod(p, &next);
      ASSERT_NE(next, p) << (*it)[1] << "=\"" << (*it)[2] << "\"";
      ASSERT_TRUE(std::isfinite(x)) << (*it)[1] << "=\"" << (*it)[2] << "\"";
      p = next;
      while (*p == ' ') ++p;
    }
  }
}

// Eight chunks that stream or compute in about the same time, on a link that drops from
// 8 Mbit/s to 0.8 Mbit/s at 2 s, so the adaptive strategy re-plans and uses both paths.
SimScenario MixedScenario() {
  SimScenario s;
  s.input.compute = {1.0 / 256, 0.0, 0.0};
  for (int j = 0; j < 8; ++j) {
    ChunkSpec spec{j, j * 256, (j + 1) * 256, {}};
    spec.levels.push_back({"q8", 1000000, 0.05, 1});
    s.input.chunks.push_back(spec);
  }
  s.input.bandwidth = BandwidthModel::Constant(1e6);
  s.actual = *BandwidthModel::Steps({{0.0, 1e6}, {2.0, 1e5}});
  return s;
}

TEST(BenchSvgTest, TimelineBoxPerChunk) {
  const SimScenario scenario = MixedScenario();
  for (const char* name : {"local", "stream", "sparkv-adaptive"}) {
    Result<Strategy> strategy = FindStrategy(name);
    ASSERT_TRUE(strategy.ok());
    Result<SimResult> result = SimulateLoad(*strategy, scenario);
    ASSERT_TRUE(result.ok()) << result.status().ToString();
    const std::string svg = TimelineSvg(*result, scenario.actual, std::string("timeline <") + name + "> & co");

    const std::map<std::string, int> counts = CheckTagsBalance(svg);
    CheckNumbersFinite(svg);
    EXPECT_EQ(svg.find("<" + std::string(name) + ">"), std::string::npos) << "title not escaped";
    EXPECT_EQ(counts.at("svg"), 1);
    for (size_t j = 0; j < result->chunks.size(); ++j) {
      EXPECT_NE(svg.find("data-chunk=\"" + std::to_string(j) + "\""), std::string::npos) << name << " chunk " << j;
    }
    int n_prefill = 0, n_transfer = 0;
    for (const SimChunk& c : result->chunks) {
      n_prefill += c.compute_start_s >= 0;
      n_transfer += c.transfer_start_s >= 0;
    }
    auto occurrences = [&](const std::string& needle) {
      int n = 0;
      for (size_t at = svg.find(needle); at != std::string::npos; at = svg.find(needle, at + 1)) ++n;
      return n;
    };
    EXPECT_EQ(occurrences("class=\"prefill\""), n_prefill) << name;
    EXPECT_EQ(occurrences("class=\"transfer\""), n_transfer) << name;
    EXPECT_EQ(occurrences("class=\"replan\""), static_cast<int>(result->stats.replan_times_s.size())) << name;
  }
}

TEST(BenchSvgTest, AdaptiveTimelineMarksReplans) {
  const SimScenario scenario = MixedScenario();
  Result<SimResult> result = SimulateLoad(*FindStrategy("sparkv-adaptive"), scenario);
  ASSERT_TRUE(result.ok()) << result.status().ToString();
  ASSERT_FALSE(result->stats.replan_times_s.empty());
  const std::string svg = TimelineSvg(*result, scenario.actual, "adaptive");
  EXPECT_NE(svg.find("class=\"replan\""), std::string::npos);
}

TEST(BenchSvgTest, LineChartDropsNonFinitePoints) {
  const std::vector<SvgSeries> series = {
      {"local", {{1, 150}, {10, 150}, {100, 150}}},
      {"stream & co", {{1, 200}, {10, NAN}, {100, 2}, {INFINITY, 3}}},
  };
  const std::string svg = LineChartSvg("TTFT", "bandwidth, Mbit/s", "TTFT, s", series);
  const std::map<std::string, int> counts = CheckTagsBalance(svg);
  CheckNumbersFinite(svg);
  EXPECT_EQ(counts.at("polyline"), 2);
  EXPECT_EQ(counts.at("circle"), 3 + 2);
  EXPECT_NE(svg.find("stream &amp; co"), std::string::npos);
  EXPECT_NE(svg.find("log scale"), std::string::npos);

  const std::string empty = LineChartSvg("nothing", "x", "y", {});
  CheckTagsBalance(empty);
  CheckNumbersFinite(empty);
}

}  // namespace
}  // namespace sparkv
