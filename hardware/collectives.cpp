#include "hardware/collectives.hpp"

#include <algorithm>
#include <cmath>

namespace scaleplan::hw {

const char* coll_name(Coll c) {
  static const char* n[] = {"all_reduce", "reduce_scatter", "all_gather", "all_to_all", "send_recv"};
  return n[static_cast<int>(c)];
}

double intra_bw(const Cluster& c) { return c.intra.bw_Bps * c.intra.bus_efficiency; }

double nic_share(const Cluster& c, const Group& g) {
  const double gpn = std::max(c.gpus_per_node, 1);
  const double node_Bps = c.net.nic_bw_Bps * gpn;  // nic_bw_Bps is the per-GPU share of the node's NICs
  const double nics = c.net.nics_per_node > 0 ? c.net.nics_per_node : gpn;
  const double senders = std::max(g.senders, 1);
  return std::min(node_Bps / nics, node_Bps / senders) * c.net.bus_efficiency * g.pod_factor;
}

namespace {

// Bandwidth a flat ring sees per GPU: inside a node the NVLink rate; across nodes each GPU's NIC
// share (issue 23). A data-parallel ring at tp 1 has all of a node's GPUs sending across the
// fabric at once, and the published ZeRO-3 runs of SC21 Table 2 (tp 1, dp 384-2240 on DGX A100)
// move their traffic at about one NIC per GPU, not at the node's eight NICs combined (the
// derivation, and NCCL's topology-aware rings that could in principle aggregate, in docs/zero3.md).
double ring_bw(const Cluster& c, const Group& g) {
  if (g.nodes <= 1) return intra_bw(c);
  return std::min(intra_bw(c), (g.aggregate_nics ? g.per_node : 1) * inter_bw(c, g));
}
// NCCL's tree and the hierarchical all-reduce put one rank per NIC on the inter-node step (NCCL
// src/graph/trees.cc: one tree per channel, channels spread over the NICs; a chain inside the
// node), so a node moves per_node NIC shares' worth (bounded by NVLink).
double node_bw(const Cluster& c, const Group& g) {
  if (g.nodes <= 1) return intra_bw(c);
  return std::min(intra_bw(c), g.per_node * inter_bw(c, g));
}
double step_latency(const Cluster& c, const Group& g) { return g.nodes > 1 ? c.net.latency_s : c.intra.latency_s; }

// Ring (FORMULAS.md): all-reduce 2(n-1) alpha + 2(n-1)/n B/bw; reduce-scatter, all-gather and
// all-to-all (n-1) alpha + (n-1)/n B/bw.
double ring(const Cluster& c, Coll k, double bytes, const Group& g) {
  const double n = g.size;
  if (n <= 1) return 0;
  if (k != Coll::all_reduce && k != Coll::reduce_scatter && k != Coll::all_gather) return -1;  // before any arithmetic
  const double bw = ring_bw(c, g), a = step_latency(c, g);
  if (k == Coll::all_reduce) return 2 * (n - 1) * a + 2 * (n - 1) / n * bytes / bw;
  return (n - 1) * a + (n - 1) / n * bytes / bw;  // reduce-scatter, all-gather
}

// Double binary tree (NCCL, all-reduce only): 2 log2(nodes) network steps plus an intra-node chain;
// every byte goes up and down once: 2B/bw.
double tree(const Cluster& c, Coll k, double bytes, const Group& g) {
  if (k != Coll::all_reduce || g.nodes <= 2) return -1;
  int levels = 0;  // ceil(log2(nodes)), in integers (exact, no libm call on the hot path)
  while ((1LL << levels) < g.nodes) ++levels;
  const double lat = 2 * (levels * c.net.latency_s + (g.per_node - 1) * c.intra.latency_s);
  return lat + 2 * bytes / node_bw(c, g);
}

// Hierarchical all-reduce: reduce-scatter inside the node, all-reduce across nodes on 1/per_node of
// the data (each GPU on its own NIC share, rail-aligned), all-gather inside the node. All-reduce
// only: NCCL has no hierarchical reduce-scatter or all-gather (its tuner offers ring for them, plus
// CollNet/NVLS with SHARP switches and PAT at one GPU per node; src/enqueue.cc, src/graph/tuning.cc),
// so a ZeRO-3 gather across nodes runs as a flat ring.
double hierarchical(const Cluster& c, Coll k, double bytes, const Group& g) {
  if (g.nodes <= 1 || g.per_node <= 1) return -1;
  if (k != Coll::all_reduce) return -1;  // before any arithmetic
  const double p = g.per_node, m = g.nodes;
  const double bi = intra_bw(c), bo = inter_bw(c, g);
  const double intra_rs = (p - 1) * c.intra.latency_s + (p - 1) / p * bytes / bi;
  const double inter = 2 * (m - 1) * c.net.latency_s + 2 * (m - 1) / m * (bytes / p) / bo;
  return 2 * intra_rs + inter;
}

// Pairwise exchange for all-to-all; a single transfer for send/recv. Of each GPU's (n-1)/n B
// all-to-all payload, (n-per_node)/n crosses its NIC and the rest NVLink, concurrently.
double direct(const Cluster& c, Coll k, double bytes, const Group& g) {
  const double n = g.size;
  if (k == Coll::send_recv) {
    // A point-to-point pair: inside a node if the group fits in one, else across the NIC.
    return g.nodes <= 1 ? c.intra.latency_s + bytes / intra_bw(c) : c.net.latency_s + bytes / inter_bw(c, g);
  }
  if (k != Coll::all_to_all || n <= 1) return -1;
  const double t_in = (g.per_node - 1) / n * bytes / intra_bw(c);
  const double t_out = g.nodes > 1 ? (n - g.per_node) / n * bytes / inter_bw(c, g) : 0;
  return (n - 1) * step_latency(c, g) + std::max(t_in, t_out);
}

}  // namespace

const CollAlgoEntry kCollAlgos[kNumCollAlgos] = {{"ring", ring}, {"tree", tree}, {"hierarchical", hierarchical}, {"direct", direct}};

const CollAlgoEntry* coll_algorithms(int* count) {
  *count = kNumCollAlgos;
  return kCollAlgos;
}

}  // namespace scaleplan::hw
