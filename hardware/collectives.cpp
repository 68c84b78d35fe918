#include "hardware/collectives.hpp"

#include <algorithm>
#include <cmath>

namespace scaleplan::hw {

const char* coll_name(Coll c) {
  static const char* n[] = {"all_reduce", "reduce_scatter", "all_gather", "all_to_all", "send_recv"};
  return n[static_cast<int>(c)];
}

double intra_bw(const Cluster& c) { return c.intra.bw_Bps * c.intra.bus_efficiency; }

double inter_bw(const Cluster& c, const Group& g) {
  return c.net.nic_bw_Bps * c.net.bus_efficiency * g.pod_factor;
}

namespace {

// Bandwidth a flat ring sees: inside a node the NVLink rate; across nodes NCCL runs one channel
// per NIC, so a node moves per_node NICs' worth (bounded by NVLink).
double ring_bw(const Cluster& c, const Group& g) {
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
  return lat + 2 * bytes / ring_bw(c, g);
}

// Hierarchical: reduce-scatter inside the node, the collective across nodes on 1/per_node of the
// data (each GPU on its own NIC, rail-aligned), all-gather inside the node.
double hierarchical(const Cluster& c, Coll k, double bytes, const Group& g) {
  if (g.nodes <= 1 || g.per_node <= 1) return -1;
  if (k != Coll::all_reduce && k != Coll::reduce_scatter && k != Coll::all_gather) return -1;  // before any arithmetic
  const double p = g.per_node, m = g.nodes;
  const double bi = intra_bw(c), bo = inter_bw(c, g);
  const double intra_rs = (p - 1) * c.intra.latency_s + (p - 1) / p * bytes / bi;
  if (k == Coll::all_reduce) {
    const double inter = 2 * (m - 1) * c.net.latency_s + 2 * (m - 1) / m * (bytes / p) / bo;
    return 2 * intra_rs + inter;
  }
  return intra_rs + (m - 1) * c.net.latency_s + (m - 1) / m * (bytes / p) / bo;  // reduce-scatter, all-gather
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
