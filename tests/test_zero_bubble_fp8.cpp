// Zero-bubble pipeline schedule (ZB-H1, Qi et al. 2023) and fp8 precision (Transformer Engine recipe,
// Micikevicius et al. 2022) in strategies/pipeline and the estimator.
#include <gtest/gtest.h>

#include "hardware/cluster.hpp"
#include "model/model.hpp"
#include "simulator/analytic/estimator.hpp"
#include "strategies/memory.hpp"
#include "strategies/pipeline.hpp"
#include "strategies/plan.hpp"

namespace {

using namespace scaleplan;
using namespace scaleplan::strategies;

// Qi et al. sec. 3.1 with t_F = t_B = t_W = 1: 1F1B's bubble is 3(p-1), ZB-H1's (p-1), same memory.
TEST(ZeroBubble, HandCountedSchedule) {
  for (int p : {2, 4, 8}) {
    for (long long m : {8LL, 16LL, 64LL}) {
      StageTimes st;
      st.max_s = 3;
      st.sum_s = 3.0 * p;
      st.w_s = 1;
      st.w_min_s = 1;
      const double t1 = schedule_model(Schedule::one_f_one_b).time(st, p, 1, m);
      const double tz = schedule_model(Schedule::zero_bubble).time(st, p, 1, m);
      EXPECT_DOUBLE_EQ(t1, 3.0 * m + 3.0 * (p - 1));
      EXPECT_DOUBLE_EQ(tz, 3.0 * m + 1.0 * (p - 1));
      EXPECT_DOUBLE_EQ(bubble_fraction(Schedule::zero_bubble, p, 1, m), (p - 1) / (3.0 * m));
      for (int i = 0; i < p; ++i)
        EXPECT_EQ(schedule_model(Schedule::zero_bubble).in_flight(i, p, 1, m), schedule_model(Schedule::one_f_one_b).in_flight(i, p, 1, m));
    }
  }
  // Never below the steady state m t_max (W larger than F + B cannot make the pipeline faster).
  StageTimes st{3, 12, 3};
  st.w_min_s = 3;
  EXPECT_DOUBLE_EQ(schedule_model(Schedule::zero_bubble).time(st, 4, 1, 8), 24);
}

TEST(ZeroBubble, EstimatorShrinksTheBubbleAtTheSameMemory) {
  const model::ModelSpec m = model::load_model("gpt3-175b");
  const hw::Cluster c = hw::load_cluster("selene-a100");
  analytic::Estimator est(m, c);
  const Plan a = resolve_plan(parse_plan("tp=8,pp=16,mbs=1,gbs=64,sp=on,recompute=selective,zero=1"), m, c, 256);
  const Plan b = resolve_plan(parse_plan("tp=8,pp=16,mbs=1,gbs=64,sp=on,recompute=selective,zero=1,schedule=zero_bubble"), m, c, 256);
  const StepReport ra = est.evaluate(a), rb = est.evaluate(b);
  EXPECT_LT(rb.time.bubble_s, 0.5 * ra.time.bubble_s);
  EXPECT_LT(rb.time.step_s, ra.time.step_s);
  EXPECT_DOUBLE_EQ(rb.memory.total(), ra.memory.total());
}

// fp8: GEMMs at the fp8 peak (H100 datasheet 1978.9 dense TFLOP/s), 16-bit weights kept plus fp8
// copies (+2 B/param); of the activations kept for backward the linears' inputs are fp8 (1 B).
TEST(Fp8, FasterGemmsMoreWeightBytes) {
  const model::ModelSpec m = model::load_model("llama3-70b");
  const hw::Cluster c = hw::load_cluster("dgx-h100");
  EXPECT_NEAR(c.device.peak(hw::Dtype::fp8), 1978.9e12, 1e9);
  analytic::Estimator est(m, c);
  const Plan b = resolve_plan(parse_plan("tp=8,pp=4,mbs=1,gbs=64,sp=on,recompute=selective,zero=1"), m, c, 64);
  const Plan f = resolve_plan(parse_plan("tp=8,pp=4,mbs=1,gbs=64,sp=on,recompute=selective,zero=1,precision=fp8"), m, c, 64);
  const StepReport rb = est.evaluate(b), rf = est.evaluate(f);
  EXPECT_LT(rf.time.step_s, rb.time.step_s);
  EXPECT_GT(rf.time.step_s, 0.5 * rb.time.step_s);  // attention, element-wise ops and comm do not speed up
  EXPECT_NEAR(rf.memory.params - rb.memory.params, 2.0 * est.params_on_stage(f, rf.most_loaded_stage), 1);
  EXPECT_LT(rf.memory.activations, rb.memory.activations);
  EXPECT_DOUBLE_EQ(rf.comm.dp, rb.comm.dp);  // fp8 copies are derived locally, not all-gathered
  EXPECT_EQ(with_fp8_weights(recipe_megatron()).fp8_copy_bytes, 2);
}

// Transformer Engine keeps a linear's fp8-cast input for the weight gradient, not the 16-bit one:
// per layer (selective recompute + SP, Korthikanti 2022 Table 2: 34 sbh/t) the QKV, projection and
// FC1 inputs (sbh/t each) and the FC2 input (ffn/h sbh/t) take 1 B instead of 2.
TEST(Fp8, LinearInputsKeptInOneByte) {
  const model::ModelSpec m = model::load_model("gpt3-175b");
  ActShape a;
  a.b = 1, a.s = 2048, a.s_kv = 2048, a.tp = 8, a.sp = true, a.recompute = Recompute::selective;
  const double sbh_t = a.b * a.s * m.hidden / a.tp;
  const double bf16 = layer_activation_bytes(m, a);
  EXPECT_NEAR(bf16, 34 * sbh_t, 1e-9 * bf16);
  a.e_gemm_in = 1;
  EXPECT_NEAR(layer_activation_bytes(m, a), bf16 - (3.0 + double(m.ffn) / m.hidden) * sbh_t, 1e-9 * bf16);
  a.recompute = Recompute::full;  // only the layer input is kept, in 16-bit
  EXPECT_NEAR(layer_activation_bytes(m, a), 2 * sbh_t, 1e-9 * bf16);
}

}  // namespace
