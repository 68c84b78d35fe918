// The simulator as oracle (issue 16.2): the best plans `search` returns for a panel of models,
// clusters and GPU counts (up to 20,480 GPUs), the best of each pipeline schedule, agree with
// `simulate` within 5% where the simulator models the same thing (full-bisection fabrics, no
// offload). Each simulate() runs in a forked child; the panel is sized for ~2 minutes on 2 cores.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <string>
#include <vector>

#include "common/errors.hpp"
#include "simulator/des/simulate.hpp"
#include "simulator/search/search.hpp"
#include "strategies/plan_label.hpp"

namespace {

using namespace scaleplan;
using strategies::Schedule;

struct Case {
  const char* model;
  const char* cluster;
  long long gpus;
  long long gbs;
};

// Plans whose step the simulator prices differently by design, not by error: tensor parallelism
// across nodes shares each GPU's NIC with the data-parallel traffic in the simulator (max-min
// flows), which the analytic model prices apart (the NIC share per GPU of issue 23). They are
// simulated and printed, not held to 5%.
bool same_model(const hw::Cluster& c, const strategies::Plan& p) { return p.tp <= c.gpus_per_node; }

// The candidates of each schedule among the search's top plans, best first (offload plans left
// out: simulate refuses them).
std::vector<std::vector<search::Candidate>> per_schedule(const analytic::Estimator& est, const Case& k) {
  search::SearchSpec spec;
  spec.gpus = k.gpus;
  spec.gbs = {k.gbs};
  spec.top_k = 400;
  spec.pareto = false;
  spec.threads = 2;
  const search::SearchResult r = search::run_search(est, spec);
  std::vector<std::vector<search::Candidate>> out;
  for (Schedule s : {Schedule::one_f_one_b, Schedule::gpipe, Schedule::interleaved, Schedule::zero_bubble}) {
    out.emplace_back();
    for (const auto& c : r.top)
      if (c.plan.schedule == s && c.plan.offload == strategies::Offload::none) out.back().push_back(c);
  }
  return out;
}

// Simulates `p`; prints the row; returns simulated / analytic (0 when the simulator refuses the plan).
double compare(const model::ModelSpec& m, const hw::Cluster& c, const strategies::Plan& p, const char* tag) {
  des::SimOptions o;
  o.timeline = false;
  try {
    const des::SimResult s = des::simulate(m, c, p, o);
    const double ratio = s.report.time.step_s / s.analytic_step_s;
    std::printf("%-12s %-12s %6lld  %-60s %9.4f %9.4f %7.4f %s\n", m.name.c_str(), c.name.c_str(), static_cast<long long>(p.gpus()), strategies::short_label(p).c_str(),
                s.analytic_step_s, s.report.time.step_s, ratio, tag);
    return ratio;
  } catch (const PlanError& e) {  // a part the rank programs do not model (named in the message)
    std::printf("%-12s %-12s %6lld  %-60s refused: %s\n", m.name.c_str(), c.name.c_str(), static_cast<long long>(p.gpus()), strategies::short_label(p).c_str(), e.what());
    return 0;
  }
}

TEST(Oracle, SearchTopPlansAgreeWithTheSimulatorWithinFivePercent) {
  const Case panel[] = {
      {"llama3-70b", "dgx-h100", 10000, 2000},
      {"llama3-70b", "dgx-h100", 20000, 4000},
      {"gpt3-175b", "selene-a100", 1024, 1536},
      {"llama3-405b", "dgx-h100", 16384, 2048},
  };
  int compared = 0;
  std::printf("%-12s %-12s %6s  %-60s %9s %9s %7s\n", "model", "cluster", "gpus", "plan", "analytic", "simulated", "ratio");
  for (const Case& k : panel) {
    const model::ModelSpec m = model::load_model(k.model);
    const hw::Cluster c = hw::load_cluster(k.cluster);
    ASSERT_EQ(c.net.oversubscription, 1) << k.cluster;
    const analytic::Estimator est(m, c);
    for (const auto& list : per_schedule(est, k)) {
      int tries = 0, across = 0;
      for (const search::Candidate& cand : list) {
        if (tries == 3) break;
        // The plan as a user would pass it: its string, resolved again (issue 16.3 round trip).
        const strategies::Plan p = strategies::resolve_plan(strategies::parse_plan(cand.plan.to_string()), m, c, k.gpus);
        EXPECT_EQ(analytic::Estimator(m, c).evaluate(p).time.step_s, cand.metrics.time.step_s) << p.to_string();
        if (!same_model(c, p)) {  // shown once per schedule, then the schedule's next plan
          if (across++ == 0) compare(m, c, p, "(TP across nodes: NIC shared with DP, not compared)");
          continue;
        }
        ++tries;
        const double ratio = compare(m, c, p, "");
        if (ratio == 0) continue;  // refused: try the schedule's next plan
        EXPECT_NEAR(ratio, 1.0, 0.05) << k.model << " " << k.gpus << " " << p.to_string();
        ++compared;
        break;
      }
    }
  }
  EXPECT_GE(compared, 10);
}

}  // namespace

namespace {
// The Llama 3 405B layout (126 layers on 16 stages, one fewer on the first and last, vpp 7,
// interleaved; Llama 3 sec. 3.3.2) runs in the simulator, as the published runs use it.
TEST(Oracle, Llama3_405bLayoutSimulates) {
  const model::ModelSpec m = model::load_model("llama3-405b");
  const hw::Cluster c = hw::load_cluster("dgx-h100");
  const strategies::Plan p =
      strategies::resolve_plan(strategies::parse_plan("tp=8,pp=16,vpp=7,mbs=1,gbs=2048,layers=7/8/7,sp=on,zero=1"), m, c, 16384);
  const double ratio = compare(m, c, p, "(Llama 3 405B layout)");
  EXPECT_NEAR(ratio, 1.0, 0.05);
}
}  // namespace
