#pragma once
// Generated table of the YAML files under configs/ (see cmake/EmbedConfigs.cmake).
#include <string_view>
#include <vector>

namespace scaleplan::embedded {
struct Entry {
  std::string_view kind;  // folder under configs/ (models, clusters, devices, plans) or "validation"
  std::string_view name;  // file name without .yaml
  std::string_view text;
};
const std::vector<Entry>& configs();
}  // namespace scaleplan::embedded
