// The executor's decision code, shared by the real two-path loader and the discrete-event
// simulator, so that what is simulated is what runs (DESIGN.md 6, "Runtime adaptation").
//
// The controller owns no threads and reads no clock. Each path requests its next step and
// reports what happened, with times in seconds since the load started. The real loader calls it
// under one mutex from its stream, compute and planner threads; the simulator calls it from its
// event loop. It keeps, per chunk, the chunk's state and, for the chunks not yet started, the
// current plan. With re-planning on, it predicts bandwidth from the transfers' progress and the
// device's speed from measured prefill times, and it re-solves the remaining chunks from the
// current state after every chunk completion and whenever a prediction drifts.
#pragma once

#include <cstdint>
#include <deque>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "net/bandwidth.h"
#include "plan/planner.h"
#include "runtime/strategy.h"
#include "sparkv/status.h"

namespace sparkv {

struct ControllerStats {
  int32_t n_replans = 0;
  int32_t n_moved = 0;      // pending chunks whose path changed after the first plan
  int32_t n_cancelled = 0;  // in-flight transfers cancelled: computing or a restart was predicted faster
  int32_t n_fallback = 0;   // chunks computed because their stream path failed
  int32_t n_abandoned = 0;  // prefills stopped between pieces because streaming the chunk was faster
  int32_t n_raced = 0;      // chunks run on both paths at once, the first to finish kept
  std::vector<double> replan_times_s;  // [n_replans], when each re-plan was installed
};

// The plans solved for one state of a load: `keep` from LoadController::ReplanInput (or
// OfferStreamPath), and, when AbandonInput offered one, `abandon` for the prefill of
// `abandon_chunk` stopped at its next piece. The controller installs the one it prefers.
// When RestartInput offered one, `restart` is the plan for the transfer of `restart_chunk`
// cancelled now, its chunk planned afresh.
struct SolvedPlans {
  Plan keep;
  std::optional<Plan> abandon;
  int32_t abandon_chunk = -1;
  std::optional<Plan> restart;
  int32_t restart_chunk = -1;
};

// Solves `input` with `planner` under the strategy's fade margin. When the strategy has one and the
// predicted bandwidth is a constant or steps, it also solves for that bandwidth times
// 1 - fade_margin. It returns that plan, timed at the given bandwidth, if its TTFT is within
// fade_slack of the plain solve's.
Plan SolveWithFadeMargin(const Planner& planner, const Strategy& strategy, const PlanInput& input);

// Solves `keep_input` and, if given, `abandon_input` and `restart_input` with `planner`, each
// through SolveWithFadeMargin. Callers that must not hold the controller's lock while solving
// take the inputs under the lock and call this outside it.
SolvedPlans SolvePlans(const Planner& planner, const Strategy& strategy, const PlanInput& keep_input,
                       const std::optional<PlanInput>& abandon_input, int32_t abandon_chunk,
                       const std::optional<PlanInput>& restart_input = std::nullopt, int32_t restart_chunk = -1);

class LoadController {
 public:
  // `input` describes a fresh load: every chunk pending, both paths idle, start time 0. The
  // strategy's planner makes the first plan at once; `initial_plan()` returns it.
  //
  // With `await_stream_offer`, the load starts before the server's levels are known. `input` then
  // has no levels and the compute path takes chunks from the front. The first plan that may
  // stream is made when OfferStreamPath() brings the levels; without an offer, every chunk is
  // computed.
  static Result<std::unique_ptr<LoadController>> Create(PlanInput input, const Strategy& strategy,
                                                        bool await_stream_offer = false);

  const Plan& initial_plan() const { return initial_plan_; }
  const Strategy& strategy() const { return strategy_; }
  size_t n_chunks() const { return chunks_.size(); }

  // --- stream path ---
  struct Transfer {
    int32_t chunk = 0;
    int32_t level = 0;  // index into the chunk's levels
    std::string codec;
    uint64_t bytes = 0;
    Hash128 digest{};  // the manifest's digest of the blob; zero when unknown
  };
  // The next blob to fetch, or nothing for now. Nothing does not mean the path is done: a later
  // re-plan may give it work. StreamPathDone() tells whether it is. A chunk whose prefill a plan
  // stops comes first, while the prefill runs on to its piece boundary (AwaitingPrefillStop).
  // With nothing else to fetch, the path may race the chunk in prefill (see OnTransferArrived).
  std::optional<Transfer> NextTransfer(double now_s);
  // True when no chunk can ever be streamed again (all resident or claimed by compute, or the
  // stream path was abandoned after a transport error).
  bool StreamPathDone() const;
  // Records that the stream path has stopped for good: every chunk not yet resident is computed,
  // whatever the plan chose. Callers report this whenever their stream path ends, so a chunk that
  // a later re-plan gives back to the stream path cannot wait forever.
  void OnStreamPathEnded();
  // Cumulative bytes of the current transfer of `chunk`, `elapsed_s` after it was issued. Returns
  // false when the transfer should be cancelled (the compute path took the chunk).
  bool OnTransferProgress(int32_t chunk, uint64_t bytes_so_far, double elapsed_s, double now_s);
  enum class TransferResult { kOk, kDataError, kTransportError, kCancelled };
  // Returns true when the caller should decode the blob into the cache now; false when the chunk
  // went to the compute path meanwhile (the blob is dropped) or the transfer failed.
  bool OnTransferEnd(int32_t chunk, TransferResult result, uint64_t bytes, double elapsed_s, double now_s);
  // Records that every byte of the blob of `chunk` has arrived, before OnTransferEnd. A racing
  // chunk (in prefill while its blob is fetched) stops its prefill when decoding the blob ends
  // sooner than the rest of the prefill. Otherwise the prefill runs to its end and the blob is
  // dropped. Returns true when the prefill should stop at once rather than at the end of its
  // piece: the compute path then interrupts the engine and calls OnPrefillInterrupted. This also
  // holds for a prefill that a plan stops at its next piece. The stream path waits while
  // AwaitingPrefillStop is true.
  bool OnTransferArrived(int32_t chunk, double now_s);
  // True while the blob of `chunk` is fetched early, during the piece at whose end a plan stops the
  // chunk's prefill (see NextTransfer). A stream path whose transfer of it has ended must wait
  // until this turns false before OnTransferEnd and the decode: until then the compute path still
  // writes the chunk's rows.
  bool AwaitingPrefillStop(int32_t chunk) const;
  // The decode that OnTransferEnd allowed has finished; on failure (a corrupt blob) the chunk is
  // computed instead.
  void OnDecodeEnd(int32_t chunk, bool ok, double now_s);

  // --- compute path ---
  struct ComputeStep {
    enum class Kind { kCompute, kWait, kDone };
    Kind kind = Kind::kWait;
    int32_t chunk = -1;  // kCompute only
  };
  // What the compute path does now: prefill the lowest chunk that is not resident, wait for it
  // to arrive, or stop because every chunk is resident. Taking an in-flight chunk cancels its
  // transfer (the next OnTransferProgress returns false), unless the link has nothing else to
  // do: then both paths race for the chunk. An idle compute path also races a chunk the stream
  // path is predicted to deliver not much sooner than computing it would take.
  ComputeStep NextCompute(double now_s);
  void OnComputeEnd(int32_t chunk, double now_s);
  // The token at which the prefill that NextCompute just handed out starts: the chunk's first,
  // or where a stopped prefill of it ended, since its rows are still in the cache.
  int32_t PrefillStartToken(int32_t chunk) const;
  // True while the prefill of `chunk` races its transfer. Such a prefill is a hedge, so a caller
  // that shares one CPU between prefill and decode runs a decode beside it rather than after it.
  bool Racing(int32_t chunk) const;
  // Tokens per prefill call for `chunk`. Re-planning strategies prefill a chunk that could also
  // stream in pieces, so that a re-plan can still move it to the stream path. Others use one call.
  int32_t PrefillPieceTokens(int32_t chunk) const;
  // Called between the pieces of a chunk's prefill, with the tokens [begin, done_end) computed.
  // Updates the device's speed factor. Returns false when a plan moved the chunk to the stream
  // path. The compute path then stops, and the decoded blob overwrites the rows it wrote.
  bool ContinuePrefill(int32_t chunk, int32_t done_end, double now_s);
  // Ends the prefill of `chunk` after an engine call was interrupted (OnTransferArrived requests
  // that), with tokens [begin, done_end) computed. The chunk goes to the stream path, whose blob
  // waits for this call, or back to pending to resume later if no blob was fetched for it.
  void OnPrefillInterrupted(int32_t chunk, int32_t done_end, double now_s);

  // --- planning ---
  // True when a re-plan is due (re-planning strategies only).
  bool NeedsReplan() const;
  // The state to re-solve from: the remaining chunks pending, the others committed, bandwidth and
  // compute costs at their current predictions. `version` identifies the state for InstallPlan.
  PlanInput ReplanInput(double now_s, uint64_t* version);
  // Installs decisions solved from ReplanInput; chunks that left the pending state since then
  // keep their path. Moves in-flight transfers to compute when the plan predicts that is faster.
  void InstallPlan(const Plan& plan, uint64_t version, double now_s);
  // Installs plans solved from ReplanInput and AbandonInput: the abandon plan when it streams the
  // chunk and beats `keep` by a margin (the compute path then stops that prefill at its next
  // piece), else `keep`.
  void InstallReplan(const SolvedPlans& plans, uint64_t version, double now_s);
  // Re-plans with the strategy's planner in one call (ReplanInput, AbandonInput, SolvePlans,
  // InstallReplan), for single-threaded callers such as the simulator.
  void Replan(double now_s);

  // The state to solve from if the chunk in prefill were abandoned at its next piece boundary,
  // or nothing when no prefill can be abandoned. `chunk` receives the chunk. Re-planning
  // strategies may abandon at any re-plan, others only at the first plan of a deferred start.
  std::optional<PlanInput> AbandonInput(double now_s, int32_t* chunk) const;
  // The state to solve from if the transfer in flight were cancelled now and its chunk planned
  // again from scratch. A plan made for a faster device may have started a large blob, and a
  // smaller level would now deliver it sooner. Nothing when no transfer is in flight or the
  // strategy does not re-plan. `chunk` receives the chunk.
  std::optional<PlanInput> RestartInput(double now_s, int32_t* chunk) const;

  // --- deferred start (Create with await_stream_offer) ---
  // The stream path reached the server: `offer` is the fresh input for the same chunks with the
  // levels it may stream, the predicted bandwidth and the request overhead. Returns the state to
  // solve the first streaming plan from, like ReplanInput. Snapshots taken before the offer are
  // stale: InstallPlan ignores plans solved from them.
  PlanInput OfferStreamPath(const PlanInput& offer, double now_s, uint64_t* version);
  // Installs the plans solved from OfferStreamPath's state (and AbandonInput's) as the strategy's
  // first plan, choosing between them as InstallReplan does.
  void InstallFirstPlan(const SolvedPlans& plans, uint64_t version, double now_s);
  bool awaiting_stream_offer() const { return awaiting_offer_; }

  // Bytes per second the controller predicts now (the smoothed rate of the transfers so far, or
  // the input's rate before any), and the device's measured / predicted compute time ratio
  // (1 = as profiled).
  double PredictedBytesPerSecond() const;
  double device_speed_factor() const { return device_factor_; }
  const ControllerStats& stats() const { return stats_; }
  bool AllResident() const { return frontier_ == chunks_.size(); }

 private:
  enum class State : uint8_t { kPending, kFetching, kDecoding, kComputing, kResident };
  struct Chunk {
    State state = State::kPending;
    Decision decision;           // the current plan, for pending chunks
    bool stream_failed = false;  // the stream path failed once: compute it
    bool cancel_requested = false;
    bool restart_requested = false;  // cancelled to be fetched again, at the level in `decision`
    bool abandon_requested = false;  // kComputing: stop the prefill at the next piece
    bool in_pieces = false;          // kComputing: the prefill runs in pieces, so it can stop
    bool early_fetch = false;        // kComputing: the blob is fetched (or held) while the prefill runs
    bool racing = false;             // kComputing: the first of the prefill and the blob to end wins
    bool blob_arrived = false;       // kComputing with early_fetch: every byte of the blob is here
    int32_t prefill_from = 0;        // kComputing: the token this prefill started at
    int32_t prefill_done = 0;        // kComputing: the end of its last finished piece
    int32_t kept_rows_end = -1;      // a stopped prefill left tokens [begin, this) in the cache
    int32_t fetch_level = -1;    // level of the transfer in flight or decoded
    double fetch_start_s = 0.0;
    double fetch_predicted_s = 0.0;  // the transfer's body time predicted when it was issued
    uint64_t bytes_so_far = 0;
    double progress_elapsed_s = 0.0;  // elapsed time of the last progress report
    double decode_start_s = 0.0;
    double compute_start_s = 0.0;
  };

  LoadController(PlanInput input, const Strategy& strategy, const Planner* planner);
  double ComputeSeconds(size_t j) const;  // predicted, with the device factor
  double ComputeSeconds(size_t j, int32_t from) const;  // the same from token `from` on
  // The token a prefill of chunk j starts at: past the rows a stopped prefill of it left.
  int32_t ResumeToken(size_t j) const;
  // Predicted seconds of the prefill piece of chunk j that starts at token `from`.
  double PieceSeconds(size_t j, int32_t from) const;
  // True when chunk j is prefilled in pieces (PrefillPieceTokens is shorter than the chunk).
  bool PrefillsInPieces(size_t j) const;
  // Predicted seconds left of the prefill of chunk j (kComputing) at `now_s`.
  double PrefillSecondsLeft(size_t j, double now_s) const;
  double DecodeSeconds(size_t j, int32_t level) const;
  // Predicted time at which chunk j becomes resident through the stream path at `rate` bytes/s.
  double PredictedStreamResident(size_t j, double now_s, double rate) const;
  // The higher of the last second's rate (harmonic mean of recent samples) and the smoothed rate.
  // The compute path takes a chunk it waits for only if computing wins even at this rate: taking
  // is irrevocable and costs a whole chunk of prefill, so a short dip must not trigger it.
  double OptimisticBytesPerSecond() const;
  bool CanStream(size_t j) const;
  // The state to plan from at `rate` bytes per second (ReplanInput without the version).
  PlanInput Snapshot(double now_s, double rate) const;
  // True when computing chunk j (the frontier) from now ends the load sooner under the cost model
  // than waiting for the stream path. Chunk j's own arrival is not enough to tell, because a
  // prefill also delays the decodes of the blobs that arrive meanwhile.
  bool TakingLowersTtft(size_t j, double now_s) const;
  // True when the compute path should take chunk j (the frontier) from the stream path now: the
  // strategy allows it, the chunk would be resident sooner by a margin, and TakingLowersTtft.
  bool ComputingWins(size_t j, double now_s) const;
  // True when the compute path, idle, should race chunk j (the frontier) against the stream path.
  // Computing it must take at most RaceRatio() or the strategy's race_ratio times as long as the
  // stream path's predicted delivery, so that a dip of the link could make computing win. That
  // delivery must also be more than half a prefill piece away (kMinRacePieces).
  bool ComputeRaceWorthwhile(size_t j, double now_s) const;
  // The level at which the idle stream path races chunk j, in prefill, or -1 when the blob is
  // not predicted to arrive and decode within RaceRatio() times the prefill's time left.
  int32_t StreamRaceLevel(size_t j, double now_s) const;
  // How many times longer than the other path a path racing it may be predicted to take: up to
  // kRaceRatio as the link's recent rate predictions missed by more. The compute path may also
  // race within the strategy's race_ratio.
  double RaceRatio(double now_s) const;
  // True once the last kRaceErrorWindow transfers all took within kSteadyLinkError of their
  // predicted time, and none in flight is later than that. The strategy's hedge ratio then gives
  // way to RaceRatio, since a race on a steady link only costs energy.
  bool SteadyLink(double now_s) const;
  // True when no chunk but j is planned to stream: a transfer of j is all the link would do.
  bool OnlyStreamChunk(size_t j) const;
  // A transfer of the chunk is in flight (or its blob waits for the prefill to stop).
  static bool InFlight(const Chunk& c);
  // The chunk waits for the stream path to fetch it: pending, or raced by the compute path.
  static bool AwaitsTransfer(const Chunk& c);
  // True when the pending chunks planned to stream are the last pending chunks.
  bool PendingStreamsFormSuffix() const;
  // True when a chunk that waits for the stream path is planned to stream.
  bool AnyPendingStream() const;
  int32_t FloatLevel(size_t j) const;  // cake: the level of the plan's codec for chunk j
  void SetFloatCodec();                // cake: the codec of the first plan's first streamed chunk
  void AdvanceFrontier();
  // True when chunk j is in a prefill that a re-plan may still stop (see AbandonInput).
  bool Abandonable(size_t j) const;
  // True when `plans.abandon` streams the chunk and beats `plans.keep` by the take margin.
  bool PrefersAbandon(const SolvedPlans& plans) const;
  // True when the restart plan beats `keep` by the take margin.
  bool PrefersRestart(const SolvedPlans& plans) const;
  // Installs `plan` and requests the compute path to stop its prefill of `chunk` at the next piece.
  void InstallAbandonPlan(const Plan& plan, int32_t chunk, uint64_t version, double now_s);
  // Gives `chunk`, in prefill, the path `plan` chose for it and requests the stop at the next piece.
  void RequestPrefillStop(int32_t chunk, const Plan& plan);
  // Ends the prefill of chunk c after tokens [begin, done_end): the chunk returns to the stream
  // path (in flight when its blob was fetched early) and keeps those rows until a decode.
  void StopPrefill(Chunk& c, int32_t done_end);
  // Folds one measured / predicted prefill time into the device's speed factor.
  void MeasureDevice(double predicted_s, double measured_s);
  void MarkDirty() { dirty_ = true; }
  void ApplyDecisions(const std::vector<Decision>& decisions, bool count_moves);

  PlanInput input_;  // the fresh input; costs and bandwidth as first predicted
  Strategy strategy_;
  const Planner* planner_;
  Plan initial_plan_;
  std::vector<Chunk> chunks_;  // [n_chunks]
  size_t frontier_ = 0;        // chunks [0, frontier_) are resident
  bool network_dead_ = false;
  std::string float_codec_;    // cake: the codec the first plan streams

  BandwidthEstimator estimator_;
  ProgressSampler sampler_;
  int32_t sampled_chunk_ = -1;   // transfer the sampler is following
  // Bytes received and seconds of transfer, each decayed by exp(-dt / 2 s) of transfer time:
  // their ratio is the smoothed rate plans use.
  double smoothed_bytes_ = 0.0;
  double smoothed_seconds_ = 0.0;
  std::deque<double> transfer_errors_;  // recent |actual - predicted| / predicted transfer times
  double device_factor_ = 1.0;
  int32_t n_compute_samples_ = 0;
  double planned_bytes_per_s_ = 0.0;  // predictions the last plan used
  double planned_device_factor_ = 1.0;
  // Tokens per prefill piece, chosen from the compute profile in the constructor.
  int32_t piece_tokens_ = 32;
  int32_t first_piece_tokens_ = 32;  // until the first prefill piece has measured the device
  bool dirty_ = false;
  bool awaiting_offer_ = false;  // deferred start: no levels yet, so nothing to plan
  uint64_t version_ = 0;  // bumped on every state change
  uint64_t offer_version_ = 0;  // version_ right after the stream offer arrived
  ControllerStats stats_;
};

}  // namespace sparkv
