#include "runtime/profiler.h"

#include <algorithm>
#include <chrono>
#include <fstream>
#include <random>

#include "common/f16.h"
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

// CPU seconds to verify and decode one blob of a full chunk, best of three.
Result<DecodeCost> MeasureDecode(const Codec& codec, Engine& engine, int32_t chunk_tokens) {
  KvSlice slice = engine.kv_cache().Slice(0, chunk_tokens);
  std::mt19937 rng(1);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  for (int32_t l = 0; l < slice.n_layer; ++l) {
    for (uint8_t* base : {slice.k[l], slice.v[l]}) {
      const size_t n = static_cast<size_t>(slice.row_width()) * chunk_tokens;
      for (size_t i = 0; i < n; ++i) {
        if (slice.elem == KvElemType::kF16) {
          const uint16_t h = F32ToF16(normal(rng));
          std::memcpy(base + 2 * i, &h, 2);
        } else {
          const float f = normal(rng);
          std::memcpy(base + 4 * i, &f, 4);
        }
      }
    }
  }
  const BlobIdentity identity{Hash128{1, 2}, Hash128{3, 4}, 0, chunk_tokens};
  SPARKV_ASSIGN_OR_RETURN(std::vector<uint8_t> blob, EncodeBlob(codec, identity, slice));

  double best = 1e30;
  for (int repeat = 0; repeat < 3; ++repeat) {
    const Clock::time_point start = Clock::now();
    SPARKV_RETURN_IF_ERROR(DecodeBlob(blob, ExpectationFor(identity, codec.id(), slice), slice));
    best = std::min(best, std::chrono::duration<double>(Clock::now() - start).count());
  }
  DecodeCost cost;
  cost.codec = std::string(codec.name());
  cost.seconds_per_byte = best / static_cast<double>(blob.size());
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
  const int32_t decode_tokens = std::min(options.chunk_tokens, capacity);
  for (const std::string& name : options.codecs) {
    const Codec* codec = FindCodec(name);
    if (codec == nullptr) return InvalidArgumentError("unknown codec '" + name + "' in the profile options");
    SPARKV_ASSIGN_OR_RETURN(DecodeCost cost, MeasureDecode(*codec, engine, decode_tokens));
    profile.decode.push_back(cost);
  }
  engine.kv_cache().Clear();

  SPARKV_LOG_INFO("profile: compute a=%.3g s/token c=%.3g s/token^2 d=%.3g s (fit rms %.3g s, max error %.1f%%)",
                  compute.a, compute.c, compute.d, report.rms_seconds, 100.0 * report.max_relative_error);
  return profile;
}

Result<Profile> LoadOrMeasureProfile(const std::string& folder, const Model& model, Engine& engine,
                                     const ProfileOptions& options) {
  const std::string path = ProfilePath(folder, model, engine.thread_pool().n_threads());
  Result<Profile> saved = LoadProfile(path);
  if (saved.ok()) {
    bool has_codecs = true;
    for (const std::string& name : options.codecs) has_codecs = has_codecs && saved->FindDecode(name) != nullptr;
    if (saved->model_fingerprint_hex == model.fingerprint().Hex() && has_codecs) {
      SPARKV_LOG_INFO("using saved profile %s", path.c_str());
      return saved;
    }
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
