// The stack input `optimizer_bytes_per_param` (hw::Software::optimizer_bytes_per_param; docs/stacks.md):
// the bytes a stack's optimizer step moves per parameter of the GPU's shard. The 2019 Megatron-LM fp16
// path (fp16/fp16.py, fp16/loss_scaler.py, mpu/grads.py @a1d04b79) runs one unfused pass per check and
// copy, 62 B where the estimator's fused default is 32 B (EstimatorOptions::optimizer_bytes_per_param).
#include <gtest/gtest.h>

#include <string>

#include "common/errors.hpp"
#include "hardware/stack.hpp"
#include "stack_yaml_2019.hpp"
#include "model/model.hpp"
#include "simulator/analytic/estimator.hpp"

namespace {

using namespace scaleplan;

std::string stack_yaml(const std::string& line) { return test_support::stack_2019_yaml(line); }

TEST(OptimizerBytes, ParsedWithTheEstimatorDefaultWhenAbsent) {
  EXPECT_EQ(hw::parse_stack(stack_yaml(""), "t.yaml").optimizer_bytes_per_param, 0);
  EXPECT_EQ(hw::parse_stack(stack_yaml("  optimizer_bytes_per_param: 62\n"), "t.yaml").optimizer_bytes_per_param, 62);
  EXPECT_THROW(hw::parse_stack(stack_yaml("  optimizer_bytes_per_param: -2\n"), "t.yaml"), ConfigError);
  // 2+4+4 overflow check, 2+4 grad copy, 4+4 unscale, 4 norm, 16+12 Adam, 4+2 weight copy.
  EXPECT_EQ(hw::load_stack("megatron-lm-2019").optimizer_bytes_per_param, 10 + 6 + 8 + 4 + 28 + 6);
  for (const char* s : {"megatron-lm-2020", "megatron-lm-2021", "megatron-core-2024", "unrestricted", "deepspeed-zero"})
    EXPECT_EQ(hw::load_stack(s).optimizer_bytes_per_param, 0) << s;
}

// The 1.2B baseline of Shoeybi et al. 2019 on one V100: the step moves 62 B per parameter of the
// GPU at the device's streaming rate (900 GB/s x 0.85), one kernel overhead per step either way.
TEST(OptimizerBytes, EstimatorOptimizerStepFollowsTheStack) {
  const model::ModelSpec m = model::load_model("gpt-1.2b-megatron2019");
  hw::Cluster c = hw::load_cluster("dgx2-v100");
  hw::use_stack(c, "megatron-lm-2019");
  const strategies::Plan p =
      strategies::resolve_plan(strategies::parse_plan("tp=1,pp=1,mbs=8,gbs=8,recompute=full,precision=fp16"), m, c, 1);
  const analytic::Estimator est(m, c);
  EXPECT_EQ(est.optimizer_bytes_per_param(), 62);
  const double P = est.params_on_stage(p, 0);
  const double with = est.evaluate(p).time.optimizer_s;
  EXPECT_NEAR(with, 62 * P / (900e9 * 0.85) + 5e-6, 1e-9);
  c.sw.optimizer_bytes_per_param = 0;  // the fused default
  const analytic::Estimator fused(m, c);
  EXPECT_EQ(fused.optimizer_bytes_per_param(), 32);
  EXPECT_NEAR(with - fused.evaluate(p).time.optimizer_s, 30 * P / (900e9 * 0.85), 1e-9);
  // Hand: 1.213e9 parameters (40 layers x 12 h^2 + 51200 x 1536 + 1024 x 1536, plus biases and norms)
  // x 30 B / 765 GB/s = 47.6 ms more.
  EXPECT_NEAR(1e3 * (with - fused.evaluate(p).time.optimizer_s), 47.6, 0.3);
}

}  // namespace
