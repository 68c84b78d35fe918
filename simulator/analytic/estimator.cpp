#include "simulator/analytic/estimator.hpp"

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdio>

#include "hardware/collectives.hpp"
#include "simulator/analytic/executor_ops.hpp"
#include "simulator/analytic/mcore_ddp.hpp"
#include "strategies/chunks.hpp"
#include "strategies/expert.hpp"
#include "strategies/layer_cost.hpp"
#include "strategies/offload.hpp"
#include "strategies/pipeline.hpp"
#include "strategies/shared_cores.hpp"
#include "strategies/stack_caps.hpp"

namespace scaleplan::analytic {

using namespace scaleplan::strategies;

Estimator::Estimator(model::ModelSpec m, hw::Cluster c, EstimatorOptions o)
    : m_(std::move(m)), c_(std::move(c)), o_(o) {
  const double h = m_.hidden;
  const double kv = m_.kv_dim();
  const double row_bias = m_.bias ? 2 * h : 0;  // attention output bias and FC2 bias
  const double experts = m_.moe.enabled() ? m_.moe.experts : 1;
  const double col_b = m_.bias ? m_.mlp_matrices() - 1 : 0;  // FC1 (and gate) bias elements per unit of width
  const double mlp_w = m_.mlp_weight_params() + col_b * static_cast<double>(m_.ffn);
  // MoE: the routed experts split over ep (and tp); the shared experts are a dense TP-split MLP
  // (strategies/expert: expert_width, shared_experts_width).
  const double expert_w = m_.expert_mlp_params() + col_b * expert_width(m_);
  const double shared_w = m_.moe.shared_experts * m_.shared_expert_mlp_params() + col_b * shared_experts_width(m_);
  layer_split_params_ = m_.attn_weight_params() + (m_.bias ? (static_cast<double>(m_.q_dim()) + 2 * kv) : 0) +
                        (m_.moe.enabled() ? shared_w : mlp_w);
  layer_expert_params_ = m_.moe.enabled() ? experts * expert_w : 0;
  layer_replicated_params_ = m_.norm_params() + row_bias + m_.router_params();
  layer_fwd_flops_per_seq_ = layer_forward_flops(m_, static_cast<double>(m_.seq));
  final_norm_params_ = m_.final_norm_params();
  // Model-state recipes: fp32 plans always use 4+4+8; 16-bit ones the options' recipe; fp8 adds
  // the fp8 weight copies; the executor may set its optimizer's state bytes.
  for (const Precision pr : {Precision::fp32, Precision::fp16, Precision::bf16, Precision::fp8}) {
    Recipe rec = pr == Precision::fp32 ? recipe_zero_paper(Precision::fp32)
                 : o_.recipe == EstimatorOptions::RecipeKind::megatron ? recipe_megatron()
                 : o_.recipe == EstimatorOptions::RecipeKind::deepspeed ? recipe_deepspeed()
                                                                        : recipe_zero_paper(pr);
    if (pr != Precision::fp32 && o_.recipe_override) rec = *o_.recipe_override;
    if (pr == Precision::fp8) rec = with_fp8_weights(rec);
    if (o_.optimizer_state_bytes_per_param > 0) rec.optimizer_bytes = o_.optimizer_state_bytes_per_param;
    recipes_[static_cast<int>(pr)] = rec;
  }
}

double Estimator::model_flops_per_step(double gbs) const {
  // Forward + backward = 3x forward; LM head 2 s h V per forward (Korthikanti 2022 eq. 7).
  const double s = m_.seq;
  return gbs * (3.0 * m_.layers * layer_fwd_flops_per_seq_ + 3.0 * 2.0 * s * m_.hidden * m_.vocab);
}

double Estimator::params_on_stage(const Plan& p, int stage) const {
  // Split weights: 1/P per rank in 1d, 2d and 3d; 2.5d replicates the q x q weight grid over its
  // d layers (Tesseract: W/q^2 per rank; wdiv = TpLayout::weight_div). Experts: also split over ep.
  const double wdiv = tp_layout(p.tp_mode, p.tp, p.tp_depth).weight_div;
  const double layer = layer_split_params_ / wdiv + layer_replicated_params_ + layer_expert_params_ / (wdiv * p.ep);
  const double word = static_cast<double>(m_.vocab) * m_.hidden / p.tp;
  return stage_params(p, stage, layer, word, stage_layers(p, m_.layers));
}

double Estimator::param_tensors_on_stage(const Plan& p, int stage, const StageLayers& sl) const {
  const double per_layer = c_.sw.param_tensors_per_layer;
  if (per_layer <= 0) return 0;
  const bool first = stage == 0, last = stage == p.pp - 1;
  double n = (first ? sl.first : last ? sl.last : sl.middle) * per_layer;
  if (first) n += 1 + (m_.position == model::Position::learned ? 1 : 0);  // word (+ position) embedding
  if (last) n += m_.norm_params_per_norm() + (!m_.tied_embeddings || p.pp > 1 ? 1 : 0);  // final norm, head
  return n;
}

double Estimator::optimizer_time(double opt_params, double tensors) const {
  const double gpu = c_.device.stream_time(optimizer_bytes_per_param() * opt_params);
  // 2019 Megatron-LM (fp16/fp16.py, fp16/loss_scaler.py, mpu/grads.py @a1d04b79): Python loops over the
  // parameter tensors, one eager op per call; the step lasts at least as long as the host issues them.
  return std::max(gpu, tensors * c_.sw.optimizer_host_s_per_tensor);
}

double Estimator::stage_params(const Plan& p, int stage, double layer, double word, const StageLayers& sl) const {
  const bool first = stage == 0, last = stage == p.pp - 1;
  const double n = first ? sl.first : last ? sl.last : sl.middle;
  double P = n * layer;
  if (first) {
    P += word;
    if (m_.position == model::Position::learned) P += static_cast<double>(m_.seq) * m_.hidden;
  }
  if (last) {
    P += final_norm_params_;
    // Untied: the LM head. Tied with pp > 1: Megatron keeps a copy of the word embedding on the last stage.
    if (!m_.tied_embeddings || (p.pp > 1)) P += word;
  }
  return P;
}

double Estimator::expert_params_on_stage(const Plan& p, int stage) const {
  return expert_params_on_stage(p, stage, tp_layout(p.tp_mode, p.tp, p.tp_depth).weight_div, stage_layers(p, m_.layers));
}

double Estimator::expert_params_on_stage(const Plan& p, int stage, double wdiv, const StageLayers& sl) const {
  if (layer_expert_params_ <= 0) return 0;
  const double n = stage == 0 ? sl.first : stage == p.pp - 1 ? sl.last : sl.middle;
  return n * layer_expert_params_ / (wdiv * p.ep);
}

LayerTable Estimator::prepare(const Plan& p) const {
  LayerTable t;
  t.mbs = p.mbs;
  t.tp = p.tp;
  t.cp = p.cp;
  t.sp = p.sp;
  t.recompute = p.recompute;
  t.precision = p.precision;
  t.tp_mode = p.tp_mode;
  t.tp_depth = p.tp_depth;
  t.cp_algo = p.cp_algo;
  t.ep = p.ep;
  const double e = bytes_per_element(p.precision);

  // Rank order: TP innermost, then CP, DP, PP.
  t.layout = tp_layout(p.tp_mode, p.tp, p.tp_depth);
  t.g_tp = make_tp_groups(c_, t.layout);
  t.g_cp = hw::make_group(c_, p.cp, p.tp);

  LayerShape& sh = t.sh;
  sh.b = p.mbs;
  sh.s = static_cast<double>(m_.seq) / p.cp;
  sh.s_kv = static_cast<double>(m_.seq);
  sh.tp = p.tp;
  sh.cp = p.cp;
  sh.sp = p.sp && p.tp > 1 && p.tp_mode == TpMode::d1;
  sh.flash = c_.sw.flash_attention;
  sh.flash2 = c_.sw.flash2_attention;
  sh.flash_triton = c_.sw.flash_triton;
  sh.eager_elementwise = c_.sw.eager_elementwise;
  // Userbuffers / async TP need NVLink peers; the CPU executor's collectives block where issued.
  sh.tp_overlap = c_.sw.caps.tp_comm_overlap && sh.sp && p.tp <= c_.gpus_per_node && !o_.executor_op_time;
  sh.act_passes_fwd = c_.sw.activation_passes_fwd;
  sh.act_passes_bwd = c_.sw.activation_passes_bwd;
  sh.metric_logit_bytes = c_.sw.metric_logit_bytes;
  sh.recompute_early_stop = c_.sw.recompute_early_stop;
  sh.op_sac = c_.sw.selective_op_sac;
  sh.rng_copy_s = rng_state_copy_s(c_);
  sh.recompute = p.recompute;
  sh.precision = p.precision;
  sh.tp_mode = p.tp_mode;
  sh.tp_depth = p.tp_depth;
  sh.cp_algo = p.cp_algo;
  sh.ep = p.ep;
  sh.fp8_norm_fused = c_.sw.fp8_norm_fused_cast;
  sh.fp8_weight_cache = c_.sw.fp8_weight_cache;

  t.lc = layer_cost(m_, c_, sh, t.g_tp, t.g_cp);
  t.ec = embedding_cost(m_, c_, sh, t.g_tp.all);
  t.hc = head_cost(m_, c_, sh, t.g_tp.all);
  if (o_.executor_op_time) {  // see EstimatorOptions::executor_op_time
    const ExecutorOpTimes x = executor_op_times(m_, c_.device, sh);
    t.lc.fwd_s = x.layer_fwd_s;
    t.lc.bwd_s = x.layer_bwd_s;
    t.lc.wgrad_s = x.layer_wgrad_s;
    t.lc.recompute_s = x.layer_recompute_s;
    t.ec.fwd_s = x.emb_fwd_s;
    t.ec.bwd_s = x.emb_bwd_s;
    t.hc.fwd_s = x.head_fwd_s;
    t.hc.bwd_s = x.head_bwd_s;
    t.hc.wgrad_s = x.head_wgrad_s;
    // The executor's TP collectives block where they are issued: none hides under a GEMM.
    t.lc.bwd_comm_exposed_s = t.lc.bwd_comm_s + t.lc.bwd_comm_critical_s;
    t.hc.bwd_comm_exposed_s = t.hc.bwd_comm_s + t.hc.bwd_comm_critical_s;
  }

  // Grid TP modes distribute every activation over the P ranks (as 1d with SP does).
  const bool dist = sh.sp || (p.tp_mode != TpMode::d1 && p.tp > 1);
  // fp8 keeps the linears' inputs as their fp8 casts (1 B; strategies/memory.hpp ActShape).
  ActShape act{sh.b, sh.s, sh.s_kv, p.tp, dist, p.recompute, sh.flash, e, p.precision == Precision::fp8 ? 1.0 : e};
  act.op_sac = sh.op_sac;
  t.layer_act = layer_activation_bytes(m_, act);
  t.layer_act_full = p.recompute == Recompute::full ? layer_activation_bytes_no_recompute(m_, act) : 0;

  // Stage-to-stage activations: T*h (divided by t with the scatter/gather optimisation of SC21
  // sec. 4.1, or with SP), one send forward and one backward per chunk boundary.
  t.p2p_bytes = e * sh.b * sh.s * m_.hidden / p.tp;
  const double wdiv = t.layout.weight_div;
  // Parameters of one layer and of the word embedding on one GPU (params_on_stage).
  t.layer_params = layer_split_params_ / wdiv + layer_replicated_params_ + layer_expert_params_ / (wdiv * p.ep);
  t.word_params = static_cast<double>(m_.vocab) * m_.hidden / p.tp;
  const double sb = sh.b * sh.s;
  t.embedding_act = 8.0 * sb + (m_.dropout ? sb * m_.hidden / (dist ? p.tp : 1) : 0);  // token ids, embedding dropout mask
  // The loss's peak over the logits (hw::Software::ce_logit_peak_bytes; default the fp32 logits) and the
  // final-norm input, one microbatch.
  t.head_act = c_.sw.ce_logit_peak_bytes * sb * m_.vocab / p.tp + e * sb * m_.hidden;
  // Recomputed FLOPs per sequence and layer: the whole forward under full recompute; the attention
  // scores (4 s^2 h) under selective recompute without flash attention.
  // Early-stopping recompute (Software::recompute_early_stop) skips part of the forward: the layer
  // cost's own recomputed share of its forward FLOPs.
  const double lc_fwd_flops = t.lc.model_flops / 3;
  const double rc_share = lc_fwd_flops > 0 ? t.lc.recompute_flops / lc_fwd_flops : 1.0;
  t.recompute_flops_per_seq_layer = p.recompute == Recompute::full || (p.recompute == Recompute::selective && sh.op_sac)
                                        ? layer_fwd_flops_per_seq_ * rc_share
                                    : p.recompute == Recompute::selective && !sh.flash
                                        ? 4.0 * m_.seq * static_cast<double>(m_.seq) * m_.hidden
                                        : 0;
  t.peak_flops = c_.device.peak(compute_dtype(p.precision));
  return t;
}

namespace {
// FSDP units on a stage (Software::fsdp_per_layer): its transformer blocks, plus the root unit
// (embeddings, final norm; llm-foundry wraps each MPTBlock, the root FSDP instance the rest) on the
// first and last stages.
double fsdp_units(const Plan& p, int stage, const StageLayers& sl) {
  const bool first = stage == 0, last = stage == p.pp - 1;
  const double layers = first ? sl.first : last ? sl.last : sl.middle;
  return std::max(1.0, layers + (first || last ? 1 : 0));
}

// The reason of an offload plan that the host, NVMe or the chunk manager's GPU room refuses
// (false when the GPU itself is the binding resource: the generic message below says so).
bool offload_reason(StepReport& r) {
  const OffloadDetail& od = r.offload;
  const double gib = 1024.0 * 1024.0 * 1024.0;
  char buf[320];
  if (od.host_over) {
    std::snprintf(buf, sizeof buf,
                  "out of host memory: offload=%s needs %.2f GiB per GPU x %d GPUs per node = %.1f GiB of the %.1f GiB host memory "
                  "it may use",
                  name(r.plan.offload), r.memory.host / gib, od.ranks_per_node, r.memory.host * od.ranks_per_node / gib,
                  od.host_capacity * od.ranks_per_node / gib);
  } else if (od.nvme_over) {
    std::snprintf(buf, sizeof buf, "out of NVMe: offload=nvme needs %.2f GiB per GPU x %d GPUs per node = %.1f GiB of the node's %.1f GiB",
                  r.memory.nvme / gib, od.ranks_per_node, r.memory.nvme * od.ranks_per_node / gib,
                  od.nvme_capacity * od.ranks_per_node / gib);
  } else if (r.plan.offload == Offload::gemini && !(r.memory.total() > r.memory.capacity)) {
    std::snprintf(buf, sizeof buf,
                  "out of GPU memory for chunks: the two gathered chunks in flight (%.2f GiB) do not fit beside the non-model "
                  "data within the chunk manager's share of the GPU",
                  2 * 2 * od.chunk_elems / gib);
  } else {
    return false;
  }
  r.reason = buf;
  return true;
}
// CPU executor ranks sharing cores (k = ranks / host cores > 1, mpirun --oversubscribe): the
// calibrated rates are per rank with every rank busy (1/k of a core each). While some stages wait
// (fill, drain, a message) the kernel scheduler gives their cores to the runnable ranks, which then
// run up to k times faster: GPipe and 1F1B are simulated under that sharing
// (strategies/shared_cores.hpp; issue 22: gpt-small pp=4 on 4 ranks / 2 cores measured 438-476 ms
// for 1F1B and 511-532 ms for GPipe, both predicted 562 ms before). Other schedules: the bubble
// costs 1/k of its length (gpt-small dp=2,pp=2 predicted 278 ms with the whole bubble, 241 ms
// with 1/k, measured 236 ms).
double shared_pipeline(const Plan& p, long long m, double k, double t_pipe, const StageTimes& st, const double (&f)[3],
                       const double (&b)[3]) {
  if (p.pp > 1 && p.pp <= kSharedCoresMaxStages) {
    std::array<double, kSharedCoresMaxStages> fs{}, bs{};
    for (int i = 0; i < p.pp; ++i) {
      const int kind = i == 0 ? 0 : i == p.pp - 1 ? 2 : 1;
      fs[i] = f[kind], bs[i] = b[kind];
    }
    const double t = shared_cores_pipeline_time(p.vpp > 1 ? Schedule::interleaved : p.schedule, p.pp, m, fs.data(), bs.data(), k);
    if (t >= 0) return t;
  }
  const double bubble = std::max(0.0, t_pipe - static_cast<double>(m) * st.max_s);
  return t_pipe - bubble * (1 - 1 / k);
}
}  // namespace

StepReport Estimator::evaluate(const Plan& p) const { return evaluate(p, prepare(p)); }

ChunkTable Estimator::prepare_chunks(const Plan& p) const { return prepare_chunks(p, search_chunks(p)); }

ChunkSearchTable Estimator::search_chunks(const Plan& p) const {
  ChunkSearchTable cs;
  cs.tp = p.tp;
  cs.ep = p.ep;
  cs.pp = p.pp;
  const int stages[3] = {0, p.pp > 2 ? 1 : 0, p.pp - 1};
  for (int k = 0; k < 3; ++k)
    cs.searched_elems[k] = k > 0 && stages[k] == stages[k - 1]
                               ? cs.searched_elems[k - 1]
                               : search_chunk_elems(stage_chunk_tensors(m_, p, stages[k]), ChunkSearch{}, static_cast<double>(m_.hidden));
  return cs;
}

ChunkTable Estimator::prepare_chunks(const Plan& p, const ChunkSearchTable& s) const {
  ChunkTable ct;
  ct.tp = p.tp;
  ct.ep = p.ep;
  ct.pp = p.pp;
  ct.dp = p.dp;
  const int stages[3] = {0, p.pp > 2 ? 1 : 0, p.pp - 1};
  for (int k = 0; k < 3; ++k)  // = stage_chunk_config(m_, p, stages[k])
    ct.stage[k] = k > 0 && stages[k] == stages[k - 1] ? ct.stage[k - 1]
                                                       : chunk_configuration(stage_chunk_tensors(m_, p, stages[k]), s.searched_elems[k], p.dp);
  return ct;
}

StepReport Estimator::evaluate(const Plan& p, const LayerTable& t, const ChunkTable* chunks) const {
  const StepMetrics x = metrics(p, t, chunks);
  StepReport r;
  r.plan = p;
  r.feasible = x.feasible;
  r.memory = x.memory;
  r.time = x.time;
  r.comm = x.comm;
  r.throughput = x.throughput;
  r.model_flops_per_step = x.model_flops_per_step;
  r.hw_flops_per_step = x.hw_flops_per_step;
  r.tp_comm_exposed_s = x.tp_comm_exposed_s;
  r.dp_comm_exposed_s = x.dp_comm_exposed_s;
  r.pp_comm_exposed_s = x.pp_comm_exposed_s;
  r.cp_comm_exposed_s = x.cp_comm_exposed_s;
  r.ep_comm_exposed_s = x.ep_comm_exposed_s;
  r.most_loaded_stage = x.most_loaded_stage;
  r.slowest_stage = x.slowest_stage;
  r.offload = x.offload;
  // A plan the stack cannot run (configs/stacks capabilities) is infeasible whatever it costs.
  if (std::string why = strategies::stack_refusal(c_.sw, p); !why.empty()) {
    r.feasible = false;
    r.reason = std::move(why);
    return r;
  }
  if (!r.feasible && offload_reason(r)) return r;  // host / NVMe / chunk room (issue 6)
  if (!r.feasible) {
    const MemoryBreakdown& best = r.memory;
    const double gib = 1024.0 * 1024.0 * 1024.0;
    struct {
      const char* n;
      double v;
    } cats[] = {{"params", best.params}, {"grads", best.grads}, {"optimizer", best.optimizer}, {"activations", best.activations},
                {"buffers", best.buffers}};
    int big = 0;
    for (int k = 1; k < 5; ++k)
      if (cats[k].v > cats[big].v) big = k;
    char buf[256];
    std::snprintf(buf, sizeof buf, "out of memory on pipeline stage %d: needs %.2f GiB of %.2f GiB (over by %.2f GiB; largest category %s %.2f GiB)",
                  r.most_loaded_stage, best.total() / gib, best.capacity / gib, (best.total() - best.capacity) / gib, cats[big].n,
                  cats[big].v / gib);
    r.reason = buf;
  }
  return r;
}

// ZeRO-3 / FSDP, one microbatch on the slowest stage (docs/zero3.md): the forward's gathers run
// under the forward compute, the backward's gathers and reduce-scatters under the backward (and
// recompute) compute, as far as prefetch lets them: with depth 0 nothing hides; otherwise the first
// fetch of each pass (one layer, at most the prefetch bucket) and the last layer's reduce-scatter
// wait, and the rest overlaps, still costing the compute its overlap_slowdown share (SM and HBM
// contention, as for TP overlap: strategies/layer_cost.hpp exposed_under).
double Estimator::zero3_exposed(const Plan& p, const LayerTable& t, double P_stage, int stage, const StageLayers& sl,
                                double comm_fwd_s, double comm_bwd_s, double rs_s) const {
  const double comm = comm_fwd_s + comm_bwd_s;
  if (c_.sw.zero3_prefetch_depth <= 0 || P_stage <= 0) return comm;
  const bool first = stage == 0, last = stage == p.pp - 1;
  const double layers = first ? sl.first : last ? sl.last : sl.middle;
  const double fwd = layers * t.lc.fwd_s + (first ? t.ec.fwd_s : 0) + (last ? t.hc.fwd_s : 0);
  const double bwd = layers * (t.lc.bwd_s + t.lc.recompute_s) + (first ? t.ec.bwd_s : 0) + (last ? t.hc.bwd_s : 0);
  // Share of a pass the first fetch is: one layer, or the prefetch bucket if smaller (16-bit bytes).
  const double layer_bytes = 2.0 * t.layer_params;
  const double unit = std::min(1.0, std::min(layer_bytes, c_.sw.zero3_prefetch_bucket_bytes) / (2.0 * P_stage));
  const double ag_bwd = comm_bwd_s - rs_s;
  const double wait_fwd = unit * comm_fwd_s, wait_bwd = unit * (ag_bwd + rs_s);
  const hw::Device& d = c_.device;
  return wait_fwd + exposed_under(d, comm_fwd_s - wait_fwd, fwd) + wait_bwd + exposed_under(d, comm_bwd_s - wait_bwd, bwd);
}

StepMetrics Estimator::metrics(const Plan& p, const LayerTable& t, const ChunkTable* chunks) const {
  // A stack whose ZeRO-3 keeps the gathered parameters through a pipelined step (Software::pp_fsdp_unsharded)
  // runs it as ZeRO-1: full weights and gradients during the step, states sharded, one gather and one
  // reduce-scatter per step.
  if (c_.sw.pp_fsdp_unsharded && p.pp > 1 && p.zero == 3 && p.zero_shard == 0 && p.offload == Offload::none) {
    Plan q = p;
    q.zero = 1;
    return metrics(q, t, chunks);
  }
  StepMetrics r;
  const hw::Device& dev = c_.device;
  const double e = bytes_per_element(p.precision);
  const long long m = p.microbatches();
  const int v = p.schedule == Schedule::interleaved ? p.vpp : 1;

  // Rank order: TP innermost, then CP, DP, PP.
  // Strides of the DP and PP groups from the cluster's rank order (TP, CP innermost).
  const int s_dp = c_.sw.pp_inside_dp ? p.tp * p.cp * p.pp : p.tp * p.cp;
  const int s_pp = c_.sw.pp_inside_dp ? p.tp * p.cp : p.tp * p.cp * p.dp;
  hw::Group g_dp = hw::make_group(c_, p.dp, s_dp);
  g_dp.aggregate_nics = c_.sw.dp_nics_aggregate;  // how the stack's DP collectives use the NICs (issue 15)
  const hw::Group g_p2p = hw::make_group(c_, 2, s_pp);
  // Expert parallel: ep consecutive DP ranks (strategies/expert.hpp placement); the expert weights'
  // gradients reduce over the dp/ep ranks holding the same experts (stride ep x the DP stride).
  const bool ep_on = p.ep > 1;
  const hw::Group g_ep = ep_on ? hw::make_group(c_, p.ep, s_dp) : hw::Group{};
  hw::Group g_edp = ep_on ? hw::make_group(c_, p.dp / p.ep, s_dp * p.ep) : hw::Group{};
  g_edp.aggregate_nics = c_.sw.dp_nics_aggregate;
  const double wdiv = t.layout.weight_div;

  const LayerShape& sh = t.sh;
  const PhaseCost& lc = t.lc;
  const PhaseCost& ec = t.ec;
  const PhaseCost& hc = t.hc;

  // One layer, one microbatch: forward, backward (+ recompute), with the TP collectives on the
  // critical path; backward collectives hide under the weight-gradient GEMMs (Megatron async TP).
  const double layer_compute = lc.fwd_s + lc.bwd_s + lc.recompute_s;
  // MoE dispatch + combine all-to-alls over the EP group (exposed: the experts wait for their tokens).
  const int a2a_calls = lc.ep_a2a_fwd * (p.recompute == Recompute::full ? 2 : 1) + lc.ep_a2a_bwd;
  const double layer_ep = a2a_calls > 0 ? a2a_calls * hw::collective_time(c_, hw::Coll::all_to_all, lc.ep_a2a_bytes, g_ep) : 0;
  const double layer_comm = lc.fwd_comm_s + lc.recompute_comm_s + lc.bwd_comm_exposed_s + layer_ep;
  const double emb_compute = ec.fwd_s + ec.bwd_s, emb_comm = ec.fwd_comm_s;
  const double head_compute = hc.fwd_s + hc.bwd_s, head_comm = hc.fwd_comm_s + hc.bwd_comm_exposed_s;

  // Stage-to-stage activations (LayerTable::p2p_bytes), one send forward and one backward per chunk boundary.
  const double p2p_bytes = t.p2p_bytes;
  const double t_p2p = p.pp > 1 ? hw::collective_time(c_, hw::Coll::send_recv, p2p_bytes, g_p2p) : 0;
  const double p2p_per_mb = p.pp > 1 ? 2.0 * v * t_p2p : 0;

  const StageLayers sl = stage_layers(p, m_.layers);
  StageTimes st;
  double comp_max = 0, comm_at_max = 0, ep_at_max = 0;
  int slowest = 0;
  double stage_f[3] = {0, 0, 0}, stage_b[3] = {0, 0, 0};  // first, middle, last stage: one microbatch's F, B
  auto add_stage = [&](int i, double layers, double count) {
    const bool first = i == 0, last = i == p.pp - 1;
    const double comp = layers * layer_compute + (first ? emb_compute : 0) + (last ? head_compute : 0);
    const double comm = layers * layer_comm + (first ? emb_comm : 0) + (last ? head_comm : 0) + p2p_per_mb;
    const double tot = comp + comm;
    const double w = layers * lc.wgrad_s + (first ? ec.wgrad_s : 0) + (last ? hc.wgrad_s : 0);  // W of one microbatch
    // Forward of one microbatch (with its send), for GPipe's two phases; the backward is the rest.
    const double f = layers * (lc.fwd_s + lc.fwd_comm_s) + (first ? ec.fwd_s + ec.fwd_comm_s : 0) + (last ? hc.fwd_s + hc.fwd_comm_s : 0) +
                     0.5 * p2p_per_mb;
    const int kind = first ? 0 : last ? 2 : 1;
    stage_f[kind] = f, stage_b[kind] = tot - f;
    st.f_max_s = std::max(st.f_max_s, f);
    st.b_max_s = std::max(st.b_max_s, tot - f);
    st.sum_s += count * tot;
    st.w_sum_s += count * w;
    if (first) st.w_first_s = w;
    st.w_min_s = first ? w : std::min(st.w_min_s, w);
    if (tot > st.max_s) {
      st.max_s = tot;
      st.w_s = w;
      comp_max = comp;
      comm_at_max = comm;
      ep_at_max = layers * layer_ep;
      slowest = i;
    }
  };
  if (p.pp == 1) {
    add_stage(0, sl.first, 1);
  } else {
    add_stage(0, sl.first, 1);
    if (p.pp > 2) add_stage(1, sl.middle, p.pp - 2);
    add_stage(p.pp - 1, sl.last, 1);
  }
  const ScheduleModel& sched = schedule_model(p.schedule);
  double t_pipe = sched.time(st, p.pp, v, m);

  // Data parallel: gradient all-reduce (ZeRO-0), reduce-scatter + all-gather (ZeRO-1/2), or the
  // per-microbatch parameter all-gathers and gradient reduce-scatter of ZeRO-3.
  const Recipe& rec = recipe(p.precision);
  const double P_slow = stage_params(p, slowest, t.layer_params, t.word_params, sl);
  // MoE with ep > 1: the expert weights reduce over their own dp/ep group, the rest over dp.
  const double P_exp = ep_on ? expert_params_on_stage(p, slowest, wdiv, sl) : 0;
  const double grad_e = rec.grad_bytes > 0 ? rec.grad_bytes : rec.main_grad_bytes;
  // Executor op time: the slowest stage's parameter units (executor/gpt.cpp stage_units: a unit per
  // layer; word and position embedding on the first stage; final norm, and the tied copy at pp > 1,
  // on the last), each its own DP bucket, optimizer call and gradient fill.
  const double units_slow = (slowest == 0 ? sl.first : slowest == p.pp - 1 ? sl.last : sl.middle) +
                            (slowest == 0 ? 2 : 0) + (slowest == p.pp - 1 ? (p.pp > 1 ? 2 : 1) : 0);
  const double nu = o_.executor_op_time ? units_slow : 1;
  // FSDP units (Software::fsdp_per_layer): one sharded collective per transformer block and pass, plus
  // the root unit (embeddings, final norm) on the stages that hold it; each pays the ring latency.
  const bool fsdp = c_.sw.fsdp_per_layer && p.zero >= 2;
  const double nz = fsdp && !o_.executor_op_time ? fsdp_units(p, slowest, sl) : nu;
  const double red_e = c_.sw.grad_reduce_bytes > 0 ? c_.sw.grad_reduce_bytes : grad_e;  // reduce dtype
  const bool z3_regather = c_.sw.zero3_regather_recompute && p.recompute == Recompute::full;
  // Hybrid sharding: shard groups of zero_shard consecutive DP ranks, replica groups across them.
  const bool hsdp = p.zero >= 3 && p.zero_shard > 0 && p.zero_shard < p.dp;
  hw::Group g_shard = hsdp ? hw::make_group(c_, p.zero_shard, s_dp) : hw::Group{};
  hw::Group g_replica = hsdp ? hw::make_group(c_, p.dp / p.zero_shard, s_dp * p.zero_shard) : hw::Group{};
  g_shard.aggregate_nics = g_replica.aggregate_nics = c_.sw.dp_nics_aggregate;
  // The dense weights' gradients (and ZeRO-3's shards, Plan::shard_degree) span the DP x CP ranks, which
  // hold the same weights: Megatron-Core's DDP reduces over get_data_parallel_group(with_context_parallel=True),
  // torchtitan shards over the dp_shard_cp mesh. With TP and CP innermost (rank order tp-cp-dp-pp) they are
  // dp x cp consecutive TP strides.
  hw::Group g_dpcp = g_dp;
  if (p.cp > 1 && !c_.sw.pp_inside_dp) {
    g_dpcp = hw::make_group(c_, p.dp * p.cp, p.tp);
    g_dpcp.aggregate_nics = c_.sw.dp_nics_aggregate;
  }
  double z3_fwd = 0, z3_bwd = 0, z3_rs = 0;  // ZeRO-3, one microbatch: forward gathers, backward gathers + reduce-scatter
  double dp_ag = 0;  // ZeRO-1/2: the updated parameters' all-gather (part of the DP time)
  // The data-parallel traffic of `P` parameters over group `g` of n ranks (time, payload bytes).
  auto dp_traffic = [&](double P, const hw::Group& g, double* time, double* bytes) {
    if (g.size <= 1 || P <= 0) return;
    const double gb = red_e * P, pb = rec.param_bytes * P;
    // nu buckets of equal share (nu = 1 unless executor_op_time): each collective pays its latency.
    if (p.zero == 0) {
      *time += nu * hw::collective_time(c_, hw::Coll::all_reduce, gb / nu, g);
      *bytes += gb;
    } else if (p.zero == 2 && fsdp) {
      // FSDP SHARD_GRAD_OP: every microbatch gathers each unit before its forward (kept through the
      // backward) and reduce-scatters its gradients in the backward; overlapped as ZeRO-3's below.
      const double ag = nz * hw::collective_time(c_, hw::Coll::all_gather, pb / nz, g);
      const double rs = nz * hw::collective_time(c_, hw::Coll::reduce_scatter, gb / nz, g);
      z3_fwd += ag;
      z3_bwd += rs;
      z3_rs += rs;
      *time += static_cast<double>(m) * (ag + rs);
      *bytes += static_cast<double>(m) * (pb + gb);
    } else if (p.zero <= 2) {
      const double ag = nu * hw::collective_time(c_, hw::Coll::all_gather, pb / nu, g);
      *time += nu * hw::collective_time(c_, hw::Coll::reduce_scatter, gb / nu, g) + ag;
      dp_ag += ag;
      *bytes += gb + pb;
    } else {
      // ZeRO-3 / FSDP (docs/zero3.md): every microbatch gathers the parameters before its forward
      // and again before its backward (a third time when recompute re-gathers), and
      // reduce-scatters the gradients after its backward.
      // Hybrid sharding (zero_shard): the gathers and reduce-scatters stay inside the shard group.
      const hw::Group& gs = hsdp ? g_shard : g;
      const double ag = nz * hw::collective_time(c_, hw::Coll::all_gather, pb / nz, gs);
      const double rs = nz * hw::collective_time(c_, hw::Coll::reduce_scatter, gb / nz, gs);
      z3_fwd += ag;
      z3_bwd += (z3_regather ? 2 : 1) * ag + rs;
      z3_rs += rs;
      *time += static_cast<double>(m) * (ag + (z3_regather ? 2 : 1) * ag + rs);
      *bytes += static_cast<double>(m) * ((z3_regather ? 3 : 2) * pb + gb);
    }
  };
  double dp_time = 0, dp_bytes = 0;
  dp_traffic(P_slow - P_exp, g_dpcp, &dp_time, &dp_bytes);
  if (ep_on) dp_traffic(P_exp, g_edp, &dp_time, &dp_bytes);
  double dp_exposed = dp_time;
  if ((p.zero >= 3 || fsdp) && g_dpcp.size > 1) {
    // Hybrid sharding: the gradient shard is all-reduced over the replica group once per step, in
    // the last microbatch's backward (FSDP2 FSDPModule.set_requires_all_reduce(False) on the other
    // microbatches, torch/distributed/_composable/fsdp/fully_shard.py; FSDP1 HYBRID_SHARD
    // all-reduces after the reduce-scatter in _post_backward_hook).
    double ar = 0;
    if (hsdp) {
      const double shard_grad = grad_e * (P_slow - P_exp) / p.zero_shard;
      ar = hw::collective_time(c_, hw::Coll::all_reduce, shard_grad, g_replica);
      dp_time += ar;
      dp_bytes += shard_grad;
    }
    dp_exposed = static_cast<double>(m - 1) * zero3_exposed(p, t, P_slow, slowest, sl, z3_fwd, z3_bwd, z3_rs) +
                 zero3_exposed(p, t, P_slow, slowest, sl, z3_fwd, z3_bwd + ar, z3_rs + ar);
  } else if (c_.sw.dp_overlap && g_dpcp.size > 1) {
    // Bucketed reduction overlapped with backward (ZeRO 0-2): the last microbatch's backward is the
    // window (ZeRO-3 above: its prefetch decides the overlap).
    const double bwd_window = comp_max - (sl.first * (lc.fwd_s) + 0);
    // ZeRO-1/2: the reduce-scatters and the updated parameters' all-gather share the backward
    // window. With the stack's dp_param_gather_overlap (Megatron-Core --overlap-param-gather) the
    // gather runs bucket by bucket under the next step's first forward (a bucket's forward pre-hook
    // waits for it) and only what that forward does not cover joins the reduce-scatters. (The shared
    // window is optimistic where nothing overlaps the gather, which follows the optimizer step: the
    // DES gathers under the first forward on every stack; docs/stacks.md.)
    // Interleaved: each chunk syncs after its own last backward (mcore_ddp.hpp dp_window_scale).
    const double k_win = c_.sw.dp_chunk_sync ? dp_window_scale(v, p.pp, m) : 1.0;
    if (c_.sw.dp_param_gather_overlap && dp_ag > 0) {
      const double fwd_window = k_win * stage_f[slowest == 0 ? 0 : slowest == p.pp - 1 ? 2 : 1];
      dp_exposed = std::max(0.0, dp_time - dp_ag + std::max(0.0, dp_ag - fwd_window) - std::max(0.0, k_win * bwd_window));
    } else {
      dp_exposed = std::max(0.0, dp_time - std::max(0.0, k_win * bwd_window));
    }
    // Megatron-Core buckets (Software::dp_bucket_*): on the stage holding the word embedding its bucket's
    // reduce-scatter starts only when the backward has ended and its all-gather before the forward starts.
    const double edge = slowest == 0 && !ep_on ? dp_edge_bucket_params(dp_bucket_params(c_.sw, p.dp), t.word_params, P_slow) : 0;
    if (edge > 0) {
      const double floor_s = p.zero == 0 ? hw::collective_time(c_, hw::Coll::all_reduce, red_e * edge, g_dpcp)
                                         : hw::collective_time(c_, hw::Coll::reduce_scatter, red_e * edge, g_dpcp) +
                                               hw::collective_time(c_, hw::Coll::all_gather, rec.param_bytes * edge, g_dpcp);
      dp_exposed = std::max(dp_exposed, std::min(dp_time, floor_s));
    }
  }
  // The DDP's gradient-buffer passes on the compute stream (Software::ddp_grad_passes; mcore_ddp.hpp).
  const double t_ddp = g_dpcp.size > 1 && p.zero <= 2 && !fsdp
                           ? ddp_grad_pass_s(dev, c_.sw.ddp_grad_passes, red_e, P_slow, dp_bucket_params(c_.sw, p.dp))
                           : 0;
  // Tied embeddings across pipeline ends: all-reduce of the word-embedding gradient (first <-> last stage).
  double emb_ar = 0;
  if (m_.tied_embeddings && p.pp > 1) {
    const hw::Group g_ends = hw::make_group(c_, 2, s_pp * (p.pp - 1));
    emb_ar = hw::collective_time(c_, hw::Coll::all_reduce, grad_e * m_.vocab * m_.hidden / p.tp, g_ends);
  }
  // Optimizer step on this GPU's shard.
  const double opt_params = p.zero >= 1 ? (P_slow - P_exp) / p.state_shards() + P_exp / (p.dp / p.ep) : P_slow;
  double t_opt = optimizer_time(opt_params, param_tensors_on_stage(p, slowest, sl));
  double t_loop = 0;  // the executor's own per-step work outside the model (executor_op_time)
  if (o_.executor_op_time) {
    // One optimizer call per unit (nu kernels over the shard), and run_step's zero fill of every
    // unit's gradient buffer (4 B per local gradient) and the loss's host all-reduce over all ranks.
    t_opt = nu * dev.kernel_time(hw::KernelClass::optimizer, o_.optimizer_bytes_per_param * opt_params / nu);
    const double grads_local = p.zero >= 2 ? P_slow / p.dp : P_slow;
    t_loop = nu * dev.kernel_time(hw::KernelClass::copy, grad_e * grads_local / nu);
    if (p.gpus() > 1) t_loop += hw::collective_time(c_, hw::Coll::all_reduce, 8, hw::make_group(c_, static_cast<int>(p.gpus()), 1));
  }

  // CPU executor ranks sharing cores (k = ranks / host cores > 1, mpirun --oversubscribe): the
  // calibrated rates are per rank with every rank busy (1/k of a core each); in a rank's pipeline
  // bubble its share goes to the ranks on its core, which then run k times faster, so the bubble
  // costs 1/k of its length (issue 22: gpt-small dp=2,pp=2 on 4 ranks / 2 cores predicted 278 ms
  // with the whole bubble, 241 ms with this, measured 236 ms; pp=4: 516 -> 459, measured 477).
  if (o_.executor_op_time && c_.host.cores > 0 && p.gpus() > c_.host.cores) {
    const double k = static_cast<double>(p.gpus()) / c_.host.cores;
    t_pipe = shared_pipeline(p, m, k, t_pipe, st, stage_f, stage_b);
  }
  // The stack's end-of-step metric synchronization over all ranks (Software::metric_sync_states).
  const double t_msync = c_.sw.metric_sync_states > 0 ? metric_sync_s(c_, p.gpus()) : 0;
  // FP8 with the stack's weight cache: the slowest stage's layers cast their weights once per step,
  // in the first microbatch's forward (PhaseCost::fp8_weight_cast_s; TE is_first_microbatch).
  const double t_wcast = (slowest == 0 ? sl.first : slowest == p.pp - 1 ? sl.last : sl.middle) * lc.fp8_weight_cast_s;
  const double step = t_pipe + dp_exposed + emb_ar + t_opt + t_ddp + t_loop + c_.sw.step_overhead_s + t_msync + t_wcast;

  // Time breakdown (contract): compute = the slowest stage's compute for m microbatches + optimizer;
  // bubble = what the schedule adds beyond m x the slowest stage; comm = exposed collectives.
  r.time.step_s = step;
  r.time.compute_s = static_cast<double>(m) * comp_max + t_opt + t_ddp + t_wcast;
  r.time.optimizer_s = t_opt;
  r.time.bubble_s = std::max(0.0, t_pipe - static_cast<double>(m) * st.max_s);
  r.time.comm_exposed_s = static_cast<double>(m) * comm_at_max + dp_exposed + emb_ar + t_msync;
  r.time.offload_exposed_s = 0;
  r.time.host_s = t_loop + c_.sw.step_overhead_s;
  r.stages = st;
  r.tp_comm_exposed_s = static_cast<double>(m) * (comm_at_max - p2p_per_mb - ep_at_max);
  r.ep_comm_exposed_s = static_cast<double>(m) * ep_at_max;
  r.pp_comm_exposed_s = static_cast<double>(m) * p2p_per_mb;
  r.dp_comm_exposed_s = dp_exposed + emb_ar;
  r.most_loaded_stage = 0;
  r.slowest_stage = slowest;

  // Communication payload per GPU per step (contract definition; slowest stage).
  const double layers_slow = slowest == 0 ? sl.first : slowest == p.pp - 1 ? sl.last : sl.middle;
  r.comm.tp = static_cast<double>(m) * (layers_slow * lc.tp_bytes + (slowest == 0 ? ec.tp_bytes : 0) +
                                        (slowest == p.pp - 1 ? hc.tp_bytes : 0));
  r.comm.pp = p.pp > 1 ? static_cast<double>(m) * 2.0 * v * p2p_bytes : 0;
  r.comm.dp = dp_bytes + (m_.tied_embeddings && p.pp > 1 && (slowest == 0 || slowest == p.pp - 1)
                              ? grad_e * m_.vocab * m_.hidden / p.tp : 0);
  r.comm.cp = static_cast<double>(m) * layers_slow * lc.cp_bytes;
  r.comm.ep = static_cast<double>(m) * layers_slow * a2a_calls * lc.ep_a2a_bytes;
  if (o_.executor_accounting) {  // see EstimatorOptions::executor_accounting
    const double md = static_cast<double>(m);
    const double w = grad_e * m_.vocab * m_.hidden / p.tp;  // the word embedding's gradient (= its params in fp32)
    if (p.dp > 1 && p.zero == 2) r.comm.dp += (md - 1) * grad_e * P_slow;
    if (p.dp > 1 && p.pp == 1 && m_.tied_embeddings && p.zero >= 2) r.comm.dp += md * (p.zero >= 3 ? 3 : 1) * w;
    if (m_.tied_embeddings && p.pp > 1 && p.zero >= 1 && (slowest == 0 || slowest == p.pp - 1)) r.comm.dp -= w - w / p.dp;
    // Pipeline: a stage sends forward unless it is the last and backward unless it is the first;
    // without SP a TP group receives 1/t of the activation and all-gathers it (SC21 sec. 4.1).
    if (p.pp > 1) {
      // Per microbatch: v chunks x 2 directions, less the first chunk's backward on the first stage
      // and the last chunk's forward on the last stage.
      const double sends = 2.0 * v - (slowest == 0 ? 1 : 0) - (slowest == p.pp - 1 ? 1 : 0);
      r.comm.pp = md * sends * p2p_bytes;
      if (p.tp > 1 && !sh.sp) r.comm.tp += md * sends * e * sh.b * sh.s * m_.hidden;
    }
    if (sh.sp) {
      const double repl = layers_slow * layer_replicated_params_ + (slowest == p.pp - 1 ? m_.final_norm_params() : 0);
      r.comm.tp += (slowest == 0 ? md * e * sh.b * sh.s * m_.hidden : 0) + (p.zero >= 2 ? md : 1.0) * e * repl;
    }
  }

  // FLOPs and throughput.
  const double gpus = static_cast<double>(p.gpus());
  r.model_flops_per_step = model_flops_per_step(static_cast<double>(p.gbs));
  r.hw_flops_per_step = r.model_flops_per_step + static_cast<double>(p.gbs) * m_.layers * t.recompute_flops_per_seq_layer;
  const double peak = t.peak_flops;
  r.throughput.tokens_per_s = static_cast<double>(p.gbs) * m_.seq / step;
  r.throughput.model_flops_per_gpu = r.model_flops_per_step / step / gpus;
  r.throughput.hw_flops_per_gpu = r.hw_flops_per_step / step / gpus;
  r.throughput.mfu = r.throughput.model_flops_per_gpu / peak;
  r.throughput.hfu = r.throughput.hw_flops_per_gpu / peak;

  // Memory: the most-loaded of the first, a middle and the last stage.
  const double layer_act = t.layer_act;
  const double layer_act_full = t.layer_act_full;
  const double largest_layer = t.layer_params;
  MemoryBreakdown best;
  double best_total = -1;
  const int ranks_per_node = static_cast<int>(std::min<long long>(p.gpus(), std::max(1, c_.gpus_per_node)));
  // Offload: this GPU's share of its node's host (CPU, memory, PCIe, NVMe).
  const HostShare hs = p.offload != Offload::none ? host_share(c_.host, ranks_per_node) : HostShare{};
  // offload=gemini: the placement of the most-loaded stage, the one being placed (gp), and what
  // the placement of every stage shares (strategies::gemini_placement's input).
  ChunkPlacement gemini, gp;
  ChunkInput gin;
  if (p.offload == Offload::gemini) {
    gin.dp = p.dp;
    gin.capacity = dev.hbm_bytes;
    gin.microbatches = m;
    gin.compute_per_mb_s = comp_max;
    gin.param_bytes = rec.param_bytes;  // the gradient reuses the weight's chunk (PatrickStar sec. 4)
    gin.optimizer_bytes = rec.optimizer_bytes;
    gin.host = hs;
    gin.policy = chunk_policy(c_.sw);
  }
  const int stages[3] = {0, p.pp > 2 ? 1 : 0, p.pp - 1};
  for (int k = 0; k < 3; ++k) {
    const int i = stages[k];
    if (k > 0 && i == stages[k - 1]) continue;
    const bool first = i == 0, last = i == p.pp - 1;
    const double n = first ? sl.first : last ? sl.last : sl.middle;
    // Expert states (issue 5) shard over the dp/ep expert-data-parallel ranks; offload (issue 6)
    // moves dense and expert states alike to host / NVMe (offload=none: model_states unchanged).
    const double P_i = stage_params(p, i, t.layer_params, t.word_params, sl);
    const double Pe = ep_on ? expert_params_on_stage(p, i, wdiv, sl) : 0;
    // (offload=gemini places the states in chunks below and replaces all of these.)
    const bool by_chunks = p.offload == Offload::gemini;
    const OffloadStates off = by_chunks ? OffloadStates{} : offload_states(rec, p.offload, P_i - Pe, p.zero, p.state_shards(), largest_layer);
    ModelStates ms = off.gpu;
    double off_host = off.host, off_nvme = off.nvme;
    if (Pe > 0 && !by_chunks) {
      const OffloadStates oe = offload_states(rec, p.offload, Pe, p.zero, p.dp / p.ep, 0);
      ms.params += oe.gpu.params;
      ms.grads += oe.gpu.grads;
      ms.optimizer += oe.gpu.optimizer;
      off_host += oe.host;
      off_nvme += oe.nvme;
    }
    MemoryBreakdown mb;
    mb.host = off_host;
    mb.nvme = off_nvme;
    mb.params = ms.params;
    mb.grads = ms.grads;
    mb.optimizer = ms.optimizer;
    const double inflight = sched.in_flight(i, p.pp, v, m);
    double act = inflight * n * layer_act + (o_.executor_accounting ? 0 : layer_act_full);
    const double sb = sh.b * sh.s;
    if (first) act += inflight * t.embedding_act;  // token ids, embedding dropout mask (LayerTable)
    if (!o_.executor_accounting) {
      if (last) act += t.head_act;  // fp32 logits, final-norm input (one microbatch; LayerTable)
    } else {  // see EstimatorOptions::executor_accounting
      const double h_sp = e * sb * m_.hidden / (sh.sp ? p.tp : 1);
      // The re-created layer reads its stored input (layer_act under full recompute) in place.
      const double recreated = layer_act_full > 0 ? layer_act_full - layer_act : 0;
      act += last ? std::max(recreated, 4.0 * sb * m_.vocab / p.tp + 2 * h_sp) + inflight * h_sp : recreated;
    }
    mb.activations = act;
    // Buffers: fixed reserve + the layer's transient workspace (TP gather buffers: the gathered
    // activation in 1d; CP K/V buffers; MoE dispatch buffers) + p2p send/recv buffers + margin.
    mb.buffers = o_.reserved_bytes + lc.buffer_bytes + (p.pp > 1 ? 2 * p2p_bytes : 0) + o_.allocator_margin * act;
    if (o_.executor_accounting)  // the executor's workspace peak; a stage whose chunk output goes to the next stage sends it from a buffer
      mb.buffers = executor_buffer_bytes(m_, sh, p.zero, p.pp > 1 && (!last || v > 1));
    // The baseline's flattened fp32 gradient buffer (EstimatorOptions::dp_fused_grad_buffer_bytes; ZeRO paper sec. 3.2).
    if (p.zero == 0 && rec.main_grad_bytes <= 0 && o_.dp_fused_grad_buffer_bytes > 0)
      mb.buffers += o_.dp_fused_grad_buffer_bytes * P_i;
    if (p.offload == Offload::gemini) {  // issue 6: chunk placement against this stage's non-model peak
      gin.config = chunks != nullptr ? chunks->stage[k] : stage_chunk_config(m_, p, i);
      gin.non_model_peak = mb.activations + mb.buffers;
      gp = place_chunks(gin);  // = gemini_placement(config, c_, p, rec, non_model_peak, comp_max, ranks_per_node)
      mb.params = gp.gpu_params;
      mb.grads = 0;
      mb.optimizer = gp.gpu_optimizer;
      mb.host = gp.host();
    }
    if (mb.total() > best_total) {
      best_total = mb.total();
      best = mb;
      if (p.offload == Offload::gemini) gemini = gp;
      r.most_loaded_stage = i;
    }
  }
  best.capacity = dev.hbm_bytes;
  r.memory = best;
  r.feasible = !(best.total() > best.capacity);

  // --- Offload (issue 6; strategies/offload.hpp, chunks.hpp): the host/NVMe time the step waits
  // for joins it, the GPU optimizer step leaves with the states, host and NVMe must hold them. ---
  if (p.offload != Offload::none) {
    OffloadDetail& od = r.offload;
    od.ranks_per_node = ranks_per_node;
    od.host_capacity = hs.memory;
    od.nvme_capacity = hs.nvme;
    double exposed = 0, t_opt_gpu = 0;
    if (p.offload == Offload::gemini) {
      exposed = gemini.exposed_s;
      t_opt_gpu = dev.stream_time(optimizer_bytes_per_param() * gemini.gpu_adam_params);
      od.pcie_bytes = gemini.pcie_bytes;
      od.cpu_adam_s = gemini.cpu_adam_s;
      od.host_capacity = gemini.host_capacity;
      od.host_warmup = gemini.host_warmup;
      od.chunks = gemini.shards;
      od.fp16_chunks_on_gpu = gemini.fp16_on_gpu;
      od.os_chunks_on_gpu = gemini.os_on_gpu;
      od.chunk_elems = gemini.chunk_elems;
      od.chunk_waste = gemini.chunk_waste;
      const double P_ml = stage_params(p, r.most_loaded_stage, t.layer_params, t.word_params, sl);
      od.static_zero3_gpu = model_states(rec, P_ml, 3, p.dp, largest_layer).total();
      od.static_offload_host = offload_states(rec, Offload::params, P_ml, 3, p.dp, largest_layer).host;
      if (!gemini.fits_gpu) r.feasible = false;
    } else {
      OffloadStepInput in;
      in.params_shard = P_slow / p.dp;
      in.param_bytes = rec.param_bytes;
      in.grad_bytes = grad_e;
      in.optimizer_bytes = rec.optimizer_bytes;
      in.microbatches = m;
      in.compute_per_mb_s = comp_max;
      in.backward_per_mb_s = layers_slow * (lc.bwd_s + lc.recompute_s) + (slowest == 0 ? ec.bwd_s : 0) +
                             (slowest == p.pp - 1 ? hc.bwd_s : 0);
      const OffloadStep os = offload_step(p.offload, hs, in);
      exposed = os.exposed_s;
      od.pcie_bytes = os.pcie_bytes;
      od.nvme_bytes = os.nvme_bytes;
      od.cpu_adam_s = os.cpu_adam_s;
    }
    const double old_step = r.time.step_s;
    r.time.step_s += exposed - t_opt + t_opt_gpu;
    r.time.compute_s += t_opt_gpu - t_opt;
    r.time.optimizer_s = t_opt_gpu;
    r.time.offload_exposed_s = exposed;
    const double k = old_step / r.time.step_s;  // throughput scales with 1 / step
    r.throughput.tokens_per_s *= k;
    r.throughput.model_flops_per_gpu *= k;
    r.throughput.hw_flops_per_gpu *= k;
    r.throughput.mfu *= k;
    r.throughput.hfu *= k;
    od.host_over = best.host > od.host_capacity;
    od.nvme_over = best.nvme > od.nvme_capacity;
    if (od.host_over || od.nvme_over) r.feasible = false;
  }
  return r;
}

}  // namespace scaleplan::analytic
