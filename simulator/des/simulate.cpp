// One training step on SimGrid (s4u, 3.32). README "Discrete-event simulator" describes the model;
// the comments here say where each number comes from.
#include "simulator/des/simulate.hpp"

#include <simgrid/s4u.hpp>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <functional>
#include <map>
#include <unordered_map>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "common/errors.hpp"
#include "hardware/collectives.hpp"
#include "simulator/analytic/estimator.hpp"
#include "simulator/des/schedule.hpp"
#include "strategies/memory.hpp"
#include "strategies/pipeline.hpp"

namespace sg4 = simgrid::s4u;

namespace scaleplan::des {

using strategies::Plan;
using strategies::Span;
using strategies::SpanKind;

namespace {

// ---------------------------------------------------------------------------------------------
// The work: plain numbers prepared before the engine starts.

// Rank coordinates under the cluster's rank order (TP innermost, then CP, then DP before PP, or
// PP before DP: hw::Software::pp_inside_dp), as the estimator's group strides.
struct Layout {
  int tp = 1, cp = 1, dp = 1, pp = 1, gpn = 8;
  bool pp_inside_dp = false;
  long long rank(int t, int c, int d, int s) const {
    const long long base = t + static_cast<long long>(tp) * c;
    const long long tc = static_cast<long long>(tp) * cp;
    return pp_inside_dp ? base + tc * (s + static_cast<long long>(pp) * d) : base + tc * (d + static_cast<long long>(dp) * s);
  }
  int stride_dp() const { return pp_inside_dp ? tp * cp * pp : tp * cp; }
  int stride_pp() const { return pp_inside_dp ? tp * cp : tp * cp * dp; }
};

// What one (stage, chunk) costs per microbatch, from the estimator's per-layer table (the same
// composition as Estimator::metrics: layer x count + embedding on the first virtual stage + head on
// the last).
struct ChunkCost {
  double f_comp = 0, f_comm = 0;  // forward compute; TP/CP collectives on its critical path
  double r_comp = 0, r_comm = 0;  // recompute in backward
  double b_comp = 0, b_comm = 0;  // backward compute; TP collectives the wgrad GEMMs do not hide
  // Context parallel as flows (cp_algo=allgather): transformer layers of the chunk, each one
  // all-gather of the K/V in forward (and in a full recompute), one in backward on the critical
  // path and one reduce-scatter of dK/dV that the backward compute can hide.
  double cp_layers = 0;
  bool cp_recompute = false;
  double tp_layers = 0;       // layers whose TP collectives run as flows (Work::tp_flows)
  // Sharded-DP collectives per pass: one per FSDP unit (Software::fsdp_per_layer: the chunk's blocks,
  // plus the root unit on the first and last chunk), else one for the whole chunk.
  int fsdp_units = 1;
  bool tp_recompute = false;
  double wcast_s = 0;  // FP8 weight cast of the chunk's layers, once per step (PhaseCost::fp8_weight_cast_s)
  double bwd_overlap_delay = 0;  // backward compute before the weight-gradient window
  // The reduce-scatter queues behind the TP backward collectives on the communication stream and
  // hides under the weight-gradient GEMMs, as the estimator's exposed_under(tp + cp, wgrad) has it:
  // it starts cp_rs_delay into the chunk's backward compute, and the rank waits for it at the end.
  double cp_rs_delay = 0;
  // Zero bubble (ZB-H1): the weight-gradient part of b_comp, run as its own W pass.
  double w_comp = 0;
  // Expert parallelism: MoE all-to-all calls (dispatch + combine, Estimator a2a_calls) of the chunk
  // per microbatch in forward, recompute and backward, each of Work::ep_a2a_bytes.
  double ep_f_calls = 0, ep_r_calls = 0, ep_b_calls = 0;
};

enum class CollKind { all_reduce, reduce_scatter, all_gather, all_to_all };

struct Work {
  Layout L;
  int v = 1;
  int m = 1;
  strategies::Schedule schedule = strategies::Schedule::one_f_one_b;
  // zero_bubble: the deferred W's each stage runs before each op of its order (des::zero_bubble_w_slots, issue 16).
  std::vector<std::vector<int>> zb_w_slots;
  std::vector<std::vector<ChunkCost>> cost;  // [stage][chunk]
  std::vector<double> params_stage;          // parameters per GPU of each stage (before ZeRO)
  std::vector<double> opt_s;                 // optimizer step per stage
  double p2p_bytes = 0;
  double grad_e = 2, param_e = 2;
  int zero = 0;
  // ZeRO-3 without prefetch (Software::zero3_prefetch_depth = 0): each pass waits for its gather.
  // With prefetch the gathers run ahead on the communication stream and the compute does not wait
  // (the estimator also charges the first fetch and the overlap slowdown; docs/zero3.md).
  bool zero3_blocking = false;
  // FSDP units (Software::fsdp_per_layer, zero >= 2): ZeRO-2 runs as SHARD_GRAD_OP (a gather before
  // each forward, a reduce-scatter in each backward), as the estimator prices it.
  bool fsdp_per_layer = false;
  bool dp_overlap = true;
  bool tied_pp = false;     // tied embeddings over pp > 1: word-embedding gradient all-reduce
  double emb_grad_bytes = 0;
  double bucket_params = 4e7;
  // Context parallel as flows (README "Discrete-event simulator"): cp_algo=allgather (Llama 3 sec.
  // 3.3.2) runs its K/V all-gathers and dK/dV reduce-scatters over the CP group's links; other CP
  // algorithms keep the estimator's durations.
  bool cp_flows = false;
  // Tensor parallelism as flows when the TP group leaves the node (1d TP, tp a multiple of the
  // node): per layer 2 all-reduces of the activation (T h) in forward and in backward, or with SP
  // 2 all-gathers + 2 reduce-scatters forward and 4 + 2 backward (strategies/tensor_nd.cpp layer_1d);
  // every TP rank keeps its host, TP rank 0 runs the program.
  bool tp_flows = false;
  // Reduced (SimOptions::reduce) to TP rank 0 when the ring or hierarchical algorithm runs it and no
  // TP group leaves its pod: every member's port then carries the same flows, so the kept rank's
  // share runs as loops through its own NIC and NVLink port (as Work::cp_loop).
  bool tp_loop = false;
  bool tp_sp = false;
  double tp_act_bytes = 0;
  double tp_ag_bytes = 0;  // its all-gathers' payload: 1 B per element with fp8 + SP (tensor_nd layer_1d)
  // CP groups reduced to one rank (SimOptions::reduce) when every member sits on its own node (tp a
  // multiple of the node) or the whole group on one node, and no group leaves its pod: each
  // member's ring hop then loads its own NIC (or NVLink port) up and its successor's down, so the
  // kept rank's hop runs as one flow through its own port up and down (a loop to a shadow host).
  bool cp_loop = false;
  bool cp_loop_nic = false;  // the loop runs over the NIC (members on different nodes), else NVLink
  // Expert parallelism (strategies/expert.hpp placement): EP groups of ep consecutive data-parallel
  // ranks; expert gradients reduce over the dp/ep ranks holding the same experts.
  int ep = 1;
  double ep_a2a_bytes = 0;
  std::vector<double> exp_params_stage;  // expert parameters per GPU of each stage (part of params_stage)
  double cp_full_bytes = 0;  // all-gather output / reduce-scatter input per layer: cp x the K/V block
  // Simulated ranks (sim ids) and their coordinates.
  std::vector<int> t_of, c_of, d_of, s_of;
  std::vector<long long> grank;
  int n_t = 1, n_c = 1;  // simulated TP and CP indices (hosts; 1 each when reduced, n_c = cp with CP flows)
  int n_cp = 1;          // CP indices that run a program (1 when reduced)
  int n_tp = 1;          // TP indices that run a program (1 when reduced)
  int n_d = 1;           // data-parallel replicas that run a program (replica 0 only when reduced)
  int reduction = 1;     // copies of each simulated host in the full platform (shared links get 1/reduction)
  long long total_ranks = 0;
  int sim_id(int t, int c, int d, int s) const { return ((s * L.dp + d) * n_c + c) * n_t + t; }
  bool runs(int id) const { return d_of[id] < n_d && c_of[id] < n_cp && t_of[id] < n_tp; }
  // The rank whose program a host without one follows (the same position in replica 0 / CP rank 0).
  int leader(int id) const { return sim_id(t_of[id] % n_tp, c_of[id] % n_cp, d_of[id] % n_d, s_of[id]); }
};

// ---------------------------------------------------------------------------------------------
// Collectives as flows. A collective of one group is a list of phases; a phase is a set of flows
// that start together, then the algorithm's per-step latencies.

struct Flow {
  int from, to;  // sim ids
  double bytes;
};
struct Phase {
  std::vector<Flow> flows;
  double latency_s = 0;
};

struct Net {
  const hw::Cluster* c;
  const Work* w;
  long long node_of(int id) const { return w->grank[id] / w->L.gpn; }
};

// Members grouped by node, in order of first appearance.
std::vector<std::vector<int>> by_node(const Net& net, const std::vector<int>& members) {
  std::vector<std::vector<int>> nodes;
  std::map<long long, size_t> idx;
  for (int id : members) {
    const long long n = net.node_of(id);
    auto it = idx.find(n);
    if (it == idx.end()) {
      idx[n] = nodes.size();
      nodes.push_back({id});
    } else {
      nodes[it->second].push_back(id);
    }
  }
  return nodes;
}

// Ring in the bandwidth-equivalent form: the n - 1 (or 2(n - 1)) steps of a ring move the same
// neighbour-to-neighbour pattern each step, so one flow per member to its successor carrying the
// sum of its steps' chunks shares links exactly as the steps do; the per-step latencies are added
// after. With several members per node NCCL runs one channel per NIC: channel j rotates each node's
// members by j so its node-crossing hop leaves from a different GPU (and NIC); each channel carries
// 1/C of the bytes (the estimator's ring bandwidth min(NVLink, per_node x NIC)).
// Issue 23 (hardware/collectives.cpp ring_bw): a flat ring across nodes moves each GPU's bytes at
// its own NIC share, not at the node's NICs combined; as flows, one channel whose every hop crosses
// nodes (member i of node k sends to member i of node k + 1, the last node's member i to the first
// node's member i + 1), so each member's NIC carries its whole share.
// `aggregate_nics` (a DP group of a stack whose collectives use the node's NICs together,
// hw::Software::dp_nics_aggregate, issue 15): the per-NIC channels below, NCCL's rings, instead of
// the one ring whose every hop crosses nodes.
void ring_flows(const std::vector<std::vector<int>>& nodes, double per_member_bytes, Phase& ph, bool aggregate_nics = false) {
  const size_t per_node = nodes.front().size();
  bool even = true;
  for (const auto& nd : nodes) even = even && nd.size() == per_node;
  if (nodes.size() > 1 && even && !aggregate_nics) {
    std::vector<int> order;
    for (size_t i = 0; i < per_node; ++i)
      for (const auto& nd : nodes) order.push_back(nd[i]);
    const size_t n = order.size();
    for (size_t i = 0; i < n; ++i) ph.flows.push_back({order[i], order[(i + 1) % n], per_member_bytes});
    return;
  }
  const size_t C = nodes.size() > 1 ? per_node : 1;
  std::vector<int> order;
  for (size_t j = 0; j < C; ++j) {
    order.clear();
    for (const auto& nd : nodes)
      for (size_t i = 0; i < nd.size(); ++i) order.push_back(nd[(i + j) % nd.size()]);
    const size_t n = order.size();
    if (n < 2) return;
    for (size_t i = 0; i < n; ++i) ph.flows.push_back({order[i], order[(i + 1) % n], per_member_bytes / C});
  }
}

// Parent of `rank` in NCCL's binary tree over n ranks (ncclGetBtree, src/graph/trees.cc): the
// lowest set bit decides the level; -1 for the root (rank 0).
int btree_parent(int n, int rank) {
  if (rank == 0) return -1;
  int bit = 1;
  for (; bit < n; bit <<= 1)
    if (bit & rank) break;
  int up = (rank ^ bit) | (bit << 1);
  if (up >= n) up = rank ^ bit;
  return up;
}
// The second tree of the double binary tree (ncclGetDtree): node r takes position
// dtree_rank(n, r) (shifted by one for odd n, mirrored for even n); dtree_node inverts it.
int dtree_rank(int n, int r) { return n % 2 == 1 ? (r - 1 + n) % n : n - 1 - r; }
int dtree_node(int n, int q) { return n % 2 == 1 ? (q + 1) % n : n - 1 - q; }

// One collective call as the flow algorithms see it.
struct CollCall {
  const hw::Cluster& c;
  CollKind kind;
  double bytes;
  int n;                                    // members
  const std::vector<std::vector<int>>& nodes;  // members by node
  bool aggregate_nics = false;              // hw::Group::aggregate_nics of the group (issue 15)
  bool all_reduce() const { return kind == CollKind::all_reduce; }
};
// A flow algorithm appends the call's phases; false when it does not apply to the call.
using FlowAlgo = bool (*)(const CollCall&, std::vector<Phase>&);

// Ring (FORMULAS.md): all-reduce 2(n-1) steps of B/n, reduce-scatter / all-gather n-1 steps.
bool ring_algo(const CollCall& k, std::vector<Phase>& out) {
  Phase ph;
  const double steps = k.all_reduce() ? 2.0 * (k.n - 1) : (k.n - 1);
  ring_flows(k.nodes, steps / k.n * k.bytes, ph, k.aggregate_nics);
  ph.latency_s = steps * (k.nodes.size() > 1 ? k.c.net.latency_s : k.c.intra.latency_s);
  out.push_back(std::move(ph));
  return true;
}

// NCCL's double binary tree (all-reduce, Sanders et al. 2009; NCCL src/graph/trees.cc): two binary
// trees over the nodes, each carrying half the bytes up (reduce) and down (broadcast), pipelined so
// both directions of every edge run at once. With several members per node, one channel per NIC
// (member j of each node carries 1/C) and the intra-node chain over NVLink.
bool tree_algo(const CollCall& k, std::vector<Phase>& out) {
  if (!k.all_reduce() || k.nodes.size() < 2) return false;
  Phase ph;
  const size_t C = k.nodes.front().size();
  const int nn = static_cast<int>(k.nodes.size());
  for (size_t j = 0; j < C; ++j)
    for (int tree = 0; tree < 2; ++tree)
      for (int r = 0; r < nn; ++r) {
        const int up = btree_parent(nn, tree == 0 ? r : dtree_rank(nn, r));
        if (up < 0) continue;
        const int pr = tree == 0 ? up : dtree_node(nn, up);
        const int a = k.nodes[r][j % k.nodes[r].size()];
        const int b = k.nodes[pr][j % k.nodes[pr].size()];
        ph.flows.push_back({a, b, k.bytes / 2 / C});
        ph.flows.push_back({b, a, k.bytes / 2 / C});
      }
  if (C > 1)
    for (const auto& nd : k.nodes) ring_flows({nd}, 2 * k.bytes, ph);
  ph.latency_s = 2 * (std::ceil(std::log2(static_cast<double>(nn))) * k.c.net.latency_s + (C - 1) * k.c.intra.latency_s);
  out.push_back(std::move(ph));
  return true;
}

// Hierarchical: reduce-scatter inside each node, the collective across nodes per local rank on
// B/p, all-gather inside the node (FORMULAS.md "hierarchical").
bool hierarchical_algo(const CollCall& k, std::vector<Phase>& out) {
  if (k.nodes.size() < 2 || k.nodes.front().size() < 2) return false;
  const double p = static_cast<double>(k.nodes.front().size());
  const double m = static_cast<double>(k.nodes.size());
  const double f = k.all_reduce() ? 2.0 : 1.0;
  Phase intra;
  for (const auto& nd : k.nodes) ring_flows({nd}, (p - 1) / p * k.bytes, intra);
  intra.latency_s = (p - 1) * k.c.intra.latency_s;
  Phase inter;
  for (size_t j = 0; j < k.nodes.front().size(); ++j) {
    std::vector<std::vector<int>> rail;
    for (const auto& nd : k.nodes) rail.push_back({nd[j % nd.size()]});
    ring_flows(rail, f * (m - 1) / m * k.bytes / p, inter);
  }
  inter.latency_s = f * (m - 1) * k.c.net.latency_s;
  out.push_back(intra);
  out.push_back(inter);
  if (k.all_reduce()) out.push_back(intra);
  return true;
}

// Pairwise exchange (all-to-all): every member sends B/n to every other member at once, over
// NVLink inside a node and the NICs across (hardware/collectives.cpp direct: (n-1) latency steps).
bool direct_algo(const CollCall& k, std::vector<Phase>& out) {
  if (k.kind != CollKind::all_to_all) return false;
  Phase ph;
  std::vector<int> all;
  for (const auto& nd : k.nodes) all.insert(all.end(), nd.begin(), nd.end());
  for (int a : all)
    for (int b : all)
      if (a != b) ph.flows.push_back({a, b, k.bytes / k.n});
  ph.latency_s = (k.n - 1) * (k.nodes.size() > 1 ? k.c.net.latency_s : k.c.intra.latency_s);
  out.push_back(std::move(ph));
  return true;
}

// The registry: the same names as hardware/collectives.cpp's, so a call runs as flows the algorithm
// the estimator's tuner picked for it.
const struct {
  const char* name;
  FlowAlgo fn;
} kFlowAlgos[] = {{"ring", ring_algo}, {"tree", tree_algo}, {"hierarchical", hierarchical_algo}, {"direct", direct_algo}};

std::vector<Phase> collective_phases(const Net& net, CollKind kind, double bytes, const std::vector<int>& members, int stride,
                                     bool aggregate_nics = false) {
  std::vector<Phase> out;
  const int n = static_cast<int>(members.size());
  if (n < 2 || bytes <= 0) return out;
  const hw::Cluster& c = *net.c;
  const hw::Coll hk = kind == CollKind::all_reduce       ? hw::Coll::all_reduce
                      : kind == CollKind::reduce_scatter ? hw::Coll::reduce_scatter
                      : kind == CollKind::all_to_all     ? hw::Coll::all_to_all
                                                         : hw::Coll::all_gather;
  // The algorithm NCCL's tuner would pick, as the estimator picks it (hardware/collectives.cpp).
  const char* algo = "ring";
  hw::Group hg = hw::make_group(c, n, stride);
  hg.aggregate_nics = aggregate_nics;
  hw::collective_time(c, hk, bytes, hg, &algo);
  const auto nodes = by_node(net, members);
  const CollCall call{c, kind, bytes, n, nodes, aggregate_nics};
  for (const auto& a : kFlowAlgos)
    if (std::strcmp(a.name, algo) == 0 && a.fn(call, out)) return out;
  if (kind == CollKind::all_to_all) direct_algo(call, out);
  else ring_algo(call, out);
  return out;
}

// ---------------------------------------------------------------------------------------------
// The engine side.

struct Task {
  enum Type { coll, done } type = coll;
  int group = 0;
  int seq = 0;  // this member's call index on the group
  CollKind kind = CollKind::all_reduce;
  double bytes = 0;
  std::string label;
  sg4::SemaphorePtr on_done;  // released when the collective completes (optional)
};

struct Instance {  // one call of a collective on one group (joiners: its members that run a program)
  int arrived = 0;
  sg4::SemaphorePtr done = sg4::Semaphore::create(0);
};

struct Group {
  std::vector<int> members;
  int joiners = 0;
  // Copies of this group in the data-parallel replicas that run no program (replica reduction):
  // their flows run alongside this group's.
  std::vector<std::vector<int>> mirrors;
  int stride = 1;
  int loop = 0;  // 1: a reduced CP group, 2: a reduced TP group: members[0] (and each mirror's [0]) loop to their shadow hosts
  bool aggregate_nics = false;  // a DP group of a stack whose collectives use the node's NICs together (issue 15)
  std::vector<std::unique_ptr<Instance>> calls;
};

struct Stream {  // a rank's data-parallel NCCL stream: one collective at a time, in order
  std::deque<Task> q;
  sg4::SemaphorePtr ready = sg4::Semaphore::create(0);
  sg4::SemaphorePtr finished = sg4::Semaphore::create(0);
};

struct RankStats {
  double compute = 0, recompute = 0, comm = 0, idle = 0, optimizer = 0, end = 0;
  double tp = 0, dp = 0, ep = 0;
};

struct Sim {
  const hw::Cluster* c = nullptr;
  Work w;
  Net net;
  bool keep_spans = true;
  std::vector<sg4::Host*> host;
  // Per sim id two shadow hosts for the reduced CP / TP groups: [2 id] reached through the GPU's NIC
  // up and down, [2 id + 1] through its NVLink port up and down.
  std::vector<sg4::Host*> shadow;
  std::vector<Group> groups;
  std::vector<Stream> streams;
  std::vector<RankStats> stats;
  std::vector<Span> spans;
  // mailboxes[line][vs][0 = activations into vs, 1 = gradients into vs]; line = (t, c, d)
  std::vector<sg4::Mailbox*> mbox;
  // With the replica reduction: per (sim id of a running rank, direction 0 = to the next stage,
  // 1 = to the previous) the other replicas' copies of that transfer that leave their pod (they
  // share the pod uplinks); transfers inside a pod only load the other replicas' own NICs.
  std::vector<std::vector<std::pair<int, int>>> mirror;
  // Bytes put on each directed link: every flow adds its size to the links of its route (SimGrid's
  // route between the two hosts, cached per pair). Exact, unlike sampling the links' load.
  std::unordered_map<const sg4::Link*, double> link_bytes;
  std::unordered_map<long long, std::vector<sg4::Link*>> routes;
  void account(int from, int to, double bytes) {
    auto& r = routes[static_cast<long long>(from) * static_cast<long long>(host.size()) + to];
    if (r.empty()) {
      double lat = 0;
      host[from]->route_to(host[to], r, &lat);
    }
    for (const auto* l : r) link_bytes[l] += bytes;
  }
  void account_loop(int from, int nvl, double bytes) {
    auto& r = routes[-1 - 2 * static_cast<long long>(from) - nvl];
    if (r.empty()) {
      double lat = 0;
      host[from]->route_to(shadow[2 * from + nvl], r, &lat);
    }
    for (const auto* l : r) link_bytes[l] += bytes;
  }
  // A loop flow of the kept rank `from` through its NIC (nvl = 0) or NVLink port (nvl = 1).
  void loop(int from, int nvl, double bytes, std::vector<sg4::CommPtr>& comms) {
    if (bytes <= 0) return;
    comms.push_back(sg4::Comm::sendto_async(host[from], shadow[2 * from + nvl], static_cast<uint64_t>(std::llround(bytes))));
    account_loop(from, nvl, bytes);
  }
  long long flows = 0;
  std::vector<long long> sent, received;  // per sim id x 2 directions: stage-to-stage transfers
  int dp_group(int t, int c, int s) const { return (s * w.n_c + c) * w.n_t + t; }
  int emb_group(int t, int c, int d) const { return w.L.pp * w.n_c * w.n_t + (d * w.n_c + c) * w.n_t + t; }
  // CP group of (t, replica d, stage s): members c = 0..cp-1.
  int cp_group(int t, int d, int s) const { return w.L.pp * w.n_c * w.n_t + w.L.dp * w.n_c * w.n_t + (s * w.L.dp + d) * w.n_t + t; }
  std::vector<int> cp_seq;  // per sim id: calls made on its CP group
  // EP group of (t, c, EP group index e = d / ep, s) and expert-data-parallel group of (t, c, position
  // j = d % ep in the EP group, s).
  int ep_base() const { return w.L.pp * w.n_c * w.n_t + w.L.dp * w.n_c * w.n_t + (w.cp_flows ? w.L.pp * w.L.dp * w.n_t : 0); }
  int ep_group(int t, int c, int e, int s) const { return ep_base() + ((s * (w.L.dp / w.ep) + e) * w.n_c + c) * w.n_t + t; }
  int edp_group(int t, int c, int j, int s) const {
    return ep_base() + w.L.pp * (w.L.dp / w.ep) * w.n_c * w.n_t + ((s * w.ep + j) * w.n_c + c) * w.n_t + t;
  }
  std::vector<int> ep_seq;
  // TP group of (c, replica d, stage s) when TP runs as flows: members t = 0..tp-1.
  int tp_base() const {
    return ep_base() + (w.ep > 1 ? w.L.pp * (w.L.dp / w.ep) * w.n_c * w.n_t + w.L.pp * w.ep * w.n_c * w.n_t : 0);
  }
  int tp_group(int c, int d, int s) const { return tp_base() + (s * w.L.dp + d) * w.n_c + c; }
  std::vector<int> tp_seq;
  sg4::Mailbox* box(int id, int vs, int dir) const {
    const int line = (w.d_of[id] * w.n_c + w.c_of[id]) * w.n_t + w.t_of[id];  // d < n_d
    return mbox[(static_cast<size_t>(line) * w.L.pp * w.v + vs) * 2 + dir];
  }
  void span(int id, SpanKind k, std::string name, double start, double dur) {
    if (keep_spans && dur > 0) spans.push_back({static_cast<int>(w.grank[id]), k, std::move(name), start, dur});
  }
};

// The rank's compute stream: consecutive busy segments with no interaction in between run as one
// sleep (one simulation event), and their spans are laid end to end afterwards.
struct Lane {
  struct Seg {
    SpanKind kind;
    double dur;
    const char* what;
    int mb, chunk;
    double* acc;
  };
  Sim& x;
  int id;
  int v;
  std::vector<Seg> q;
  double total = 0;
  void add(SpanKind k, double dur, const char* what, int mb, int chunk, double* acc) {
    if (dur <= 0) return;
    q.push_back({k, dur, what, mb, chunk, acc});
    total += dur;
  }
  void flush() {
    if (q.empty()) return;
    double t = sg4::Engine::get_clock();
    sg4::this_actor::sleep_for(total);
    char name[64];
    for (const Seg& g : q) {
      *g.acc += g.dur;
      if (x.keep_spans) {
        if (g.mb < 0) std::snprintf(name, sizeof name, "%s", g.what);
        else if (v > 1) std::snprintf(name, sizeof name, "%s%d.c%d", g.what, g.mb, g.chunk);
        else std::snprintf(name, sizeof name, "%s%d", g.what, g.mb);
        x.span(id, g.kind, name, t, g.dur);
      }
      t += g.dur;
    }
    q.clear();
    total = 0;
  }
};

// `calls` back-to-back calls of `bytes` each on the group run as one: the flows carry the calls'
// bytes together (bandwidth-equivalent), then every call's latency steps.
void run_collective(Sim& x, Group& g, Instance& inst, CollKind kind, double bytes, double calls = 1) {
  // The last member to arrive starts the flows; NCCL collectives start when every member has joined.
  if (++inst.arrived < g.joiners) {
    inst.done->acquire();
    return;
  }
  if (g.loop == 1) {
    // Reduced CP group (Work::cp_loop): the ring's (n-1)/n B per member (all-gather and
    // reduce-scatter, FORMULAS.md ring) as the kept rank's loop through its own port, per replica.
    const double n = x.w.L.cp;
    const double b = (n - 1) / n * bytes * calls;
    const int nvl = x.w.cp_loop_nic ? 0 : 1;
    std::vector<sg4::CommPtr> comms;
    x.loop(g.members.front(), nvl, b, comms);
    for (const auto& mg : g.mirrors) x.loop(mg.front(), nvl, b, comms);
    x.flows += static_cast<long long>(comms.size());
    sg4::Comm::wait_all(comms);
    const double lat = x.w.cp_loop_nic ? x.c->net.latency_s : x.c->intra.latency_s;
    sg4::this_actor::sleep_for((n - 1) * lat * calls);
    for (int i = 1; i < g.joiners; ++i) inst.done->release();
    return;
  }
  if (g.loop == 2) {
    // Reduced TP group across nodes (Work::tp_loop): what one member's NIC and NVLink port carry.
    // Ring across nodes (ring_flows, issue 23): each member sends X = steps/n B, all of it across
    // the node boundary through its own NIC share. Hierarchical (all-reduce only): the intra-node ring (p-1)/p B over NVLink, the rail ring
    // f (N-1)/N B/p over the NIC, the intra-node all-gather again for an all-reduce.
    const hw::Cluster& c = *x.c;
    const double n = x.w.L.tp, p = x.w.L.gpn, N = n / p;
    const bool ar = kind == CollKind::all_reduce;
    const hw::Coll hk = ar ? hw::Coll::all_reduce : kind == CollKind::reduce_scatter ? hw::Coll::reduce_scatter : hw::Coll::all_gather;
    const char* algo = "ring";
    hw::collective_time(c, hk, bytes, hw::make_group(c, x.w.L.tp, 1), &algo);
    struct LoopPhase {
      double nic, nvl, lat;
    };
    std::vector<LoopPhase> ph;
    if (std::strcmp(algo, "hierarchical") == 0) {
      const double f = ar ? 2 : 1;
      ph.push_back({0, (p - 1) / p * bytes, (p - 1) * c.intra.latency_s});
      ph.push_back({f * (N - 1) / N * bytes / p, 0, f * (N - 1) * c.net.latency_s});
      if (ar) ph.push_back(ph.front());
    } else {
      const double steps = ar ? 2 * (n - 1) : n - 1;
      const double X = steps / n * bytes;
      ph.push_back({X, 0, steps * c.net.latency_s});
    }
    for (const LoopPhase& q : ph) {
      std::vector<sg4::CommPtr> comms;
      auto both = [&](int from) {
        x.loop(from, 0, q.nic * calls, comms);
        x.loop(from, 1, q.nvl * calls, comms);
      };
      both(g.members.front());
      for (const auto& mg : g.mirrors) both(mg.front());
      x.flows += static_cast<long long>(comms.size());
      sg4::Comm::wait_all(comms);
      if (q.lat > 0) sg4::this_actor::sleep_for(q.lat * calls);
    }
    for (int i = 1; i < g.joiners; ++i) inst.done->release();
    return;
  }
  std::vector<Phase> phases = collective_phases(x.net, kind, bytes, g.members, g.stride, g.aggregate_nics);
  for (const auto& mg : g.mirrors) {
    const std::vector<Phase> more = collective_phases(x.net, kind, bytes, mg, g.stride, g.aggregate_nics);
    for (size_t i = 0; i < more.size() && i < phases.size(); ++i)
      phases[i].flows.insert(phases[i].flows.end(), more[i].flows.begin(), more[i].flows.end());
  }
  for (const Phase& ph : phases) {
    std::vector<sg4::CommPtr> comms;
    comms.reserve(ph.flows.size());
    for (const Flow& f : ph.flows) {
      const double b = f.bytes * calls;
      if (b <= 0) continue;
      comms.push_back(sg4::Comm::sendto_async(x.host[f.from], x.host[f.to], static_cast<uint64_t>(std::llround(b))));
      x.account(f.from, f.to, b);
    }
    x.flows += static_cast<long long>(comms.size());
    sg4::Comm::wait_all(comms);
    if (ph.latency_s > 0) sg4::this_actor::sleep_for(ph.latency_s * calls);
  }
  for (int i = 1; i < g.joiners; ++i) inst.done->release();
}

void stream_main(Sim* x, int id) {
  Stream& st = x->streams[id];
  for (;;) {
    st.ready->acquire();
    Task t = std::move(st.q.front());
    st.q.pop_front();
    if (t.type == Task::done) {
      st.finished->release();
      return;
    }
    Group& g = x->groups[t.group];
    while (static_cast<int>(g.calls.size()) <= t.seq) g.calls.push_back(std::make_unique<Instance>());
    const double t0 = sg4::Engine::get_clock();
    run_collective(*x, g, *g.calls[t.seq], t.kind, t.bytes);
    x->span(id, SpanKind::comm, "dp:" + t.label, t0, sg4::Engine::get_clock() - t0);
    if (t.on_done) t.on_done->release();
  }
}

struct Poster {  // posts collectives to a rank's stream, counting its calls per group
  Sim& x;
  int id;
  std::map<int, int> seq;
  // Returns false when there is nothing to communicate (no task posted).
  bool post(int group, CollKind k, double bytes, std::string label, sg4::SemaphorePtr on_done = nullptr) {
    if (bytes <= 0 || x.groups[group].members.size() < 2) return false;
    Stream& st = x.streams[id];
    st.q.push_back({Task::coll, group, seq[group]++, k, bytes, std::move(label), std::move(on_done)});
    st.ready->release();
    return true;
  }
};

void rank_main(Sim* xp, int id) {
  Sim& x = *xp;
  const Work& w = x.w;
  const int p = w.L.pp, v = w.v, s = w.s_of[id], t = w.t_of[id], c = w.c_of[id], d = w.d_of[id];
  const int V = p * v;
  RankStats& rs = x.stats[id];
  Poster post{x, id, {}};
  const int gdp = x.dp_group(t, c, s);
  const bool dp_on = w.L.dp > 1;
  const std::vector<PipeOp> ops = stage_order(w.schedule, p, v, w.m, s);
  // The last backward of each chunk produces the chunk's final gradients: its buckets go out then.
  std::vector<int> last_b(v, -1);
  for (size_t i = 0; i < ops.size(); ++i)
    if (!ops[i].forward) last_b[ops[i].chunk] = static_cast<int>(i);
  // With expert parallelism the expert weights' gradients reduce over their own dp/ep group.
  const bool ep_on = w.ep > 1;
  const int gep = ep_on ? x.ep_group(t, c, d / w.ep, s) : -1;
  const int gedp = ep_on ? x.edp_group(t, c, d % w.ep, s) : -1;
  const double chunk_exp_params = ep_on ? w.exp_params_stage[s] / v : 0;
  const double chunk_grad_params = w.params_stage[s] / v - chunk_exp_params;
  const int buckets = std::max(1, static_cast<int>(std::ceil(chunk_grad_params / w.bucket_params)));
  const int exp_buckets = chunk_exp_params > 0 ? std::max(1, static_cast<int>(std::ceil(chunk_exp_params / w.bucket_params))) : 0;
  const CollKind grad_kind = w.zero >= 1 ? CollKind::reduce_scatter : CollKind::all_reduce;
  // FSDP SHARD_GRAD_OP (zero 2 on an FSDP-unit stack) gathers and reduce-scatters per pass like ZeRO-3.
  const bool fsdp2 = w.fsdp_per_layer && w.zero == 2, sharded = w.zero >= 3 || fsdp2;
  const double bucket_bytes = w.grad_e * chunk_grad_params / buckets;
  // Stage-to-stage latency: one send/recv step, NVLink or the fabric (hardware/collectives.cpp direct).
  auto p2p_latency = [&](int other_stage) {
    const long long a = w.grank[id] / w.L.gpn, b = w.L.rank(t, c, d, other_stage) / w.L.gpn;
    return a == b ? x.c->intra.latency_s : x.c->net.latency_s;
  };
  static int payload = 0;
  Lane lane{x, id, v, {}, 0};
  // Waiting for the previous/next stage: the blocked time plus the transfer's latency step is idle.
  // Zero bubble (ZB-H1, Qi et al. 2023 sec. 3.1): the F/B order of 1F1B, B passes compute only
  // the input gradient and send it on; the W pass (weight gradient) of each microbatch is
  // deferred: at most s W's wait on stage s, so that a stage holds at most (p - s) + s = p
  // microbatches' activations, 1F1B's peak (stage 0), which is ZB-H1's memory bound (p M_B); the
  // deferred W's run in the waits of ZB-H1's static schedule (Work::zb_w_slots: those that end
  // before the input arrives), the rest at the end. The last W of the step posts the gradient
  // buckets (the gradients are final then).
  const bool zb = w.schedule == strategies::Schedule::zero_bubble;
  std::deque<std::pair<int, int>> pending_w;  // (microbatch, chunk)
  int w_left = zb ? w.m * v : 0;
  std::function<void(int, int)> run_w;
  size_t cur_op = 0;  // index of the op being run in this stage's order
  auto receive = [&](int vs, int dir, int other, const char* what, int mb, int chunk) {
    for (int n = zb ? w.zb_w_slots[s][cur_op] : 0; n > 0 && !pending_w.empty(); --n) {
      const auto [wm, wc] = pending_w.front();
      pending_w.pop_front();
      run_w(wm, wc);
      lane.flush();
    }
    lane.flush();  // the rank finishes what it is computing before it waits
    const double t0 = sg4::Engine::get_clock();
    x.box(id, vs, dir)->get<int>();
    ++x.received[2 * id + dir];
    const double blocked = sg4::Engine::get_clock() - t0;
    rs.idle += blocked;
    if (x.keep_spans && blocked > 0) {
      char name[64];
      if (v > 1) std::snprintf(name, sizeof name, "%s%d.c%d", what, mb, chunk);
      else std::snprintf(name, sizeof name, "%s%d", what, mb);
      x.span(id, SpanKind::idle, name, t0, blocked);
    }
    lane.add(SpanKind::idle, p2p_latency(other), "latency ", mb, chunk, &rs.idle);
  };
  auto send = [&](int vs, int dir) {
    lane.flush();
    const auto bytes = static_cast<uint64_t>(std::llround(w.p2p_bytes));
    x.box(id, vs, dir)->put_init(&payload, bytes)->detach();
    ++x.flows;
    ++x.sent[2 * id + dir];
    x.account(id, w.sim_id(t, c, d, (vs % p)), w.p2p_bytes);
    if (!x.mirror.empty())
      for (const auto& [a, b] : x.mirror[static_cast<size_t>(id) * 2 + dir]) {
        sg4::Comm::sendto_init(x.host[a], x.host[b])->set_payload_size(bytes)->detach();
        x.account(a, b, w.p2p_bytes);
        ++x.flows;
      }
  };
  auto post_now = [&](int group, CollKind k, double bytes, std::string label) {
    lane.flush();
    post.post(group, k, bytes, std::move(label));
  };
  // The expert weights' gradient buckets, on the expert-data-parallel group (after the dense ones).
  auto post_experts = [&](int ch) {
    for (int k = 0; k < exp_buckets; ++k)
      post_now(gedp, grad_kind, w.grad_e * chunk_exp_params / exp_buckets, "expert grad c" + std::to_string(ch) + " b" + std::to_string(k));
  };
  run_w = [&](int mb, int ch) {
    const ChunkCost& cc = w.cost[s][ch];
    const bool last_w = --w_left == 0;
    if (last_w && dp_on && !sharded && w.dp_overlap) {
      for (int k = 0; k < buckets; ++k) {
        lane.add(SpanKind::compute, cc.w_comp / buckets, "W", mb, ch, &rs.compute);
        post_now(gdp, grad_kind, bucket_bytes, "grad c" + std::to_string(ch) + " b" + std::to_string(k));
      }
      post_experts(ch);
    } else {
      lane.add(SpanKind::compute, cc.w_comp, "W", mb, ch, &rs.compute);
    }
  };
  // Context-parallel collectives (cp_algo=allgather) on the rank's compute stream: `calls` layers'
  // calls as one bandwidth-equivalent collective of the CP group (README "Discrete-event simulator").
  const int gcp = w.cp_flows ? x.cp_group(t, d, s) : -1;
  auto cp_instance = [&]() -> Instance* {
    Group& g = x.groups[gcp];
    const int seq = x.cp_seq[id]++;
    while (static_cast<int>(g.calls.size()) <= seq) g.calls.push_back(std::make_unique<Instance>());
    return g.calls[seq].get();
  };
  // On the critical path: the rank waits for it.
  auto cp_blocking = [&](CollKind k, double calls, const char* what, int mb, int chunk) {
    if (calls <= 0) return;
    lane.flush();
    Instance* inst = cp_instance();
    const double t0 = sg4::Engine::get_clock();
    run_collective(x, x.groups[gcp], *inst, k, w.cp_full_bytes, calls);
    const double dt = sg4::Engine::get_clock() - t0;
    rs.tp += dt;
    if (x.keep_spans && dt > 0) {
      char name[64];
      std::snprintf(name, sizeof name, v > 1 ? "%s%d.c%d" : "%s%d", what, mb, chunk);
      x.span(id, SpanKind::comm, name, t0, dt);
    }
  };
  // MoE dispatch/combine all-to-alls on the EP group (the experts wait for their tokens: exposed,
  // as the estimator's layer_ep).
  auto ep_blocking = [&](double calls, const char* what, int mb, int chunk) {
    if (!ep_on || calls <= 0) return;
    lane.flush();
    Group& g = x.groups[gep];
    const int seq = x.ep_seq[id]++;
    while (static_cast<int>(g.calls.size()) <= seq) g.calls.push_back(std::make_unique<Instance>());
    const double t0 = sg4::Engine::get_clock();
    run_collective(x, g, *g.calls[seq], CollKind::all_to_all, w.ep_a2a_bytes, calls);
    const double dt = sg4::Engine::get_clock() - t0;
    rs.ep += dt;
    if (x.keep_spans && dt > 0) {
      char name[64];
      std::snprintf(name, sizeof name, v > 1 ? "%s%d.c%d" : "%s%d", what, mb, chunk);
      x.span(id, SpanKind::comm, name, t0, dt);
    }
  };
  // Tensor-parallel collectives as flows (Work::tp_flows) on the TP group.
  const int gtp = w.tp_flows ? x.tp_group(c, d, s) : -1;
  auto tp_instance = [&]() -> Instance* {
    Group& g = x.groups[gtp];
    const int seq = x.tp_seq[id]++;
    while (static_cast<int>(g.calls.size()) <= seq) g.calls.push_back(std::make_unique<Instance>());
    return g.calls[seq].get();
  };
  // Forward (and full-recompute) TP collectives of `layers` layers, on the critical path.
  auto tp_fwd = [&](double layers, const char* what, int mb, int chunk) {
    if (!w.tp_flows || layers <= 0) return;
    lane.flush();
    const double t0 = sg4::Engine::get_clock();
    if (w.tp_sp) {
      run_collective(x, x.groups[gtp], *tp_instance(), CollKind::all_gather, w.tp_ag_bytes, 2 * layers);
      run_collective(x, x.groups[gtp], *tp_instance(), CollKind::reduce_scatter, w.tp_act_bytes, 2 * layers);
    } else {
      run_collective(x, x.groups[gtp], *tp_instance(), CollKind::all_reduce, w.tp_act_bytes, 2 * layers);
    }
    const double dt = sg4::Engine::get_clock() - t0;
    rs.tp += dt;
    if (x.keep_spans && dt > 0) {
      char name[64];
      std::snprintf(name, sizeof name, v > 1 ? "%s%d.c%d" : "%s%d", what, mb, chunk);
      x.span(id, SpanKind::comm, name, t0, dt);
    }
  };
  // The backward's overlapped collectives, in stream order after `delay` of backward compute: the
  // TP ones (flows) and then the CP reduce-scatter; a helper actor runs them, cp_wait blocks.
  struct Job {
    int group;
    Instance* inst;
    CollKind kind;
    double bytes, calls;
  };
  auto bwd_start = [&](const ChunkCost& cc) -> sg4::SemaphorePtr {
    std::vector<Job> jobs;
    if (w.tp_flows && cc.tp_layers > 0) {
      if (w.tp_sp) {
        jobs.push_back({gtp, tp_instance(), CollKind::all_gather, w.tp_ag_bytes, 4 * cc.tp_layers});
        jobs.push_back({gtp, tp_instance(), CollKind::reduce_scatter, w.tp_act_bytes, 2 * cc.tp_layers});
      } else {
        jobs.push_back({gtp, tp_instance(), CollKind::all_reduce, w.tp_act_bytes, 2 * cc.tp_layers});
      }
    }
    if (w.cp_flows && cc.cp_layers > 0) jobs.push_back({gcp, cp_instance(), CollKind::reduce_scatter, w.cp_full_bytes, cc.cp_layers});
    if (jobs.empty()) return nullptr;
    lane.flush();
    auto sem = sg4::Semaphore::create(0);
    Sim* xp2 = &x;
    const double delay = w.tp_flows ? cc.bwd_overlap_delay : cc.cp_rs_delay;
    sg4::Actor::create("bwd" + std::to_string(w.grank[id]), x.host[id], [xp2, jobs, delay, sem] {
      if (delay > 0) sg4::this_actor::sleep_for(delay);
      for (const Job& j : jobs) run_collective(*xp2, xp2->groups[j.group], *j.inst, j.kind, j.bytes, j.calls);
      sem->release();
    });
    return sem;
  };
  auto cp_wait = [&](const sg4::SemaphorePtr& sem, const char* what, int mb, int chunk) {
    if (!sem) return;
    lane.flush();
    const double t0 = sg4::Engine::get_clock();
    sem->acquire();
    const double dt = sg4::Engine::get_clock() - t0;
    rs.tp += dt;
    if (x.keep_spans && dt > 0) {
      char name[64];
      std::snprintf(name, sizeof name, v > 1 ? "%s%d.c%d" : "%s%d", what, mb, chunk);
      x.span(id, SpanKind::comm, name, t0, dt);
    }
  };
  // ZeRO-1/2 (Megatron distributed optimizer with overlap_param_gather): the updated parameter
  // shards are all-gathered chunk by chunk while the step starts; a chunk's first forward waits
  // for its parameters. One step in steady state: this is the previous optimizer step's gather.
  std::vector<sg4::SemaphorePtr> params_ready(v);
  if (dp_on && (w.zero == 1 || w.zero == 2) && !fsdp2)
    for (int c2 = 0; c2 < v; ++c2) {
      auto sem = sg4::Semaphore::create(0);
      if (ep_on && exp_buckets > 0) {
        // Expert parameters first, on their own group; the dense gather's completion then covers both
        // (one NCCL stream: in order).
        post.post(gedp, CollKind::all_gather, w.param_e * chunk_exp_params, "ag expert params c" + std::to_string(c2));
      }
      if (post.post(gdp, CollKind::all_gather, w.param_e * chunk_grad_params, "ag params c" + std::to_string(c2), sem)) params_ready[c2] = sem;
    }
  // ZeRO-3: the chunk's parameter all-gather before a forward or backward pass; without prefetch
  // the pass waits for it (zero3_blocking).
  auto gather_params = [&](const std::string& label, int ch) {
    const int nu = w.cost[s][ch].fsdp_units;  // one gather per FSDP unit, in order on the stream
    const double bytes = w.param_e * chunk_grad_params / nu;
    if (!w.zero3_blocking) {
      for (int u = 0; u < nu; ++u) post_now(gdp, CollKind::all_gather, bytes, label);
      return;
    }
    lane.flush();
    for (int u = 0; u + 1 < nu; ++u) post.post(gdp, CollKind::all_gather, bytes, label);
    auto sem = sg4::Semaphore::create(0);
    if (!post.post(gdp, CollKind::all_gather, bytes, label, sem)) return;
    const double t0 = sg4::Engine::get_clock();
    sem->acquire();
    const double dt = sg4::Engine::get_clock() - t0;
    rs.dp += dt;
    if (dt > 0) x.span(id, SpanKind::comm, "wait " + label, t0, dt);
  };
  for (size_t i = 0; i < ops.size(); ++i) {
    cur_op = i;
    const PipeOp& op = ops[i];
    const int vs = op.chunk * p + s, mb = op.microbatch, ch = op.chunk;
    const ChunkCost& cc = w.cost[s][op.chunk];
    if (op.forward) {
      if (vs > 0) receive(vs, 0, (vs - 1) % p, "wait F", mb, ch);
      if (params_ready[ch]) {
        lane.flush();
        const double t0 = sg4::Engine::get_clock();
        params_ready[ch]->acquire();
        params_ready[ch] = nullptr;
        const double dt = sg4::Engine::get_clock() - t0;
        rs.dp += dt;
        if (dt > 0) x.span(id, SpanKind::comm, "wait params", t0, dt);
      }
      if (sharded && dp_on) gather_params("ag F" + std::to_string(mb), ch);
      if (w.cp_flows) cp_blocking(CollKind::all_gather, cc.cp_layers, "cp ag F", mb, ch);
      if (mb == 0 && cc.wcast_s > 0) lane.add(SpanKind::compute, cc.wcast_s, "fp8 weight cast", mb, ch, &rs.compute);
      lane.add(SpanKind::compute, cc.f_comp, "F", mb, ch, &rs.compute);
      lane.add(SpanKind::comm, cc.f_comm, "tp F", mb, ch, &rs.tp);
      tp_fwd(cc.tp_layers, "tp flows F", mb, ch);
      ep_blocking(cc.ep_f_calls, "a2a F", mb, ch);
      if (vs < V - 1) send(vs + 1, 0);
    } else {
      if (vs < V - 1) receive(vs, 1, (vs + 1) % p, "wait B", mb, ch);
      if (w.zero >= 3 && dp_on) gather_params("ag B" + std::to_string(mb), ch);
      if (w.cp_flows && cc.cp_recompute) cp_blocking(CollKind::all_gather, cc.cp_layers, "cp ag R", mb, ch);
      lane.add(SpanKind::recompute, cc.r_comp, "R", mb, ch, &rs.recompute);
      lane.add(SpanKind::comm, cc.r_comm, "tp R", mb, ch, &rs.tp);
      if (cc.tp_recompute) tp_fwd(cc.tp_layers, "tp flows R", mb, ch);
      ep_blocking(cc.ep_r_calls, "a2a R", mb, ch);
      sg4::SemaphorePtr cp_rs;
      if (w.cp_flows) {
        // Backward all-gathers K/V again (critical), then reduce-scatters dK/dV under the compute.
        cp_blocking(CollKind::all_gather, cc.cp_layers, "cp ag B", mb, ch);
      }
      cp_rs = bwd_start(cc);
      const bool bucketed = !zb && dp_on && !sharded && w.dp_overlap && static_cast<int>(i) == last_b[op.chunk];
      if (zb) {
        lane.add(SpanKind::compute, cc.b_comp - cc.w_comp, "B", mb, ch, &rs.compute);
      } else if (bucketed) {
        // Gradients of the chunk's layers are final as this backward passes them: bucket k is
        // reduced while the backward of the next layers runs (Megatron DDP overlap_grad_reduce).
        for (int k = 0; k < buckets; ++k) {
          lane.add(SpanKind::compute, cc.b_comp / buckets, "B", mb, ch, &rs.compute);
          post_now(gdp, grad_kind, bucket_bytes, "grad c" + std::to_string(ch) + " b" + std::to_string(k));
        }
        post_experts(ch);
      } else {
        lane.add(SpanKind::compute, cc.b_comp, "B", mb, ch, &rs.compute);
      }
      cp_wait(cp_rs, "overlap B", mb, ch);
      lane.add(SpanKind::comm, cc.b_comm, "tp B", mb, ch, &rs.tp);
      ep_blocking(cc.ep_b_calls, "a2a B", mb, ch);
      if (sharded && dp_on)
        for (int u = 0, nu = cc.fsdp_units; u < nu; ++u)
          post_now(gdp, CollKind::reduce_scatter, w.grad_e * chunk_grad_params / nu, "rs B" + std::to_string(mb));
      if (vs > 0) send(vs - 1, 1);
      if (zb) {
        pending_w.push_back({mb, ch});
        while (static_cast<int>(pending_w.size()) > s) {
          const auto [wm, wc] = pending_w.front();
          pending_w.pop_front();
          run_w(wm, wc);
        }
      }
    }
  }
  while (!pending_w.empty()) {
    const auto [wm, wc] = pending_w.front();
    pending_w.pop_front();
    run_w(wm, wc);
  }
  lane.flush();
  if (dp_on && !sharded && !w.dp_overlap) {
    // Gradient reduction after the pipeline flush (Megatron 2021-22 without overlap).
    for (int c2 = 0; c2 < v; ++c2)
    {
      for (int k = 0; k < buckets; ++k) post.post(gdp, grad_kind, bucket_bytes, "grad c" + std::to_string(c2) + " b" + std::to_string(k));
      post_experts(c2);
    }
  }
  if (w.tied_pp && (s == 0 || s == p - 1)) post.post(x.emb_group(t, c, d), CollKind::all_reduce, w.emb_grad_bytes, "emb grad");
  {
    Stream& st = x.streams[id];
    st.q.push_back({Task::done, 0, 0, CollKind::all_reduce, 0, "", nullptr});
    st.ready->release();
    const double t0 = sg4::Engine::get_clock();
    st.finished->acquire();
    const double dt = sg4::Engine::get_clock() - t0;
    rs.dp += dt;
    x.span(id, SpanKind::comm, "wait dp", t0, dt);
  }
  lane.add(SpanKind::optimizer, w.opt_s[s], "optimizer", -1, 0, &rs.optimizer);
  lane.flush();
  rs.end = sg4::Engine::get_clock();
}

// ---------------------------------------------------------------------------------------------
// Platform: per node a full zone (GPU <-> GPU over each GPU's NVLink/NVSwitch port, GPU <-> node
// gateway over the GPU's NIC), nodes in pod star zones (non-blocking inside a pod: full
// bisection, so a GPU's NIC is its only bottleneck in the pod), pods in a star zone whose links are
// the pods' oversubscribed uplinks (pod_gpus x NIC / oversubscription per direction).

struct TierLinks {
  std::vector<sg4::Link*> nvlink, nic, uplink;  // per-GPU tiers: [2 id] up, [2 id + 1] down
};

TierLinks build_platform(Sim& x) {
  const hw::Cluster& c = *x.c;
  const Work& w = x.w;
  TierLinks tl;
  tl.nvlink.resize(2 * w.grank.size());
  tl.nic.resize(2 * w.grank.size());
  const double k = w.reduction;
  const double nvl_bw = c.intra.bw_Bps * c.intra.bus_efficiency;
  // GPU <-> NIC (GPUDirect RDMA) crosses the GPU's PCIe link, which carries exactly the NIC's
  // flows, so one link of the smaller of the two rates is the same constraint.
  const double nic_bw = c.host.pcie_Bps > 0 ? std::min(c.net.nic_bw_Bps * c.net.bus_efficiency, c.host.pcie_Bps)
                                            : c.net.nic_bw_Bps * c.net.bus_efficiency;
  const bool pods = c.net.pod_gpus > 0 && w.total_ranks > c.net.pod_gpus;
  auto* root = sg4::create_star_zone(pods ? "fabric" : "pod0");
  // Simulated ranks by node, nodes by pod.
  std::map<long long, std::vector<int>> node_ranks;
  for (size_t id = 0; id < w.grank.size(); ++id) node_ranks[w.grank[id] / w.L.gpn].push_back(static_cast<int>(id));
  std::map<long long, sg4::NetZone*> pod_zone;
  std::map<long long, simgrid::kernel::routing::NetPoint*> pod_gw;
  auto pod_of = [&](long long node) -> long long { return pods ? node * w.L.gpn / c.net.pod_gpus : 0; };
  for (auto& [node, ids] : node_ranks) {
    const long long pod = pod_of(node);
    if (!pod_zone.count(pod)) {
      if (pods) {
        auto* pz = sg4::create_star_zone("pod" + std::to_string(pod));
        pz->set_parent(root);
        pod_zone[pod] = pz;
        // The pod's gateway sits in a child zone of its own (the pod's spine): SimGrid resolves a
        // route to a router placed directly in a zone that also holds child zones in the wrong
        // zone (find_common_ancestors stops one level too high).
        auto* spine = sg4::create_star_zone("pod" + std::to_string(pod) + "-spine");
        spine->set_parent(pz);
        pod_gw[pod] = spine->create_router("pod" + std::to_string(pod) + "-gw");
        spine->seal();
        pz->add_route(spine->get_netpoint(), nullptr, pod_gw[pod], nullptr, {}, false);
        pz->add_route(nullptr, spine->get_netpoint(), nullptr, pod_gw[pod], {}, false);
      } else {
        pod_zone[pod] = root;
      }
    }
  }
  for (auto& [node, ids] : node_ranks) {
    sg4::NetZone* pz = pod_zone[pod_of(node)];
    const std::string nn = "node" + std::to_string(node);
    auto* nz = sg4::create_full_zone(nn);
    nz->set_parent(pz);
    auto* gw = nz->create_router(nn + "-gw");
    std::vector<sg4::Link*> nvl, nic;
    for (int id : ids) {
      const std::string g = "gpu" + std::to_string(w.grank[id]);
      x.host[id] = nz->create_host(g, 1e12);
      if (w.cp_loop || w.tp_loop) {
        x.shadow[2 * id] = nz->create_host(g + "-loop-nic", 1e12);
        x.shadow[2 * id + 1] = nz->create_host(g + "-loop-nvlink", 1e12);
      }
      auto* lv = nz->create_split_duplex_link(g + "-nvlink", nvl_bw);
      lv->set_latency(0)->seal();
      auto* ln = nz->create_split_duplex_link(g + "-nic", nic_bw);
      ln->set_latency(0)->seal();
      nvl.push_back(lv);
      nic.push_back(ln);
      tl.nvlink[2 * id] = lv->get_link_up();
      tl.nvlink[2 * id + 1] = lv->get_link_down();
      tl.nic[2 * id] = ln->get_link_up();
      tl.nic[2 * id + 1] = ln->get_link_down();
    }
    using D = sg4::LinkInRoute::Direction;
    for (size_t i = 0; i < ids.size(); ++i) {
      auto* hi = x.host[ids[i]]->get_netpoint();
      for (size_t j = 0; j < ids.size(); ++j) {
        if (i == j) continue;
        nz->add_route(hi, x.host[ids[j]]->get_netpoint(), nullptr, nullptr,
                      {sg4::LinkInRoute(nvl[i], D::UP), sg4::LinkInRoute(nvl[j], D::DOWN)}, false);
      }
      nz->add_route(hi, gw, nullptr, nullptr, {sg4::LinkInRoute(nic[i], D::UP)}, false);
      if (w.cp_loop || w.tp_loop) {
        nz->add_route(hi, x.shadow[2 * ids[i]]->get_netpoint(), nullptr, nullptr,
                      {sg4::LinkInRoute(nic[i], D::UP), sg4::LinkInRoute(nic[i], D::DOWN)}, false);
        nz->add_route(hi, x.shadow[2 * ids[i] + 1]->get_netpoint(), nullptr, nullptr,
                      {sg4::LinkInRoute(nvl[i], D::UP), sg4::LinkInRoute(nvl[i], D::DOWN)}, false);
      }
      nz->add_route(gw, hi, nullptr, nullptr, {sg4::LinkInRoute(nic[i], D::DOWN)}, false);
    }
    nz->seal();
    // Inside the pod the node hangs off the (non-blocking) pod fabric by its gateway.
    pz->add_route(nz->get_netpoint(), nullptr, gw, nullptr, {}, false);
    pz->add_route(nullptr, nz->get_netpoint(), nullptr, gw, {}, false);
  }
  if (pods) {
    // The aggregation layer above a pod: pod_gpus x NIC / oversubscription per direction (Llama 3
    // sec. 3.3.1: 1:7), shared by the pod's traffic; with the reduction, 1/k of it.
    const double up_bw = c.net.pod_gpus * c.net.nic_bw_Bps * c.net.bus_efficiency / c.net.oversubscription / k;
    for (auto& [pod, pz] : pod_zone) {
      pz->seal();
      auto* up = root->create_split_duplex_link("pod" + std::to_string(pod) + "-uplink", up_bw);
      up->set_latency(0)->seal();
      tl.uplink.push_back(up->get_link_up());
      tl.uplink.push_back(up->get_link_down());
      using D = sg4::LinkInRoute::Direction;
      root->add_route(pz->get_netpoint(), nullptr, pod_gw[pod], nullptr, {sg4::LinkInRoute(up, D::UP)}, false);
      root->add_route(nullptr, pz->get_netpoint(), nullptr, pod_gw[pod], {sg4::LinkInRoute(up, D::DOWN)}, false);
    }
  }
  root->seal();
  return tl;
}

// ---------------------------------------------------------------------------------------------
// What the child process hands back.

struct Core {
  double step_s = 0, compute_s = 0, comm_s = 0, bubble_s = 0, optimizer_s = 0, tp_s = 0, dp_s = 0, ep_s = 0;
  std::vector<LinkTier> links;
  std::vector<Span> spans;
  long long flows = 0, simulated = 0;
  double wall_s = 0, rss = 0;
};

Work prepare_work(const model::ModelSpec& m, const hw::Cluster& c, const Plan& p, const SimOptions& o) {
  Work w;
  w.L = {p.tp, p.cp, p.dp, p.pp, c.gpus_per_node, c.sw.pp_inside_dp};
  w.v = p.schedule == strategies::Schedule::interleaved ? p.vpp : 1;
  w.m = static_cast<int>(p.microbatches());
  w.schedule = p.schedule;
  w.zero = p.zero;
  w.zero3_blocking = c.sw.zero3_prefetch_depth <= 0;
  w.fsdp_per_layer = c.sw.fsdp_per_layer && p.zero >= 2;
  w.dp_overlap = c.sw.dp_overlap;
  w.total_ranks = p.gpus();
  analytic::Estimator est(m, c);
  const analytic::LayerTable tab = est.prepare(p);
  const strategies::StageLayers sl = strategies::stage_layers(p, m.layers);
  const double e = strategies::bytes_per_element(p.precision);
  w.cp_flows = p.cp > 1 && p.cp_algo == strategies::CpAlgo::allgather;
  w.tp_flows = p.tp > c.gpus_per_node && p.tp % c.gpus_per_node == 0 && p.tp_mode == strategies::TpMode::d1 && (p.cp == 1 || w.cp_flows);
  w.tp_sp = p.sp;
  w.cost.assign(p.pp, std::vector<ChunkCost>(w.v));
  for (int s = 0; s < p.pp; ++s) {
    const double layers = (s == 0 ? sl.first : s == p.pp - 1 ? sl.last : sl.middle) / w.v;
    for (int ch = 0; ch < w.v; ++ch) {
      const bool first = s == 0 && ch == 0, last = s == p.pp - 1 && ch == w.v - 1;
      ChunkCost& cc = w.cost[s][ch];
      if (w.fsdp_per_layer) cc.fsdp_units = std::max(1, static_cast<int>(std::lround(layers)) + (first || last ? 1 : 0));
      const auto& lc = tab.lc;
      const auto& ec = tab.ec;
      const auto& hc = tab.hc;
      cc.f_comp = layers * lc.fwd_s + (first ? ec.fwd_s : 0) + (last ? hc.fwd_s : 0);
      cc.f_comm = layers * lc.fwd_comm_s + (first ? ec.fwd_comm_s : 0) + (last ? hc.fwd_comm_s : 0);
      cc.wcast_s = layers * lc.fp8_weight_cast_s;
      cc.r_comp = layers * lc.recompute_s;
      cc.r_comm = layers * lc.recompute_comm_s;
      cc.b_comp = layers * lc.bwd_s + (first ? ec.bwd_s : 0) + (last ? hc.bwd_s : 0);
      cc.b_comm = layers * lc.bwd_comm_exposed_s + (last ? hc.bwd_comm_exposed_s : 0);
      // Weight-gradient GEMMs (the estimator's StageTimes::w_s: layers x wgrad + the head's).
      cc.w_comp = layers * lc.wgrad_s + (first ? ec.wgrad_s : 0) + (last ? hc.wgrad_s : 0);
      cc.ep_f_calls = layers * lc.ep_a2a_fwd;
      cc.ep_r_calls = p.recompute == strategies::Recompute::full ? layers * lc.ep_a2a_fwd : 0;
      cc.ep_b_calls = layers * lc.ep_a2a_bwd;
      if (w.cp_flows) {
        // The CP exchange runs as flows: take its durations out of the critical-path terms, and
        // hide only the TP backward collectives under the weight-gradient GEMMs.
        cc.cp_layers = layers;
        cc.cp_recompute = p.recompute == strategies::Recompute::full;
        cc.f_comm -= layers * lc.cp_fwd_comm_s;
        if (cc.cp_recompute) cc.r_comm -= layers * lc.cp_fwd_comm_s;
        // Per layer the estimator exposes max(0, tp + rs - wgrad) + overlap_slowdown min(tp + rs, wgrad)
        // (exposed_under): the first term is simulated (the wait for the reduce-scatter, whose
        // flows may be slowed by other traffic), the second (SMs and HBM the overlapped kernels
        // take from the GEMMs) stays a duration at the estimator's isolated value.
        const double tp_bwd = lc.bwd_comm_s - lc.cp_bwd_comm_s;
        const double hidden = std::min(lc.bwd_comm_s, lc.wgrad_s);
        cc.b_comm = layers * (c.device.eff.overlap_slowdown * hidden + lc.bwd_comm_critical_s - lc.cp_bwd_critical_s) +
                    (last ? hc.bwd_comm_exposed_s : 0);
        cc.cp_rs_delay = cc.b_comp - layers * lc.wgrad_s + layers * tp_bwd;
        if (lc.tp_bwd_exposed_s >= 0) {
          // TP overlap: the TP collectives hide under their own GEMMs (a fixed exposed duration, as the
          // estimator's); only the CP reduce-scatter waits on the weight-gradient window.
          const double cp_hidden = std::min(lc.cp_bwd_comm_s, lc.wgrad_s);
          cc.b_comm = layers * (lc.tp_bwd_exposed_s + c.device.eff.overlap_slowdown * cp_hidden + lc.bwd_comm_critical_s -
                                lc.cp_bwd_critical_s) +
                      (last ? hc.bwd_comm_exposed_s : 0);
          cc.cp_rs_delay = cc.b_comp - layers * lc.wgrad_s;
        }
      }
      if (w.tp_flows) {
        // The layers' TP collectives run as flows: out of the durations; the backward ones (and the
        // CP reduce-scatter after them) start at the weight-gradient window and the rank waits at
        // the end of the backward: exposed max(0, tp + cp - wgrad) simulated, the overlap
        // slowdown kept as a duration (as exposed_under).
        cc.tp_layers = layers;
        cc.tp_recompute = p.recompute == strategies::Recompute::full;
        const double tp_fwd = lc.fwd_comm_s - lc.cp_fwd_comm_s;
        cc.f_comm -= layers * tp_fwd;
        if (cc.tp_recompute) cc.r_comm -= layers * tp_fwd;
        const double hidden = std::min(lc.bwd_comm_s, lc.wgrad_s);
        cc.b_comm = layers * (c.device.eff.overlap_slowdown * hidden + lc.bwd_comm_critical_s - lc.cp_bwd_critical_s) +
                    (last ? hc.bwd_comm_exposed_s : 0);
        cc.bwd_overlap_delay = cc.b_comp - layers * lc.wgrad_s;
      }
    }
  }
  w.cp_full_bytes = tab.lc.cp_kv_block_bytes * p.cp;
  w.tp_act_bytes = e * tab.sh.b * tab.sh.s * m.hidden;  // layer_1d's act = e T h
  w.tp_ag_bytes = tab.sh.sp && p.precision == strategies::Precision::fp8 ? w.tp_act_bytes / e : w.tp_act_bytes;
  // Stage-to-stage activations T h / t (Estimator::metrics p2p_bytes).
  w.p2p_bytes = e * tab.sh.b * tab.sh.s * m.hidden / p.tp;
  const strategies::Recipe rec = p.precision == strategies::Precision::fp32 ? strategies::recipe_zero_paper(strategies::Precision::fp32)
                                                                            : strategies::recipe_zero_paper(p.precision);
  w.grad_e = rec.grad_bytes > 0 ? rec.grad_bytes : rec.main_grad_bytes;
  if (c.sw.grad_reduce_bytes > 0) w.grad_e = c.sw.grad_reduce_bytes;  // the stack's reduce dtype (Composer DEFAULT: fp32)
  w.param_e = rec.param_bytes;
  w.ep = p.ep;
  w.ep_a2a_bytes = tab.lc.ep_a2a_bytes;
  for (int s = 0; s < p.pp; ++s) {
    const double P = est.params_on_stage(p, s);
    const double P_exp = p.ep > 1 ? est.expert_params_on_stage(p, s) : 0;
    w.params_stage.push_back(P);
    w.exp_params_stage.push_back(P_exp);
    // Adam on this GPU's shard (Estimator::metrics t_opt; expert weights sharded over dp/ep).
    const double opt_params = p.zero >= 1 ? (P - P_exp) / p.state_shards() + P_exp / (p.dp / p.ep) : P;
    w.opt_s.push_back(est.optimizer_time(opt_params, est.param_tensors_on_stage(p, s, strategies::stage_layers(p, m.layers))));
  }
  if (w.schedule == strategies::Schedule::zero_bubble) {
    // ZB-H1's static W slots from the stages' own F, B and W durations, each F and B with its
    // stage-to-stage send (as the estimator's stage time, Estimator::metrics p2p_per_mb).
    const hw::Group g_p2p = hw::make_group(c, 2, c.sw.pp_inside_dp ? p.tp * p.cp : p.tp * p.cp * p.dp);
    const double t_p2p = hw::collective_time(c, hw::Coll::send_recv, tab.p2p_bytes, g_p2p);
    std::vector<StagePassTimes> pt(p.pp);
    for (int s = 0; s < p.pp; ++s) {
      const ChunkCost& cc = w.cost[s][0];
      pt[s] = {cc.f_comp + cc.f_comm + t_p2p, cc.r_comp + cc.r_comm + cc.b_comp - cc.w_comp + cc.b_comm + t_p2p, cc.w_comp};
    }
    w.zb_w_slots = zero_bubble_w_slots(p.pp, w.m, pt);
  }
  w.tied_pp = m.tied_embeddings && p.pp > 1;
  w.emb_grad_bytes = w.grad_e * static_cast<double>(m.vocab) * m.hidden / p.tp;
  w.bucket_params = o.bucket_params > 0 ? o.bucket_params : std::max(4e7, 1e6 * p.dp);
  // Symmetry reduction: one rank per TP x CP group. With CP flows every CP rank keeps its host (its
  // NIC carries the CP ring), but only CP rank 0 runs a program; its CP collectives carry the
  // flows of all members.
  if (w.cp_flows && o.reduce) {
    const long long span = static_cast<long long>(p.tp) * p.cp;
    const bool own_nodes = p.tp % c.gpus_per_node == 0;
    const bool one_node = span <= c.gpus_per_node && c.gpus_per_node % span == 0;
    const bool in_pod = c.net.pod_gpus <= 0 || p.gpus() <= c.net.pod_gpus || (span <= c.net.pod_gpus && c.net.pod_gpus % span == 0);
    w.cp_loop = (own_nodes || one_node) && in_pod;
    w.cp_loop_nic = own_nodes;
  }
  if (w.tp_flows && o.reduce) {
    // The loop form covers the ring and hierarchical algorithms; NCCL's trees (all-reduce over more
    // than two nodes) load root, inner and leaf NICs differently: then every TP rank keeps its host.
    const char* algo = "ring";
    hw::collective_time(c, p.sp ? hw::Coll::all_gather : hw::Coll::all_reduce, p.sp ? w.tp_ag_bytes : w.tp_act_bytes, hw::make_group(c, p.tp, 1), &algo);
    const bool in_pod = c.net.pod_gpus <= 0 || p.gpus() <= c.net.pod_gpus || (p.tp <= c.net.pod_gpus && c.net.pod_gpus % p.tp == 0);
    w.tp_loop = in_pod && std::strcmp(algo, "tree") != 0;
    if (p.sp) {
      hw::collective_time(c, hw::Coll::reduce_scatter, w.tp_act_bytes, hw::make_group(c, p.tp, 1), &algo);
      w.tp_loop = w.tp_loop && std::strcmp(algo, "tree") != 0;
    }
  }
  w.n_t = o.reduce && (!w.tp_flows || w.tp_loop) ? 1 : p.tp;
  w.n_tp = o.reduce ? 1 : p.tp;
  w.n_c = o.reduce && (!w.cp_flows || w.cp_loop) ? 1 : p.cp;
  w.n_cp = o.reduce ? 1 : p.cp;
  w.n_d = o.reduce ? 1 : p.dp;
  w.reduction = (p.tp / w.n_t) * (p.cp / w.n_c);
  const long long n = static_cast<long long>(w.n_t) * w.n_c * p.dp * p.pp;
  w.t_of.resize(n);
  w.c_of.resize(n);
  w.d_of.resize(n);
  w.s_of.resize(n);
  w.grank.resize(n);
  for (int s = 0; s < p.pp; ++s)
    for (int d = 0; d < p.dp; ++d)
      for (int cc = 0; cc < w.n_c; ++cc)
        for (int t = 0; t < w.n_t; ++t) {
          const int id = w.sim_id(t, cc, d, s);
          w.t_of[id] = t;
          w.c_of[id] = cc;
          w.d_of[id] = d;
          w.s_of[id] = s;
          w.grank[id] = w.L.rank(t, cc, d, s);
        }
  return w;
}

// Bytes each directed link carried: what SimGrid measured, plus, for the hosts of replicas that
// run no program (replica reduction), their stage-to-stage transfers that stayed inside a pod
// (not simulated as flows): the counts of their replica-0 counterpart.
std::vector<double> link_bytes(const Sim& x, const std::vector<sg4::Link*>& links, bool nic_tier) {
  const Work& w = x.w;
  std::vector<double> b(links.size());
  for (size_t i = 0; i < links.size(); ++i) {
    auto it = x.link_bytes.find(links[i]);
    b[i] = it == x.link_bytes.end() ? 0 : it->second;
  }
  if (w.n_d >= w.L.dp && w.n_cp >= w.n_c) return b;
  const hw::Cluster& c = *x.c;
  for (size_t id = 0; id < w.grank.size(); ++id) {
    if (w.runs(static_cast<int>(id))) continue;
    const int d = w.d_of[id];
    const int t = w.t_of[id], cc = w.c_of[id], s = w.s_of[id];
    const int r0 = w.leader(static_cast<int>(id));
    for (int dir = 0; dir < 2; ++dir) {
      const int s_to = dir == 0 ? (s + 1) % w.L.pp : (s + w.L.pp - 1) % w.L.pp;    // where sends of dir go
      const int s_from = dir == 0 ? (s + w.L.pp - 1) % w.L.pp : (s + 1) % w.L.pp;  // where receives of dir come from
      auto add = [&](int other_stage, bool up, long long count) {
        if (count == 0 || other_stage == s) return;
        const int o = w.sim_id(t, cc, d, other_stage);
        const bool cross_pod = c.net.pod_gpus > 0 && w.total_ranks > c.net.pod_gpus && w.grank[id] / c.net.pod_gpus != w.grank[o] / c.net.pod_gpus;
        if (cross_pod) return;  // mirrored as flows: measured
        const bool same_node = w.grank[id] / w.L.gpn == w.grank[o] / w.L.gpn;
        if (same_node == nic_tier) return;
        b[2 * id + (up ? 0 : 1)] += static_cast<double>(count) * w.p2p_bytes;
      };
      add(s_to, true, x.sent[2 * r0 + dir]);
      add(s_from, false, x.received[2 * r0 + dir]);
    }
  }
  return b;
}

LinkTier summarize(const std::string& tier, const std::vector<sg4::Link*>& links, const std::vector<double>& bytes, double full_links,
                   double scale_bytes, double scale_cap, double step) {
  LinkTier lt;
  lt.tier = tier;
  lt.links = static_cast<int>(full_links);
  if (links.empty() || step <= 0) return lt;
  lt.capacity_Bps = links.front()->get_bandwidth() * scale_cap;
  double sum = 0, best = -1;
  for (size_t i = 0; i < links.size(); ++i) {
    sum += bytes[i];
    if (bytes[i] > best) {
      best = bytes[i];
      lt.busiest = links[i]->get_name();
    }
  }
  const double cap_sim = links.front()->get_bandwidth();
  lt.bytes = sum * scale_bytes;
  lt.mean_util = sum / (links.size() * cap_sim * step);
  lt.max_util = best / (cap_sim * step);
  return lt;
}

Core run_core(const model::ModelSpec& m, const hw::Cluster& c, const Plan& p, const SimOptions& o) {
  const auto t_start = std::chrono::steady_clock::now();
  Core core;
  auto x = std::make_unique<Sim>();
  x->c = &c;
  x->w = prepare_work(m, c, p, o);
  x->net = {&c, &x->w};
  x->keep_spans = o.timeline;
  const Work& w = x->w;
  const size_t n = w.grank.size();
  core.simulated = 0;
  for (size_t id = 0; id < n; ++id) core.simulated += w.runs(static_cast<int>(id)) ? 1 : 0;

  std::vector<std::string> args = {"scaleplan-des", "--log=root.thres:critical", "--cfg=network/model:CM02",
                                   "--cfg=network/crosstraffic:0", "--cfg=contexts/stack-size:256"};
  if (const char* extra = std::getenv("SCALEPLAN_SIMGRID_ARGS")) {  // debugging: extra --log/--cfg arguments
    std::string e = extra;
    for (size_t a = 0, b; a < e.size(); a = b + 1) {
      b = e.find(' ', a);
      if (b == std::string::npos) b = e.size();
      if (b > a) args.push_back(e.substr(a, b - a));
    }
  }
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  int argc = static_cast<int>(args.size());
  sg4::Engine engine(&argc, argv.data());
  x->host.resize(n);
  x->shadow.resize(2 * n);
  const TierLinks tl = build_platform(*x);

  // Groups: DP per (t, c, stage); tied-embedding ends per (t, c, replica); CP per (t, replica, stage).
  x->groups.resize(static_cast<size_t>(w.L.pp) * w.n_c * w.n_t + static_cast<size_t>(w.L.dp) * w.n_c * w.n_t +
                   (w.cp_flows ? static_cast<size_t>(w.L.pp) * w.L.dp * w.n_t : 0));
  for (int s = 0; s < w.L.pp; ++s)
    for (int d = 0; d < w.L.dp; ++d)
      for (int cc = 0; cc < w.n_c; ++cc)
        for (int t = 0; t < w.n_t; ++t) {
          const int id = w.sim_id(t, cc, d, s);
          Group& g = x->groups[x->dp_group(t, cc, s)];
          g.members.push_back(id);
          if (w.runs(id)) ++g.joiners;
          g.stride = w.L.stride_dp();
          g.aggregate_nics = c.sw.dp_nics_aggregate;
          if (w.tied_pp && (s == 0 || s == w.L.pp - 1)) {
            Group& ge = x->groups[x->emb_group(t, cc, d)];
            ge.members.push_back(id);
            if (w.runs(id)) ++ge.joiners;
            ge.stride = w.L.stride_pp() * (w.L.pp - 1);
          }
          if (w.cp_flows) {
            Group& gc = x->groups[x->cp_group(t, d, s)];
            gc.members.push_back(id);
            if (w.runs(id)) ++gc.joiners;
            gc.stride = w.L.tp;
            gc.loop = w.cp_loop ? 1 : 0;
          }
        }
  // TP groups (TP as flows) per (c, replica, stage).
  if (w.tp_flows) {
    x->groups.resize(static_cast<size_t>(x->tp_base()) + static_cast<size_t>(w.L.pp) * w.L.dp * w.n_c);
    for (int s = 0; s < w.L.pp; ++s)
      for (int d = 0; d < w.L.dp; ++d)
        for (int cc = 0; cc < w.n_c; ++cc)
          for (int t = 0; t < w.n_t; ++t) {
            const int id = w.sim_id(t, cc, d, s);
            Group& g = x->groups[x->tp_group(cc, d, s)];
            g.members.push_back(id);
            g.stride = 1;
            g.loop = w.tp_loop ? 2 : 0;
            if (w.runs(id)) ++g.joiners;
          }
  }
  // Groups no program joins (TP and CP ranks > 0 and replicas > 0 when reduced) ride along with the
  // group of the rank their first member follows: their flows run in the same collective.
  auto ride_along = [&](int gi, auto lead_group) {
    const Group& g = x->groups[gi];
    if (g.joiners > 0 || g.members.empty()) return;
    x->groups[lead_group(w.leader(g.members.front()))].mirrors.push_back(g.members);
  };
  for (int s = 0; s < w.L.pp; ++s)
    for (int cc = 0; cc < w.n_c; ++cc)
      for (int t = 0; t < w.n_t; ++t) {
        ride_along(x->dp_group(t, cc, s), [&](int lead) { return x->dp_group(w.t_of[lead], w.c_of[lead], s); });
      }
  if (w.tied_pp)
    for (int d = 0; d < w.L.dp; ++d)
      for (int cc = 0; cc < w.n_c; ++cc)
        for (int t = 0; t < w.n_t; ++t) {
          ride_along(x->emb_group(t, cc, d), [&](int lead) { return x->emb_group(w.t_of[lead], w.c_of[lead], w.d_of[lead]); });
        }
  if (w.cp_flows)
    for (int d = 0; d < w.L.dp; ++d)
      for (int s = 0; s < w.L.pp; ++s)
        for (int t = 0; t < w.n_t; ++t) {
          ride_along(x->cp_group(t, d, s), [&](int lead) { return x->cp_group(w.t_of[lead], w.d_of[lead], s); });
        }
  if (w.tp_flows)
    for (int s = 0; s < w.L.pp; ++s)
      for (int d = 0; d < w.L.dp; ++d)
        for (int cc = 0; cc < w.n_c; ++cc) {
          ride_along(x->tp_group(cc, d, s), [&](int lead) { return x->tp_group(w.c_of[lead], w.d_of[lead], s); });
        }
  x->tp_seq.assign(n, 0);
  x->cp_seq.assign(n, 0);
  x->ep_seq.assign(n, 0);
  if (w.ep > 1) {
    const size_t base = static_cast<size_t>(x->ep_base());
    x->groups.resize(std::max(x->groups.size(), base + static_cast<size_t>(w.L.pp) * (w.L.dp / w.ep) * w.n_c * w.n_t +
                                                    static_cast<size_t>(w.L.pp) * w.ep * w.n_c * w.n_t));
    for (int s = 0; s < w.L.pp; ++s)
      for (int d = 0; d < w.L.dp; ++d)
        for (int cc = 0; cc < w.n_c; ++cc)
          for (int t = 0; t < w.n_t; ++t) {
            const int id = w.sim_id(t, cc, d, s);
            Group& ge = x->groups[x->ep_group(t, cc, d / w.ep, s)];
            ge.members.push_back(id);
            ge.stride = w.L.stride_dp();
            Group& gd = x->groups[x->edp_group(t, cc, d % w.ep, s)];
            gd.members.push_back(id);
            gd.stride = w.L.stride_dp() * w.ep;
            gd.aggregate_nics = c.sw.dp_nics_aggregate;
            if (w.runs(id)) {
              ++ge.joiners;
              ++gd.joiners;
            }
          }
    // Groups no program joins ride along with the group of the rank their first member follows.
    for (int s = 0; s < w.L.pp; ++s)
      for (int cc = 0; cc < w.n_c; ++cc)
        for (int t = 0; t < w.n_t; ++t) {
          for (int e = 0; e < w.L.dp / w.ep; ++e) {
            ride_along(x->ep_group(t, cc, e, s), [&](int lead) { return x->ep_group(t, w.c_of[lead], w.d_of[lead] / w.ep, s); });
          }
          for (int j = 0; j < w.ep; ++j) {
            ride_along(x->edp_group(t, cc, j, s), [&](int lead) { return x->edp_group(t, w.c_of[lead], w.d_of[lead] % w.ep, s); });
          }
        }
  }
  x->streams.resize(n);
  x->sent.assign(2 * n, 0);
  x->received.assign(2 * n, 0);
  x->stats.resize(n);
  const size_t lines = static_cast<size_t>(w.n_d) * w.n_c * w.n_t;
  x->mbox.resize(lines * w.L.pp * w.v * 2);
  for (size_t i = 0; i < x->mbox.size(); ++i) x->mbox[i] = sg4::Mailbox::by_name("mb" + std::to_string(i));
  if ((w.n_d < w.L.dp || w.n_cp < w.n_c) && c.net.pod_gpus > 0 && w.total_ranks > c.net.pod_gpus) {
    x->mirror.resize(2 * n);
    auto pod = [&](int id) { return w.grank[id] / c.net.pod_gpus; };
    for (size_t id = 0; id < n; ++id) {
      const int a = static_cast<int>(id);
      if (w.runs(a)) continue;
      const int t = w.t_of[id], cc = w.c_of[id], d = w.d_of[id], s = w.s_of[id];
      const int lead = w.leader(a);
      for (int dir = 0; dir < 2; ++dir) {
        // Stage-to-stage partner of this rank's stage (the virtual-stage chain wraps from the last
        // stage to the first between chunks); sent when the rank it follows sends.
        const int s2 = dir == 0 ? (s + 1) % w.L.pp : (s + w.L.pp - 1) % w.L.pp;
        if (s2 == s) continue;
        const int b = w.sim_id(t, cc, d, s2);
        if (pod(a) != pod(b)) x->mirror[2 * lead + dir].push_back({a, b});
      }
    }
  }
  for (size_t id = 0; id < n; ++id) {
    if (!w.runs(static_cast<int>(id))) continue;  // hosts without a program only end flows
    const int i = static_cast<int>(id);
    Sim* xp = x.get();
    sg4::Actor::create("rank" + std::to_string(w.grank[id]), x->host[id], [xp, i] { rank_main(xp, i); });
    sg4::Actor::create("dp" + std::to_string(w.grank[id]), x->host[id], [xp, i] { stream_main(xp, i); });
  }
  engine.run();

  // The rank that finishes last sets the step; its breakdown is the report's.
  size_t crit = 0;
  for (size_t id = 1; id < n; ++id)
    if (x->stats[id].end > x->stats[crit].end) crit = id;
  const RankStats& rs = x->stats[crit];
  // The stack's end-of-step metric synchronization (Software::metric_sync_states), as the estimator.
  const double msync = strategies::metric_sync_s(c, p.gpus());
  core.step_s = rs.end + c.sw.step_overhead_s + msync;
  core.compute_s = rs.compute + rs.recompute + rs.optimizer;
  core.optimizer_s = rs.optimizer;
  core.tp_s = rs.tp;
  core.dp_s = rs.dp;
  core.ep_s = rs.ep;
  core.comm_s = rs.tp + rs.dp + rs.ep + msync;
  core.bubble_s = rs.idle;
  const double step = rs.end;
  const double k = w.reduction;
  const double N = static_cast<double>(w.total_ranks);
  const long long pods = c.net.pod_gpus > 0 && w.total_ranks > c.net.pod_gpus ? (w.total_ranks + c.net.pod_gpus - 1) / c.net.pod_gpus : 0;
  // Per-GPU links: every GPU carries what the ranks with a program carry (symmetry); the shared
  // uplinks were given 1/k of their capacity, so their bytes are 1/k of the real ones.
  if (w.L.gpn > 1)
    core.links.push_back(summarize("nvlink", tl.nvlink, link_bytes(*x, tl.nvlink, false), 2 * N, 2 * N / tl.nvlink.size(), 1, step));
  core.links.push_back(summarize("nic", tl.nic, link_bytes(*x, tl.nic, true), 2 * N, 2 * N / tl.nic.size(), 1, step));
  if (pods > 0) {
    std::vector<double> ub;
    for (auto* l : tl.uplink) {
      auto it = x->link_bytes.find(l);
      ub.push_back(it == x->link_bytes.end() ? 0 : it->second);
    }
    core.links.push_back(summarize("pod_uplink", tl.uplink, ub, 2.0 * pods, k, k, step));
  }
  core.flows = x->flows;
  core.spans = std::move(x->spans);
  core.wall_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t_start).count();
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  core.rss = static_cast<double>(ru.ru_maxrss) * 1024.0;
  return core;
}

// ---------------------------------------------------------------------------------------------
// Serialization of Core through the pipe (child -> parent).

struct Writer {
  std::string buf;
  void d(double v) { buf.append(reinterpret_cast<const char*>(&v), sizeof v); }
  void i(long long v) { buf.append(reinterpret_cast<const char*>(&v), sizeof v); }
  void s(const std::string& v) {
    i(static_cast<long long>(v.size()));
    buf.append(v);
  }
};
struct Reader {
  const std::string& buf;
  size_t pos = 0;
  void need(size_t n) {
    if (pos + n > buf.size()) throw std::runtime_error("simulator: truncated result from the simulation process");
  }
  double d() {
    double v;
    need(sizeof v);
    std::memcpy(&v, buf.data() + pos, sizeof v);
    pos += sizeof v;
    return v;
  }
  long long i() {
    long long v;
    need(sizeof v);
    std::memcpy(&v, buf.data() + pos, sizeof v);
    pos += sizeof v;
    return v;
  }
  std::string s() {
    const size_t n = static_cast<size_t>(i());
    need(n);
    std::string v = buf.substr(pos, n);
    pos += n;
    return v;
  }
};

std::string encode(const Core& c) {
  Writer w;
  for (double v : {c.step_s, c.compute_s, c.comm_s, c.bubble_s, c.optimizer_s, c.tp_s, c.dp_s, c.ep_s, c.wall_s, c.rss}) w.d(v);
  w.i(c.flows);
  w.i(c.simulated);
  w.i(static_cast<long long>(c.links.size()));
  for (const auto& l : c.links) {
    w.s(l.tier);
    w.i(l.links);
    for (double v : {l.capacity_Bps, l.bytes, l.mean_util, l.max_util}) w.d(v);
    w.s(l.busiest);
  }
  w.i(static_cast<long long>(c.spans.size()));
  for (const auto& s : c.spans) {
    w.i(s.rank);
    w.i(static_cast<long long>(s.kind));
    w.s(s.name);
    w.d(s.start_s);
    w.d(s.dur_s);
  }
  return w.buf;
}

Core decode(const std::string& buf) {
  Reader r{buf};
  Core c;
  for (double* v : {&c.step_s, &c.compute_s, &c.comm_s, &c.bubble_s, &c.optimizer_s, &c.tp_s, &c.dp_s, &c.ep_s, &c.wall_s, &c.rss}) *v = r.d();
  c.flows = r.i();
  c.simulated = r.i();
  c.links.resize(static_cast<size_t>(r.i()));
  for (auto& l : c.links) {
    l.tier = r.s();
    l.links = static_cast<int>(r.i());
    l.capacity_Bps = r.d();
    l.bytes = r.d();
    l.mean_util = r.d();
    l.max_util = r.d();
    l.busiest = r.s();
  }
  c.spans.resize(static_cast<size_t>(r.i()));
  for (auto& s : c.spans) {
    s.rank = static_cast<int>(r.i());
    s.kind = static_cast<SpanKind>(r.i());
    s.name = r.s();
    s.start_s = r.d();
    s.dur_s = r.d();
  }
  return c;
}

bool write_all(int fd, const char* p, size_t n) {
  while (n > 0) {
    const ssize_t k = ::write(fd, p, n);
    if (k <= 0) return false;
    p += k;
    n -= static_cast<size_t>(k);
  }
  return true;
}

// Runs run_core in a forked child (a SimGrid engine lives once per process). The first byte says
// whether the payload is a result ('R'), a plan error ('P': key, rule) or another error ('E').
Core run_isolated(const model::ModelSpec& m, const hw::Cluster& c, const Plan& p, const SimOptions& o) {
  int fds[2];
  if (::pipe(fds) != 0) throw std::runtime_error("simulator: pipe() failed");
  // Unwritten stdio buffers would be inherited and written twice (SimGrid flushes them at exit).
  std::fflush(nullptr);
  const pid_t pid = ::fork();
  if (pid < 0) throw std::runtime_error("simulator: fork() failed");
  if (pid == 0) {
    ::close(fds[0]);
    std::string out;
    try {
      out = "R" + encode(run_core(m, c, p, o));
    } catch (const PlanError& e) {
      Writer w;
      w.s(e.key());
      w.s(e.rule());
      out = "P" + w.buf;
    } catch (const std::exception& e) {
      out = std::string("E") + e.what();
    }
    const bool ok = write_all(fds[1], out.data(), out.size());
    ::close(fds[1]);
    ::_exit(ok ? 0 : 3);  // the child must not run the parent's atexit handlers or destructors
  }
  ::close(fds[1]);
  std::string buf;
  char chunk[1 << 16];
  for (;;) {
    const ssize_t k = ::read(fds[0], chunk, sizeof chunk);
    if (k < 0 && errno == EINTR) continue;
    if (k <= 0) break;
    buf.append(chunk, static_cast<size_t>(k));
  }
  ::close(fds[0]);
  int status = 0;
  ::waitpid(pid, &status, 0);
  if (buf.empty()) throw std::runtime_error("simulator: the simulation process ended without a result (status " + std::to_string(status) + ")");
  const std::string body = buf.substr(1);
  if (buf[0] == 'P') {
    Reader r{body};
    std::string key = r.s();
    std::string rule = r.s();
    throw PlanError(key, rule);
  }
  if (buf[0] == 'E') throw std::runtime_error("simulator: " + body);
  return decode(body);
}

}  // namespace

SimResult simulate(const model::ModelSpec& m, const hw::Cluster& c, const Plan& p, const SimOptions& o) {
  // Parts of the plan the rank programs do not model yet: refuse rather than time another plan.
  if (p.schedule == strategies::Schedule::zero_bubble && p.cp > 1 && p.cp_algo == strategies::CpAlgo::allgather)
    throw PlanError("schedule", "simulate does not model the zero_bubble schedule with cp_algo=allgather yet (estimate does)");
  if (p.schedule == strategies::Schedule::zero_bubble && p.tp > c.gpus_per_node && p.tp % c.gpus_per_node == 0 && p.tp_mode == strategies::TpMode::d1)
    throw PlanError("schedule", "simulate does not model the zero_bubble schedule with tensor parallelism across nodes yet (estimate does)");
  if (p.ep > 1 && p.zero >= 3)
    throw PlanError("ep", "simulate does not model expert parallelism with zero=3 yet (estimate does)");
  if (p.zero_shard > 0 && p.zero_shard < p.dp)
    throw PlanError("zero_shard", "simulate does not model hybrid sharding (zero_shard) yet (estimate does)");
  if (p.offload != strategies::Offload::none)
    throw PlanError("offload", "simulate does not model offload yet (host/PCIe traffic; estimate does)");
  if (p.schedule == strategies::Schedule::interleaved && p.vpp > 1 && p.microbatches() % p.pp != 0)
    throw PlanError("vpp", "the interleaved schedule needs the microbatches per pipeline (" + std::to_string(p.microbatches()) +
                               ") to be a multiple of pp (" + std::to_string(p.pp) + ")");
  // Bounded work (issue 17): the rank programs hold every pipeline operation of the step (a forward
  // and a backward per microbatch, chunk and stage), so their count bounds the simulator's memory and
  // time; gbs=2^31 used to grow by ~350 MiB/s until killed. Past kMaxPipelineOps: refused, with the figure.
  constexpr double kMaxPipelineOps = 4e6;
  const double pipeline_ops = 2.0 * p.pp * p.vpp * static_cast<double>(p.microbatches());
  if (pipeline_ops > kMaxPipelineOps)
    throw PlanError("gbs", "simulate would schedule " + std::to_string(static_cast<long long>(pipeline_ops)) +
                               " pipeline operations (2 x pp x vpp x microbatches " + std::to_string(p.microbatches()) +
                               "), more than the 4000000 it bounds; lower gbs or use estimate");
  analytic::Estimator est(m, c);
  const strategies::StepReport ana = est.evaluate(p);
  const Core core = o.in_process ? run_core(m, c, p, o) : run_isolated(m, c, p, o);

  SimResult r;
  r.analytic_step_s = ana.time.step_s;
  // Memory and payload counts are the analytic model's (the simulator times the step; it does not
  // model memory); every time is simulated.
  r.report = ana;
  auto& t = r.report.time;
  t.step_s = core.step_s;
  t.compute_s = core.compute_s;
  t.optimizer_s = core.optimizer_s;
  t.comm_exposed_s = core.comm_s;
  t.bubble_s = std::max(0.0, core.step_s - c.sw.step_overhead_s - core.compute_s - core.comm_s);
  t.offload_exposed_s = 0;
  r.report.tp_comm_exposed_s = core.tp_s;
  r.report.ep_comm_exposed_s = core.ep_s;
  r.report.dp_comm_exposed_s = core.dp_s;
  r.report.pp_comm_exposed_s = 0;  // stage-to-stage transfers show up as waits (bubble), not apart
  r.report.cp_comm_exposed_s = 0;  // CP exchanges are inside the TP/CP critical-path spans
  const double gpus = static_cast<double>(p.gpus());
  const double peak = c.device.peak(strategies::compute_dtype(p.precision));
  auto& th = r.report.throughput;
  th.tokens_per_s = static_cast<double>(p.gbs) * m.seq / t.step_s;
  th.model_flops_per_gpu = r.report.model_flops_per_step / t.step_s / gpus;
  th.hw_flops_per_gpu = r.report.hw_flops_per_step / t.step_s / gpus;
  th.mfu = th.model_flops_per_gpu / peak;
  th.hfu = th.hw_flops_per_gpu / peak;
  r.timeline.spans = core.spans;
  r.links = core.links;
  r.total_ranks = p.gpus();
  r.simulated_ranks = core.simulated;
  r.reduction = core.simulated > 0 ? static_cast<int>(p.gpus() / core.simulated) : 1;
  r.flows = core.flows;
  r.wall_s = core.wall_s;
  r.peak_rss_bytes = core.rss;
  return r;
}

}  // namespace scaleplan::des
