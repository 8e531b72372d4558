#include "bench/energy.h"

#include <algorithm>
#include <cmath>
#include <nlohmann/json.hpp>
#include <utility>

#include "common/file_util.h"
#include "common/json_error.h"

namespace sparkv {
namespace {

using nlohmann::json;

Status ReadWatts(const json& profile, const std::string& profile_name, const char* field, double max,
                 PowerProfile* out, double* value) {
  const std::string where = "power profile '" + profile_name + "' field '" + field + "'";
  if (!profile.contains(field) || !profile[field].is_object()) {
    return InvalidArgumentError(where + " is missing; give {\"value\": NUMBER, \"source\": \"where it comes from\"}");
  }
  const json& entry = profile[field];
  if (!entry.contains("value") || !entry["value"].is_number() || !std::isfinite(entry["value"].get<double>()) ||
      entry["value"].get<double>() < 0 || entry["value"].get<double>() > max) {
    return InvalidArgumentError(where + ": value must be a number in [0, " + std::to_string(max) + "]");
  }
  if (!entry.contains("source") || !entry["source"].is_string() || entry["source"].get<std::string>().empty()) {
    return InvalidArgumentError(where + ": source must say where the figure comes from");
  }
  *value = entry["value"].get<double>();
  out->sources[field] = entry["source"].get<std::string>();
  return Status::Ok();
}

}  // namespace

Result<std::vector<PowerProfile>> ParsePowerProfiles(std::string_view text) {
  json doc;
  try {
    doc = json::parse(text);
  } catch (const json::parse_error& error) {
    return InvalidArgumentError("power profiles are not valid JSON: the syntax breaks at " +
                                JsonErrorPlace(text, error.byte) + "; check the brackets, commas and quotes there");
  } catch (const json::exception&) {
    return InvalidArgumentError("power profiles are not valid JSON; check their brackets, commas and quotes");
  }
  if (!doc.is_object() || !doc.contains("profiles") || !doc["profiles"].is_array()) {
    return InvalidArgumentError("power profiles must be a JSON object with a \"profiles\" list");
  }
  std::vector<PowerProfile> profiles;
  for (const json& entry : doc["profiles"]) {
    PowerProfile p;
    if (!entry.is_object() || !entry.contains("name") || !entry["name"].is_string() ||
        entry["name"].get<std::string>().empty()) {
      return InvalidArgumentError("power profile #" + std::to_string(profiles.size()) + " needs a non-empty \"name\"");
    }
    p.name = entry["name"].get<std::string>();
    if (entry.contains("description") && entry["description"].is_string()) p.description = entry["description"];
    SPARKV_RETURN_IF_ERROR(ReadWatts(entry, p.name, "cpu_busy_w", 1000.0, &p, &p.cpu_busy_w));
    SPARKV_RETURN_IF_ERROR(ReadWatts(entry, p.name, "cpu_idle_w", 1000.0, &p, &p.cpu_idle_w));
    SPARKV_RETURN_IF_ERROR(ReadWatts(entry, p.name, "radio_active_w", 1000.0, &p, &p.radio_active_w));
    SPARKV_RETURN_IF_ERROR(ReadWatts(entry, p.name, "radio_tail_w", 1000.0, &p, &p.radio_tail_w));
    SPARKV_RETURN_IF_ERROR(ReadWatts(entry, p.name, "radio_tail_s", 3600.0, &p, &p.radio_tail_s));
    for (const PowerProfile& other : profiles) {
      if (other.name == p.name) return InvalidArgumentError("power profile '" + p.name + "' appears twice; rename one");
    }
    profiles.push_back(std::move(p));
  }
  if (profiles.empty()) return InvalidArgumentError("power profiles list is empty; add at least one profile");
  return profiles;
}

Result<std::vector<PowerProfile>> LoadPowerProfiles(const std::string& path) {
  SPARKV_ASSIGN_OR_RETURN(std::string text, ReadFileToString(path));
  Result<std::vector<PowerProfile>> profiles = ParsePowerProfiles(text);
  if (!profiles.ok()) return profiles.status().WithContext(path);
  return profiles;
}

std::string DefaultPowerProfilesPath() { return SPARKV_POWER_PROFILES_PATH; }

Result<PowerProfile> FindPowerProfile(const std::vector<PowerProfile>& profiles, const std::string& name) {
  std::string known;
  for (const PowerProfile& p : profiles) {
    if (p.name == name) return p;
    known += (known.empty() ? "" : ", ") + p.name;
  }
  return NotFoundError("energy profile '" + name + "' is not in the power profiles; known: " + known);
}

Energy RequestEnergy(const SimResult& result, const PowerProfile& power) {
  Energy e;
  const double query_s = std::max(0.0, result.ttft_s - result.all_resident_s);
  const double busy_s = std::min(result.ttft_s, result.cpu_busy_s + query_s);
  e.cpu_busy_j = busy_s * power.cpu_busy_w;
  e.cpu_idle_j = std::max(0.0, result.ttft_s - busy_s) * power.cpu_idle_w;
  e.radio_active_j = result.network_busy_s * power.radio_active_w;

  // Each gap between the merged transfer intervals keeps the radio in its tail state for up to
  // tail seconds. The last transfer is followed by a whole tail.
  std::vector<std::pair<double, double>> transfers;  // [n_transfers], [start_s, end_s)
  for (const SimChunk& chunk : result.chunks) {
    if (chunk.transfer_start_s >= 0 && chunk.transfer_end_s >= chunk.transfer_start_s) {
      transfers.emplace_back(chunk.transfer_start_s, chunk.transfer_end_s);
    }
  }
  if (transfers.empty() && result.network_busy_s <= 0) return e;
  std::sort(transfers.begin(), transfers.end());
  double tail_s = power.radio_tail_s;  // the tail after the last transfer
  double end_s = transfers.empty() ? 0.0 : transfers.front().second;
  for (size_t i = 1; i < transfers.size(); ++i) {
    if (transfers[i].first > end_s) tail_s += std::min(transfers[i].first - end_s, power.radio_tail_s);
    end_s = std::max(end_s, transfers[i].second);
  }
  e.radio_tail_j = tail_s * power.radio_tail_w;
  return e;
}

}  // namespace sparkv
