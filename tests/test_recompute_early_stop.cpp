// The stack input `recompute_early_stop` (hw::Software; docs/accuracy-acc8.md): PyTorch's non-reentrant
// checkpoint stops the recompute once every tensor the backward saved is recreated (torch.utils.checkpoint
// _recomputation_hook raises _StopRecomputationError; the default since PyTorch 2.1, pytorch/pytorch#96866).
// Autograd saves a linear's input before running it, so in a dense block without dropout the recompute
// ends before the MLP output projection: that GEMM and the residual add after it are not rerun
// (strategies/layer_cost.cpp). llm-foundry's MPT yamls set activation_checkpointing_reentrant: false
// (scripts/train/yamls/pretrain/mpt-*.yaml @5e85bd62), which Composer v0.17.2 turns into
// checkpoint_wrapper(CheckpointImpl.NO_REENTRANT) (composer/trainer/dist_strategy.py).
#include <gtest/gtest.h>

#include <string>

#include "common/errors.hpp"
#include "hardware/stack.hpp"
#include "model/model.hpp"
#include "simulator/analytic/estimator.hpp"
#include "strategies/layer_cost.hpp"
#include "strategies/tensor_nd.hpp"
#include "stack_yaml_fsdp.hpp"

namespace {

using namespace scaleplan;
using namespace scaleplan::strategies;

using test_support::stack_fsdp_yaml;

TEST(RecomputeEarlyStop, ParsedWithTheWholeForwardAsTheDefault) {
  EXPECT_FALSE(hw::parse_stack(stack_fsdp_yaml(""), "t.yaml").recompute_early_stop);
  EXPECT_TRUE(hw::parse_stack(stack_fsdp_yaml("  recompute_early_stop: true\n"), "t.yaml").recompute_early_stop);
  EXPECT_THROW(hw::parse_stack(stack_fsdp_yaml("  recompute_early_stop: 3\n"), "t.yaml"), ConfigError);
  for (const char* n : {"llm-foundry-fsdp", "llm-foundry-fsdp-triton"}) EXPECT_TRUE(hw::load_stack(n).recompute_early_stop) << n;
  // Megatron's CheckpointFunction is reentrant (the whole forward again); the others are not claimed.
  // llm-foundry-fsdp-2023 (the 2023 A100 tables, torch 1.13.1: no early stop yet).
  for (const char* n : {"llm-foundry-fsdp-2023", "megatron-lm-2021", "megatron-core-2024", "deepspeed-zero", "torchtitan-fsdp2", "unrestricted"})
    EXPECT_FALSE(hw::load_stack(n).recompute_early_stop) << n;
}

struct Layer {
  model::ModelSpec m = model::load_model("mpt-70b");
  hw::Cluster c = hw::load_cluster("dgx-h100");
  LayerShape sh;
  Layer() {
    sh.b = 8, sh.s = 2048, sh.s_kv = 2048, sh.tp = 1;  // the H100 table's 70B row: microbatch 8
    sh.flash = true, sh.flash2 = true;
    sh.precision = Precision::bf16;
    sh.recompute = Recompute::full;
  }
  PhaseCost cost(bool early) {
    sh.recompute_early_stop = early;
    return layer_cost(m, c, sh, make_tp_groups(c, tp_layout(TpMode::d1, 1, 1)), hw::make_group(c, 1, 1));
  }
};

// MPT-70B (h 8192, ffn 32768, no dropout) at microbatch 8, s 2048, bf16, on an H100.
TEST(RecomputeEarlyStop, SkipsTheMlpOutputProjectionAndTheResidualAdd) {
  Layer l;
  ASSERT_FALSE(l.m.dropout);  // MPT: resid_pdrop / emb_pdrop / attn_pdrop 0.0
  const PhaseCost whole = l.cost(false), early = l.cost(true);
  EXPECT_EQ(whole.recompute_s, whole.fwd_s);
  EXPECT_EQ(early.fwd_s, whole.fwd_s);  // the first forward is untouched
  EXPECT_EQ(early.bwd_s, whole.bwd_s);
  // Hand: the projection, 2 x 16384 x 8192 x 32768 = 8.796e12 FLOP at 0.551 x 989.4 TFLOP/s with the
  // 3e9-FLOP half-efficiency work: (8.796e12 + 3e9) / 5.452e14 + 4 us = 16.144 ms; the residual add
  // reads 2 and writes 1 bf16 b x s x h tensor: 3 x 2 x 16384 x 8192 B / 2847.5 GB/s + 4 us = 0.287 ms.
  EXPECT_NEAR(1e3 * (whole.recompute_s - early.recompute_s), 16.144 + 0.287, 0.002);
  EXPECT_NEAR(whole.recompute_flops - early.recompute_flops, 2.0 * 16384 * 8192 * 32768, 1.0);
}

TEST(RecomputeEarlyStop, NothingSkippedWithDropoutOrWithoutFullRecompute) {
  Layer l;
  l.m.dropout = true;  // the residual dropout saves its mask after the projection: the recompute runs to it
  EXPECT_EQ(l.cost(true).recompute_s, l.cost(false).recompute_s);
  l.m.dropout = false;
  l.sh.recompute = Recompute::none;
  EXPECT_EQ(l.cost(true).recompute_s, 0);
}

// Through the estimator: the step and the hardware FLOPs both drop by the skipped work (80 layers).
TEST(RecomputeEarlyStop, EstimatorStepAndHardwareFlops) {
  const model::ModelSpec m = model::load_model("mpt-70b");
  hw::Cluster c = hw::load_cluster("dgx-h100");
  c.sw = hw::load_stack("llm-foundry-fsdp");
  const strategies::Plan p =
      strategies::resolve_plan(strategies::parse_plan("tp=1,pp=1,mbs=8,gbs=1024,zero=3,recompute=full"), m, c, 128);
  const strategies::StepReport early = analytic::Estimator(m, c).evaluate(p);
  c.sw.recompute_early_stop = false;
  const strategies::StepReport whole = analytic::Estimator(m, c).evaluate(p);
  EXPECT_LT(early.time.step_s, whole.time.step_s);
  // The compute drops by 80 x 16.46 ms = 1.317 s (the FSDP overlap window shrinks with it, so the
  // step moves a little less than the compute).
  EXPECT_NEAR(whole.time.compute_s - early.time.compute_s, 80 * (16.174 + 0.287) * 1e-3, 0.005);
  // hw FLOPs per step: gbs x layers x 2 s h ffn less.
  EXPECT_NEAR(whole.hw_flops_per_step - early.hw_flops_per_step, 1024.0 * 80 * 2 * 2048 * 8192 * 32768, 1e-6 * whole.hw_flops_per_step);
}

}  // namespace
