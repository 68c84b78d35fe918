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
  double host_s = 0;  // per-step host work outside the model (software step overhead); step = compute + comm + bubble + offload + host
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

// What offload moves per step and where its states live (issue 6, strategies/offload.hpp and
// chunks.hpp); extra detail, not a required key of the JSON contract. Per GPU unless noted.
struct OffloadDetail {
  double pcie_bytes = 0, nvme_bytes = 0;   // host<->device and NVMe bytes per step
  double cpu_adam_s = 0;                   // CPU optimizer time per step
  double host_capacity = 0, nvme_capacity = 0;  // this GPU's share of the node's host memory / NVMe
  int ranks_per_node = 1;                  // GPUs of the job sharing one node's host
  bool host_over = false, nvme_over = false;
  // offload=gemini: the chunk configuration and the steady-state placement of this GPU's shards.
  double chunk_elems = 0, chunk_waste = 0;  // elements per chunk, wasted share of the chunks
  double chunks = 0, fp16_chunks_on_gpu = 0, os_chunks_on_gpu = 0;
  double host_warmup = 0;                   // host bytes while the warm-up iteration runs
  // Side by side, the same stage under static placement: ZeRO-3 model states on the GPU, and the
  // host bytes of ZeRO-3-Offload (strategies/offload.hpp).
  double static_zero3_gpu = 0, static_offload_host = 0;
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
  double ep_comm_exposed_s = 0;  // MoE dispatch/combine all-to-alls (exposed)
  int most_loaded_stage = 0;
  OffloadDetail offload;
  int slowest_stage = 0;  // the stage whose time and comm_bytes_per_gpu are reported
};

}  // namespace scaleplan::strategies
