#include "strategies/expert.hpp"

#include <string>

#include "common/errors.hpp"
#include "strategies/layer_cost.hpp"

namespace scaleplan::strategies {

void check_expert_parallel(const Plan& p, const model::ModelSpec& m) {
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
  const double up = static_cast<double>(m.ffn) * (m.gated() ? 2 : 1) / t;
  const GemmCost fc1 = linear_gemms(d, r.tokens_per_expert, up, h, e, dt, 1, local_experts);
  const GemmCost fc2 = linear_gemms(d, r.tokens_per_expert, h, m.ffn / t, e, dt, 1, local_experts);
  r.fwd_s = router.fwd + fc1.fwd + fc2.fwd;
  r.dgrad_s = router.dgrad + fc1.dgrad + fc2.dgrad;
  r.wgrad_s = router.wgrad + fc1.wgrad + fc2.wgrad;
  // All-to-all payload: the rank's routed token copies of h elements. With Megatron SP the tokens
  // are already split over TP; without it every TP rank dispatches the same tokens to its TP shard
  // of the experts.
  r.a2a_bytes = sh.ep > 1 ? e * routed * h / (sh.sp ? t : 1) : 0;
  r.buffer_bytes = 2 * e * routed * h / (sh.sp ? t : 1);
  return r;
}

}  // namespace scaleplan::strategies
