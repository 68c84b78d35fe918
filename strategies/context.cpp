#include "strategies/context.hpp"

#include <algorithm>
#include <string>

#include "common/errors.hpp"
#include "strategies/layer_cost.hpp"

namespace scaleplan::strategies {

namespace {

void check_none(const Plan&, const model::ModelSpec&) {}

// Ring attention (Liu et al. 2023 sec. 3; Megatron-LM context parallel): cp-1 steps, each sends this
// rank's K/V block to the next rank while computing attention against the block it holds; a step
// is exposed only by what its transfer outlasts the block computation (FORMULAS.md: hidden when the
// block is >= FLOPS/bandwidth tokens). Backward circulates K/V and their gradients (2 x the bytes)
// against about twice the compute. Double-buffered K/V blocks: 2 blocks live (send + receive).
CpCost cost_ring(const model::ModelSpec&, const hw::Cluster& c, const LayerShape& sh, double attn_fwd, double,
                 double kv_block, double, const hw::Group& g) {
  CpCost r;
  const double steps = sh.cp - 1;
  const double xfer = hw::collective_time(c, hw::Coll::send_recv, kv_block, g);
  const double block_compute = attn_fwd / sh.cp;
  r.fwd_comm_s = steps * std::max(0.0, xfer - block_compute);
  r.bwd_comm_s = 2 * steps * std::max(0.0, xfer - 2 * block_compute);  // K,V and their grads
  r.cp_bytes = steps * kv_block * 3;
  r.recompute_cp_bytes = steps * kv_block;
  r.buffer_bytes = 2 * kv_block;
  return r;
}

// Ring self-attention (Li et al. 2021 sec. 3.1, Fig. 2): K circulates for QK^T, then V for AV, each
// cp-1 point-to-point steps of half the K/V block; the computation waits for each transfer (not
// overlapped). Backward: K and V again to recompute the partial products, plus dK and dV (2 x).
CpCost cost_ring_self_attn(const model::ModelSpec&, const hw::Cluster& c, const LayerShape& sh, double, double, double kv_block,
                           double, const hw::Group& g) {
  CpCost r;
  const double steps = sh.cp - 1;
  const double half = 0.5 * kv_block;  // K or V
  const double xfer = hw::collective_time(c, hw::Coll::send_recv, half, g);
  r.fwd_comm_s = 2 * steps * xfer;
  r.bwd_critical_s = 4 * steps * xfer;
  r.cp_bytes = 6 * steps * half;
  r.recompute_cp_bytes = 2 * steps * half;
  r.buffer_bytes = kv_block;
  return r;
}

// DeepSpeed-Ulysses (Jacobs et al. 2023 sec. 3.1): an all-to-all turns Q, K, V from sequence- to
// head-sharded (each rank gets all tokens of heads/cp heads), attention runs locally, and one
// all-to-all brings the output back; backward mirrors the four. The all-to-alls are on the critical
// path. Each moves this rank's local Q/K/V (or O) tensor (FORMULAS.md: "each moving s b h / cp").
void check_ulysses(const Plan& p, const model::ModelSpec& m) {
  if (p.cp <= 1) return;
  const long long split = p.tp_mode == TpMode::d1 ? p.tp : tp_layout(p.tp_mode, p.tp, p.tp_depth).q;
  if (m.heads % (split * p.cp) != 0)
    throw PlanError("cp_algo", "ulysses shards heads over cp: heads=" + std::to_string(m.heads) + " must be divisible by " +
                                   (p.tp_mode == TpMode::d1 ? "tp*cp=" : "q*cp=") + std::to_string(split * p.cp));
}
CpCost cost_ulysses(const model::ModelSpec&, const hw::Cluster& c, const LayerShape&, double, double, double kv_block, double q_bytes,
                    const hw::Group& g) {
  // Forward: Q, K, V in (three all-to-alls), O out (one, Q's size); backward: dO in, dQ, dK, dV out.
  CpCost r;
  const double t_q = hw::collective_time(c, hw::Coll::all_to_all, q_bytes, g);
  const double t_kv = hw::collective_time(c, hw::Coll::all_to_all, 0.5 * kv_block, g);
  r.fwd_comm_s = 2 * t_q + 2 * t_kv;
  r.bwd_critical_s = 2 * t_q + 2 * t_kv;
  const double per_pass = 2 * q_bytes + kv_block;
  r.cp_bytes = 2 * per_pass;
  r.recompute_cp_bytes = per_pass;
  r.buffer_bytes = per_pass;  // head-sharded copies of Q, K, V, O
  return r;
}

// All-gather CP (Llama 3 sec. 3.3.2: "we first all-gather the key (K) and value (V) tensors, and then
// compute attention output for the local query (Q) tensor chunk ... the all-gather communication
// latency is exposed in the critical path"). Backward all-gathers K, V again (the gathered copy is
// not kept: it would be cp x the local K/V per layer) and reduce-scatters dK, dV, which the
// remaining backward (QKV weight gradient) can hide. Buffers: the gathered K/V and their gradients.
CpCost cost_allgather(const model::ModelSpec&, const hw::Cluster& c, const LayerShape& sh, double, double, double kv_block,
                      double, const hw::Group& g) {
  CpCost r;
  const double full = kv_block * sh.cp;  // all-gather output / reduce-scatter input
  const double ag = hw::collective_time(c, hw::Coll::all_gather, full, g);
  const double rs = hw::collective_time(c, hw::Coll::reduce_scatter, full, g);
  r.fwd_comm_s = ag;
  r.bwd_critical_s = ag;
  r.bwd_comm_s = rs;
  r.cp_bytes = 3 * full;
  r.recompute_cp_bytes = full;
  r.buffer_bytes = 2 * full;
  return r;
}

const CpModel kCpModels[] = {
    {CpAlgo::ring, "ring", check_none, cost_ring},
    {CpAlgo::ulysses, "ulysses", check_ulysses, cost_ulysses},
    {CpAlgo::ring_self_attn, "ring_self_attn", check_none, cost_ring_self_attn},
    {CpAlgo::allgather, "allgather", check_none, cost_allgather},
};

}  // namespace

const CpModel& cp_model(CpAlgo algo) {
  for (const auto& m : kCpModels)
    if (m.algo == algo) return m;
  return kCpModels[0];
}

}  // namespace scaleplan::strategies
