#pragma once
// Network presets (issue 19, plan-cluster): a scale-out fabric on its own (configs/networks/*.yaml, a
// `network:` block in the cluster schema), to put under any node type.
#include <string>

#include "hardware/cluster.hpp"

namespace scaleplan::hw {

struct NetworkPreset {
  std::string name;
  Network net;
};
NetworkPreset parse_network_preset(const std::string& text, const std::string& file);
NetworkPreset load_network_preset(const std::string& spec);
// `base` with its scale-out network replaced; named "<base>+<network>".
Cluster with_network(Cluster base, const NetworkPreset& n);

}  // namespace scaleplan::hw
