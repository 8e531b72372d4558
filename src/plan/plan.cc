#include "plan/plan.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <string>

namespace sparkv {
namespace {

bool IsNonNegativeFinite(double x) { return std::isfinite(x) && x >= 0.0; }

}  // namespace

Status ValidatePlanInput(const PlanInput& in) {
  const size_t n = in.chunks.size();
  if (!in.progress.empty() && in.progress.size() != n) {
    return InvalidArgumentError("plan input: progress has " + std::to_string(in.progress.size()) +
                                " entries for " + std::to_string(n) +
                                " chunks; give one per chunk or none");
  }
  if (!IsNonNegativeFinite(in.compute.a) || !IsNonNegativeFinite(in.compute.c) ||
      !IsNonNegativeFinite(in.compute.d)) {
    return InvalidArgumentError("plan input: compute cost a, c, d must be finite and >= 0");
  }
  if (!IsNonNegativeFinite(in.request_overhead_s) || !IsNonNegativeFinite(in.query_seconds)) {
    return InvalidArgumentError("plan input: request_overhead_s and query_seconds must be finite "
                                "and >= 0");
  }
  if (!std::isfinite(in.start_time_s) || !std::isfinite(in.network_busy_until_s) ||
      !std::isfinite(in.cpu_busy_until_s)) {
    return InvalidArgumentError("plan input: start and busy-until times must be finite");
  }
  for (size_t j = 0; j < n; ++j) {
    const ChunkSpec& c = in.chunks[j];
    // Built only on failure: Simulate validates on every call.
    const auto where = [j] { return "plan input: chunk " + std::to_string(j); };
    if (c.index != static_cast<int32_t>(j)) {
      return InvalidArgumentError(where() + " has index " + std::to_string(c.index) +
                                  "; chunks must be listed in index order from 0");
    }
    if (c.begin < 0 || c.end <= c.begin || (j > 0 && c.begin != in.chunks[j - 1].end)) {
      return InvalidArgumentError(where() + " covers [" + std::to_string(c.begin) + ", " +
                                  std::to_string(c.end) +
                                  "); ranges must be non-empty and follow each other");
    }
    for (const LevelOption& l : c.levels) {
      if (!IsNonNegativeFinite(l.decode_seconds) || l.quality_rank < 0) {
        return InvalidArgumentError(where() + " level \"" + l.codec +
                                    "\" needs decode_seconds >= 0 and quality_rank >= 0");
      }
    }
    if (!in.progress.empty() && in.progress[j].state == ChunkProgress::State::kStreaming &&
        (!std::isfinite(in.progress[j].arrival_s) ||
         !IsNonNegativeFinite(in.progress[j].decode_seconds))) {
      return InvalidArgumentError(where() + " is streaming with a non-finite arrival or a negative "
                                  "decode time");
    }
  }
  return Status::Ok();
}

Status ValidateDecisions(const PlanInput& in, std::span<const Decision> decisions) {
  if (decisions.size() != in.chunks.size()) {
    return InvalidArgumentError("decisions: got " + std::to_string(decisions.size()) + " for " +
                                std::to_string(in.chunks.size()) + " chunks");
  }
  for (size_t j = 0; j < decisions.size(); ++j) {
    const Decision& d = decisions[j];
    const auto where = [j] { return "decisions: chunk " + std::to_string(j); };
    const bool pending = in.IsPending(j);
    if ((d.path == Decision::Path::kCommitted) == pending) {
      return InvalidArgumentError(where() + (pending ? " is pending but marked committed"
                                                   : " is committed but given a new path"));
    }
    if (d.path == Decision::Path::kStream) {
      if (d.level < 0 || static_cast<size_t>(d.level) >= in.chunks[j].levels.size()) {
        return InvalidArgumentError(where() + " streams level " + std::to_string(d.level) +
                                    " of " + std::to_string(in.chunks[j].levels.size()));
      }
      if (!in.LevelAllowed(j, static_cast<size_t>(d.level))) {
        return InvalidArgumentError(where() + " streams level " + std::to_string(d.level) +
                                    ", below the quality floor " +
                                    std::to_string(in.max_quality_rank));
      }
    } else if (d.level != -1) {
      return InvalidArgumentError(where() + " does not stream but has level " +
                                  std::to_string(d.level) + "; use -1");
    }
  }
  return Status::Ok();
}

double StreamArrival(const PlanInput& in, double start_s, uint64_t bytes) {
  return in.bandwidth.FinishTime(start_s + in.request_overhead_s, bytes);
}

double InitialNetworkTime(const PlanInput& in) {
  return std::max(in.start_time_s, in.network_busy_until_s);
}

double InitialCpuTime(const PlanInput& in) {
  return std::max(in.start_time_s, in.cpu_busy_until_s);
}

Timeline Simulate(const PlanInput& in, std::span<const Decision> decisions) {
  // Planners call this on their own output; an invalid call is a bug, not an input error.
  for (const Status& s : {ValidatePlanInput(in), ValidateDecisions(in, decisions)}) {
    if (!s.ok()) {
      std::fprintf(stderr, "sparkv::Simulate: %s\n", s.ToString().c_str());
      std::abort();
    }
  }

  Timeline t;
  t.chunks.resize(in.chunks.size());
  double a = InitialNetworkTime(in);
  double c = InitialCpuTime(in);
  for (size_t j = 0; j < in.chunks.size(); ++j) {
    const Decision& d = decisions[j];
    ChunkTimeline& ct = t.chunks[j];
    ct.path = d.path;
    ct.level = d.level;
    if (d.path == Decision::Path::kCompute) {
      ct.start_s = c;
      c += in.compute.ChunkSeconds(in.chunks[j].begin, in.chunks[j].end);
      ct.end_s = c;
      ct.resident_s = c;
      ++t.n_computed;
      continue;
    }

    double arrival = 0.0;
    double decode = 0.0;
    if (d.path == Decision::Path::kStream) {
      const LevelOption& l = in.chunks[j].levels[static_cast<size_t>(d.level)];
      ct.start_s = a;
      arrival = StreamArrival(in, a, l.bytes);
      decode = l.decode_seconds;
      a = arrival;
      t.streamed_bytes += l.bytes;
      t.quality_rank_sum += l.quality_rank;
      ++t.n_streamed;
    } else if (in.progress[j].state == ChunkProgress::State::kStreaming) {
      ct.start_s = in.start_time_s;
      arrival = in.progress[j].arrival_s;
      decode = in.progress[j].decode_seconds;
    } else {
      ct.start_s = ct.end_s = ct.resident_s = std::min(in.start_time_s, c);
      continue;
    }
    ct.end_s = arrival;
    if (in.decode_on_spare_core) {
      ct.decode_start_s = arrival;
      ct.decode_end_s = arrival + decode;
      c = std::max(c, ct.decode_end_s);
    } else {
      ct.decode_start_s = std::max(c, arrival);
      ct.decode_end_s = ct.decode_start_s + decode;
      c = ct.decode_end_s;
    }
    ct.resident_s = c;
  }
  t.network_finish_s = a;
  t.compute_finish_s = c;
  t.all_resident_s = std::max(a, c);
  t.ttft_s = t.all_resident_s + in.query_seconds;
  return t;
}

}  // namespace sparkv
