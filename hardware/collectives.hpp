#pragma once
// Alpha-beta cost of collectives over the cluster's tiers (FORMULAS.md "Collective cost"):
// ring, tree and hierarchical algorithms in a registry; the cost of a call is the best algorithm
// for that kind, as NCCL's tuner picks. `bytes` is the contract payload: the buffer of an
// all-reduce, the input of a reduce-scatter, the output of an all-gather, the input of an
// all-to-all, the bytes of a send.
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
};
Group make_group(const Cluster& c, int size, int stride);

// Effective (achieved) bandwidths, bytes/s per GPU.
double intra_bw(const Cluster& c);
double inter_bw(const Cluster& c, const Group& g);

// One algorithm: returns seconds, or a negative number if it does not apply to this kind.
using CollAlgo = double (*)(const Cluster&, Coll, double bytes, const Group&);
struct CollAlgoEntry {
  const char* name;
  CollAlgo fn;
};
// The registry (ring, tree, hierarchical, direct).
const CollAlgoEntry* coll_algorithms(int* count);

// Seconds for the collective with the best applicable algorithm; `algo` (optional) receives its name.
double collective_time(const Cluster& c, Coll kind, double bytes, const Group& g, const char** algo = nullptr);

}  // namespace scaleplan::hw
