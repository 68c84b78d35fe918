#pragma once
// The discrete-event simulator's facade (DESIGN.md sec. 2, simulator/des): one training step of
// (model, cluster, plan) simulated on SimGrid (flow-level network with max-min sharing), returning
// the common StepReport, a per-rank Timeline and a per-link-tier utilization summary. No SimGrid
// type appears here: core code and the CLI include this header only.
//
// A SimGrid engine can be created once per process, so simulate() runs each simulation in a
// forked child process and reads its result back through a pipe (SimOptions::in_process runs it in
// the calling process instead, for a program that simulates once).
#include <string>
#include <vector>

#include "hardware/cluster.hpp"
#include "model/model.hpp"
#include "strategies/plan.hpp"
#include "strategies/step_report.hpp"
#include "strategies/timeline.hpp"

namespace scaleplan::des {

struct SimOptions {
  // Symmetry reduction (README "Discrete-event simulator"): one rank per TP x CP group, with the
  // links those groups share given 1/(tp*cp) of their capacity, and programs only for data-parallel
  // replica 0 (the other replicas' collectives and cross-pod transfers run as flows beside it).
  // All-gather CP groups run as flows: reduced to a loop through the kept rank's own port when the
  // group is one rank per node or inside one node, else every CP rank keeps its host (programs for
  // CP rank 0 only). Exact under max-min sharing when the dropped ranks' traffic is a translate of
  // the kept ones'.
  bool reduce = true;
  // Keep the per-rank spans (the timeline); off makes large runs lighter.
  bool timeline = true;
  // Gradient bucket size in parameters; 0 = Megatron-LM DDP default max(4e7, 1e6 * dp)
  // (megatron/core/distributed/distributed_data_parallel.py).
  double bucket_params = 0;
  // Run the engine in this process (at most once per process); default: in a forked child.
  bool in_process = false;
};

// Utilization of one class of links over the simulated step.
struct LinkTier {
  std::string tier;          // nvlink | nic | pod_uplink
  int links = 0;             // directed links of the full (unreduced) platform
  double capacity_Bps = 0;   // per directed link
  double bytes = 0;          // carried by all links of the tier (full platform)
  double mean_util = 0;      // bytes / (links * capacity * step)
  double max_util = 0;       // busiest link's bytes / (capacity * step)
  std::string busiest;       // its name
};

struct SimResult {
  strategies::StepReport report;     // memory and comm payloads from the analytic model; times simulated
  strategies::Timeline timeline;     // ranks: the simulated (representative) global ranks
  std::vector<LinkTier> links;
  double analytic_step_s = 0;        // the analytic estimate of the same plan, for comparison
  long long total_ranks = 0;         // GPUs of the plan
  long long simulated_ranks = 0;     // ranks that ran a program (after the reduction)
  int reduction = 1;                 // total_ranks / simulated_ranks
  long long flows = 0;               // network transfers simulated
  double wall_s = 0;                 // wall time of the simulation (platform build + run)
  double peak_rss_bytes = 0;         // peak resident memory of the simulating process
};

// `p` must come from strategies::resolve_plan. Throws PlanError for a plan the simulator cannot
// run (e.g. interleaved with microbatches not a multiple of pp) and std::runtime_error if the
// simulation fails.
SimResult simulate(const model::ModelSpec& m, const hw::Cluster& c, const strategies::Plan& p, const SimOptions& o = {});

// Chrome trace JSON (chrome://tracing, Perfetto): one process per rank, thread 0 the compute
// stream, thread 1 the data-parallel communication stream; spans "X" with categories
// compute | recompute | comm | idle | optimizer.
std::string chrome_trace(const strategies::Timeline& t);

}  // namespace scaleplan::des
