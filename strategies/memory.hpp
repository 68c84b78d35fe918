#pragma once
// Memory per GPU: model states under ZeRO (bytes per parameter per recipe) and activation bytes
// per transformer layer (Korthikanti et al. 2022, generalised to GQA, SwiGLU, no-dropout, flash).
#include <string_view>

#include "model/model.hpp"
#include "strategies/plan.hpp"

namespace scaleplan::strategies {

// Bytes per parameter of each model-state category, and what ZeRO shards.
struct Recipe {
  const char* name;
  double param_bytes;       // working weights
  double grad_bytes;        // working-precision gradient buffer
  double main_grad_bytes;   // fp32 gradient (sharded with the optimizer where the recipe partitions it)
  double optimizer_bytes;   // fp32 master weights + optimizer moments
  bool main_grad_sharded_with_optimizer;  // DeepSpeed keeps only the fp32 grad partition it owns
  bool grad_transient_at_zero3;           // DeepSpeed ZeRO-3: 16-bit grads live per layer only
  double fp8_copy_bytes = 0;              // fp8 weight copies kept beside the working weights (with_fp8_weights)
};
// ZeRO paper (Rajbhandari et al. 2020, sec. 3.1): 2 + 2 + 12 = 16 B/param for mixed precision Adam;
// fp32 training: 4 + 4 + 8. ZeRO-1 4P+12P/N, ZeRO-2 2P+14P/N, ZeRO-3 16P/N.
Recipe recipe_zero_paper(Precision p);
// Megatron-LM (theoretical_memory_usage.py): bf16 params 2 + fp32 main grads 4 + 12 = 18 B/param;
// distributed optimizer (zero=1): 6 + 12/N.
Recipe recipe_megatron();
// DeepSpeed's estimators (stage_1_and_2.py / stage3.py estimate_zero{2,3}_model_states_mem_needs):
// ZeRO-2 GPU 4P + 16P/N; ZeRO-3 GPU 4P_L + 18P/N.
Recipe recipe_deepspeed();
// fp8 training (Transformer Engine on Hopper; Micikevicius et al. 2022): the 16-bit working weights
// stay (TE casts them per step), plus an fp8 copy (1 B) and its fp8 transpose (1 B; Hopper's fp8
// GEMMs take only the TN layout, so TE caches both for forward and dgrad): +2 B/param on `params`,
// derived locally from the working weights (not part of the data-parallel all-gathers).
Recipe with_fp8_weights(Recipe r);
// NVIDIA Apex DistributedFusedAdam as NeMo 1.x / 24.07 sets it up (optim `name: distributed_fused_adam`;
// NeMo nemo/collections/nlp/models/language_modeling/megatron_base_model.py setup_optimization, r2.0.0rc1;
// apex/contrib/optimizers/distributed_fused_adam.py, Jul 2024): 16-bit params (param_sync_dtype = the
// model dtype), one full contiguous gradient buffer "dtype=grad_sync_dtype" (_init_grad_buffer), and per
// DP shard exp_avg + exp_avg_sq "dtype=self.dtype" plus the master copy: none when the optimizer dtype
// equals the model dtype ("store_params = False"), int16 remainders when an fp32 optimizer runs a bf16
// model ("store_param_remainders = True"). state_bytes / grad_sync_bytes: the `dtype` /
// `grad_sync_dtype` sizes (Apex default: grad_sync_dtype "same as dtype").
Recipe recipe_apex_distributed_adam(double state_bytes, double grad_sync_bytes);
// The model-state layouts a run's configuration can name (validation rows' strategy `optimizer:`):
// "zero-paper", "megatron", "deepspeed", "apex-distributed-adam" (NeMo's default optim dtype fp32),
// "apex-distributed-adam-bf16-grads" (optim dtype fp32, grad_sync_dtype bf16), "apex-distributed-adam-bf16"
// (optim dtype bf16, grad_sync_dtype bf16). nullptr: unknown name.
const Recipe* recipe_named(std::string_view name);

struct ModelStates {
  double params = 0, grads = 0, optimizer = 0;
  double total() const { return params + grads + optimizer; }
};
// params_on_gpu: parameters this GPU holds before ZeRO sharding; largest_layer: for ZeRO-3 live buffers.
// (Inline: the estimator calls it for every stage of every plan the search evaluates.)
inline ModelStates model_states(const Recipe& r, double P, int zero, int dp, double largest_layer_params = 0) {
  const double n = dp > 0 ? dp : 1;
  ModelStates s;
  s.params = zero >= 3 ? r.param_bytes * P / n : r.param_bytes * P;
  s.params += zero >= 3 ? r.fp8_copy_bytes * P / n : r.fp8_copy_bytes * P;
  // Working gradients: sharded from ZeRO-2; DeepSpeed's ZeRO-3 keeps them for the live layer only.
  if (zero >= 3 && r.grad_transient_at_zero3) s.grads = 0;
  else s.grads = zero >= 2 && !r.main_grad_sharded_with_optimizer ? r.grad_bytes * P / n : r.grad_bytes * P;
  // fp32 main gradients: DeepSpeed keeps the partition it owns (sharded with the optimizer from
  // ZeRO-1); Megatron's distributed optimizer keeps them whole (sharded only at ZeRO-2+).
  const bool main_sharded = r.main_grad_sharded_with_optimizer ? zero >= 1 : zero >= 2;
  s.grads += main_sharded ? r.main_grad_bytes * P / n : r.main_grad_bytes * P;
  s.optimizer = zero >= 1 ? r.optimizer_bytes * P / n : r.optimizer_bytes * P;
  // ZeRO-3 gathers one layer at a time: its 16-bit params and grads are live (DeepSpeed's 4 P_L).
  if (zero >= 3) s.params += (r.param_bytes + r.grad_bytes) * largest_layer_params;
  return s;
}

struct ActShape {
  double b = 1;        // microbatch (sequences)
  double s = 1;        // tokens of the sequence on this GPU (seq / cp)
  double s_kv = 1;     // keys a query attends (seq, for context parallel)
  int tp = 1;
  bool sp = false;
  Recompute recompute = Recompute::none;
  bool flash = false;
  double e = 2;        // bytes per activation element
  // Bytes per element of the tensors kept only as a linear layer's input for its weight-gradient
  // GEMM (QKV, projection, FC1 and FC2 inputs): e, except under fp8 where Transformer Engine keeps
  // the fp8 cast of the input (1 B) and not the 16-bit one (TE `_Linear.forward` saves
  // `inputmat_t` when the wgrad GEMM runs in fp8, the default recipe).
  double e_gemm_in = 2;
  // torchtitan's op-level selective AC under Recompute::selective (hw::Software::selective_op_sac).
  bool op_sac = false;
};
// Bytes one layer keeps for backward for one microbatch (Korthikanti 2022 sec. 4, Table 2:
// sbh(34 + 5as/h) without parallelism; sbh(10 + 24/t + 5as/(ht)) with TP; /t with TP+SP;
// 34sbh/t with selective recompute + SP; 2sbh with full recompute). Under fp8 (e_gemm_in = 1) the
// 3 sbh of linear inputs outside/inside the TP region and the FC2 input (ffn/h sbh) take 1 B each.
double layer_activation_bytes(const model::ModelSpec& m, const ActShape& a);
// Bytes of one layer's full activations (what a fully recomputed layer re-creates during its backward).
double layer_activation_bytes_no_recompute(const model::ModelSpec& m, ActShape a);

}  // namespace scaleplan::strategies
