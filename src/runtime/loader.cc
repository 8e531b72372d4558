#include "runtime/loader.h"

#include <chrono>
#include <condition_variable>
#include <mutex>
#include <thread>

#include "common/log.h"
#include "kv/blob.h"

namespace sparkv {
namespace {

using Clock = std::chrono::steady_clock;

double SecondsSince(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

bool IsTransportError(const Status& status) {
  return status.code() == ErrorCode::kUnavailable || status.code() == ErrorCode::kTimeout ||
         status.code() == ErrorCode::kCancelled;
}

// Per-chunk hand-off between the two paths.
enum class ChunkState { kWaiting, kResident, kFailed };

struct SharedState {
  std::mutex mutex;
  std::condition_variable changed;
  std::vector<ChunkState> states;  // [n_chunks]
};

}  // namespace

Loader::Loader(Engine* engine, BlobSource* source, const Hash128& model_fingerprint, LoaderOptions options)
    : engine_(engine), source_(source), fingerprint_(model_fingerprint), options_(options) {}

Result<LoadReport> Loader::Load(std::span<const TokenId> tokens, std::span<const LoadChunk> chunks) {
  const Clock::time_point start = Clock::now();
  const size_t n_chunks = chunks.size();
  LoadReport report;
  report.chunks.resize(n_chunks);

  Position expected_begin = 0;
  bool any_stream = false;
  for (const LoadChunk& chunk : chunks) {
    if (chunk.range.begin != expected_begin || chunk.range.end <= chunk.range.begin ||
        chunk.range.end > static_cast<Position>(tokens.size())) {
      return InvalidArgumentError("load chunks must be contiguous from position 0 inside the " +
                                  std::to_string(tokens.size()) + " context tokens; chunk " +
                                  std::to_string(chunk.range.index) + " covers [" + std::to_string(chunk.range.begin) +
                                  ", " + std::to_string(chunk.range.end) + ")");
    }
    expected_begin = chunk.range.end;
    any_stream = any_stream || chunk.stream;
  }
  if (any_stream && source_ == nullptr) {
    return InvalidArgumentError("the plan streams chunks but no server was given (pass --server URL)");
  }

  SharedState shared;
  shared.states.assign(n_chunks, ChunkState::kWaiting);
  for (size_t j = 0; j < n_chunks; ++j) {
    report.chunks[j].planned_stream = chunks[j].stream;
    report.chunks[j].codec = chunks[j].codec;
  }

  // Stream path: fetch the planned chunks in index order over one connection, verify each blob
  // against the model, key, range and shape before any cache row is written, then decode.
  auto stream_path = [&] {
    bool abandoned = false;
    std::string abandon_reason;
    for (size_t j = 0; j < n_chunks; ++j) {
      const LoadChunk& chunk = chunks[j];
      if (!chunk.stream) continue;
      ChunkOutcome& outcome = report.chunks[j];
      Status status;
      if (abandoned) {
        status = UnavailableError("stream path abandoned earlier: " + abandon_reason);
      } else {
        outcome.transfer_start_s = SecondsSince(start);
        // A blob is the header plus a payload no larger than the manifest's size; a longer body
        // is rejected while it arrives.
        size_t received = 0;
        const ProgressFunction on_progress = [&received](size_t bytes_so_far, double) {
          received = bytes_so_far;
          return true;
        };
        Result<FetchedBytes> fetched = source_->FetchBlob(chunk.key, chunk.codec, chunk.bytes, 0, on_progress);
        outcome.transfer_end_s = SecondsSince(start);
        outcome.bytes = received;
        if (!fetched.ok()) {
          status = fetched.status();
        } else {
          outcome.bytes = fetched->bytes.size();
          const Codec* codec = FindCodec(chunk.codec);
          if (codec == nullptr) {
            status = UnsupportedError("codec '" + chunk.codec + "' is not known to this build");
          } else {
            const double decode_start = SecondsSince(start);
            KvSlice destination = engine_->kv_cache().Slice(chunk.range.begin, chunk.range.end);
            const BlobIdentity identity{fingerprint_, chunk.key, chunk.range.begin, chunk.range.end};
            const std::span<const uint8_t> blob(reinterpret_cast<const uint8_t*>(fetched->bytes.data()),
                                                fetched->bytes.size());
            status = DecodeBlob(blob, ExpectationFor(identity, codec->id(), destination), destination);
            outcome.decode_s = SecondsSince(start) - decode_start;
          }
        }
        if (!status.ok() && IsTransportError(status) && options_.abandon_stream_after_transport_error) {
          abandoned = true;
          abandon_reason = status.ToString();
        }
      }

      std::lock_guard<std::mutex> lock(shared.mutex);
      if (status.ok()) {
        engine_->kv_cache().MarkResident(chunk.range.begin, chunk.range.end);
        outcome.streamed = true;
        outcome.resident_s = SecondsSince(start);
        shared.states[j] = ChunkState::kResident;
        SPARKV_LOG_DEBUG("chunk %d [%d, %d) streamed: %zu bytes of %s in %.3f s, decoded in %.4f s",
                         chunk.range.index, chunk.range.begin, chunk.range.end, static_cast<size_t>(outcome.bytes),
                         chunk.codec.c_str(), outcome.transfer_end_s - outcome.transfer_start_s, outcome.decode_s);
      } else {
        outcome.error = status.ToString();
        shared.states[j] = ChunkState::kFailed;
        SPARKV_LOG_WARN("chunk %d [%d, %d) key %s: stream path failed, computing it locally: %s", chunk.range.index,
                        chunk.range.begin, chunk.range.end, chunk.key.Hex().c_str(), outcome.error.c_str());
      }
      shared.changed.notify_all();
    }
  };

  std::thread stream_thread;
  if (any_stream) stream_thread = std::thread(stream_path);

  // Compute path, on this thread: chunks in index order, because a prefill needs every earlier
  // position resident. A streamed chunk is waited for; if its transfer failed it is computed here.
  Status compute_status;
  for (size_t j = 0; j < n_chunks && compute_status.ok(); ++j) {
    const LoadChunk& chunk = chunks[j];
    ChunkOutcome& outcome = report.chunks[j];
    if (chunk.stream) {
      std::unique_lock<std::mutex> lock(shared.mutex);
      shared.changed.wait(lock, [&] { return shared.states[j] != ChunkState::kWaiting; });
      if (shared.states[j] == ChunkState::kResident) continue;
      outcome.fell_back = true;
    }

    outcome.compute_start_s = SecondsSince(start);
    compute_status = engine_->Prefill(tokens.subspan(chunk.range.begin, chunk.range.n_tokens()), chunk.range.begin, nullptr);
    outcome.compute_end_s = SecondsSince(start);
    outcome.resident_s = outcome.compute_end_s;
    report.compute_busy_s += outcome.compute_end_s - outcome.compute_start_s;
    SPARKV_LOG_DEBUG("chunk %d [%d, %d) computed in %.3f s%s", chunk.range.index, chunk.range.begin, chunk.range.end,
                     outcome.compute_end_s - outcome.compute_start_s, outcome.fell_back ? " (stream fallback)" : "");
  }

  // The stream path ends by itself: every fetch is bounded by the source's timeout.
  if (stream_thread.joinable()) stream_thread.join();
  if (!compute_status.ok()) return compute_status.WithContext("local prefill failed");

  for (const ChunkOutcome& outcome : report.chunks) {
    report.all_resident_s = std::max(report.all_resident_s, outcome.resident_s);
    report.stream_bytes += outcome.bytes;
    report.stream_busy_s += outcome.transfer_end_s - outcome.transfer_start_s;
    report.decode_busy_s += outcome.decode_s;
    if (outcome.streamed) ++report.n_streamed;
    else ++report.n_computed;
    if (outcome.fell_back) ++report.n_fallback;
  }
  return report;
}

}  // namespace sparkv
