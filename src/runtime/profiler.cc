#include "runtime/profiler.h"

#include <algorithm>
#include <chrono>
#include <fstream>
#include <span>

#include "common/file_util.h"
#include "common/log.h"
#include "kv/blob.h"
#include "kv/chunk_key.h"

namespace sparkv {
namespace {

using Clock = std::chrono::steady_clock;

double TimePrefill(Engine& engine, int32_t begin, int32_t n_tokens, int32_t n_vocab, Status* status) {
  // Token ids do not change the cost. Positions below `begin` only need to be marked resident, and
  // their rows keep whatever an earlier sample left, which is fine for timing.
  std::vector<TokenId> tokens(n_tokens);
  for (int32_t i = 0; i < n_tokens; ++i) tokens[i] = (i * 7919 + 3) % n_vocab;
  engine.kv_cache().MarkResident(0, begin);
  const Clock::time_point start = Clock::now();
  *status = engine.Prefill(tokens, begin, nullptr);
  return std::chrono::duration<double>(Clock::now() - start).count();
}

// Median CPU seconds to verify and decode `blob` into `destination`, after one untimed run that
// warms the caches. Takes up to kDecodeRepeats timed runs, fewer once kDecodeBudgetSeconds are spent
// (but at least three), so that large models profile in bounded time.
constexpr int kDecodeRepeats = 7;
constexpr double kDecodeBudgetSeconds = 2.0;

Result<double> MedianDecodeSeconds(std::span<const uint8_t> blob, const BlobExpectation& expected,
                                   const KvSlice& destination) {
  SPARKV_RETURN_IF_ERROR(DecodeBlob(blob, expected, destination));
  std::vector<double> seconds;
  double spent = 0.0;
  while (static_cast<int>(seconds.size()) < kDecodeRepeats && (seconds.size() < 3 || spent < kDecodeBudgetSeconds)) {
    const Clock::time_point start = Clock::now();
    SPARKV_RETURN_IF_ERROR(DecodeBlob(blob, expected, destination));
    seconds.push_back(std::chrono::duration<double>(Clock::now() - start).count());
    spent += seconds.back();
  }
  std::nth_element(seconds.begin(), seconds.begin() + seconds.size() / 2, seconds.end());
  return seconds[seconds.size() / 2];
}

// Fits seconds = seconds_per_chunk + seconds_per_byte * bytes through the half-chunk and full-chunk
// points. Timing noise can make the slope or intercept negative. Both terms are kept >= 0, so the
// fit then falls back to a line through the origin and the full-chunk point.
DecodeCost FitDecodeCost(const std::string& codec, uint64_t half_bytes, double half_s, uint64_t full_bytes,
                         double full_s) {
  DecodeCost cost;
  cost.codec = codec;
  cost.seconds_per_byte = full_s / static_cast<double>(full_bytes);
  if (full_bytes > half_bytes && full_s > half_s) {
    const double slope = (full_s - half_s) / static_cast<double>(full_bytes - half_bytes);
    const double intercept = full_s - slope * static_cast<double>(full_bytes);
    if (intercept >= 0.0) {
      cost.seconds_per_byte = slope;
      cost.seconds_per_chunk = intercept;
    }
  }
  return cost;
}

std::string SanitizeName(const std::string& text) {
  std::string out;
  for (char c : text) {
    const char lower = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    if ((lower >= 'a' && lower <= 'z') || (lower >= '0' && lower <= '9')) out += lower;
    else if (!out.empty() && out.back() != '-') out += '-';
  }
  while (!out.empty() && out.back() == '-') out.pop_back();
  return out.empty() ? "unknown-cpu" : out;
}

}  // namespace

std::vector<std::string> AllCodecNames() {
  std::vector<std::string> names;
  for (const Codec* codec : AllCodecs()) names.emplace_back(codec->name());
  return names;
}

Result<std::vector<DecodeCost>> MeasureDecodeCosts(const Model& model, Engine& engine, int32_t chunk_tokens,
                                                   const std::vector<std::string>& codecs) {
  std::vector<const Codec*> found;
  for (const std::string& name : codecs) {
    const Codec* codec = FindCodec(name);
    if (codec == nullptr) {
      return InvalidArgumentError("unknown codec '" + name + "' in the profile options; known: " + CodecNames());
    }
    if (std::find(found.begin(), found.end(), codec) != found.end()) {
      return InvalidArgumentError("codec '" + name + "' is listed twice in the profile options; list each once");
    }
    found.push_back(codec);
  }
  const int32_t n_tokens = std::min(chunk_tokens, engine.kv_cache().n_positions());
  if (n_tokens <= 0) {
    return InvalidArgumentError("decode profiling needs a chunk of at least one token, got " +
                                std::to_string(chunk_tokens) + " with a KV capacity of " +
                                std::to_string(engine.kv_cache().n_positions()));
  }
  if (found.empty()) return std::vector<DecodeCost>();

  // The engine's own KV of one chunk: codecs such as ans and q4 compress real KV differently from
  // random values, so both the blob sizes and the decode work match what a run streams.
  engine.kv_cache().Clear();
  const int32_t n_vocab = model.hparams().n_vocab;
  std::vector<TokenId> tokens(n_tokens);
  for (int32_t i = 0; i < n_tokens; ++i) tokens[i] = (i * 7919 + 3) % n_vocab;
  SPARKV_RETURN_IF_ERROR(engine.Prefill(tokens, 0, nullptr));

  const int32_t half_tokens = std::max(1, n_tokens / 2);
  const KvSlice full = engine.kv_cache().Slice(0, n_tokens);
  const KvSlice half = engine.kv_cache().Slice(0, half_tokens);
  const BlobIdentity full_id{model.fingerprint(), Hash128{1, 2}, 0, n_tokens};
  const BlobIdentity half_id{model.fingerprint(), Hash128{3, 4}, 0, half_tokens};
  // Every blob is encoded before any decode overwrites the cache with a lossy reconstruction.
  std::vector<std::vector<uint8_t>> full_blobs;
  std::vector<std::vector<uint8_t>> half_blobs;
  for (const Codec* codec : found) {
    SPARKV_ASSIGN_OR_RETURN(std::vector<uint8_t> f, EncodeBlob(*codec, full_id, full));
    SPARKV_ASSIGN_OR_RETURN(std::vector<uint8_t> h, EncodeBlob(*codec, half_id, half));
    full_blobs.push_back(std::move(f));
    half_blobs.push_back(std::move(h));
  }

  std::vector<DecodeCost> costs;
  for (size_t i = 0; i < found.size(); ++i) {
    const Codec& codec = *found[i];
    SPARKV_ASSIGN_OR_RETURN(const double full_s,
                            MedianDecodeSeconds(full_blobs[i], ExpectationFor(full_id, codec.id(), full), full));
    SPARKV_ASSIGN_OR_RETURN(const double half_s,
                            MedianDecodeSeconds(half_blobs[i], ExpectationFor(half_id, codec.id(), half), half));
    costs.push_back(FitDecodeCost(std::string(codec.name()), half_blobs[i].size(), half_s, full_blobs[i].size(), full_s));
    SPARKV_LOG_INFO("profile: decode %-6s %.3g s per chunk + %.3g s/byte (%d tokens: %zu bytes in %.3g s)",
                    costs.back().codec.c_str(), costs.back().seconds_per_chunk, costs.back().seconds_per_byte, n_tokens,
                    full_blobs[i].size(), full_s);
  }
  engine.kv_cache().Clear();
  return costs;
}

Result<int> AddMissingDecodeCosts(Profile& profile, const Model& model, Engine& engine, int32_t chunk_tokens,
                                  const std::vector<std::string>& codecs) {
  std::vector<std::string> missing;
  for (const std::string& name : codecs) {
    if (profile.FindDecode(name) == nullptr && std::find(missing.begin(), missing.end(), name) == missing.end()) {
      missing.push_back(name);
    }
  }
  if (missing.empty()) return 0;
  SPARKV_ASSIGN_OR_RETURN(std::vector<DecodeCost> costs, MeasureDecodeCosts(model, engine, chunk_tokens, missing));
  for (DecodeCost& cost : costs) profile.decode.push_back(std::move(cost));
  return static_cast<int>(missing.size());
}

std::string CpuName() {
  std::ifstream cpuinfo("/proc/cpuinfo");
  std::string line;
  while (std::getline(cpuinfo, line)) {
    if (line.rfind("model name", 0) == 0) {
      const size_t colon = line.find(':');
      if (colon != std::string::npos) return line.substr(line.find_first_not_of(' ', colon + 1));
    }
  }
  return "unknown-cpu";
}

std::string ProfilePath(const std::string& folder, const Model& model, int n_threads) {
  return folder + "/" + model.fingerprint().Hex() + "-t" + std::to_string(n_threads) + "-" + SanitizeName(CpuName()) +
         ".json";
}

Result<Profile> MeasureProfile(const Model& model, Engine& engine, const ProfileOptions& options, FitReport* fit) {
  if (options.chunk_tokens <= 0 || options.chunk_tokens > kMaxChunkTokens) {
    return InvalidArgumentError("profile chunk size " + std::to_string(options.chunk_tokens) + " is outside [1, " +
                                std::to_string(kMaxChunkTokens) + "]");
  }
  const int32_t capacity = engine.kv_cache().n_positions();
  const int32_t max_position = options.max_position > 0 ? std::min(options.max_position, capacity) : capacity;
  // Sizes of a quarter and an eighth of a chunk keep profiling to about 1.5 chunks of prefill.
  const int32_t large = std::max(8, std::min(options.chunk_tokens / 4, max_position / 4));
  const int32_t small = std::max(4, large / 2);
  if (max_position < 2 * large) {
    return InvalidArgumentError("profiling needs a KV capacity of at least " + std::to_string(2 * large) +
                                " positions, the engine has " + std::to_string(max_position));
  }
  const int32_t n_vocab = model.hparams().n_vocab;

  // Two sizes at four positions separate the per-token, per-position and fixed terms.
  engine.kv_cache().Clear();
  Status status;
  TimePrefill(engine, 0, small, n_vocab, &status);  // warm-up: page in the weights
  SPARKV_RETURN_IF_ERROR(status);
  std::vector<ComputeSample> samples;
  const int32_t last = max_position - large;
  for (int32_t begin : {0, last / 3, 2 * last / 3, last}) {
    for (int32_t n : {small, large}) {
      engine.kv_cache().Clear();
      const double seconds = TimePrefill(engine, begin, n, n_vocab, &status);
      SPARKV_RETURN_IF_ERROR(status);
      samples.push_back({begin, begin + n, seconds});
    }
  }

  FitReport report;
  SPARKV_ASSIGN_OR_RETURN(ComputeCost compute, FitComputeCost(samples, &report));
  if (fit != nullptr) *fit = report;

  Profile profile;
  profile.compute = compute;
  profile.n_threads = engine.thread_pool().n_threads();
  profile.cpu_name = CpuName();
  profile.model_fingerprint_hex = model.fingerprint().Hex();
  // Blob decode runs on the stream path's own thread while prefill uses every core, so the two
  // share the CPU.
  profile.decode_on_spare_core = false;
  SPARKV_ASSIGN_OR_RETURN(profile.decode, MeasureDecodeCosts(model, engine, options.chunk_tokens, options.codecs));
  engine.kv_cache().Clear();

  SPARKV_LOG_INFO("profile: compute a=%.3g s/token c=%.3g s/token^2 d=%.3g s (fit rms %.3g s, max error %.1f%%)",
                  compute.a, compute.c, compute.d, report.rms_seconds, 100.0 * report.max_relative_error);
  // Plans are only as good as this fit: warn when a timing is far off the model.
  constexpr double kPoorFit = 0.3;
  if (report.max_relative_error > kPoorFit) {
    SPARKV_LOG_WARN("profile: the prefill cost model misses one of its %d timings by %.0f%%, so predicted TTFTs "
                    "may be far off; profile again on an idle machine (sparkv profile), or with larger chunks "
                    "if prefills of this model take only milliseconds",
                    report.n_samples, 100.0 * report.max_relative_error);
  }
  return profile;
}

Result<Profile> LoadOrMeasureProfile(const std::string& folder, const Model& model, Engine& engine,
                                     const ProfileOptions& options, bool* reused) {
  if (reused != nullptr) *reused = false;
  const std::string path = ProfilePath(folder, model, engine.thread_pool().n_threads());
  Result<Profile> saved = LoadProfile(path, AllCodecNames());
  if (saved.ok() && saved->model_fingerprint_hex == model.fingerprint().Hex()) {
    SPARKV_LOG_INFO("using saved profile %s", path.c_str());
    SPARKV_ASSIGN_OR_RETURN(const int n_added,
                            AddMissingDecodeCosts(*saved, model, engine, options.chunk_tokens, options.codecs));
    if (n_added > 0) {
      SPARKV_LOG_INFO("measured %d decode costs the saved profile lacked; saving it again", n_added);
      SPARKV_RETURN_IF_ERROR(SaveProfile(*saved, path));
    }
    if (reused != nullptr) *reused = true;
    return saved;
  }
  if (saved.ok()) {
    SPARKV_LOG_WARN("ignoring saved profile %s: it is for model %s, not %s", path.c_str(),
                    saved->model_fingerprint_hex.c_str(), model.fingerprint().Hex().c_str());
  } else if (saved.status().code() != ErrorCode::kNotFound) {
    SPARKV_LOG_WARN("ignoring saved profile %s: %s", path.c_str(), saved.status().ToString().c_str());
  }

  SPARKV_LOG_INFO("measuring a device profile (once per model, thread count and CPU)");
  SPARKV_ASSIGN_OR_RETURN(Profile profile, MeasureProfile(model, engine, options, nullptr));
  SPARKV_RETURN_IF_ERROR(CreateDirectories(folder));
  SPARKV_RETURN_IF_ERROR(SaveProfile(profile, path));
  return profile;
}

}  // namespace sparkv
