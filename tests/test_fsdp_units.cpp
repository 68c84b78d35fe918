// FSDP's per-unit collectives, its gradient reduce dtype and the FlashAttention-2 kernel on H100
// (issue 15, branch acc5; docs/accuracy.md "FSDP per-unit collectives"): the stack inputs
// `fsdp_unit: stage | layer`, `grad_reduce_dtype: param | fp32`, `attention: flash2` and the device
// key `flash2_attention`, each pinned against hand-computed numbers.
#include <gtest/gtest.h>

#include <string>

#include "common/errors.hpp"
#include "hardware/collectives.hpp"
#include "hardware/stack.hpp"
#include "simulator/analytic/estimator.hpp"

namespace {

using namespace scaleplan;

std::string stack_yaml(const std::string& lines) {
  return "name: t\nframework: f\nversion: v\ndate: '2024-01'\n"
         "capabilities:\n  tensor_parallel: [1d]\n  sequence_parallel: false\n  pipeline_schedules: [1f1b]\n"
         "  recompute: [none, full]\n  context_parallel: []\n  zero_stages: [0, 2, 3]\n  offload: [none]\n"
         "  precisions: [bf16]\n  expert_parallel: false\n  tp_comm_overlap: false\n"
         "efficiency:\n  dp_overlap: true\n" +
         lines;
}

TEST(FsdpUnits, ParsedFromTheStackWithTodaysBehaviourAsTheDefault) {
  const hw::Software d = hw::parse_stack(stack_yaml("  attention: flash\n"), "t.yaml");
  EXPECT_FALSE(d.fsdp_per_layer);
  EXPECT_EQ(d.grad_reduce_bytes, 0);
  EXPECT_TRUE(d.flash_attention);
  EXPECT_FALSE(d.flash2_attention);
  const hw::Software s =
      hw::parse_stack(stack_yaml("  attention: flash2\n  fsdp_unit: layer\n  grad_reduce_dtype: fp32\n"), "t.yaml");
  EXPECT_TRUE(s.fsdp_per_layer);
  EXPECT_EQ(s.grad_reduce_bytes, 4);
  EXPECT_TRUE(s.flash_attention);
  EXPECT_TRUE(s.flash2_attention);
  for (const char* bad : {"  fsdp_unit: block\n", "  grad_reduce_dtype: fp16\n", "  attention: flash3\n"}) {
    try {
      hw::parse_stack(stack_yaml(bad), "t.yaml");
      FAIL() << "must be refused: " << bad;
    } catch (const ConfigError& e) {
      const std::string key = std::string(bad).substr(2, std::string(bad).find(':') - 2);
      EXPECT_NE(std::string(e.what()).find(key), std::string::npos) << e.what();
    }
  }
}

TEST(FsdpUnits, LlmFoundryStackCarriesItsSourcedValues) {
  const hw::Software f = hw::load_stack("llm-foundry-fsdp");
  EXPECT_TRUE(f.fsdp_per_layer);        // fsdp_wrap_fn: one FSDP unit per MPTBlock
  EXPECT_EQ(f.grad_reduce_bytes, 4);    // Composer mixed_precision DEFAULT: reduce_dtype fp32
  EXPECT_TRUE(f.flash2_attention);      // flash-attn 2 package
  for (const char* s : {"unrestricted", "deepspeed-zero", "megatron-core-2024", "llama3-meta"}) {
    const hw::Software o = hw::load_stack(s);
    EXPECT_FALSE(o.fsdp_per_layer) << s;
    // Megatron-LM core_r0.8.0 arguments.py: bf16 -> accumulate_allreduce_grads_in_fp32 (acc10, test_mcore_ddp).
    EXPECT_EQ(o.grad_reduce_bytes, std::string(s) == "megatron-core-2024" ? 4 : 0) << s;
    EXPECT_FALSE(o.flash2_attention) << s;
  }
}

// The estimator's ring latency (n-1) x net.latency against NCCL's own tuning model (NCCL v2.18.5-1,
// src/graph/tuning.cc @559b70f8, ring Simple protocol on a multi-node all-gather: baseLat 8.4 us,
// (nRanks - nNodes) intra-node steps at NVLink 3.4 us, (nNodes - 1) network steps at 14 us).
TEST(FsdpUnits, RingLatencyAgreesWithNcclsTuningModel) {
  const hw::Cluster c = hw::load_cluster("dgx-h100");
  for (int n : {128, 512}) {
    const hw::Group g = hw::make_group(c, n, 1);
    const double nodes = n / 8.0;
    const double nccl_s = (8.4 + (n - nodes) * 3.4 + (nodes - 1) * 14.0) * 1e-6;  // 599.2 us / 2413.6 us
    // 1 byte: the latency term alone.
    const double ours_s = hw::collective_time(c, hw::Coll::all_gather, 1, g);
    EXPECT_NEAR(ours_s, (n - 1) * 5e-6, 1e-9);  // 635 us / 2555 us
    EXPECT_NEAR(ours_s / nccl_s, 1.0, 0.07) << n;
  }
}

// ZeRO-3 with nothing hidden (prefetch depth 0): per microbatch 2 gathers + 1 reduce-scatter, each
// now issued once per FSDP unit (24 blocks + the root unit of mpt-1b = 25), each paying the ring's
// (n - 1) x 5 us. Everything else equal, the exposed DP time grows by 3 x 24 x 127 x 5 us = 45.72 ms.
TEST(FsdpUnits, PerUnitCollectivesPayTheRingLatencyOncePerUnit) {
  const model::ModelSpec m = model::load_model("mpt-1b");
  hw::Cluster c = hw::load_cluster("dgx-h100");
  c.sw.zero3_prefetch_depth = 0;
  c.sw.dp_nics_aggregate = true;
  const strategies::Plan p =
      strategies::resolve_plan(strategies::parse_plan("tp=1,pp=1,mbs=12,gbs=1536,zero=3,recompute=none"), m, c, 128);
  const double stage = analytic::Estimator(m, c).evaluate(p).dp_comm_exposed_s;
  c.sw.fsdp_per_layer = true;
  const double layer = analytic::Estimator(m, c).evaluate(p).dp_comm_exposed_s;
  EXPECT_NEAR(layer - stage, 3 * 24 * 127 * 5e-6, 1e-9);
  EXPECT_NEAR(layer - stage, 0.04572, 1e-9);
}

// SHARD_GRAD_OP (zero=2 on an FSDP-unit stack): one gather before the forward and one fp32
// reduce-scatter in the backward per microbatch, exposed in full with depth 0; ring bandwidth over
// the node's NICs: min(NVLink 450 x 0.8 = 360, 8 x 50 x 0.8 = 320) = 320 GB/s per GPU.
TEST(FsdpUnits, ShardGradOpGathersBeforeTheForwardAndReducesInFp32) {
  const model::ModelSpec m = model::load_model("mpt-1b");
  hw::Cluster c = hw::load_cluster("dgx-h100");
  c.sw.zero3_prefetch_depth = 0;
  c.sw.dp_nics_aggregate = true;
  c.sw.fsdp_per_layer = true;
  c.sw.grad_reduce_bytes = 4;
  const strategies::Plan p =
      strategies::resolve_plan(strategies::parse_plan("tp=1,pp=1,mbs=12,gbs=1536,zero=2,recompute=none"), m, c, 128);
  const analytic::Estimator est(m, c);
  const strategies::StepReport r = est.evaluate(p);
  const double P = est.params_on_stage(p, 0), n = 128, units = 25;
  const double ag = units * 127 * 5e-6 + (n - 1) / n * 2 * P / 320e9;
  const double rs = units * 127 * 5e-6 + (n - 1) / n * 4 * P / 320e9;
  EXPECT_NEAR(r.dp_comm_exposed_s, ag + rs, 1e-9 * (ag + rs));
  EXPECT_NEAR(r.comm.dp, 6 * P, 1e-6 * P);  // 2 B gathered + 4 B reduced per parameter
  // ZeRO-3 adds the backward's second gather: 2 + 2 + 4 = 8 B per parameter.
  const strategies::Plan p3 =
      strategies::resolve_plan(strategies::parse_plan("tp=1,pp=1,mbs=12,gbs=1536,zero=3,recompute=none"), m, c, 128);
  EXPECT_NEAR(est.evaluate(p3).comm.dp, 8 * P, 1e-6 * P);
}

// FlashAttention-2 on H100: 35 % of the bf16 peak (FlashAttention-3 paper, arXiv 2407.08608,
// abstract) where the stack's kernel is FA2; the device's fitted flash_attention otherwise; a device
// with no FA2 value keeps flash_attention either way.
TEST(FsdpUnits, FlashAttention2UsesItsOwnDeviceEfficiency) {
  const hw::Device h = hw::load_device("h100-sxm-80gb");
  ASSERT_DOUBLE_EQ(h.eff.flash2_attention, 0.35);
  const double F = 1e12, o = h.eff.kernel_overhead_s;
  EXPECT_NEAR(h.flash_time(F, hw::Dtype::bf16, true), F / (989.4e12 * 0.35) + o, 1e-12);  // 2.8879 ms + 4 us
  EXPECT_NEAR(h.flash_time(F, hw::Dtype::bf16, false), F / (989.4e12 * h.eff.flash_attention) + o, 1e-12);
  const hw::Device a = hw::load_device("a100-80gb");
  EXPECT_DOUBLE_EQ(a.flash_time(F, hw::Dtype::bf16, true), a.flash_time(F, hw::Dtype::bf16, false));
}

// FA2's backward kernel at its own H100 rate (FA3 paper, backward figure, head dim 128: 322 TFLOP/s at 16k,
// 0.326 of 989.4); the forward keeps 0.35; cuDNN / FA3-class attention (flash2 false) and a device with
// no backward value (A100) are unchanged.
TEST(FsdpUnits, FlashAttention2BackwardHasItsOwnRate) {
  const hw::Device h = hw::load_device("h100-sxm-80gb");
  ASSERT_DOUBLE_EQ(h.eff.flash2_attention_bwd, 0.326);
  const double F = 1e12, o = h.eff.kernel_overhead_s;
  EXPECT_NEAR(h.flash_time(F, hw::Dtype::bf16, true, true), F / (989.4e12 * 0.326) + o, 1e-12);  // 3.1003 ms + 4 us
  EXPECT_NEAR(h.flash_time(F, hw::Dtype::bf16, true, false), F / (989.4e12 * 0.35) + o, 1e-12);
  EXPECT_DOUBLE_EQ(h.flash_time(F, hw::Dtype::bf16, false, true), h.flash_time(F, hw::Dtype::bf16, false, false));
  const hw::Device a = hw::load_device("a100-80gb");
  EXPECT_DOUBLE_EQ(a.flash_time(F, hw::Dtype::bf16, true, true), a.flash_time(F, hw::Dtype::bf16, true, false));
}

}  // namespace
