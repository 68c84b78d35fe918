// The GUI's Qt-free parts (issue 10): the analytic-schedule timeline agrees with the estimator's
// step time, the plan YAML reads back through strategies::load_plan, the colour schemes cover every
// plan, and the explorer job runs, reports progress and stops when cancelled.
#include <gtest/gtest.h>

#include <atomic>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <map>
#include <set>

#include "common/errors.hpp"
#include "gui/explorer.hpp"
#include "gui/plan_view.hpp"
#include "gui/timeline_provider.hpp"
#include "strategies/pipeline.hpp"

namespace {

using namespace scaleplan;
using strategies::Plan;

struct Inputs {
  model::ModelSpec m;
  hw::Cluster c;
  Inputs(const char* model, const char* cluster) : m(model::load_model(model)), c(hw::load_cluster(cluster)) {}
};

// Spans of one rank never overlap, and every op of the schedule appears once.
void check_rank_spans_disjoint(const strategies::Timeline& tl) {
  std::map<int, std::vector<const strategies::Span*>> by_rank;
  for (const auto& s : tl.spans) {
    EXPECT_GE(s.dur_s, 0.0) << s.name;
    by_rank[s.rank].push_back(&s);
  }
  for (auto& [rank, v] : by_rank) {
    std::sort(v.begin(), v.end(), [](auto* a, auto* b) { return a->start_s < b->start_s; });
    for (size_t i = 1; i < v.size(); ++i) EXPECT_LE(v[i - 1]->start_s + v[i - 1]->dur_s, v[i]->start_s + 1e-12) << "rank " << rank << ": " << v[i]->name;
  }
}

size_t count_prefix(const strategies::Timeline& tl, char c) {
  size_t n = 0;
  for (const auto& s : tl.spans) n += !s.name.empty() && s.name[0] == c;
  return n;
}

// Even stages: the schedule's makespan is the estimator's closed form, so the timeline ends at the
// estimator's step time (GPipe and 1F1B: (m-1) t_max + sum t_i, Narayanan et al. SC21 sec. 2.2).
TEST(GuiTimeline, EvenStagesEndAtTheEstimatorsStepTime) {
  Inputs s("gpt3-1.3b", "selene-a100");  // 24 layers
  const analytic::Estimator est(s.m, s.c);
  for (const char* text : {"tp=2,pp=4,mbs=1,gbs=64,schedule=1f1b", "tp=1,pp=8,mbs=2,gbs=128,schedule=gpipe",
                           "tp=2,pp=4,mbs=1,gbs=64,schedule=1f1b,recompute=full", "tp=1,pp=1,mbs=4,gbs=512"}) {
    const Plan p = strategies::resolve_plan(strategies::parse_plan(text), s.m, s.c, 64);
    const strategies::StepReport r = est.evaluate(p);
    const strategies::Timeline tl = gui::analytic_schedule_timeline(est, p);
    EXPECT_NEAR(tl.end_s(), r.time.step_s, 1e-9 * r.time.step_s) << text;
    const long long ops = 2LL * p.pp * p.microbatches();
    EXPECT_EQ(count_prefix(tl, 'F') + count_prefix(tl, 'B'), static_cast<size_t>(ops)) << text;
    EXPECT_EQ(count_prefix(tl, 'R'), p.recompute == strategies::Recompute::full ? static_cast<size_t>(ops / 2) : 0u) << text;
    check_rank_spans_disjoint(tl);
    std::set<int> ranks;
    for (const auto& sp : tl.spans) ranks.insert(sp.rank);
    EXPECT_EQ(ranks.size(), static_cast<size_t>(p.pp)) << text;
    EXPECT_EQ(*ranks.rbegin(), gui::stage_rank(s.c, p, p.pp - 1)) << text;
  }
}

// Interleaved 1F1B: the estimator's closed form m t + (p-1)/v t (SC21 sec. 2.2.2) assumes a bubble
// of (p-1)/v stage times; Megatron's order with a backward twice a forward gets close to it.
TEST(GuiTimeline, InterleavedNearTheClosedForm) {
  Inputs s("gpt3-1.3b", "selene-a100");
  const analytic::Estimator est(s.m, s.c);
  const Plan p = strategies::resolve_plan(strategies::parse_plan("tp=2,pp=4,vpp=3,mbs=1,gbs=128"), s.m, s.c, 64);
  ASSERT_EQ(p.schedule, strategies::Schedule::interleaved);
  const strategies::StepReport r = est.evaluate(p);
  const strategies::Timeline tl = gui::analytic_schedule_timeline(est, p);
  check_rank_spans_disjoint(tl);
  EXPECT_EQ(count_prefix(tl, 'F'), static_cast<size_t>(p.pp * p.vpp * p.microbatches()));
  // No faster than the work itself, within 5% of the closed form.
  EXPECT_NEAR(tl.end_s(), r.time.step_s, 0.05 * r.time.step_s);
  EXPECT_GE(tl.end_s(), r.time.step_s - r.time.bubble_s - 1e-12);
  // And the interleaved bubble is smaller than the same plan's 1F1B bubble.
  const Plan q = strategies::resolve_plan(strategies::parse_plan("tp=2,pp=4,mbs=1,gbs=128,schedule=1f1b"), s.m, s.c, 64);
  EXPECT_LT(tl.end_s(), gui::analytic_schedule_timeline(est, q).end_s());
}

// Uneven stages (Llama 3): the first and last stages are shorter; the timeline is at least the
// slowest stage's work and no longer than the estimator's bound (which assumes every stage at the slowest).
TEST(GuiTimeline, UnevenStagesWithinTheEstimatorsBound) {
  Inputs s("gpt3-1.3b", "selene-a100");  // 24 layers on 7 stages: 2/4/.../4/2
  const analytic::Estimator est(s.m, s.c);
  Plan p = strategies::parse_plan("tp=1,pp=7,mbs=1,gbs=448,schedule=1f1b");
  p.allow_uneven_layers = true;
  p = strategies::resolve_plan(p, s.m, s.c, 448);
  const strategies::StepReport r = est.evaluate(p);
  const strategies::Timeline tl = gui::analytic_schedule_timeline(est, p);
  check_rank_spans_disjoint(tl);
  EXPECT_LE(tl.end_s(), r.time.step_s * (1 + 1e-9));
  EXPECT_GE(tl.end_s(), r.time.step_s - r.time.bubble_s - 1e-12);
}

TEST(GuiTimeline, ProviderIsLabelledAnalytic) {
  Inputs s("gpt-tiny", "selene-a100");
  const gui::NamedTimelineProvider prov = gui::analytic_schedule_provider();
  EXPECT_EQ(prov.label, "analytic schedule");
  const Plan p = strategies::resolve_plan(strategies::parse_plan("pp=2,mbs=1,gbs=8"), s.m, s.c, 2);
  EXPECT_FALSE(prov.fn(s.m, s.c, p).spans.empty());
}

TEST(GuiPlanYaml, RoundTripsThroughLoadPlan) {
  Inputs s("gpt3-1.3b", "selene-a100");
  const char* path = "test_gui_core_plan.yaml";
  for (const char* text : {"tp=2,pp=4,vpp=3,mbs=1,gbs=128,sp=on,recompute=selective,zero=1",
                           "tp=1,pp=2,mbs=2,gbs=64,schedule=gpipe,recompute=full,zero=0,precision=fp16", "tp=8,mbs=1,gbs=64,zero=3"}) {
    const Plan p = strategies::resolve_plan(strategies::parse_plan(text), s.m, s.c, 64);
    gui::save_plan_yaml(path, p, {"saved by a test"});
    const Plan q = strategies::resolve_plan(strategies::load_plan(path), s.m, s.c, 64);
    EXPECT_EQ(p.to_string(), q.to_string()) << text;
  }
  std::remove(path);
  EXPECT_THROW(gui::save_plan_yaml("/nonexistent-dir/x.yaml", Plan{}), UsageError);
  // A bad plan file names the file, line and key.
  {
    std::ofstream f(path);
    f << "tp: 2\nzero: seven\n";
  }
  try {
    (void)strategies::load_plan(path);
    ADD_FAILURE() << "no error";
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find(std::string(path) + ":2"), std::string::npos) << e.what();
    EXPECT_EQ(e.field(), "zero");
  }
  std::remove(path);
}

TEST(GuiColourSchemes, EveryPlanHasAFamily) {
  const auto& schemes = gui::colour_schemes();
  ASSERT_GE(schemes.size(), 4u);
  EXPECT_STREQ(schemes[0].name, "parallelism");
  Plan dp, tp, pp, tpp, cp;
  tp.tp = 8;
  pp.pp = 4;
  tpp.tp = 2;
  tpp.pp = 2;
  cp.cp = 2;
  cp.tp = 2;
  EXPECT_EQ(schemes[0].family_of(dp), 0);
  EXPECT_EQ(schemes[0].family_of(tp), 1);
  EXPECT_EQ(schemes[0].family_of(pp), 2);
  EXPECT_EQ(schemes[0].family_of(tpp), 3);
  EXPECT_EQ(schemes[0].family_of(cp), 4);
  // The degree and offload schemes the user can pick (issue 18): tp / pp buckets, offload kinds.
  const auto scheme = [&](const char* name) -> const gui::ColourScheme& {
    for (const auto& sc : schemes)
      if (std::string(sc.name) == name) return sc;
    ADD_FAILURE() << "no colour scheme '" << name << "'";
    return schemes[0];
  };
  EXPECT_EQ(scheme("tensor parallel").family_of(dp), 0);
  EXPECT_EQ(scheme("tensor parallel").family_of(tp), 3);   // tp=8
  EXPECT_EQ(scheme("tensor parallel").family_of(tpp), 1);  // tp=2
  EXPECT_EQ(scheme("pipeline parallel").family_of(pp), 2);  // pp=4
  Plan big = dp, off = dp;
  big.pp = 64;
  off.offload = scaleplan::strategies::Offload::gemini;
  EXPECT_EQ(scheme("pipeline parallel").family_of(big), 4);
  EXPECT_EQ(scheme("offload").family_of(dp), 0);
  EXPECT_EQ(scheme("offload").family_of(off), 4);
  for (const auto& sc : schemes)
    for (const Plan* p : {&dp, &tp, &pp, &tpp, &cp, &big, &off}) {
      const int f = sc.family_of(*p);
      EXPECT_GE(f, 0);
      EXPECT_LT(f, static_cast<int>(sc.families.size()));
    }
}

TEST(GuiExplorer, ProgressFractionReadsSearchLines) {
  EXPECT_DOUBLE_EQ(gui::progress_fraction("search: 50/200 plans (25%)"), 0.25);
  EXPECT_NEAR(gui::progress_fraction("scale 3/4: 10/20 plans (50%)"), (2 + 0.5) / 4, 1e-12);
  EXPECT_DOUBLE_EQ(gui::progress_fraction("search: starting"), 0.0);
}

// One small job: every feasible plan is kept (all of them: far under the cap), the sweep has a
// point and a budget per count, the progress is monotone and ends at 1.
TEST(GuiExplorer, RunsSearchScaleAndBudget) {
  gui::ExplorerInputs in;
  in.model = "gpt3-1.3b";
  in.cluster = "selene-a100";
  in.gpus = 64;
  in.gbs = 512;
  in.scale_counts = {200, 1000, 5000};
  std::vector<double> fractions;
  const gui::ExplorerResult r = gui::run_explorer(in, [&](double f, const std::string&) { fractions.push_back(f); });
  ASSERT_TRUE(r.search.ok());
  EXPECT_FALSE(r.cancelled);
  EXPECT_EQ(r.search.top.size(), r.search.feasible);  // every feasible plan
  for (size_t i = 1; i < r.search.top.size(); ++i)
    EXPECT_GE(r.search.top[i - 1].metrics.throughput.tokens_per_s, r.search.top[i].metrics.throughput.tokens_per_s);
  ASSERT_EQ(r.scale.points.size(), 3u);
  ASSERT_EQ(r.budgets.size(), 3u);
  for (size_t i = 0; i < 3; ++i) {
    ASSERT_TRUE(r.scale.points[i].at.ok());
    EXPECT_LE(r.scale.points[i].efficiency, 1.0 + 1e-9);
    // The budget's days are the sweep's time to train at the same count (same plan, same tokens).
    EXPECT_NEAR(r.budgets[i].days * 86400.0, r.scale.points[i].train.seconds, 1e-6 * r.scale.points[i].train.seconds);
    EXPECT_NEAR(r.budgets[i].usd, r.budgets[i].gpu_hours * r.cluster.price_usd_per_gpu_hour, 1e-6 * r.budgets[i].usd);
  }
  ASSERT_FALSE(fractions.empty());
  for (size_t i = 1; i < fractions.size(); ++i) EXPECT_GE(fractions[i], fractions[i - 1]);
  EXPECT_DOUBLE_EQ(fractions.back(), 1.0);
}

TEST(GuiExplorer, CancelledBeforeStartEvaluatesNothing) {
  gui::ExplorerInputs in;
  std::atomic<bool> cancel{true};
  const gui::ExplorerResult r = gui::run_explorer(in, {}, &cancel);
  EXPECT_TRUE(r.cancelled);
  EXPECT_EQ(r.search.evaluated, 0u);
  EXPECT_TRUE(r.scale.points.empty());
}

TEST(GuiExplorer, BadInputsThrowTypedErrors) {
  gui::ExplorerInputs in;
  in.model = "no-such-model";
  EXPECT_THROW(gui::run_explorer(in), UsageError);
  const char* path = "test_gui_core_bad_model.yaml";
  {
    std::ofstream f(path);
    f << "name: bad\nlayers: -3\n";
  }
  in.model = path;
  EXPECT_THROW(gui::run_explorer(in), ConfigError);
  std::remove(path);
  in.model = "gpt3-1.3b";
  in.gpus = 0;
  EXPECT_THROW(gui::run_explorer(in), UsageError);
}

}  // namespace
