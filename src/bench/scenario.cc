#include "bench/scenario.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <set>
#include <nlohmann/json.hpp>

#include "common/file_util.h"
#include "common/format.h"
#include "common/json_error.h"
#include "kv/chunk_key.h"
#include "kv/codec.h"
#include "net/link.h"
#include "runtime/profiler.h"
#include "runtime/session.h"
#include "runtime/strategy.h"

namespace sparkv {
namespace {

using nlohmann::json;

// Upper bounds that keep a sweep finite and its sizes far from overflow.
constexpr size_t kMaxSweepPoints = 100000;
constexpr int32_t kMaxChunks = 1 << 16;
constexpr int32_t kMaxSyntheticChunkTokens = 1 << 20;
constexpr double kMaxMbit = 1e6;
// Synthetic contexts stay below this many tokens, so positions fit in int32_t with room to spare.
constexpr int64_t kMaxSyntheticTokens = int64_t{1} << 24;

Status FieldError(const std::string& field, const std::string& want) {
  return InvalidArgumentError("scenario field '" + field + "': " + want);
}

Result<double> NumberIn(const json& value, const std::string& field, double lo, double hi) {
  if (!value.is_number()) return FieldError(field, "must be a number in [" + FormatNumber(lo) + ", " + FormatNumber(hi) + "]");
  const double x = value.get<double>();
  if (!std::isfinite(x) || x < lo || x > hi) {
    return FieldError(field, "is " + value.dump() + "; give a number in [" + FormatNumber(lo) + ", " +
                                 FormatNumber(hi) + "]");
  }
  return x;
}

Result<int32_t> IntegerIn(const json& value, const std::string& field, int32_t lo, int32_t hi) {
  if (!value.is_number_integer()) {
    return FieldError(field, "must be a whole number in [" + std::to_string(lo) + ", " + std::to_string(hi) + "]");
  }
  const int64_t x = value.get<int64_t>();
  if (x < lo || x > hi) {
    return FieldError(field, "is " + value.dump() + "; give a whole number in [" + std::to_string(lo) + ", " +
                                 std::to_string(hi) + "]");
  }
  return static_cast<int32_t>(x);
}

// A number or a non-empty list of numbers (a swept value).
Result<std::vector<double>> NumberOrList(const json& value, const std::string& field, double lo, double hi) {
  std::vector<double> out;
  if (value.is_array()) {
    if (value.empty()) return FieldError(field, "is an empty list; give a number or a list of numbers");
    for (size_t i = 0; i < value.size(); ++i) {
      SPARKV_ASSIGN_OR_RETURN(double x, NumberIn(value[i], field + "[" + std::to_string(i) + "]", lo, hi));
      out.push_back(x);
    }
    return out;
  }
  SPARKV_ASSIGN_OR_RETURN(double x, NumberIn(value, field, lo, hi));
  out.push_back(x);
  return out;
}

Result<std::string> String(const json& value, const std::string& field) {
  if (!value.is_string() || value.get<std::string>().empty()) return FieldError(field, "must be a non-empty string");
  return value.get<std::string>();
}

Result<std::vector<std::string>> StringList(const json& value, const std::string& field) {
  if (!value.is_array() || value.empty()) return FieldError(field, "must be a non-empty list of strings");
  std::vector<std::string> out;
  for (size_t i = 0; i < value.size(); ++i) {
    SPARKV_ASSIGN_OR_RETURN(std::string s, String(value[i], field + "[" + std::to_string(i) + "]"));
    out.push_back(std::move(s));
  }
  return out;
}

std::string Resolve(const std::string& path, const std::string& folder) {
  const std::filesystem::path p(path);
  if (p.is_absolute() || folder.empty()) return path;
  return (std::filesystem::path(folder) / p).lexically_normal().string();
}

bool IsFileName(const std::string& name) {
  if (name.empty() || name.size() > 64 || name[0] == '.') return false;
  return std::all_of(name.begin(), name.end(), [](char ch) {
    return std::isalnum(static_cast<unsigned char>(ch)) || ch == '_' || ch == '-' || ch == '.';
  });
}

Status ParseBandwidth(const json& value, const std::string& folder, BandwidthSpec* out) {
  if (!value.is_object()) {
    return FieldError("bandwidth", "must be an object with one of rate_mbit, steps or trace");
  }
  const bool constant = value.contains("rate_mbit") || value.contains("crossover");
  const int n_kinds = constant + value.contains("steps") + value.contains("trace");
  if (n_kinds != 1) {
    return FieldError("bandwidth", "give exactly one of rate_mbit (number or list, with or without crossover), "
                                   "steps ([[SECONDS, MBIT], ...]) or trace (mahimahi file, with offset_s)");
  }
  for (const auto& [key, unused] : value.items()) {
    if (key != "rate_mbit" && key != "crossover" && key != "steps" && key != "trace" && key != "offset_s") {
      return FieldError("bandwidth." + key,
                        "is not a known field; use rate_mbit and crossover, steps, or trace with offset_s");
    }
  }
  if (value.contains("offset_s") && !value.contains("trace")) {
    return FieldError("bandwidth.offset_s", "only applies to a trace; remove it or give bandwidth.trace");
  }

  if (constant) {
    out->kind = BandwidthSpec::Kind::kConstant;
    if (value.contains("crossover")) {
      if (!value["crossover"].is_boolean()) {
        return FieldError("bandwidth.crossover", "is " + value["crossover"].dump() + "; it must be true or false");
      }
      out->crossover = value["crossover"].get<bool>();
    }
    if (value.contains("rate_mbit")) {
      SPARKV_ASSIGN_OR_RETURN(out->rates_mbit, NumberOrList(value["rate_mbit"], "bandwidth.rate_mbit", 1e-6, kMaxMbit));
    } else if (!out->crossover) {
      return FieldError("bandwidth.crossover", "is false and no rate_mbit is given; give rates or set it to true");
    }
    return Status::Ok();
  }

  if (value.contains("steps")) {
    out->kind = BandwidthSpec::Kind::kSteps;
    const json& steps = value["steps"];
    if (!steps.is_array() || steps.empty()) {
      return FieldError("bandwidth.steps", "must be a non-empty list of [SECONDS, MBIT] pairs, e.g. [[0, 20], [4, 2]]");
    }
    for (size_t i = 0; i < steps.size(); ++i) {
      const std::string field = "bandwidth.steps[" + std::to_string(i) + "]";
      if (!steps[i].is_array() || steps[i].size() != 2) return FieldError(field, "must be a [SECONDS, MBIT] pair");
      SPARKV_ASSIGN_OR_RETURN(double start, NumberIn(steps[i][0], field + "[0]", 0.0, 1e7));
      SPARKV_ASSIGN_OR_RETURN(double mbit, NumberIn(steps[i][1], field + "[1]", 0.0, kMaxMbit));
      out->steps.push_back({start, mbit * 1e6 / 8.0});
    }
    Result<BandwidthModel> check = BandwidthModel::Steps(out->steps);
    if (!check.ok()) {
      return FieldError("bandwidth.steps", "start at 0 s with strictly increasing times (" + check.status().message() + ")");
    }
    return Status::Ok();
  }

  out->kind = BandwidthSpec::Kind::kTrace;
  SPARKV_ASSIGN_OR_RETURN(std::string trace, String(value["trace"], "bandwidth.trace"));
  out->trace_path = Resolve(trace, folder);
  out->trace_offsets_s = {0.0};
  if (value.contains("offset_s")) {
    SPARKV_ASSIGN_OR_RETURN(out->trace_offsets_s, NumberOrList(value["offset_s"], "bandwidth.offset_s", 0.0, 1e7));
  }
  return Status::Ok();
}

Status ParseReal(const json& value, const std::string& folder, RealSpec* out) {
  if (!value.is_object()) {
    return FieldError("real", "must be an object such as {\"model\": \"stories260K.bin\", \"sample_tokens\": 400, "
                              "\"chunk_tokens\": 64}");
  }
  static const char* const kKnownReal[] = {"model", "tokens", "sample_tokens", "seed", "chunk_tokens", "codecs",
                                           "store", "threads", "background_threads", "background_duty",
                                           "emulate_slowdown"};
  for (const auto& item : value.items()) {
    const std::string& key = item.key();
    if (std::find_if(std::begin(kKnownReal), std::end(kKnownReal), [&key](const char* k) { return key == k; }) ==
        std::end(kKnownReal)) {
      return FieldError("real." + key, "is not a known field; see docs/benchmarks.md, section Real mode");
    }
  }

  if (!value.contains("model")) return FieldError("real.model", "is missing; give a GGUF or a llama2.c checkpoint (.bin)");
  SPARKV_ASSIGN_OR_RETURN(std::string model, String(value["model"], "real.model"));
  out->model_path = Resolve(model, folder);

  if (value.contains("tokens") == value.contains("sample_tokens")) {
    return FieldError("real.tokens", "give exactly one of real.tokens (a file of token ids, BOS first) or "
                                     "real.sample_tokens (how many tokens to sample from the model)");
  }
  if (value.contains("tokens")) {
    SPARKV_ASSIGN_OR_RETURN(std::string tokens, String(value["tokens"], "real.tokens"));
    out->tokens_path = Resolve(tokens, folder);
  } else {
    SPARKV_ASSIGN_OR_RETURN(out->sample_tokens, IntegerIn(value["sample_tokens"], "real.sample_tokens", 2, 1 << 20));
  }
  if (value.contains("seed")) {
    if (!value["seed"].is_number_unsigned()) return FieldError("real.seed", "must be a whole number >= 0");
    out->seed = value["seed"].get<uint64_t>();
  }

  if (!value.contains("chunk_tokens")) return FieldError("real.chunk_tokens", "is missing; give the tokens per chunk, e.g. 64");
  SPARKV_ASSIGN_OR_RETURN(out->chunk_tokens, IntegerIn(value["chunk_tokens"], "real.chunk_tokens", 1, kMaxChunkTokens));
  if (value.contains("codecs")) {
    SPARKV_ASSIGN_OR_RETURN(out->codecs, StringList(value["codecs"], "real.codecs"));
    for (size_t i = 0; i < out->codecs.size(); ++i) {
      const std::string& codec = out->codecs[i];
      if (FindCodec(codec) == nullptr) return FieldError("real.codecs", "'" + codec + "' is not a codec level; see `sparkv ingest --help`");
      if (std::find(out->codecs.begin(), out->codecs.begin() + i, codec) != out->codecs.begin() + i) {
        return FieldError("real.codecs", "lists '" + codec + "' twice; list each level once");
      }
    }
  }

  if (value.contains("store")) {
    SPARKV_ASSIGN_OR_RETURN(std::string store, String(value["store"], "real.store"));
    out->store_path = Resolve(store, folder);
    if (std::error_code error; !std::filesystem::is_directory(out->store_path, error)) {
      return FieldError("real.store", "'" + out->store_path + "' is not a folder; give the folder that `sparkv ingest "
                                      "--store` wrote, or remove the field to ingest into a temporary one");
    }
  }
  if (value.contains("threads")) {
    SPARKV_ASSIGN_OR_RETURN(out->threads, IntegerIn(value["threads"], "real.threads", 0, 256));
  }

  if (value.contains("background_threads")) {
    SPARKV_ASSIGN_OR_RETURN(out->background_threads,
                            IntegerIn(value["background_threads"], "real.background_threads", 0, 64));
  }
  if (value.contains("background_duty")) {
    SPARKV_ASSIGN_OR_RETURN(out->background_duty, NumberIn(value["background_duty"], "real.background_duty", 0.01, 1.0));
    if (out->background_threads == 0) {
      return FieldError("real.background_duty", "needs real.background_threads above 0; set it or remove the duty");
    }
  }
  if (value.contains("emulate_slowdown")) {
    if (!value["emulate_slowdown"].is_boolean()) return FieldError("real.emulate_slowdown", "must be true or false");
    out->emulate_slowdown = value["emulate_slowdown"].get<bool>();
  }
  return Status::Ok();
}


}  // namespace

Result<Scenario> ParseScenario(std::string_view text, const std::string& folder) {
  json doc;
  try {
    doc = json::parse(text);
  } catch (const json::parse_error& error) {
    return InvalidArgumentError("scenario is not valid JSON: the syntax breaks at " + JsonErrorPlace(text, error.byte) +
                                "; check the brackets, commas and quotes there");
  } catch (const json::out_of_range&) {
    // The parser's only range error: a number beyond what a double holds, such as 1e400.
    return InvalidArgumentError("scenario has a number too large to represent (beyond about 1.8e308); every field's "
                                "valid range is far smaller, see docs/benchmarks.md");
  } catch (const json::exception&) {
    return InvalidArgumentError("scenario is not valid JSON; check its brackets, commas and quotes");
  }
  if (!doc.is_object()) return InvalidArgumentError("scenario must be a JSON object with fields such as profile and bandwidth");
  static const char* const kKnown[] = {"name", "mode", "real", "profile", "manifest", "synthetic", "n_chunks", "levels",
                                       "quality_floor", "bandwidth", "initial_rate_mbit", "rtt_ms", "slowdown",
                                       "strategies", "repetitions", "query_tokens", "timeout_s", "race_ratio",
                                       "energy_profile", "power_profiles"};
  for (const auto& item : doc.items()) {
    const std::string& key = item.key();
    if (std::find_if(std::begin(kKnown), std::end(kKnown), [&key](const char* k) { return key == k; }) ==
        std::end(kKnown)) {
      return FieldError(key, "is not a known field; see docs/benchmarks.md for the scenario layout");
    }
  }
  Scenario s;
  if (!doc.contains("name")) return FieldError("name", "is missing; give a short name for the output files");
  SPARKV_ASSIGN_OR_RETURN(s.name, String(doc["name"], "name"));
  if (!IsFileName(s.name)) return FieldError("name", "'" + s.name + "' must be 1-64 of [A-Za-z0-9_.-], not starting with '.'");
  if (doc.contains("mode")) {
    SPARKV_ASSIGN_OR_RETURN(std::string mode, String(doc["mode"], "mode"));
    if (mode == "simulated") {
      s.mode = BenchMode::kSimulated;
    } else if (mode == "real") {
      s.mode = BenchMode::kReal;
    } else if (mode == "both") {
      s.mode = BenchMode::kBoth;
    } else {
      return FieldError("mode", "is '" + mode + "'; give \"simulated\", \"real\" or \"both\"");
    }
  }
  const bool real = s.mode != BenchMode::kSimulated;
  if (real != doc.contains("real")) {
    return FieldError("real", real ? "is missing; mode real and both need {\"model\", \"tokens\" or \"sample_tokens\", "
                                     "\"chunk_tokens\"}"
                                   : "only applies to mode \"real\" or \"both\"; set mode or remove it");
  }
  if (real) {
    SPARKV_RETURN_IF_ERROR(ParseReal(doc["real"], folder, &s.real));
    if (doc.contains("manifest") || doc.contains("synthetic")) {
      return FieldError(doc.contains("manifest") ? "manifest" : "synthetic",
                        "does not apply to a real run, whose context is real.tokens or real.sample_tokens; remove it");
    }
  }
  if (doc.contains("profile")) {
    SPARKV_ASSIGN_OR_RETURN(std::string profile, String(doc["profile"], "profile"));
    s.profile_path = Resolve(profile, folder);
  } else if (!real) {
    return FieldError("profile", "is missing; give the device profile from `sparkv profile`");
  }

  if (!real && doc.contains("manifest") == doc.contains("synthetic")) {
    return FieldError("manifest", "give exactly one of manifest (a manifest.json path) or synthetic "
                                  "({chunk_tokens, bytes_per_token})");
  }
  if (real) {
    // The context is real.tokens or real.sample_tokens, which n_chunks below may cut.
  } else if (doc.contains("manifest")) {
    SPARKV_ASSIGN_OR_RETURN(std::string manifest, String(doc["manifest"], "manifest"));
    s.manifest_path = Resolve(manifest, folder);
  } else {
    const json& syn = doc["synthetic"];
    if (!syn.is_object() || !syn.contains("chunk_tokens") || !syn.contains("bytes_per_token")) {
      return FieldError("synthetic", "must be {\"chunk_tokens\": N, \"bytes_per_token\": {\"LEVEL\": BYTES, ...}}");
    }
    SPARKV_ASSIGN_OR_RETURN(s.chunk_tokens, IntegerIn(syn["chunk_tokens"], "synthetic.chunk_tokens", 1, kMaxSyntheticChunkTokens));
    const json& bpt = syn["bytes_per_token"];
    if (!bpt.is_object() || bpt.empty()) {
      return FieldError("synthetic.bytes_per_token", "must map each codec level to its bytes per token, e.g. {\"q8\": 13056}");
    }
    for (const auto& [level, bytes] : bpt.items()) {
      const std::string field = "synthetic.bytes_per_token." + level;
      if (FindCodec(level) == nullptr) return FieldError(field, "names an unknown codec level; see `sparkv ingest --help`");
      SPARKV_ASSIGN_OR_RETURN(double b, NumberIn(bytes, field, 1e-3, 1e9));
      s.bytes_per_token[level] = b;
    }
    if (!doc.contains("n_chunks")) return FieldError("n_chunks", "is required with a synthetic context; give a number or a list");
  }
  if (doc.contains("n_chunks")) {
    SPARKV_ASSIGN_OR_RETURN(std::vector<double> n, NumberOrList(doc["n_chunks"], "n_chunks", 1, kMaxChunks));
    for (double x : n) {
      if (x != std::floor(x)) return FieldError("n_chunks", "must hold whole numbers of chunks");
      s.n_chunks.push_back(static_cast<int32_t>(x));
    }
  }

  if (!s.bytes_per_token.empty()) {
    const int64_t longest = *std::max_element(s.n_chunks.begin(), s.n_chunks.end());
    if (longest * s.chunk_tokens > kMaxSyntheticTokens) {
      return FieldError("n_chunks", std::to_string(longest) + " chunks of " + std::to_string(s.chunk_tokens) +
                                        " tokens exceed " + std::to_string(kMaxSyntheticTokens) +
                                        " tokens; use fewer or shorter chunks");
    }
    for (const auto& [level, bytes] : s.bytes_per_token) {
      if (bytes * s.chunk_tokens > static_cast<double>(kMaxBlobBytes)) {
        return FieldError("synthetic.bytes_per_token." + level, "makes a chunk's blob larger than " +
                                                                    std::to_string(kMaxBlobBytes) +
                                                                    " bytes; give fewer bytes per token");
      }
    }
  }

  if (doc.contains("levels")) {
    SPARKV_ASSIGN_OR_RETURN(s.levels, StringList(doc["levels"], "levels"));
  } else if (!s.bytes_per_token.empty()) {
    for (const auto& [level, unused] : s.bytes_per_token) s.levels.push_back(level);
  } else {
    for (const Codec* codec : AllCodecs()) s.levels.emplace_back(codec->name());
  }
  for (const std::string& level : s.levels) {
    if (FindCodec(level) == nullptr) return FieldError("levels", "'" + level + "' is not a codec level; see `sparkv ingest --help`");
    if (!s.bytes_per_token.empty() && s.bytes_per_token.count(level) == 0) {
      return FieldError("levels", "'" + level + "' has no synthetic.bytes_per_token entry; add one or drop the level");
    }
  }
  if (real && s.real.store_path.empty() && !s.real.codecs.empty()) {
    // A level that is not ingested could never stream in the real runs, while the simulated side
    // would plan with it.
    for (const std::string& level : s.levels) {
      if (std::find(s.real.codecs.begin(), s.real.codecs.end(), level) == s.real.codecs.end()) {
        return FieldError("levels", "'" + level + "' is not in real.codecs, so the real runs could never stream it; "
                                    "add it to real.codecs or drop it from levels");
      }
    }
  }
  if (doc.contains("quality_floor")) {
    SPARKV_ASSIGN_OR_RETURN(s.quality_floor, IntegerIn(doc["quality_floor"], "quality_floor", 0, 1000));
  }
  if (!doc.contains("bandwidth")) return FieldError("bandwidth", "is missing; give e.g. {\"rate_mbit\": [1, 5, 20]}");
  SPARKV_RETURN_IF_ERROR(ParseBandwidth(doc["bandwidth"], folder, &s.bandwidth));
  if (doc.contains("initial_rate_mbit")) {
    SPARKV_ASSIGN_OR_RETURN(s.initial_rate_mbit, NumberIn(doc["initial_rate_mbit"], "initial_rate_mbit", 1e-6, kMaxMbit));
  }
  if (doc.contains("rtt_ms")) {
    SPARKV_ASSIGN_OR_RETURN(s.rtt_ms, NumberIn(doc["rtt_ms"], "rtt_ms", 0.0, 60000.0));
  }
  if (doc.contains("slowdown")) {
    SPARKV_ASSIGN_OR_RETURN(s.slowdowns, NumberOrList(doc["slowdown"], "slowdown", 0.01, 100.0));
  }
  if (real && s.real.emulate_slowdown) {
    for (double slowdown : s.slowdowns) {
      if (slowdown < 1.0) {
        return FieldError("slowdown", FormatNumber(slowdown) + " is below 1, and real.emulate_slowdown can only slow the "
                                      "device down; give factors >= 1");
      }
    }
  } else if (real && s.slowdowns.size() != 1) {
    return FieldError("slowdown", "must be one number in mode real or both: the device runs at its own speed, and "
                                  "the simulated side models it with this factor. Set real.emulate_slowdown to run "
                                  "the engine that many times slower");
  }
  if (!doc.contains("strategies")) return FieldError("strategies", "is missing; give e.g. [\"local\", \"stream\", \"sparkv-adaptive\"]");
  SPARKV_ASSIGN_OR_RETURN(s.strategies, StringList(doc["strategies"], "strategies"));
  std::vector<std::string> resolved;  // aliases such as "hybrid" name another strategy
  for (const std::string& name : s.strategies) {
    Result<Strategy> strategy = FindStrategy(name);
    if (!strategy.ok()) return FieldError("strategies", strategy.status().message());
    if (std::find(resolved.begin(), resolved.end(), strategy->name) != resolved.end()) {
      return FieldError("strategies", "lists '" + strategy->name + "' twice ('" + name +
                                          "' is another name for it); list each strategy once");
    }
    resolved.push_back(strategy->name);
  }
  if (doc.contains("repetitions")) {
    SPARKV_ASSIGN_OR_RETURN(s.repetitions, IntegerIn(doc["repetitions"], "repetitions", 1, 1000));
  }
  if (doc.contains("query_tokens")) {
    SPARKV_ASSIGN_OR_RETURN(s.query_tokens, IntegerIn(doc["query_tokens"], "query_tokens", 1, 1 << 20));
  }
  if (doc.contains("race_ratio")) {
    SPARKV_ASSIGN_OR_RETURN(s.race_ratio, NumberIn(doc["race_ratio"], "race_ratio", 1.0, 100.0));
  }
  if (doc.contains("timeout_s")) {
    SPARKV_ASSIGN_OR_RETURN(s.timeout_s, NumberIn(doc["timeout_s"], "timeout_s", 0.001, 1e6));
  }
  if (!doc.contains("energy_profile") && s.mode == BenchMode::kSimulated) {
    return FieldError("energy_profile", "is missing; give a profile name from data/power_profiles.json, e.g. \"phone-lte\"");
  }
  if (doc.contains("energy_profile")) {
    SPARKV_ASSIGN_OR_RETURN(s.energy_profile, String(doc["energy_profile"], "energy_profile"));
  }
  if (doc.contains("power_profiles")) {
    SPARKV_ASSIGN_OR_RETURN(std::string path, String(doc["power_profiles"], "power_profiles"));
    s.power_profiles_path = Resolve(path, folder);
  }
  if (ExpandScenario(s).size() > kMaxSweepPoints) {
    return FieldError("bandwidth", "the sweep has more than " + std::to_string(kMaxSweepPoints) +
                                       " points; shorten the lists of rates, offsets, slowdowns or n_chunks");
  }
  return s;
}

Result<Scenario> LoadScenario(const std::string& path) {
  SPARKV_ASSIGN_OR_RETURN(std::string text, ReadFileToString(path));
  Result<Scenario> scenario = ParseScenario(text, std::filesystem::path(path).parent_path().string());
  if (!scenario.ok()) return scenario.status().WithContext(path);
  return scenario;
}

std::vector<ScenarioPoint> ExpandScenario(const Scenario& s) {
  // Sizes are checked before the product is built, so a hostile file cannot make it huge.
  const std::vector<double> none{0.0};
  const std::vector<double>& rates = s.bandwidth.kind == BandwidthSpec::Kind::kConstant ? s.bandwidth.rates_mbit : none;
  const std::vector<double>& offsets = s.bandwidth.kind == BandwidthSpec::Kind::kTrace ? s.bandwidth.trace_offsets_s : none;
  const std::vector<int32_t> whole{0};
  const std::vector<int32_t>& lengths = s.n_chunks.empty() ? whole : s.n_chunks;
  const bool crossover = s.bandwidth.kind == BandwidthSpec::Kind::kConstant && s.bandwidth.crossover;
  const double n_points =
      static_cast<double>(rates.size() + crossover) * offsets.size() * s.slowdowns.size() * lengths.size();
  std::vector<ScenarioPoint> points;
  if (n_points > kMaxSweepPoints) {
    points.resize(kMaxSweepPoints + 1);
    return points;
  }
  for (int32_t n : lengths) {
    for (double slowdown : s.slowdowns) {
      for (double offset : offsets) {
        for (double rate : rates) points.push_back({rate, offset, slowdown, n});
      }
      if (crossover) points.push_back({0.0, 0.0, slowdown, n, true});
    }
  }
  return points;
}

std::string ScenarioPoint::LabelWithoutRate(const Scenario& s) const {
  std::string label;
  if (s.bandwidth.kind == BandwidthSpec::Kind::kSteps) label = "steps";
  if (s.bandwidth.kind == BandwidthSpec::Kind::kTrace) {
    label = std::filesystem::path(s.bandwidth.trace_path).stem().string() + " @" + FormatNumber(trace_offset_s) + " s";
  }
  label += (label.empty() ? "x" : ", x") + FormatNumber(slowdown);
  if (n_chunks > 0) label += ", " + std::to_string(n_chunks) + " chunks";
  return label;
}

std::string ScenarioPoint::Label(const Scenario& s) const {
  if (s.bandwidth.kind != BandwidthSpec::Kind::kConstant) return LabelWithoutRate(s);
  return (at_crossover ? "crossover " : "") + FormatNumber(rate_mbit) + " Mbit/s, " + LabelWithoutRate(s);
}

Result<BenchContext> LoadBenchContext(const Scenario& s) {
  BenchContext context;
  Result<Profile> profile = LoadProfile(s.profile_path, AllCodecNames());
  // LoadProfile's message starts with the file's path.
  if (!profile.ok()) return profile.status().WithContext("scenario field 'profile'");
  context.profile = std::move(profile).value();
  const int32_t longest = s.n_chunks.empty() ? 0 : *std::max_element(s.n_chunks.begin(), s.n_chunks.end());
  if (!s.manifest_path.empty()) {
    Result<std::string> text = ReadFileToString(s.manifest_path);
    if (!text.ok()) return text.status().WithContext("scenario field 'manifest'");
    Result<Manifest> manifest = ParseManifest(*text);
    if (!manifest.ok()) return manifest.status().WithContext("scenario field 'manifest' (" + s.manifest_path + ")");
    context.manifest = std::move(manifest).value();
    if (longest > static_cast<int32_t>(context.manifest.chunks.size())) {
      return FieldError("n_chunks", std::to_string(longest) + " is more than the manifest's " +
                                        std::to_string(context.manifest.chunks.size()) + " chunks; give at most that");
    }
    // A level that no chunk offers leaves every strategy computing every chunk, which looks like a
    // result but is a typo or the wrong store.
    for (const std::string& level : s.levels) {
      const bool offered = std::any_of(context.manifest.chunks.begin(), context.manifest.chunks.end(),
                                       [&level](const ManifestChunk& chunk) { return chunk.levels.contains(level); });
      if (!offered) {
        std::set<std::string> stored;
        for (const ManifestChunk& chunk : context.manifest.chunks) {
          for (const auto& [codec, unused] : chunk.levels) stored.insert(codec);
        }
        std::string names;
        for (const std::string& codec : stored) names += (names.empty() ? "" : ", ") + codec;
        return FieldError("levels", "'" + level + "' is in no chunk of the manifest " + s.manifest_path + " (it has " +
                                        (names.empty() ? std::string("no level") : names) +
                                        "); list only levels the store has");
      }
    }
  } else {
    context.manifest.chunk_tokens = s.chunk_tokens;
    for (int32_t j = 0; j < longest; ++j) {
      ManifestChunk chunk;
      chunk.index = j;
      chunk.begin = j * s.chunk_tokens;
      chunk.end = (j + 1) * s.chunk_tokens;
      for (const auto& [level, bytes] : s.bytes_per_token) {
        chunk.levels[level].bytes = static_cast<uint64_t>(std::ceil(bytes * s.chunk_tokens));
      }
      context.manifest.chunks.push_back(std::move(chunk));
    }
    context.manifest.n_tokens = longest * s.chunk_tokens;
  }
  for (const std::string& level : s.levels) {
    if (context.profile.FindDecode(level) == nullptr) {
      return FieldError("levels", "'" + level + "' has no decode cost in the profile " + s.profile_path +
                                      "; profile that level or drop it");
    }
  }
  return context;
}

Result<BandwidthModel> PointBandwidth(const Scenario& s, const ScenarioPoint& point) {
  switch (s.bandwidth.kind) {
    case BandwidthSpec::Kind::kConstant:
      return BandwidthModel::Constant(point.rate_mbit * 1e6 / 8.0);
    case BandwidthSpec::Kind::kSteps:
      return BandwidthModel::Steps(s.bandwidth.steps);
    case BandwidthSpec::Kind::kTrace: {
      Result<Link> link = Link::LoadMahimahi(s.bandwidth.trace_path);
      if (!link.ok()) return link.status().WithContext("scenario field 'bandwidth.trace'");
      return LinkBandwidth(*link, point.trace_offset_s);
    }
  }
  return InternalError("unknown bandwidth kind");
}

Result<double> CrossoverRate(const Scenario& s, const BenchContext& context, const ScenarioPoint& point) {
  SPARKV_ASSIGN_OR_RETURN(const Strategy local, FindStrategy("local"));
  SPARKV_ASSIGN_OR_RETURN(const Strategy stream, FindStrategy("stream"));
  ScenarioPoint at = point;
  // Local never uses the link, so its TTFT is the same at every rate.
  at.rate_mbit = 1.0;
  SPARKV_ASSIGN_OR_RETURN(const SimScenario local_sim, MakeSimScenario(s, context, at));
  SPARKV_ASSIGN_OR_RETURN(const SimResult local_run, SimulateLoad(local, local_sim));
  // Stream TTFT minus local TTFT at `rate`: positive while streaming everything is slower.
  const auto gap = [&](double rate) -> Result<double> {
    at.rate_mbit = rate;
    SPARKV_ASSIGN_OR_RETURN(const SimScenario sim, MakeSimScenario(s, context, at));
    SPARKV_ASSIGN_OR_RETURN(const SimResult stream_run, SimulateLoad(stream, sim));
    // A stream run that fetched nothing (no level allowed, every transfer timed out) computed
    // the context, so it is no faster than local.
    if (stream_run.n_streamed == 0) return HUGE_VAL;
    return stream_run.ttft_s - local_run.ttft_s;
  };

  double lo = 1e-3, hi = 1e5;
  SPARKV_ASSIGN_OR_RETURN(const double gap_hi, gap(hi));
  if (gap_hi > 0) {
    return FieldError("bandwidth.crossover", "found none at " + point.LabelWithoutRate(s) +
                                                 ": streaming is not faster than computing even at 1e5 Mbit/s; "
                                                 "check levels, quality_floor, rtt_ms and timeout_s");
  }
  SPARKV_ASSIGN_OR_RETURN(const double gap_lo, gap(lo));
  if (gap_lo <= 0) {
    return FieldError("bandwidth.crossover", "found none at " + point.LabelWithoutRate(s) +
                                                 ": streaming is faster than computing even at 1e-3 Mbit/s; "
                                                 "check the profile and bytes_per_token");
  }
  // 40 halvings of the 1e8 ratio between the bounds leave a relative width of 1.7e-5.
  for (int i = 0; i < 40; ++i) {
    const double mid = std::sqrt(lo * hi);
    SPARKV_ASSIGN_OR_RETURN(const double gap_mid, gap(mid));
    if (gap_mid > 0) {
      lo = mid;
    } else {
      hi = mid;
    }
  }
  return hi;
}

Result<SimScenario> MakeSimScenario(const Scenario& s, const BenchContext& context, const ScenarioPoint& point) {
  Manifest manifest = context.manifest;
  if (point.n_chunks > 0) manifest.chunks.resize(static_cast<size_t>(point.n_chunks));
  SimScenario sim;
  sim.input = MakePlanInput(context.profile, manifest, s.levels, s.query_tokens,
                            [](const std::string& codec) { return CodecQualityRank(codec); });
  if (s.quality_floor >= 0) sim.input.max_quality_rank = s.quality_floor;
  sim.input.request_overhead_s = s.rtt_ms / 1000.0;
  SPARKV_ASSIGN_OR_RETURN(sim.actual, PointBandwidth(s, point));
  // What a short probe at the start would measure, unless the scenario sets initial_rate_mbit.
  constexpr double kProbeWindowS = 0.5;
  const double initial = s.initial_rate_mbit > 0 ? s.initial_rate_mbit * 1e6 / 8.0
                                                 : sim.actual.BytesBetween(0.0, kProbeWindowS) / kProbeWindowS;
  sim.input.bandwidth = BandwidthModel::Constant(std::max(initial, 1.0));
  sim.device_slowdown = point.slowdown;
  sim.timeout_s = s.timeout_s;
  return sim;
}

}  // namespace sparkv
