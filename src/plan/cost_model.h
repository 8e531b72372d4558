// Cost models of the two paths (DESIGN.md 6): local compute of a chunk, transfer of a blob over a
// link whose bandwidth varies with time, and the CPU time a streamed blob takes to decode. A
// Profile bundles what was measured on one device for one model and is saved as JSON.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "sparkv/status.h"

namespace sparkv {

// Seconds to prefill tokens [begin, end) on top of a cache holding [0, begin):
// t_c(b, e) = (e - b) * (a + c * (b + e) / 2) + d.
// `a` is the per-token cost of the weights (s/token), `c` the attention cost per token per
// earlier position (s/token^2; (b + e) / 2 is the mean position), `d` the fixed cost of one call (s).
struct ComputeCost {
  double a = 0.0;
  double c = 0.0;
  double d = 0.0;

  double ChunkSeconds(int32_t begin, int32_t end) const;
};

// One measured prefill call for fitting a ComputeCost.
struct ComputeSample {
  int32_t begin = 0;
  int32_t end = 0;
  double seconds = 0.0;
};

struct FitReport {
  int32_t n_samples = 0;
  double rms_seconds = 0.0;         // root mean square of (predicted - measured)
  double max_relative_error = 0.0;  // max over samples of |predicted - measured| / measured
};

// Least-squares fit of a, c, d >= 0 to the samples (exact non-negative least squares: every
// subset of free coefficients is solved and the best non-negative solution kept). Needs at least
// three samples with distinct shapes; `report` may be null.
Result<ComputeCost> FitComputeCost(std::span<const ComputeSample> samples, FitReport* report);

// One step of a piecewise-constant bandwidth: from `start_s` on, until the next step starts, the
// link carries `bytes_per_s`. A rate of 0 is an outage.
struct BandwidthStep {
  double start_s = 0.0;
  double bytes_per_s = 0.0;
};

// Predicted bandwidth as a function of time: a constant, piecewise-constant steps, or a sampled
// trace (equal intervals, optionally looping like a mahimahi trace). It answers when a transfer
// that starts at time t finishes, by integrating the rate; transfers are modelled back to back,
// one at a time, as the stream path issues them.
class BandwidthModel {
 public:
  // A link that never delivers: every transfer of one or more bytes finishes at +infinity.
  BandwidthModel() = default;

  static BandwidthModel Constant(double bytes_per_s);

  // REQUIRES of the input (checked): steps[0].start_s == 0, start times strictly increasing,
  // rates finite and >= 0. The last step lasts forever.
  static Result<BandwidthModel> Steps(std::vector<BandwidthStep> steps);

  // Rate i holds during [i * interval_s, (i + 1) * interval_s). With `loop` the trace repeats;
  // without, the last rate lasts forever.
  static Result<BandwidthModel> Trace(std::span<const double> bytes_per_s, double interval_s,
                                      bool loop);

  double RateAt(double t_s) const;

  // Time at which `n_bytes` sent from `start_s` on have all arrived; +infinity if the link never
  // carries that much. Non-decreasing in start_s and in n_bytes. Times before 0 use the first rate.
  double FinishTime(double start_s, uint64_t n_bytes) const;

  // Bytes the link carries during [begin_s, end_s).
  double BytesBetween(double begin_s, double end_s) const;

  // Steps over one period (looping traces) or over all time; for reports and JSON.
  const std::vector<BandwidthStep>& steps() const { return steps_; }
  double loop_period_s() const { return loop_period_s_; }

 private:
  // Bytes carried during [begin_s, end_s) with 0 <= begin_s <= end_s <= period (or unbounded).
  double BytesWithinPeriod(double begin_s, double end_s) const;
  // Finish time of n bytes from start_s, with 0 <= start_s < period (or unbounded).
  double FinishWithinPeriods(double start_s, double n_bytes) const;
  size_t StepIndexAt(double t_s) const;

  std::vector<BandwidthStep> steps_;  // [n_steps], start_s strictly increasing from 0
  std::vector<double> bytes_before_;  // [n_steps], bytes carried in [0, steps_[i].start_s)
  double loop_period_s_ = 0.0;        // 0 = no looping
  double bytes_per_period_ = 0.0;     // bytes carried in one period when looping
};

// CPU time a streamed blob of one codec takes to become cache rows on the device:
// seconds_per_chunk + seconds_per_byte * blob bytes. Small for plain quantization, large for
// entropy coding.
struct DecodeCost {
  std::string codec;
  double seconds_per_chunk = 0.0;
  double seconds_per_byte = 0.0;

  double Seconds(uint64_t n_bytes) const;
};

// Everything measured on one device for one model and thread count.
struct Profile {
  ComputeCost compute;
  std::vector<DecodeCost> decode;  // one per codec, codec names unique
  int32_t n_threads = 1;
  bool decode_on_spare_core = false;  // true: blob decode runs beside prefill, not on its CPU
  std::string cpu_name;
  std::string model_fingerprint_hex;  // 32 hex digits, as in manifests

  // nullptr when the profile has no entry for `codec`.
  const DecodeCost* FindDecode(std::string_view codec) const;
};

// Bounds of a profile's numbers. Measured values lie orders of magnitude inside them, so a value
// outside is a typo or a damaged file, and it would make predicted times 0, inf or nan.
// The cost model's range is positions [0, kMaxProfilePosition], the largest `sparkv profile
// --max-position` accepts.
inline constexpr int32_t kMaxProfilePosition = 1 << 20;
// No single step is predicted to take longer than a day: one token's prefill (a, or c at the last
// position of the range), one prefill call's fixed cost (d), one blob's fixed decode cost.
inline constexpr double kMaxProfileStepSeconds = 86400.0;
// A one-token prefill at position 0 takes at least this long (a trillion tokens per second is
// past any device). Below it, times round to 0 and ratios of them to nan or inf.
inline constexpr double kMinProfileTokenSeconds = 1e-12;
// Decoding slower than 1 kB/s is past any codec on any device.
inline constexpr double kMaxProfileSecondsPerByte = 1e-3;
inline constexpr int32_t kMaxProfileThreads = 4096;

// Checks every number of `profile` against the bounds above, every codec name (non-empty, listed
// once) and the fingerprint (32 hex digits). The error names the JSON field ("compute.c",
// "decode[1].seconds_per_byte"), its value, the range expected and the fix.
// An empty or partial decode list is valid, because `sparkv run` measures the codecs it lacks, and
// `sparkv simulate` and `sparkv bench` reject a level the profile has no decode cost for.
// A non-empty `known_codecs` also rejects a decode entry for any other codec and lists the known
// ones. Callers pass the codec registry's names, because this module does not link the registry.
Status CheckProfile(const Profile& profile, std::span<const std::string> known_codecs = {});

std::string ProfileToJson(const Profile& profile);
// Parses and then checks with CheckProfile.
Result<Profile> ProfileFromJson(std::string_view json, std::span<const std::string> known_codecs = {});
Status SaveProfile(const Profile& profile, const std::string& path);  // atomic write
Result<Profile> LoadProfile(const std::string& path, std::span<const std::string> known_codecs = {});

}  // namespace sparkv
