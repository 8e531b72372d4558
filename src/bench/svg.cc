#include "bench/svg.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <string_view>

namespace sparkv {
namespace {

// A coordinate or value as SVG text; a non-finite value would break the document, so it is 0.
std::string Num(double x) {
  if (!std::isfinite(x)) x = 0.0;
  char text[32];
  std::snprintf(text, sizeof text, "%.2f", x);
  return text;
}

std::string Escape(std::string_view text) {
  std::string out;
  for (char ch : text) {
    switch (ch) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&quot;"; break;
      default: out += ch;
    }
  }
  return out;
}

std::string Header(double width, double height) {
  return "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"" + Num(width) +
         "\" height=\"" + Num(height) + "\" viewBox=\"0 0 " + Num(width) + " " + Num(height) +
         "\" font-family=\"sans-serif\" font-size=\"12\">\n<rect x=\"0\" y=\"0\" width=\"" + Num(width) +
         "\" height=\"" + Num(height) + "\" fill=\"white\"/>\n";
}

std::string Text(double x, double y, std::string_view text, std::string_view anchor = "start") {
  return "<text x=\"" + Num(x) + "\" y=\"" + Num(y) + "\" text-anchor=\"" + std::string(anchor) + "\">" +
         Escape(text) + "</text>\n";
}

std::string Line(double x1, double y1, double x2, double y2, std::string_view stroke, std::string_view extra = "") {
  return "<line x1=\"" + Num(x1) + "\" y1=\"" + Num(y1) + "\" x2=\"" + Num(x2) + "\" y2=\"" + Num(y2) +
         "\" stroke=\"" + std::string(stroke) + "\"" + std::string(extra) + "/>\n";
}

std::string Box(std::string_view kind, int chunk, double x, double y, double w, double h, std::string_view fill,
                const std::string& tip) {
  return "<rect class=\"" + std::string(kind) + "\" data-chunk=\"" + std::to_string(chunk) + "\" x=\"" + Num(x) +
         "\" y=\"" + Num(y) + "\" width=\"" + Num(std::max(w, 0.5)) + "\" height=\"" + Num(h) + "\" fill=\"" +
         std::string(fill) + "\" stroke=\"white\" stroke-width=\"0.5\"><title>" + Escape(tip) + "</title></rect>\n";
}

// A round step for axis ticks: 1, 2 or 5 times a power of ten, about span / 5.
double TickStep(double span) {
  if (!(span > 0) || !std::isfinite(span)) return 1.0;
  const double raw = span / 5.0;
  const double power = std::pow(10.0, std::floor(std::log10(raw)));
  for (double m : {1.0, 2.0, 5.0}) {
    if (m * power >= raw) return m * power;
  }
  return 10.0 * power;
}

std::string Short(double x) {
  char text[32];
  std::snprintf(text, sizeof text, "%g", std::isfinite(x) ? x : 0.0);
  return text;
}

const char* const kPalette[] = {"#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f",
                                "#edc948", "#b07aa1", "#ff9da7", "#9c755f", "#bab0ac"};

}  // namespace

std::string TimelineSvg(const SimResult& result, const BandwidthModel& bandwidth, const std::string& title) {
  constexpr double kWidth = 960, kHeight = 340, kLeft = 90, kRight = 20;
  constexpr double kBwTop = 40, kBwBottom = 140, kNetTop = 165, kCpuTop = 215, kLaneHeight = 35, kAxisY = 265;
  double t_max = result.ttft_s;
  for (const SimChunk& c : result.chunks) {
    t_max = std::max({t_max, c.transfer_end_s, c.decode_end_s, c.compute_end_s, c.resident_s});
  }
  if (!(t_max > 0) || !std::isfinite(t_max)) t_max = 1.0;
  const double plot_w = kWidth - kLeft - kRight;
  auto X = [&](double t) { return kLeft + plot_w * std::clamp(t, 0.0, t_max) / t_max; };

  std::string svg = Header(kWidth, kHeight);
  svg += Text(kLeft, 20, title);

  // Bandwidth delivered, sampled finely enough to show trace detail at this width.
  constexpr int kSamples = 400;
  std::vector<double> rates(kSamples + 1);
  double max_rate = 0;
  for (int i = 0; i <= kSamples; ++i) {
    rates[i] = bandwidth.RateAt(t_max * i / kSamples) * 8.0 / 1e6;
    if (!std::isfinite(rates[i])) rates[i] = 0;
    max_rate = std::max(max_rate, rates[i]);
  }
  if (max_rate <= 0) max_rate = 1.0;
  svg += "<polyline class=\"bandwidth\" fill=\"none\" stroke=\"#4e79a7\" points=\"";
  for (int i = 0; i <= kSamples; ++i) {
    svg += Num(X(t_max * i / kSamples)) + "," + Num(kBwBottom - (kBwBottom - kBwTop) * rates[i] / max_rate) + " ";
  }
  svg += "\"/>\n";
  svg += Line(kLeft, kBwBottom, kLeft + plot_w, kBwBottom, "#888");
  svg += Text(kLeft - 6, kBwTop + 4, Short(max_rate) + " Mbit/s", "end");
  svg += Text(kLeft - 6, kBwBottom, "0", "end");

  svg += Text(kLeft - 6, kNetTop + 22, "network", "end");
  svg += Text(kLeft - 6, kCpuTop + 22, "CPU", "end");
  for (size_t j = 0; j < result.chunks.size(); ++j) {
    const SimChunk& c = result.chunks[j];
    const int index = static_cast<int>(j);
    const std::string name = "chunk " + std::to_string(j);
    if (c.transfer_start_s >= 0 && c.transfer_end_s >= c.transfer_start_s) {
      svg += Box("transfer", index, X(c.transfer_start_s), kNetTop, X(c.transfer_end_s) - X(c.transfer_start_s),
                 kLaneHeight, c.cancelled || c.fell_back ? "#bab0ac" : "#4e79a7",
                 name + " transfer " + Short(c.transfer_start_s) + "-" + Short(c.transfer_end_s) + " s" +
                     (c.codec.empty() ? "" : " (" + c.codec + ")"));
    }
    if (c.decode_start_s >= 0 && c.decode_end_s >= c.decode_start_s) {
      svg += Box("decode", index, X(c.decode_start_s), kCpuTop, X(c.decode_end_s) - X(c.decode_start_s), kLaneHeight,
                 "#f28e2b", name + " decode " + Short(c.decode_start_s) + "-" + Short(c.decode_end_s) + " s");
    }
    if (c.compute_start_s >= 0 && c.compute_end_s >= c.compute_start_s) {
      svg += Box("prefill", index, X(c.compute_start_s), kCpuTop, X(c.compute_end_s) - X(c.compute_start_s),
                 kLaneHeight, c.fell_back ? "#e15759" : "#59a14f",
                 name + " prefill " + Short(c.compute_start_s) + "-" + Short(c.compute_end_s) + " s");
    }
  }
  for (double t : result.stats.replan_times_s) {
    svg += "<line class=\"replan\" x1=\"" + Num(X(t)) + "\" y1=\"" + Num(kNetTop - 8) + "\" x2=\"" + Num(X(t)) +
           "\" y2=\"" + Num(kNetTop - 1) + "\" stroke=\"#b07aa1\" stroke-width=\"1.5\"/>\n";
  }
  svg += Line(X(result.ttft_s), kBwTop, X(result.ttft_s), kAxisY, "#e15759", " stroke-dasharray=\"4 3\"");
  svg += Text(X(result.ttft_s) - 4, kBwTop - 6, "TTFT " + Short(result.ttft_s) + " s", "end");

  svg += Line(kLeft, kAxisY, kLeft + plot_w, kAxisY, "#444");
  const double step = TickStep(t_max);
  for (double t = 0; t <= t_max + 1e-9; t += step) {
    svg += Line(X(t), kAxisY, X(t), kAxisY + 4, "#444");
    svg += Text(X(t), kAxisY + 17, Short(t), "middle");
  }
  svg += Text(kLeft + plot_w / 2, kAxisY + 35, "seconds since the request", "middle");
  svg += Text(kLeft, kHeight - 8,
              "blue: transfer, orange: decode, green: prefill, red: prefill after a failed transfer, "
              "grey: cancelled or failed transfer, ticks: re-plans");
  svg += "</svg>\n";
  return svg;
}

std::string LineChartSvg(const std::string& title, const std::string& x_label, const std::string& y_label,
                         const std::vector<SvgSeries>& series) {
  constexpr double kWidth = 760, kHeight = 440, kLeft = 80, kRight = 170, kTop = 40, kBottom = 60;
  double x_min = HUGE_VAL, x_max = -HUGE_VAL, y_max = 0;
  std::vector<double> xs;
  for (const SvgSeries& s : series) {
    for (const auto& [x, y] : s.points) {
      if (!std::isfinite(x) || !std::isfinite(y)) continue;
      x_min = std::min(x_min, x);
      x_max = std::max(x_max, x);
      y_max = std::max(y_max, y);
      xs.push_back(x);
    }
  }
  if (xs.empty()) x_min = 0, x_max = 1;
  if (x_max <= x_min) x_max = x_min + 1;
  if (y_max <= 0) y_max = 1;
  const double y_step = TickStep(y_max);
  y_max = std::ceil(y_max / y_step) * y_step;
  const bool log_x = x_min > 0 && x_max / x_min >= 10;
  const double plot_w = kWidth - kLeft - kRight, plot_h = kHeight - kTop - kBottom;
  auto X = [&](double x) {
    const double f = log_x ? std::log(x / x_min) / std::log(x_max / x_min) : (x - x_min) / (x_max - x_min);
    return kLeft + plot_w * f;
  };
  auto Y = [&](double y) { return kTop + plot_h * (1.0 - y / y_max); };

  std::string svg = Header(kWidth, kHeight);
  svg += Text(kLeft, 22, title);
  svg += Line(kLeft, kTop + plot_h, kLeft + plot_w, kTop + plot_h, "#444");
  svg += Line(kLeft, kTop, kLeft, kTop + plot_h, "#444");
  for (double y = 0; y <= y_max + 1e-9 * y_max; y += y_step) {
    svg += Line(kLeft, Y(y), kLeft + plot_w, Y(y), "#eee");
    svg += Text(kLeft - 6, Y(y) + 4, Short(y), "end");
  }
  std::sort(xs.begin(), xs.end());
  xs.erase(std::unique(xs.begin(), xs.end()), xs.end());
  double last_label_x = -HUGE_VAL;
  for (double x : xs) {
    svg += Line(X(x), kTop + plot_h, X(x), kTop + plot_h + 4, "#444");
    if (X(x) - last_label_x >= 28) {  // keep tick labels from overlapping
      svg += Text(X(x), kTop + plot_h + 17, Short(x), "middle");
      last_label_x = X(x);
    }
  }
  svg += Text(kLeft + plot_w / 2, kHeight - 18, x_label + (log_x ? " (log scale)" : ""), "middle");
  svg += "<text x=\"16\" y=\"" + Num(kTop + plot_h / 2) + "\" text-anchor=\"middle\" transform=\"rotate(-90 16 " +
         Num(kTop + plot_h / 2) + ")\">" + Escape(y_label) + "</text>\n";

  for (size_t i = 0; i < series.size(); ++i) {
    const char* color = kPalette[i % std::size(kPalette)];
    std::vector<std::pair<double, double>> points;
    for (const auto& p : series[i].points) {
      if (std::isfinite(p.first) && std::isfinite(p.second)) points.push_back(p);
    }
    std::sort(points.begin(), points.end());
    svg += "<polyline class=\"series\" fill=\"none\" stroke=\"" + std::string(color) +
           "\" stroke-width=\"2\" points=\"";
    for (const auto& [x, y] : points) svg += Num(X(x)) + "," + Num(Y(y)) + " ";
    svg += "\"/>\n";
    for (const auto& [x, y] : points) {
      svg += "<circle cx=\"" + Num(X(x)) + "\" cy=\"" + Num(Y(y)) + "\" r=\"3\" fill=\"" + color + "\"><title>" +
             Escape(series[i].name + ": " + Short(x) + ", " + Short(y)) + "</title></circle>\n";
    }
    const double legend_y = kTop + 10 + 18.0 * static_cast<double>(i);
    svg += Line(kLeft + plot_w + 15, legend_y, kLeft + plot_w + 35, legend_y, color, " stroke-width=\"2\"");
    svg += Text(kLeft + plot_w + 40, legend_y + 4, series[i].name);
  }
  svg += "</svg>\n";
  return svg;
}

}  // namespace sparkv
