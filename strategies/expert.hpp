#pragma once
// Expert parallelism for MoE layers (plan key ep). Sources: GShard (Lepikhin et al. 2021, sec. 2.2:
// top-2 gating, expert capacity = capacity_factor x tokens x top_k / experts, all-to-all dispatch and
// combine), Switch Transformer (Fedus et al. 2022, sec. 2.2: capacity factor, dropped tokens),
// DeepSpeed-MoE (Rajbhandari et al. 2022, sec. 4: expert parallelism carved out of data parallelism,
// expert-data-parallel groups of dp/ep for the expert weights).
// Placement (documented assumption, as DeepSpeed-MoE and Megatron-core): the EP group is `ep`
// consecutive data-parallel ranks (ep | dp); expert weights are split over ep (and over tp, Megatron
// expert tensor parallelism = tp); their gradients are reduced over the dp/ep ranks that hold the
// same experts; the dense part (attention, norms, router, embeddings) stays under DP/TP as before.
#include "hardware/device.hpp"
#include "model/model.hpp"
#include "strategies/plan.hpp"

namespace scaleplan::strategies {

struct LayerShape;

struct MoeCost {
  double fwd_s = 0, dgrad_s = 0, wgrad_s = 0;  // router + expert GEMMs on this rank
  double a2a_bytes = 0;       // payload of one dispatch (or combine) all-to-all per microbatch
  int a2a_fwd = 2, a2a_bwd = 2;  // dispatch + combine in forward; their mirrors in backward
  double buffer_bytes = 0;    // permuted-token buffers (dispatch out + combine in)
  double tokens_per_expert = 0;  // capacity: tokens each local expert computes
};

// Tokens one rank routes per microbatch: T = b s (local tokens), each to top_k experts, padded to
// capacity_factor (GShard: capacity C = cf * T * k / E per expert and source rank).
// With ep ranks in the group each holding E/ep experts, a rank computes ep * C tokens per local
// expert: T k cf tokens in total, in E/ep expert GEMMs (a grouped GEMM).
MoeCost moe_cost(const model::ModelSpec& m, const hw::Device& d, const LayerShape& sh);

// Fine-grained MoE widths (model/model.hpp MoeSpec; DeepSeekMoE, arXiv 2401.06066 sec. 3; Qwen3-MoE,
// Megatron-Core moe_ffn_hidden_size / moe_shared_expert_intermediate_size): one routed expert's
// intermediate size (expert_ffn, or ffn as in Mixtral/GShard), and the shared experts' total
// intermediate size, which Megatron-Core's SharedExpertMLP runs as one dense MLP over every token.
double expert_width(const model::ModelSpec& m);
double shared_experts_width(const model::ModelSpec& m);

// Throws PlanError naming "ep" for an invalid expert-parallel degree.
void check_expert_parallel(const Plan& p, const model::ModelSpec& m);

}  // namespace scaleplan::strategies
