// Tensor-parallel communication overlap (hw::Capabilities::tp_comm_overlap; strategies/tensor_nd
// overlap_sp_collectives): on a stack that runs Transformer Engine's userbuffers (Megatron-Core
// --tp-comm-overlap, NeMo ub_tp_comm_overlap) or torch's async TP, each sequence-parallel all-gather /
// reduce-scatter runs under the GEMM next to it and exposes exposed_under(collective, GEMM).
#include <gtest/gtest.h>

#include <algorithm>

#include "simulator/analytic/estimator.hpp"
#include "hardware/stack.hpp"
#include "simulator/des/simulate.hpp"
#include "strategies/layer_cost.hpp"
#include "strategies/tensor_nd.hpp"

namespace {

using namespace scaleplan;
using namespace scaleplan::strategies;

PhaseCost layer(const model::ModelSpec& m, const hw::Cluster& c, int tp, bool sp, bool overlap) {
  LayerShape sh;
  sh.b = 1, sh.s = 4096, sh.s_kv = 4096, sh.tp = tp, sh.sp = sp, sh.tp_overlap = overlap;
  sh.flash = true;
  sh.recompute = Recompute::full;
  sh.precision = Precision::bf16;
  return layer_cost(m, c, sh, make_tp_groups(c, tp_layout(TpMode::d1, tp, 1)), hw::make_group(c, 1, tp));
}

// Llama 3 70B (h 8192, GQA 8 kv heads, SwiGLU ffn 28672), tp 4 with SP on a DGX H100, one 4096-token
// sequence: every pair's collective (a 67 MB gather or scatter) is shorter than its GEMM, so each
// pair exposes overlap_slowdown x the collective.
TEST(TpOverlap, EachCollectiveHidesUnderItsOwnGemm) {
  const model::ModelSpec m = model::load_model("llama3-70b");
  const hw::Cluster c = hw::load_cluster("dgx-h100");
  const PhaseCost plain = layer(m, c, 4, true, false), over = layer(m, c, 4, true, true);
  const TpGroups g = make_tp_groups(c, tp_layout(TpMode::d1, 4, 1));
  const double act = 2.0 * 4096 * 8192;  // e T h
  const double ag = hw::collective_time(c, hw::Coll::all_gather, act, g.all);
  const double rs = hw::collective_time(c, hw::Coll::reduce_scatter, act, g.all);
  // Without overlap: 2 gathers + 2 scatters forward, exposed in full.
  EXPECT_NEAR(plain.fwd_comm_s, 2 * (ag + rs), 1e-12);
  // The smallest GEMM of a pair: proj forward, 2 x 4096 x 2048 x 8192 = 137 GFLOP (~0.27 ms at
  // 0.55 x 989 TFLOP/s), longer than a gather or scatter over NVLink: all pairs are covered.
  const double proj_fwd = c.device.gemm_time(2.0 * 4096 * 8192 * 2048, 2.0 * (4096.0 * 2048 + 2048.0 * 8192 + 4096.0 * 8192),
                                             hw::Dtype::bf16);
  ASSERT_GT(proj_fwd, std::max(ag, rs));
  const double k = c.device.eff.overlap_slowdown;
  EXPECT_NEAR(over.fwd_comm_s, k * 2 * (ag + rs), 1e-12);
  EXPECT_NEAR(over.recompute_comm_s, over.fwd_comm_s, 1e-15);
  // Backward: 2 gathers before the proj / FC2 input gradients, 2 scatters after the QKV / FC1 ones,
  // 2 re-gathers under the QKV / FC1 weight gradients.
  EXPECT_NEAR(over.bwd_comm_exposed_s, k * (4 * ag + 2 * rs), 1e-12);
  EXPECT_NEAR(over.tp_bwd_exposed_s, over.bwd_comm_exposed_s, 1e-15);
  // Here the weight-gradient GEMMs alone would hide all of it too (the backward overlap every
  // Megatron stack has): the same exposure.
  EXPECT_NEAR(plain.bwd_comm_exposed_s, over.bwd_comm_exposed_s, 1e-12);
  // The bytes on the wire do not change.
  EXPECT_EQ(over.tp_bytes, plain.tp_bytes);
  EXPECT_EQ(over.bwd_comm_s, plain.bwd_comm_s);
}

// A collective longer than its GEMM: the uncovered part is exposed in full. At 16 GB/s per GPU inside
// the node (a PCIe-class link) every collective outlasts its GEMM.
TEST(TpOverlap, ALongerCollectiveExposesWhatItsGemmDoesNotCover) {
  const model::ModelSpec m = model::load_model("llama3-70b");
  hw::Cluster c = hw::load_cluster("dgx-h100");
  c.intra.bw_Bps = 16e9;
  const PhaseCost over = layer(m, c, 8, true, true);
  const TpGroups g = make_tp_groups(c, tp_layout(TpMode::d1, 8, 1));
  const double act = 2.0 * 4096 * 8192;
  const double ag = hw::collective_time(c, hw::Coll::all_gather, act, g.all);
  const double rs = hw::collective_time(c, hw::Coll::reduce_scatter, act, g.all);
  const double h = 8192, kv = 1024, f = 28672, T = 4096;
  const auto fwd = [&](double n, double k_in) { return c.device.gemm_time(2 * T * n * k_in, 2 * (T * k_in + k_in * n + T * n), hw::Dtype::bf16); };
  const double qkv = fwd((h + 2 * kv) / 8, h), proj = fwd(h, h / 8), fc1 = fwd(2 * f / 8, h), fc2 = fwd(h, f / 8);
  ASSERT_GT(ag, fc1);  // the widest GEMM is shorter than a gather at 16 GB/s
  const double s = c.device.eff.overlap_slowdown;
  const auto exposed = [&](double comm, double gemm) { return comm - gemm + s * gemm; };
  EXPECT_NEAR(over.fwd_comm_s, exposed(ag, qkv) + exposed(rs, proj) + exposed(ag, fc1) + exposed(rs, fc2), 1e-9);
}

// The overlap needs SP (TE's userbuffers overlap the SP gathers / scatters) and a stack that runs it;
// the estimator turns it on for such stacks with the TP group inside a node.
TEST(TpOverlap, OnlyWithSequenceParallelOnAnOverlappingStackInsideANode) {
  const model::ModelSpec m = model::load_model("llama3-70b");
  const hw::Cluster c = hw::load_cluster("dgx-h100");
  EXPECT_NEAR(layer(m, c, 8, false, true).fwd_comm_s, layer(m, c, 8, false, false).fwd_comm_s, 1e-15);  // no SP: all-reduces
  EXPECT_TRUE(hw::load_stack("megatron-core-2024").caps.tp_comm_overlap);
  EXPECT_TRUE(hw::load_stack("nemo-2024").caps.tp_comm_overlap);
  EXPECT_FALSE(hw::load_stack("megatron-lm-2022").caps.tp_comm_overlap);
  auto step = [&](const char* stack, const char* plan, int gpus) {
    hw::Cluster cl = c;
    cl.sw = hw::load_stack(stack);
    const Plan p = resolve_plan(parse_plan(plan), m, cl, gpus);
    return analytic::Estimator(m, cl).evaluate(p);
  };
  const char* tp8 = "tp=8,pp=1,sp=on,mbs=1,gbs=8,recompute=full";
  const StepReport a = step("megatron-lm-2022", tp8, 8), b = step("megatron-core-2024", tp8, 8);
  EXPECT_LT(b.time.comm_exposed_s, a.time.comm_exposed_s);
  EXPECT_LT(b.time.step_s, a.time.step_s);
  // tp 16 spans two nodes: no userbuffers overlap, the same exposed TP time on both stacks.
  const char* tp16 = "tp=16,pp=1,sp=on,mbs=1,gbs=4,recompute=full";
  EXPECT_NEAR(step("megatron-lm-2022", tp16, 16).time.comm_exposed_s, step("megatron-core-2024", tp16, 16).time.comm_exposed_s,
              1e-12);
}

// The discrete-event simulator prices the same overlapped collectives (as durations).
TEST(TpOverlap, SimulatorAgreesWithTheEstimator) {
  hw::Cluster c = hw::load_cluster("dgx-h100");
  c.sw = hw::load_stack("megatron-core-2024");
  const model::ModelSpec m = model::load_model("llama3-70b");
  const Plan p = resolve_plan(parse_plan("tp=8,pp=2,sp=on,mbs=1,gbs=16,recompute=full"), m, c, 32);
  const des::SimResult r = des::simulate(m, c, p, {});
  EXPECT_NEAR(r.report.time.step_s, r.analytic_step_s, 0.05 * r.analytic_step_s);
}

// The overlap never makes a plan slower, dense or MoE (whose layers keep the non-overlapped model).
TEST(TpOverlap, NeverSlowerThanWithoutIt) {
  const hw::Cluster base = hw::load_cluster("dgx-h100");
  for (const char* model : {"llama3-70b", "gpt3-175b", "mixtral-8x7b"})
    for (const char* plan : {"tp=8,pp=1,sp=on,mbs=1,gbs=16,recompute=full", "tp=4,pp=2,sp=on,mbs=2,gbs=32",
                             "tp=2,pp=1,sp=on,mbs=1,gbs=64,recompute=selective"}) {
      const model::ModelSpec m = model::load_model(model);
      hw::Cluster on = base, off = base;
      on.sw = off.sw = hw::load_stack("megatron-core-2024");
      off.sw.caps.tp_comm_overlap = false;
      const Plan p = resolve_plan(parse_plan(plan), m, on, 64);
      EXPECT_LE(analytic::Estimator(m, on).evaluate(p).time.step_s, analytic::Estimator(m, off).evaluate(p).time.step_s + 1e-12)
          << model << " " << plan;
    }
}

}  // namespace
