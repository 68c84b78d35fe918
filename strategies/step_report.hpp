#pragma once
// The one result type of the estimator, the simulator and the executor (DESIGN.md sec. 1 and 3).
#include <string>

#include "strategies/plan.hpp"

namespace scaleplan::strategies {

struct MemoryBreakdown {  // bytes per GPU, the most-loaded GPU
  double params = 0, grads = 0, optimizer = 0, activations = 0, buffers = 0;
  double capacity = 0, host = 0, nvme = 0;
  double total() const { return params + grads + optimizer + activations + buffers; }
};

struct TimeBreakdown {  // seconds per optimizer step
  double step_s = 0, compute_s = 0, comm_exposed_s = 0, bubble_s = 0, offload_exposed_s = 0;
  double optimizer_s = 0;  // included in compute_s
};

struct CommBytes {  // payload one GPU hands to communication calls per step (contract definition)
  double tp = 0, pp = 0, dp = 0, cp = 0, ep = 0;
};

struct Throughput {
  double tokens_per_s = 0;
  double model_flops_per_gpu = 0;  // FLOP/s per GPU, model FLOPs (no recompute)
  double hw_flops_per_gpu = 0;     // FLOP/s per GPU, incl. recompute
  double mfu = 0, hfu = 0;
};

struct StepReport {
  bool feasible = true;
  std::string reason;
  Plan plan;
  MemoryBreakdown memory;
  TimeBreakdown time;
  CommBytes comm;
  Throughput throughput;
  // Extra detail for people (not part of the JSON contract's required keys).
  double model_flops_per_step = 0, hw_flops_per_step = 0;
  double tp_comm_exposed_s = 0, dp_comm_exposed_s = 0, pp_comm_exposed_s = 0, cp_comm_exposed_s = 0;
  int most_loaded_stage = 0;
  int slowest_stage = 0;  // the stage whose time and comm_bytes_per_gpu are reported
};

}  // namespace scaleplan::strategies
