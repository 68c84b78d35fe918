#include "validation/mfu_ceiling.hpp"

#include <cstdio>
#include <vector>

#include "common/presets.hpp"
#include "common/yaml_reader.hpp"

namespace scaleplan::validation {

namespace {
const std::vector<MfuCeiling>& ceilings() {
  static const std::vector<MfuCeiling> k = [] {
    std::vector<MfuCeiling> out;
    const ConfigText t = load_config_text("validation", "mfu_ceilings");
    const YamlMap y = YamlMap::parse(t.text, t.file);
    for (const auto& n : y.node()["ceilings"]) {
      const YamlMap e(n, t.file, "ceilings");
      e.check_keys({"device", "mfu", "run", "source"});
      out.push_back({e.str("device"), e.num("mfu"), e.str("run"), e.str("source")});
    }
    return out;
  }();
  return k;
}
}  // namespace

std::optional<MfuCeiling> mfu_ceiling(const std::string& device) {
  for (const auto& c : ceilings())
    if (c.device == device) return c;
  return std::nullopt;
}

std::string mfu_flag(const std::string& device, double mfu) {
  const auto c = mfu_ceiling(device);
  if (!c || mfu <= c->mfu) return "";
  char buf[512];
  std::snprintf(buf, sizeof buf, "MFU %.1f%% is above the best published run on %s (%.1f%%, %s): treat as optimistic", 100 * mfu,
                device.c_str(), 100 * c->mfu, c->run.c_str());
  return buf;
}

}  // namespace scaleplan::validation
