#pragma once
// Config presets: the YAML files under configs/ are embedded in the binary at build time, so the
// tool works from any directory. A spec is either a preset name or a path to a YAML file.
#include <string>
#include <vector>

namespace scaleplan {

struct ConfigText {
  std::string text;
  std::string file;  // a path, or "configs/<kind>/<name>.yaml" for an embedded preset
};

// kind: "models", "clusters", "devices", "plans", "validation".
std::vector<std::string> preset_names(const std::string& kind);
bool has_preset(const std::string& kind, const std::string& name);
// Resolves a preset name (case-insensitive; '_' and '-' equal) or an existing file path.
// Throws UsageError naming the known presets when neither exists.
ConfigText load_config_text(const std::string& kind, const std::string& spec);
std::string read_file(const std::string& path);  // throws UsageError if unreadable

}  // namespace scaleplan
