#include "runtime/simulator.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <deque>
#include <optional>
#include <string>

#include "plan/exact_planner.h"
#include "plan/planner.h"

namespace sparkv {
namespace {

// Events a load of a few thousand chunks needs are far fewer; this only stops a runaway loop.
constexpr int64_t kMaxEvents = 50'000'000;

struct NetworkPath {
  bool busy = false;
  bool done = false;
  LoadController::Transfer transfer;
  double start_s = 0.0;
  double first_byte_s = 0.0;
  double arrival_s = 0.0;   // +inf during an outage that outlasts the trace
  double deadline_s = 0.0;  // the last progress plus the stall timeout
  double next_tick_s = 0.0;
  uint64_t bytes_seen = 0;  // body bytes at the last progress report
};

struct CpuJob {
  enum class Kind { kNone, kCompute, kDecode };
  Kind kind = Kind::kNone;
  int32_t chunk = -1;
  double end_s = 0.0;
  int32_t piece_begin = 0;  // kCompute: the prefill piece in progress starts at this token
  int32_t piece_end = 0;    // and ends at this one
  bool interrupted = false;  // kCompute: the piece stops at end_s, cut short (OnTransferArrived)
};

}  // namespace

Result<SimResult> SimulateLoad(const Strategy& strategy, const SimScenario& scenario) {
  if (!(scenario.device_slowdown > 0.0) || !std::isfinite(scenario.device_slowdown)) {
    return InvalidArgumentError("device slowdown " + std::to_string(scenario.device_slowdown) +
                                " must be positive and finite");
  }
  if (!(scenario.timeout_s > 0.0) || !(scenario.progress_interval_s > 0.0) || !std::isfinite(scenario.timeout_s)) {
    return InvalidArgumentError("simulator timeout and progress interval must be positive");
  }
  SPARKV_ASSIGN_OR_RETURN(std::unique_ptr<LoadController> controller,
                          LoadController::Create(scenario.input, strategy));
  const PlanInput& in = scenario.input;
  const size_t n = in.chunks.size();
  const double slow = scenario.device_slowdown;

  SimResult result;
  result.strategy = strategy.name;
  result.initial_plan = controller->initial_plan();
  result.chunks.resize(n);

  NetworkPath net;
  CpuJob cpu;             // prefill, and decode when it shares the CPU
  CpuJob decoder;         // decode on a spare core
  std::deque<int32_t> decode_queue;  // arrived blobs waiting for their decode
  bool compute_done = false;
  double t = 0.0;
  // A transfer that ended while its chunk's prefill runs on to the piece where it stops: the end is
  // reported once the prefill has stopped (LoadController::AwaitingPrefillStop).
  struct HeldEnd {
    int32_t chunk = -1;
    LoadController::TransferResult result = LoadController::TransferResult::kOk;
    uint64_t bytes = 0;
    double elapsed_s = 0.0;
  };
  std::optional<HeldEnd> held_end;
  auto report_end = [&](const HeldEnd& end) {
    if (controller->OnTransferEnd(end.chunk, end.result, end.bytes, end.elapsed_s, t) &&
        end.result == LoadController::TransferResult::kOk) {
      decode_queue.push_back(end.chunk);
    }
  };

  // Body bytes of the transfer in flight received by time t.
  auto received_so_far = [&]() -> uint64_t {
    const double got = t > net.first_byte_s ? scenario.actual.BytesBetween(net.first_byte_s, t) : 0.0;
    return static_cast<uint64_t>(std::clamp(got, 0.0, static_cast<double>(net.transfer.bytes)));
  };
  // Ends the transfer in flight at t as cancelled, with `bytes` received.
  auto end_cancelled = [&](uint64_t bytes) {
    SimChunk& sc = result.chunks[static_cast<size_t>(net.transfer.chunk)];
    sc.cancelled = true;
    sc.transfer_end_s = t;
    result.received_bytes += bytes;
    result.network_busy_s += t - net.start_s;
    net.busy = false;
  };

  // Ends the prefill job `job` that stopped before its chunk's end, and reports the transfer end
  // that waited for the stop.
  auto end_stopped_prefill = [&](CpuJob* job) {
    result.chunks[static_cast<size_t>(job->chunk)].prefill_abandoned = true;
    if (held_end && held_end->chunk == job->chunk) {
      report_end(*held_end);
      held_end.reset();
    }
    *job = CpuJob{};
  };

  auto start_decode = [&](CpuJob& job, int32_t chunk) {
    const LevelOption* option = nullptr;
    for (const LevelOption& l : in.chunks[static_cast<size_t>(chunk)].levels) {
      if (l.codec == result.chunks[static_cast<size_t>(chunk)].codec) option = &l;
    }
    const double seconds = option != nullptr ? option->decode_seconds * slow : 0.0;
    job = {CpuJob::Kind::kDecode, chunk, t + seconds};
    result.chunks[static_cast<size_t>(chunk)].decode_start_s = t;
    result.cpu_busy_s += seconds;
  };

  for (int64_t n_events = 0;; ++n_events) {
    if (n_events > kMaxEvents) {
      uint64_t largest = 0;
      for (const ChunkSpec& spec : in.chunks) {
        for (const LevelOption& level : spec.levels) largest = std::max(largest, level.bytes);
      }
      char at[32];
      std::snprintf(at, sizeof at, "%.1f s", t);
      return InvalidArgumentError("the simulated load had not ended after " + std::to_string(kMaxEvents) +
                                  " events, at " + at + "; the largest blob is " + std::to_string(largest) +
                                  " bytes: check the manifest's sizes and the link's rate");
    }

    // Let idle parts take work at time t; repeat while any of them changed the state.
    for (bool changed = true; changed;) {
      changed = false;
      if (controller->NeedsReplan()) controller->Replan(t);
      if (!net.busy && !net.done) {
        if (std::optional<LoadController::Transfer> next = controller->NextTransfer(t)) {
          net.busy = true;
          net.transfer = *next;
          net.start_s = t;
          net.first_byte_s = t + in.request_overhead_s;
          net.arrival_s = scenario.actual.FinishTime(net.first_byte_s, next->bytes);
          net.deadline_s = t + scenario.timeout_s;
          net.bytes_seen = 0;
          net.next_tick_s = t + scenario.progress_interval_s;
          SimChunk& sc = result.chunks[static_cast<size_t>(next->chunk)];
          sc.transfer_start_s = t;
          sc.codec = next->codec;
          changed = true;
        } else if (controller->StreamPathDone()) {
          // As the loader's stream path does when it ends.
          net.done = true;
          controller->OnStreamPathEnded();
          changed = true;
        }
      }
      if (!in.decode_on_spare_core && cpu.kind == CpuJob::Kind::kNone && !decode_queue.empty()) {
        start_decode(cpu, decode_queue.front());
        decode_queue.pop_front();
        changed = true;
      }
      if (!in.decode_on_spare_core && cpu.kind == CpuJob::Kind::kCompute && decoder.kind == CpuJob::Kind::kNone &&
          !decode_queue.empty() && controller->Racing(cpu.chunk)) {
        // A racing prefill is a hedge: a blob that arrives during it is decoded at once, as the
        // loader does, and the prefill's piece ends that much later.
        start_decode(decoder, decode_queue.front());
        decode_queue.pop_front();
        cpu.end_s += decoder.end_s - t;
        changed = true;
      }
      if (in.decode_on_spare_core && decoder.kind == CpuJob::Kind::kNone && !decode_queue.empty()) {
        start_decode(decoder, decode_queue.front());
        decode_queue.pop_front();
        changed = true;
      }
      if (cpu.kind == CpuJob::Kind::kNone && !compute_done) {
        const LoadController::ComputeStep step = controller->NextCompute(t);
        if (step.kind == LoadController::ComputeStep::Kind::kCompute) {
          const ChunkSpec& spec = in.chunks[static_cast<size_t>(step.chunk)];
          const int32_t from = controller->PrefillStartToken(step.chunk);
          const int32_t piece_end = std::min(spec.end, from + controller->PrefillPieceTokens(step.chunk));
          // NOTE: each piece pays the profile's per-call term d. Profiles fitted on a Xeon gave d of
          // 0.02 to 0.06 s, while 32- and 256-token calls ran within 10% of each other there.
          const double seconds = in.compute.ChunkSeconds(from, piece_end) * slow;
          cpu = {CpuJob::Kind::kCompute, step.chunk, t + seconds, from, piece_end};
          result.chunks[static_cast<size_t>(step.chunk)].compute_start_s = t;
          result.cpu_busy_s += seconds;
          changed = true;
        } else if (step.kind == LoadController::ComputeStep::Kind::kDone) {
          compute_done = true;
        }
      }
    }
    if (controller->AllResident()) break;

    double next_t = HUGE_VAL;
    if (net.busy) next_t = std::min({next_t, net.arrival_s, net.deadline_s, net.next_tick_s});
    if (cpu.kind != CpuJob::Kind::kNone) next_t = std::min(next_t, cpu.end_s);
    if (decoder.kind != CpuJob::Kind::kNone) next_t = std::min(next_t, decoder.end_s);
    if (!std::isfinite(next_t)) {
      return InternalError("simulation stalled at " + std::to_string(t) + " s with " + strategy.name +
                           ": both paths wait and nothing is in flight");
    }
    t = next_t;

    if (net.busy && t >= std::min(net.arrival_s, net.deadline_s)) {
      const int32_t chunk = net.transfer.chunk;
      SimChunk& sc = result.chunks[static_cast<size_t>(chunk)];
      sc.transfer_end_s = t;
      result.network_busy_s += t - net.start_s;
      net.busy = false;
      HeldEnd end{chunk, LoadController::TransferResult::kOk, net.transfer.bytes, t - net.start_s};
      if (net.arrival_s <= net.deadline_s) {
        result.received_bytes += net.transfer.bytes;
      } else {
        const double got = scenario.actual.BytesBetween(net.first_byte_s, t);
        result.received_bytes += static_cast<uint64_t>(std::clamp(got, 0.0, static_cast<double>(net.transfer.bytes)));
        sc.fell_back = true;
        end.result = LoadController::TransferResult::kTransportError;
        end.bytes = 0;
      }
      if (end.result == LoadController::TransferResult::kOk && controller->OnTransferArrived(chunk, t) &&
          cpu.kind == CpuJob::Kind::kCompute && cpu.chunk == chunk && cpu.end_s > t) {
        // The prefill stops now. NOTE: the engine stops at its next layer boundary, up to one
        // layer's share of the piece later; the simulator stops at once.
        result.cpu_busy_s -= cpu.end_s - t;
        cpu.end_s = t;
        cpu.interrupted = true;
      }
      if (controller->AwaitingPrefillStop(chunk)) {
        held_end = end;
      } else {
        report_end(end);
      }
    } else if (net.busy && t >= net.next_tick_s) {
      const uint64_t bytes = received_so_far();
      net.next_tick_s = t + scenario.progress_interval_s;
      if (bytes > net.bytes_seen) {
        net.bytes_seen = bytes;
        net.deadline_s = t + scenario.timeout_s;
      }
      if (!controller->OnTransferProgress(net.transfer.chunk, bytes, t - net.start_s, t)) {
        end_cancelled(bytes);
        controller->OnTransferEnd(net.transfer.chunk, LoadController::TransferResult::kCancelled, bytes,
                                  t - net.start_s, t);
      }
    }
    for (CpuJob* job : {&cpu, &decoder}) {
      if (job->kind == CpuJob::Kind::kNone || job->end_s > t) continue;
      SimChunk& sc = result.chunks[static_cast<size_t>(job->chunk)];
      if (job->kind == CpuJob::Kind::kCompute) {
        const ChunkSpec& spec = in.chunks[static_cast<size_t>(job->chunk)];
        if (job->interrupted) {
          controller->OnPrefillInterrupted(job->chunk, job->piece_begin, t);
          end_stopped_prefill(job);
          continue;
        }
        if (job->piece_end < spec.end) {
          if (controller->ContinuePrefill(job->chunk, job->piece_end, t)) {
            // The next piece of the same prefill.
            const int32_t piece_end = std::min(spec.end, job->piece_end + controller->PrefillPieceTokens(job->chunk));
            const double seconds = in.compute.ChunkSeconds(job->piece_end, piece_end) * slow;
            job->piece_begin = job->piece_end;
            job->piece_end = piece_end;
            job->end_s = t + seconds;
            result.cpu_busy_s += seconds;
            continue;
          }
          end_stopped_prefill(job);
          continue;
        }
        sc.compute_end_s = t;
        sc.resident_s = t;
        controller->OnComputeEnd(job->chunk, t);
        if (held_end && held_end->chunk == job->chunk) {
          report_end(*held_end);  // dropped: the prefill ended before it could stop
          held_end.reset();
        }
      } else {
        sc.decode_end_s = t;
        sc.resident_s = t;
        sc.streamed = true;
        controller->OnDecodeEnd(job->chunk, true, t);
      }
      *job = CpuJob{};
    }
  }

  // A transfer still in flight when the load ends (raced by a prefill that won, or cancelled
  // after its last progress report) ends now, and its radio time counts.
  if (net.busy) end_cancelled(received_so_far());
  // A decode may finish after the last prefill; every chunk is resident by now.
  for (SimChunk& sc : result.chunks) {
    result.all_resident_s = std::max(result.all_resident_s, sc.resident_s);
    if (sc.streamed) ++result.n_streamed;
    else ++result.n_computed;
  }
  result.ttft_s = result.all_resident_s + in.query_seconds * slow;
  result.stats = controller->stats();
  return result;
}

Result<Plan> HindsightOptimum(const SimScenario& scenario) {
  PlanInput in = scenario.input;
  in.bandwidth = scenario.actual;
  in.compute.a *= scenario.device_slowdown;
  in.compute.c *= scenario.device_slowdown;
  in.compute.d *= scenario.device_slowdown;
  in.query_seconds *= scenario.device_slowdown;
  for (ChunkSpec& spec : in.chunks) {
    for (LevelOption& level : spec.levels) level.decode_seconds *= scenario.device_slowdown;
  }
  // No work budget here: the hindsight optimum is the yardstick, so it is solved exactly.
  SPARKV_RETURN_IF_ERROR(ValidatePlanInput(in));
  Plan plan = SolveExact(in, ExactOptions{}, nullptr);
  plan.strategy = "hindsight";
  return plan;
}

Result<BandwidthModel> LinkBandwidth(const Link& link, double offset_s) {
  if (!(offset_s >= 0.0) || !std::isfinite(offset_s)) {
    return InvalidArgumentError("trace offset " + std::to_string(offset_s) + " s must be finite and >= 0");
  }
  if (!link.is_trace()) return BandwidthModel::Constant(link.mean_bytes_per_s());
  const uint32_t period_ms = link.period_ms();
  // One rate per millisecond of the loop: an hour is 29 MB, far beyond any recorded trace.
  constexpr uint32_t kMaxPeriodMs = 3'600'000;
  if (period_ms > kMaxPeriodMs) {
    return InvalidArgumentError("trace period of " + std::to_string(period_ms) + " ms is longer than the " +
                                std::to_string(kMaxPeriodMs) + " ms the simulator models; cut the trace");
  }
  const uint64_t offset_ms = static_cast<uint64_t>(std::llround(offset_s * 1000.0)) % period_ms;
  std::vector<double> rates(period_ms);
  // Rates from the second loop on: the first loop lacks the opportunities that the trace's last
  // line shares with the next loop's start.
  for (uint32_t i = 0; i < period_ms; ++i) {
    const double begin = static_cast<double>(period_ms + (offset_ms + i) % period_ms) / 1000.0;
    rates[i] = link.Capacity(begin, begin + 0.001) / 0.001;
  }
  return BandwidthModel::Trace(rates, 0.001, /*loop=*/true);
}

PlanInput MakePlanInput(const Profile& profile, const Manifest& manifest, const std::vector<std::string>& levels,
                        int32_t n_query, int (*quality_rank)(const std::string& codec)) {
  PlanInput input;
  input.compute = profile.compute;
  input.decode_on_spare_core = profile.decode_on_spare_core;
  int32_t n_context = 0;
  for (size_t j = 0; j < manifest.chunks.size(); ++j) {
    const ManifestChunk& chunk = manifest.chunks[j];
    ChunkSpec spec{static_cast<int32_t>(j), chunk.begin, chunk.end, {}};
    for (const std::string& codec : levels) {
      auto level = chunk.levels.find(codec);
      if (level == chunk.levels.end()) continue;
      const DecodeCost* decode = profile.FindDecode(codec);
      spec.levels.push_back({codec, level->second.bytes, decode != nullptr ? decode->Seconds(level->second.bytes) : 0.0,
                             quality_rank(codec), level->second.digest});
    }
    n_context = chunk.end;
    input.chunks.push_back(std::move(spec));
  }
  input.query_seconds = profile.compute.ChunkSeconds(n_context, n_context + n_query) +
                        profile.compute.ChunkSeconds(n_context + n_query, n_context + n_query + 1);
  return input;
}

}  // namespace sparkv
