#include "hardware/network_preset.hpp"

#include "common/presets.hpp"
#include "common/yaml_reader.hpp"

namespace scaleplan::hw {

// The same keys, defaults and rules as the `network:` block of parse_cluster (cluster.cpp); kept
// beside it rather than shared so the cluster parser stays untouched (follow-up: one function).
NetworkPreset parse_network_preset(const std::string& text, const std::string& file) {
  YamlMap y = YamlMap::parse(text, file);
  y.check_keys({"name", "network"});
  NetworkPreset p;
  p.name = y.str("name");
  YamlMap w = y.map("network");
  w.check_keys({"topology", "nic_Gbps_per_gpu", "latency_us", "bus_efficiency", "levels", "pod_gpus", "oversubscription"});
  const std::string topo = w.choice("topology", {"fat_tree", "rail_optimized", "clos"}, "fat_tree");
  p.net.topology = topo == "fat_tree" ? Topology::fat_tree : topo == "rail_optimized" ? Topology::rail_optimized : Topology::clos;
  p.net.nic_bw_Bps = w.num("nic_Gbps_per_gpu") * 1e9 / 8.0;
  p.net.latency_s = w.num_or("latency_us", 5, Bound::non_negative) * 1e-6;
  p.net.bus_efficiency = w.num_or("bus_efficiency", 1, Bound::fraction);
  p.net.levels = static_cast<int>(w.integer_or("levels", 3));
  p.net.pod_gpus = static_cast<int>(w.integer_or("pod_gpus", 0, Bound::non_negative));
  p.net.oversubscription = w.num_or("oversubscription", 1);
  if (p.net.oversubscription < 1) w.fail("oversubscription", "must be >= 1 (1 = full bisection)");
  return p;
}

NetworkPreset load_network_preset(const std::string& spec) {
  ConfigText t = load_config_text("networks", spec);
  return parse_network_preset(t.text, t.file);
}

Cluster with_network(Cluster base, const NetworkPreset& n) {
  base.net = n.net;
  base.name += "+" + n.name;
  return base;
}

}  // namespace scaleplan::hw
