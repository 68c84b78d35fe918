#include "strategies/expert.hpp"

#include <string>

#include "common/errors.hpp"
#include "strategies/layer_cost.hpp"

namespace scaleplan::strategies {

double expert_width(const model::ModelSpec& m) {
  return static_cast<double>(m.moe.expert_ffn > 0 ? m.moe.expert_ffn : m.ffn);
}
double shared_experts_width(const model::ModelSpec& m) {
  if (!m.moe.enabled() || m.moe.shared_experts <= 0) return 0;
  const double one = m.moe.shared_expert_ffn > 0 ? static_cast<double>(m.moe.shared_expert_ffn) : expert_width(m);
  return m.moe.shared_experts * one;
}

void check_expert_parallel(const Plan& p, const model::ModelSpec& m) {
  if (m.moe.enabled() && p.tp > 1) {  // Megatron expert tensor parallelism = tp splits each expert's FFN width
    const long long w = static_cast<long long>(expert_width(m)), sw = static_cast<long long>(shared_experts_width(m));
    if (w % p.tp != 0) throw PlanError("tp", "tp=" + std::to_string(p.tp) + " does not divide the expert width " + std::to_string(w));
    if (sw % p.tp != 0)
      throw PlanError("tp", "tp=" + std::to_string(p.tp) + " does not divide the shared experts' width " + std::to_string(sw));
  }
  if (p.ep <= 1) return;
  if (!m.moe.enabled()) throw PlanError("ep", "expert parallelism needs an MoE model (this model is dense)");
  if (m.moe.experts % p.ep != 0)
    throw PlanError("ep", "ep=" + std::to_string(p.ep) + " does not divide experts=" + std::to_string(m.moe.experts));
  if (p.dp % p.ep != 0)
    throw PlanError("ep", "ep=" + std::to_string(p.ep) + " must divide dp=" + std::to_string(p.dp) +
                              " (expert-parallel groups are carved out of the data-parallel ranks)");
}

MoeCost moe_cost(const model::ModelSpec& m, const hw::Device& d, const LayerShape& sh) {
  MoeCost r;
  const hw::Dtype dt = gemm_dtype(sh.precision);
  const double e = bytes_per_element(sh.precision);
  const double t = sh.tp, h = m.hidden;
  const double T = sh.b * sh.s;
  const double E = m.moe.experts, k = m.moe.top_k, cf = m.moe.capacity_factor;
  const double local_experts = E / sh.ep;
  const double routed = T * k * cf;                    // token copies this rank dispatches (padded to capacity)
  r.tokens_per_expert = routed * sh.ep / E;            // per local expert, from the ep ranks of the group
  // Router: logits = x W_r (T x E x h), replicated over TP (a small GEMM).
  const GemmCost router = linear_gemms(d, T, E, h, e, dt);
  const double w = expert_width(m), gate = m.gated() ? 2 : 1;
  const GemmCost fc1 = linear_gemms(d, r.tokens_per_expert, w * gate / t, h, e, dt, 1, local_experts);
  const GemmCost fc2 = linear_gemms(d, r.tokens_per_expert, h, w / t, e, dt, 1, local_experts);
  // Shared experts (DeepSeekMoE sec. 3.2; Megatron-Core SharedExpertMLP): one dense, TP-split MLP of the
  // shared experts' total width over all T tokens of the rank, as the dense FFN of tensor_nd layer_1d.
  // Qwen2-MoE's shared-expert gate, Linear(h, 1), is a T x 1 x h GEMM and is left out.
  const double sw = shared_experts_width(m);
  GemmCost s1, s2;
  if (sw > 0) {
    s1 = linear_gemms(d, T, sw * gate / t, h, e, dt);
    s2 = linear_gemms(d, T, h, sw / t, e, dt);
  }
  r.fwd_s = router.fwd + fc1.fwd + fc2.fwd + s1.fwd + s2.fwd;
  r.dgrad_s = router.dgrad + fc1.dgrad + fc2.dgrad + s1.dgrad + s2.dgrad;
  r.wgrad_s = router.wgrad + fc1.wgrad + fc2.wgrad + s1.wgrad + s2.wgrad;
  // All-to-all payload: the rank's routed token copies of h elements. With Megatron SP the tokens
  // are already split over TP; without it every TP rank dispatches the same tokens to its TP shard
  // of the experts.
  r.a2a_bytes = sh.ep > 1 ? e * routed * h / (sh.sp ? t : 1) : 0;
  r.buffer_bytes = 2 * e * routed * h / (sh.sp ? t : 1);
  return r;
}

}  // namespace scaleplan::strategies
