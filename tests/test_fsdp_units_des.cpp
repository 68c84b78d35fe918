// FSDP per-unit collectives and SHARD_GRAD_OP (hw::Software::fsdp_per_layer; docs/zero3.md) in the
// discrete-event simulator: one gather / reduce-scatter per FSDP unit on the communication stream,
// agreeing with the analytic estimator, which prices the same thing.
#include <gtest/gtest.h>

#include "simulator/analytic/estimator.hpp"
#include "simulator/des/simulate.hpp"

namespace {

using namespace scaleplan;

// mpt-1b (24 blocks + the root unit = 25 units), tp 1, dp 16 on two DGX H100 nodes, ZeRO-3 without
// prefetch: every gather is waited for, so the per-unit ring latencies show in the exposed DP time.
TEST(DesFsdpUnits, PerUnitGathersAddTheirLatenciesAndAgreeWithTheEstimator) {
  hw::Cluster c = hw::load_cluster("dgx-h100");
  c.sw.zero3_prefetch_depth = 0;
  c.sw.dp_nics_aggregate = true;
  const model::ModelSpec m = model::load_model("mpt-1b");
  const strategies::Plan p = strategies::resolve_plan(strategies::parse_plan("tp=1,pp=1,mbs=1,gbs=16,zero=3"), m, c, 16);
  ASSERT_EQ(p.dp, 16);
  const des::SimResult stage = des::simulate(m, c, p, {});
  c.sw.fsdp_per_layer = true;
  const des::SimResult layer = des::simulate(m, c, p, {});
  // Two waited-for gathers per microbatch, 24 more collectives each, each with 15 ring steps of 5 us:
  // at least 2 x 24 x 15 x 5 us = 3.6 ms more exposed (the reduce-scatters' latencies may hide).
  EXPECT_GT(layer.report.dp_comm_exposed_s, stage.report.dp_comm_exposed_s + 3.6e-3 * 0.9);
  for (const des::SimResult* r : {&stage, &layer})
    EXPECT_NEAR(r->report.time.step_s, r->analytic_step_s, 0.05 * r->analytic_step_s);
}

// SHARD_GRAD_OP: zero=2 on an FSDP-unit stack gathers before each forward and reduce-scatters in each
// backward (no gather after the optimizer step); the step stays on the analytic one.
TEST(DesFsdpUnits, ShardGradOpRunsAsFsdpAndAgreesWithTheEstimator) {
  hw::Cluster c = hw::load_cluster("dgx-h100");
  c.sw.dp_nics_aggregate = true;
  c.sw.fsdp_per_layer = true;
  c.sw.grad_reduce_bytes = 4;
  const model::ModelSpec m = model::load_model("mpt-1b");
  const strategies::Plan p = strategies::resolve_plan(strategies::parse_plan("tp=1,pp=1,mbs=2,gbs=32,zero=2"), m, c, 16);
  const des::SimResult r = des::simulate(m, c, p, {});
  EXPECT_GT(r.report.comm.dp, 0);
  EXPECT_NEAR(r.report.time.step_s, r.analytic_step_s, 0.05 * r.analytic_step_s);
}

}  // namespace
