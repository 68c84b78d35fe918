// llm-foundry's Triton FlashAttention kernel (stack `attention: flash_triton`; device
// flash_triton_fwd/bwd_vs_flash2): timed as FlashAttention-2 on the device times the device's measured
// ratio (FA2 paper, Dao 2023, sec. 4.1, A100: FA2 "around 1.3-1.5x faster than FlashAttention in Triton in
// the forward pass and around 2x faster in the backward pass"), and the 2023 A100 table's stacks.
#include <gtest/gtest.h>

#include <string>

#include "common/errors.hpp"
#include "hardware/stack.hpp"
#include "strategies/layer_cost.hpp"
#include "strategies/tensor_nd.hpp"

namespace {

using namespace scaleplan;
using namespace scaleplan::strategies;

TEST(FlashTriton, StackAndDeviceInputs) {
  const hw::Software t = hw::load_stack("llm-foundry-fsdp-triton");
  EXPECT_TRUE(t.flash_attention);
  EXPECT_TRUE(t.flash2_attention);  // FA2's efficiency is the base
  EXPECT_TRUE(t.flash_triton);
  EXPECT_FALSE(hw::load_stack("llm-foundry-fsdp").flash_triton);  // attn_impl flash: flash-attn 2
  const hw::Device a100 = hw::load_device("a100-80gb"), h100 = hw::load_device("h100-sxm-80gb");
  EXPECT_DOUBLE_EQ(a100.eff.flash_triton_fwd_vs_flash2, 1.4);
  EXPECT_DOUBLE_EQ(a100.eff.flash_triton_bwd_vs_flash2, 2.0);
  EXPECT_DOUBLE_EQ(hw::load_device("a100-40gb").eff.flash_triton_bwd_vs_flash2, 2.0);
  EXPECT_DOUBLE_EQ(h100.eff.flash_triton_fwd_vs_flash2, 1.0);  // not measured on Hopper
  // The 2023 A100 table: May 2023 rows (torch 1.13, MP Mode PURE) and the October 2023 re-measurement
  // (torch 2.1, non-reentrant checkpoint), both attn_impl triton (no unpad / pad passes).
  const hw::Software may = hw::load_stack("llm-foundry-fsdp-2023"), oct = hw::load_stack("llm-foundry-fsdp-2023-10");
  for (const hw::Software* s : {&may, &oct}) {
    EXPECT_TRUE(s->flash_triton) << s->stack;
    EXPECT_EQ(s->activation_passes_fwd, 0) << s->stack;
    EXPECT_EQ(s->activation_passes_bwd, 0) << s->stack;
  }
  EXPECT_FALSE(may.recompute_early_stop);
  EXPECT_TRUE(oct.recompute_early_stop);
  EXPECT_EQ(may.grad_reduce_bytes, 0);  // PURE: reduce in the parameter dtype
  EXPECT_EQ(oct.grad_reduce_bytes, 4);  // DEFAULT: fp32
}

// MPT-125M at 65536 tokens on an A100: the attention core is the Triton kernel's, 1.4x FA2's forward
// time and 2x its backward time; nothing else in the layer changes.
TEST(FlashTriton, AttentionTimeIsFa2TimesTheDeviceRatio) {
  const model::ModelSpec m = model::load_model("mpt-125m");
  const hw::Cluster c = hw::load_cluster("dgx-a100-40gb");
  LayerShape sh;
  sh.b = 1, sh.s = 65536, sh.s_kv = 65536, sh.tp = 1;
  sh.flash = true, sh.flash2 = true;
  sh.precision = Precision::bf16;
  auto cost = [&](bool triton) {
    sh.flash_triton = triton;
    return layer_cost(m, c, sh, make_tp_groups(c, tp_layout(TpMode::d1, 1, 1)), hw::make_group(c, 1, 1));
  };
  const PhaseCost fa2 = cost(false), tri = cost(true);
  // FA2's causal attention: 4 b heads s^2 d / 2 forward FLOPs, 2.5x that backward, at the device's
  // flash efficiency (a100-40gb: 0.50 x 312 TFLOP/s), plus the kernel overhead.
  const double f_fwd = 0.5 * 4.0 * 12 * 65536.0 * 65536.0 * 64;
  const double t_fwd = c.device.flash_time(f_fwd, hw::Dtype::bf16), t_bwd = c.device.flash_time(2.5 * f_fwd, hw::Dtype::bf16);
  EXPECT_NEAR(tri.fwd_s - fa2.fwd_s, (1.4 - 1) * t_fwd, 1e-9);
  EXPECT_NEAR(tri.bwd_s - fa2.bwd_s, (2.0 - 1) * t_bwd, 1e-9);
  EXPECT_EQ(tri.wgrad_s, fa2.wgrad_s);
  // Hand: 0.5 x 4 x 12 x 65536^2 x 64 = 6.60e12 FLOPs / 156 TFLOP/s = 42.3 ms forward -> +0.4 x = 16.9 ms;
  // 2.5 x 6.60e12 / 156e12 = 105.7 ms backward -> +1.0 x = 105.7 ms.
  EXPECT_NEAR(1e3 * (tri.fwd_s - fa2.fwd_s), 16.92, 0.02);
  EXPECT_NEAR(1e3 * (tri.bwd_s - fa2.bwd_s), 105.7, 0.1);
}

TEST(FlashTriton, RatiosMustBePositive) {
  const std::string dev =
      "name: d\npeak_tflops: {fp32: 10, tf32: 0, fp16: 100, bf16: 100, fp8: 0}\nhbm_GiB: 40\nhbm_bw_GBps: 1000\ntdp_W: 300\n"
      "efficiency:\n  flash_triton_fwd_vs_flash2: 0\n";
  EXPECT_THROW(hw::parse_device(dev, "d.yaml"), ConfigError);
}

}  // namespace
