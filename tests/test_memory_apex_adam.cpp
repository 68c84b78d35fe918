// Model-state layout of NVIDIA Apex DistributedFusedAdam as NeMo 24.07 sets it up
// (strategies::recipe_apex_distributed_adam, recipe_named; EstimatorOptions::recipe_override).
#include <gtest/gtest.h>

#include "hardware/cluster.hpp"
#include "hardware/stack.hpp"
#include "model/model.hpp"
#include "simulator/analytic/estimator.hpp"
#include "strategies/memory.hpp"
#include "strategies/plan.hpp"

namespace {

using namespace scaleplan;
using namespace scaleplan::strategies;

// NeMo default (optim dtype fp32, grad_sync_dtype = dtype, bf16 model): 2 B bf16 params, a full 4 B
// gradient buffer, 4 + 4 B moments + 2 B int16 master remainders per DP shard.
TEST(ApexAdam, DefaultFp32StateOverBf16Model) {
  const Recipe r = recipe_apex_distributed_adam(4, 4);
  EXPECT_EQ(r.param_bytes, 2);
  EXPECT_EQ(r.grad_bytes, 4);
  EXPECT_EQ(r.main_grad_bytes, 0);
  EXPECT_EQ(r.optimizer_bytes, 10);
  // 1e9 params, distributed optimizer over dp = 4: 2e9 + 4e9 + 10e9 / 4.
  const ModelStates s = model_states(r, 1e9, 1, 4);
  EXPECT_DOUBLE_EQ(s.params, 2e9);
  EXPECT_DOUBLE_EQ(s.grads, 4e9);
  EXPECT_DOUBLE_EQ(s.optimizer, 2.5e9);
}

// Nemotron-4 340B launcher config (optim dtype bf16, grad_sync_dtype bf16): no master copy
// (store_params False), bf16 moments, bf16 gradient buffer; fp8 adds TE's weight + transpose copies.
TEST(ApexAdam, Bf16StateWithFp8Copies) {
  const Recipe r = with_fp8_weights(recipe_apex_distributed_adam(2, 2));
  EXPECT_EQ(r.optimizer_bytes, 4);
  const ModelStates s = model_states(r, 1e9, 1, 2);
  EXPECT_DOUBLE_EQ(s.params, 4e9);     // 2 bf16 + 2 fp8 (weight + transpose)
  EXPECT_DOUBLE_EQ(s.grads, 2e9);      // bf16 contiguous grad buffer, not sharded at zero=1
  EXPECT_DOUBLE_EQ(s.optimizer, 2e9);  // (2 + 2) / dp
}

TEST(ApexAdam, NamedLayouts) {
  ASSERT_NE(recipe_named("apex-distributed-adam-bf16"), nullptr);
  EXPECT_EQ(recipe_named("apex-distributed-adam-bf16")->optimizer_bytes, 4);
  ASSERT_NE(recipe_named("apex-distributed-adam"), nullptr);
  EXPECT_EQ(recipe_named("apex-distributed-adam")->grad_bytes, 4);
  // The launcher's fp8 example scripts: +training.model.optim.grad_sync_dtype=bf16 over the fp32 optimizer.
  const Recipe* g = recipe_named("apex-distributed-adam-bf16-grads");
  ASSERT_NE(g, nullptr);
  EXPECT_EQ(g->grad_bytes, 2);
  EXPECT_EQ(g->optimizer_bytes, 10);
  ASSERT_NE(recipe_named("megatron"), nullptr);
  EXPECT_EQ(recipe_named("megatron")->main_grad_bytes, 4);
  ASSERT_NE(recipe_named("zero-paper"), nullptr);
  EXPECT_EQ(recipe_named("zero-paper")->optimizer_bytes, 12);
  EXPECT_EQ(recipe_named("adamw"), nullptr);
}

// Nemotron-4 340B on 128 H100s (NeMo 24.07 performance summary: tp 8, pp 8, vp 12, mbs 1, gbs 32, fp8).
// Stage 0 holds 12 layers of 3,454,009,344 / 8 split + 73,728 replicated (two LayerNorms, gamma and
// beta) parameters and the 256000 x 18432 / 8 word embedding: P0 = 5,771,722,752.
TEST(ApexAdam, Nemotron340bFitsWithoutRecompute) {
  const model::ModelSpec m = model::parse_model(
      "name: nemotron-340b\nlayers: 96\nhidden: 18432\nheads: 96\nkv_heads: 8\nffn: 73728\nvocab: 256000\nseq: 4096\n"
      "activation: squared_relu\nnorm: layernorm\nposition: rope\ntied_embeddings: false\nbias: false\ndropout: false\n",
      "nemotron-340b.yaml");
  hw::Cluster c = hw::load_cluster("dgx-h100");
  hw::use_stack(c, "nemo-2024");
  const Plan p = resolve_plan(
      parse_plan("dp=2,tp=8,pp=8,vpp=12,mbs=1,gbs=32,sp=on,schedule=interleaved,recompute=none,zero=1,precision=fp8"), m, c, 128);
  const double P0 = 5771722752.0;
  // The ZeRO paper's 2 + 2 + 12/dp (+2 fp8) does not fit in 80 GiB with the activations.
  const StepReport r0 = analytic::Estimator(m, c).evaluate(p);
  EXPECT_DOUBLE_EQ(r0.memory.optimizer, 6 * P0);
  EXPECT_FALSE(r0.feasible);
  analytic::EstimatorOptions o;
  o.recipe_override = *recipe_named("apex-distributed-adam-bf16");
  const StepReport r1 = analytic::Estimator(m, c, o).evaluate(p);
  EXPECT_DOUBLE_EQ(r1.memory.params, 4 * P0);
  EXPECT_DOUBLE_EQ(r1.memory.grads, 2 * P0);
  EXPECT_DOUBLE_EQ(r1.memory.optimizer, 2 * P0);
  EXPECT_DOUBLE_EQ(r1.memory.activations, r0.memory.activations);
  EXPECT_TRUE(r1.feasible);
  // The layout changes memory only, not time.
  EXPECT_DOUBLE_EQ(r1.time.step_s, r0.time.step_s);
}

}  // namespace
