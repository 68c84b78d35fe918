#pragma once
// Heterogeneous memory (issue 6): where model states live when they leave the GPU, and what
// moving them costs per step.
//   offload=optimizer  ZeRO-Offload (Ren et al. 2021, "ZeRO-Offload: Democratizing Billion-Scale
//                      Model Training", sec. 4): fp32 master weights, Adam moments and the optimizer
//                      step on the CPU; 16-bit gradients stream to the host during backward, the
//                      updated 16-bit weights come back over PCIe. Built on ZeRO-1/2 partitioning.
//   offload=params     ZeRO-3-Offload (DeepSpeed 2021): additionally the 16-bit weights live on the
//                      host; each layer's shard is fetched over PCIe for forward and for backward.
//   offload=nvme       ZeRO-Infinity (Rajbhandari et al. 2021, sec. 5): weights and optimizer states
//                      on NVMe, gradients in host memory, staged through pinned host buffers.
//   offload=gemini     chunk-based placement (strategies/chunks.hpp).
// Host resources (CPU FLOP/s, DRAM bandwidth, NVMe bandwidth) are per node in the cluster YAML
// and are shared by the GPUs of the job on that node.
#include <algorithm>

#include "hardware/cluster.hpp"
#include "strategies/memory.hpp"
#include "strategies/plan.hpp"

namespace scaleplan::strategies {

// The plan rules of offload (called by resolve_plan; PlanError naming the key):
//   optimizer needs zero>=1 (ZeRO-Offload partitions the optimizer states as ZeRO-1/2 do);
//   params, nvme and gemini need zero=3 (the weights are partitioned too; gemini's chunks are sharded
//   over the data-parallel ranks); nvme needs NVMe in the cluster (node.nvme_TB, node.nvme_GBps).
void check_offload(const Plan& p, const hw::Cluster& c);

struct OffloadOptions {
  // DeepSpeed's reduce_bucket_size default (5e8 elements, runtime/zero/config.py): the gradient
  // bucket ZeRO-Offload keeps on the GPU while it streams gradients to the host.
  double reduce_bucket_elems = 5e8;
  // Host memory of DeepSpeed's CPU offload per parameter shard (estimate_zero2/zero3_model_states_
  // mem_needs): fp32 master + moments (12) + the fp32 gradient CPU Adam reads (4) [+ the 16-bit
  // weight with params offload (2)], times additional_buffer_factor 1.5 (pinned buffers and
  // allocator slack). DeepSpeed's max(4 x GPUs, ...) term is the one-time fp32 model load, not a
  // training-step peak, and is left out.
  double host_grad_bytes = 4;
  double host_buffer_factor = 1.5;
  // ZeRO-Infinity's pinned staging buffers for NVMe parameter swapping (DeepSpeed offload_param
  // defaults buffer_count=5, buffer_size=1e8 elements).
  double nvme_buffer_count = 5, nvme_buffer_elems = 1e8;
  // CPU Adam per parameter: ~14 FLOPs (two moment updates 7, bias-corrected update with sqrt and
  // divide 5, weight decay 2; DeepSpeed csrc/adam/cpu_adam.cpp Step) and 32 bytes of DRAM traffic
  // (read fp32 master, m, v, grad 16; write master, m, v 12; write the 16-bit weight 2; grad-norm
  // pass 2), the same byte count the estimator charges a GPU optimizer step.
  double cpu_adam_flops_per_param = 14;
  double cpu_adam_bytes_per_param = 32;
};

// Model states of one GPU under an offload mode: what stays on the GPU, this GPU's share of host
// memory and of NVMe (bytes). P: parameters the GPU holds before ZeRO sharding; largest_layer: the
// largest layer's parameters (ZeRO-3 gathers one at a time). mode none/gemini: GPU only (gemini's
// placement is chunks.hpp's).
struct OffloadStates {
  ModelStates gpu;
  double host = 0, nvme = 0;
};
// (Inline: the estimator calls it for every stage of every plan the search evaluates.)
inline OffloadStates offload_states(const Recipe& r, Offload mode, double P, int zero, int dp, double largest_layer,
                                    const OffloadOptions& o = {}) {
  const double n = dp > 0 ? dp : 1;
  OffloadStates s;
  const double host_grad = o.host_grad_bytes, f = o.host_buffer_factor;
  switch (mode) {
    case Offload::none:
    case Offload::gemini:
      s.gpu = model_states(r, P, zero, dp, largest_layer);
      return s;
    case Offload::optimizer:
      // ZeRO-Offload (Ren et al. 2021 sec. 4.1, Fig. 2): 16-bit weights stay on the GPU (2M); the
      // gradients leave bucket by bucket (the GPU keeps one reduction bucket); fp32 master weights,
      // momentum and variance (12M) and the gradient partition live on the host, partitioned over
      // the data-parallel ranks as ZeRO-2 partitions them (sec. 4.3). DeepSpeed's estimator
      // (estimate_zero2_model_states_mem_needs, cpu_offload): GPU 2P.
      s.gpu.params = r.param_bytes * P;
      s.gpu.grads = r.grad_bytes * std::min(P, o.reduce_bucket_elems);
      s.gpu.optimizer = 0;
      s.host = f * (r.optimizer_bytes + host_grad) * P / n;  // DeepSpeed: 16 x 1.5 = 24 B/param
      return s;
    case Offload::params:
      // ZeRO-3-Offload: the GPU holds only the gathered layer in flight (DeepSpeed
      // estimate_zero3_model_states_mem_needs, params+optimizer offloaded: GPU 4 P_L); the host holds
      // this rank's 16-bit weights, optimizer states and gradients (DeepSpeed: 18 x 1.5 = 27 B/param).
      s.gpu.params = (r.param_bytes + r.grad_bytes) * largest_layer;
      s.host = f * (r.param_bytes + r.optimizer_bytes + host_grad) * P / n;
      return s;
    case Offload::nvme:
      // ZeRO-Infinity (Rajbhandari et al. 2021 sec. 5.1): weights and optimizer states on NVMe,
      // 16-bit gradients in host memory; weights pass through pinned staging buffers on the host.
      s.gpu.params = (r.param_bytes + r.grad_bytes) * largest_layer;
      s.nvme = (r.param_bytes + r.optimizer_bytes) * P / n;
      s.host = r.grad_bytes * P / n + r.param_bytes * o.nvme_buffer_count * o.nvme_buffer_elems;
      return s;
  }
  return s;
}

// What one GPU gets of its node's host resources when `ranks` GPUs of the job share the node.
struct HostShare {
  double flops = 0;     // CPU FLOP/s
  double mem_bw = 0;    // host DRAM B/s
  double pcie = 0;      // host<->device B/s: the GPU's link, capped by its share of DRAM bandwidth
  double nvme_bw = 0;   // B/s
  double memory = 0;    // host bytes
  double nvme = 0;      // NVMe bytes
};
HostShare host_share(const hw::Host& h, int ranks);

// CPU Adam on `params` parameters with the host share (roofline: max of FLOP and DRAM time).
double cpu_adam_time(double params, const HostShare& s, const OffloadOptions& o = {});

// One step's offload traffic and its exposed time for one GPU.
struct OffloadStepInput {
  double params_shard = 0;      // parameters this GPU updates (P/dp, its ZeRO partition)
  double param_bytes = 2;       // bytes per working weight (16-bit: 2)
  double grad_bytes = 2;        // bytes per working gradient
  double optimizer_bytes = 12;  // bytes per parameter of optimizer state (fp32 master + moments)
  long long microbatches = 1;
  double compute_per_mb_s = 0;  // forward + backward of one microbatch on the slowest stage
  double backward_per_mb_s = 0; // the backward part (the window gradients stream out in)
};
struct OffloadStep {
  double pcie_bytes = 0;   // host<->device bytes per step (both directions)
  double nvme_bytes = 0;   // NVMe read + write bytes per step
  double cpu_adam_s = 0;   // CPU optimizer time
  double pcie_s = 0, nvme_s = 0;
  double exposed_s = 0;    // what the step waits for beyond the GPU's compute
};
OffloadStep offload_step(Offload mode, const HostShare& s, const OffloadStepInput& in, const OffloadOptions& o = {});

}  // namespace scaleplan::strategies
