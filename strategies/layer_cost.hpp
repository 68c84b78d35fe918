#pragma once
// Per-GPU cost of one transformer layer, the embedding and the LM head for one microbatch: the op
// list of Calculon's style (an op = FLOPs and bytes per phase), timed with the device's
// efficiency model, plus the tensor/context-parallel collectives the layer adds.
#include "hardware/cluster.hpp"
#include "hardware/collectives.hpp"
#include "model/model.hpp"
#include "strategies/plan.hpp"
#include "strategies/tensor_nd.hpp"

namespace scaleplan::strategies {

struct LayerShape {
  double b = 1;       // microbatch
  double s = 1;       // local tokens per sequence (seq / cp)
  double s_kv = 1;    // keys per query (seq)
  int tp = 1;
  int cp = 1;
  bool sp = false;
  bool flash = false;
  bool flash2 = false;  // hw::Software::flash2_attention: the FlashAttention-2 kernel's device efficiency
  bool flash_triton = false;  // hw::Software::flash_triton: FA2's time x the device's Triton-kernel ratios
  // The stack overlaps the sequence-parallel all-gathers / reduce-scatters with the GEMMs they feed or
  // follow (Capabilities::tp_comm_overlap: Transformer Engine userbuffers, torch async TP); set by the
  // estimator when sp is on and the TP group is inside a node (NVLink), as those implementations need.
  bool tp_overlap = false;
  bool eager_elementwise = false;  // hw::Software::eager_elementwise (2019 Megatron-LM eager kernels)
  double rng_copy_s = 0;           // one synchronous CUDA RNG state copy (rng_state_copy_s; 0 = none)
  double act_passes_fwd = 0;       // hw::Software::activation_passes_fwd (extra b x s x h passes per layer)
  double act_passes_bwd = 0;       // hw::Software::activation_passes_bwd
  double metric_logit_bytes = 0;   // hw::Software::metric_logit_bytes (training metrics over the logits)
  bool recompute_early_stop = false;  // hw::Software::recompute_early_stop (non-reentrant checkpoint early stop)
  bool op_sac = false;                // hw::Software::selective_op_sac (torchtitan op-level selective AC)
  Recompute recompute = Recompute::none;
  Precision precision = Precision::bf16;
  TpMode tp_mode = TpMode::d1;
  int tp_depth = 1;
  CpAlgo cp_algo = CpAlgo::ring;
  int ep = 1;
  // FP8 (Transformer Engine) casts of the GEMM operands (strategies/fp8_cast.hpp): hw::Software
  // fp8_norm_fused_cast and fp8_weight_cache.
  bool fp8_norm_fused = false;
  bool fp8_weight_cache = false;
};

// GEMM dtype of a precision (fp8: the linears' GEMMs run in fp8, Transformer Engine) and the
// dtype of the attention core (fp8 recipes keep attention in bf16: TE's default DotProductAttention).
// Time of one synchronous host<->device copy of the CUDA RNG state (hw::Software::rng_state_bytes)
// over the GPU's PCIe link, plus one kernel launch to refill the drained stream; 0 when the stack
// keeps no device-side RNG state.
double rng_state_copy_s(const hw::Cluster& c);
// Share of a dense block's forward matmul FLOPs that torchtitan's op-level selective AC recomputes
// (hw::Software::selective_op_sac): the wk, wo and w3 (w2 ungated) calls.
double op_sac_mm_share(const model::ModelSpec& m);
// Time of the stack's end-of-step metric synchronization over all `gpus` ranks
// (hw::Software::metric_sync_states): per state a barrier (one-element all-reduce) and a one-element
// all-gather, each paying its ring / tree latency; 0 when the stack syncs none or on one GPU.
double metric_sync_s(const hw::Cluster& c, long long gpus);

hw::Dtype gemm_dtype(Precision p);
hw::Dtype attention_dtype(Precision p);

// Forward, dgrad and wgrad time of one linear layer run as `steps` local GEMMs of m x n x k
// (tokens x out x in), and its FLOPs (3 x 2mnk x steps).
struct GemmCost {
  double fwd = 0, dgrad = 0, wgrad = 0, flops = 0;
};
GemmCost linear_gemms(const hw::Device& d, double m, double n, double k, double e, hw::Dtype dt, double steps = 1,
                      double batch = 1);

struct PhaseCost {
  double fwd_s = 0;          // forward compute (GEMMs + attention + element-wise)
  double bwd_s = 0;          // backward compute (activation grad + weight grad)
  double wgrad_s = 0;        // the weight-gradient part of bwd_s (hides TP backward collectives)
  double recompute_s = 0;    // extra forward compute redone in backward (full or selective)
  double fwd_comm_s = 0;     // TP/CP collectives on the forward critical path
  double bwd_comm_s = 0;     // TP/CP collectives issued in backward (may hide under wgrad)
  double bwd_comm_critical_s = 0; // backward collectives on the critical path (Ulysses all-to-alls, CP all-gathers)
  double bwd_comm_exposed_s = 0;  // what of bwd_comm_s the weight-gradient GEMMs do not hide, + critical
  double tp_bwd_exposed_s = -1;   // with TP overlap (LayerShape::tp_overlap): the TP part of it (< 0: no overlap)
  double recompute_comm_s = 0;
  double model_flops = 0;    // forward + backward FLOPs (model convention)
  double recompute_flops = 0;
  double tp_bytes = 0;       // contract payload per microbatch (fwd + bwd + recompute)
  double cp_bytes = 0;
  // The context-parallel parts of the times above (strategies/context: fwd_comm_s, bwd_comm_s,
  // bwd_critical_s of the CP algorithm) and this rank's K/V block, so that the discrete-event
  // simulator can run the CP exchange as flows instead of these durations.
  double cp_fwd_comm_s = 0, cp_bwd_comm_s = 0, cp_bwd_critical_s = 0, cp_kv_block_bytes = 0;
  double ep_a2a_bytes = 0;   // MoE: payload of one dispatch/combine all-to-all (timed by the estimator on the EP group)
  int ep_a2a_fwd = 0, ep_a2a_bwd = 0;  // all-to-all calls per microbatch (forward; backward), recompute adds forward's
  double buffer_bytes = 0;   // transient workspace (TP gather buffers, CP K/V buffers, MoE dispatch buffers)
  // FP8 with the stack's weight cache (LayerShape::fp8_weight_cache): the layer's fp8 weight cast +
  // transpose, run once per step (in the step's first microbatch) rather than in fwd_s. 0 otherwise.
  double fp8_weight_cast_s = 0;
};

// One transformer layer. `tp_groups` from strategies/tensor_nd make_tp_groups for the shape's layout.
PhaseCost layer_cost(const model::ModelSpec& m, const hw::Cluster& c, const LayerShape& sh, const TpGroups& tp_groups,
                     const hw::Group& cp_group);
// Token + position embedding (first stage) and final norm + LM head + cross-entropy (last stage).
PhaseCost embedding_cost(const model::ModelSpec& m, const hw::Cluster& c, const LayerShape& sh, const hw::Group& tp_group);
PhaseCost head_cost(const model::ModelSpec& m, const hw::Cluster& c, const LayerShape& sh, const hw::Group& tp_group);

// Time a collective of comm_s adds when overlapped with compute_s of independent work: the part
// that does not fit under the compute, plus the slowdown overlapped NCCL kernels cause by taking
// SMs and HBM bandwidth from the compute (device efficiency `overlap_slowdown`).
double exposed_under(const hw::Device& d, double comm_s, double compute_s);

// Model FLOPs of one layer's forward per sequence of `s` tokens (all GPUs together), used to check
// Korthikanti's eq. (7): 24 s h^2 + 4 s^2 h for GPT.
double layer_forward_flops(const model::ModelSpec& m, double s);

}  // namespace scaleplan::strategies
