// Expert parallelism (strategies/expert) and the MoE presets: all-to-all payloads by hand, capacity
// factor, expert weights split over ep, expert-data-parallel gradient groups, plan rules.
#include <gtest/gtest.h>

#include <functional>

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

LayerShape moe_shape(int tp, int ep, bool sp = false) {
  LayerShape sh;
  sh.b = 2;
  sh.s = 4096;
  sh.s_kv = 4096;
  sh.tp = tp;
  sh.ep = ep;
  sh.sp = sp;
  sh.flash = true;
  return sh;
}

// GShard: each of the T local tokens goes to top_k experts, padded to capacity_factor; a rank holds
// E/ep experts and computes ep x (cf T k / E) tokens for each.
TEST(Expert, DispatchPayloadAndCapacity) {
  model::ModelSpec m = model::load_model("mixtral-8x7b");
  const hw::Device d = hw::load_device("h100");
  const double T = 2 * 4096.0, h = m.hidden;
  const MoeCost c = moe_cost(m, d, moe_shape(1, 4));
  EXPECT_DOUBLE_EQ(c.a2a_bytes, 2.0 * T * 2 /*top-2*/ * 1.0 * h);
  EXPECT_DOUBLE_EQ(c.tokens_per_expert, T * 2 * 4 / 8);
  EXPECT_EQ(c.a2a_fwd, 2);
  EXPECT_EQ(c.a2a_bwd, 2);
  // With Megatron SP the tokens are already split over TP.
  EXPECT_DOUBLE_EQ(moe_cost(m, d, moe_shape(2, 4, true)).a2a_bytes, c.a2a_bytes / 2);
  // No all-to-all without expert parallelism.
  EXPECT_EQ(moe_cost(m, d, moe_shape(1, 1)).a2a_bytes, 0);
  // Capacity factor 1.25: 25 % more padded tokens and payload, and more expert GEMM time.
  m.moe.capacity_factor = 1.25;
  const MoeCost c125 = moe_cost(m, d, moe_shape(1, 4));
  EXPECT_DOUBLE_EQ(c125.a2a_bytes, 1.25 * c.a2a_bytes);
  EXPECT_DOUBLE_EQ(c125.tokens_per_expert, 1.25 * c.tokens_per_expert);
  EXPECT_GT(c125.fwd_s, c.fwd_s);
}

// Step level: the contract's ep bytes are (microbatches x layers x 4 all-to-alls x payload); the
// expert weights split over ep and their optimizer states shard over dp/ep.
TEST(Expert, StepReport) {
  const model::ModelSpec m = model::load_model("mixtral-8x7b");
  const hw::Cluster c = hw::load_cluster("dgx-h100");
  analytic::Estimator est(m, c);
  const Plan p1 = resolve_plan(parse_plan("tp=1,ep=1,mbs=1,gbs=64,zero=1,recompute=full"), m, c, 64);
  const Plan p8 = resolve_plan(parse_plan("tp=1,ep=8,mbs=1,gbs=64,zero=1,recompute=full"), m, c, 64);
  const StepReport r1 = est.evaluate(p1), r8 = est.evaluate(p8);
  EXPECT_EQ(r1.comm.ep, 0);
  const double payload = 2.0 * m.seq * m.moe.top_k * m.hidden;  // bf16, mbs 1, cf 1
  // Full recompute repeats the forward's two all-to-alls: 6 per layer per microbatch.
  EXPECT_DOUBLE_EQ(r8.comm.ep, static_cast<double>(p8.microbatches()) * m.layers * 6 * payload);
  const double experts = m.layers * m.moe.experts * m.mlp_weight_params();
  EXPECT_NEAR(est.params_on_stage(p1, 0) - est.params_on_stage(p8, 0), experts * (1 - 1.0 / 8), 1);
  EXPECT_NEAR(est.expert_params_on_stage(p8, 0), experts / 8, 1);
  EXPECT_LT(r8.memory.total(), r1.memory.total());
  EXPECT_GT(r8.ep_comm_exposed_s, 0);
}

void expect_plan_error(const std::function<void()>& fn, const std::string& key, const std::string& sub) {
  try {
    fn();
    ADD_FAILURE() << "no PlanError";
  } catch (const PlanError& e) {
    EXPECT_EQ(e.key(), key) << e.what();
    EXPECT_NE(std::string(e.what()).find(sub), std::string::npos) << e.what();
  }
}

TEST(Expert, PlanRules) {
  const model::ModelSpec m = model::load_model("mixtral-8x7b");
  const hw::Cluster c = hw::load_cluster("dgx-h100");
  expect_plan_error([&] { resolve_plan(parse_plan("tp=8,ep=3"), m, c, 24); }, "ep", "does not divide experts=8");
  expect_plan_error([&] { resolve_plan(parse_plan("tp=8,ep=4"), m, c, 16); }, "ep", "must divide dp=2");
  expect_plan_error([&] { resolve_plan(parse_plan("tp=8,ep=2"), model::load_model("llama3-8b"), c, 16); }, "ep", "MoE");
  EXPECT_NO_THROW(resolve_plan(parse_plan("tp=2,ep=8"), m, c, 16));
}

// The GPT-4-like preset: ~1.8T total, 16 experts, top-2 (shape assumed, see its YAML).
TEST(Expert, Gpt4LikePreset) {
  const model::ModelSpec m = model::load_model("gpt4-moe-1.8t");
  EXPECT_EQ(m.moe.experts, 16);
  EXPECT_EQ(m.moe.top_k, 2);
  EXPECT_NEAR(m.total_params() / 1.8e12, 1.0, 0.03);
  const double active = m.layers * m.layer_active_params() + m.embedding_params() + m.lm_head_params();
  EXPECT_NEAR(active / 1e9, 280, 10);  // ~280B active per token
  const hw::Cluster c = hw::load_cluster("dgx-h100");
  analytic::Estimator est(m, c);
  const Plan p = resolve_plan(parse_plan("tp=8,pp=15,vpp=2,ep=16,mbs=1,gbs=1920,sp=on,recompute=full,zero=1"), m, c, 1920);
  const StepReport r = est.evaluate(p);
  EXPECT_TRUE(r.feasible) << r.reason;
  EXPECT_GT(r.comm.ep, 0);
}

}  // namespace
