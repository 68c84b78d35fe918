// Invariants of every analytic report (issue 16.1), over random valid plans (seeded, bounded):
// the time columns add up to the step (compute + exposed comm + bubble + offload + host), the
// pipeline part of the step is never below the critical path of its stages
// (strategies::pipeline_lower_bound: m x the slowest stage, and one microbatch's F and B through
// every stage plus a W), and the bubble is never negative.
#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <vector>

#include "simulator/analytic/estimator.hpp"
#include "simulator/search/space.hpp"
#include "strategies/pipeline.hpp"

namespace {

using namespace scaleplan;
using strategies::Plan;

void check(const analytic::Estimator& est, const Plan& p) {
  const analytic::LayerTable t = est.prepare(p);
  const analytic::StepMetrics x = est.metrics(p, t);
  const auto& tm = x.time;
  const std::string what = p.to_string();
  const double parts = tm.compute_s + tm.comm_exposed_s + tm.bubble_s + tm.offload_exposed_s + tm.host_s;
  EXPECT_NEAR(parts, tm.step_s, 1e-9 * tm.step_s) << what;
  EXPECT_GE(tm.bubble_s, 0) << what;
  const long long m = p.microbatches();
  // The pipeline part: compute and exposed comm of the microbatches plus the bubble.
  const double pipe = tm.step_s - tm.optimizer_s - tm.offload_exposed_s - tm.host_s - x.dp_comm_exposed_s;
  EXPECT_GE(pipe * (1 + 1e-9), strategies::pipeline_lower_bound(x.stages, m)) << what;
  // One microbatch's forward and backward through every stage.
  EXPECT_GE(pipe * (1 + 1e-9), x.stages.sum_s - x.stages.w_sum_s) << what;
  EXPECT_GE(tm.step_s * (1 + 1e-9), static_cast<double>(m) * x.stages.max_s) << what;
}

// Random leaves of the plan space (space.hpp: every leaf is a plan resolve_plan accepts).
void sample(const char* model, const char* cluster, long long gpus, std::vector<long long> gbs, int n, unsigned seed) {
  const model::ModelSpec m = model::load_model(model);
  const hw::Cluster c = hw::load_cluster(cluster);
  const analytic::Estimator est(m, c);
  const search::Space s = search::make_space(m, c, gpus, std::move(gbs));
  const std::vector<Plan> items = search::work_items(s);
  ASSERT_FALSE(items.empty());
  std::mt19937 rng(seed);
  int checked = 0;
  for (int k = 0; k < n; ++k) {
    Plan item = items[rng() % items.size()];
    std::vector<Plan> leaves;
    auto keep = [&](const Plan& p) {
      if (leaves.size() < 4096) leaves.push_back(p);
    };
    search::walk(s, search::split_axis(), search::num_axes(), item, keep);
    if (leaves.empty()) continue;
    const Plan& p = leaves[rng() % leaves.size()];
    if (p.offload == strategies::Offload::gemini) continue;  // chunk search: ~1 ms each, covered by test_offload
    check(est, p);
    ++checked;
  }
  EXPECT_GT(checked, n / 2);
}

TEST(StepInvariants, RandomPlansSmall) { sample("gpt3-1.3b", "dgx-a100-40gb", 64, {256, 512}, 2000, 1); }
TEST(StepInvariants, RandomPlansGpt3) { sample("gpt3-175b", "selene-a100", 1024, {1536}, 2000, 2); }
TEST(StepInvariants, RandomPlansLlama70bAt10k) { sample("llama3-70b", "dgx-h100", 10000, {125, 1000, 2000}, 2000, 3); }
TEST(StepInvariants, RandomPlansLlama405bAt16k) { sample("llama3-405b", "dgx-h100", 16384, {2048}, 2000, 4); }
TEST(StepInvariants, RandomPlansLlama405bAt20k) { sample("llama3-405b", "dgx-h100", 20480, {2560}, 2000, 5); }  // uneven splits
TEST(StepInvariants, RandomPlansMoe) { sample("mixtral-8x7b", "dgx-h100", 256, {512}, 2000, 6); }

// The example: one microbatch on 80 stages (zero_bubble) cannot beat 80 x (F + B).
TEST(StepInvariants, ZeroBubbleOneMicrobatchOn80Stages) {
  const model::ModelSpec m = model::load_model("llama3-70b");
  const hw::Cluster c = hw::load_cluster("dgx-h100");
  const analytic::Estimator est(m, c);
  const Plan zb = strategies::resolve_plan(strategies::parse_plan("tp=1,pp=80,dp=125,mbs=1,gbs=125,zero=3,schedule=zero_bubble"), m, c, 10000);
  const Plan ob = strategies::resolve_plan(strategies::parse_plan("tp=1,pp=80,dp=125,mbs=1,gbs=125,zero=3,schedule=1f1b"), m, c, 10000);
  const analytic::StepMetrics a = est.metrics(zb, est.prepare(zb)), b = est.metrics(ob, est.prepare(ob));
  check(est, zb);
  // 80 stages of F + B, and a W: more than 2/3 of 1F1B's 80 x (F + B + W) (W <= F + B).
  EXPECT_GE(a.time.step_s, 0.66 * b.time.step_s);
  EXPECT_LT(a.time.step_s, b.time.step_s);
  EXPECT_GT(a.time.bubble_s, 0.9 * 79 * (a.stages.max_s - a.stages.w_s) * 0.5);
}

}  // namespace
