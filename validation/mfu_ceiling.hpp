#pragma once
// MFU sanity (issue 16.5): the best published model-FLOPs utilization of a device
// (validation/mfu_ceilings.yaml, each value with its run and source), and the flag a report
// carries when a plan claims more.
#include <optional>
#include <string>

namespace scaleplan::validation {

struct MfuCeiling {
  std::string device;
  double mfu = 0;   // fraction of the dense peak
  std::string run;  // the runs-file row it comes from
  std::string source;
};

// The ceiling recorded for `device` (a device name as in configs/devices), if any.
std::optional<MfuCeiling> mfu_ceiling(const std::string& device);
// "" when `mfu` is within the device's ceiling (or none is recorded), else one line saying by how much
// it exceeds the best published run and which run that is.
std::string mfu_flag(const std::string& device, double mfu);

}  // namespace scaleplan::validation
