#include "hardware/cluster.hpp"

#include "common/limits.hpp"
#include "common/presets.hpp"
#include "common/yaml_reader.hpp"
#include "hardware/stack.hpp"

namespace scaleplan::hw {

const char* topology_name(Topology t) {
  switch (t) {
    case Topology::fat_tree: return "fat_tree";
    case Topology::rail_optimized: return "rail_optimized";
    case Topology::clos: return "clos";
  }
  return "?";
}

namespace {
constexpr double kGiB = 1024.0 * 1024.0 * 1024.0;

// storage: {per_node_GBps, write_GBps, read_GBps} (issue 19). Absent: the default below. A zero
// bandwidth is an error (a checkpoint would never finish).
void parse_storage(const YamlMap& y, Cluster& c) {
  // Default per-node link when a cluster gives none: 2 GB/s, an assumption (a 25 GbE-class front-end
  // share per node); clusters that matter name their own (configs/clusters/*.yaml cite theirs).
  constexpr double kDefaultPerNodeGBps = 2.0;
  auto s = y.opt_map("storage");
  if (!s) {
    c.storage.per_node_Bps = kDefaultPerNodeGBps * 1e9;
    return;
  }
  s->check_keys({"per_node_GBps", "write_GBps", "read_GBps"});
  c.storage.per_node_Bps = s->num("per_node_GBps", Bound::positive) * 1e9;
  if (s->has("write_GBps")) c.storage.write_Bps = s->num("write_GBps", Bound::positive) * 1e9;
  if (s->has("read_GBps")) c.storage.read_Bps = s->num("read_GBps", Bound::positive) * 1e9;
}
}

Cluster parse_cluster(const std::string& text, const std::string& file) {
  YamlMap y = YamlMap::parse(text, file);
  y.check_keys({"name", "device", "node", "network", "software", "price_usd_per_gpu_hour", "power_W_per_gpu", "stack",
                "storage", "failures"});
  Cluster c;
  c.name = y.str("name");
  // device: a preset name, or an inline mapping in the device schema.
  if (y.has("device") && y.node()["device"].IsMap()) {
    YAML::Emitter em;
    em << y.node()["device"];
    try {
      c.device = parse_device(em.c_str(), file + " (inline device)");
    } catch (const ConfigError& e) {
      throw ConfigError(y.loc("device"), "device." + e.field(), e.rule());
    }
  } else {
    const std::string d = y.str("device");
    try {
      c.device = load_device(d);
    } catch (const UsageError& e) {
      y.fail("device", e.what());
    }
  }
  YamlMap n = y.map("node");
  n.check_keys({"gpus", "intra", "pcie_GBps", "host_memory_GiB", "host_mem_bw_GBps", "host_tflops_fp32", "nvme_TB",
                "nvme_GBps", "host_cores"});
  c.gpus_per_node = static_cast<int>(n.int_in("gpus", 1, limits::kMaxGpus));
  YamlMap in = n.map("intra");
  in.check_keys({"kind", "bw_GBps", "latency_us", "bus_efficiency"});
  const std::string kind = in.choice("kind", {"nvswitch", "nvlink_mesh", "pcie"}, "nvswitch");
  c.intra.kind = kind == "nvswitch" ? IntraKind::nvswitch : kind == "nvlink_mesh" ? IntraKind::nvlink_mesh : IntraKind::pcie;
  c.intra.bw_Bps = in.num("bw_GBps") * 1e9;
  c.intra.latency_s = in.num_or("latency_us", 3, Bound::non_negative) * 1e-6;
  c.intra.bus_efficiency = in.num_or("bus_efficiency", 1, Bound::fraction);
  c.host.pcie_Bps = n.num_or("pcie_GBps", 16, Bound::positive) * 1e9;
  c.host.memory_bytes = n.num_or("host_memory_GiB", 512, Bound::non_negative) * kGiB;
  c.host.mem_bw_Bps = n.num_or("host_mem_bw_GBps", 200, Bound::positive) * 1e9;
  c.host.flops_fp32 = n.num_or("host_tflops_fp32", 2, Bound::positive) * 1e12;
  c.host.nvme_bytes = n.num_or("nvme_TB", 0, Bound::non_negative) * 1e12;
  c.host.nvme_Bps = n.num_or("nvme_GBps", 0, Bound::non_negative) * 1e9;
  c.host.cores = n.has("host_cores") ? static_cast<int>(n.int_in("host_cores", 1, 1 << 20)) : 0;
  if ((c.host.nvme_bytes > 0) != (c.host.nvme_Bps > 0))
    n.fail(c.host.nvme_bytes > 0 ? "nvme_GBps" : "nvme_TB", "nvme_TB and nvme_GBps must both be > 0 (NVMe present) or both 0 (none)");

  YamlMap w = y.map("network");
  w.check_keys({"topology", "nic_Gbps_per_gpu", "latency_us", "bus_efficiency", "levels", "pod_gpus", "oversubscription",
                "nics_per_node"});
  const std::string topo = w.choice("topology", {"fat_tree", "rail_optimized", "clos"}, "fat_tree");
  c.net.topology = topo == "fat_tree" ? Topology::fat_tree : topo == "rail_optimized" ? Topology::rail_optimized : Topology::clos;
  c.net.nic_bw_Bps = w.num("nic_Gbps_per_gpu") * 1e9 / 8.0;
  c.net.latency_s = w.num_or("latency_us", 5, Bound::non_negative) * 1e-6;
  c.net.bus_efficiency = w.num_or("bus_efficiency", 1, Bound::fraction);
  c.net.levels = static_cast<int>(w.int_in_or("levels", 3, 1, 16));
  c.net.pod_gpus = static_cast<int>(w.int_in_or("pod_gpus", 0, 0, limits::kMaxGpus));
  c.net.oversubscription = w.num_or("oversubscription", 1);
  if (c.net.oversubscription < 1) w.fail("oversubscription", "must be >= 1 (1 = full bisection)");
  c.net.nics_per_node = static_cast<int>(w.integer_or("nics_per_node", 0, Bound::non_negative));
  if (c.net.nics_per_node > c.gpus_per_node) w.fail("nics_per_node", "must be <= node.gpus (the NIC rate is given per GPU)");

  // The default software stack (configs/stacks; none named: "unrestricted"), then the cluster's
  // `software:` block as overrides on top of it.
  if (!y.is_null("stack")) {
    try {
      c.sw = load_stack(y.str("stack"));
    } catch (const UsageError& e) {
      y.fail("stack", e.what());
    }  // a ConfigError names the stack file's own line
  }
  if (auto s = y.opt_map("software")) apply_software_block(*s, c.sw);
  c.price_usd_per_gpu_hour = y.num_or("price_usd_per_gpu_hour", 0, Bound::non_negative);
  c.power_W_per_gpu = y.num_or("power_W_per_gpu", c.device.tdp_W, Bound::non_negative);
  parse_storage(y, c);
  c.failures = y.str_or("failures", "");
  return c;
}

Cluster load_cluster(const std::string& spec) {
  ConfigText t = load_config_text("clusters", spec);
  return parse_cluster(t.text, t.file);
}

}  // namespace scaleplan::hw
