// The torchtitan stack inputs of issue 15 (stop 29), each pinned against hand-computed numbers:
// op-level selective AC (hw::Software::selective_op_sac: torchtitan/parallelisms/parallelize_llama.py
// @d4c86e37 "Saves output of all compute ops, except every second mm"), FSDP kept unsharded under
// pipeline parallelism (pp_fsdp_unsharded: apply_fsdp "For PP, do not reshard after forward"), the
// 16-bit LM head of fp8 recipes (fp8_lm_head), ZeRO-3 over the DP x CP ranks (fully_shard on the
// dp_shard_cp mesh), a runs-file row naming its own device (cluster.device) and the eager fp32
// cross-entropy's memory peak (ce_logit_peak_bytes, stop 30).
#include <gtest/gtest.h>

#include <cmath>
#include <string>

#include "hardware/stack.hpp"
#include "model/model.hpp"
#include "simulator/analytic/estimator.hpp"
#include "strategies/layer_cost.hpp"
#include "strategies/memory.hpp"
#include "strategies/plan.hpp"
#include "strategies/tensor_nd.hpp"
#include "validation/runs.hpp"

namespace {

using namespace scaleplan;
using namespace scaleplan::strategies;

hw::Cluster cluster_on(const std::string& stack) {
  hw::Cluster c = hw::load_cluster("dgx-h100");
  hw::use_stack(c, stack);
  return c;
}

PhaseCost layer(const model::ModelSpec& m, const hw::Cluster& c, LayerShape sh) {
  return layer_cost(m, c, sh, make_tp_groups(c, tp_layout(TpMode::d1, 1, 1)), hw::make_group(c, 1, 1));
}

// Llama 3 8B (h 4096, kv 1024, ffn 14336): wk, wo and w3 are h (kv + h + ffn) = 4096 x 19456 of the
// block's h (2h + 2kv + 3ffn) = 4096 x 53248 matmul weights: 0.36538.
TEST(TorchtitanStack, OpSacRecomputesEverySecondMatmul) {
  const model::ModelSpec m = model::load_model("llama3-8b");
  EXPECT_NEAR(op_sac_mm_share(m), 19456.0 / 53248.0, 1e-12);
  const hw::Cluster c = cluster_on("torchtitan-fsdp2");
  ASSERT_TRUE(c.sw.selective_op_sac);
  LayerShape sh;
  sh.b = 1, sh.s = 8192, sh.s_kv = 8192, sh.tp = 1;
  sh.flash = true, sh.flash2 = true;
  sh.precision = Precision::bf16;
  sh.recompute = Recompute::selective;
  const PhaseCost attention_only = layer(m, c, sh);  // Korthikanti's selective: nothing to rerun with flash
  EXPECT_EQ(attention_only.recompute_s, 0);
  EXPECT_EQ(attention_only.recompute_flops, 0);
  sh.op_sac = true;
  const PhaseCost sac = layer(m, c, sh);
  // Matmul FLOPs of one forward: 2 T (attention 41,943,040 + MLP 176,160,768 weights) = 3.5734e12; 36.5 % rerun.
  const double mm_flops = 2.0 * 8192 * (41943040.0 + 176160768.0);
  EXPECT_NEAR(sac.recompute_flops, mm_flops * 19456.0 / 53248.0, 1e-3 * sac.recompute_flops);
  // The rerun time lies between that matmul share alone and the whole forward.
  EXPECT_GT(sac.recompute_s, 0.3 * sac.fwd_s);
  EXPECT_LT(sac.recompute_s, sac.fwd_s);
  EXPECT_EQ(sac.fwd_s, attention_only.fwd_s);
}

// Kept per layer under op-level SAC: the block input and the outputs of wq, wv, SDPA (+ fp32 logsumexp),
// w1 and w2: 2 B x 8192 x 4096 x (1 + 1 + 0.25 + 1 + 3.5 + 1) + 4 x 32 x 8192 = 520.1 MB + 1.05 MB.
TEST(TorchtitanStack, OpSacKeepsTheSavedOpOutputsOnly) {
  const model::ModelSpec m = model::load_model("llama3-8b");
  ActShape a{1, 8192, 8192, 1, false, Recompute::selective, true, 2, 2};
  const double megatron = layer_activation_bytes(m, a);
  a.op_sac = true;
  const double sbh = 8192.0 * 4096;
  EXPECT_NEAR(layer_activation_bytes(m, a), 2 * sbh * 7.75 + 4.0 * 32 * 8192, 1.0);
  EXPECT_LT(layer_activation_bytes(m, a), megatron);
}

// torchtitan with pipeline parallelism: FSDP2 (zero=3) costs what ZeRO-1 costs (one gather and one
// reduce-scatter per step, full weights and gradients); a stack without the key keeps its ZeRO-3.
TEST(TorchtitanStack, FsdpUnderPipelineRunsAsZero1) {
  const model::ModelSpec m = model::load_model("llama3-8b");
  const hw::Cluster tt = cluster_on("torchtitan-fsdp2");
  ASSERT_TRUE(tt.sw.pp_fsdp_unsharded);
  const analytic::Estimator est(m, tt);
  const Plan z3 = resolve_plan(parse_plan("tp=1,pp=2,mbs=1,gbs=64,zero=3,recompute=full"), m, tt, 16);
  const Plan z1 = resolve_plan(parse_plan("tp=1,pp=2,mbs=1,gbs=64,zero=1,recompute=full"), m, tt, 16);
  const StepReport r3 = est.evaluate(z3), r1 = est.evaluate(z1);
  EXPECT_DOUBLE_EQ(r3.time.step_s, r1.time.step_s);
  EXPECT_DOUBLE_EQ(r3.memory.params, r1.memory.params);
  EXPECT_EQ(r3.plan.zero, 3);  // the plan is reported as given
  const hw::Cluster mc = cluster_on("megatron-core-2025");
  const analytic::Estimator est_mc(m, mc);
  const Plan q3 = resolve_plan(parse_plan("tp=1,pp=2,mbs=1,gbs=64,zero=3,recompute=full"), m, mc, 16);
  const Plan q1 = resolve_plan(parse_plan("tp=1,pp=2,mbs=1,gbs=64,zero=1,recompute=full"), m, mc, 16);
  EXPECT_LT(est_mc.evaluate(q3).memory.params, est_mc.evaluate(q1).memory.params);
}

// fp8 with a 16-bit LM head: the logits GEMMs run at the bf16 peak, so the head's forward is slower
// than on a stack that runs it in fp8; bf16 runs are unchanged.
TEST(TorchtitanStack, Fp8RecipesKeepTheLmHeadIn16Bit) {
  const model::ModelSpec m = model::load_model("llama3-8b");
  hw::Cluster keep = cluster_on("torchtitan-fsdp2-compile"), fp8 = keep;
  ASSERT_FALSE(keep.sw.fp8_lm_head);
  fp8.sw.fp8_lm_head = true;
  EXPECT_FALSE(hw::load_stack("megatron-core-2025").fp8_lm_head);
  EXPECT_TRUE(hw::load_stack("unrestricted").fp8_lm_head);
  LayerShape sh;
  sh.b = 1, sh.s = 8192, sh.s_kv = 8192, sh.tp = 1;
  sh.precision = Precision::fp8;
  const hw::Group one = hw::make_group(keep, 1, 1);
  const PhaseCost h16 = head_cost(m, keep, sh, one), h8 = head_cost(m, fp8, sh, one);
  // Logits 2 x 8192 x 4096 x 128256 = 8.61e12 FLOPs: at 0.55 of 989.4 (bf16) 15.8 ms, of 1978.9 (fp8) 7.9 ms.
  EXPECT_NEAR(h16.fwd_s - h8.fwd_s, 8.607e12 / (0.55 * 989.4e12) - 8.607e12 / (0.55 * 1978.9e12), 0.3e-3);
  sh.precision = Precision::bf16;
  EXPECT_DOUBLE_EQ(head_cost(m, keep, sh, one).fwd_s, head_cost(m, fp8, sh, one).fwd_s);
}

// The eager fp32 cross-entropy's memory peak (ce_logit_peak_bytes: torchtitan train.py @d4c86e37, counted in
// configs/stacks/torchtitan-fsdp2.yaml): saved log_softmax output + nll_loss gradient + log_softmax input
// gradient, fp32 each, 12 B per logit beside the activations against the default model's fp32 logits (4 B):
// llama3-8b at microbatch 2 x 8192 keeps 8 x 16384 x 128256 B = 16.8 GB more on its last stage.
TEST(TorchtitanStack, CrossEntropyPeakHoldsTwelveBytesPerLogit) {
  const model::ModelSpec m = model::load_model("llama3-8b");
  const hw::Cluster tt = cluster_on("torchtitan-fsdp2-compile");
  EXPECT_DOUBLE_EQ(tt.sw.ce_logit_peak_bytes, 12);
  EXPECT_DOUBLE_EQ(cluster_on("torchtitan-fsdp2").sw.ce_logit_peak_bytes, 12);
  EXPECT_DOUBLE_EQ(hw::load_stack("megatron-core-2025").ce_logit_peak_bytes, 4);  // Megatron-Bridge fuses the loss
  EXPECT_DOUBLE_EQ(hw::load_stack("megatron-core-2024").ce_logit_peak_bytes, 6);  // unfused, in place (core_r0.8.0)
  hw::Cluster four = tt;
  four.sw.ce_logit_peak_bytes = 4;
  const Plan p = resolve_plan(parse_plan("tp=1,mbs=2,gbs=16,zero=3,recompute=selective"), m, tt, 8);
  const double a12 = analytic::Estimator(m, tt).evaluate(p).memory.activations;
  const double a4 = analytic::Estimator(m, four).evaluate(p).memory.activations;
  EXPECT_NEAR(a12 - a4, 8.0 * 2 * 8192 * 128256, 1e-6 * a12);
}

// ZeRO-3 shards over dp x cp: llama3-8b on 8 GPUs, dp 4 x cp 2, optimizer states 12 B x P / 8.
TEST(TorchtitanStack, Zero3ShardsOverDpTimesCp) {
  const model::ModelSpec m = model::load_model("llama3-8b");
  const hw::Cluster c = cluster_on("torchtitan-fsdp2");
  const analytic::Estimator est(m, c);
  const Plan p = resolve_plan(parse_plan("tp=1,cp=2,mbs=1,gbs=64,zero=3,recompute=full"), m, c, 8);
  ASSERT_EQ(p.dp, 4);
  EXPECT_EQ(p.shard_degree(), 8);
  const StepReport r = est.evaluate(p);
  const double P = est.params_on_stage(p, 0);
  EXPECT_NEAR(r.memory.optimizer, 12.0 * P / 8, 1e-6 * r.memory.optimizer);
}

// A runs-file row names its GPU where it differs from the cluster preset's: the torchtitan rows run on
// the 96 GB / 500 W H100 (peak inferred at 0.8945 of the SXM part, configs/devices).
TEST(TorchtitanStack, RowDeviceReplacesThePresetDevice) {
  const validation::RunsFile f = validation::load_runs(SCALEPLAN_SOURCE_DIR "/validation/holdout_runs.yaml");
  int n = 0;
  for (const auto& r : f.runs) {
    if (r.group != "torchtitan2412") continue;
    ++n;
    EXPECT_EQ(r.cluster.device.name, "h100-96gb-hbm2e-500w") << r.id;
    EXPECT_NEAR(r.cluster.device.peak(hw::Dtype::bf16), 885.0e12, 1e9) << r.id;
    EXPECT_NEAR(r.cluster.device.hbm_bw_Bps, 2.4e12, 1e6) << r.id;
  }
  EXPECT_EQ(n, 18);
}

}  // namespace
