// The stack input `elementwise: eager` (hw::Software::eager_elementwise; docs/stacks.md): the 2019
// Megatron-LM code's element-wise passes (NVIDIA/Megatron-LM mpu/transformer.py @a1d04b79), charged
// in strategies/layer_cost.cpp on top of the fused kernels the other stacks run.
#include <gtest/gtest.h>

#include <string>

#include "common/errors.hpp"
#include "hardware/stack.hpp"
#include "stack_yaml_2019.hpp"
#include "model/model.hpp"
#include "strategies/layer_cost.hpp"
#include "strategies/tensor_nd.hpp"

namespace {

using namespace scaleplan;
using namespace scaleplan::strategies;

std::string stack_yaml(const std::string& line) { return test_support::stack_2019_yaml(line); }

TEST(EagerElementwise, ParsedWithFusedAsTheDefault) {
  EXPECT_FALSE(hw::parse_stack(stack_yaml(""), "t.yaml").eager_elementwise);
  EXPECT_FALSE(hw::parse_stack(stack_yaml("  elementwise: fused\n"), "t.yaml").eager_elementwise);
  EXPECT_TRUE(hw::parse_stack(stack_yaml("  elementwise: eager\n"), "t.yaml").eager_elementwise);
  EXPECT_THROW(hw::parse_stack(stack_yaml("  elementwise: jit\n"), "t.yaml"), ConfigError);
  EXPECT_TRUE(hw::load_stack("megatron-lm-2019").eager_elementwise);
  for (const char* s : {"megatron-lm-2020", "megatron-lm-2021", "megatron-lm-2022", "unrestricted", "deepspeed-zero"})
    EXPECT_FALSE(hw::load_stack(s).eager_elementwise) << s;
}

// The 1.2B model of Shoeybi et al. 2019 Table 1 (h 1536, 16 heads, s 1024) at batch 8 on a V100, fp16.
TEST(EagerElementwise, ChargesTheMaskPassesAndTheUnfusedBiasDropoutResidual) {
  const model::ModelSpec m = model::load_model("gpt-1.2b-megatron2019");
  hw::Cluster c = hw::load_cluster("dgx2-v100");
  c.sw.flash_attention = false;
  LayerShape sh;
  sh.b = 8, sh.s = 1024, sh.s_kv = 1024, sh.tp = 1;
  sh.precision = Precision::fp16;
  auto cost = [&](bool eager) {
    sh.eager_elementwise = eager;
    return layer_cost(m, c, sh, make_tp_groups(c, tp_layout(TpMode::d1, 1, 1)), hw::make_group(c, 1, 1));
  };
  const PhaseCost fused = cost(false), eager = cost(true);
  const hw::Device& d = c.device;
  const double e = 2, scores = 8.0 * 16 * 1024 * 1024, Th = 8.0 * 1024 * 1536;
  // Forward: mask multiply + subtract over the scores; per bias-dropout-residual (two a layer) three
  // kernels of 2e, 2e + 1, 3e bytes per element instead of one of 3e + 1.
  const double fwd_extra = 2 * d.stream_time(2 * e * scores) +
                           2 * (d.stream_time(2 * e * Th) + d.stream_time((2 * e + 1) * Th) + d.stream_time(3 * e * Th) -
                                d.stream_time((3 * e + 1) * Th));
  EXPECT_NEAR(eager.fwd_s - fused.fwd_s, fwd_extra, 1e-12);
  EXPECT_NEAR(eager.bwd_s - fused.bwd_s, d.stream_time(2 * e * scores), 1e-12);  // the multiply's gradient
  // Hand: 4 B x 134.2 M scores / (900 GB/s x 0.85) + 5 us = 0.7067 ms per mask pass; 8 B x 12.6 M
  // more per bias-dropout-residual = 0.1316 ms + 2 x 5 us of extra launches: 1.413 + 0.283 = 1.696 ms.
  EXPECT_NEAR(1e3 * (eager.fwd_s - fused.fwd_s), 1.696, 0.002);
  // Full recompute repeats the forward, extra passes included.
  sh.recompute = Recompute::full;
  EXPECT_NEAR(cost(true).recompute_s - cost(false).recompute_s, fwd_extra, 1e-12);
}

}  // namespace
