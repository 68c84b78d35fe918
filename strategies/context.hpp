#pragma once
// Sequence / context parallelism, one registry entry per algorithm (plan key cp_algo). The sequence
// of every microbatch is split over `cp` ranks (seq/cp local tokens: activations and all non-attention
// compute scale by 1/cp); attention needs every key, so each algorithm moves K and V (or heads):
//  ring            ring attention / Megatron context parallel (Liu et al. 2023, "Ring Attention with
//                  Blockwise Transformers"): K/V blocks pass around the ring, overlapped with the
//                  block computation; exposed only where a block's transfer outlasts its compute.
//  ring_self_attn  ring self-attention (Li et al. 2021, "Sequence Parallelism: Long Sequence Training
//                  from System Perspective", sec. 3.1): K, then V circulate cp-1 steps each for QK^T
//                  and for AV, not overlapped with compute.
//  ulysses         DeepSpeed-Ulysses (Jacobs et al. 2023, sec. 3): all-to-all from sequence- to
//                  head-sharding for Q, K, V and back for the output; heads % (tp*cp) == 0.
//  allgather       Llama 3 (Llama Team 2024, sec. 3.3.2): all-gather K and V, attend the local Q chunk;
//                  the all-gather is exposed on the critical path; backward reduce-scatters dK, dV.
// Megatron sequence parallelism (sp=on, Korthikanti 2022) is part of 1d tensor parallelism
// (strategies/tensor_nd), not of this component.
#include "hardware/cluster.hpp"
#include "hardware/collectives.hpp"
#include "model/model.hpp"
#include "strategies/plan.hpp"

namespace scaleplan::strategies {

struct LayerShape;

struct CpCost {
  double fwd_comm_s = 0;        // exposed in forward
  double bwd_comm_s = 0;        // backward, may hide under the weight-gradient GEMMs
  double bwd_critical_s = 0;    // backward, on the critical path
  double cp_bytes = 0;          // contract payload per microbatch (forward + backward)
  double recompute_cp_bytes = 0;  // the forward's again under full recompute
  double buffer_bytes = 0;      // transient K/V (or head-sharded Q/K/V/O) buffers
};

struct CpModel {
  CpAlgo algo;
  const char* name;
  // Throws PlanError naming the key when the model does not allow the algorithm at this degree.
  void (*check)(const Plan& p, const model::ModelSpec& m);
  // One layer, one microbatch. attn_fwd_s / attn_bwd_s: the local attention-core times (what a
  // ring step can hide under). kv_block: this rank's K and V of its local tokens (bytes);
  // q_bytes: its Q (= O) of its local tokens.
  CpCost (*cost)(const model::ModelSpec& m, const hw::Cluster& c, const LayerShape& sh, double attn_fwd_s, double attn_bwd_s,
                 double kv_block, double q_bytes, const hw::Group& cp_group);
};

const CpModel& cp_model(CpAlgo algo);

}  // namespace scaleplan::strategies
