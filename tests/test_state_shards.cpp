// ZeRO-1/2 optimizer states shard over the DP x CP group (Plan::state_shards): context-parallel ranks
// hold the same weights, and Megatron-Core 0.8 / NeMo 24.07 build the distributed optimizer on
// get_data_parallel_group(with_context_parallel=True) (docs/accuracy-acc11.md quotes both).
#include <gtest/gtest.h>

#include "hardware/cluster.hpp"
#include "model/model.hpp"
#include "simulator/analytic/estimator.hpp"
#include "strategies/plan.hpp"

namespace {

using namespace scaleplan;
using namespace scaleplan::strategies;

TEST(StateShards, Rule) {
  Plan p;
  p.dp = 4, p.cp = 2;
  p.zero = 1;
  EXPECT_EQ(p.state_shards(), 8);
  p.zero = 2;
  EXPECT_EQ(p.state_shards(), 8);
  p.zero = 3;  // ZeRO-3 / FSDP shard over dp x cp too (torchtitan fully_shard on the dp_shard_cp mesh) ...
  EXPECT_EQ(p.state_shards(), 8);
  EXPECT_EQ(p.shard_degree(), 8);
  p.zero_shard = 2;  // ... unless hybrid sharding names a smaller shard group inside dp
  EXPECT_EQ(p.state_shards(), 2);
}

// Llama 3 8B on 8 H100s, dp 4 x cp 2, zero=1: the optimizer bytes per GPU are 12 B x P / 8, half of what
// the same dp shards alone; the 16-bit weights are unchanged.
TEST(StateShards, OptimizerBytesSplitOverDpTimesCp) {
  const model::ModelSpec m = model::load_model("llama3-8b");
  const hw::Cluster c = hw::load_cluster("dgx-h100");
  const analytic::Estimator est(m, c);
  const Plan p = resolve_plan(parse_plan("tp=1,cp=2,mbs=1,gbs=64,zero=1,recompute=full"), m, c, 8);
  ASSERT_EQ(p.dp, 4);
  const StepReport r = est.evaluate(p);
  const double P = est.params_on_stage(p, 0);
  EXPECT_NEAR(r.memory.optimizer, 12.0 * P / 8, 1e-6 * r.memory.optimizer);
  const Plan p4 = resolve_plan(parse_plan("tp=1,cp=1,mbs=1,gbs=64,zero=1,recompute=full"), m, c, 4);
  ASSERT_EQ(p4.dp, 4);
  const StepReport r4 = est.evaluate(p4);
  EXPECT_NEAR(r.memory.optimizer, 0.5 * r4.memory.optimizer, 1e-6 * r.memory.optimizer);
  EXPECT_DOUBLE_EQ(r.memory.params, r4.memory.params);
}

// The gradients reduce over the same DP x CP ranks (Megatron-Core DDP: get_data_parallel_group(
// with_context_parallel=True)): dp 1 x cp 8 still reduce-scatters and all-gathers a bf16 copy of the
// weights' size (ZeRO-1: 2 B gradients + 2 B weights per parameter), where the DP group alone has one rank.
TEST(StateShards, GradientsReduceOverDpTimesCp) {
  const model::ModelSpec m = model::load_model("llama3-8b");
  const hw::Cluster c = hw::load_cluster("dgx-h100");
  const analytic::Estimator est(m, c);
  const Plan p = resolve_plan(parse_plan("tp=1,cp=8,mbs=1,gbs=8,zero=1,recompute=full"), m, c, 8);
  ASSERT_EQ(p.dp, 1);
  const StepReport r = est.evaluate(p);
  const double P = est.params_on_stage(p, 0);
  EXPECT_NEAR(r.comm.dp, 4.0 * P, 1e-6 * r.comm.dp);
  EXPECT_GT(r.time.comm_exposed_s + r.time.compute_s, 0);
}

}  // namespace
