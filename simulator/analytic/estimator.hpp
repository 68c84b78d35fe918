#pragma once
// The analytic estimator: a closed-form StepReport for (model, cluster, plan) in microseconds.
// Construct once per (model, cluster); evaluate() does arithmetic only (no allocation) so the
// search can call it millions of times per second.
#include <optional>

#include "hardware/cluster.hpp"
#include "model/model.hpp"
#include "hardware/collectives.hpp"
#include "strategies/chunks.hpp"
#include "strategies/layer_cost.hpp"
#include "strategies/tensor_nd.hpp"
#include "strategies/memory.hpp"
#include "strategies/pipeline.hpp"
#include "strategies/step_report.hpp"

namespace scaleplan::analytic {

struct EstimatorOptions {
  // Model-state recipe when precision is 16-bit (fp32 plans always use 4+4+8).
  enum class RecipeKind { zero_paper, megatron, deepspeed } recipe = RecipeKind::zero_paper;
  // The model-state layout the run's configuration names (strategies::recipe_named; validation rows'
  // strategy `optimizer:`): replaces `recipe` for 16-bit and fp8 plans (fp8 still adds its weight copies).
  std::optional<strategies::Recipe> recipe_override;
  // Fixed per-GPU reserve outside the caching allocator: CUDA context, cuBLAS workspace, NCCL
  // channel buffers (~0.5 GiB context + ~0.5 GiB NCCL/cuBLAS on A100/H100, measured with nvidia-smi).
  double reserved_bytes = 1.0 * 1024 * 1024 * 1024;
  // PyTorch caching-allocator fragmentation margin on activations (documented assumption).
  double allocator_margin = 0.05;
  // Adam step bytes moved per parameter shard: read fp32 master, m, v, grad; write master, m, v and
  // the 16-bit weight (4*3 + 4 + 4*3 + 2 = 30), plus the gradient-norm pass (2): 32 B/param.
  double optimizer_bytes_per_param = 32;
  // Executor accounting (issue 8, executor/predict.cpp): count memory and communication the way the
  // reference executor (executor/gpt.cpp) allocates and communicates. Off for published runs.
  //  Activations, last stage: the loss gradient is computed during the LM head's forward, so the fp32
  //   logits are freed before any layer's backward (the head and a fully recomputed layer take the
  //   larger of the two, not their sum); the head keeps the final-norm input and output (the output
  //   feeds the tied embedding's weight gradient); each microbatch in flight keeps the gradient of
  //   the stage output (e*s*b*h, /t with SP); a fully recomputed layer re-creates everything but its
  //   input, which is the stored checkpoint.
  //  Communication: ZeRO-2 reduce-scatters gradients every microbatch (DeepSpeed stage 2); with
  //   pp = 1 and ZeRO-2/3 the tied word embedding, used twice per microbatch (lookup, LM head), is
  //   reduce-scattered (and at ZeRO-3 gathered twice) per use; with ZeRO >= 1 the tied-embedding
  //   all-reduce between pipeline ends runs on the DP shard; with SP the embedding backward
  //   all-gathers its input gradient and the TP-replicated parameters' gradients (norms,
  //   row-parallel biases) are all-reduced over TP once per step (per microbatch at ZeRO-2/3); a
  //   pipeline stage sends only the directions it has (the first stage no gradients, the last no
  //   activations) and, with TP but no SP, all-gathers each received 1/t slice over TP.
  bool executor_accounting = false;
  // Data parallel without ZeRO (zero=0): the temporary buffer the gradients are fused into for the
  // all-reduce and the gradient-norm computation, in bytes per parameter of the stage. ZeRO paper
  // (Rajbhandari et al. 2020, sec. 3.2 "Residual memory consumption", "Temporary buffers"): these
  // operations "fuse all the gradients into a single flattened buffer", which "can be an fp32
  // tensor": "for a model with 1.5B parameters, a flattened fp32 buffer would require 6 GB" (4 B
  // per parameter) -- the paper's baseline, PyTorch DDP with Megatron-LM's fp16 optimizer (2019).
  // Charged only when the recipe has no fp32 gradient of its own (the megatron recipe's contiguous
  // fp32 main_grad buffer is itself the all-reduce buffer). 0 (default): not charged, as for
  // today's stacks whose DDP buckets are views of the gradients (PyTorch >= 1.7
  // gradient_as_bucket_view); `capacity` sets 4 to reproduce the paper's baseline.
  double dp_fused_grad_buffer_bytes = 0;
  // Optimizer state bytes per parameter (0: the recipe's, 8 for fp32 Adam's two moments). The
  // executor sets it from its optimizer: AdamW and LAMB keep m and v (8), LARS one momentum (4).
  double optimizer_state_bytes_per_param = 0;
  // Executor op time (issue 8, executor/predict.cpp, for the CPU backend): time each layer,
  // the embedding, the head, the optimizer and the step loop from the reference executor's own
  // kernel list (executor/gpt.cpp, counted in simulator/analytic/executor_ops.cpp) instead of the
  // GPU op model: every kernel call pays the device's kernel_overhead_s, every output buffer is
  // zero-filled when allocated (its bytes are streamed), and a strided-batched GEMM is `batch`
  // separate GEMMs (the CPU backend loops). Off for every other use.
  bool executor_op_time = false;
};

// What one transformer layer, the embedding and the LM head cost for one microbatch. It depends
// only on the plan's (mbs, tp, cp, sp, recompute, precision, tp_mode, tp_depth, cp_algo, ep) and
// the cluster, not on dp, pp, vpp, zero, schedule or gbs, so a search prepares it once per such
// combination and evaluates every plan that shares it with arithmetic only. If layer_cost/
// embedding_cost/head_cost or the activation model start reading another plan field, add it to the
// key below (and to matches()) and to the search's table key (simulator/search/search.cpp TableKey).
struct LayerTable {
  // The plan fields the table was prepared for (see matches()).
  int mbs = 0, tp = 0, cp = 0;
  bool sp = false;
  strategies::Recompute recompute = strategies::Recompute::none;
  strategies::Precision precision = strategies::Precision::bf16;
  strategies::TpMode tp_mode = strategies::TpMode::d1;
  int tp_depth = 1;
  strategies::CpAlgo cp_algo = strategies::CpAlgo::ring;
  int ep = 1;

  strategies::LayerShape sh;
  strategies::TpLayout layout;
  strategies::TpGroups g_tp;
  hw::Group g_cp;
  strategies::PhaseCost lc, ec, hc;  // layer, embedding, LM head
  double layer_act = 0;       // bytes one layer keeps per microbatch (under the recompute policy)
  double layer_act_full = 0;  // bytes a fully recomputed layer re-creates during its backward
  // Per-plan quantities that depend on the key fields only (computed once here, read by metrics()).
  double p2p_bytes = 0;                      // stage-to-stage activation of one send
  double layer_params = 0;                   // parameters of one layer on one GPU (also ZeRO-3's live layer)
  double word_params = 0;                    // parameters of the word embedding (or LM head) on one GPU
  double embedding_act = 0;                  // bytes the first stage adds per microbatch in flight
  double head_act = 0;                       // bytes the last stage's LM head keeps (one microbatch)
  double recompute_flops_per_seq_layer = 0;  // FLOPs recomputed per sequence and layer
  double peak_flops = 0;                     // the device's peak for the plan's compute dtype

  bool matches(const strategies::Plan& p) const {
    return p.mbs == mbs && p.tp == tp && p.cp == cp && p.sp == sp && p.recompute == recompute && p.precision == precision &&
           p.tp_mode == tp_mode && p.tp_depth == tp_depth && (cp <= 1 || p.cp_algo == cp_algo) && p.ep == ep;
  }
};

// offload=gemini (issue 6): the chunk configuration of each stage kind the estimator evaluates
// (first, middle, last; strategies::stage_chunk_config). It depends only on the plan's (tp, ep, pp,
// dp) and the model, and its chunk-size search allocates and takes ~1 ms, so a search prepares it
// once per such key (Estimator::prepare_chunks) and evaluates every gemini plan sharing it with
// arithmetic only. If stage_chunk_config starts reading another plan field, add it here.
struct ChunkTable {
  int tp = 0, ep = 0, pp = 0, dp = 0;
  strategies::ChunkConfig stage[3];  // indexed like the estimator's stages {0, pp > 2 ? 1 : 0, pp - 1}
  bool matches(const strategies::Plan& p) const { return p.tp == tp && p.ep == ep && p.pp == pp && p.dp == dp; }
};

// The dp-independent half of a ChunkTable: the chunk-size search of each stage kind (strategies::
// search_chunk_elems, up to 1024 packings of the stage's tensors), which depends on the plan's
// (tp, ep, pp) only. A search keeps one per such key and derives each dp's ChunkTable from it.
struct ChunkSearchTable {
  int tp = 0, ep = 0, pp = 0;
  double searched_elems[3] = {0, 0, 0};  // indexed like ChunkTable::stage
  bool matches(const strategies::Plan& p) const { return p.tp == tp && p.ep == ep && p.pp == pp; }
};

// A StepReport's numbers without the plan and the reason string: what the search loop keeps.
struct StepMetrics {
  bool feasible = true;
  strategies::MemoryBreakdown memory;
  strategies::TimeBreakdown time;
  strategies::CommBytes comm;
  strategies::Throughput throughput;
  double model_flops_per_step = 0, hw_flops_per_step = 0;
  double tp_comm_exposed_s = 0, dp_comm_exposed_s = 0, pp_comm_exposed_s = 0, cp_comm_exposed_s = 0;
  double ep_comm_exposed_s = 0;
  int most_loaded_stage = 0;
  strategies::OffloadDetail offload;  // issue 6
  int slowest_stage = 0;
  strategies::StageTimes stages;  // per-microbatch stage times the schedule was costed with (bounds checks)
};

class Estimator {
 public:
  Estimator(model::ModelSpec m, hw::Cluster c, EstimatorOptions o = {});
  // `p` must come from strategies::resolve_plan (all degrees valid for this model and cluster).
  // Same as evaluate(p, prepare(p)).
  strategies::StepReport evaluate(const strategies::Plan& p) const;
  // The per-layer costs of `p` (depend on the LayerTable key fields only).
  LayerTable prepare(const strategies::Plan& p) const;
  // `t` must match `p` (t.matches(p)). Formats the reason string only for an infeasible plan.
  // `chunks` (offload=gemini only; must match `p`): the prepared chunk configurations; null: computed here.
  strategies::StepReport evaluate(const strategies::Plan& p, const LayerTable& t, const ChunkTable* chunks = nullptr) const;
  // The chunk configurations of offload=gemini for `p` (depend on the ChunkTable key fields only).
  ChunkTable prepare_chunks(const strategies::Plan& p) const;
  // The same in two steps: the chunk-size search (ChunkSearchTable key fields only), and the
  // configurations for p's dp from it (`s` must match `p`).
  ChunkSearchTable search_chunks(const strategies::Plan& p) const;
  ChunkTable prepare_chunks(const strategies::Plan& p, const ChunkSearchTable& s) const;
  // The hot path of the search: arithmetic only, no allocation, no strings. An offload=gemini plan
  // needs its ChunkTable for that (without one, metrics runs the chunk-size search, which allocates).
  StepMetrics metrics(const strategies::Plan& p, const LayerTable& t, const ChunkTable* chunks = nullptr) const;
  const model::ModelSpec& model() const { return m_; }
  const hw::Cluster& cluster() const { return c_; }
  const EstimatorOptions& options() const { return o_; }
  // Optimizer-step bytes per parameter: the stack's own value where it states one
  // (hw::Software::optimizer_bytes_per_param, e.g. the 2019 per-tensor fp16 optimizer), else
  // options().optimizer_bytes_per_param; the executor's calibrated value always wins.
  double optimizer_bytes_per_param() const {
    return c_.sw.optimizer_bytes_per_param > 0 && !o_.executor_op_time ? c_.sw.optimizer_bytes_per_param : o_.optimizer_bytes_per_param;
  }

  // Parameter tensors one GPU of pipeline stage `stage` updates: hw::Software::param_tensors_per_layer
  // per layer, the word (and learned position) embedding on the first stage, the final norm and an
  // untied (or, at pp > 1, copied) LM head on the last. 0 where the stack states no per-layer count.
  double param_tensors_on_stage(const strategies::Plan& p, int stage, const strategies::StageLayers& sl) const;
  // Optimizer step of `opt_params` parameters in `tensors` tensors: the device's stream time of
  // optimizer_bytes_per_param() per parameter, or, where longer, the stack's per-tensor host work
  // (hw::Software::optimizer_host_s_per_tensor): eager loops whose launches cannot run ahead of a
  // device that finishes each small tensor's kernels sooner than the host issues them.
  double optimizer_time(double opt_params, double tensors) const;

  // Model FLOPs of one optimizer step for `gbs` sequences (Korthikanti 2022 eq. 7 for GPT).
  double model_flops_per_step(double gbs) const;
  // Parameters one GPU of pipeline stage `stage` holds before ZeRO sharding (all, and the MoE
  // expert part of them, whose gradients reduce over the dp/ep expert-data-parallel ranks).
  double params_on_stage(const strategies::Plan& p, int stage) const;
  double expert_params_on_stage(const strategies::Plan& p, int stage) const;

 private:
  // The same with what the hot path already knows (no layout lookup, no integer division):
  // params_on_stage from the parameters of one layer and of the word embedding on one GPU
  // (LayerTable::layer_params, word_params), expert_params_on_stage from the layout's weight divisor.
  double stage_params(const strategies::Plan& p, int stage, double layer_params, double word_params,
                      const strategies::StageLayers& sl) const;
  double expert_params_on_stage(const strategies::Plan& p, int stage, double weight_div, const strategies::StageLayers& sl) const;
  // ZeRO-3: the data-parallel time one microbatch exposes (comm_*: its forward gathers, its
  // backward gathers + reduce-scatters, of which rs_s the reduce-scatters; docs/zero3.md).
  double zero3_exposed(const strategies::Plan& p, const LayerTable& t, double P_stage, int stage,
                       const strategies::StageLayers& sl, double comm_fwd_s, double comm_bwd_s, double rs_s) const;
  // The model-state recipe of a plan of precision `p` under the options (built once, in the constructor).
  const strategies::Recipe& recipe(strategies::Precision p) const { return recipes_[static_cast<int>(p)]; }

  model::ModelSpec m_;
  hw::Cluster c_;
  EstimatorOptions o_;
  // Precomputed per-model tables.
  double layer_split_params_ = 0;       // divided by TP (column/row-parallel weights, column biases)
  double layer_replicated_params_ = 0;  // replicated over TP (norms, row-parallel biases)
  double layer_expert_params_ = 0;      // MoE expert weights (divided by TP and EP)
  double layer_fwd_flops_per_seq_ = 0;
  double final_norm_params_ = 0;
  strategies::Recipe recipes_[4];  // indexed by strategies::Precision (fp32, fp16, bf16, fp8)
};

}  // namespace scaleplan::analytic
