// The stack input `metric_logit_bytes` (hw::Software; docs/accuracy-acc8.md): bytes moved per logit
// element and microbatch by the stack's training metrics, computed on the forward's logits outside
// autograd after each microbatch's backward, charged in strategies/layer_cost.cpp head_cost.
// llm-foundry + Composer v0.17.2 compute LanguageCrossEntropy and LanguagePerplexity every microbatch
// (composer/trainer/trainer.py _eval_train_metrics; llmfoundry/models/mpt/modeling_mpt.py @5e85bd62):
// each an fp32 cast of the bf16 logits (2 + 4 B) and a log_softmax reading them three times and writing
// once (3 x 4 + 4 B): 44 B per logit (configs/stacks/llm-foundry-fsdp.yaml). And `metric_sync_states`: at
// each step's end Composer computes the metrics, and torchmetrics syncs every state over all ranks with a
// barrier and an all_gather (gather_all_tensors, v1.0.3): 2 metrics x 2 scalar states = 4 per step.
#include <gtest/gtest.h>

#include <string>

#include "common/errors.hpp"
#include "hardware/collectives.hpp"
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

TEST(MetricLogits, ParsedWithNoneAsTheDefault) {
  EXPECT_EQ(hw::parse_stack(stack_fsdp_yaml(""), "t.yaml").metric_logit_bytes, 0);
  EXPECT_EQ(hw::parse_stack(stack_fsdp_yaml("  metric_logit_bytes: 44\n"), "t.yaml").metric_logit_bytes, 44);
  EXPECT_THROW(hw::parse_stack(stack_fsdp_yaml("  metric_logit_bytes: -1\n"), "t.yaml"), ConfigError);
  // The shipped values: two metrics x (cast 2 + 4 B, log_softmax 3 x 4 + 4 B) on both llm-foundry
  // stacks (the attention kernel does not change the metrics); none on the stacks without them.
  for (const char* n : {"llm-foundry-fsdp", "llm-foundry-fsdp-triton", "llm-foundry-fsdp-2023"})
    EXPECT_EQ(hw::load_stack(n).metric_logit_bytes, 2 * ((2 + 4) + (3 * 4 + 4))) << n;
  for (const char* n : {"megatron-core-2024", "torchtitan-fsdp2", "megatron-lm-2019", "deepspeed-zero", "unrestricted"})
    EXPECT_EQ(hw::load_stack(n).metric_logit_bytes, 0) << n;
}

// MPT-1B (h 2048, vocab 50368, s 2048) at the H100 table's microbatch 12, bf16, on an H100.
TEST(MetricLogits, ChargedOncePerMicrobatchInTheHeadsBackward) {
  const model::ModelSpec m = model::load_model("mpt-1b");
  const hw::Cluster c = hw::load_cluster("dgx-h100");
  LayerShape sh;
  sh.b = 12, sh.s = 2048, sh.s_kv = 2048, sh.tp = 1;
  sh.flash = true, sh.flash2 = true;
  sh.precision = Precision::bf16;
  const hw::Group g = make_tp_groups(c, tp_layout(TpMode::d1, 1, 1)).all;
  const PhaseCost base = head_cost(m, c, sh, g);
  sh.metric_logit_bytes = 44;
  const PhaseCost with = head_cost(m, c, sh, g);
  const double logits = 12.0 * 2048 * 50368;  // 1.238e9 logit elements per microbatch
  EXPECT_NEAR(with.bwd_s - base.bwd_s, c.device.stream_time(44 * logits), 1e-12);
  // Hand: 44 x 1.238e9 B = 54.47 GB / (3350 GB/s x 0.85) + 4 us = 19.131 ms.
  EXPECT_NEAR(1e3 * (with.bwd_s - base.bwd_s), 19.131, 0.001);
  EXPECT_EQ(with.fwd_s, base.fwd_s);      // after the backward, not in the forward
  EXPECT_EQ(with.wgrad_s, base.wgrad_s);  // not weight-gradient work: hides no TP collective
  EXPECT_EQ(with.model_flops, base.model_flops);
}

// Through the estimator: the llm-foundry stack's step grows by m x the per-microbatch time.
TEST(MetricLogits, EstimatorStepGrowsByMicrobatchesTimesThePass) {
  const model::ModelSpec m = model::load_model("mpt-1b");
  hw::Cluster c = hw::load_cluster("dgx-h100");
  c.sw = hw::load_stack("llm-foundry-fsdp");
  const strategies::Plan p =
      strategies::resolve_plan(strategies::parse_plan("tp=1,pp=1,mbs=12,gbs=192,zero=2,recompute=none"), m, c, 8);  // 2 microbatches
  ASSERT_EQ(p.microbatches(), 2);
  const double with = analytic::Estimator(m, c).evaluate(p).time.step_s;
  c.sw.metric_logit_bytes = 0;
  const double without = analytic::Estimator(m, c).evaluate(p).time.step_s;
  const double pass = c.device.stream_time(44 * 12.0 * 2048 * 50368);
  EXPECT_GT(with - without, 0);
  // The heads' backward also widens the FSDP overlap window a little, so allow 1 % of slack.
  EXPECT_NEAR(with - without, 2 * pass, 0.01 * 2 * pass);
}

TEST(MetricSync, ParsedShippedAndTimedByHand) {
  EXPECT_EQ(hw::parse_stack(stack_fsdp_yaml(""), "t.yaml").metric_sync_states, 0);
  EXPECT_EQ(hw::parse_stack(stack_fsdp_yaml("  metric_sync_states: 4\n"), "t.yaml").metric_sync_states, 4);
  EXPECT_THROW(hw::parse_stack(stack_fsdp_yaml("  metric_sync_states: -1\n"), "t.yaml"), ConfigError);
  for (const char* n : {"llm-foundry-fsdp", "llm-foundry-fsdp-triton", "llm-foundry-fsdp-2023"})
    EXPECT_EQ(hw::load_stack(n).metric_sync_states, 2 * 2) << n;
  EXPECT_EQ(hw::load_stack("megatron-core-2024").metric_sync_states, 0);
  hw::Cluster c = hw::load_cluster("dgx-h100");  // 8 GPUs per node; NIC hop 5 us, NVLink hop 3 us
  c.sw = hw::load_stack("llm-foundry-fsdp");
  EXPECT_EQ(metric_sync_s(c, 1), 0);
  // 512 GPUs (64 nodes): the barrier's one-element all-reduce takes NCCL's tree, 2 x (log2 64 x 5 us +
  // 7 x 3 us) = 102 us; the scalar all_gather a ring, 511 x 5 us = 2.555 ms (its 2 KB are negligible).
  EXPECT_NEAR(1e3 * metric_sync_s(c, 512), 4 * (0.102 + 2.555), 0.001);
  // 128 GPUs (16 nodes): 2 x (4 x 5 + 21) us = 82 us and 127 x 5 us = 0.635 ms.
  EXPECT_NEAR(1e3 * metric_sync_s(c, 128), 4 * (0.082 + 0.635), 0.001);
  c.sw.metric_sync_states = 0;
  EXPECT_EQ(metric_sync_s(c, 512), 0);
}

// The estimator and the DES add it to the step and to the exposed communication.
TEST(MetricSync, EstimatorStepAndExposedCommunication) {
  const model::ModelSpec m = model::load_model("mpt-1b");
  hw::Cluster c = hw::load_cluster("dgx-h100");
  c.sw = hw::load_stack("llm-foundry-fsdp");
  const strategies::Plan p =
      strategies::resolve_plan(strategies::parse_plan("tp=1,pp=1,mbs=12,gbs=1536,zero=2,recompute=none"), m, c, 128);
  const strategies::StepReport with = analytic::Estimator(m, c).evaluate(p);
  const double sync = metric_sync_s(c, 128);
  c.sw.metric_sync_states = 0;
  const strategies::StepReport without = analytic::Estimator(m, c).evaluate(p);
  EXPECT_NEAR(with.time.step_s - without.time.step_s, sync, 1e-12);
  EXPECT_NEAR(with.time.comm_exposed_s - without.time.comm_exposed_s, sync, 1e-12);
  EXPECT_EQ(with.time.compute_s, without.time.compute_s);
}

}  // namespace
