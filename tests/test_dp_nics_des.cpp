// The stack input dp_collective_nics (issue 15 item 2; docs/stacks.md) in the discrete-event
// simulator: a data-parallel ring of a stack whose collectives use the node's NICs together runs as
// NCCL's per-NIC channels, and agrees with the analytic estimator in both settings.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>

#include "simulator/analytic/estimator.hpp"
#include "simulator/des/simulate.hpp"

namespace {

using namespace scaleplan;

// tp 1, dp 16 on two DGX A100 nodes (8 ring members per node), distributed optimizer: the gradient
// reduce-scatter and the parameter all-gather are rings across the two nodes, not overlapped.
TEST(DesDpCollectiveNics, NodeAggregationRunsTheRingOnAllNicsAndAgreesWithTheEstimator) {
  hw::Cluster c = hw::load_cluster("selene-a100");
  c.sw.dp_overlap = false;
  const model::ModelSpec m = model::load_model("gpt3-1.3b");
  const strategies::Plan p =
      strategies::resolve_plan(strategies::parse_plan("tp=1,pp=1,mbs=1,gbs=16,zero=1"), m, c, 16);
  ASSERT_EQ(p.dp, 16);
  des::SimOptions o;
  o.bucket_params = 1e12;  // one bucket: one reduce-scatter and one all-gather of the whole model
  const des::SimResult per_gpu = des::simulate(m, c, p, o);
  c.sw.dp_nics_aggregate = true;
  const des::SimResult node = des::simulate(m, c, p, o);
  const double a = node.report.dp_comm_exposed_s, b = per_gpu.report.dp_comm_exposed_s;
  ASSERT_GT(a, 0);
  // 8 NIC shares of 20 GB/s instead of one (NVLink's 234 GB/s is not the bound): the bandwidth
  // term falls 8x, the 15 ring latencies of 5 us per collective stay.
  EXPECT_LT(a, b / 4);
  EXPECT_GT(a, b / 10);
  for (const des::SimResult* r : {&per_gpu, &node})
    EXPECT_NEAR(r->report.time.step_s, r->analytic_step_s, 0.03 * r->analytic_step_s);
  // The same bytes cross the NICs either way: only the channels change.
  auto nic_bytes = [](const des::SimResult& r) {
    const auto t = std::find_if(r.links.begin(), r.links.end(), [](const des::LinkTier& l) { return l.tier == "nic"; });
    return t == r.links.end() ? 0.0 : t->bytes;
  };
  EXPECT_GT(nic_bytes(node), 0);
  EXPECT_LE(nic_bytes(node), nic_bytes(per_gpu) * 1.0000001);
}

}  // namespace
