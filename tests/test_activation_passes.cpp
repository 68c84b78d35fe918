// The stack inputs `activation_passes_fwd` / `activation_passes_bwd` (hw::Software; docs/accuracy.md,
// 2026-12-07 acc6 section): extra memory-bound passes per layer over b x s x h activation tensors,
// charged in strategies/layer_cost.cpp on top of the fused element-wise model. llm-foundry's
// flash_attn_fn (llmfoundry/models/layers/attention.py @5e85bd62) unpads Q, K, V and pads the output
// around the varlen FlashAttention kernel: 9 passes forward, 11 backward (configs/stacks/llm-foundry-fsdp.yaml).
#include <gtest/gtest.h>

#include <string>

#include "common/errors.hpp"
#include "hardware/stack.hpp"
#include "model/model.hpp"
#include "strategies/layer_cost.hpp"
#include "strategies/tensor_nd.hpp"
#include "stack_yaml_fsdp.hpp"

namespace {

using namespace scaleplan;
using namespace scaleplan::strategies;

using test_support::stack_fsdp_yaml;

TEST(ActivationPasses, ParsedWithNoneAsTheDefault) {
  const hw::Software none = hw::parse_stack(stack_fsdp_yaml(""), "t.yaml");
  EXPECT_EQ(none.activation_passes_fwd, 0);
  EXPECT_EQ(none.activation_passes_bwd, 0);
  const hw::Software s = hw::parse_stack(stack_fsdp_yaml("  activation_passes_fwd: 9\n  activation_passes_bwd: 11\n"), "t.yaml");
  EXPECT_EQ(s.activation_passes_fwd, 9);
  EXPECT_EQ(s.activation_passes_bwd, 11);
  EXPECT_THROW(hw::parse_stack(stack_fsdp_yaml("  activation_passes_fwd: -1\n"), "t.yaml"), ConfigError);
  // The shipped values: attn_impl flash (unpad q, k, v: 3 x (read + write); pad: zeros + index_put,
  // 1 + 2) = 9 forward; pad's gather 2 + per q, k, v zeros + scatter_ 3 = 11 backward. The triton
  // variant (13B / 30B in sweep.py @5e85bd62) and every other stack: none.
  const hw::Software foundry = hw::load_stack("llm-foundry-fsdp");
  EXPECT_EQ(foundry.activation_passes_fwd, 3 * 2 + 3);
  EXPECT_EQ(foundry.activation_passes_bwd, 2 + 3 * 3);
  // torchtitan without torch.compile: its eager RMSNorm, rotary, repeat_kv, contiguous and SwiGLU ops
  // (count in configs/stacks/torchtitan-fsdp2.yaml); compiled, the fused model.
  EXPECT_EQ(hw::load_stack("torchtitan-fsdp2").activation_passes_fwd, 53.5);
  EXPECT_EQ(hw::load_stack("torchtitan-fsdp2").activation_passes_bwd, 86);
  for (const char* n : {"llm-foundry-fsdp-triton", "megatron-core-2024", "torchtitan-fsdp2-compile", "megatron-lm-2019"}) {
    EXPECT_EQ(hw::load_stack(n).activation_passes_fwd, 0) << n;
    EXPECT_EQ(hw::load_stack(n).activation_passes_bwd, 0) << n;
  }
}

// MPT-1B (h 2048, s 2048) at the H100 table's microbatch 12, bf16, on an H100.
TEST(ActivationPasses, ChargedPerLayerInForwardBackwardAndRecompute) {
  const model::ModelSpec m = model::load_model("mpt-1b");
  const hw::Cluster c = hw::load_cluster("dgx-h100");
  LayerShape sh;
  sh.b = 12, sh.s = 2048, sh.s_kv = 2048, sh.tp = 1;
  sh.flash = true, sh.flash2 = true;
  sh.precision = Precision::bf16;
  auto cost = [&](double fwd, double bwd) {
    sh.act_passes_fwd = fwd, sh.act_passes_bwd = bwd;
    return layer_cost(m, c, sh, make_tp_groups(c, tp_layout(TpMode::d1, 1, 1)), hw::make_group(c, 1, 1));
  };
  const PhaseCost base = cost(0, 0), extra = cost(9, 11);
  const double tensor_B = 2.0 * 12 * 2048 * 2048;  // one bf16 b x s x h tensor: 100.66 MB
  EXPECT_NEAR(extra.fwd_s - base.fwd_s, c.device.stream_time(9 * tensor_B), 1e-12);
  EXPECT_NEAR(extra.bwd_s - base.bwd_s, c.device.stream_time(11 * tensor_B), 1e-12);
  // Hand: 9 x 100.66 MB / (3350 GB/s x 0.85) + 4 us = 0.3222 ms; 11 x 100.66 MB / 2847.5 GB/s + 4 us = 0.3929 ms.
  EXPECT_NEAR(1e3 * (extra.fwd_s - base.fwd_s), 0.3222, 0.0005);
  EXPECT_NEAR(1e3 * (extra.bwd_s - base.bwd_s), 0.3929, 0.0005);
  EXPECT_EQ(extra.wgrad_s, base.wgrad_s);  // not weight-gradient work: hides no TP collective
  // Full recompute repeats the forward, its extra passes included.
  sh.recompute = Recompute::full;
  EXPECT_NEAR(cost(9, 11).recompute_s - cost(0, 0).recompute_s, c.device.stream_time(9 * tensor_B), 1e-12);
}

}  // namespace
