// One plan language (issue 16.3): uneven pipeline splits as the plan key layers=F/M/L (first /
// each middle / last stage), accepted by parse, YAML and resolve, printed by to_string, and every
// plan the search returns round-trips through its string to the same report.
#include <gtest/gtest.h>

#include <cstdio>
#include <fstream>
#include <string>

#include "common/errors.hpp"
#include "simulator/analytic/estimator.hpp"
#include "simulator/search/search.hpp"
#include "strategies/pipeline.hpp"
#include "strategies/plan.hpp"
#include "strategies/plan_label.hpp"

namespace {

using namespace scaleplan;
using namespace scaleplan::strategies;

struct Inputs {
  model::ModelSpec m;
  hw::Cluster c;
  Inputs(const char* model, const char* cluster) : m(model::load_model(model)), c(hw::load_cluster(cluster)) {}
};

void expect_key_error(const std::function<void()>& fn, const std::string& rule) {
  try {
    fn();
    ADD_FAILURE() << "expected PlanError for key 'layers'";
  } catch (const PlanError& e) {
    EXPECT_EQ(e.key(), "layers") << e.what();
    EXPECT_NE(std::string(e.what()).find(rule), std::string::npos) << e.what();
  }
}

// GPT-3 175B (96 layers) on 7 stages: 13 + 5 x 14 + 13 (the split search prints), with vpp=7.
TEST(PlanLayers, UnevenSplitParsesResolvesAndPrints) {
  Inputs s("gpt3-175b", "selene-a100");
  const Plan p = resolve_plan(parse_plan("tp=8,pp=7,vpp=7,mbs=1,gbs=1792,layers=13/14/13"), s.m, s.c, 1792);
  EXPECT_EQ(p.layers_first, 13);
  EXPECT_EQ(p.layers_middle, 14);
  EXPECT_EQ(p.layers_last, 13);
  EXPECT_TRUE(p.allow_uneven_layers);
  EXPECT_EQ(p.schedule, Schedule::interleaved);
  EXPECT_NE(p.to_string().find(",layers=13/14/13"), std::string::npos) << p.to_string();
  EXPECT_NE(short_label(p).find("pp=7 layers=13/14/13 vpp=7"), std::string::npos) << short_label(p);
  const StageLayers sl = stage_layers(p, s.m.layers);
  EXPECT_EQ(sl.first, 13);
  EXPECT_EQ(sl.middle, 14);
  EXPECT_EQ(sl.last, 13);
  // Without the key the same plan is refused, as before (pp*vpp does not divide the layers).
  EXPECT_THROW(resolve_plan(parse_plan("tp=8,pp=7,vpp=7,mbs=1,gbs=1792"), s.m, s.c, 1792), PlanError);
}

// The Llama 3 405B layout (126 layers, pp 16, one fewer layer on the first and last stage,
// Llama 3 sec. 3.3.2), with vpp 7 as the published runs file uses it.
TEST(PlanLayers, Llama3_405bLayout) {
  Inputs s("llama3-405b", "dgx-h100");
  const Plan p = resolve_plan(parse_plan("tp=8,cp=1,pp=16,vpp=7,dp=128,mbs=1,gbs=2048,layers=7/8/7,sp=on,zero=1"), s.m, s.c, 16384);
  EXPECT_EQ(p.layers_first + 14 * p.layers_middle + p.layers_last, 126);
  const analytic::Estimator est(s.m, s.c);
  const StepReport r = est.evaluate(p);
  EXPECT_GT(r.time.step_s, 0);
  // A round trip through the plan string gives the same report.
  const Plan q = resolve_plan(parse_plan(p.to_string()), s.m, s.c, 16384);
  EXPECT_EQ(est.evaluate(q).time.step_s, r.time.step_s);
}

TEST(PlanLayers, EvenSplitsAreNotPrintedButAreKnown) {
  Inputs s("gpt3-1.3b", "selene-a100");  // 24 layers
  const Plan p = resolve_plan(parse_plan("pp=4,mbs=1,gbs=64"), s.m, s.c, 64);
  EXPECT_EQ(p.layers_string(), "6/6/6");
  EXPECT_EQ(p.to_string().find("layers="), std::string::npos);
  const Plan q = resolve_plan(parse_plan("pp=2,mbs=1,gbs=64,layers=12/12"), s.m, s.c, 64);
  EXPECT_FALSE(q.allow_uneven_layers);
  const Plan u = resolve_plan(parse_plan("pp=2,mbs=1,gbs=64,layers=11/13"), s.m, s.c, 64);
  EXPECT_EQ(u.layers_string(), "11/13");
  EXPECT_NE(u.to_string().find("layers=11/13"), std::string::npos);
}

TEST(PlanLayers, BadSplitsNameTheKey) {
  Inputs s("gpt3-1.3b", "selene-a100");  // 24 layers
  expect_key_error([&] { resolve_plan(parse_plan("pp=4,gbs=64,layers=5/6/6"), s.m, s.c, 64); }, "the model has 24");
  expect_key_error([&] { resolve_plan(parse_plan("pp=4,gbs=64,layers=6/12"), s.m, s.c, 64); }, "F/M/L");
  expect_key_error([&] { resolve_plan(parse_plan("pp=3,vpp=4,gbs=96,layers=3/9/12"), s.m, s.c, 96); }, "fewer layers than vpp=4");
  expect_key_error([&] { parse_plan("pp=4,layers=6/x/6"); }, "integer");
  expect_key_error([&] { parse_plan("pp=4,layers=1/2/3/4"); }, "F/M/L");
  expect_key_error([&] { parse_plan("pp=4,layers=0/12/12"); }, ">= 1");
}

TEST(PlanLayers, YamlPlanFileTakesTheKey) {
  Inputs s("gpt3-175b", "selene-a100");
  const std::string path = "test_plan_layers.yaml";
  {
    std::ofstream f(path);
    f << "tp: 8\npp: 7\nvpp: 7\nmbs: 1\ngbs: 1792\nlayers: \"13/14/13\"\n";
  }
  const Plan p = resolve_plan(load_plan(path), s.m, s.c, 1792);
  std::remove(path.c_str());
  EXPECT_EQ(p.layers_string(), "13/14/13");
}

// Every plan the search returns (uneven splits included) round-trips through its plan string to
// the same report.
int round_trip(const char* model, const char* cluster, long long gpus, long long gbs) {
  Inputs s(model, cluster);
  const analytic::Estimator est(s.m, s.c);
  search::SearchSpec spec;
  spec.gpus = gpus;
  spec.gbs = {gbs};
  spec.top_k = 30;
  spec.threads = 2;
  const search::SearchResult r = search::run_search(est, spec);
  EXPECT_TRUE(r.ok());
  int uneven = 0;
  auto check = [&](const search::Candidate& c) {
    const Plan q = resolve_plan(parse_plan(c.plan.to_string()), s.m, s.c, gpus);
    const StepReport a = est.evaluate(q);
    EXPECT_EQ(a.time.step_s, c.metrics.time.step_s) << c.plan.to_string();
    EXPECT_EQ(a.memory.total(), c.metrics.memory.total()) << c.plan.to_string();
    EXPECT_EQ(q.to_string(), c.plan.to_string());
    uneven += c.plan.uneven_split() ? 1 : 0;
  };
  for (const auto& c : r.top) check(c);
  for (const auto& c : r.pareto) check(c);
  return uneven;
}

TEST(PlanLayers, SearchPlansRoundTrip) {
  int uneven = round_trip("gpt3-175b", "selene-a100", 1792, 1792);  // pp=7 of 96 layers: uneven
  uneven += round_trip("llama3-405b", "dgx-h100", 20480, 2560);     // 2^12 x 5 GPUs: uneven pp=5, 10, 20 (126 layers)
  uneven += round_trip("llama3-70b", "dgx-h100", 10000, 2000);
  EXPECT_GT(uneven, 0) << "the panel should exercise an uneven split";
}

}  // namespace
