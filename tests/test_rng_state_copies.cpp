// The stack input `rng_state_bytes` (hw::Software::rng_state_bytes; docs/stacks.md, docs/accuracy.md):
// PyTorch <= 1.1 keeps the CUDA RNG state (200 MTGP32 generator states) on the device and copies it
// with a synchronous cudaMemcpy at every torch.cuda.get_rng_state / set_rng_state
// (aten/src/THC/THCTensorRandom.cu); the 2019 Megatron-LM code does 12 of them per checkpointed layer
// (mpu/random.py @a1d04b79: tracker fork around the attention dropout, 4 in each forward; the
// checkpoint's stash and restore, 4 more). Charged in strategies/layer_cost.cpp.
#include <gtest/gtest.h>

#include <string>

#include "common/errors.hpp"
#include "hardware/stack.hpp"
#include "stack_yaml_2019.hpp"
#include "model/model.hpp"
#include "simulator/analytic/estimator.hpp"
#include "strategies/layer_cost.hpp"
#include "strategies/tensor_nd.hpp"

namespace {

using namespace scaleplan;
using namespace scaleplan::strategies;

std::string stack_yaml(const std::string& line) { return test_support::stack_2019_yaml(line); }

TEST(RngStateCopies, ParsedWithNoneAsTheDefault) {
  EXPECT_EQ(hw::parse_stack(stack_yaml(""), "t.yaml").rng_state_bytes, 0);
  EXPECT_EQ(hw::parse_stack(stack_yaml("  rng_state_bytes: 824000\n"), "t.yaml").rng_state_bytes, 824000);
  EXPECT_THROW(hw::parse_stack(stack_yaml("  rng_state_bytes: -1\n"), "t.yaml"), ConfigError);
  // Only the 2019 stack ran on PyTorch 1.1 (docker/Dockerfile @a1d04b79: nvcr.io/nvidia/pytorch:19.05-py3).
  EXPECT_EQ(hw::load_stack("megatron-lm-2019").rng_state_bytes, 824000);
  for (const char* s : {"megatron-lm-2020", "megatron-lm-2021", "megatron-core-2024", "unrestricted", "deepspeed-zero"})
    EXPECT_EQ(hw::load_stack(s).rng_state_bytes, 0) << s;
}

// One copy on a DGX-2 (dgx2-v100: PCIe 12 GB/s per GPU; v100-32gb: 5 us per kernel):
// 824000 B / 12e9 B/s = 68.67 us, + 5 us = 73.67 us. No state, no cost.
TEST(RngStateCopies, OneCopyCostsItsPcieTransferAndOneLaunch) {
  hw::Cluster c = hw::load_cluster("dgx2-v100");
  EXPECT_EQ(rng_state_copy_s(c), 0);
  hw::use_stack(c, "megatron-lm-2019");
  EXPECT_NEAR(1e6 * rng_state_copy_s(c), 73.667, 0.001);
}

// The 1.2B model of Shoeybi et al. 2019 Table 1 at batch 8: 4 copies in each forward (the recomputed
// one too) and, with full recompute, 4 more in backward.
TEST(RngStateCopies, FourPerForwardAndFourPerCheckpoint) {
  const model::ModelSpec m = model::load_model("gpt-1.2b-megatron2019");
  hw::Cluster c = hw::load_cluster("dgx2-v100");
  hw::use_stack(c, "megatron-lm-2019");
  const double copy = rng_state_copy_s(c);
  LayerShape sh;
  sh.b = 8, sh.s = 1024, sh.s_kv = 1024, sh.tp = 1;
  sh.precision = Precision::fp16;
  sh.eager_elementwise = true;
  auto cost = [&](double rng_copy_s, Recompute r) {
    sh.rng_copy_s = rng_copy_s;
    sh.recompute = r;
    return layer_cost(m, c, sh, make_tp_groups(c, tp_layout(TpMode::d1, 1, 1)), hw::make_group(c, 1, 1));
  };
  const PhaseCost none0 = cost(0, Recompute::none), none1 = cost(copy, Recompute::none);
  EXPECT_NEAR(none1.fwd_s - none0.fwd_s, 4 * copy, 1e-15);
  EXPECT_NEAR(none1.bwd_s - none0.bwd_s, 0, 1e-15);
  const PhaseCost full0 = cost(0, Recompute::full), full1 = cost(copy, Recompute::full);
  EXPECT_NEAR(full1.fwd_s - full0.fwd_s, 4 * copy, 1e-15);
  EXPECT_NEAR(full1.recompute_s - full0.recompute_s, 4 * copy, 1e-15);
  EXPECT_NEAR(full1.bwd_s - full0.bwd_s, 4 * copy, 1e-15);
}

// End to end on one V100: 40 layers x 12 copies x 73.67 us = 35.36 ms more per step, whatever tp is
// (the copies are per process, not split by tensor parallelism).
TEST(RngStateCopies, EstimatorStepOfTheStrongScalingBaseline) {
  const model::ModelSpec m = model::load_model("gpt-1.2b-megatron2019");
  for (int tp : {1, 8}) {
    hw::Cluster c = hw::load_cluster("dgx2-v100");
    hw::use_stack(c, "megatron-lm-2019");
    const Plan p = resolve_plan(parse_plan("tp=" + std::to_string(tp) + ",pp=1,mbs=8,gbs=8,recompute=full,precision=fp16"), m,
                                c, tp);
    const double with = analytic::Estimator(m, c).evaluate(p).time.step_s;
    c.sw.rng_state_bytes = 0;
    const double without = analytic::Estimator(m, c).evaluate(p).time.step_s;
    EXPECT_NEAR(1e3 * (with - without), 40 * 12 * 0.073667, 0.001) << "tp " << tp;
  }
}

}  // namespace
