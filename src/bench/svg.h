// Pictures for `sparkv bench`, written as plain SVG text: a timeline of both paths for one
// simulated load, and line charts (TTFT or energy against bandwidth, one line per strategy).
// Every number written is finite (non-finite values are drawn as 0), and text is escaped.
#pragma once

#include <string>
#include <utility>
#include <vector>

#include "plan/cost_model.h"
#include "runtime/simulator.h"

namespace sparkv {

// Two lanes over time: network (one box per transfer) and CPU (one box per decode or prefill),
// so every chunk has at least one box, marked data-chunk="INDEX". The bandwidth the link
// delivered is drawn above the lanes, a tick marks each re-plan time, and a line marks the TTFT.
std::string TimelineSvg(const SimResult& result, const BandwidthModel& bandwidth, const std::string& title);

struct SvgSeries {
  std::string name;
  std::vector<std::pair<double, double>> points;  // [n_points], (x, y), drawn in x order
};

// A line chart with one line per series. The x axis is logarithmic when every x is positive and
// they span a factor of 10 or more; the y axis starts at 0.
std::string LineChartSvg(const std::string& title, const std::string& x_label, const std::string& y_label,
                         const std::vector<SvgSeries>& series);

}  // namespace sparkv
