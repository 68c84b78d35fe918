// How a stack's data-parallel / ZeRO collectives use a node's NICs (issue 15 item 2; docs/zero3.md,
// docs/stacks.md): the stack input `dp_collective_nics: per_gpu | node` (hw::Software::
// dp_nics_aggregate), read where a DP group's ring bandwidth is computed (hw::Group::aggregate_nics).
#include <gtest/gtest.h>

#include <string>

#include "common/errors.hpp"
#include "hardware/collectives.hpp"
#include "hardware/stack.hpp"
#include "simulator/analytic/estimator.hpp"

namespace {

using namespace scaleplan;

std::string stack_yaml(const std::string& nics_line) {
  return "name: t\nframework: f\nversion: v\ndate: '2024-01'\n"
         "capabilities:\n  tensor_parallel: [1d]\n  sequence_parallel: false\n  pipeline_schedules: [1f1b]\n"
         "  recompute: [none, full]\n  context_parallel: []\n  zero_stages: [0, 3]\n  offload: [none]\n"
         "  precisions: [bf16]\n  expert_parallel: false\n  tp_comm_overlap: false\n"
         "efficiency:\n  attention: flash\n  dp_overlap: true\n" +
         nics_line;
}

TEST(DpCollectiveNics, ParsedFromTheStackWithPerGpuAsTheDefault) {
  EXPECT_FALSE(hw::parse_stack(stack_yaml(""), "t.yaml").dp_nics_aggregate);
  EXPECT_FALSE(hw::parse_stack(stack_yaml("  dp_collective_nics: per_gpu\n"), "t.yaml").dp_nics_aggregate);
  EXPECT_TRUE(hw::parse_stack(stack_yaml("  dp_collective_nics: node\n"), "t.yaml").dp_nics_aggregate);
  try {
    hw::parse_stack(stack_yaml("  dp_collective_nics: all\n"), "t.yaml");
    FAIL() << "a bad value must be refused";
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("dp_collective_nics"), std::string::npos) << e.what();
  }
}

TEST(DpCollectiveNics, ShippedStacksCarryTheirSourcedValue) {
  // NCCL-ring stacks aggregate the node's NICs (NVIDIA/nccl#687, #812); DeepSpeed stacks keep one
  // NIC share per GPU (SC21 Table 2 ZeRO-3 rows); the default stack keeps the issue-23 behaviour.
  for (const char* s : {"llm-foundry-fsdp", "torchtitan-fsdp2", "megatron-core-2024", "megatron-core-2025", "nemo-2024",
                        "megatron-lm-2019", "megatron-lm-2020", "megatron-lm-2021", "megatron-lm-2022"})
    EXPECT_TRUE(hw::load_stack(s).dp_nics_aggregate) << s;
  for (const char* s : {"deepspeed-zero", "megatron-deepspeed", "gpt-neox", "unrestricted", "llama3-meta", "colossalai-gemini",
                        "patrickstar"})
    EXPECT_FALSE(hw::load_stack(s).dp_nics_aggregate) << s;
}

// tp-1 data parallelism over 16 DGX A100 nodes (selene-a100): 8 members of the ring per node.
TEST(DpCollectiveNics, AggregatingRingCrossesANodeOnAllItsNics) {
  const hw::Cluster c = hw::load_cluster("selene-a100");
  hw::Group g = hw::make_group(c, 128, 1);
  ASSERT_EQ(g.per_node, 8);
  const double B = 4e9, n = 128, a = 5e-6;
  // One NIC share: 200 Gb/s = 25 GB/s x bus efficiency 0.80 = 20 GB/s per GPU.
  const double per_gpu = (n - 1) * a + (n - 1) / n * B / 20e9;
  EXPECT_NEAR(hw::collective_time(c, hw::Coll::all_gather, B, g), per_gpu, 1e-9 * per_gpu);
  // The node's 8 shares together: min(NVLink 300 x 0.78 = 234 GB/s, 8 x 20 = 160 GB/s) = 160 GB/s.
  g.aggregate_nics = true;
  const double node = (n - 1) * a + (n - 1) / n * B / 160e9;
  EXPECT_NEAR(hw::collective_time(c, hw::Coll::all_gather, B, g), node, 1e-9 * node);
  EXPECT_NEAR(hw::collective_time(c, hw::Coll::reduce_scatter, B, g), node, 1e-9 * node);
  // Hand: 127 x 5 us + 127/128 x 4e9 / 160e9 = 0.000635 + 0.024805 s.
  EXPECT_NEAR(hw::collective_time(c, hw::Coll::all_gather, B, g), 0.025440, 1e-6);
  // One member per node (tp 8): nothing to aggregate, the same time either way.
  hw::Group g8 = hw::make_group(c, 16, 8);
  const double one = hw::collective_time(c, hw::Coll::all_gather, B / 8, g8);
  g8.aggregate_nics = true;
  EXPECT_DOUBLE_EQ(hw::collective_time(c, hw::Coll::all_gather, B / 8, g8), one);
  // Inside one node the flag changes nothing.
  hw::Group in = hw::make_group(c, 8, 1);
  const double t_in = hw::collective_time(c, hw::Coll::all_gather, B, in);
  in.aggregate_nics = true;
  EXPECT_DOUBLE_EQ(hw::collective_time(c, hw::Coll::all_gather, B, in), t_in);
}

// The estimator reads the stack's value for its DP groups: a ZeRO-3 plan with nothing hidden
// (prefetch depth 0) exposes exactly its ring traffic, 8x faster with the node's 8 NICs.
TEST(DpCollectiveNics, EstimatorZero3TrafficFollowsTheStack) {
  const model::ModelSpec m = model::load_model("gpt3-175b");
  hw::Cluster c = hw::load_cluster("selene-a100");
  c.sw.zero3_prefetch_depth = 0;
  const strategies::Plan p =
      strategies::resolve_plan(strategies::parse_plan("tp=1,pp=1,mbs=1,gbs=3072,zero=3,recompute=full"), m, c, 1536);
  const double per_gpu = analytic::Estimator(m, c).evaluate(p).dp_comm_exposed_s;
  c.sw.dp_nics_aggregate = true;
  const double node = analytic::Estimator(m, c).evaluate(p).dp_comm_exposed_s;
  const analytic::Estimator est(m, c);
  const double B = 2 * est.params_on_stage(p, 0), n = 1536;
  // 2 microbatches x (2 gathers + 1 reduce-scatter), each (n-1) x 5 us + (n-1)/n B / bw.
  EXPECT_NEAR(per_gpu, 2 * 3 * ((n - 1) * 5e-6 + (n - 1) / n * B / 20e9), 1e-9 * per_gpu);
  EXPECT_NEAR(node, 2 * 3 * ((n - 1) * 5e-6 + (n - 1) / n * B / 160e9), 1e-9 * node);
  EXPECT_LT(node, per_gpu / 5);
}

}  // namespace
