#pragma once
// Failure profiles (issue 19): how often a training job is interrupted, by root cause, and how long
// it takes to notice and restart. Data, not code: configs/failures/<name>.yaml holds a published
// fleet observation (interruption counts over a window on a known number of GPUs); the rates are
// derived from it here, per GPU-hour or per node-hour, so they scale with the job's size.
#include <string>
#include <vector>

namespace scaleplan::hw {

// One root cause (or a group of them, e.g. all GPU-side causes of the Llama 3 Table 5).
struct FailureCause {
  std::string name;
  bool per_node = false;  // the rate scales with nodes (host, NIC...), else with GPUs
  bool planned = false;   // planned maintenance: the job checkpoints first, so no work is lost
  double rate_per_s = 0;  // interruptions per second per GPU (or per node when per_node)
};

struct FailureProfile {
  std::string name, file;
  std::vector<FailureCause> causes;
  double detect_s = 0;          // from the fault to the job noticing it (unplanned only)
  double restart_s = 0;         // reschedule, replace the node, relaunch and initialise the job
  // Unexpected interruptions per second for a job on `gpus` GPUs in nodes of `gpus_per_node`.
  double unplanned_rate_per_s(long long gpus, int gpus_per_node) const;
  double planned_rate_per_s(long long gpus, int gpus_per_node) const;
  bool none() const { return causes.empty(); }
};

// Parses a profile; counts must be >= 0, the window and fleet > 0 (ConfigError with file:line:col).
FailureProfile parse_failures(const std::string& text, const std::string& file);
// A preset name, a YAML path, or "none" (no failures: budgets equal the failure-free ones).
FailureProfile load_failures(const std::string& spec);
// The profile used when a cluster names none.
inline constexpr const char* kDefaultFailureProfile = "llama3-h100";

}  // namespace scaleplan::hw
