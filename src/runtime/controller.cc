#include "runtime/controller.h"

#include <algorithm>
#include <cmath>
#include <iterator>

#include "common/log.h"

namespace sparkv {
namespace {

// A re-plan is due when the predicted bandwidth or device speed moved this far (relative) from
// what the current plan assumed.
constexpr double kBandwidthDrift = 0.25;
constexpr double kDeviceDrift = 0.15;
// The compute path takes a chunk it waits for only when computing it ends sooner than the stream
// path is predicted to deliver it by this fraction of the chunk's compute time: a guard against
// flip-flopping on noisy predictions.
constexpr double kTakeMargin = 0.05;
// Bounds on one measured / predicted compute time ratio, so that one outlier (a page fault storm,
// a descheduled thread) cannot make the plan absurd.
constexpr double kMinDeviceRatio = 0.05;
constexpr double kMaxDeviceRatio = 20.0;
// One bandwidth sample spans at least this much of a transfer. Cellular links deliver in bursts
// at millisecond scale; samples this long average the bursts, so the five-sample window covers
// about a second of history.
constexpr size_t kSampleMinBytes = 256 * 1024;
constexpr double kSampleMinSeconds = 0.25;
// Time constant of the smoothed rate plans use, in seconds of transfer time: long enough that a
// dip of a bursty cellular link does not move chunks to the compute path, short enough to follow
// a lasting change within a few seconds.
constexpr double kSmoothingSeconds = 2.0;
// A transfer without bytes for this long (beyond the request overhead) is stalling, not starting.
constexpr double kStallSeconds = 0.5;
// Prefill pieces of chunks that may still move to the stream path. Smaller pieces react sooner
// but make each prefill call less efficient. A stopped prefill keeps the network idle until its
// piece ends. A 64-token piece takes about 2.6 s in the demo's Qwen2.5-0.5B profile. Across the
// trace sweep the adaptive strategy ended 4.2% above the hindsight optimum with 64-token pieces
// and 2.8% with 32. 16-token pieces slowed the real prefill in some runs on a loaded machine.
// The piece is the smallest of these whose fixed cost per prefill call (the profile's d) is at
// most kMaxPieceOverhead of its time: on the Xeon the Qwen2.5-0.5B shape pays d = 62 ms per
// call, 23% of a 32-token piece, and a 256-token chunk in 32-token pieces took 21% longer than
// in 64-token ones.
constexpr int32_t kPieceTokenChoices[] = {32, 64, 128};
constexpr double kMaxPieceOverhead = 0.15;
// The first piece of a load is shorter, under the same overhead rule, so that a device slower
// than its profile shows sooner. On TinyLlama-1.1B at its crossover on a device 2x slower, a
// 32-token first piece took 5.9 s before a large blob could restart at a smaller level. 8-token
// calls ran 5% slower per token than 32-token ones on the Qwen2.5-0.5B shape (2-core EPYC), and
// the first device factor shows that too.
constexpr int32_t kFirstPieceTokens = 8;
// After the link's rate predictions missed, a path that would idle races the other for a chunk
// when its predicted time is at most 1 + the recent error times the other's, up to this many
// times. The compute path also races within the strategy's race_ratio, a hedge set in advance,
// until the link shows steady (SteadyLink).
// A race costs energy. It wins back a whole chunk when the link dips or recovers against the
// prediction.
constexpr double kRaceRatio = 2.0;
// The compute path races a chunk only when its blob is due more than this many prefill pieces
// from now. It was 2 while a blob that arrived during a piece waited for the piece to end. On
// stories260K's 64-token chunks (two pieces) that kept a re-plan's wrong move from being raced,
// 17% above the hindsight optimum on one trace point.
constexpr double kMinRacePieces = 0.5;
// Transfers whose prediction errors set how far a race may reach (RaceRatio).
constexpr size_t kRaceErrorWindow = 3;
// Relative error of the transfer time predictions under which the link counts as steady
// (SteadyLink). At 5%, 10% and 20% the simulated sweeps and matrices gave the same TTFTs, and
// energy within 0.2% of each other.
constexpr double kSteadyLinkError = 0.1;

BandwidthEstimatorOptions EstimatorOptions(double initial_bytes_per_s) {
  BandwidthEstimatorOptions options;
  options.n_window = 5;
  options.initial_bytes_per_s = initial_bytes_per_s;
  return options;
}

// Returns when the link of snapshot `in` is free if only the transfers it marks as streaming
// occupy it: now, or the latest of their arrivals.
double LinkFreeAfterStreams(const PlanInput& in, double now_s) {
  double free_s = now_s;
  for (const ChunkProgress& progress : in.progress) {
    if (progress.state == ChunkProgress::State::kStreaming) free_s = std::max(free_s, progress.arrival_s);
  }
  return free_s;
}

}  // namespace

Result<std::unique_ptr<LoadController>> LoadController::Create(PlanInput input, const Strategy& strategy,
                                                              bool await_stream_offer) {
  SPARKV_RETURN_IF_ERROR(ValidatePlanInput(input));
  if (await_stream_offer) {
    for (const ChunkSpec& spec : input.chunks) {
      if (!spec.levels.empty()) {
        return InvalidArgumentError("a load that waits for the stream path's offer starts without levels; chunk " +
                                    std::to_string(spec.index) + " has " + std::to_string(spec.levels.size()));
      }
    }
  }
  if (!input.progress.empty() || input.start_time_s != 0.0 || input.network_busy_until_s != 0.0 ||
      input.cpu_busy_until_s != 0.0) {
    return InvalidArgumentError("a load controller starts from a fresh plan input: every chunk pending at time 0");
  }
  const Planner* planner = FindPlanner(strategy.planner);
  if (planner == nullptr) {
    return InvalidArgumentError("strategy '" + strategy.name + "' names planner '" + strategy.planner +
                                "', which is not registered");
  }
  std::unique_ptr<LoadController> controller(new LoadController(std::move(input), strategy, planner));
  controller->awaiting_offer_ = await_stream_offer;
  return controller;
}

LoadController::LoadController(PlanInput input, const Strategy& strategy, const Planner* planner)
    : input_(std::move(input)),
      strategy_(strategy),
      planner_(planner),
      chunks_(input_.chunks.size()),
      estimator_(EstimatorOptions(input_.bandwidth.RateAt(0.0))),
      sampler_(&estimator_, kSampleMinBytes, kSampleMinSeconds) {
  piece_tokens_ = kPieceTokenChoices[std::size(kPieceTokenChoices) - 1];
  for (int32_t tokens : kPieceTokenChoices) {
    if (input_.compute.d <= kMaxPieceOverhead * input_.compute.ChunkSeconds(0, tokens)) {
      piece_tokens_ = tokens;
      break;
    }
  }
  first_piece_tokens_ = piece_tokens_;
  if (input_.compute.d <= kMaxPieceOverhead * input_.compute.ChunkSeconds(0, kFirstPieceTokens)) {
    first_piece_tokens_ = std::min(piece_tokens_, kFirstPieceTokens);
  }
  initial_plan_ = SolveWithFadeMargin(*planner_, strategy_, input_);
  initial_plan_.strategy = strategy_.name;
  ApplyDecisions(initial_plan_.decisions, /*count_moves=*/false);
  planned_bytes_per_s_ = input_.bandwidth.RateAt(0.0);
  SetFloatCodec();
}

void LoadController::SetFloatCodec() {
  float_codec_.clear();
  for (size_t j = 0; j < chunks_.size() && float_codec_.empty(); ++j) {
    const Decision& d = initial_plan_.decisions[j];
    if (d.path == Decision::Path::kStream) float_codec_ = input_.chunks[j].levels[static_cast<size_t>(d.level)].codec;
  }
}

void LoadController::ApplyDecisions(const std::vector<Decision>& decisions, bool count_moves) {
  for (size_t j = 0; j < chunks_.size(); ++j) {
    Chunk& c = chunks_[j];
    if (!AwaitsTransfer(c) || decisions[j].path == Decision::Path::kCommitted) continue;
    Decision next = decisions[j];
    if (next.path == Decision::Path::kStream && !CanStream(j)) next = Decision{};
    if (count_moves && next.path != c.decision.path) ++stats_.n_moved;
    c.decision = next;
  }
}

double LoadController::ComputeSeconds(size_t j) const {
  return input_.compute.ChunkSeconds(input_.chunks[j].begin, input_.chunks[j].end) * device_factor_;
}

double LoadController::ComputeSeconds(size_t j, int32_t from) const {
  return input_.compute.ChunkSeconds(std::max(from, input_.chunks[j].begin), input_.chunks[j].end) * device_factor_;
}

double LoadController::PieceSeconds(size_t j, int32_t from) const {
  return ComputeSeconds(j, from) - ComputeSeconds(j, std::min(input_.chunks[j].end, from + piece_tokens_));
}

double LoadController::PrefillSecondsLeft(size_t j, double now_s) const {
  const Chunk& c = chunks_[j];
  const double left_s = c.compute_start_s + ComputeSeconds(j, c.prefill_from) - now_s;
  if (left_s > 0.0) return left_s;
  // Overdue: the device is slower than its measured factor, and the factor moves only when a piece
  // ends. As a late transfer is, the prefill is predicted to go on at the pace it has kept so
  // far: its finished pieces and half of the piece in progress, over the time since it began.
  const int32_t end = input_.chunks[j].end;
  const int32_t piece_end = std::min(end, c.prefill_done + PrefillPieceTokens(static_cast<int32_t>(j)));
  const double rest_s = ComputeSeconds(j, c.prefill_done);
  const double half_piece_s = 0.5 * (rest_s - ComputeSeconds(j, piece_end));
  const double done_s = ComputeSeconds(j, c.prefill_from) - rest_s + half_piece_s;
  const double elapsed_s = now_s - c.compute_start_s;
  if (!(done_s > 0.0)) return 0.0;
  return (rest_s - half_piece_s) * elapsed_s / done_s;
}

double LoadController::DecodeSeconds(size_t j, int32_t level) const {
  return input_.chunks[j].levels[static_cast<size_t>(level)].decode_seconds * device_factor_;
}

bool LoadController::CanStream(size_t j) const {
  if (network_dead_ || chunks_[j].stream_failed) return false;
  for (size_t l = 0; l < input_.chunks[j].levels.size(); ++l) {
    if (input_.LevelAllowed(j, l)) return true;
  }
  return false;
}

int32_t LoadController::FloatLevel(size_t j) const {
  if (float_codec_.empty() || !CanStream(j)) return -1;
  for (size_t l = 0; l < input_.chunks[j].levels.size(); ++l) {
    if (input_.chunks[j].levels[l].codec == float_codec_ && input_.LevelAllowed(j, l)) return static_cast<int32_t>(l);
  }
  return -1;
}

double LoadController::PredictedBytesPerSecond() const {
  const double rate = smoothed_seconds_ > 0.0 ? smoothed_bytes_ / smoothed_seconds_ : input_.bandwidth.RateAt(0.0);
  return std::max(rate, 1.0);
}

double LoadController::OptimisticBytesPerSecond() const {
  const double recent =
      estimator_.n_samples() > 0 ? estimator_.HarmonicMeanBytesPerSecond() : input_.bandwidth.RateAt(0.0);
  return std::max(recent, PredictedBytesPerSecond());
}

double LoadController::PredictedStreamResident(size_t j, double now_s, double rate) const {
  const Chunk& c = chunks_[j];
  if (c.state == State::kDecoding) return std::max(now_s, c.decode_start_s + DecodeSeconds(j, c.fetch_level));
  if (InFlight(c)) {
    // A transfer running for a while cannot be predicted to go faster than it has gone so far.
    const double elapsed = now_s - c.fetch_start_s;
    if (elapsed > kStallSeconds) {
      rate = std::min(rate, std::max(1.0, static_cast<double>(c.bytes_so_far) / elapsed));
    }
    const uint64_t total = input_.chunks[j].levels[static_cast<size_t>(c.fetch_level)].bytes;
    const uint64_t left = total - std::min(total, c.bytes_so_far);
    // The bytes left flow from the last point known: the last progress report, or the first
    // byte. Counting from now instead would ignore what arrived since the report, and a transfer
    // about to finish could look worth cancelling.
    const double known_s = c.bytes_so_far == 0 ? c.fetch_start_s + input_.request_overhead_s
                                               : c.fetch_start_s + c.progress_elapsed_s;
    return std::max(now_s, known_s + static_cast<double>(left) / rate) + DecodeSeconds(j, c.fetch_level);
  }
  if (!AwaitsTransfer(c) || c.decision.path != Decision::Path::kStream) return HUGE_VAL;
  // Pending: it goes after the transfer in flight, if any, and after the planned transfers the
  // stream path takes first (from the back when the boundary floats, else in index order).
  double network_free = now_s;
  for (size_t i = 0; i < chunks_.size(); ++i) {
    if (InFlight(chunks_[i])) {
      network_free = std::max(network_free, PredictedStreamResident(i, now_s, rate) - DecodeSeconds(i, chunks_[i].fetch_level));
    }
  }
  const bool from_back = strategy_.float_boundary && PendingStreamsFormSuffix();
  double queued_s = 0.0;
  for (size_t i = frontier_; i < chunks_.size(); ++i) {
    const Chunk& other = chunks_[i];
    if (!AwaitsTransfer(other) || other.decision.path != Decision::Path::kStream || !CanStream(i)) continue;
    if (from_back ? i < j : i > j) continue;
    const LevelOption& level = input_.chunks[i].levels[static_cast<size_t>(other.decision.level)];
    queued_s += input_.request_overhead_s + static_cast<double>(level.bytes) / rate;
  }
  return network_free + queued_s + DecodeSeconds(j, c.decision.level);
}

bool LoadController::AnyPendingStream() const {
  for (size_t j = frontier_; j < chunks_.size(); ++j) {
    const Chunk& c = chunks_[j];
    if (AwaitsTransfer(c) && c.decision.path == Decision::Path::kStream && CanStream(j)) return true;
  }
  return false;
}

bool LoadController::InFlight(const Chunk& c) {
  return c.state == State::kFetching || (c.state == State::kComputing && c.early_fetch);
}

bool LoadController::AwaitsTransfer(const Chunk& c) {
  return c.state == State::kPending || (c.state == State::kComputing && c.racing && !c.early_fetch);
}

bool LoadController::PendingStreamsFormSuffix() const {
  bool seen_stream = false;
  for (size_t j = frontier_; j < chunks_.size(); ++j) {
    const Chunk& c = chunks_[j];
    if (!AwaitsTransfer(c)) continue;
    const bool streams = c.decision.path == Decision::Path::kStream && CanStream(j);
    if (streams) seen_stream = true;
    else if (seen_stream) return false;
  }
  return true;
}

void LoadController::AdvanceFrontier() {
  while (frontier_ < chunks_.size() && chunks_[frontier_].state == State::kResident) ++frontier_;
}

std::optional<LoadController::Transfer> LoadController::NextTransfer(double now_s) {
  if (network_dead_) return std::nullopt;
  const size_t n = chunks_.size();
  int32_t pick = -1;
  int32_t level = -1;
  // A prefill that a plan stops runs on to its next piece boundary. Its blob is fetched meanwhile,
  // so that the network does not idle while the compute path finishes a piece it will drop. When
  // other chunks to stream form a suffix, they come first, from the back: the stopped chunk is
  // the frontier, which the compute path may race from its kept rows if the link fades.
  const bool back_first = strategy_.float_boundary && AnyPendingStream() && PendingStreamsFormSuffix();
  for (size_t j = frontier_; j < n && !back_first; ++j) {
    const Chunk& c = chunks_[j];
    if (c.state == State::kComputing && c.abandon_requested && !c.early_fetch &&
        c.decision.path == Decision::Path::kStream && CanStream(j)) {
      pick = static_cast<int32_t>(j);
      level = c.decision.level;
    }
  }
  if (pick < 0 && strategy_.claim_until_meet) {
    // Cake: the highest pending chunk, until the paths meet or a chunk lacks the codec.
    for (size_t j = n; j-- > frontier_;) {
      if (chunks_[j].state != State::kPending) continue;
      level = FloatLevel(j);
      if (level >= 0) pick = static_cast<int32_t>(j);
      break;
    }
  } else if (pick < 0) {
    // The planned stream chunks; fetched from the back when they form a suffix of the pending
    // chunks and the strategy lets the boundary float, else in index order.
    // A chunk the compute path races, planned to stream, keeps its place among them.
    const bool from_back = strategy_.float_boundary && PendingStreamsFormSuffix();
    for (size_t j = frontier_; j < n; ++j) {
      const Chunk& c = chunks_[j];
      if (!AwaitsTransfer(c) || c.decision.path != Decision::Path::kStream || !CanStream(j)) continue;
      pick = static_cast<int32_t>(j);
      level = c.decision.level;
      if (!from_back) break;
    }
  }
  if (pick < 0 && strategy_.replan && frontier_ < n) {
    // Nothing else to fetch: race the chunk in prefill when its blob could still win.
    const Chunk& c = chunks_[frontier_];
    if (c.state == State::kComputing && !c.early_fetch && !c.abandon_requested && c.in_pieces && CanStream(frontier_)) {
      level = StreamRaceLevel(frontier_, now_s);
      if (level >= 0) pick = static_cast<int32_t>(frontier_);
    }
  }
  if (pick < 0 && strategy_.replan && (smoothed_seconds_ == 0.0 || strategy_.hedge_fetch)) {
    // The idle stream path fetches the last pending chunk at its smallest level, although the plan
    // computes it. Before any transfer has measured the link, a plan that streams nothing may rest
    // on a bad first estimate, and this measures it. Later it hedges against a link that recovers
    // faster than predicted. Far from the compute path, the blob arrives first or is raced there.
    for (size_t j = n; j-- > frontier_ + 1;) {
      if (chunks_[j].state != State::kPending || !CanStream(j)) continue;
      for (size_t l = 0; l < input_.chunks[j].levels.size(); ++l) {
        if (!input_.LevelAllowed(j, l)) continue;
        if (level < 0 || input_.chunks[j].levels[l].bytes < input_.chunks[j].levels[static_cast<size_t>(level)].bytes) {
          level = static_cast<int32_t>(l);
        }
      }
      // A blob that takes longer to decode than its chunk takes to compute would cost the device
      // more than it could save, so then the link stays unmeasured. So would a request whose first
      // byte cannot come before the compute path has finished the chunk anyway: on a tiny model
      // it would only wake the radio, and its tail costs more energy than the whole prefill.
      double compute_through_j = 0.0;
      for (size_t i = frontier_; i <= j; ++i) {
        if (chunks_[i].state == State::kPending) compute_through_j += ComputeSeconds(i);
        if (chunks_[i].state == State::kComputing) compute_through_j += PrefillSecondsLeft(i, now_s);
      }
      const bool too_late = input_.request_overhead_s >= compute_through_j;
      if (level >= 0 && DecodeSeconds(j, level) < ComputeSeconds(j) && !too_late) {
        pick = static_cast<int32_t>(j);
      } else {
        level = -1;
      }
      break;
    }
  }
  if (pick < 0) return std::nullopt;

  Chunk& c = chunks_[static_cast<size_t>(pick)];
  if (c.state == State::kComputing) {
    c.early_fetch = true;
    if (!c.abandon_requested && !c.racing) {
      c.racing = true;
      ++stats_.n_raced;
      SPARKV_LOG_DEBUG("%.2f s: chunk %d: the stream path races its prefill", now_s, pick);
    }
  } else {
    c.state = State::kFetching;
  }
  c.fetch_level = level;
  c.fetch_start_s = now_s;
  c.fetch_predicted_s =
      static_cast<double>(input_.chunks[static_cast<size_t>(pick)].levels[static_cast<size_t>(level)].bytes) /
      PredictedBytesPerSecond();
  c.blob_arrived = false;
  c.bytes_so_far = 0;
  c.progress_elapsed_s = 0.0;
  c.cancel_requested = false;
  sampler_ = ProgressSampler(&estimator_, kSampleMinBytes, kSampleMinSeconds);
  sampled_chunk_ = pick;
  ++version_;
  const LevelOption& option = input_.chunks[static_cast<size_t>(pick)].levels[static_cast<size_t>(level)];
  return Transfer{pick, level, option.codec, option.bytes, option.digest};
}

bool LoadController::StreamPathDone() const {
  if (network_dead_) return true;
  for (size_t j = frontier_; j < chunks_.size(); ++j) {
    const Chunk& c = chunks_[j];
    // A prefill in pieces may still be abandoned for the stream path, and a raced one may pause
    // for its blob.
    if (c.state == State::kComputing && (c.abandon_requested || Abandonable(j))) return false;
    if (c.state == State::kComputing && c.racing && c.in_pieces && CanStream(j)) return false;
    if (c.state != State::kPending || !CanStream(j)) continue;
    // Static strategies stream only what the first plan chose. Cake and re-planning ones may
    // still take any pending chunk.
    if (strategy_.claim_until_meet || strategy_.replan || c.decision.path == Decision::Path::kStream) return false;
  }
  return true;
}

void LoadController::OnStreamPathEnded() {
  if (network_dead_) return;
  network_dead_ = true;
  ++version_;
  MarkDirty();
}

bool LoadController::OnTransferProgress(int32_t chunk, uint64_t bytes_so_far, double elapsed_s, double now_s) {
  (void)now_s;
  Chunk& c = chunks_[static_cast<size_t>(chunk)];
  if (sampled_chunk_ == chunk) sampler_.OnProgress(bytes_so_far, elapsed_s);
  // Time without bytes counts once the first byte is late or has come: a stall must pull the
  // smoothed rate down, the request's latency must not.
  const bool counts = bytes_so_far > 0 || elapsed_s > input_.request_overhead_s + kStallSeconds;
  // The request's latency before the first byte is not transfer time: it is in request_overhead_s.
  const double counted_from = c.bytes_so_far == 0 && elapsed_s > input_.request_overhead_s
                                  ? std::max(c.progress_elapsed_s, input_.request_overhead_s)
                                  : c.progress_elapsed_s;
  if (counts && elapsed_s > counted_from) {
    const double dt = elapsed_s - counted_from;
    const double keep = std::exp(-dt / kSmoothingSeconds);
    smoothed_bytes_ = smoothed_bytes_ * keep + static_cast<double>(bytes_so_far - std::min(bytes_so_far, c.bytes_so_far));
    smoothed_seconds_ = smoothed_seconds_ * keep + dt;
  }
  c.progress_elapsed_s = elapsed_s;
  c.bytes_so_far = bytes_so_far;
  return InFlight(c) && !c.cancel_requested;
}

bool LoadController::OnTransferEnd(int32_t chunk, TransferResult result, uint64_t bytes, double elapsed_s,
                                   double now_s) {
  Chunk& c = chunks_[static_cast<size_t>(chunk)];
  if (sampled_chunk_ == chunk) {
    if (result == TransferResult::kOk) sampler_.Finish(bytes, elapsed_s);
    sampled_chunk_ = -1;
  }
  ++version_;
  MarkDirty();
  if (c.restart_requested) {
    // Cancelled for another level: the chunk waits for the stream path again, with the decision
    // the restart plan gave it, and the blob, if any, is dropped.
    c.restart_requested = false;
    c.cancel_requested = false;
    if (c.state == State::kFetching) c.state = State::kPending;
    return false;
  }
  if (c.state != State::kFetching || c.cancel_requested) {
    // The compute path took the chunk while it was in flight; the blob, if any, is dropped.
    c.cancel_requested = false;
    return false;
  }
  switch (result) {
    case TransferResult::kOk:
      if (c.fetch_predicted_s > 0.0) {
        const double actual_s = std::max(0.0, elapsed_s - input_.request_overhead_s);
        transfer_errors_.push_back(std::abs(actual_s - c.fetch_predicted_s) / c.fetch_predicted_s);
        if (transfer_errors_.size() > kRaceErrorWindow) transfer_errors_.pop_front();
      }
      c.state = State::kDecoding;
      c.kept_rows_end = -1;  // the decode overwrites the rows
      c.decode_start_s = now_s;
      return true;
    case TransferResult::kTransportError:
      // The link or the server is gone: every chunk still waiting for it is computed instead.
      network_dead_ = true;
      for (size_t j = 0; j < chunks_.size(); ++j) {
        Chunk& other = chunks_[j];
        if (j != static_cast<size_t>(chunk) && other.state == State::kPending &&
            other.decision.path == Decision::Path::kStream) {
          other.decision = Decision{};
          ++stats_.n_fallback;
        }
      }
      break;
    case TransferResult::kDataError:
    case TransferResult::kCancelled:
      break;
  }
  c.state = State::kPending;
  c.stream_failed = true;
  c.decision = Decision{};
  ++stats_.n_fallback;
  return false;
}

bool LoadController::OnTransferArrived(int32_t chunk, double now_s) {
  const size_t j = static_cast<size_t>(chunk);
  Chunk& c = chunks_[j];
  if (c.state != State::kComputing || !c.early_fetch) return false;
  c.blob_arrived = true;
  // A plan already stops this prefill at its next piece, so the rest of the piece is useless.
  if (c.abandon_requested) return true;
  if (!c.racing) return false;
  // Stop the piece in progress when decoding the blob ends sooner than the prefill would.
  const double left_s = PrefillSecondsLeft(j, now_s);
  SPARKV_LOG_DEBUG("%.2f s: chunk %zu: blob arrived, %.2f s of prefill left", now_s, j, left_s);
  if (!(DecodeSeconds(j, c.fetch_level) < left_s)) return false;
  c.decision = Decision{Decision::Path::kStream, c.fetch_level};
  c.abandon_requested = true;
  ++version_;
  return true;
}

bool LoadController::AwaitingPrefillStop(int32_t chunk) const {
  const Chunk& c = chunks_[static_cast<size_t>(chunk)];
  return c.state == State::kComputing && c.early_fetch;
}

void LoadController::OnDecodeEnd(int32_t chunk, bool ok, double now_s) {
  (void)now_s;
  Chunk& c = chunks_[static_cast<size_t>(chunk)];
  ++version_;
  MarkDirty();
  if (ok) {
    c.state = State::kResident;
    AdvanceFrontier();
    return;
  }
  c.state = State::kPending;
  c.stream_failed = true;
  c.decision = Decision{};
  ++stats_.n_fallback;
}

LoadController::ComputeStep LoadController::NextCompute(double now_s) {
  AdvanceFrontier();
  if (frontier_ == chunks_.size()) return {ComputeStep::Kind::kDone, -1};
  const size_t j = frontier_;
  Chunk& c = chunks_[j];
  bool take = false;
  bool race = false;
  switch (c.state) {
    case State::kPending:
      if (c.decision.path != Decision::Path::kStream || !CanStream(j) || strategy_.claim_until_meet) {
        // Planned for compute, or Cake's rule: the compute path takes the lowest pending chunk.
        take = true;
      } else if (ComputingWins(j, now_s)) {
        take = true;
        ++stats_.n_moved;
      } else if (ComputeRaceWorthwhile(j, now_s)) {
        // Still planned to stream: the stream path fetches it in its turn.
        take = race = true;
      }
      break;
    case State::kFetching:
      if (ComputingWins(j, now_s)) {
        take = true;
        if (OnlyStreamChunk(j) && PrefillsInPieces(j)) {
          race = true;  // the link has nothing else to do: let the transfer go on
        } else {
          c.cancel_requested = true;
          ++stats_.n_cancelled;
        }
      } else if (ComputeRaceWorthwhile(j, now_s)) {
        take = race = true;
      }
      break;
    case State::kDecoding:
    case State::kComputing:
    case State::kResident:
      break;
  }
  if (!take) return {ComputeStep::Kind::kWait, -1};
  if (race) {
    c.racing = true;
    c.early_fetch = c.state == State::kFetching;
    ++stats_.n_raced;
    SPARKV_LOG_DEBUG("%.2f s: chunk %zu: the compute path races the stream path%s", now_s, j,
                     c.early_fetch ? ", whose transfer goes on" : "");
  }
  c.state = State::kComputing;
  c.compute_start_s = now_s;
  c.prefill_from = ResumeToken(j);
  c.prefill_done = c.prefill_from;
  c.in_pieces = PrefillsInPieces(j);
  ++version_;
  return {ComputeStep::Kind::kCompute, static_cast<int32_t>(j)};
}

void LoadController::OnComputeEnd(int32_t chunk, double now_s) {
  Chunk& c = chunks_[static_cast<size_t>(chunk)];
  c.state = State::kResident;
  c.abandon_requested = false;  // the last piece ended first: a blob fetched early is dropped
  c.early_fetch = false;
  c.racing = false;
  c.kept_rows_end = -1;
  MeasureDevice(input_.compute.ChunkSeconds(c.prefill_from, input_.chunks[static_cast<size_t>(chunk)].end),
                now_s - c.compute_start_s);
  AdvanceFrontier();
  ++version_;
  MarkDirty();
}

bool LoadController::Racing(int32_t chunk) const {
  const Chunk& c = chunks_[static_cast<size_t>(chunk)];
  return c.state == State::kComputing && c.racing;
}

int32_t LoadController::ResumeToken(size_t j) const {
  const int32_t kept_end = chunks_[j].kept_rows_end;
  return kept_end > input_.chunks[j].begin ? kept_end : input_.chunks[j].begin;
}

int32_t LoadController::PrefillStartToken(int32_t chunk) const {
  return chunks_[static_cast<size_t>(chunk)].prefill_from;
}

void LoadController::MeasureDevice(double predicted_s, double measured_s) {
  if (!(predicted_s > 0.0) || !(measured_s > 0.0)) return;
  const double ratio = std::clamp(measured_s / predicted_s, kMinDeviceRatio, kMaxDeviceRatio);
  // The latest measurement weighs half: the factor follows a change in load within two chunks.
  device_factor_ = n_compute_samples_ == 0 ? ratio : 0.5 * device_factor_ + 0.5 * ratio;
  ++n_compute_samples_;
}

bool LoadController::NeedsReplan() const {
  if (!strategy_.replan || awaiting_offer_ || AllResident()) return false;
  // An abandon is on its way: plan again once the chunk has left the compute path.
  for (size_t j = frontier_; j < chunks_.size(); ++j) {
    if (chunks_[j].abandon_requested) return false;
  }
  bool any_pending = false;
  for (size_t j = frontier_; j < chunks_.size() && !any_pending; ++j) {
    // A prefill in pieces is still open to a plan that abandons it.
    any_pending = chunks_[j].state == State::kPending || (chunks_[j].state == State::kComputing && Abandonable(j));
  }
  if (!any_pending) return false;
  if (dirty_) return true;
  const double rate = PredictedBytesPerSecond();
  return std::abs(rate - planned_bytes_per_s_) > kBandwidthDrift * planned_bytes_per_s_ ||
         std::abs(device_factor_ - planned_device_factor_) > kDeviceDrift * planned_device_factor_;
}

PlanInput LoadController::ReplanInput(double now_s, uint64_t* version) {
  *version = version_;
  return Snapshot(now_s, PredictedBytesPerSecond());
}

PlanInput LoadController::Snapshot(double now_s, double rate) const {
  PlanInput in = input_;
  in.compute.a *= device_factor_;
  in.compute.c *= device_factor_;
  in.compute.d *= device_factor_;
  for (ChunkSpec& spec : in.chunks) {
    for (LevelOption& level : spec.levels) level.decode_seconds *= device_factor_;
  }
  in.query_seconds *= device_factor_;
  in.bandwidth = BandwidthModel::Constant(rate);
  in.start_time_s = now_s;
  in.network_busy_until_s = now_s;
  in.cpu_busy_until_s = now_s;
  in.progress.assign(chunks_.size(), ChunkProgress{});
  for (size_t j = 0; j < chunks_.size(); ++j) {
    const Chunk& c = chunks_[j];
    ChunkProgress& p = in.progress[j];
    switch (c.state) {
      case State::kResident:
        p.state = ChunkProgress::State::kResident;
        break;
      case State::kComputing:
        if (AwaitsTransfer(c)) {
          // A hedge: its prefill stops at any piece, so the plan may still give it either path.
          if (!CanStream(j)) in.chunks[j].levels.clear();
          break;
        }
        p.state = ChunkProgress::State::kComputing;
        in.cpu_busy_until_s = std::max(in.cpu_busy_until_s, c.compute_start_s + ComputeSeconds(j, c.prefill_from));
        if (c.racing) {
          // Its transfer occupies the link until the blob arrives or the prefill ends.
          in.network_busy_until_s = std::max(
              in.network_busy_until_s,
              std::min(in.cpu_busy_until_s, PredictedStreamResident(j, now_s, rate) - DecodeSeconds(j, c.fetch_level)));
        }
        break;
      case State::kFetching:
        p.state = ChunkProgress::State::kStreaming;
        p.decode_seconds = DecodeSeconds(j, c.fetch_level);
        p.arrival_s = std::max(now_s, PredictedStreamResident(j, now_s, rate) - p.decode_seconds);
        in.network_busy_until_s = std::max(in.network_busy_until_s, p.arrival_s);
        break;
      case State::kDecoding:
        p.state = ChunkProgress::State::kStreaming;
        p.arrival_s = now_s;
        p.decode_seconds = std::max(0.0, c.decode_start_s + DecodeSeconds(j, c.fetch_level) - now_s);
        break;
      case State::kPending:
        if (!CanStream(j)) in.chunks[j].levels.clear();
        break;
    }
  }
  return in;
}

bool LoadController::ComputingWins(size_t j, double now_s) const {
  // The chunk's own arrival first: it is cheap and rules out most cases before the timeline.
  return strategy_.cancel_transfers &&
         now_s + (1.0 + kTakeMargin) * ComputeSeconds(j, ResumeToken(j)) <
             PredictedStreamResident(j, now_s, OptimisticBytesPerSecond()) &&
         TakingLowersTtft(j, now_s);
}

bool LoadController::ComputeRaceWorthwhile(size_t j, double now_s) const {
  if (!strategy_.replan || !strategy_.cancel_transfers || !CanStream(j) || !PrefillsInPieces(j)) return false;
  // A blob due within half a piece leaves the race little to gain for its energy. (A blob that
  // arrives during a piece stops it, so a race no longer delays the decode.) The optimistic rate,
  // as for taking a chunk, also decides when a raced prefill pauses (ContinuePrefill), so a
  // paused race does not restart.
  const int32_t from = ResumeToken(j);
  const double stream_s = PredictedStreamResident(j, now_s, OptimisticBytesPerSecond()) - now_s;
  const double ratio = std::max(SteadyLink(now_s) ? 1.0 : strategy_.race_ratio, RaceRatio(now_s));
  return stream_s > kMinRacePieces * PieceSeconds(j, from) && ComputeSeconds(j, from) < ratio * stream_s;
}

int32_t LoadController::StreamRaceLevel(size_t j, double now_s) const {
  const double rate = PredictedBytesPerSecond();
  int32_t best = -1;
  double best_s = RaceRatio(now_s) * PrefillSecondsLeft(j, now_s);
  for (size_t l = 0; l < input_.chunks[j].levels.size(); ++l) {
    if (!input_.LevelAllowed(j, l)) continue;
    const double s = input_.request_overhead_s + static_cast<double>(input_.chunks[j].levels[l].bytes) / rate +
                     DecodeSeconds(j, static_cast<int32_t>(l));
    if (s < best_s) {
      best_s = s;
      best = static_cast<int32_t>(l);
    }
  }
  return best;
}

bool LoadController::SteadyLink(double now_s) const {
  return transfer_errors_.size() >= kRaceErrorWindow && RaceRatio(now_s) <= 1.0 + kSteadyLinkError;
}

double LoadController::RaceRatio(double now_s) const {
  // 1 + the largest relative error of the recent transfer time predictions, a transfer in flight
  // counting by how late it already is: on a steady link the predictions hold and a race would
  // only cost energy.
  double worst = 0.0;
  for (double error : transfer_errors_) worst = std::max(worst, error);
  for (size_t j = frontier_; j < chunks_.size(); ++j) {
    const Chunk& c = chunks_[j];
    if (!InFlight(c) || !(c.fetch_predicted_s > 0.0)) continue;
    const double body_s = now_s - c.fetch_start_s - input_.request_overhead_s;
    worst = std::max(worst, (body_s - c.fetch_predicted_s) / c.fetch_predicted_s);
  }
  return std::min(kRaceRatio, 1.0 + worst);
}

bool LoadController::OnlyStreamChunk(size_t j) const {
  for (size_t i = frontier_; i < chunks_.size(); ++i) {
    const Chunk& c = chunks_[i];
    if (i != j && c.state == State::kPending && c.decision.path == Decision::Path::kStream && CanStream(i)) return false;
  }
  return true;
}

bool LoadController::TakingLowersTtft(size_t j, double now_s) const {
  // Optimistic for the stream path, so conservative for taking: the same rate as the first test.
  PlanInput in = Snapshot(now_s, OptimisticBytesPerSecond());
  std::vector<Decision> wait(chunks_.size());
  for (size_t i = 0; i < chunks_.size(); ++i) {
    if (!in.IsPending(i)) {
      wait[i].path = Decision::Path::kCommitted;
    } else if (chunks_[i].decision.path == Decision::Path::kStream && !in.chunks[i].levels.empty()) {
      wait[i] = chunks_[i].decision;
    }
  }
  const double ttft_wait = Simulate(in, wait).ttft_s;

  // Taking it: chunk j is computed from now, and a transfer of it no longer occupies the link.
  std::vector<Decision> take = wait;
  take[j] = Decision{};
  in.progress[j] = ChunkProgress{};
  in.network_busy_until_s = LinkFreeAfterStreams(in, now_s);
  const double ttft_take = Simulate(in, take).ttft_s;
  return ttft_take + kTakeMargin * ComputeSeconds(j) < ttft_wait;
}

void LoadController::InstallPlan(const Plan& plan, uint64_t version, double now_s) {
  if (plan.decisions.size() != chunks_.size() || awaiting_offer_ || version < offer_version_) return;
  ApplyDecisions(plan.decisions, /*count_moves=*/true);
  planned_bytes_per_s_ = PredictedBytesPerSecond();
  planned_device_factor_ = device_factor_;
  // Completions that happened while the plan was being solved still call for another one.
  if (version == version_) dirty_ = false;
  ++stats_.n_replans;
  stats_.replan_times_s.push_back(now_s);
}

void LoadController::Replan(double now_s) {
  uint64_t version = 0;
  const PlanInput in = ReplanInput(now_s, &version);
  const Status valid = ValidatePlanInput(in);
  if (!valid.ok()) {
    // A bug in the snapshot, not an input error: keep the current plan and log a warning.
    SPARKV_LOG_WARN("re-plan skipped: %s", valid.ToString().c_str());
    dirty_ = false;
    return;
  }
  int32_t chunk = -1;
  const std::optional<PlanInput> abandon_in = AbandonInput(now_s, &chunk);
  int32_t restart_chunk = -1;
  const std::optional<PlanInput> restart_in = RestartInput(now_s, &restart_chunk);
  InstallReplan(SolvePlans(*planner_, strategy_, in, abandon_in, chunk, restart_in, restart_chunk), version, now_s);
}

void LoadController::InstallReplan(const SolvedPlans& plans, uint64_t version, double now_s) {
  if (PrefersAbandon(plans)) {
    InstallAbandonPlan(*plans.abandon, plans.abandon_chunk, version, now_s);
    return;
  }
  if (!PrefersRestart(plans)) {
    InstallPlan(plans.keep, version, now_s);
    return;
  }
  Chunk& c = chunks_[static_cast<size_t>(plans.restart_chunk)];
  // The transfer may have ended while the plan was solved: then the plan's premise is gone.
  if (c.state != State::kFetching || c.cancel_requested || c.racing) {
    InstallPlan(plans.keep, version, now_s);
    return;
  }
  SPARKV_LOG_DEBUG("%.2f s: chunk %d: transfer cancelled, predicted TTFT %.2f s restarted against %.2f s kept",
                   now_s, plans.restart_chunk, plans.restart->predicted.ttft_s, plans.keep.predicted.ttft_s);
  // OnTransferEnd then returns the chunk to the pending state with the restart plan's decision.
  c.cancel_requested = true;
  c.restart_requested = true;
  c.decision = plans.restart->decisions[static_cast<size_t>(plans.restart_chunk)];
  ++stats_.n_cancelled;
  InstallPlan(*plans.restart, version, now_s);
}

Plan SolveWithFadeMargin(const Planner& planner, const Strategy& strategy, const PlanInput& input) {
  Plan plan = planner.Solve(input);
  if (strategy.fade_margin <= 0.0 || plan.predicted.n_streamed == 0) return plan;
  // A looping trace is a measured schedule, not a prediction to hedge.
  if (input.bandwidth.loop_period_s() > 0.0) return plan;
  std::vector<BandwidthStep> steps = input.bandwidth.steps();
  for (BandwidthStep& step : steps) step.bytes_per_s *= 1.0 - strategy.fade_margin;
  Result<BandwidthModel> faded = BandwidthModel::Steps(std::move(steps));
  if (!faded.ok()) return plan;
  PlanInput slower = input;
  slower.bandwidth = *std::move(faded);
  Plan cautious = planner.Solve(slower);
  if (cautious.decisions == plan.decisions) return plan;
  const Timeline at_predicted = Simulate(input, cautious.decisions);
  if (at_predicted.ttft_s > plan.predicted.ttft_s * (1.0 + strategy.fade_slack)) return plan;
  SPARKV_LOG_DEBUG("fade margin: plan for a %.0f%% slower link taken, predicted TTFT %.3f s against %.3f s",
                   100.0 * strategy.fade_margin, at_predicted.ttft_s, plan.predicted.ttft_s);
  plan.decisions = std::move(cautious.decisions);
  plan.predicted = at_predicted;
  return plan;
}

SolvedPlans SolvePlans(const Planner& planner, const Strategy& strategy, const PlanInput& keep_input,
                       const std::optional<PlanInput>& abandon_input, int32_t abandon_chunk,
                       const std::optional<PlanInput>& restart_input, int32_t restart_chunk) {
  SolvedPlans plans;
  plans.keep = SolveWithFadeMargin(planner, strategy, keep_input);
  if (abandon_input) {
    plans.abandon = SolveWithFadeMargin(planner, strategy, *abandon_input);
    plans.abandon_chunk = abandon_chunk;
  }
  if (restart_input) {
    plans.restart = SolveWithFadeMargin(planner, strategy, *restart_input);
    plans.restart_chunk = restart_chunk;
  }
  return plans;
}

int32_t LoadController::PrefillPieceTokens(int32_t chunk) const {
  const ChunkSpec& spec = input_.chunks[static_cast<size_t>(chunk)];
  const int32_t n_tokens = spec.end - spec.begin;
  // Before the stream path's offer no chunk can stream yet, but the first plan may still move the
  // chunk in prefill to the stream path, whatever the strategy. Later only re-plans can.
  const bool pieces = awaiting_offer_ || (strategy_.replan && CanStream(static_cast<size_t>(chunk)));
  const int32_t piece = n_compute_samples_ == 0 ? first_piece_tokens_ : piece_tokens_;
  return pieces ? std::min(n_tokens, piece) : n_tokens;
}

bool LoadController::PrefillsInPieces(size_t j) const {
  return PrefillPieceTokens(static_cast<int32_t>(j)) < input_.chunks[j].end - input_.chunks[j].begin;
}

bool LoadController::ContinuePrefill(int32_t chunk, int32_t done_end, double now_s) {
  Chunk& c = chunks_[static_cast<size_t>(chunk)];
  if (c.state != State::kComputing) return true;
  MeasureDevice(input_.compute.ChunkSeconds(c.prefill_from, done_end), now_s - c.compute_start_s);
  c.prefill_done = done_end;
  if (c.racing && !c.blob_arrived && !c.abandon_requested) {
    // A race pauses while the stream path is predicted to deliver before the next piece ends:
    // the piece would only delay the decode. If the blob is late, the prefill resumes here.
    const size_t j = static_cast<size_t>(chunk);
    if (PredictedStreamResident(j, now_s, OptimisticBytesPerSecond()) < now_s + PieceSeconds(j, done_end)) {
      if (c.early_fetch) c.decision = Decision{Decision::Path::kStream, c.fetch_level};
      c.abandon_requested = true;
      SPARKV_LOG_DEBUG("%.2f s: chunk %d: race paused at token %d, the blob is due first", now_s, chunk, done_end);
    }
  }
  if (!c.abandon_requested) return true;
  StopPrefill(c, done_end);
  return false;
}

void LoadController::StopPrefill(Chunk& c, int32_t done_end) {
  c.abandon_requested = false;
  // The rows computed so far stay until a blob is decoded over them: if the compute path takes
  // the chunk back, its prefill resumes here.
  c.kept_rows_end = done_end;
  // With its blob fetched early, the chunk is in flight (or arrived, waiting for this stop).
  c.state = c.early_fetch ? State::kFetching : State::kPending;
  c.early_fetch = false;
  c.racing = false;
  ++stats_.n_abandoned;
  ++version_;
  MarkDirty();
}

void LoadController::OnPrefillInterrupted(int32_t chunk, int32_t done_end, double now_s) {
  (void)now_s;
  Chunk& c = chunks_[static_cast<size_t>(chunk)];
  // The engine has stopped, so the prefill ends here even without a recorded stop request,
  // because a chunk left in prefill would wait forever.
  if (c.state != State::kComputing) return;
  c.prefill_done = done_end;
  StopPrefill(c, done_end);
}

std::optional<PlanInput> LoadController::AbandonInput(double now_s, int32_t* chunk) const {
  for (size_t j = frontier_; j < chunks_.size(); ++j) {
    const Chunk& c = chunks_[j];
    if (c.state != State::kComputing) continue;
    if (!Abandonable(j)) return std::nullopt;
    const ChunkSpec& spec = input_.chunks[j];
    PlanInput in = Snapshot(now_s, PredictedBytesPerSecond());
    in.progress[j] = ChunkProgress{};
    // The prefill stops at a piece boundary, at the latest one piece from now. The CPU stays busy
    // until then, and the rows computed so far are lost.
    const double piece_s = input_.compute.ChunkSeconds(spec.begin, spec.begin + piece_tokens_) * device_factor_;
    in.cpu_busy_until_s = now_s + piece_s;
    *chunk = static_cast<int32_t>(j);
    return in;
  }
  return std::nullopt;
}

std::optional<PlanInput> LoadController::RestartInput(double now_s, int32_t* chunk) const {
  if (!strategy_.replan || !strategy_.cancel_transfers || awaiting_offer_) return std::nullopt;
  for (size_t j = frontier_; j < chunks_.size(); ++j) {
    const Chunk& c = chunks_[j];
    if (c.state != State::kFetching || c.cancel_requested || !CanStream(j)) continue;
    PlanInput in = Snapshot(now_s, PredictedBytesPerSecond());
    in.progress[j] = ChunkProgress{};
    in.network_busy_until_s = LinkFreeAfterStreams(in, now_s);
    *chunk = static_cast<int32_t>(j);
    return in;
  }
  return std::nullopt;
}

bool LoadController::PrefersRestart(const SolvedPlans& plans) const {
  if (!plans.restart || plans.restart_chunk < 0 || static_cast<size_t>(plans.restart_chunk) >= chunks_.size()) {
    return false;
  }
  const Plan& restart = *plans.restart;
  const size_t j = static_cast<size_t>(plans.restart_chunk);
  if (restart.decisions.size() != chunks_.size()) return false;
  // Restarting at the level in flight only loses the bytes received, and moving the chunk to the
  // compute path is ComputingWins's decision: a restart changes the level.
  if (restart.decisions[j].path != Decision::Path::kStream || restart.decisions[j].level == chunks_[j].fetch_level) {
    return false;
  }
  return restart.predicted.ttft_s + kTakeMargin * ComputeSeconds(j) < plans.keep.predicted.ttft_s;
}

bool LoadController::Abandonable(size_t j) const {
  const Chunk& c = chunks_[j];
  // Re-plans may stop a prefill; so may the first plan of a load that started before it.
  // A race ends by itself, when the blob arrives (OnTransferArrived) or the prefill ends.
  return (strategy_.replan || awaiting_offer_) && c.state == State::kComputing && c.in_pieces &&
         !c.abandon_requested && !c.racing && CanStream(j);
}

bool LoadController::PrefersAbandon(const SolvedPlans& plans) const {
  if (!plans.abandon || plans.abandon_chunk < 0 || static_cast<size_t>(plans.abandon_chunk) >= chunks_.size()) {
    return false;
  }
  const Plan& abandon = *plans.abandon;
  const size_t j = static_cast<size_t>(plans.abandon_chunk);
  if (abandon.decisions.size() != chunks_.size() || abandon.decisions[j].path != Decision::Path::kStream) return false;
  return abandon.predicted.ttft_s + kTakeMargin * ComputeSeconds(j) < plans.keep.predicted.ttft_s;
}

void LoadController::InstallAbandonPlan(const Plan& plan, int32_t chunk, uint64_t version, double now_s) {
  Chunk& c = chunks_[static_cast<size_t>(chunk)];
  // The prefill may have ended while the plan was solved: then the plan's premise is gone.
  if (c.state != State::kComputing || plan.decisions.size() != chunks_.size()) return;
  InstallPlan(plan, version, now_s);
  RequestPrefillStop(chunk, plan);
}

void LoadController::RequestPrefillStop(int32_t chunk, const Plan& plan) {
  Chunk& c = chunks_[static_cast<size_t>(chunk)];
  c.decision = plan.decisions[static_cast<size_t>(chunk)];
  c.abandon_requested = true;
}

PlanInput LoadController::OfferStreamPath(const PlanInput& offer, double now_s, uint64_t* version) {
  if (awaiting_offer_ && offer.chunks.size() == chunks_.size()) {
    for (size_t j = 0; j < chunks_.size(); ++j) input_.chunks[j].levels = offer.chunks[j].levels;
    input_.bandwidth = offer.bandwidth;
    input_.request_overhead_s = offer.request_overhead_s;
    input_.max_quality_rank = offer.max_quality_rank;
    input_.level_codec = offer.level_codec;
    // The estimator starts from the offer's rate (the probe, or the user's hint).
    estimator_ = BandwidthEstimator(EstimatorOptions(input_.bandwidth.RateAt(0.0)));
    sampler_ = ProgressSampler(&estimator_, kSampleMinBytes, kSampleMinSeconds);
    planned_bytes_per_s_ = input_.bandwidth.RateAt(0.0);
  }
  ++version_;
  offer_version_ = version_;
  return ReplanInput(now_s, version);
}

void LoadController::InstallFirstPlan(const SolvedPlans& plans, uint64_t version, double now_s) {
  (void)now_s;
  const bool abandon = PrefersAbandon(plans);
  const Plan& plan = abandon ? *plans.abandon : plans.keep;
  const int32_t abandon_chunk = abandon ? plans.abandon_chunk : -1;
  if (!awaiting_offer_ || plan.decisions.size() != chunks_.size() || version < offer_version_) return;
  awaiting_offer_ = false;
  ApplyDecisions(plan.decisions, /*count_moves=*/false);
  if (abandon_chunk >= 0 && chunks_[static_cast<size_t>(abandon_chunk)].state == State::kComputing) {
    RequestPrefillStop(abandon_chunk, plan);
  }
  initial_plan_ = plan;
  initial_plan_.strategy = strategy_.name;
  SetFloatCodec();
  planned_bytes_per_s_ = PredictedBytesPerSecond();
  planned_device_factor_ = device_factor_;
  // Chunks that finished while the plan was being solved call for a re-plan.
  dirty_ = version != version_;
}

}  // namespace sparkv
