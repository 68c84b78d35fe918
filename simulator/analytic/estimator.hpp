#pragma once
// The analytic estimator: a closed-form StepReport for (model, cluster, plan) in microseconds.
// Construct once per (model, cluster); evaluate() does arithmetic only (no allocation) so the
// search can call it millions of times per second.
#include "hardware/cluster.hpp"
#include "model/model.hpp"
#include "strategies/memory.hpp"
#include "strategies/step_report.hpp"

namespace scaleplan::analytic {

struct EstimatorOptions {
  // Model-state recipe when precision is 16-bit (fp32 plans always use 4+4+8).
  enum class RecipeKind { zero_paper, megatron, deepspeed } recipe = RecipeKind::zero_paper;
  // Fixed per-GPU reserve outside the caching allocator: CUDA context, cuBLAS workspace, NCCL
  // channel buffers (~0.5 GiB context + ~0.5 GiB NCCL/cuBLAS on A100/H100, measured with nvidia-smi).
  double reserved_bytes = 1.0 * 1024 * 1024 * 1024;
  // PyTorch caching-allocator fragmentation margin on activations (documented assumption).
  double allocator_margin = 0.05;
  // Adam step bytes moved per parameter shard: read fp32 master, m, v, grad; write master, m, v and
  // the 16-bit weight (4*3 + 4 + 4*3 + 2 = 30), plus the gradient-norm pass (2): 32 B/param.
  double optimizer_bytes_per_param = 32;
};

class Estimator {
 public:
  Estimator(model::ModelSpec m, hw::Cluster c, EstimatorOptions o = {});
  // `p` must come from strategies::resolve_plan (all degrees valid for this model and cluster).
  strategies::StepReport evaluate(const strategies::Plan& p) const;
  const model::ModelSpec& model() const { return m_; }
  const hw::Cluster& cluster() const { return c_; }
  const EstimatorOptions& options() const { return o_; }

  // Model FLOPs of one optimizer step for `gbs` sequences (Korthikanti 2022 eq. 7 for GPT).
  double model_flops_per_step(double gbs) const;
  // Parameters one GPU of pipeline stage `stage` holds before ZeRO sharding.
  double params_on_stage(const strategies::Plan& p, int stage) const;

 private:
  model::ModelSpec m_;
  hw::Cluster c_;
  EstimatorOptions o_;
  // Precomputed per-model tables.
  double layer_split_params_ = 0;       // divided by TP (column/row-parallel weights, column biases)
  double layer_replicated_params_ = 0;  // replicated over TP (norms, row-parallel biases)
  double layer_expert_params_ = 0;      // MoE expert weights (divided by TP and EP)
  double layer_fwd_flops_per_seq_ = 0;
};

}  // namespace scaleplan::analytic
