#include "strategies/layer_cost.hpp"

#include <algorithm>

#include "strategies/context.hpp"
#include "strategies/expert.hpp"
#include "strategies/fp8_cast.hpp"

namespace scaleplan::strategies {

namespace {

// A GEMM of m x n x k: 2mnk FLOPs; HBM traffic reads A (m k), B (k n), writes C (m n).
struct Gemm {
  double m, n, k;
  double flops() const { return 2 * m * n * k; }
  double bytes(double e) const { return e * (m * k + k * n + m * n); }
};

// A batched GEMM runs as one kernel over all batches (cuBLAS strided-batched / grouped GEMM).
double gemm_t(const hw::Device& d, const Gemm& g, double e, hw::Dtype dt, double batch = 1) {
  return d.gemm_time(batch * g.flops(), batch * g.bytes(e), dt);
}

}  // namespace

double rng_state_copy_s(const hw::Cluster& c) {
  const double bytes = c.sw.rng_state_bytes;
  if (bytes <= 0 || c.host.pcie_Bps <= 0) return 0;
  return bytes / c.host.pcie_Bps + c.device.eff.kernel_overhead_s;
}

double metric_sync_s(const hw::Cluster& c, long long gpus) {
  if (c.sw.metric_sync_states <= 0 || gpus <= 1) return 0;
  // torchmetrics gather_all_tensors (v1.0.3): torch.distributed.barrier(group), then for a 0-dim state
  // _simple_gather_all_tensors, one all_gather of the scalar (4 B per rank).
  const hw::Group all = hw::make_group(c, static_cast<int>(gpus), 1);
  return c.sw.metric_sync_states * (hw::collective_time(c, hw::Coll::all_reduce, 4, all) +
                                    hw::collective_time(c, hw::Coll::all_gather, 4.0 * static_cast<double>(gpus), all));
}

hw::Dtype gemm_dtype(Precision p) { return compute_dtype(p); }
hw::Dtype attention_dtype(Precision p) { return p == Precision::fp8 ? hw::Dtype::bf16 : compute_dtype(p); }

GemmCost linear_gemms(const hw::Device& d, double tokens, double n_out, double k_in, double e, hw::Dtype dt, double steps,
                      double batch) {
  GemmCost c;
  c.fwd = steps * gemm_t(d, {tokens, n_out, k_in}, e, dt, batch);
  c.dgrad = steps * gemm_t(d, {tokens, k_in, n_out}, e, dt, batch);
  c.wgrad = steps * gemm_t(d, {k_in, n_out, tokens}, e, dt, batch);
  c.flops = steps * batch * 3 * 2 * tokens * n_out * k_in;
  return c;
}

double exposed_under(const hw::Device& d, double comm_s, double compute_s) {
  const double hidden = std::min(comm_s, compute_s);
  return (comm_s - hidden) + d.eff.overlap_slowdown * hidden;
}

double op_sac_mm_share(const model::ModelSpec& m) {
  // Matmul calls of a torchtitan block in order: wq, wk, wv, wo, w1, w3, w2 (w1, w2 without a gate); the
  // policy recomputes the even-numbered calls (wk, wo, then w3 or w2), whose weights are h x kv, q x h and
  // h x ffn: their share of the block's forward matmul FLOPs.
  const double h = m.hidden, total = m.attn_weight_params() + m.mlp_weight_params();
  return total > 0 ? (h * m.kv_dim() + static_cast<double>(m.q_dim()) * h + h * static_cast<double>(m.ffn)) / total : 0;
}

double layer_forward_flops(const model::ModelSpec& m, double s) {
  // 2 FLOPs per weight per token for every projection a token passes through: the attention matrices
  // (h x h, 2 h x kv, h x h for MHA/GQA; MLA's down/up projections, DeepSeek-V2 eqs. 9-18; h x heads*head_dim
  // when head_dim is explicit) and the MLP it uses: one dense FFN, or top_k routed experts of expert_ffn
  // plus the shared experts (DeepSeekMoE, DeepSeek-V3 sec. 2.1.2). For MHA/GQA with expert_ffn = 0 this is
  // the previous h (h + 2 kv) + h^2 + k 3 h f term, unchanged.
  const double mlp = m.moe.enabled() ? m.moe.top_k * m.expert_mlp_params() + m.moe.shared_experts * m.shared_expert_mlp_params()
                                     : m.mlp_weight_params();
  const double gemm = 2 * s * (m.attn_weight_params() + mlp);
  // QK^T and AV, full (non-causal) count: Megatron / Korthikanti convention, 2 s^2 per head and unit of the
  // query-key and the value head dims: 4 s^2 h for MHA/GQA with head_dim = h / heads (q_dim otherwise; MLA:
  // qk_nope + qk_rope and v_head_dim, DeepSeek-V2 eqs. 9-18).
  const double qk = m.mla.enabled() ? static_cast<double>(m.mla.qk_nope_head_dim + m.mla.qk_rope_head_dim) : m.head_dim();
  const double vd = m.mla.enabled() ? static_cast<double>(m.mla.v_head_dim) : m.head_dim();
  const double attn = 2 * s * s * static_cast<double>(m.heads) * (qk + vd);
  return gemm + attn;
}

PhaseCost layer_cost(const model::ModelSpec& m, const hw::Cluster& c, const LayerShape& sh, const TpGroups& tp_groups,
                     const hw::Group& cp_group) {
  const hw::Device& d = c.device;
  const hw::Dtype adt = attention_dtype(sh.precision);
  const double e = bytes_per_element(sh.precision);
  const TpLayout lay = tp_layout(sh.tp_mode, sh.tp, sh.tp_depth);
  const bool grid = sh.tp_mode != TpMode::d1;
  // t: the divisor of tensors inside the TP region (1d: tp; grid modes: every activation is split
  // over all P ranks, Optimus/Tesseract/3D tables: O(1/P) activations).
  const double t = sh.tp;
  const double T = sh.b * sh.s;  // tokens of this rank's sequence chunk per microbatch (all TP ranks together)
  const double h = m.hidden;
  const double rep = (sh.sp || grid) ? 1.0 / t : 1.0;  // element-wise work outside the TP region splits only with SP
  const bool moe = m.moe.enabled();
  const double experts = moe ? m.moe.top_k * m.moe.capacity_factor : 1;  // FFN token copies (capacity-padded)
  const double drop = m.dropout ? 1.0 : 0.0;
  PhaseCost pc;

  // Linears and their TP collectives: the tensor-parallel component (strategies/tensor_nd).
  const TpLayerCost tl = tp_model(sh.tp_mode).layer(m, c, sh, lay, tp_groups, !moe);
  double fwd = tl.fwd_s, dgrad = tl.dgrad_s, wgrad = tl.wgrad_s;
  pc.buffer_bytes = tl.buffer_bytes;
  if (moe) {  // router + experts: the expert-parallel component (strategies/expert)
    const MoeCost mc = moe_cost(m, d, sh);
    fwd += mc.fwd_s;
    dgrad += mc.dgrad_s;
    wgrad += mc.wgrad_s;
    pc.ep_a2a_bytes = mc.a2a_bytes;
    pc.ep_a2a_fwd = sh.ep > 1 ? mc.a2a_fwd : 0;
    pc.ep_a2a_bwd = sh.ep > 1 ? mc.a2a_bwd : 0;
    pc.buffer_bytes += mc.buffer_bytes;
  }

  // Attention core per GPU: heads/head_div heads of b/batch_div sequences, s queries against s_kv keys.
  const double heads = static_cast<double>(m.heads) / lay.head_div;
  const double bl = sh.b / lay.batch_div;
  const double dh = static_cast<double>(m.head_dim());
  const double attn_flops_fwd = 4 * bl * heads * sh.s * sh.s_kv * dh;
  double attn_fwd = 0, attn_bwd = 0;
  if (sh.flash) {
    // Fused kernel skips the masked (causal) half of the blocks: FlashAttention-2 sec. 3.1.
    attn_fwd = d.flash_time(0.5 * attn_flops_fwd, adt, sh.flash2);
    attn_bwd = d.flash_time(0.5 * 2.5 * attn_flops_fwd, adt, sh.flash2, true);  // bwd = 2.5x fwd FLOPs (recomputes S=QK^T)
    if (sh.flash_triton) {  // llm-foundry's Triton kernel: FA2's time x the device's measured ratio
      attn_fwd *= d.eff.flash_triton_fwd_vs_flash2;
      attn_bwd *= d.eff.flash_triton_bwd_vs_flash2;
    }
  } else {
    const double bh = bl * heads;
    const Gemm qk{sh.s, sh.s_kv, dh}, av{sh.s, dh, sh.s_kv};
    const double scores = bh * sh.s * sh.s_kv;
    // scaled-masked softmax (fused): read + write the scores; dropout: read, write, 1-byte mask.
    const double softmax_bytes = 2 * e * scores;
    const double dropout_bytes = drop * (2 * e + 1) * scores;
    attn_fwd = gemm_t(d, qk, e, adt, bh) + gemm_t(d, av, e, adt, bh) + d.stream_time(softmax_bytes) + d.stream_time(dropout_bytes);
    // backward: two GEMMs per forward GEMM; softmax backward reads y, dy and writes dx (1.5x);
    // dropout backward reads dy and the mask and writes dx.
    attn_bwd = 2 * (gemm_t(d, qk, e, adt, bh) + gemm_t(d, av, e, adt, bh)) + d.stream_time(1.5 * softmax_bytes) +
               d.stream_time(drop * (2 * e + 1) * scores);
    if (sh.eager_elementwise) {
      // Eager causal mask (2019 Megatron-LM mpu/transformer.py: torch.mul(scores, mask) - 10000.0 * (1.0 - mask)):
      // a multiply and a subtract, each reading and writing the scores; backward: the multiply's
      // gradient (grad x mask), the subtract's passes through.
      attn_fwd += 2 * d.stream_time(2 * e * scores);
      attn_bwd += d.stream_time(2 * e * scores);
    }
  }

  // Element-wise (memory-bound) ops: norms, bias+dropout+residual, activation, rotary embedding.
  const double norm_bytes = 2 * e * T * h * rep;                      // read x, write y
  const double bdr_bytes = (3 * e + drop) * T * h * rep;              // read 2, write 1 (+ mask)
  // One fused kernel per activation (Megatron bias_gelu fusion; squared ReLU under jit_fuser, activations.py).
  const double act_in = m.gated() ? 2 : 1;
  // MoE: the routed copies at the expert width plus the shared experts over every token (strategies/expert).
  const double act_width = moe ? experts * expert_width(m) + shared_experts_width(m) : static_cast<double>(m.ffn);
  const double act_bytes = (act_in + 1) * e * T * act_width / t;  // read input(s), write output
  const double rope_bytes = m.position == model::Position::rope ? 2 * e * T * (h + m.kv_dim()) / t : 0;
  // Eager bias + dropout + residual (2019 Megatron-LM: RowParallelLinear adds its bias after the
  // all-reduce, then nn.Dropout, then `hidden_states + attention_output`): three kernels moving
  // 2e + (2e + drop) + 3e bytes per element where the fused kernel moves 3e + drop; two per layer.
  const double bdr_fwd = sh.eager_elementwise ? d.stream_time(2 * e * T * h * rep) + d.stream_time((2 * e + drop) * T * h * rep) +
                                                    d.stream_time(3 * e * T * h * rep)
                                              : d.stream_time(bdr_bytes);
  const double elem_fwd = 2 * d.stream_time(norm_bytes) + 2 * bdr_fwd + d.stream_time(act_bytes) + d.stream_time(rope_bytes);
  // Backward of norms and activations reads input and output-grad and writes input-grad (1.5x);
  // dropout/residual backward moves about the same bytes as forward.
  const double elem_bwd = 2 * d.stream_time(1.5 * norm_bytes) + 2 * d.stream_time(bdr_bytes) +
                          d.stream_time(1.5 * act_bytes) + d.stream_time(rope_bytes);
  // The stack's extra passes over activation-sized tensors (hw::Software::activation_passes_fwd/_bwd), e.g.
  // llm-foundry's unpad / pad copies around the varlen FlashAttention kernel; one tensor is e x T x h bytes,
  // split like the other element-wise work (rep).
  const double act_tensor_bytes = e * T * h * rep;
  const double extra_fwd = d.stream_time(sh.act_passes_fwd * act_tensor_bytes);
  const double extra_bwd = d.stream_time(sh.act_passes_bwd * act_tensor_bytes);

  // FP8: Transformer Engine's casts of the GEMM operands (strategies/fp8_cast.hpp); the weights'
  // cast per microbatch, or once per step with the stack's weight cache (PhaseCost::fp8_weight_cast_s).
  const Fp8CastTime cast = fp8_cast_time(d, fp8_layer_cast_bytes(m, sh, sh.fp8_norm_fused));
  pc.fwd_s = fwd + attn_fwd + elem_fwd + extra_fwd + cast.fwd_s + (sh.fp8_weight_cache ? 0 : cast.weight_s);
  pc.bwd_s = dgrad + wgrad + attn_bwd + elem_bwd + extra_bwd + cast.bwd_s;
  pc.fp8_weight_cast_s = sh.fp8_weight_cache ? cast.weight_s : 0;
  if (sh.rng_copy_s > 0) {
    // 2019 Megatron-LM (mpu/transformer.py, mpu/random.py @a1d04b79): the attention dropout runs under
    // get_cuda_rng_tracker().fork(), which gets and sets the CUDA RNG state twice each (4 copies, in
    // every forward, the recomputed one too); CheckpointFunction stashes the state in its forward
    // (1 get) and in backward gets the current one, restores the stashed one and sets it back (1 get,
    // 2 sets): 4 more per checkpointed layer, charged here in backward.
    pc.fwd_s += 4 * sh.rng_copy_s;
    if (sh.recompute == Recompute::full) pc.bwd_s += 4 * sh.rng_copy_s;
  }
  pc.wgrad_s = wgrad;

  pc.fwd_comm_s = tl.fwd_comm_s;
  pc.bwd_comm_s = tl.bwd_comm_s;
  pc.tp_bytes = tl.tp_bytes;

  // Context parallel: the algorithm's K/V (or head) exchange (strategies/context).
  double cp_recompute_bytes = 0;
  if (sh.cp > 1) {
    const double kv_block = 2 * e * bl * sh.s * m.kv_dim() / lay.head_div;  // this rank's K and V
    const double q_bytes = e * bl * sh.s * h / lay.head_div;
    const CpCost cc = cp_model(sh.cp_algo).cost(m, c, sh, attn_fwd, attn_bwd, kv_block, q_bytes, cp_group);
    pc.fwd_comm_s += cc.fwd_comm_s;
    pc.bwd_comm_s += cc.bwd_comm_s;
    pc.bwd_comm_critical_s += cc.bwd_critical_s;
    pc.cp_bytes = cc.cp_bytes;
    pc.cp_fwd_comm_s = cc.fwd_comm_s;
    pc.cp_bwd_comm_s = cc.bwd_comm_s;
    pc.cp_bwd_critical_s = cc.bwd_critical_s;
    pc.cp_kv_block_bytes = kv_block;
    cp_recompute_bytes = cc.recompute_cp_bytes;
    pc.buffer_bytes += cc.buffer_bytes;
  }

  // With TP overlap (LayerShape::tp_overlap) the TP backward collectives hide under their own GEMMs
  // (tensor_nd overlap_sp_collectives); a context-parallel exchange still hides under the wgrad.
  pc.tp_bwd_exposed_s = tl.bwd_comm_exposed_s;
  pc.bwd_comm_exposed_s = tl.bwd_comm_exposed_s >= 0
                              ? tl.bwd_comm_exposed_s + exposed_under(d, pc.bwd_comm_s - tl.bwd_comm_s, pc.wgrad_s) + pc.bwd_comm_critical_s
                              : exposed_under(d, pc.bwd_comm_s, pc.wgrad_s) + pc.bwd_comm_critical_s;

  // Non-reentrant checkpoint with early stop (hw::Software::recompute_early_stop): the recompute ends when
  // the last tensor the backward saved is recreated. Autograd saves a linear's input before running it, so
  // in a dense block whose residual adds save nothing (no dropout mask) the last saved tensor is the MLP
  // output projection's input: that GEMM and the bias + residual add after it are not rerun. With dropout
  // the mask after the projection is saved last; MoE and grid-TP layers are left whole (not analysed).
  const bool early_stop = sh.recompute_early_stop && !moe && !grid && !m.dropout;
  const double fc2_fwd = early_stop ? linear_gemms(d, T, h, m.ffn / t, e, gemm_dtype(sh.precision)).fwd : 0;
  const double skip_s = early_stop ? fc2_fwd + bdr_fwd : 0;
  const double skip_flops = early_stop ? 2 * T * h * m.ffn / t : 0;

  // torchtitan op-level selective AC (hw::Software::selective_op_sac) on a dense block.
  const bool op_sac = sh.recompute == Recompute::selective && sh.op_sac && !moe;
  switch (sh.recompute) {
    case Recompute::full:
      pc.recompute_s = pc.fwd_s - skip_s;
      pc.recompute_comm_s = pc.fwd_comm_s;
      pc.tp_bytes += tl.recompute_tp_bytes;  // the forward collectives again
      pc.cp_bytes += cp_recompute_bytes;
      break;
    case Recompute::selective:
      if (op_sac) {
        // The unsaved matmuls (wk, wo and w3, or w2 without a gate: every second of the block's mm calls)
        // and every element-wise op rerun; the TP all-gathers rerun, the reduce-scatters are in the save list.
        pc.recompute_s = op_sac_mm_share(m) * (fwd + cast.fwd_s) + elem_fwd + extra_fwd;
        pc.recompute_comm_s = 0.5 * tl.fwd_comm_s;
      } else {
        pc.recompute_s = sh.flash ? 0 : attn_fwd;
      }
      break;
    case Recompute::none: break;
  }

  // Model FLOPs per rank: the layer's FLOPs (Korthikanti eq. 7 terms, top_k experts) / P.
  // Attention matrices h (q_dim + 2 kv) + q_dim h (ModelSpec::attn_weight_params); the MLP the token uses:
  // top_k routed experts plus the shared experts, or the dense FFN (layer_forward_flops).
  const double mlp_params = moe ? m.moe.top_k * m.expert_mlp_params() + m.moe.shared_experts * m.shared_expert_mlp_params()
                                : m.mlp_weight_params();
  pc.model_flops = 3 * (2 * T * (m.attn_weight_params() + mlp_params) / t) + 3 * attn_flops_fwd;
  const double fwd_flops = pc.model_flops / 3;
  pc.recompute_flops = sh.recompute == Recompute::full ? fwd_flops - skip_flops
                       : op_sac                         ? op_sac_mm_share(m) * (fwd_flops - attn_flops_fwd)
                       : sh.recompute == Recompute::selective && !sh.flash ? attn_flops_fwd
                                                                           : 0;
  return pc;
}

PhaseCost embedding_cost(const model::ModelSpec& m, const hw::Cluster& c, const LayerShape& sh, const hw::Group& tp_group) {
  // Grid TP modes (2d/2.5d/3d) keep activations distributed as Megatron SP does: the embedding
  // and LM head stay vocab-parallel over the whole TP group and gather/scatter like SP (assumption).
  const bool dist = sh.sp || sh.tp_mode != TpMode::d1;
  const hw::Device& d = c.device;
  const double e = bytes_per_element(sh.precision);
  const double T = sh.b * sh.s, h = m.hidden;
  PhaseCost pc;
  // Lookup (read rows, write output), position add, dropout.
  const double bytes = 2 * e * T * h + (m.position == model::Position::learned ? 3 * e * T * h : 0) +
                       (m.dropout ? (2 * e + 1) * T * h : 0);
  pc.fwd_s = d.stream_time(bytes);
  pc.bwd_s = d.stream_time(bytes) + d.stream_time(2 * e * T * h);  // scatter-add into the table
  // The stack's dense embedding gradient and its main-grad accumulation (hw::Software::embedding_grad_bytes_per_param).
  pc.bwd_s += d.stream_time(c.sw.embedding_grad_bytes_per_param * static_cast<double>(m.vocab) / sh.tp * h);
  if (sh.tp > 1) {  // vocab-parallel embedding: all-reduce (reduce-scatter with SP) of the output
    const double act = e * T * h;
    pc.fwd_comm_s = dist ? hw::collective_time(c, hw::Coll::reduce_scatter, act, tp_group)
                          : hw::collective_time(c, hw::Coll::all_reduce, act, tp_group);
    pc.tp_bytes = act;
  }
  return pc;
}

PhaseCost head_cost(const model::ModelSpec& m, const hw::Cluster& c, const LayerShape& sh, const hw::Group& tp_group) {
  // Grid TP modes (2d/2.5d/3d) keep activations distributed as Megatron SP does: the embedding
  // and LM head stay vocab-parallel over the whole TP group and gather/scatter like SP (assumption).
  const bool dist = sh.sp || sh.tp_mode != TpMode::d1;
  const hw::Device& d = c.device;
  // An fp8 run keeps the LM head 16-bit where the stack's recipe does (hw::Software::fp8_lm_head).
  const hw::Dtype dt = sh.precision == Precision::fp8 && !c.sw.fp8_lm_head ? hw::Dtype::bf16 : gemm_dtype(sh.precision);
  const double e = bytes_per_element(sh.precision);
  const double T = sh.b * sh.s, h = m.hidden;
  const double v_local = static_cast<double>(m.vocab) / sh.tp;
  PhaseCost pc;
  const GemmCost logits = linear_gemms(d, T, v_local, h, e, dt);
  // Final norm, then vocab-parallel cross-entropy in fp32: cast, max, exp-sum, loss (about 3 passes
  // over T x V/t fp32 logits); backward writes the softmax-minus-one-hot gradient.
  const double norm_bytes = 2 * e * T * h / (dist ? sh.tp : 1);
  // The stack's own count per logit element where it gives one (hw::Software::ce_logit_bytes_fwd / _bwd).
  const double ce_fwd_per_logit = c.sw.ce_logit_bytes_fwd > 0 ? c.sw.ce_logit_bytes_fwd : 3 * 4;
  const double ce_bwd_per_logit = c.sw.ce_logit_bytes_bwd > 0 ? c.sw.ce_logit_bytes_bwd : 4 + e;
  pc.fwd_s = d.stream_time(norm_bytes) + logits.fwd + d.stream_time(ce_fwd_per_logit * T * v_local);
  pc.bwd_s = d.stream_time(1.5 * norm_bytes) + logits.dgrad + logits.wgrad + d.stream_time(ce_bwd_per_logit * T * v_local);
  // The stack's training metrics over the logits, after the backward on the same stream
  // (hw::Software::metric_logit_bytes; Composer's _eval_train_metrics, trainer.py v0.17.2).
  pc.bwd_s += d.stream_time(sh.metric_logit_bytes * T * v_local);
  pc.wgrad_s = logits.wgrad;
  if (sh.tp > 1) {
    const double act = e * T * h;
    // SP: all-gather the final norm output; the logits' input-grad all-reduce (reduce-scatter) in backward.
    pc.fwd_comm_s = (dist ? hw::collective_time(c, hw::Coll::all_gather, act, tp_group) : 0) +
                    3 * hw::collective_time(c, hw::Coll::all_reduce, 4 * T, tp_group);  // CE max, sum, target logit
    pc.bwd_comm_s = dist ? hw::collective_time(c, hw::Coll::reduce_scatter, act, tp_group)
                          : hw::collective_time(c, hw::Coll::all_reduce, act, tp_group);
    pc.tp_bytes = (dist ? 2 : 1) * act + 3 * 4 * T;
  }
  pc.bwd_comm_exposed_s = exposed_under(d, pc.bwd_comm_s, pc.wgrad_s);
  pc.model_flops = logits.flops;
  return pc;
}

}  // namespace scaleplan::strategies
