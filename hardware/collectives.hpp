#pragma once
// Alpha-beta cost of collectives over the cluster's tiers (FORMULAS.md "Collective cost"):
// ring, tree and hierarchical algorithms in a registry; the cost of a call is the best algorithm
// for that kind, as NCCL's tuner picks. `bytes` is the contract payload: the buffer of an
// all-reduce, the input of a reduce-scatter, the output of an all-gather, the input of an
// all-to-all, the bytes of a send.
#include <algorithm>
#include <string>

#include "hardware/cluster.hpp"

namespace scaleplan::hw {

enum class Coll { all_reduce = 0, reduce_scatter, all_gather, all_to_all, send_recv };
inline constexpr int kNumColl = 5;
const char* coll_name(Coll c);

// Where a communication group sits: `size` ranks whose consecutive members are `stride` global
// ranks apart (rank order TP innermost, then CP, DP, PP by default).
struct Group {
  int size = 1;
  int per_node = 1;        // members sharing a node
  int nodes = 1;           // nodes the group spans
  double pod_factor = 1;   // <= 1: share of the NIC rate left when the group crosses an oversubscribed layer
  // GPUs of a node that send across nodes at the same time (issue 23): every rank of a node runs
  // its copy of a data-parallel (or pipeline) collective at once, so by default all of the node's
  // GPUs; fewer when the job holds only part of a node. Each of them gets its share of the node's
  // NICs (nic_share).
  int senders = 1;
  // A ring over this group carries a node's crossing on all its members' NIC shares together
  // (min(NVLink, per_node x share)) instead of each member's own share: the DP groups of a stack
  // whose collectives use the node's NICs together (Software::dp_nics_aggregate, issue 15).
  bool aggregate_nics = false;
};
// (Inline: the estimator builds several groups for every plan the search evaluates.)
// `senders`: GPUs of a node communicating across nodes at the same time (0: all gpus_per_node).
inline Group make_group(const Cluster& c, int size, int stride, int senders = 0) {
  Group g;
  g.size = std::max(size, 1);
  g.senders = senders > 0 ? std::min(senders, c.gpus_per_node) : std::max(c.gpus_per_node, 1);
  stride = std::max(stride, 1);
  const int gpn = c.gpus_per_node;
  g.per_node = stride >= gpn ? 1 : std::min(g.size, std::max(1, gpn / stride));
  g.nodes = (g.size + g.per_node - 1) / g.per_node;
  // Oversubscription above a pod (e.g. Llama 3's 1:7 across 3072-GPU pods): every group with members
  // in a pod sends its cross-pod ring hop through the pod's uplinks, whose capacity is
  // pod_gpus * nic / oversubscription. With k of the group's nodes inside one pod, each channel
  // keeps min(1, k / oversubscription) of the NIC rate (derivation in README "Network model").
  if (c.net.pod_gpus > 0 && c.net.oversubscription > 1 && static_cast<double>(g.size) * stride > c.net.pod_gpus) {
    const double members_in_pod = std::clamp(static_cast<double>(c.net.pod_gpus) / stride, 1.0, static_cast<double>(g.size));
    const double nodes_in_pod = std::max(1.0, members_in_pod / g.per_node);
    g.pod_factor = std::min(1.0, nodes_in_pod / c.net.oversubscription);
  }
  return g;
}

// Effective (achieved) bandwidths, bytes/s per GPU.
double intra_bw(const Cluster& c);
// One GPU's share of its node's NICs when g.senders GPUs of the node send across nodes at once:
// min(one NIC, node NIC capacity / senders) x bus efficiency x pod factor (issue 23; docs/zero3.md).
// With one NIC per GPU and every GPU sending this is the per-GPU NIC rate (nic_Gbps_per_gpu).
double nic_share(const Cluster& c, const Group& g);
inline double inter_bw(const Cluster& c, const Group& g) { return nic_share(c, g); }

// One algorithm: returns seconds, or a negative number if it does not apply to this kind.
using CollAlgo = double (*)(const Cluster&, Coll, double bytes, const Group&);
struct CollAlgoEntry {
  const char* name;
  CollAlgo fn;
};
// The registry (ring, tree, hierarchical, direct).
inline constexpr int kNumCollAlgos = 4;
extern const CollAlgoEntry kCollAlgos[kNumCollAlgos];
const CollAlgoEntry* coll_algorithms(int* count);

// Seconds for the collective with the best applicable algorithm; `algo` (optional) receives its name.
// (Inline: the estimator calls it several times for every plan the search evaluates.)
inline double collective_time(const Cluster& c, Coll kind, double bytes, const Group& g, const char** algo = nullptr) {
  if (bytes <= 0 || (g.size <= 1 && kind != Coll::send_recv)) return 0;
  double best = -1;
  const char* best_name = nullptr;
  for (const CollAlgoEntry& a : kCollAlgos) {
    const double t = a.fn(c, kind, bytes, g);
    // Selects without a branch on the times (which algorithm wins varies from call to call).
    const bool wins = t >= 0 && (best < 0 || t < best);
    best = wins ? t : best;
    best_name = wins ? a.name : best_name;
  }
  if (algo && best_name) *algo = best_name;
  return best < 0 ? 0 : best;
}

}  // namespace scaleplan::hw
