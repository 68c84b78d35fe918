#include "strategies/memory.hpp"

#include "strategies/expert.hpp"

namespace scaleplan::strategies {

Recipe recipe_zero_paper(Precision p) {
  if (p == Precision::fp32) return {"fp32-adam", 4, 4, 0, 8, false, false};
  return {"zero-paper", 2, 2, 0, 12, false, false};
}
Recipe recipe_megatron() { return {"megatron", 2, 0, 4, 12, false, false}; }
Recipe recipe_deepspeed() { return {"deepspeed", 2, 2, 4, 12, true, true}; }
Recipe with_fp8_weights(Recipe r) {
  r.fp8_copy_bytes = 2;
  return r;
}

Recipe recipe_apex_distributed_adam(double state_bytes, double grad_sync_bytes) {
  const double model_bytes = 2;  // bf16 working weights (megatron_amp_O2)
  // Master copy: none at the model's dtype; the low 16 bits (int16) of an fp32 master over bf16; else a copy.
  const double master = state_bytes == model_bytes ? 0 : state_bytes == 4 ? 2 : state_bytes;
  return {"apex-distributed-adam", model_bytes, grad_sync_bytes, 0, 2 * state_bytes + master, false, false};
}

const Recipe* recipe_named(std::string_view name) {
  static const Recipe kNamed[] = {
      recipe_zero_paper(Precision::bf16),
      recipe_megatron(),
      recipe_deepspeed(),
      recipe_apex_distributed_adam(4, 4),  // NeMo default optim dtype fp32; grad_sync_dtype = dtype
      [] {  // optim dtype fp32, grad_sync_dtype bf16 (NeMo-Framework-Launcher 24.07 examples/training/*/h100/*_fp8*.sh)
        Recipe r = recipe_apex_distributed_adam(4, 2);
        r.name = "apex-distributed-adam-bf16-grads";
        return r;
      }(),
      [] {
        Recipe r = recipe_apex_distributed_adam(2, 2);
        r.name = "apex-distributed-adam-bf16";
        return r;
      }(),
  };
  for (const Recipe& r : kNamed)
    if (name == r.name) return &r;
  return nullptr;
}

double layer_activation_bytes_no_recompute(const model::ModelSpec& m, ActShape a) {
  a.recompute = Recompute::none;
  return layer_activation_bytes(m, a);
}

double layer_activation_bytes(const model::ModelSpec& m, const ActShape& a) {
  const double t = a.tp, e = a.e, eg = a.e_gemm_in;
  const double sbh = a.s * a.b * m.hidden;
  const double rep = a.sp ? 1.0 / t : 1.0;  // tensors outside the TP region: split only with SP
  if (a.recompute == Recompute::full) return e * sbh * rep;  // the layer input (2sbh in 16-bit)
  const double kv_frac = static_cast<double>(m.kv_dim()) / m.hidden;
  const double q_frac = static_cast<double>(m.q_dim()) / m.hidden;  // 1 unless head_dim is decoupled
  if (a.recompute == Recompute::selective && a.op_sac && !m.moe.enabled()) {
    // torchtitan op-level selective AC (hw::Software::selective_op_sac): the checkpointed block keeps its
    // input (outside the TP region) and the outputs of the saved compute ops: wq (q), wv (kv), SDPA (q, plus
    // its fp32 logsumexp per head and token), w1 (the FFN width) and w2 (h, reduce-scattered under SP).
    const double w1_frac = static_cast<double>(m.ffn) / m.hidden;
    const double lse = a.flash ? 4.0 * a.b * (static_cast<double>(m.heads) / t) * a.s : 0;
    return e * sbh * (2 * rep + (2 * q_frac + kv_frac + w1_frac) / t) + lse;
  }
  const double drop = m.dropout ? 1.0 : 0.0;  // 1-byte dropout masks

  // MoE: every token goes to top_k experts, padded to the capacity factor (GShard sec. 2.2); the
  // experts keep their permuted inputs (the FC1 input, k cf copies) and the router keeps its fp32
  // probabilities (T x E) for backward.
  const bool moe = m.moe.enabled();
  const double experts_active = moe ? m.moe.top_k * m.moe.capacity_factor : 1;
  // FC1-output width per token: the routed copies at the expert width plus the shared experts (strategies/expert).
  const double ffn_frac = (moe ? experts_active * expert_width(m) + shared_experts_width(m) : static_cast<double>(m.ffn)) / m.hidden;
  const double shared_in = shared_experts_width(m) > 0 ? 1 : 0;  // the shared experts' FC1 input (unpermuted)
  double bytes = 0;
  // Outside the TP region (Korthikanti's "10 sbh"): two norm inputs, QKV input, FC1 input, two dropout masks.
  bytes += (2 * e /*norm inputs*/ + eg /*QKV input*/ + eg * (experts_active + shared_in) /*FC1 input*/ + 2 * drop /*masks*/) * sbh * rep;
  if (moe) bytes += 4.0 * a.s * a.b * m.moe.experts * rep;  // router probabilities (fp32)
  // Inside the TP region: Q, K, V, the projection input, the MLP activation input and the FC2 input.
  bytes += e * sbh * (q_frac + 2 * kv_frac) / t;  // Q, K, V
  bytes += eg * sbh * q_frac / t;                 // projection input (attention context)
  // Ungated activations keep one FC1-output tensor for backward: GeLU its input; squared ReLU (Megatron-Core
  // activations.py, jit_fuser(torch.pow(F.relu(x), 2))) one tensor of the same size. Gated: gate and up.
  const double act_in = m.gated() ? 2 : 1;
  bytes += sbh * ffn_frac * (e * act_in + eg) / t;  // activation input(s) + FC2 input
  // Attention core: the s x s_kv scores (softmax output, dropout mask, dropout output) per head;
  // selective recompute drops them, flash attention never stores them (it keeps a fp32 logsumexp).
  const double heads_local = static_cast<double>(m.heads) / t;
  if (a.flash) {
    bytes += 4.0 * a.b * heads_local * a.s;
  } else if (a.recompute != Recompute::selective) {
    const double scores = a.b * heads_local * a.s * a.s_kv;
    bytes += scores * (e /*softmax out*/ + drop * (1 + e) /*mask + dropout out*/);
  }
  return bytes;
}

}  // namespace scaleplan::strategies
