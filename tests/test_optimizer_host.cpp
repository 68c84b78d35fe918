// The stack inputs `optimizer_host_us_per_tensor` and `param_tensors_per_layer`
// (hw::Software::optimizer_host_s_per_tensor / param_tensors_per_layer; docs/stacks.md,
// docs/accuracy-acc7.md): the 2019 Megatron-LM fp16 optimizer dispatches 13 eager ops per parameter
// tensor and step from Python loops (fp16/fp16.py, fp16/loss_scaler.py, mpu/grads.py @a1d04b79), 7 us
// each (pytorch/pytorch#41383); the step takes the longer of that host time and the stream time.
#include <gtest/gtest.h>

#include <string>

#include "common/errors.hpp"
#include "hardware/stack.hpp"
#include "model/model.hpp"
#include "simulator/analytic/estimator.hpp"
#include "stack_yaml_2019.hpp"
#include "strategies/pipeline.hpp"

namespace {

using namespace scaleplan;

std::string stack_yaml(const std::string& line) { return test_support::stack_2019_yaml(line); }

TEST(OptimizerHost, ParsedAndRequiresTheTensorCount) {
  const hw::Software none = hw::parse_stack(stack_yaml(""), "t.yaml");
  EXPECT_EQ(none.optimizer_host_s_per_tensor, 0);
  EXPECT_EQ(none.param_tensors_per_layer, 0);
  const hw::Software sw =
      hw::parse_stack(stack_yaml("  optimizer_host_us_per_tensor: 91\n  param_tensors_per_layer: 12\n"), "t.yaml");
  EXPECT_NEAR(sw.optimizer_host_s_per_tensor, 91e-6, 1e-15);
  EXPECT_EQ(sw.param_tensors_per_layer, 12);
  EXPECT_THROW(hw::parse_stack(stack_yaml("  optimizer_host_us_per_tensor: -1\n  param_tensors_per_layer: 12\n"), "t.yaml"),
               ConfigError);
  EXPECT_THROW(hw::parse_stack(stack_yaml("  optimizer_host_us_per_tensor: 91\n"), "t.yaml"), ConfigError);
  // 13 ops (4 zero_grad, 3 overflow check, 1 grad copy, 1 unscale, 2 norm, 1 Adam, 1 weight copy) x 7 us.
  const hw::Software s2019 = hw::load_stack("megatron-lm-2019");
  EXPECT_NEAR(s2019.optimizer_host_s_per_tensor, (4 + 3 + 1 + 1 + 2 + 1 + 1) * 7e-6, 1e-12);
  EXPECT_EQ(s2019.param_tensors_per_layer, 4 + 8);
  for (const char* s : {"megatron-lm-2020", "megatron-lm-2021", "megatron-core-2024", "unrestricted", "deepspeed-zero"})
    EXPECT_EQ(hw::load_stack(s).optimizer_host_s_per_tensor, 0) << s;
}

struct Case {
  model::ModelSpec m = model::load_model("gpt-1.2b-megatron2019");
  hw::Cluster c = hw::load_cluster("dgx2-v100");
  Case() { hw::use_stack(c, "megatron-lm-2019"); }
  strategies::Plan plan(int tp) const {
    return strategies::resolve_plan(
        strategies::parse_plan("tp=" + std::to_string(tp) + ",pp=1,mbs=8,gbs=8,recompute=full,precision=fp16"), m, c, tp);
  }
};

// Shoeybi et al. 2019's 1.2B model (40 layers): 40 x 12 + word and position embedding + final
// LayerNorm weight and bias = 484 tensors, 484 x 91 us = 44.04 ms of host time per step.
TEST(OptimizerHost, TensorCountOfTheOneStageModel) {
  const Case r;
  const strategies::Plan p = r.plan(8);
  const analytic::Estimator est(r.m, r.c);
  EXPECT_EQ(est.param_tensors_on_stage(p, 0, strategies::stage_layers(p, r.m.layers)), 40 * 12 + 2 + 2);
  hw::Cluster c0 = r.c;
  c0.sw.param_tensors_per_layer = 0;
  c0.sw.optimizer_host_s_per_tensor = 0;
  EXPECT_EQ(analytic::Estimator(r.m, c0).param_tensors_on_stage(p, 0, strategies::stage_layers(p, r.m.layers)), 0);
}

// tp=8: the GPU's 1/8 of the parameters streams its 62 B/param in ~12 ms, so the host's 44.04 ms
// sets the optimizer step; tp=1: the stream time (~98 ms) is longer and stays.
TEST(OptimizerHost, StepIsTheLongerOfHostAndStream) {
  const Case r;
  const analytic::Estimator est(r.m, r.c);
  const double host = 484 * 91e-6;
  const strategies::Plan p8 = r.plan(8), p1 = r.plan(1);
  const double gpu8 = r.c.device.stream_time(62 * est.params_on_stage(p8, 0));
  const double gpu1 = r.c.device.stream_time(62 * est.params_on_stage(p1, 0));
  EXPECT_LT(gpu8, host);
  EXPECT_GT(gpu1, host);
  EXPECT_NEAR(est.evaluate(p8).time.optimizer_s, host, 1e-9);
  EXPECT_NEAR(1e3 * est.evaluate(p8).time.optimizer_s, 44.04, 0.01);
  EXPECT_NEAR(est.evaluate(p1).time.optimizer_s, gpu1, 1e-9);
  // Without the input the tp=8 step is the stream time again, 44.04 - 12.4 ms shorter.
  hw::Cluster c0 = r.c;
  c0.sw.optimizer_host_s_per_tensor = 0;
  const strategies::StepReport off = analytic::Estimator(r.m, c0).evaluate(p8);
  EXPECT_NEAR(off.time.optimizer_s, gpu8, 1e-9);
  EXPECT_NEAR(est.evaluate(p8).time.step_s - off.time.step_s, host - gpu8, 1e-9);
}

}  // namespace
