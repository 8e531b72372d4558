#include "runtime/loader.h"

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <thread>

#include "common/clock.h"
#include "common/log.h"
#include "kv/blob.h"
#include "plan/planner.h"

namespace sparkv {
namespace {

using Clock = std::chrono::steady_clock;

// A path that waits re-asks the controller at least this often: predictions move with time even
// when no event arrives (a stalled transfer reports no progress).
constexpr std::chrono::milliseconds kWaitSlice(20);

}  // namespace

Loader::Loader(Engine* engine, BlobSource* source, const Hash128& model_fingerprint, LoaderOptions options)
    : engine_(engine), source_(source), fingerprint_(model_fingerprint), options_(options) {}

Result<LoadReport> Loader::Load(std::span<const TokenId> tokens, std::span<const LoadChunk> chunks) {
  // A fixed plan is the `stream` strategy over an input that offers exactly the chosen blob for
  // the chunks to stream and nothing for the others.
  PlanInput input;
  input.bandwidth = BandwidthModel::Constant(1e6);
  for (const LoadChunk& chunk : chunks) {
    ChunkSpec spec{chunk.range.index, chunk.range.begin, chunk.range.end, {}};
    if (chunk.stream) spec.levels.push_back({chunk.codec, chunk.bytes, 0.0, 0});
    input.chunks.push_back(std::move(spec));
  }
  SPARKV_ASSIGN_OR_RETURN(Strategy strategy, FindStrategy("stream"));
  return Load(tokens, chunks, std::move(input), strategy);
}

Result<LoadReport> Loader::Load(std::span<const TokenId> tokens, std::span<const LoadChunk> chunks, PlanInput input,
                                const Strategy& strategy) {
  return Load(tokens, chunks, std::move(input), strategy, ConnectFunction());
}

Result<LoadReport> Loader::Load(std::span<const TokenId> tokens, std::span<const LoadChunk> chunks, PlanInput input,
                                const Strategy& strategy, ConnectFunction connect) {
  const Clock::time_point start = Clock::now();
  const size_t n_chunks = chunks.size();
  Position expected_begin = 0;
  for (const LoadChunk& chunk : chunks) {
    if (chunk.range.begin != expected_begin || chunk.range.end <= chunk.range.begin ||
        chunk.range.end > static_cast<Position>(tokens.size())) {
      return InvalidArgumentError("load chunks must be contiguous from position 0 inside the " +
                                  std::to_string(tokens.size()) + " context tokens; chunk " +
                                  std::to_string(chunk.range.index) + " covers [" + std::to_string(chunk.range.begin) +
                                  ", " + std::to_string(chunk.range.end) + ")");
    }
    expected_begin = chunk.range.end;
  }
  if (input.chunks.size() != n_chunks) {
    return InvalidArgumentError("the plan input has " + std::to_string(input.chunks.size()) + " chunks, the load " +
                                std::to_string(n_chunks));
  }
  bool any_level = false;
  for (const ChunkSpec& spec : input.chunks) any_level = any_level || !spec.levels.empty();
  if (source_ == nullptr) {
    if (any_level) return InvalidArgumentError("the plan input offers blobs but no server was given (pass --server URL)");
  }
  const bool deferred = static_cast<bool>(connect);
  if (deferred && source_ == nullptr) {
    return InvalidArgumentError("a load that connects to the server while computing needs a blob source");
  }

  const Clock::time_point plan_start = Clock::now();
  SPARKV_ASSIGN_OR_RETURN(std::unique_ptr<LoadController> controller,
                          LoadController::Create(std::move(input), strategy, deferred));
  LoadReport report;
  report.plan_s = SecondsSince(plan_start);
  report.strategy = strategy.name;
  report.initial_plan = controller->initial_plan();
  report.chunks.resize(n_chunks);
  for (size_t j = 0; j < n_chunks; ++j) {
    report.chunks[j].planned_stream = report.initial_plan.decisions[j].path == Decision::Path::kStream;
  }
  const Planner* planner = FindPlanner(strategy.planner);

  std::mutex mutex;
  std::condition_variable changed;
  bool finished = false;  // the compute path saw every chunk resident, or failed
  bool prefilling = false;  // the compute path is inside a chunk's prefill
  // Set by the stream path when a blob overtakes the prefill of its chunk: the engine stops that
  // prefill at its next layer instead of finishing the piece. Cleared before every piece.
  std::atomic<bool> interrupt_prefill{false};
  engine_->set_interrupt(&interrupt_prefill);
  struct InterruptReset {
    Engine* engine;
    ~InterruptReset() { engine->set_interrupt(nullptr); }
  } interrupt_reset{engine_};
  const int idle_decode_threads =
      options_.decode_threads > 0 ? options_.decode_threads : engine_->thread_pool().n_threads();

  // Stream path: fetch what the controller hands out, verify each blob against the model, key,
  // range and shape before any cache row is written, then decode.
  auto stream_path = [&] {
    // However the stream path ends, the compute path then takes every chunk left.
    struct EndReport {
      std::mutex& mutex;
      std::condition_variable& changed;
      LoadController& controller;
      ~EndReport() {
        std::lock_guard<std::mutex> guard(mutex);
        controller.OnStreamPathEnded();
        changed.notify_all();
      }
    } end_report{mutex, changed, *controller};
    if (deferred) {
      const ProgressFunction keep_going = [&](size_t, double) {
        std::lock_guard<std::mutex> guard(mutex);
        return !finished;
      };
      PlanInput offer = connect(keep_going);
      const Status valid = ValidatePlanInput(offer);
      bool offers_level = false;
      for (const ChunkSpec& spec : offer.chunks) offers_level = offers_level || !spec.levels.empty();
      if (!valid.ok() || offer.chunks.size() != n_chunks) {
        SPARKV_LOG_WARN("the stream path's plan input is unusable, computing every chunk: %s",
                        valid.ok() ? "its chunk count differs from the load's" : valid.ToString().c_str());
        return;
      }
      if (!offers_level) return;
      std::unique_lock<std::mutex> lock(mutex);
      if (finished) return;
      uint64_t version = 0;
      const PlanInput snapshot = controller->OfferStreamPath(offer, SecondsSince(start), &version);
      // The chunk the head start is computing may be better streamed after all.
      int32_t abandon_chunk = -1;
      const std::optional<PlanInput> abandon_input = controller->AbandonInput(SecondsSince(start), &abandon_chunk);
      lock.unlock();
      const Clock::time_point solve_start = Clock::now();
      const SolvedPlans plans =
          SolvePlans(*planner, controller->strategy(), snapshot, abandon_input, abandon_chunk);
      const double solve_s = SecondsSince(solve_start);
      lock.lock();
      controller->InstallFirstPlan(plans, version, SecondsSince(start));
      report.plan_s = solve_s;
      report.initial_plan = controller->initial_plan();
      for (size_t j = 0; j < n_chunks; ++j) {
        report.chunks[j].planned_stream = report.initial_plan.decisions[j].path == Decision::Path::kStream;
      }
      changed.notify_all();
    }
    std::unique_lock<std::mutex> lock(mutex);
    while (!finished && !controller->AllResident() && !controller->StreamPathDone()) {
      std::optional<LoadController::Transfer> transfer = controller->NextTransfer(SecondsSince(start));
      if (!transfer) {
        changed.wait_for(lock, kWaitSlice);
        continue;
      }
      const int32_t j = transfer->chunk;
      const LoadChunk& chunk = chunks[static_cast<size_t>(j)];
      ChunkOutcome& outcome = report.chunks[static_cast<size_t>(j)];
      const double issued = SecondsSince(start);
      outcome.transfer_start_s = issued;
      outcome.codec = transfer->codec;
      lock.unlock();

      size_t received = 0;
      const ProgressFunction on_progress = [&](size_t bytes_so_far, double seconds) {
        received = bytes_so_far;
        std::lock_guard<std::mutex> guard(mutex);
        const bool go_on = controller->OnTransferProgress(j, bytes_so_far, seconds, SecondsSince(start));
        changed.notify_all();
        return go_on;
      };
      // A blob is the header plus a payload no larger than the manifest's size; a longer body is
      // rejected while it arrives.
      Result<FetchedBytes> fetched = source_->FetchBlob(chunk.key, transfer->codec, transfer->bytes, 0, on_progress);
      // The blob's own header and checksum catch damage. The digest catches a blob the manifest
      // does not describe, such as a file replaced in the store or another version from a proxy.
      if (fetched.ok() && transfer->digest != Hash128{}) {
        const Hash128 digest = Hash128Of(fetched->bytes.data(), fetched->bytes.size());
        if (digest != transfer->digest) {
          received = fetched->bytes.size();
          fetched = CorruptionError("blob digest " + digest.Hex() + " differs from the manifest's " +
                                    transfer->digest.Hex() +
                                    "; the blob is damaged or changed after the manifest was written, so ingest the "
                                    "context again");
        }
      }
      LoadController::TransferResult result = LoadController::TransferResult::kOk;
      Status status;
      if (!fetched.ok()) {
        status = fetched.status();
        if (status.code() == ErrorCode::kCancelled) result = LoadController::TransferResult::kCancelled;
        else if (IsTransportError(status) && options_.abandon_stream_after_transport_error) {
          result = LoadController::TransferResult::kTransportError;
        } else {
          result = LoadController::TransferResult::kDataError;
        }
      }
      const uint64_t n_bytes = fetched.ok() ? fetched->bytes.size() : received;

      lock.lock();
      outcome.transfer_end_s = SecondsSince(start);
      outcome.bytes += n_bytes;
      // A blob fetched while its chunk's prefill runs on to the piece where it stops waits for
      // that stop: until then the compute path writes the chunk's rows. A raced chunk's prefill
      // may also run to its end, and the blob is dropped.
      if (fetched.ok() && controller->OnTransferArrived(j, outcome.transfer_end_s)) interrupt_prefill = true;
      while (controller->AwaitingPrefillStop(j) && !finished) changed.wait_for(lock, kWaitSlice);
      const bool decode = controller->OnTransferEnd(j, result, n_bytes, outcome.transfer_end_s - issued,
                                                    outcome.transfer_end_s);
      if (result == LoadController::TransferResult::kCancelled) {
        outcome.cancelled = true;
      } else if (!status.ok()) {
        outcome.fell_back = true;
        outcome.error = status.ToString();
        SPARKV_LOG_WARN("chunk %d [%d, %d) key %s: stream path failed, computing it locally: %s", chunk.range.index,
                        chunk.range.begin, chunk.range.end, chunk.key.Hex().c_str(), outcome.error.c_str());
      } else if (!decode) {
        outcome.cancelled = true;  // the compute path took it as the last bytes arrived
      }
      changed.notify_all();
      if (!decode) continue;
      // Decided when the decode starts: a prefill that begins meanwhile shares the cores until
      // this chunk is done.
      const int decode_threads = finished || !prefilling ? idle_decode_threads : 1;
      outcome.decode_threads = decode_threads;
      lock.unlock();

      const double decode_start = SecondsSince(start);
      const Codec* codec = FindCodec(transfer->codec);
      Status decoded = codec == nullptr
                           ? UnsupportedError("codec '" + transfer->codec + "' is not known to this build")
                           : Status::Ok();
      if (decoded.ok()) {
        KvSlice destination = engine_->kv_cache().Slice(chunk.range.begin, chunk.range.end);
        const BlobIdentity identity{fingerprint_, chunk.key, chunk.range.begin, chunk.range.end};
        const std::span<const uint8_t> blob(reinterpret_cast<const uint8_t*>(fetched->bytes.data()),
                                            fetched->bytes.size());
        decoded = DecodeBlob(blob, ExpectationFor(identity, codec->id(), destination), destination,
                             decode_threads);
      }

      lock.lock();
      const double now = SecondsSince(start);
      outcome.decode_s = now - decode_start;
      if (decoded.ok()) {
        engine_->kv_cache().MarkResident(chunk.range.begin, chunk.range.end);
        outcome.streamed = true;
        outcome.resident_s = now;
        SPARKV_LOG_DEBUG("chunk %d [%d, %d) streamed: %zu bytes of %s in %.3f s, decoded in %.4f s",
                         chunk.range.index, chunk.range.begin, chunk.range.end, static_cast<size_t>(n_bytes),
                         transfer->codec.c_str(), outcome.transfer_end_s - issued, outcome.decode_s);
      } else {
        outcome.fell_back = true;
        outcome.error = decoded.WithContext("chunk " + std::to_string(chunk.range.index) + " " + transfer->codec +
                                            " blob from " + source_->Describe())
                            .ToString();
        SPARKV_LOG_WARN("chunk %d [%d, %d) key %s: stream path failed, computing it locally: %s", chunk.range.index,
                        chunk.range.begin, chunk.range.end, chunk.key.Hex().c_str(), outcome.error.c_str());
      }
      controller->OnDecodeEnd(j, decoded.ok(), now);
      changed.notify_all();
    }
  };

  // Planner: re-solves from a snapshot without holding the lock, so neither path waits for it.
  auto planner_path = [&] {
    std::unique_lock<std::mutex> lock(mutex);
    while (!finished) {
      if (!controller->NeedsReplan()) {
        changed.wait_for(lock, kWaitSlice);
        continue;
      }
      uint64_t version = 0;
      const PlanInput snapshot = controller->ReplanInput(SecondsSince(start), &version);
      int32_t abandon_chunk = -1;
      const std::optional<PlanInput> abandon_input = controller->AbandonInput(SecondsSince(start), &abandon_chunk);
      int32_t restart_chunk = -1;
      const std::optional<PlanInput> restart_input = controller->RestartInput(SecondsSince(start), &restart_chunk);
      lock.unlock();
      const Status valid = ValidatePlanInput(snapshot);
      SolvedPlans plans;
      if (valid.ok()) {
        plans = SolvePlans(*planner, controller->strategy(), snapshot, abandon_input, abandon_chunk, restart_input,
                           restart_chunk);
      }
      lock.lock();
      if (!valid.ok()) {
        SPARKV_LOG_WARN("re-plan skipped: %s", valid.ToString().c_str());
        break;
      }
      controller->InstallReplan(plans, version, SecondsSince(start));
      changed.notify_all();
    }
  };

  std::thread stream_thread;
  if (source_ != nullptr && (any_level || deferred)) stream_thread = std::thread(stream_path);
  std::thread planner_thread;
  if (strategy.replan) planner_thread = std::thread(planner_path);

  // Compute path, on this thread: always the lowest chunk that is not resident, because a prefill
  // needs every earlier position in the cache.
  Status compute_status;
  {
    std::unique_lock<std::mutex> lock(mutex);
    while (compute_status.ok()) {
      const LoadController::ComputeStep step = controller->NextCompute(SecondsSince(start));
      if (step.kind == LoadController::ComputeStep::Kind::kDone) break;
      if (step.kind == LoadController::ComputeStep::Kind::kWait) {
        changed.wait_for(lock, kWaitSlice);
        continue;
      }
      const LoadChunk& chunk = chunks[static_cast<size_t>(step.chunk)];
      ChunkOutcome& outcome = report.chunks[static_cast<size_t>(step.chunk)];
      outcome.compute_start_s = SecondsSince(start);
      prefilling = true;
      // Prefill in pieces where the controller may still move the chunk to the stream path.
      const int32_t piece_tokens = controller->PrefillPieceTokens(step.chunk);
      Position done = controller->PrefillStartToken(step.chunk);
      bool abandoned = false;
      while (compute_status.ok() && done < chunk.range.end) {
        const Position piece_end = std::min<Position>(chunk.range.end, done + piece_tokens);
        interrupt_prefill = false;
        lock.unlock();
        compute_status = engine_->Prefill(tokens.subspan(done, piece_end - done), done, nullptr);
        lock.lock();
        if (compute_status.code() == ErrorCode::kCancelled && interrupt_prefill) {
          // A blob of this chunk arrived and decodes sooner: the rows of the stopped piece are
          // not resident, and the decode overwrites the chunk.
          compute_status = Status::Ok();
          outcome.prefill_interrupted = true;
          SPARKV_LOG_DEBUG("chunk %d [%d, %d): prefill interrupted in the piece from %d, its blob arrived",
                           chunk.range.index, chunk.range.begin, chunk.range.end, done);
          controller->OnPrefillInterrupted(step.chunk, done, SecondsSince(start));
          abandoned = true;
          break;
        }
        done = piece_end;
        if (compute_status.ok() && done < chunk.range.end &&
            !controller->ContinuePrefill(step.chunk, done, SecondsSince(start))) {
          abandoned = true;
          break;
        }
      }
      prefilling = false;
      if (abandoned) {
        outcome.prefill_abandoned = true;
        report.compute_busy_s += SecondsSince(start) - outcome.compute_start_s;
        SPARKV_LOG_DEBUG("chunk %d [%d, %d): prefill stopped at %d, the stream path is faster", chunk.range.index,
                         chunk.range.begin, chunk.range.end, done);
        changed.notify_all();
        continue;
      }
      outcome.compute_end_s = SecondsSince(start);
      outcome.resident_s = outcome.compute_end_s;
      report.compute_busy_s += outcome.compute_end_s - outcome.compute_start_s;
      SPARKV_LOG_DEBUG("chunk %d [%d, %d) computed in %.3f s%s", chunk.range.index, chunk.range.begin, chunk.range.end,
                       outcome.compute_end_s - outcome.compute_start_s, outcome.fell_back ? " (stream fallback)" : "");
      if (compute_status.ok()) controller->OnComputeEnd(step.chunk, outcome.compute_end_s);
      changed.notify_all();
    }
    finished = true;
    changed.notify_all();
  }
  // Whatever the stream path still waits for (the manifest, a blob the compute path took) is of
  // no use now. Ending it at once keeps the join below out of the TTFT.
  if (stream_thread.joinable()) source_->Interrupt();

  // The stream path ends by itself: every fetch is bounded by the source's timeout, and a
  // transfer of a chunk the compute path took is cancelled at its next progress report.
  if (stream_thread.joinable()) stream_thread.join();
  if (planner_thread.joinable()) planner_thread.join();
  if (!compute_status.ok()) return compute_status.WithContext("local prefill failed");

  report.stats = controller->stats();
  report.final_bytes_per_s = controller->PredictedBytesPerSecond();
  report.device_speed_factor = controller->device_speed_factor();
  for (const ChunkOutcome& outcome : report.chunks) {
    report.all_resident_s = std::max(report.all_resident_s, outcome.resident_s);
    report.stream_bytes += outcome.bytes;
    if (outcome.transfer_end_s > 0) report.stream_busy_s += outcome.transfer_end_s - outcome.transfer_start_s;
    report.decode_busy_s += outcome.decode_s;
    if (outcome.streamed) ++report.n_streamed;
    else ++report.n_computed;
  }
  report.n_fallback = report.stats.n_fallback;
  return report;
}

}  // namespace sparkv
