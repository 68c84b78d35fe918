// Plan search, scaling sweeps and budgets (issue 4): the space matches resolve_plan, the search's
// numbers are the estimator's, results are deterministic, and the sanity checks of the issue.
#include <gtest/gtest.h>

#include <functional>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdlib>
#include <new>
#include <set>
#include <string>
#include <vector>

#include "common/errors.hpp"
#include "simulator/analytic/estimator.hpp"
#include "simulator/search/batch.hpp"
#include "simulator/search/scale.hpp"
#include "simulator/search/search.hpp"
#include "simulator/search/space.hpp"
#include "strategies/pipeline.hpp"

// Counts heap allocations (the hot-path test below). The replaced global operator new/delete pair
// malloc with free consistently; GCC 12's -Wmismatched-new-delete misreads the inlined pair.
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"
static std::atomic<long> g_allocations{0};
void* operator new(std::size_t n) {
  ++g_allocations;
  if (void* p = std::malloc(n ? n : 1)) return p;
  throw std::bad_alloc();
}
void operator delete(void* p) noexcept { std::free(p); }
void operator delete(void* p, std::size_t) noexcept { std::free(p); }

namespace {

using namespace scaleplan;
using strategies::Plan;
using strategies::Recompute;
using strategies::Schedule;
using strategies::Offload;

struct Loaded {
  model::ModelSpec m;
  hw::Cluster c;
  analytic::Estimator est;
  Loaded(const char* model, const char* cluster) : m(model::load_model(model)), c(hw::load_cluster(cluster)), est(m, c) {}
};

bool same_numbers(const strategies::StepReport& a, const analytic::StepMetrics& b) {
  return a.feasible == b.feasible && a.time.step_s == b.time.step_s && a.memory.total() == b.memory.total() &&
         a.throughput.tokens_per_s == b.throughput.tokens_per_s && a.comm.tp == b.comm.tp && a.comm.dp == b.comm.dp &&
         a.time.bubble_s == b.time.bubble_s && a.dp_comm_exposed_s == b.dp_comm_exposed_s;
}

// ---- the space ------------------------------------------------------------------------------

// Every plan the walk produces is one resolve_plan accepts unchanged.
TEST(SearchSpace, EveryPlanResolvesUnchanged) {
  for (const char* model : {"gpt3-1.3b", "llama2-70b", "mixtral-8x7b"}) {
    Loaded s(model, "selene-a100");
    for (long long gpus : {8LL, 48LL, 64LL, 96LL}) {
      const search::Space sp = search::make_space(s.m, s.c, gpus, {256});
      const std::vector<Plan> plans = search::enumerate_plans(sp);
      EXPECT_EQ(plans.size(), search::count_plans(sp));
      for (const Plan& p : plans) {
        Plan r;
        ASSERT_NO_THROW(r = strategies::resolve_plan(p, s.m, s.c, gpus)) << model << " " << p.to_string();
        EXPECT_EQ(search::compare_plans(p, r), 0) << p.to_string() << " vs " << r.to_string();
        EXPECT_EQ(r.gpus(), gpus);
      }
    }
  }
}

// Brute force: every plan resolve_plan accepts, minus the search's documented pruning, is in the
// space (and nothing else is).
TEST(SearchSpace, MatchesBruteForceOverResolvePlan) {
  Loaded s("gpt3-1.3b", "selene-a100");  // 24 layers, 16 heads
  const long long gpus = 32, gbs = 64;
  const search::Space sp = search::make_space(s.m, s.c, gpus, {gbs});
  std::set<std::string> space;
  for (const Plan& p : search::enumerate_plans(sp)) space.insert(p.to_string() + (p.allow_uneven_layers ? ",uneven" : ""));

  std::set<std::string> brute;
  const long long L = s.m.layers;
  for (int tp = 1; tp <= s.m.heads; ++tp) {
    if (gpus % tp != 0) continue;
    if (8 % tp != 0 && tp % 8 != 0) continue;  // pruning: node-aligned TP groups
    for (int pp = 1; pp <= L; ++pp) {
      if (gpus % (tp * pp) != 0) continue;
      const bool uneven = L % pp != 0;
      if (uneven) {  // pruning: uneven splits with first/last stages of 1..ceil(L/p) layers
        const auto sl = strategies::stage_layers(L, pp);
        if (!(sl.first >= 1 && sl.last >= 1 && sl.first <= sl.middle && sl.last <= sl.middle)) continue;
      }
      for (int vpp = 1; vpp <= L; ++vpp)
        for (int mbs = 1; mbs <= gbs; mbs *= 2)
          for (int mode = 0; mode < 4; ++mode)
          for (int depth = 1; depth <= (mode == 2 ? tp : 1); ++depth)
          for (int spf = 0; spf < 2; ++spf)
            for (int rc = 0; rc < 3; ++rc)
              for (int z = 0; z < 4; ++z)
                for (Schedule sc : {Schedule::gpipe, Schedule::one_f_one_b, Schedule::interleaved, Schedule::zero_bubble})
                for (Offload off : {Offload::none, Offload::optimizer, Offload::params, Offload::nvme, Offload::gemini}) {
                  if (mode == 2 && depth == 1) continue;  // pruning: 2.5d with depth 1 is 2d
                  // pruning: sp needs tp > 1; zero needs dp > 1 (with dp = 1 an offload mode brings its
                  // stage: optimizer 2, params/nvme 3); pp = 1 runs 1f1b; interleaved needs vpp >= 2;
                  // (params, nvme and gemini: 3)
                  const long long dp = gpus / (tp * pp);
                  const int solo_zero = off == Offload::none ? 0 : off == Offload::optimizer ? 2 : 3;
                  if ((spf && tp == 1) || (dp == 1 && z != solo_zero) || (pp == 1 && sc != Schedule::one_f_one_b)) continue;
                  if ((sc == Schedule::interleaved) != (vpp > 1)) continue;
                  if (uneven && vpp > 1) {  // pruning: chunks of whole layers on every stage
                    const auto sl = strategies::stage_layers(L, pp);
                    if (static_cast<long long>(sl.middle) % vpp != 0 || std::min(sl.first, sl.last) < vpp) continue;
                  }
                  Plan p;
                  p.tp = tp;
                  p.pp = pp;
                  p.vpp = vpp;
                  p.mbs = mbs;
                  p.gbs = gbs;
                  p.sp = spf;
                  p.recompute = static_cast<Recompute>(rc);
                  p.zero = z;
                  p.offload = off;
                  p.schedule = sc;
                  p.schedule_set = true;
                  p.tp_mode = static_cast<strategies::TpMode>(mode);
                  p.tp_depth = depth;
                  p.allow_uneven_layers = uneven;
                  try {
                    const Plan r = strategies::resolve_plan(p, s.m, s.c, gpus);
                    brute.insert(r.to_string() + (uneven ? ",uneven" : ""));
                  } catch (const PlanError&) {
                  }
                }
    }
  }
  EXPECT_EQ(space.size(), brute.size());
  EXPECT_TRUE(space == brute);
  for (const auto& x : brute)
    if (!space.count(x)) ADD_FAILURE() << "missing from the space: " << x;
}

// Issue 5 dimensions are in the space: tensor-parallel grid modes (2.5d with its depths), the
// zero-bubble schedule, expert parallelism for MoE models, and every context-parallel algorithm.
TEST(SearchSpace, ContainsIssue5Dimensions) {
  auto has = [](const std::vector<Plan>& ps, const std::function<bool(const Plan&)>& f) {
    for (const Plan& p : ps)
      if (f(p)) return true;
    return false;
  };
  {
    Loaded s("gpt3-1.3b", "selene-a100");
    const auto ps = search::enumerate_plans(search::make_space(s.m, s.c, 32, {64}));
    EXPECT_TRUE(has(ps, [](const Plan& p) { return p.tp_mode == strategies::TpMode::d2 && p.tp == 16; }));
    EXPECT_TRUE(has(ps, [](const Plan& p) { return p.tp_mode == strategies::TpMode::d2_5 && p.tp == 16 && p.tp_depth == 4; }));
    EXPECT_TRUE(has(ps, [](const Plan& p) { return p.tp_mode == strategies::TpMode::d3 && p.tp == 8 && p.mbs % 4 == 0; }));
    EXPECT_TRUE(has(ps, [](const Plan& p) { return p.schedule == Schedule::zero_bubble; }));
    EXPECT_FALSE(has(ps, [](const Plan& p) { return p.tp_mode != strategies::TpMode::d1 && p.sp; }));
  }
  {
    Loaded s("mixtral-8x7b", "dgx-h100");
    const auto ps = search::enumerate_plans(search::make_space(s.m, s.c, 64, {256}));
    EXPECT_TRUE(has(ps, [](const Plan& p) { return p.ep == 8; }));
    EXPECT_FALSE(has(ps, [](const Plan& p) { return p.tp_mode != strategies::TpMode::d1; }));
  }
  {
    Loaded s("llama3-8b", "dgx-h100");
    s.m.seq = 65536;
    const auto ps = search::enumerate_plans(search::make_space(s.m, s.c, 32, {32}));
    for (auto a : {strategies::CpAlgo::ring, strategies::CpAlgo::ulysses, strategies::CpAlgo::ring_self_attn, strategies::CpAlgo::allgather})
      EXPECT_TRUE(has(ps, [a](const Plan& p) { return p.cp > 1 && p.cp_algo == a; })) << strategies::name(a);
  }
}

// Every plan of those spaces evaluates to finite, positive numbers (all modes, algorithms, ep).
TEST(SearchSpace, EveryIssue5PlanEvaluatesFinite) {
  struct Case {
    const char* model;
    const char* cluster;
    long long seq, gpus, gbs;
  };
  for (const Case& k : {Case{"gpt3-1.3b", "selene-a100", 0, 64, 64}, Case{"mixtral-8x7b", "dgx-h100", 4096, 64, 256},
                        Case{"llama3-8b", "dgx-h100", 65536, 32, 32}}) {
    Loaded s(k.model, k.cluster);
    if (k.seq > 0) s.m.seq = k.seq;
    analytic::Estimator est(s.m, s.c);
    const auto ps = search::enumerate_plans(search::make_space(s.m, s.c, k.gpus, {k.gbs}));
    ASSERT_FALSE(ps.empty());
    analytic::LayerTable t;
    analytic::ChunkTable ct;  // offload=gemini
    bool have = false, have_ct = false;
    for (const Plan& p : ps) {
      if (!have || !t.matches(p)) {
        t = est.prepare(p);
        have = true;
      }
      const bool gemini = p.offload == Offload::gemini;
      if (gemini && (!have_ct || !ct.matches(p))) {
        ct = est.prepare_chunks(p);
        have_ct = true;
      }
      const analytic::StepMetrics x = est.metrics(p, t, gemini ? &ct : nullptr);
      ASSERT_TRUE(std::isfinite(x.time.step_s) && x.time.step_s > 0) << k.model << " " << p.to_string();
      ASSERT_TRUE(std::isfinite(x.memory.total()) && x.memory.total() > 0) << k.model << " " << p.to_string();
      ASSERT_TRUE(x.comm.tp >= 0 && x.comm.cp >= 0 && x.comm.ep >= 0 && x.comm.dp >= 0) << p.to_string();
      ASSERT_GE(x.time.bubble_s, 0) << p.to_string();
    }
  }
}

// 20,480 = 2^12 x 5 GPUs at a power-of-two batch: only uneven pipeline splits (pp = 5, 10, 20) use them.
TEST(SearchSpace, TwentyThousandGpusNeedUnevenStages) {
  Loaded s("gpt3-175b", "dgx-h100");
  search::Space sp = search::make_space(s.m, s.c, 20480, {2048});
  sp.uneven_layers = false;
  EXPECT_EQ(search::count_plans(sp), 0u);
  sp.uneven_layers = true;
  const auto plans = search::enumerate_plans(sp);
  ASSERT_FALSE(plans.empty());
  for (const Plan& p : plans) EXPECT_EQ(p.pp % 5, 0) << p.to_string();
}

// ---- the estimator refactor ----------------------------------------------------------------

TEST(SearchEstimator, PreparedTableGivesIdenticalReports) {
  Loaded s("gpt3-175b", "selene-a100");
  const search::Space sp = search::make_space(s.m, s.c, 1024, {1536});
  const auto plans = search::enumerate_plans(sp);
  for (size_t i = 0; i < plans.size(); i += 97) {
    const Plan& p = plans[i];
    const strategies::StepReport a = s.est.evaluate(p);
    const analytic::LayerTable t = s.est.prepare(p);
    ASSERT_TRUE(t.matches(p));
    const strategies::StepReport b = s.est.evaluate(p, t);
    EXPECT_TRUE(same_numbers(a, s.est.metrics(p, t))) << p.to_string();
    EXPECT_EQ(a.reason, b.reason);
    EXPECT_EQ(a.time.step_s, b.time.step_s);
    EXPECT_EQ(a.memory.total(), b.memory.total());
    EXPECT_EQ(a.feasible, a.reason.empty());
  }
}

// DESIGN.md sec. 4: the hot path of the estimator allocates nothing (layer tables prepared).
TEST(SearchEstimator, HotPathAllocatesNothing) {
  Loaded s("gpt3-175b", "selene-a100");
  const search::Space sp = search::make_space(s.m, s.c, 1024, {1536});
  const auto plans = search::enumerate_plans(sp);
  std::vector<analytic::LayerTable> tables;
  for (const Plan& p : plans)
    if (std::none_of(tables.begin(), tables.end(), [&](const analytic::LayerTable& t) { return t.matches(p); }))
      tables.push_back(s.est.prepare(p));
  std::vector<const analytic::LayerTable*> of(plans.size());
  for (size_t i = 0; i < plans.size(); ++i)
    for (const auto& t : tables)
      if (t.matches(plans[i])) of[i] = &t;
  // offload=gemini plans (issue 6): their chunk configurations, prepared like the layer tables.
  std::vector<analytic::ChunkTable> chunks;
  for (const Plan& p : plans)
    if (p.offload == Offload::gemini &&
        std::none_of(chunks.begin(), chunks.end(), [&](const analytic::ChunkTable& t) { return t.matches(p); }))
      chunks.push_back(s.est.prepare_chunks(p));
  ASSERT_FALSE(chunks.empty());  // the space has gemini plans
  std::vector<const analytic::ChunkTable*> chunk_of(plans.size(), nullptr);
  for (size_t i = 0; i < plans.size(); ++i)
    for (const auto& t : chunks)
      if (plans[i].offload == Offload::gemini && t.matches(plans[i])) chunk_of[i] = &t;
  double sink = 0;
  const long before = g_allocations.load();
  for (size_t i = 0; i < plans.size(); ++i) {
    const Plan r = strategies::resolve_plan(plans[i], s.m, s.c, 1024);  // the search's safety net
    sink += s.est.metrics(r, *of[i], chunk_of[i]).time.step_s;
  }
  EXPECT_EQ(g_allocations.load() - before, 0);
  EXPECT_GT(sink, 0);
  // The prepared chunk configuration gives the same numbers as the estimator's own chunk search
  // (one plan per configuration: the search costs ~1 ms).
  for (const auto& t : chunks)
    for (size_t i = 0; i < plans.size(); ++i) {
      if (chunk_of[i] != &t) continue;
      const auto a = s.est.metrics(plans[i], *of[i], chunk_of[i]), b = s.est.metrics(plans[i], *of[i]);
      EXPECT_EQ(a.memory.total(), b.memory.total());
      EXPECT_EQ(a.time.step_s, b.time.step_s);
      EXPECT_EQ(a.feasible, b.feasible);
      break;
    }
}

// ---- the search -----------------------------------------------------------------------------

search::SearchSpec spec_for(long long gpus, long long gbs, int top = 10, int threads = 0) {
  search::SearchSpec spec;
  spec.gpus = gpus;
  spec.gbs = {gbs};
  spec.top_k = top;
  spec.threads = threads;
  spec.verify_plans = true;  // every leaf through resolve_plan; none may be refused
  return spec;
}

// GPT-3 175B on 1024 A100-80GB, gbs 1536 (Narayanan et al. SC21 sec. 5.1: 140 TFLOP/s per GPU
// with tp=8, pp=16 interleaved).
TEST(SearchSanity, Gpt3OnSeleneBeatsMegatronAndFits) {
  Loaded s("gpt3-175b", "selene-a100");
  const search::SearchResult r = search::run_search(s.est, spec_for(1024, 1536));
  ASSERT_TRUE(r.ok()) << r.reason;
  EXPECT_EQ(r.rejected, 0u);
  const search::Candidate& best = r.top.front();
  EXPECT_TRUE(best.metrics.feasible);
  EXPECT_LE(best.metrics.memory.total(), best.metrics.memory.capacity);
  EXPECT_EQ(r.top.size(), 10u);

  // The Megatron configuration: tp=8, pp=16, mbs 1, full recompute, no SP, no ZeRO; 1F1B (the preset)
  // and interleaved (vpp 2 and 3, the SC21 schedule).
  const Plan preset = strategies::resolve_plan(strategies::load_plan("megatron-gpt3-175b"), s.m, s.c, 1024);
  std::vector<Plan> megatron = {preset};
  for (int v : {2, 3}) {
    Plan p = strategies::parse_plan("tp=8,pp=16,mbs=1,gbs=1536,recompute=full,zero=0,sp=off,schedule=interleaved,vpp=" + std::to_string(v));
    megatron.push_back(strategies::resolve_plan(p, s.m, s.c, 1024));
  }
  for (const Plan& p : megatron) {
    const strategies::StepReport m = s.est.evaluate(p);
    ASSERT_TRUE(m.feasible) << p.to_string() << ": " << m.reason;
    EXPECT_GE(best.metrics.throughput.tokens_per_s, m.throughput.tokens_per_s) << p.to_string();
  }

  // Why the published configuration is not in the top 10 (documented, not asserted away):
  // 1. Every plan of the top 10 uses what the 2021 recipe did not have: sequence parallelism with
  //    selective recompute instead of full recompute (Korthikanti et al. 2022: full recompute adds
  //    ~33% compute), or the distributed optimizer (zero >= 1) that frees memory for fewer
  //    model-parallel ways.
  for (const auto& x : r.top)
    EXPECT_TRUE(x.plan.sp || x.plan.recompute != Recompute::full || x.plan.zero > 0) << x.plan.to_string();
  // 2. Within the SC21 feature set (sp off, full recompute, zero 0) the plans faster than the best
  //    tp=8, pp=16 one use less tensor parallelism or fewer stages (tp < 8 or pp < 16: less TP
  //    traffic, smaller bubble), which the 80 GB of an A100-80GB leaves room for; SC21 fixed the
  //    model-parallel size at the 175B row's (Table 1) rather than searching it. The best tp=8,
  //    pp=16 plan is within 15% of the best SC21-feature plan.
  const search::Space sp = search::make_space(s.m, s.c, 1024, {1536});
  double best_family = 0, best_sc21 = 0;
  std::vector<std::pair<double, Plan>> sc21;
  for (const Plan& p : search::enumerate_plans(sp)) {
    if (p.sp || p.recompute != Recompute::full || p.zero != 0) continue;
    const strategies::StepReport e = s.est.evaluate(p);
    if (!e.feasible) continue;
    sc21.emplace_back(e.throughput.tokens_per_s, p);
    best_sc21 = std::max(best_sc21, e.throughput.tokens_per_s);
    if (p.tp == 8 && p.pp == 16) best_family = std::max(best_family, e.throughput.tokens_per_s);
  }
  ASSERT_GT(best_family, 0);
  for (const auto& [tps, p] : sc21) {
    if (tps > best_family) {
      EXPECT_TRUE(p.tp < 8 || p.pp < 16) << p.to_string();
    }
  }
  EXPECT_GE(best_family, 0.85 * best_sc21);
  for (const Plan& p : megatron) EXPECT_GE(s.est.evaluate(p).throughput.tokens_per_s, 0.85 * best_family) << p.to_string();
}

// The search's numbers are the estimator's on the resolved plan string.
TEST(SearchSanity, TopPlansReevaluateIdentically) {
  Loaded s("gpt3-175b", "selene-a100");
  const search::SearchResult r = search::run_search(s.est, spec_for(1024, 1536));
  ASSERT_TRUE(r.ok());
  for (const auto& x : r.top) {
    const Plan p = strategies::resolve_plan(strategies::parse_plan(x.plan.to_string()), s.m, s.c, 1024);
    EXPECT_TRUE(same_numbers(s.est.evaluate(p), x.metrics)) << x.plan.to_string();
  }
  // Ranked by throughput (best first), Pareto front sorted and non-dominated.
  for (size_t i = 1; i < r.top.size(); ++i)
    EXPECT_GE(r.top[i - 1].metrics.throughput.tokens_per_s, r.top[i].metrics.throughput.tokens_per_s);
  ASSERT_FALSE(r.pareto.empty());
  EXPECT_EQ(r.pareto.front().plan.to_string(), r.top.front().plan.to_string());
  for (size_t i = 1; i < r.pareto.size(); ++i) {
    EXPECT_GT(r.pareto[i - 1].useful_tokens_per_s, r.pareto[i].useful_tokens_per_s);
    EXPECT_LT(r.pareto[i - 1].headroom(), r.pareto[i].headroom());
  }
}

TEST(SearchSanity, DeterministicAcrossRunsAndThreads) {
  Loaded s("gpt3-175b", "dgx-h100");
  search::SearchResult a = search::run_search(s.est, spec_for(4096, 2048, 25, 1));
  search::SearchResult b = search::run_search(s.est, spec_for(4096, 2048, 25, 2));
  search::SearchResult c = search::run_search(s.est, spec_for(4096, 2048, 25, 7));
  EXPECT_EQ(a.rejected, 0u);
  for (const auto* x : {&b, &c}) {
    EXPECT_EQ(a.evaluated, x->evaluated);
    EXPECT_EQ(a.feasible, x->feasible);
    ASSERT_EQ(a.top.size(), x->top.size());
    for (size_t i = 0; i < a.top.size(); ++i) {
      EXPECT_EQ(a.top[i].plan.to_string(), x->top[i].plan.to_string());
      EXPECT_EQ(a.top[i].metrics.time.step_s, x->top[i].metrics.time.step_s);
    }
    ASSERT_EQ(a.pareto.size(), x->pareto.size());
    for (size_t i = 0; i < a.pareto.size(); ++i) EXPECT_EQ(a.pareto[i].plan.to_string(), x->pareto[i].plan.to_string());
  }
}

TEST(SearchSanity, NothingFitsIsAResultWithTheSmallestNeed) {
  // yard-v100: no NVMe and 240 GiB of host memory, so offload cannot save 175B on 8 GPUs either (on
  // selene-a100's NVMe ZeRO-Infinity trains it: tests/test_offload.cpp).
  Loaded s("gpt3-175b", "yard-v100");
  const search::SearchResult r = search::run_search(s.est, spec_for(8, 8));
  EXPECT_FALSE(r.ok());
  EXPECT_GT(r.evaluated, 0u);
  EXPECT_EQ(r.feasible, 0u);
  ASSERT_TRUE(r.has_smallest);
  EXPECT_GT(r.smallest.metrics.memory.total(), r.smallest.metrics.memory.capacity);
  EXPECT_NE(r.reason.find("no plan fits in memory"), std::string::npos) << r.reason;

  const search::SearchResult none = search::run_search(s.est, spec_for(97, 2));  // 97 is prime; dp=97 does not divide 2
  EXPECT_EQ(none.evaluated, 0u);
  EXPECT_NE(none.reason.find("no plan splits"), std::string::npos) << none.reason;
}

// The progress line: reported from the calling thread once the work passes the delay (0 here).
TEST(SearchSanity, ProgressReportsPlansDone) {
  Loaded s("llama3-405b", "meta-h100-roce");
  s.m.seq = 8192;  // ~0.6M plans on 1,024 GPUs, some 0.2 s on one thread: several progress lines
  const analytic::Estimator est(s.m, s.c);
  std::vector<std::string> lines;
  bool final_seen = false;
  search::Progress progress(
      [&](const std::string& line, bool final) {
        lines.push_back(line);
        final_seen = final_seen || final;
      },
      0.0);
  search::SearchSpec spec;
  spec.gpus = 1024;
  spec.gbs_auto = true;
  spec.batch = search::batch_model(est.model(), search::Optimizer::adam);
  spec.gbs = search::auto_gbs_candidates(est.model(), est.cluster(), spec.gpus, spec.batch);
  spec.threads = 1;
  spec.top_k = 1;
  spec.progress = &progress;
  const search::SearchResult r = search::run_search(est, spec);
  progress.finish();
  ASSERT_TRUE(r.ok());
  ASSERT_FALSE(lines.empty());
  EXPECT_EQ(lines.front().rfind("search: ", 0), 0u) << lines.front();
  EXPECT_NE(lines.back().find(std::to_string(r.evaluated) + "/" + std::to_string(r.evaluated) + " plans (100%)"), std::string::npos)
      << lines.back();
  EXPECT_TRUE(final_seen);
}

// Cancellation (SearchSpec::cancel, the GUI's Cancel button): raised before the run, nothing is
// evaluated; raised from the progress callback mid-run, the workers stop early with a partial count.
TEST(SearchSanity, CancelStopsTheWorkers) {
  Loaded s("llama3-405b", "meta-h100-roce");
  s.m.seq = 131072;  // ~2M plans (see ProgressReportsPlansDone)
  const analytic::Estimator est(s.m, s.c);
  search::SearchSpec spec;
  spec.gpus = 16384;
  spec.gbs_auto = true;
  spec.batch = search::batch_model(est.model(), search::Optimizer::adam);
  spec.gbs = search::auto_gbs_candidates(est.model(), est.cluster(), spec.gpus, spec.batch);
  spec.threads = 1;
  spec.top_k = 1;
  std::atomic<bool> cancel{true};
  spec.cancel = &cancel;
  const search::SearchResult before = search::run_search(est, spec);
  EXPECT_TRUE(before.cancelled);
  EXPECT_EQ(before.evaluated, 0u);
  EXPECT_EQ(before.reason, "search cancelled");

  cancel = false;
  search::Progress progress([&](const std::string&, bool) { cancel = true; }, 0.0);
  spec.progress = &progress;
  const search::SearchResult mid = search::run_search(est, spec);
  const search::Space sp = search::make_space(est.model(), est.cluster(), spec.gpus, spec.gbs);
  EXPECT_TRUE(mid.cancelled);
  EXPECT_LT(mid.evaluated, search::count_plans(sp));

  // Never raised: the same answer as without the flag.
  cancel = false;
  spec.progress = nullptr;
  spec.gpus = 1024;
  spec.gbs = search::auto_gbs_candidates(est.model(), est.cluster(), spec.gpus, spec.batch);
  s.m.seq = 8192;
  const analytic::Estimator est2(s.m, s.c);
  const search::SearchResult with = search::run_search(est2, spec);
  spec.cancel = nullptr;
  const search::SearchResult without = search::run_search(est2, spec);
  EXPECT_FALSE(with.cancelled);
  EXPECT_EQ(with.evaluated, without.evaluated);
  ASSERT_TRUE(with.ok());
  EXPECT_EQ(with.top.front().plan.to_string(), without.top.front().plan.to_string());
}

TEST(SearchSanity, BadInputThrows) {
  Loaded s("gpt3-1.3b", "selene-a100");
  EXPECT_THROW(search::run_search(s.est, spec_for(0, 8)), UsageError);
  EXPECT_THROW(search::run_search(s.est, spec_for(8, 0)), UsageError);
  EXPECT_THROW(search::run_search(s.est, spec_for(8, 8, 0)), UsageError);
  EXPECT_THROW(search::parse_objective("speed"), UsageError);
  EXPECT_THROW(search::parse_gbs("12x"), UsageError);
  EXPECT_THROW(search::parse_quantity("-3", "--tokens"), UsageError);
  EXPECT_THROW(search::parse_counts("200,,400", "--gpus"), UsageError);
  EXPECT_EQ(search::parse_quantity("300B", "--tokens"), 3e11);
  EXPECT_EQ(search::parse_quantity("1.5e12", "--tokens"), 1.5e12);
  EXPECT_TRUE(search::parse_gbs("auto").automatic);
  EXPECT_EQ(search::parse_gbs("1536").gbs, 1536);
  EXPECT_EQ(search::parse_counts("200, 400,20000", "--gpus"), (std::vector<long long>{200, 400, 20000}));
}

// Llama 3 405B on 16,384 H100 (Llama Team 2024, Table 4: 41% MFU at gbs 2048 x 8K): the best
// plan's predicted MFU is within 10% (relative) of the published figure.
TEST(SearchSanity, Llama3On16kH100MfuNearPublished) {
  Loaded s("llama3-405b", "meta-h100-roce");
  const search::SearchResult r = search::run_search(s.est, spec_for(16384, 2048, 1));
  ASSERT_TRUE(r.ok()) << r.reason;
  EXPECT_NEAR(r.top.front().metrics.throughput.mfu, 0.41, 0.041) << r.top.front().plan.to_string();
}

// ---- large-batch model -----------------------------------------------------------------------

TEST(SearchBatch, McCandlishFormulas) {
  model::ModelSpec m = model::load_model("gpt3-175b");
  const search::BatchModel b = search::batch_model(m, search::Optimizer::adam);
  EXPECT_EQ(b.b_noise_tokens, m.b_noise_tokens);
  // At B = B_noise: twice the minimum tokens and twice the minimum steps (E_min / B_noise).
  EXPECT_DOUBLE_EQ(b.tokens_needed(1e12, b.b_noise_tokens), 2e12);
  EXPECT_DOUBLE_EQ(b.steps(1e12, b.b_noise_tokens), 2 * 1e12 / b.b_noise_tokens);
  EXPECT_DOUBLE_EQ(b.steps(1e12, 1e6) * 1e6, b.tokens_needed(1e12, 1e6));  // S = E / B
  EXPECT_DOUBLE_EQ(search::batch_model(m, search::Optimizer::lamb).b_noise_tokens, search::kLambBNoiseFactor * m.b_noise_tokens);
  model::ModelSpec unknown = m;
  unknown.b_noise_tokens = 0;
  EXPECT_EQ(search::batch_model(unknown, search::Optimizer::adam).b_noise_tokens, search::kDefaultBNoiseTokens);
  EXPECT_EQ(search::batch_model(unknown, search::Optimizer::adam, 1e6).b_noise_tokens, 1e6);
}

TEST(SearchBatch, AutoPicksABatchThatBeatsFixedOnTimeToTrain) {
  Loaded s("gpt3-175b", "selene-a100");
  search::SearchSpec spec = spec_for(1024, 1536, 3);
  spec.objective = search::Objective::time;
  spec.tokens = 3e11;
  const search::SearchResult fixed = search::run_search(s.est, spec);
  spec.gbs_auto = true;
  spec.batch = search::batch_model(s.m, search::Optimizer::adam);
  spec.gbs = search::auto_gbs_candidates(s.m, s.c, 1024, spec.batch);
  EXPECT_TRUE(std::find(spec.gbs.begin(), spec.gbs.end(), 1536) != spec.gbs.end());
  const search::SearchResult aut = search::run_search(s.est, spec);
  ASSERT_TRUE(fixed.ok() && aut.ok());
  // Useful tokens/s under the large-batch model: auto searches a superset of batches.
  spec.gbs_auto = false;
  const double fixed_useful = fixed.top.front().metrics.throughput.tokens_per_s * spec.batch.useful_fraction(1536.0 * s.m.seq);
  EXPECT_GE(aut.top.front().useful_tokens_per_s, fixed_useful);
}

// ---- scale and budget ------------------------------------------------------------------------

TEST(SearchScale, EfficiencyAtMostOneAndSubsetsNoted) {
  Loaded s("gpt3-175b", "selene-a100");
  search::SearchSpec base;
  base.top_k = 1;
  search::BatchChoice b;
  b.gbs = 1536;
  b.model = search::batch_model(s.m, search::Optimizer::adam);
  const search::ScaleResult r = search::run_scale(s.est, base, b, {256, 512, 1000, 1024, 2048}, 3e11);
  ASSERT_EQ(r.points.size(), 5u);
  EXPECT_EQ(r.base_index, 0);
  for (const auto& p : r.points) {
    ASSERT_TRUE(p.at.ok()) << p.at.requested << ": " << p.at.search.reason;
    EXPECT_LE(p.efficiency, 1.0 + 1e-9) << p.at.requested;
    EXPECT_LE(p.at.used, p.at.requested);
    EXPECT_EQ(p.at.best().plan.gpus(), p.at.used);
    EXPECT_EQ(p.at.best().plan.gbs, 1536);
    EXPECT_NEAR(p.train.steps, 3e11 / (1536.0 * s.m.seq), 1e-6);
  }
  EXPECT_DOUBLE_EQ(r.points[0].speedup, 1.0);
  // 1000 = 2^3 x 5^3: no dp | 1536 with tp*pp from the divisors of 96 uses it whole.
  EXPECT_LT(r.points[2].at.used, 1000);
  EXPECT_FALSE(r.points[2].at.note.empty());
  EXPECT_EQ(r.points[3].at.used, 1024);
  EXPECT_TRUE(r.points[3].at.note.empty()) << r.points[3].at.note;
}

TEST(SearchBudget, Arithmetic) {
  Loaded s("gpt3-175b", "selene-a100");
  search::SearchSpec base;
  base.top_k = 1;
  search::BatchChoice b;
  b.gbs = 1536;
  b.model = search::batch_model(s.m, search::Optimizer::adam);
  const double T = 3e11;
  const search::Budget r = search::run_budget(s.est, base, b, 1024, T, 0);
  ASSERT_TRUE(r.at.ok());
  const double tps = r.at.best().metrics.throughput.tokens_per_s;
  EXPECT_DOUBLE_EQ(r.hours, T / tps / 3600.0);
  EXPECT_DOUBLE_EQ(r.days, r.hours / 24.0);
  EXPECT_DOUBLE_EQ(r.gpu_hours, 1024 * r.hours);
  EXPECT_DOUBLE_EQ(r.price_usd_per_gpu_hour, s.c.price_usd_per_gpu_hour);
  EXPECT_DOUBLE_EQ(r.usd, r.gpu_hours * s.c.price_usd_per_gpu_hour);
  EXPECT_DOUBLE_EQ(r.energy_kwh, s.c.power_W_per_gpu * 1024 * r.hours / 1000.0);
  EXPECT_DOUBLE_EQ(r.train.steps, T / (1536.0 * s.m.seq));
  EXPECT_DOUBLE_EQ(r.train.tokens_processed, T);

  const search::Budget priced = search::run_budget(s.est, base, b, 1024, T, 1.0);
  EXPECT_DOUBLE_EQ(priced.usd, priced.gpu_hours * 1.0);

  // --gbs auto (issue 16.4): exactly T tokens are trained; the batch changes the step count only.
  b.automatic = true;
  const search::Budget aut = search::run_budget(s.est, base, b, 1024, T, 0);
  ASSERT_TRUE(aut.at.ok());
  const double B = static_cast<double>(aut.at.best().plan.gbs) * s.m.seq;
  EXPECT_DOUBLE_EQ(aut.train.tokens_processed, T);
  EXPECT_DOUBLE_EQ(aut.train.steps, T / B);
  EXPECT_DOUBLE_EQ(aut.train.useful_tokens, T / (1 + B / b.model.b_noise_tokens));
  EXPECT_DOUBLE_EQ(aut.hours, T / aut.at.best().metrics.throughput.tokens_per_s / 3600.0);
  EXPECT_THROW(search::run_budget(s.est, base, b, 1024, 0, 0), UsageError);
}

}  // namespace
