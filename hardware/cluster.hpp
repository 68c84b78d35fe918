#pragma once
// A cluster: nodes of GPUs (intra-node link), the scale-out network (NIC per GPU, topology,
// oversubscription above a pod), host memory / PCIe / NVMe, prices and power, and the training
// software stack its runs use. All quantities SI.
#include <string>

#include "hardware/device.hpp"

namespace scaleplan::hw {

enum class IntraKind { nvswitch, nvlink_mesh, pcie };
enum class Topology { fat_tree, rail_optimized, clos };
const char* topology_name(Topology t);

struct IntraLink {
  IntraKind kind = IntraKind::nvswitch;
  double bw_Bps = 0;          // per GPU, per direction
  double latency_s = 0;       // per algorithm step
  double bus_efficiency = 1;  // achieved / line rate (NCCL bus bandwidth)
};

struct Network {
  Topology topology = Topology::fat_tree;
  double nic_bw_Bps = 0;  // per GPU, per direction
  double latency_s = 0;   // per algorithm step across the fabric
  double bus_efficiency = 1;
  int levels = 3;
  int pod_gpus = 0;            // 0 = one full-bisection fabric
  double oversubscription = 1; // above the pod
};

struct Host {
  double memory_bytes = 0;  // per node (host DRAM for offloaded states)
  double mem_bw_Bps = 0;    // per node, host DRAM bandwidth (CPU Adam, concurrent PCIe copies)
  double flops_fp32 = 0;    // CPU, per node (CPU Adam)
  double pcie_Bps = 0;      // per GPU, host<->device
  double nvme_bytes = 0;    // per node (ZeRO-Infinity; 0 = none)
  double nvme_Bps = 0;      // per node, aggregate read/write
};

// How the stack the cluster runs trains (the published runs on it used this stack).
struct Software {
  bool flash_attention = true;  // false: unfused scaled-masked softmax + dropout (Megatron 2021-22)
  bool dp_overlap = true;       // DP gradient reduction overlapped with backward (bucketed)
  double step_overhead_s = 0;   // fixed per-iteration host-side cost
  // Rank order, innermost first: tp, cp, then dp before pp (Megatron default) or pp before dp
  // (Llama 3 sec. 3.3.2: [TP, CP, PP, DP]). Decides which tier DP and PP groups span.
  bool pp_inside_dp = false;
  // Chunk manager policy (offload=gemini, strategies/chunks.hpp): share of the GPU chunks may use in
  // steady state and during the warm-up iteration, and share of host memory they may use.
  // Defaults: Colossal-AI Gemini (steady_cuda_cap_ratio 0.9; warm-up non-model share 0.8; all of the host).
  double chunk_cap_ratio = 0.9;
  double chunk_warmup_ratio = 0.2;
  double chunk_host_ratio = 1.0;
};

// Where checkpoints go (issue 19): the shared file system's aggregate write/read bandwidth and each
// node's own link to it. A checkpoint moves at min(aggregate, nodes x per node).
struct Storage {
  double write_Bps = 0;     // aggregate write (0: not given = nodes x per_node_Bps)
  double read_Bps = 0;      // aggregate read (0: not given = nodes x per_node_Bps)
  double per_node_Bps = 0;  // one node to the storage, per direction
};

struct Cluster {
  std::string name;
  Device device;
  int gpus_per_node = 8;
  IntraLink intra;
  Network net;
  Host host;
  Software sw;
  double price_usd_per_gpu_hour = 0;
  double power_W_per_gpu = 0;
  Storage storage;           // issue 19
  std::string failures;      // failure profile (configs/failures/<name>.yaml); "" = the default profile
};

Cluster parse_cluster(const std::string& text, const std::string& file);
Cluster load_cluster(const std::string& spec);

}  // namespace scaleplan::hw
