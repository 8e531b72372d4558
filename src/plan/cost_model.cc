#include "plan/cost_model.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdio>
#include <limits>
#include <string>
#include <type_traits>

#include <nlohmann/json.hpp>

#include "common/file_util.h"
#include "common/hash.h"
#include "common/json_error.h"

namespace sparkv {
namespace {

constexpr double kInf = std::numeric_limits<double>::infinity();

// Profiles on disk carry this name and version; bump the version when a field changes meaning.
constexpr std::string_view kProfileFormat = "sparkv-profile";
constexpr int kProfileVersion = 1;

bool IsNonNegativeFinite(double x) { return std::isfinite(x) && x >= 0.0; }

// Solves the k x k system m * x = rhs in place by Gaussian elimination with partial pivoting.
// Returns false when a pivot falls below `min_pivot` (the chosen columns are nearly dependent).
template <size_t N>
bool SolveSmall(std::array<std::array<double, N>, N> m, std::array<double, N> rhs, size_t k,
                double min_pivot, std::array<double, N>* x) {
  for (size_t col = 0; col < k; ++col) {
    size_t pivot = col;
    for (size_t row = col + 1; row < k; ++row) {
      if (std::fabs(m[row][col]) > std::fabs(m[pivot][col])) pivot = row;
    }
    if (std::fabs(m[pivot][col]) < min_pivot) return false;
    std::swap(m[pivot], m[col]);
    std::swap(rhs[pivot], rhs[col]);
    for (size_t row = col + 1; row < k; ++row) {
      const double f = m[row][col] / m[col][col];
      for (size_t j = col; j < k; ++j) m[row][j] -= f * m[col][j];
      rhs[row] -= f * rhs[col];
    }
  }
  for (size_t i = k; i-- > 0;) {
    double s = rhs[i];
    for (size_t j = i + 1; j < k; ++j) s -= m[i][j] * (*x)[j];
    (*x)[i] = s / m[i][i];
  }
  return true;
}

}  // namespace

double ComputeCost::ChunkSeconds(int32_t begin, int32_t end) const {
  const double n_tokens = static_cast<double>(end) - static_cast<double>(begin);
  const double mean_pos = (static_cast<double>(begin) + static_cast<double>(end)) / 2.0;
  return n_tokens * (a + c * mean_pos) + d;
}

Result<ComputeCost> FitComputeCost(std::span<const ComputeSample> samples, FitReport* report) {
  if (samples.size() < 3) {
    return InvalidArgumentError("FitComputeCost: got " + std::to_string(samples.size()) +
                                " samples; a, c and d need at least 3 prefill timings of different "
                                "chunk ranges");
  }
  constexpr size_t kN = 3;  // columns: n_tokens, n_tokens * mean position, 1
  std::vector<std::array<double, kN>> rows;
  rows.reserve(samples.size());
  for (size_t i = 0; i < samples.size(); ++i) {
    const ComputeSample& s = samples[i];
    if (s.begin < 0 || s.end <= s.begin || !IsNonNegativeFinite(s.seconds)) {
      return InvalidArgumentError("FitComputeCost: sample " + std::to_string(i) + " has range [" +
                                  std::to_string(s.begin) + ", " + std::to_string(s.end) +
                                  ") and " + std::to_string(s.seconds) +
                                  " s; need 0 <= begin < end and finite seconds >= 0");
    }
    const double n = static_cast<double>(s.end) - s.begin;
    rows.push_back({n, n * (static_cast<double>(s.begin) + s.end) / 2.0, 1.0});
  }

  // Columns are scaled to unit norm so that the pivot threshold means "nearly dependent" whatever
  // the token counts are.
  std::array<double, kN> scale{};
  for (const auto& r : rows) {
    for (size_t j = 0; j < kN; ++j) scale[j] += r[j] * r[j];
  }
  for (double& s : scale) s = std::sqrt(s);
  std::array<std::array<double, kN>, kN> gram{};
  std::array<double, kN> rhs{};
  for (size_t i = 0; i < rows.size(); ++i) {
    for (size_t j = 0; j < kN; ++j) {
      const double xj = rows[i][j] / scale[j];
      rhs[j] += xj * samples[i].seconds;
      for (size_t k = 0; k < kN; ++k) gram[j][k] += xj * rows[i][k] / scale[k];
    }
  }
  constexpr double kMinPivot = 1e-10;
  std::array<double, kN> unused{};
  if (!SolveSmall<kN>(gram, rhs, kN, kMinPivot, &unused)) {
    return InvalidArgumentError(
        "FitComputeCost: the samples do not separate a, c and d; time chunks of different "
        "lengths at different positions");
  }

  // Exact non-negative least squares for three unknowns: the optimum has some set of coefficients
  // at zero and the others at their unconstrained optimum over that set, so try all 8 sets.
  double best_sse = kInf;
  std::array<double, kN> best{};
  for (unsigned mask = 0; mask < (1u << kN); ++mask) {
    std::array<size_t, kN> cols{};
    size_t k = 0;
    for (size_t j = 0; j < kN; ++j) {
      if (mask & (1u << j)) cols[k++] = j;
    }
    std::array<std::array<double, kN>, kN> sub{};
    std::array<double, kN> sub_rhs{};
    for (size_t p = 0; p < k; ++p) {
      sub_rhs[p] = rhs[cols[p]];
      for (size_t q = 0; q < k; ++q) sub[p][q] = gram[cols[p]][cols[q]];
    }
    std::array<double, kN> sub_x{};
    if (k > 0 && !SolveSmall<kN>(sub, sub_rhs, k, kMinPivot, &sub_x)) continue;
    std::array<double, kN> coef{};
    bool feasible = true;
    for (size_t p = 0; p < k; ++p) {
      coef[cols[p]] = sub_x[p] / scale[cols[p]];
      if (coef[cols[p]] < 0.0) feasible = false;
    }
    if (!feasible) continue;
    double sse = 0.0;
    for (size_t i = 0; i < rows.size(); ++i) {
      double pred = 0.0;
      for (size_t j = 0; j < kN; ++j) pred += coef[j] * rows[i][j];
      sse += (pred - samples[i].seconds) * (pred - samples[i].seconds);
    }
    if (sse < best_sse) {
      best_sse = sse;
      best = coef;
    }
  }

  ComputeCost cost{best[0], best[1], best[2]};
  if (report != nullptr) {
    report->n_samples = static_cast<int32_t>(samples.size());
    report->rms_seconds = std::sqrt(best_sse / static_cast<double>(samples.size()));
    report->max_relative_error = 0.0;
    for (const ComputeSample& s : samples) {
      const double err = std::fabs(cost.ChunkSeconds(s.begin, s.end) - s.seconds);
      const double rel = s.seconds > 0.0 ? err / s.seconds : (err > 0.0 ? kInf : 0.0);
      report->max_relative_error = std::max(report->max_relative_error, rel);
    }
  }
  return cost;
}

BandwidthModel BandwidthModel::Constant(double bytes_per_s) {
  BandwidthModel m;
  m.steps_ = {{0.0, std::isfinite(bytes_per_s) && bytes_per_s > 0.0 ? bytes_per_s : 0.0}};
  m.bytes_before_ = {0.0};
  return m;
}

Result<BandwidthModel> BandwidthModel::Steps(std::vector<BandwidthStep> steps) {
  if (steps.empty() || steps[0].start_s != 0.0) {
    return InvalidArgumentError("BandwidthModel::Steps: the first step must start at 0 s");
  }
  BandwidthModel m;
  m.bytes_before_.reserve(steps.size());
  for (size_t i = 0; i < steps.size(); ++i) {
    if (!IsNonNegativeFinite(steps[i].bytes_per_s)) {
      return InvalidArgumentError("BandwidthModel::Steps: step " + std::to_string(i) +
                                  " has rate " + std::to_string(steps[i].bytes_per_s) +
                                  " B/s; rates must be finite and >= 0");
    }
    if (i > 0 && !(steps[i].start_s > steps[i - 1].start_s && std::isfinite(steps[i].start_s))) {
      return InvalidArgumentError("BandwidthModel::Steps: step " + std::to_string(i) +
                                  " starts at " + std::to_string(steps[i].start_s) +
                                  " s; start times must be finite and strictly increasing");
    }
    m.bytes_before_.push_back(
        i == 0 ? 0.0
               : m.bytes_before_[i - 1] +
                     steps[i - 1].bytes_per_s * (steps[i].start_s - steps[i - 1].start_s));
  }
  m.steps_ = std::move(steps);
  return m;
}

Result<BandwidthModel> BandwidthModel::Trace(std::span<const double> bytes_per_s,
                                             double interval_s, bool loop) {
  if (bytes_per_s.empty() || !(interval_s > 0.0) || !std::isfinite(interval_s)) {
    return InvalidArgumentError("BandwidthModel::Trace: need at least one rate and a finite "
                                "interval > 0 s; got " + std::to_string(bytes_per_s.size()) +
                                " rates, interval " + std::to_string(interval_s) + " s");
  }
  std::vector<BandwidthStep> steps(bytes_per_s.size());
  for (size_t i = 0; i < steps.size(); ++i) {
    steps[i] = {static_cast<double>(i) * interval_s, bytes_per_s[i]};
  }
  SPARKV_ASSIGN_OR_RETURN(BandwidthModel m, Steps(std::move(steps)));
  if (loop) {
    m.loop_period_s_ = static_cast<double>(bytes_per_s.size()) * interval_s;
    m.bytes_per_period_ = m.BytesWithinPeriod(0.0, m.loop_period_s_);
  }
  return m;
}

size_t BandwidthModel::StepIndexAt(double t_s) const {
  // Last step whose start is <= t_s; times before 0 belong to step 0.
  auto it = std::upper_bound(steps_.begin(), steps_.end(), t_s,
                             [](double t, const BandwidthStep& s) { return t < s.start_s; });
  return it == steps_.begin() ? 0 : static_cast<size_t>(it - steps_.begin()) - 1;
}

double BandwidthModel::RateAt(double t_s) const {
  if (steps_.empty()) return 0.0;
  if (loop_period_s_ > 0.0 && t_s >= 0.0) t_s = std::fmod(t_s, loop_period_s_);
  return steps_[StepIndexAt(t_s)].bytes_per_s;
}

double BandwidthModel::BytesWithinPeriod(double begin_s, double end_s) const {
  // Cumulative bytes F(t) carried in [0, t); linear inside each step.
  auto cumulative = [this](double t) {
    const size_t i = StepIndexAt(t);
    return bytes_before_[i] + steps_[i].bytes_per_s * (t - steps_[i].start_s);
  };
  return cumulative(end_s) - cumulative(begin_s);
}

double BandwidthModel::BytesBetween(double begin_s, double end_s) const {
  if (steps_.empty() || !(end_s > begin_s)) return 0.0;
  double total = 0.0;
  if (begin_s < 0.0) {
    total += steps_[0].bytes_per_s * (std::min(end_s, 0.0) - begin_s);
    begin_s = 0.0;
    if (end_s <= 0.0) return total;
  }
  if (loop_period_s_ <= 0.0) return total + BytesWithinPeriod(begin_s, end_s);
  auto cumulative = [this](double t) {
    const double k = std::floor(t / loop_period_s_);
    const double within = std::min(t - k * loop_period_s_, loop_period_s_);
    return k * bytes_per_period_ + BytesWithinPeriod(0.0, within);
  };
  return total + cumulative(end_s) - cumulative(begin_s);
}

double BandwidthModel::FinishWithinPeriods(double start_s, double n_bytes) const {
  // Smallest t with F(t) >= F(start_s) + n_bytes, where F is the cumulative byte count.
  const size_t i0 = StepIndexAt(start_s);
  const double target =
      bytes_before_[i0] + steps_[i0].bytes_per_s * (start_s - steps_[i0].start_s) + n_bytes;
  double periods = 0.0;
  double within = target;
  if (loop_period_s_ > 0.0) {
    periods = std::floor(target / bytes_per_period_);
    within = target - periods * bytes_per_period_;
    if (within <= 0.0 && periods > 0.0) {
      periods -= 1.0;
      within = bytes_per_period_;
    }
  }
  // First step whose cumulative start reaches `within`; the bytes run out in the step before it.
  auto it = std::lower_bound(bytes_before_.begin(), bytes_before_.end(), within);
  const size_t j = static_cast<size_t>(it - bytes_before_.begin());
  const size_t i = j == 0 ? 0 : j - 1;
  const double rate = steps_[i].bytes_per_s;
  if (rate <= 0.0) return kInf;  // only the last step can be reached with a zero rate
  return periods * loop_period_s_ + steps_[i].start_s + (within - bytes_before_[i]) / rate;
}

double BandwidthModel::FinishTime(double start_s, uint64_t n_bytes) const {
  if (n_bytes == 0) return start_s;
  if (steps_.empty() || !std::isfinite(start_s)) return kInf;
  double remaining = static_cast<double>(n_bytes);

  // The common case, and the one whose arithmetic callers can reproduce by hand.
  if (steps_.size() == 1) {
    return steps_[0].bytes_per_s > 0.0 ? start_s + remaining / steps_[0].bytes_per_s : kInf;
  }
  if (start_s < 0.0) {
    const double r0 = steps_[0].bytes_per_s;
    if (r0 > 0.0 && remaining <= r0 * -start_s) return start_s + remaining / r0;
    remaining -= r0 * -start_s;
    start_s = 0.0;
  }
  if (loop_period_s_ > 0.0) {
    if (bytes_per_period_ <= 0.0) return kInf;
    const double base = std::floor(start_s / loop_period_s_) * loop_period_s_;
    return base + FinishWithinPeriods(start_s - base, remaining);
  }
  return FinishWithinPeriods(start_s, remaining);
}

double DecodeCost::Seconds(uint64_t n_bytes) const {
  return seconds_per_chunk + seconds_per_byte * static_cast<double>(n_bytes);
}

const DecodeCost* Profile::FindDecode(std::string_view codec) const {
  for (const DecodeCost& d : decode) {
    if (d.codec == codec) return &d;
  }
  return nullptr;
}

std::string ProfileToJson(const Profile& profile) {
  nlohmann::json j;
  j["format"] = kProfileFormat;
  j["version"] = kProfileVersion;
  j["compute"] = {{"a", profile.compute.a}, {"c", profile.compute.c}, {"d", profile.compute.d}};
  nlohmann::json decode = nlohmann::json::array();
  for (const DecodeCost& d : profile.decode) {
    decode.push_back({{"codec", d.codec},
                      {"seconds_per_chunk", d.seconds_per_chunk},
                      {"seconds_per_byte", d.seconds_per_byte}});
  }
  j["decode"] = std::move(decode);
  j["n_threads"] = profile.n_threads;
  j["decode_on_spare_core"] = profile.decode_on_spare_core;
  j["cpu_name"] = profile.cpu_name;
  j["model_fingerprint"] = profile.model_fingerprint_hex;
  return j.dump(2) + "\n";
}

namespace {

// The advice that ends every profile error. A hand-edited profile can be corrected, and a damaged
// or outdated one measured again.
constexpr const char* kProfileFix = "; correct it, or measure the device again with `sparkv profile`";

// Reads field `name` of `object` as T, checking the JSON type first instead of converting (a
// boolean is no number here, and 1.5 no thread count). Errors name the field, what it contains
// and what was expected; `where` prefixes the name (e.g. "decode[2].").
// A whole number must also lie in [min, max], which default to T's range.
template <typename T>
Result<T> ProfileField(const nlohmann::json& object, const char* name, const std::string& where = "",
                       int64_t min = std::numeric_limits<int64_t>::min(),
                       int64_t max = std::numeric_limits<int64_t>::max()) {
  const std::string field = "profile: field \"" + where + name + "\"";
  const auto it = object.find(name);
  if (it == object.end()) return CorruptionError(field + " is missing" + kProfileFix);
  const nlohmann::json& value = *it;
  const auto wrong = [&](const char* expected) {
    return CorruptionError(field + " is " + (value.is_null() ? std::string("null") : "a " + std::string(value.type_name())) +
                           ", expected " + expected + kProfileFix);
  };
  if constexpr (std::is_same_v<T, nlohmann::json>) {
    return value;
  } else if constexpr (std::is_same_v<T, bool>) {
    if (!value.is_boolean()) return wrong("true or false");
    return value.get<bool>();
  } else if constexpr (std::is_same_v<T, std::string>) {
    if (!value.is_string()) return wrong("a string");
    return value.get<std::string>();
  } else if constexpr (std::is_integral_v<T>) {
    if (!value.is_number_integer()) return wrong("a whole number");
    // A value outside T's range would wrap in get<T>(), so it is compared as a wide integer first.
    const int64_t low = std::max<int64_t>(min, std::numeric_limits<T>::min());
    const int64_t high = std::min<int64_t>(max, std::numeric_limits<T>::max());
    const bool fits = value.is_number_unsigned()
                          ? value.get<uint64_t>() <= static_cast<uint64_t>(high) &&
                                static_cast<int64_t>(value.get<uint64_t>()) >= low
                          : value.get<int64_t>() >= low && value.get<int64_t>() <= high;
    if (!fits) {
      return CorruptionError(field + " is " + value.dump() + ", expected " + std::to_string(low) + " to " +
                             std::to_string(high) + kProfileFix);
    }
    return value.get<T>();
  } else {
    static_assert(std::is_floating_point_v<T>, "profile fields are numbers, strings, booleans or objects");
    if (!value.is_number()) return wrong("a number");
    return value.get<T>();
  }
}

// Formats a number as JSON readers write it: 1e+308, 0.0004, inf, nan.
std::string Number(double value) {
  char text[32];
  std::snprintf(text, sizeof text, "%.6g", value);
  return text;
}

// Returns the error for field `name`, whose `value` is outside [0, max]. `unit` follows max, and
// `meaning`, printed in parentheses, is what the field measures.
Status OutOfRange(const std::string& name, double value, double max, const std::string& unit,
                  const std::string& meaning) {
  return CorruptionError("profile: field \"" + name + "\" is " + Number(value) + ", expected a finite number in [0, " +
                         Number(max) + "]" + unit + " (" + meaning + ")" + kProfileFix);
}

bool InRange(double value, double max) { return IsNonNegativeFinite(value) && value <= max; }

}  // namespace

Status CheckProfile(const Profile& profile, std::span<const std::string> known_codecs) {
  const ComputeCost& cost = profile.compute;
  if (!InRange(cost.a, kMaxProfileStepSeconds)) {
    return OutOfRange("compute.a", cost.a, kMaxProfileStepSeconds, " s per token",
                      "prefill time per token, at most a day");
  }
  // c multiplies the position, so its bound keeps a token at the last position within a day.
  const double max_c = kMaxProfileStepSeconds / kMaxProfilePosition;
  if (!InRange(cost.c, max_c)) {
    return OutOfRange("compute.c", cost.c, max_c, " s per token per earlier position",
                      "attention time, at most a day per token at position " + std::to_string(kMaxProfilePosition));
  }
  if (!InRange(cost.d, kMaxProfileStepSeconds)) {
    return OutOfRange("compute.d", cost.d, kMaxProfileStepSeconds, " s", "fixed time of one prefill call, at most a day");
  }

  // The bounds above keep chunk times finite. A time of 0 would make every ratio to it nan or inf.
  const double token_s = cost.ChunkSeconds(0, 1);
  if (!(token_s >= kMinProfileTokenSeconds)) {
    return CorruptionError("profile: fields \"compute.a\", \"compute.c\" and \"compute.d\" are " + Number(cost.a) +
                           ", " + Number(cost.c) + " and " + Number(cost.d) + ", so a one-token prefill would take " +
                           Number(token_s) + " s, but a chunk's compute time must be positive, at least " +
                           Number(kMinProfileTokenSeconds) + " s per token" + kProfileFix);
  }

  for (size_t i = 0; i < profile.decode.size(); ++i) {
    const DecodeCost& decode = profile.decode[i];
    const std::string where = "decode[" + std::to_string(i) + "].";
    if (decode.codec.empty()) return CorruptionError("profile: field \"" + where + "codec\" is empty" + kProfileFix);
    if (!known_codecs.empty() &&
        std::find(known_codecs.begin(), known_codecs.end(), decode.codec) == known_codecs.end()) {
      std::string known;
      for (const std::string& name : known_codecs) known += (known.empty() ? "" : ", ") + name;
      return CorruptionError("profile: field \"" + where + "codec\" is \"" + decode.codec +
                             "\", an unknown codec (known codecs: " + known + "); remove that entry" + kProfileFix);
    }
    if (!InRange(decode.seconds_per_chunk, kMaxProfileStepSeconds)) {
      return OutOfRange(where + "seconds_per_chunk", decode.seconds_per_chunk, kMaxProfileStepSeconds, " s",
                        "fixed decode time of one " + decode.codec + " blob, at most a day");
    }
    if (!InRange(decode.seconds_per_byte, kMaxProfileSecondsPerByte)) {
      return OutOfRange(where + "seconds_per_byte", decode.seconds_per_byte, kMaxProfileSecondsPerByte, " s per byte",
                        "decode time per byte of a " + decode.codec + " blob, at least 1 kB/s");
    }
    for (size_t k = 0; k < i; ++k) {
      if (profile.decode[k].codec == decode.codec) {
        return CorruptionError("profile: field \"" + where + "codec\": codec \"" + decode.codec +
                               "\" is listed twice under decode (also decode[" + std::to_string(k) +
                               "]); keep one entry per codec");
      }
    }
  }

  if (profile.n_threads < 1 || profile.n_threads > kMaxProfileThreads) {
    return CorruptionError("profile: field \"n_threads\" is " + std::to_string(profile.n_threads) + ", expected 1 to " +
                           std::to_string(kMaxProfileThreads) + kProfileFix);
  }
  Hash128 unused;
  if (!Hash128::FromHex(profile.model_fingerprint_hex, &unused)) {
    return CorruptionError("profile: field \"model_fingerprint\" is \"" + profile.model_fingerprint_hex.substr(0, 40) +
                           "\", expected 32 hex digits" + kProfileFix);
  }
  return Status::Ok();
}

Result<Profile> ProfileFromJson(std::string_view json, std::span<const std::string> known_codecs) {
  Profile p;
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(json);
  } catch (const nlohmann::json::parse_error& e) {
    return CorruptionError("profile is not valid JSON: the syntax breaks at " + JsonErrorPlace(json, e.byte) +
                           kProfileFix);
  } catch (const nlohmann::json::out_of_range& e) {
    // The library's message ends "... parsing '1e400'"; the number is all of it a reader needs.
    const std::string_view what = e.what();
    constexpr std::string_view kParsing = " parsing '";
    std::string number;
    if (const size_t at = what.find(kParsing); at != std::string_view::npos) {
      const std::string_view rest = what.substr(at + kParsing.size());
      number = std::string(rest.substr(0, std::min<size_t>(rest.find('\''), 40))) + " ";
    }
    return CorruptionError("profile contains a number " + number + "too large for a double (over 1.8e308)" +
                           kProfileFix);
  } catch (const nlohmann::json::exception&) {
    return CorruptionError(std::string("profile is not valid JSON") + kProfileFix);
  }
  if (!j.is_object() || !j.contains("format") || !j["format"].is_string() ||
      j["format"].get<std::string>() != kProfileFormat) {
    return CorruptionError("profile: field \"format\" is not \"sparkv-profile\", so this file is no SparKV "
                           "profile; pass the file `sparkv profile` wrote");
  }
  SPARKV_ASSIGN_OR_RETURN(const int version, ProfileField<int>(j, "version"));
  if (version != kProfileVersion) {
    return UnsupportedError("profile: version " + std::to_string(version) +
                            " is not supported (this build reads version " +
                            std::to_string(kProfileVersion) + "); measure the device again with `sparkv profile`");
  }
  SPARKV_ASSIGN_OR_RETURN(const nlohmann::json c, ProfileField<nlohmann::json>(j, "compute"));
  if (!c.is_object()) {
    return CorruptionError("profile: field \"compute\" is a " + std::string(c.type_name()) +
                           ", expected an object with a, c and d" + kProfileFix);
  }
  SPARKV_ASSIGN_OR_RETURN(p.compute.a, ProfileField<double>(c, "a", "compute."));
  SPARKV_ASSIGN_OR_RETURN(p.compute.c, ProfileField<double>(c, "c", "compute."));
  SPARKV_ASSIGN_OR_RETURN(p.compute.d, ProfileField<double>(c, "d", "compute."));
  SPARKV_ASSIGN_OR_RETURN(const nlohmann::json decode, ProfileField<nlohmann::json>(j, "decode"));
  if (!decode.is_array()) {
    return CorruptionError("profile: field \"decode\" is a " + std::string(decode.type_name()) +
                           ", expected a list of {codec, seconds_per_chunk, seconds_per_byte}" + kProfileFix);
  }
  for (size_t i = 0; i < decode.size(); ++i) {
    const nlohmann::json& d = decode[i];
    const std::string where = "decode[" + std::to_string(i) + "].";
    if (!d.is_object()) {
      return CorruptionError("profile: field \"" + where.substr(0, where.size() - 1) + "\" is a " +
                             std::string(d.type_name()) + ", expected an object" + kProfileFix);
    }
    DecodeCost dc;
    SPARKV_ASSIGN_OR_RETURN(dc.codec, ProfileField<std::string>(d, "codec", where));
    SPARKV_ASSIGN_OR_RETURN(dc.seconds_per_chunk, ProfileField<double>(d, "seconds_per_chunk", where));
    SPARKV_ASSIGN_OR_RETURN(dc.seconds_per_byte, ProfileField<double>(d, "seconds_per_byte", where));
    p.decode.push_back(std::move(dc));
  }
  SPARKV_ASSIGN_OR_RETURN(p.n_threads, ProfileField<int32_t>(j, "n_threads", "", 1, kMaxProfileThreads));
  SPARKV_ASSIGN_OR_RETURN(p.decode_on_spare_core, ProfileField<bool>(j, "decode_on_spare_core"));
  SPARKV_ASSIGN_OR_RETURN(p.cpu_name, ProfileField<std::string>(j, "cpu_name"));
  SPARKV_ASSIGN_OR_RETURN(p.model_fingerprint_hex, ProfileField<std::string>(j, "model_fingerprint"));
  SPARKV_RETURN_IF_ERROR(CheckProfile(p, known_codecs));
  return p;
}

Status SaveProfile(const Profile& profile, const std::string& path) {
  return WriteFileAtomic(path, std::string_view(ProfileToJson(profile))).WithContext(path);
}

Result<Profile> LoadProfile(const std::string& path, std::span<const std::string> known_codecs) {
  SPARKV_ASSIGN_OR_RETURN(std::string text, ReadFileToString(path));
  Result<Profile> p = ProfileFromJson(text, known_codecs);
  if (!p.ok()) return p.status().WithContext(path);
  return p;
}

}  // namespace sparkv
