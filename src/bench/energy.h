// Energy of one request under a per-device power model (DESIGN.md 7). This is a model, not a
// meter reading: power levels come from data/power_profiles.json, each with a note on where such
// a figure usually comes from, and the simulator's timeline gives how long each state lasts.
//
// Over the request, from 0 to the TTFT:
//   CPU:   busy watts while prefill, decode or the query runs; idle watts the rest of the time.
//   Radio: active watts while a transfer is in flight (network_busy_s). After each transfer the
//          radio stays in its tail state for tail seconds, unless the next transfer starts sooner.
//          The tail after the last transfer counts whole, even past the TTFT, because the request
//          caused it. A request without transfers uses no radio energy (idle is taken as 0 W).
#pragma once

#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "runtime/simulator.h"
#include "sparkv/status.h"

namespace sparkv {

struct PowerProfile {
  std::string name;
  std::string description;
  double cpu_busy_w = 0.0;
  double cpu_idle_w = 0.0;
  double radio_active_w = 0.0;
  double radio_tail_w = 0.0;
  double radio_tail_s = 0.0;
  std::map<std::string, std::string> sources;  // field name -> where such a figure comes from
};

// Parses the power profiles file ({"profiles": [{"name": ..., "cpu_busy_w": {"value": W,
// "source": "..."}, ...}]}). Every number needs a finite non-negative value and a source.
Result<std::vector<PowerProfile>> ParsePowerProfiles(std::string_view json);
Result<std::vector<PowerProfile>> LoadPowerProfiles(const std::string& path);
// The checked-in data/power_profiles.json of this source tree.
std::string DefaultPowerProfilesPath();
// NotFound naming the known profiles when `name` is not among them.
Result<PowerProfile> FindPowerProfile(const std::vector<PowerProfile>& profiles, const std::string& name);

// Joules per state; see the file comment for the model.
struct Energy {
  double cpu_busy_j = 0.0;
  double cpu_idle_j = 0.0;
  double radio_active_j = 0.0;
  double radio_tail_j = 0.0;

  double total_j() const { return cpu_busy_j + cpu_idle_j + radio_active_j + radio_tail_j; }
};

// Computes the request's energy from its simulated timeline. CPU busy time is cpu_busy_s plus the query
// (ttft_s - all_resident_s). Tail gaps come from the chunks' last transfers
// [transfer_start_s, transfer_end_s). Cancelled or failed earlier transfers count as active time
// through network_busy_s, but the simulator keeps no interval for them, so they do not shorten gaps.
// NOTE: with decode on a spare core, CPU busy time can exceed the TTFT. It is then capped at the
// TTFT, which undercounts the second core's energy.
Energy RequestEnergy(const SimResult& result, const PowerProfile& power);

}  // namespace sparkv
