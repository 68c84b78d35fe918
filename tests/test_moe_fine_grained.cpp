// Fine-grained and shared experts in the training estimator (strategies/expert expert_width /
// shared_experts_width; DeepSeekMoE arXiv 2401.06066 sec. 3, Megatron-Core moe_ffn_hidden_size and
// SharedExpertMLP) and a head_dim decoupled from hidden/heads (Qwen3: kv_channels 128).
#include <gtest/gtest.h>

#include "common/errors.hpp"
#include "hardware/cluster.hpp"
#include "model/model.hpp"
#include "simulator/analytic/estimator.hpp"
#include "strategies/expert.hpp"
#include "strategies/layer_cost.hpp"
#include "strategies/plan.hpp"

namespace {

using namespace scaleplan;
using namespace scaleplan::strategies;

LayerShape shape(int tp = 1, int ep = 1) {
  LayerShape sh;
  sh.b = 1;
  sh.s = 4096;
  sh.s_kv = 4096;
  sh.tp = tp;
  sh.ep = ep;
  sh.flash = true;
  return sh;
}

// Qwen3-30B-A3B as Megatron-Bridge's Qwen3MoEModelProvider30B_A3B gives it (qwen_provider.py @07d0d14a):
// 48 layers, hidden 2048, 32 heads of kv_channels 128 (q_dim 4096 = 2 h), 4 query groups, ffn 6144 (dense,
// unused: every layer is MoE), 128 experts of moe_ffn_hidden_size 768, top 8, vocab 151936, untied.
model::ModelSpec qwen3_30b_a3b() {
  model::ModelSpec m = model::load_model("mixtral-8x7b");  // SwiGLU, RMSNorm, RoPE, no biases, untied
  m.name = "qwen3-30b-a3b";
  m.layers = 48;
  m.hidden = 2048;
  m.heads = 32;
  m.kv_heads = 4;
  m.head_dim_explicit = 128;
  m.ffn = 6144;
  m.vocab = 151936;
  m.seq = 4096;
  m.moe.experts = 128;
  m.moe.top_k = 8;
  m.moe.expert_ffn = 768;
  return m;
}

TEST(MoeFineGrained, Widths) {
  model::ModelSpec m = qwen3_30b_a3b();
  EXPECT_EQ(expert_width(m), 768);
  EXPECT_EQ(shared_experts_width(m), 0);
  m.moe.shared_experts = 2;  // two shared experts of the routed width (DeepSeekMoE 16B: 2 shared)
  EXPECT_EQ(shared_experts_width(m), 2 * 768);
  m.moe.shared_expert_ffn = 5632;  // Qwen1.5-MoE: one shared expert of its own width (per shared expert)
  EXPECT_EQ(shared_experts_width(m), 2 * 5632);
  m.moe.expert_ffn = 0;  // Mixtral/GShard: the expert is as wide as the dense FFN
  EXPECT_EQ(expert_width(m), 6144);
}

// expert_ffn equal to ffn costs exactly what the Mixtral-style model (expert_ffn 0) costs.
TEST(MoeFineGrained, ExpertFfnEqualToFfnIsMixtral) {
  const hw::Device d = hw::load_device("h100");
  model::ModelSpec a = model::load_model("mixtral-8x7b"), b = a;
  b.moe.expert_ffn = a.ffn;
  const MoeCost ca = moe_cost(a, d, shape(1, 4)), cb = moe_cost(b, d, shape(1, 4));
  EXPECT_DOUBLE_EQ(ca.fwd_s, cb.fwd_s);
  EXPECT_DOUBLE_EQ(ca.dgrad_s, cb.dgrad_s);
  EXPECT_DOUBLE_EQ(ca.wgrad_s, cb.wgrad_s);
}

// Routed experts run at the expert width; the shared experts add one dense MLP over every token.
TEST(MoeFineGrained, ExpertGemmsAtTheExpertWidthPlusSharedMlp) {
  const hw::Device d = hw::load_device("h100");
  model::ModelSpec m = qwen3_30b_a3b();
  const LayerShape sh = shape(2, 8);
  const MoeCost c = moe_cost(m, d, sh);
  const double T = 4096, h = 2048, e = 2, w = 768;
  const double local = 128.0 / 8, tok = T * 8 * 8 / 128;  // T k cf tokens over E/ep local experts
  EXPECT_DOUBLE_EQ(c.tokens_per_expert, tok);
  const hw::Dtype dt = gemm_dtype(sh.precision);
  const GemmCost router = linear_gemms(d, T, 128, h, e, dt);
  const GemmCost fc1 = linear_gemms(d, tok, 2 * w / 2, h, e, dt, 1, local), fc2 = linear_gemms(d, tok, h, w / 2, e, dt, 1, local);
  EXPECT_DOUBLE_EQ(c.fwd_s, router.fwd + fc1.fwd + fc2.fwd);
  m.moe.shared_experts = 1;
  m.moe.shared_expert_ffn = 1536;
  const MoeCost cs = moe_cost(m, d, sh);
  const GemmCost s1 = linear_gemms(d, T, 2 * 1536 / 2.0, h, e, dt), s2 = linear_gemms(d, T, h, 1536 / 2.0, e, dt);
  EXPECT_DOUBLE_EQ(cs.fwd_s - c.fwd_s, s1.fwd + s2.fwd);
  EXPECT_DOUBLE_EQ(cs.wgrad_s - c.wgrad_s, s1.wgrad + s2.wgrad);
  EXPECT_DOUBLE_EQ(cs.a2a_bytes, c.a2a_bytes);  // shared experts dispatch nothing
}

// Layer model FLOPs (tp 1): 3 x the forward count of layer_forward_flops (q_dim = 2h for Qwen3, top_k
// experts of 768 plus the shared experts), and the step's model FLOPs agree with it.
TEST(MoeFineGrained, ModelFlopsFollowTheActiveParameters) {
  const hw::Cluster c = hw::load_cluster("dgx-h100");
  model::ModelSpec m = qwen3_30b_a3b();
  m.moe.shared_experts = 1;
  const double s = 4096, h = 2048, q = 4096, kv = 512;
  const double fwd = 2 * s * (h * (q + 2 * kv) + q * h + 8 * 3 * h * 768 + 1 * 3 * h * 768) + 2 * s * s * 32 * (128 + 128);
  EXPECT_DOUBLE_EQ(layer_forward_flops(m, s), fwd);
  const TpGroups g = make_tp_groups(c, tp_layout(TpMode::d1, 1, 1));
  const PhaseCost pc = layer_cost(m, c, shape(), g, hw::make_group(c, 1, 1));
  EXPECT_NEAR(pc.model_flops, 3 * fwd, 1e-9 * fwd);
}

// Parameters: the estimator's per-stage count (pp 1, tp 1, ep 1) equals the model's own total, and
// ep splits exactly the routed experts (the shared experts stay with the dense part).
TEST(MoeFineGrained, ParametersSplitTheRoutedExpertsOnly) {
  const hw::Cluster c = hw::load_cluster("dgx-h100");
  model::ModelSpec m = qwen3_30b_a3b();
  m.moe.shared_experts = 1;
  const analytic::Estimator est(m, c);
  const Plan p1 = resolve_plan(parse_plan("tp=1,ep=1,mbs=1,gbs=64,zero=1,recompute=full"), m, c, 8);
  const Plan p8 = resolve_plan(parse_plan("tp=1,ep=8,mbs=1,gbs=64,zero=1,recompute=full"), m, c, 8);
  EXPECT_NEAR(est.params_on_stage(p1, 0), m.total_params(), 1e-9 * m.total_params());
  const double routed = m.layers * 128.0 * 3 * 2048 * 768;
  EXPECT_NEAR(est.params_on_stage(p1, 0) - est.params_on_stage(p8, 0), routed * (1 - 1.0 / 8), 1);
  EXPECT_NEAR(est.expert_params_on_stage(p8, 0), routed / 8, 1);
  const StepReport r = est.evaluate(p8);
  EXPECT_GT(r.time.step_s, 0);
  EXPECT_GT(r.memory.total(), 0);
}

// Finer experts at the same active FLOPs (4x the experts, 4x top_k, a quarter the width) keep the
// model FLOPs but cost more time: thinner grouped GEMMs and 4x the permuted activations.
TEST(MoeFineGrained, FinerExpertsSameFlopsMoreTime) {
  const hw::Cluster c = hw::load_cluster("dgx-h100");
  const model::ModelSpec coarse = model::load_model("mixtral-8x7b");
  model::ModelSpec fine = coarse;
  fine.moe.experts = 32;
  fine.moe.top_k = 8;
  fine.moe.expert_ffn = coarse.ffn / 4;
  const TpGroups g = make_tp_groups(c, tp_layout(TpMode::d1, 1, 1));
  const PhaseCost a = layer_cost(coarse, c, shape(), g, hw::make_group(c, 1, 1));
  const PhaseCost b = layer_cost(fine, c, shape(), g, hw::make_group(c, 1, 1));
  EXPECT_NEAR(a.model_flops, b.model_flops, 1e-9 * a.model_flops);
  EXPECT_GT(b.fwd_s + b.bwd_s, a.fwd_s + a.bwd_s);
}

TEST(MoeFineGrained, PlanRules) {
  const hw::Cluster c = hw::load_cluster("dgx-h100");
  model::ModelSpec m = qwen3_30b_a3b();
  m.moe.expert_ffn = 760;  // 760 = 8 x 95: tp 16 does not divide it
  m.heads = 32;
  EXPECT_THROW(resolve_plan(parse_plan("tp=16,mbs=1,gbs=64"), m, c, 16), PlanError);
  try {
    resolve_plan(parse_plan("tp=16,mbs=1,gbs=64"), m, c, 16);
  } catch (const PlanError& e) {
    EXPECT_EQ(e.key(), "tp") << e.what();
  }
  m.moe.expert_ffn = 768;
  m.moe.first_dense_layers = 1;  // dense-first stacks (DeepSeek-V3) stay refused by key
  try {
    resolve_plan(parse_plan("tp=1,mbs=1,gbs=64"), m, c, 8);
    ADD_FAILURE() << "no PlanError";
  } catch (const PlanError& e) {
    EXPECT_EQ(e.key(), "model") << e.what();
  }
}

}  // namespace
