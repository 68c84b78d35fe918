#include "strategies/layer_cost.hpp"

#include <algorithm>

namespace scaleplan::strategies {

namespace {

// A GEMM of m x n x k: 2mnk FLOPs; HBM traffic reads A (m k), B (k n), writes C (m n).
struct Gemm {
  double m, n, k;
  double flops() const { return 2 * m * n * k; }
  double bytes(double e) const { return e * (m * k + k * n + m * n); }
};

// A batched GEMM runs as one kernel over all batches (cuBLAS strided-batched).
double gemm_t(const hw::Device& d, const Gemm& g, double e, hw::Dtype dt, double batch = 1) {
  return d.gemm_time(batch * g.flops(), batch * g.bytes(e), dt);
}

// Forward, dgrad and wgrad of one linear layer.
struct LinearCost {
  double fwd = 0, dgrad = 0, wgrad = 0, flops = 0;
};
LinearCost linear(const hw::Device& d, double tokens, double n_out, double k_in, double e, hw::Dtype dt) {
  LinearCost c;
  c.fwd = gemm_t(d, {tokens, n_out, k_in}, e, dt);
  c.dgrad = gemm_t(d, {tokens, k_in, n_out}, e, dt);
  c.wgrad = gemm_t(d, {k_in, n_out, tokens}, e, dt);
  c.flops = 3 * 2 * tokens * n_out * k_in;
  return c;
}

}  // namespace

double exposed_under(const hw::Device& d, double comm_s, double compute_s) {
  const double hidden = std::min(comm_s, compute_s);
  return (comm_s - hidden) + d.eff.overlap_slowdown * hidden;
}

double layer_forward_flops(const model::ModelSpec& m, double s) {
  const double h = m.hidden;
  const double experts = m.moe.enabled() ? m.moe.top_k : 1;
  const double gemm = 2 * s * (h * (h + 2.0 * m.kv_dim()) + h * h + experts * m.mlp_matrices() * h * m.ffn);
  const double attn = 4 * s * s * h;  // QK^T and AV, full (non-causal) count: Megatron / Korthikanti convention
  return gemm + attn;
}

PhaseCost layer_cost(const model::ModelSpec& m, const hw::Cluster& c, const LayerShape& sh, const hw::Group& tp_group,
                     const hw::Group& cp_group) {
  const hw::Device& d = c.device;
  const hw::Dtype dt = compute_dtype(sh.precision);
  const double e = bytes_per_element(sh.precision);
  const double t = sh.tp;
  const double T = sh.b * sh.s;  // tokens this GPU processes per microbatch
  const double h = m.hidden;
  const double rep = sh.sp ? 1.0 / t : 1.0;  // element-wise work outside the TP region splits only with SP
  const double experts = m.moe.enabled() ? m.moe.top_k : 1;
  const double drop = m.dropout ? 1.0 : 0.0;
  PhaseCost pc;

  // GEMMs (Megatron column/row-parallel linears).
  const LinearCost qkv = linear(d, T, (h + 2.0 * m.kv_dim()) / t, h, e, dt);
  const LinearCost proj = linear(d, T, h, h / t, e, dt);
  const double up_cols = static_cast<double>(m.ffn) * (m.activation == model::Activation::swiglu ? 2 : 1) / t;
  const LinearCost fc1 = linear(d, T, up_cols, h, e, dt);
  const LinearCost fc2 = linear(d, T, h, m.ffn / t, e, dt);
  double fwd = qkv.fwd + proj.fwd + experts * (fc1.fwd + fc2.fwd);
  double dgrad = qkv.dgrad + proj.dgrad + experts * (fc1.dgrad + fc2.dgrad);
  double wgrad = qkv.wgrad + proj.wgrad + experts * (fc1.wgrad + fc2.wgrad);

  // Attention core per GPU: heads/t heads, s queries against s_kv keys.
  const double heads = static_cast<double>(m.heads) / t;
  const double dh = static_cast<double>(m.head_dim());
  const double attn_flops_fwd = 4 * sh.b * heads * sh.s * sh.s_kv * dh;
  double attn_fwd = 0, attn_bwd = 0;
  if (sh.flash) {
    // Fused kernel skips the masked (causal) half of the blocks: FlashAttention-2 sec. 3.1.
    attn_fwd = d.flash_time(0.5 * attn_flops_fwd, dt);
    attn_bwd = d.flash_time(0.5 * 2.5 * attn_flops_fwd, dt);  // bwd = 2.5x fwd FLOPs (recomputes S=QK^T)
  } else {
    const double bh = sh.b * heads;
    const Gemm qk{sh.s, sh.s_kv, dh}, av{sh.s, dh, sh.s_kv};
    const double scores = bh * sh.s * sh.s_kv;
    // scaled-masked softmax (fused): read + write the scores; dropout: read, write, 1-byte mask.
    const double softmax_bytes = 2 * e * scores;
    const double dropout_bytes = drop * (2 * e + 1) * scores;
    attn_fwd = gemm_t(d, qk, e, dt, bh) + gemm_t(d, av, e, dt, bh) + d.stream_time(softmax_bytes) + d.stream_time(dropout_bytes);
    // backward: two GEMMs per forward GEMM; softmax backward reads y, dy and writes dx (1.5x);
    // dropout backward reads dy and the mask and writes dx.
    attn_bwd = 2 * (gemm_t(d, qk, e, dt, bh) + gemm_t(d, av, e, dt, bh)) + d.stream_time(1.5 * softmax_bytes) +
               d.stream_time(drop * (2 * e + 1) * scores);
  }

  // Element-wise (memory-bound) ops: norms, bias+dropout+residual, activation, rotary embedding.
  const double norm_bytes = 2 * e * T * h * rep;                      // read x, write y
  const double bdr_bytes = (3 * e + drop) * T * h * rep;              // read 2, write 1 (+ mask)
  const double act_in = m.activation == model::Activation::swiglu ? 2 : 1;
  const double act_bytes = experts * (act_in + 1) * e * T * m.ffn / t;  // read input(s), write output
  const double rope_bytes = m.position == model::Position::rope ? 2 * e * T * (h + m.kv_dim()) / t : 0;
  const double elem_fwd = 2 * d.stream_time(norm_bytes) + 2 * d.stream_time(bdr_bytes) + d.stream_time(act_bytes) +
                          d.stream_time(rope_bytes);
  // Backward of norms and activations reads input and output-grad and writes input-grad (1.5x);
  // dropout/residual backward moves about the same bytes as forward.
  const double elem_bwd = 2 * d.stream_time(1.5 * norm_bytes) + 2 * d.stream_time(bdr_bytes) +
                          d.stream_time(1.5 * act_bytes) + d.stream_time(rope_bytes);

  pc.fwd_s = fwd + attn_fwd + elem_fwd;
  pc.bwd_s = dgrad + wgrad + attn_bwd + elem_bwd;
  pc.wgrad_s = wgrad;

  // Tensor-parallel collectives (Megatron 1D): 2 all-reduces of T*h in forward and 2 in backward,
  // or with SP 2 all-gathers + 2 reduce-scatters each way (same bytes on the wire).
  const double act = e * T * h;
  if (t > 1) {
    const double ag = hw::collective_time(c, hw::Coll::all_gather, act, tp_group);
    const double rs = hw::collective_time(c, hw::Coll::reduce_scatter, act, tp_group);
    const double ar = hw::collective_time(c, hw::Coll::all_reduce, act, tp_group);
    pc.fwd_comm_s = sh.sp ? 2 * (ag + rs) : 2 * ar;
    // Backward: the mirrored collectives; with SP Megatron also re-gathers the two sharded GEMM
    // inputs (QKV and FC1) for the weight gradients (Korthikanti 2022 sec. 4.2.2).
    pc.bwd_comm_s = sh.sp ? 2 * (ag + rs) + 2 * ag : 2 * ar;
    pc.tp_bytes = sh.sp ? 10 * act : 4 * act;  // fwd + bwd payloads
  }

  // Context parallel (ring attention): K and V blocks pass around the cp ring, overlapped with
  // the block computation; exposed only where a block's transfer outlasts its compute (Liu et al. 2023).
  if (sh.cp > 1) {
    const double kv_block = 2 * e * sh.b * sh.s * m.kv_dim() / t;
    const double steps = sh.cp - 1;
    const double xfer = hw::collective_time(c, hw::Coll::send_recv, kv_block, cp_group);
    const double block_compute = attn_fwd / sh.cp;
    pc.fwd_comm_s += steps * std::max(0.0, xfer - block_compute);
    pc.bwd_comm_s += 2 * steps * std::max(0.0, xfer - 2 * block_compute);  // K,V and their grads
    pc.cp_bytes = steps * kv_block * 3;
  }

  pc.bwd_comm_exposed_s = exposed_under(d, pc.bwd_comm_s, pc.wgrad_s);

  switch (sh.recompute) {
    case Recompute::full:
      pc.recompute_s = pc.fwd_s;
      pc.recompute_comm_s = pc.fwd_comm_s;
      pc.tp_bytes += t > 1 ? (sh.sp ? 4 : 2) * act : 0;  // the forward collectives again
      break;
    case Recompute::selective: pc.recompute_s = sh.flash ? 0 : attn_fwd; break;
    case Recompute::none: break;
  }

  pc.model_flops = 3 * (2 * T * (h * (h + 2.0 * m.kv_dim()) / t + h * h / t + experts * m.mlp_matrices() * h * m.ffn / t)) +
                   3 * attn_flops_fwd;
  const double fwd_flops = pc.model_flops / 3;
  pc.recompute_flops = sh.recompute == Recompute::full ? fwd_flops
                       : sh.recompute == Recompute::selective && !sh.flash ? attn_flops_fwd
                                                                           : 0;
  return pc;
}

PhaseCost embedding_cost(const model::ModelSpec& m, const hw::Cluster& c, const LayerShape& sh, const hw::Group& tp_group) {
  const hw::Device& d = c.device;
  const double e = bytes_per_element(sh.precision);
  const double T = sh.b * sh.s, h = m.hidden;
  PhaseCost pc;
  // Lookup (read rows, write output), position add, dropout.
  const double bytes = 2 * e * T * h + (m.position == model::Position::learned ? 3 * e * T * h : 0) +
                       (m.dropout ? (2 * e + 1) * T * h : 0);
  pc.fwd_s = d.stream_time(bytes);
  pc.bwd_s = d.stream_time(bytes) + d.stream_time(2 * e * T * h);  // scatter-add into the table
  if (sh.tp > 1) {  // vocab-parallel embedding: all-reduce (reduce-scatter with SP) of the output
    const double act = e * T * h;
    pc.fwd_comm_s = sh.sp ? hw::collective_time(c, hw::Coll::reduce_scatter, act, tp_group)
                          : hw::collective_time(c, hw::Coll::all_reduce, act, tp_group);
    pc.tp_bytes = act;
  }
  return pc;
}

PhaseCost head_cost(const model::ModelSpec& m, const hw::Cluster& c, const LayerShape& sh, const hw::Group& tp_group) {
  const hw::Device& d = c.device;
  const hw::Dtype dt = compute_dtype(sh.precision);
  const double e = bytes_per_element(sh.precision);
  const double T = sh.b * sh.s, h = m.hidden;
  const double v_local = static_cast<double>(m.vocab) / sh.tp;
  PhaseCost pc;
  const LinearCost logits = linear(d, T, v_local, h, e, dt);
  // Final norm, then vocab-parallel cross-entropy in fp32: cast, max, exp-sum, loss (about 3 passes
  // over T x V/t fp32 logits); backward writes the softmax-minus-one-hot gradient.
  const double norm_bytes = 2 * e * T * h / (sh.sp ? sh.tp : 1);
  const double ce_bytes = 3 * 4 * T * v_local;
  pc.fwd_s = d.stream_time(norm_bytes) + logits.fwd + d.stream_time(ce_bytes);
  pc.bwd_s = d.stream_time(1.5 * norm_bytes) + logits.dgrad + logits.wgrad + d.stream_time((4 + e) * T * v_local);
  pc.wgrad_s = logits.wgrad;
  if (sh.tp > 1) {
    const double act = e * T * h;
    // SP: all-gather the final norm output; the logits' input-grad all-reduce (reduce-scatter) in backward.
    pc.fwd_comm_s = (sh.sp ? hw::collective_time(c, hw::Coll::all_gather, act, tp_group) : 0) +
                    3 * hw::collective_time(c, hw::Coll::all_reduce, 4 * T, tp_group);  // CE max, sum, target logit
    pc.bwd_comm_s = sh.sp ? hw::collective_time(c, hw::Coll::reduce_scatter, act, tp_group)
                          : hw::collective_time(c, hw::Coll::all_reduce, act, tp_group);
    pc.tp_bytes = (sh.sp ? 2 : 1) * act + 3 * 4 * T;
  }
  pc.bwd_comm_exposed_s = exposed_under(d, pc.bwd_comm_s, pc.wgrad_s);
  pc.model_flops = logits.flops;
  return pc;
}

}  // namespace scaleplan::strategies
