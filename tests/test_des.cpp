// The SimGrid discrete-event simulator (simulator/des, issue 7): pipeline orders, the symmetry
// reduction against the unreduced simulation, flow-level collectives against their closed forms,
// agreement with the analytic estimator on the shared validation runs without oversubscription,
// and the oversubscribed meta-h100-roce fabric. Each simulate() runs in a forked child (one
// SimGrid engine per process).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <tuple>

#include "common/errors.hpp"
#include "hardware/collectives.hpp"
#include "simulator/analytic/estimator.hpp"
#include "simulator/des/schedule.hpp"
#include "simulator/des/simulate.hpp"
#include "validation/runs.hpp"

namespace {

using namespace scaleplan;
using strategies::Schedule;

strategies::Plan plan_for(const model::ModelSpec& m, const hw::Cluster& c, const std::string& text, long long gpus) {
  return strategies::resolve_plan(strategies::parse_plan(text), m, c, gpus);
}

hw::Cluster flat(hw::Cluster c) {
  c.net.pod_gpus = 0;
  c.net.oversubscription = 1;
  return c;
}

double rel(double a, double b) { return std::fabs(a - b) / b; }

// ---- pipeline orders -----------------------------------------------------------------------

void check_order(Schedule s, int p, int v, int m) {
  for (int st = 0; st < p; ++st) {
    const auto ops = des::stage_order(s, p, v, m, st);
    ASSERT_EQ(ops.size(), static_cast<size_t>(2 * m * v)) << "stage " << st;
    std::set<std::pair<int, int>> fwd, bwd;
    for (const auto& op : ops) {
      const auto key = std::make_pair(op.microbatch, op.chunk);
      if (op.forward) {
        EXPECT_TRUE(fwd.insert(key).second) << "forward twice";
      } else {
        EXPECT_TRUE(fwd.count(key)) << "backward of mb " << op.microbatch << " chunk " << op.chunk << " before its forward";
        EXPECT_TRUE(bwd.insert(key).second);
      }
      EXPECT_GE(op.microbatch, 0);
      EXPECT_LT(op.microbatch, m);
    }
  }
}

TEST(DesSchedule, EveryMicrobatchForwardThenBackwardOnce) {
  check_order(Schedule::gpipe, 4, 1, 8);
  check_order(Schedule::one_f_one_b, 4, 1, 8);
  check_order(Schedule::one_f_one_b, 8, 1, 3);
  check_order(Schedule::interleaved, 4, 2, 8);
  check_order(Schedule::interleaved, 4, 3, 4);
}

TEST(DesSchedule, OneFOneBWarmupIsStagesBehind) {
  // PipeDream-Flush: stage i runs p - i - 1 forwards before its first backward (SC21 fig. 4).
  const int p = 4, m = 8;
  for (int st = 0; st < p; ++st) {
    const auto ops = des::stage_order(Schedule::one_f_one_b, p, 1, m, st);
    int warm = 0;
    while (ops[warm].forward) ++warm;
    EXPECT_EQ(warm, p - st) << "stage " << st;  // the warm-up forwards plus the first steady forward
  }
  const auto g = des::stage_order(Schedule::gpipe, p, 1, m, 0);
  for (int i = 0; i < m; ++i) EXPECT_TRUE(g[i].forward);
}

TEST(DesSchedule, InterleavedVisitsChunksInMegatronOrder) {
  // p = 2, v = 2, m = 4: forwards go mb0 c0, mb1 c0, mb0 c1, mb1 c1, mb2 c0, ... (schedules.py).
  const auto ops = des::stage_order(Schedule::interleaved, 2, 2, 4, 0);
  std::vector<std::pair<int, int>> f;
  for (const auto& op : ops)
    if (op.forward) f.push_back({op.microbatch, op.chunk});
  const std::vector<std::pair<int, int>> want = {{0, 0}, {1, 0}, {0, 1}, {1, 1}, {2, 0}, {3, 0}, {2, 1}, {3, 1}};
  EXPECT_EQ(f, want);
  EXPECT_THROW(des::stage_order(Schedule::interleaved, 4, 2, 6, 0), PlanError);
}

// ---- symmetry reduction --------------------------------------------------------------------

TEST(DesReduction, MatchesTheUnreducedSimulationWithinOnePercent) {
  // 128 GPUs in 32-GPU pods with 1:4 oversubscription, so shared uplinks matter.
  const hw::Cluster c = hw::load_cluster(std::string(SCALEPLAN_SOURCE_DIR) + "/tests/des/small-pods.yaml");
  const model::ModelSpec m = model::load_model("gpt3-2.7b");
  for (const char* text : {"tp=8,pp=2,mbs=1,gbs=64", "tp=2,pp=2,mbs=1,gbs=64", "tp=4,cp=2,pp=2,mbs=1,gbs=32,zero=1",
                           "tp=2,pp=4,vpp=2,schedule=interleaved,mbs=1,gbs=64", "tp=8,pp=8,mbs=1,gbs=32", "tp=4,pp=8,mbs=1,gbs=32,zero=3",
                           // CP all-gathers as flows: across nodes (one member per node), inside a node, two members per
                           // node on two nodes (CP hosts kept), and CP groups of a whole pod under pipelines crossing pods.
                           "tp=8,cp=2,pp=2,mbs=1,gbs=32,cp_algo=allgather", "tp=2,cp=4,pp=2,mbs=1,gbs=32,cp_algo=allgather,zero=1",
                           "tp=4,cp=4,pp=2,mbs=1,gbs=32,cp_algo=allgather", "tp=8,cp=4,pp=4,mbs=1,gbs=16,cp_algo=allgather,recompute=full",
                           "tp=2,pp=4,mbs=1,gbs=64,schedule=zero_bubble",
                           // TP groups of two nodes as flows (TP hosts kept, TP rank 0 runs), with all-gather CP.
                           "tp=16,pp=2,mbs=1,gbs=32,sp=on", "tp=16,cp=2,pp=2,mbs=1,gbs=32,cp_algo=allgather,recompute=full"}) {
    const strategies::Plan p = plan_for(m, c, text, 128);
    des::SimOptions red, full;
    full.reduce = false;
    red.timeline = full.timeline = false;
    const des::SimResult a = des::simulate(m, c, p, red);
    const des::SimResult b = des::simulate(m, c, p, full);
    EXPECT_EQ(b.simulated_ranks, 128);
    EXPECT_EQ(a.simulated_ranks, p.pp);  // one rank per stage: TP x CP and data-parallel replicas reduced
    EXPECT_LE(rel(a.report.time.step_s, b.report.time.step_s), 0.01) << text << ": reduced " << a.report.time.step_s << " s, full "
                                                                     << b.report.time.step_s << " s";
    std::printf("%s: reduced %.6f s, full %.6f s (%.3f %%)\n", text, a.report.time.step_s, b.report.time.step_s,
                100 * rel(a.report.time.step_s, b.report.time.step_s));
    ASSERT_EQ(a.links.size(), b.links.size());
    for (size_t i = 0; i < a.links.size(); ++i) {
      EXPECT_EQ(a.links[i].tier, b.links[i].tier);
      EXPECT_LE(std::fabs(a.links[i].mean_util - b.links[i].mean_util), 0.01)
          << text << " " << a.links[i].tier << " reduced " << a.links[i].mean_util << " full " << b.links[i].mean_util;
      EXPECT_LE(rel(a.links[i].bytes + 1, b.links[i].bytes + 1), 0.01)
          << text << " " << a.links[i].tier << " reduced " << a.links[i].bytes << " full " << b.links[i].bytes;
    }
  }
}

// ---- collectives as flows ------------------------------------------------------------------

TEST(DesCollectives, DataParallelRingMovesTheRingBytesAndTakesTheClosedFormTime) {
  // Pure data parallelism (pp = 1), no overlap: the step is compute + the gradient all-reduce +
  // the optimizer, and each NIC carries the ring's 2 (n-1)/n B each way.
  hw::Cluster c = hw::load_cluster("selene-a100");
  c.sw.dp_overlap = false;
  const model::ModelSpec m = model::load_model("gpt3-1.3b");
  const strategies::Plan p = plan_for(m, c, "tp=8,pp=1,mbs=1,gbs=4", 32);  // dp = 4, one GPU per node in each ring
  des::SimOptions o;
  o.bucket_params = 1e12;  // one bucket: a single all-reduce of the whole gradient
  const des::SimResult r = des::simulate(m, c, p, o);
  analytic::Estimator est(m, c);
  const double grad_bytes = 2.0 * est.params_on_stage(p, 0);
  const double n = p.dp;
  const double nic = c.net.nic_bw_Bps * c.net.bus_efficiency;
  const double ring_s = 2 * (n - 1) * c.net.latency_s + 2 * (n - 1) / n * grad_bytes / nic;  // FORMULAS.md ring
  EXPECT_NEAR(r.report.dp_comm_exposed_s, ring_s, 1e-3 * ring_s);
  const auto nic_tier = std::find_if(r.links.begin(), r.links.end(), [](const des::LinkTier& l) { return l.tier == "nic"; });
  ASSERT_NE(nic_tier, r.links.end());
  // All 32 GPUs' NICs, both directions: 2 x 32 x 2 (n-1)/n B.
  EXPECT_NEAR(nic_tier->bytes, 2 * 32 * 2 * (n - 1) / n * grad_bytes, 1e-3 * nic_tier->bytes);
  EXPECT_NEAR(r.report.time.step_s, r.analytic_step_s, 0.02 * r.analytic_step_s);
}

// ---- agreement with the analytic model -----------------------------------------------------

TEST(DesAgreement, WithinFivePercentOfTheAnalyticEstimateWithoutOversubscription) {
  const validation::RunsFile f = validation::load_runs("");
  int checked = 0;
  std::string table;
  for (const auto& run : f.runs) {
    // The rows of the groups the agreement was established on (SC21 Table 1, Korthikanti 2022,
    // Llama 3); groups added by docs/evidence.md (ZeRO-3 at dp 384-2240, FSDP at dp 512, ...) would
    // take minutes of simulation here (and the ZeRO-3 rows disagree by 7-22 %: docs/evidence.md).
    bool fitted = false;
    for (const char* pre : {"sc21-t1-", "kor22-", "llama3-405b-t4-"}) fitted = fitted || run.id.rfind(pre, 0) == 0;
    if (!fitted) continue;
    const validation::RunResult pred = validation::predict_run(run);
    if (!pred.supported) continue;
    const hw::Cluster c = flat(run.cluster);
    const strategies::Plan& p = pred.report.plan;
    des::SimOptions o;
    o.timeline = false;
    const des::SimResult r = des::simulate(run.model, c, p, o);
    const double ana = analytic::Estimator(run.model, c).evaluate(p).time.step_s;
    EXPECT_LE(rel(r.report.time.step_s, ana), 0.05) << run.id << ": simulated " << r.report.time.step_s << " s, analytic " << ana << " s ("
                                                     << p.to_string() << ")";
    table += run.id + " " + std::to_string(r.report.time.step_s / ana) + " (" + std::to_string(r.simulated_ranks) + " ranks, " +
             std::to_string(r.wall_s) + " s wall) " + p.to_string() + " tp " + std::to_string(r.report.tp_comm_exposed_s) + " dp " +
             std::to_string(r.report.dp_comm_exposed_s) + " bubble " + std::to_string(r.report.time.bubble_s) + "\n";
    ++checked;
  }
  EXPECT_GE(checked, 15) << table;
  std::printf("simulated / analytic step time per validation run:\n%s", table.c_str());
}

// ---- oversubscribed pods -------------------------------------------------------------------

TEST(DesOversubscription, CrossPodTrafficOnMetaSlowsTheStepAndTheAnalyticTermMisprices) {
  // meta-h100-roce: 3072-GPU pods, 1:7 above them; rank order [TP, CP, PP, DP] puts the DP ring
  // members 2048 ranks apart, so every DP ring crosses pods on most hops.
  const hw::Cluster meta = hw::load_cluster("meta-h100-roce");
  const model::ModelSpec m = model::load_model("llama3-70b");
  const strategies::Plan p = plan_for(m, meta, "tp=8,cp=16,pp=16,mbs=1,gbs=128", 16384);
  des::SimOptions o;
  o.timeline = false;
  const des::SimResult over = des::simulate(m, meta, p, o);
  const des::SimResult flat_r = des::simulate(m, flat(meta), p, o);
  // Without the oversubscription the simulator agrees with the analytic model ...
  EXPECT_LE(rel(flat_r.report.time.step_s, flat_r.analytic_step_s), 0.05);
  // ... with it the simulated step is clearly slower: the uplinks are the bottleneck ...
  EXPECT_GE(over.report.time.step_s, 1.15 * flat_r.report.time.step_s)
      << "oversubscribed " << over.report.time.step_s << " s vs flat " << flat_r.report.time.step_s << " s";
  const auto up = std::find_if(over.links.begin(), over.links.end(), [](const des::LinkTier& l) { return l.tier == "pod_uplink"; });
  ASSERT_NE(up, over.links.end());
  EXPECT_GT(up->max_util, 0.3);
  // ... and the analytic model's static per-collective pod factor prices that slowdown differently
  // from the simulated one by more than the 5 % agreement band (here it assumes every stage's
  // ring crosses at once; the pipeline staggers them).
  const double sim_slow = over.report.time.step_s - flat_r.report.time.step_s;
  const double ana_slow = over.analytic_step_s - flat_r.analytic_step_s;
  EXPECT_GT(std::fabs(ana_slow - sim_slow), 0.05 * over.report.time.step_s)
      << "analytic slowdown " << ana_slow << " s, simulated " << sim_slow << " s";
}

// ---- tensor parallelism across nodes as flows --------------------------------------------------

TEST(DesTensorFlows, CrossNodeTensorParallelismAsFlowsMatchesTheClosedFormAlone) {
  // tp 16 / 32 on 8-GPU nodes: the per-layer all-reduces (or SP all-gathers / reduce-scatters) run
  // as flows over NVLink and the NICs (the tuner's algorithm). Alone they take the closed form's
  // time; with data parallelism on a flat fabric they share the NICs with the gradient rings.
  const hw::Cluster c = flat(hw::load_cluster(std::string(SCALEPLAN_SOURCE_DIR) + "/tests/des/small-pods.yaml"));
  const model::ModelSpec m = model::load_model("gpt3-2.7b");
  des::SimOptions o;
  o.timeline = false;
  for (const auto& [text, gpus, tol] : {std::tuple{"tp=16,pp=1,mbs=1,gbs=8", 16LL, 0.002}, std::tuple{"tp=16,pp=2,mbs=1,gbs=8,sp=on", 32LL, 0.01},
                                        std::tuple{"tp=16,pp=2,mbs=1,gbs=32", 128LL, 0.02}, std::tuple{"tp=32,pp=1,mbs=1,gbs=32", 128LL, 0.02}}) {
    const strategies::Plan p = plan_for(m, c, text, gpus);
    const des::SimResult r = des::simulate(m, c, p, o);
    EXPECT_LE(rel(r.report.time.step_s, r.analytic_step_s), tol) << text << ": simulated " << r.report.time.step_s << " s, analytic " << r.analytic_step_s;
    EXPECT_GT(r.report.tp_comm_exposed_s, 0) << text;
    std::printf("%s on %lld GPUs: simulated %.5f s, analytic %.5f s\n", text, gpus, r.report.time.step_s, r.analytic_step_s);
  }
}

// ---- zero bubble -------------------------------------------------------------------------

TEST(DesZeroBubble, DeferredWeightGradientsShrinkTheBubbleAsTheAnalyticZbH1) {
  // ZB-H1 (Qi et al. 2023): B passes send the input gradient on, W passes fill the waits. The
  // simulated bubble shrinks against 1F1B, and the step agrees with the estimator's
  // max(m t_max, flush - 2 (p - 1) W) within 5 % once m >= 2p.
  const hw::Cluster c = hw::load_cluster("selene-a100");
  const model::ModelSpec m = model::load_model("gpt3-2.7b");
  des::SimOptions o;
  o.timeline = false;
  for (const char* gbs : {"64", "128"}) {
    const strategies::Plan p1 = plan_for(m, c, std::string("tp=2,pp=4,mbs=1,schedule=1f1b,gbs=") + gbs, 64);
    const strategies::Plan pz = plan_for(m, c, std::string("tp=2,pp=4,mbs=1,schedule=zero_bubble,gbs=") + gbs, 64);
    const des::SimResult a = des::simulate(m, c, p1, o);
    const des::SimResult z = des::simulate(m, c, pz, o);
    EXPECT_LT(z.report.time.bubble_s, 0.8 * a.report.time.bubble_s) << "gbs " << gbs << ": 1F1B bubble " << a.report.time.bubble_s
                                                                    << " s, zero bubble " << z.report.time.bubble_s << " s";
    EXPECT_LT(z.report.time.step_s, a.report.time.step_s);
    EXPECT_LE(rel(z.report.time.step_s, z.analytic_step_s), 0.05) << "gbs " << gbs << ": simulated " << z.report.time.step_s << " s, analytic "
                                                                  << z.analytic_step_s << " s";
    EXPECT_NEAR(z.report.time.compute_s, a.report.time.compute_s, 1e-9 * a.report.time.compute_s);  // same work, reordered
    std::printf("gbs %s: 1F1B %.4f s (bubble %.4f), zero bubble %.4f s (bubble %.4f), analytic zero bubble %.4f s\n", gbs, a.report.time.step_s,
                a.report.time.bubble_s, z.report.time.step_s, z.report.time.bubble_s, z.analytic_step_s);
  }
}

// ---- expert parallelism --------------------------------------------------------------------

TEST(DesExpert, AllToAllsAndExpertGradientsAsFlowsAgreeWithTheAnalyticEstimate) {
  // Mixtral 8x7B: the MoE dispatch/combine all-to-alls run as pairwise flows inside each EP group
  // (ep consecutive data-parallel ranks), the expert gradients reduce over the dp/ep ranks holding
  // the same experts, the dense ones over dp. Without contention that is the estimator's step.
  const hw::Cluster c = hw::load_cluster("selene-a100");
  const model::ModelSpec m = model::load_model("mixtral-8x7b");
  des::SimOptions o;
  o.timeline = false;
  for (const char* text : {"tp=2,pp=4,ep=2,gbs=64,recompute=full", "tp=2,pp=2,ep=8,gbs=64,zero=1,recompute=full"}) {
    const strategies::Plan p = plan_for(m, c, text, 64);
    const des::SimResult r = des::simulate(m, c, p, o);
    const strategies::StepReport a = analytic::Estimator(m, c).evaluate(p);
    EXPECT_LE(rel(r.report.time.step_s, a.time.step_s), 0.05) << text << ": simulated " << r.report.time.step_s << " s, analytic " << a.time.step_s;
    ASSERT_GT(a.ep_comm_exposed_s, 0);
    EXPECT_LE(rel(r.report.ep_comm_exposed_s, a.ep_comm_exposed_s), 0.05)
        << text << ": all-to-all simulated " << r.report.ep_comm_exposed_s << " s, analytic " << a.ep_comm_exposed_s;
    std::printf("%s: step %.4f / %.4f s, all-to-all %.4f / %.4f s\n", text, r.report.time.step_s, a.time.step_s, r.report.ep_comm_exposed_s,
                a.ep_comm_exposed_s);
  }
  // The reduction keeps it exact: EP groups of the replicas without a program ride along.
  const hw::Cluster pods = hw::load_cluster(std::string(SCALEPLAN_SOURCE_DIR) + "/tests/des/small-pods.yaml");
  const strategies::Plan p = plan_for(m, pods, "tp=2,pp=2,ep=4,gbs=64,zero=1,recompute=full", 128);
  des::SimOptions full = o;
  full.reduce = false;
  const des::SimResult a = des::simulate(m, pods, p, o);
  const des::SimResult b = des::simulate(m, pods, p, full);
  EXPECT_EQ(a.simulated_ranks, p.pp);
  EXPECT_EQ(b.simulated_ranks, 128);
  EXPECT_LE(rel(a.report.time.step_s, b.report.time.step_s), 0.01) << "reduced " << a.report.time.step_s << " s, full " << b.report.time.step_s;
  ASSERT_EQ(a.links.size(), b.links.size());
  for (size_t i = 0; i < a.links.size(); ++i)
    EXPECT_LE(rel(a.links[i].bytes + 1, b.links[i].bytes + 1), 0.01) << a.links[i].tier << " reduced " << a.links[i].bytes << " full " << b.links[i].bytes;
}

// ---- timeline ------------------------------------------------------------------------------

TEST(DesTimeline, SpansCoverTheStepWithoutOverlapOnTheComputeStream) {
  const hw::Cluster c = hw::load_cluster("selene-a100");
  const model::ModelSpec m = model::load_model("gpt3-2.7b");
  const strategies::Plan p = plan_for(m, c, "tp=2,pp=4,mbs=1,gbs=32", 64);
  const des::SimResult r = des::simulate(m, c, p);
  ASSERT_FALSE(r.timeline.spans.empty());
  std::map<int, std::vector<const strategies::Span*>> by_rank;
  for (const auto& s : r.timeline.spans)
    if (s.name.rfind("dp:", 0) != 0) by_rank[s.rank].push_back(&s);
  EXPECT_EQ(static_cast<long long>(by_rank.size()), r.simulated_ranks);
  for (auto& [rank, v] : by_rank) {
    std::sort(v.begin(), v.end(), [](auto* a, auto* b) { return a->start_s < b->start_s; });
    int fwd = 0, bwd = 0;
    for (size_t i = 0; i < v.size(); ++i) {
      if (i > 0) {
        EXPECT_GE(v[i]->start_s + 1e-12, v[i - 1]->start_s + v[i - 1]->dur_s) << "rank " << rank;
      }
      if (v[i]->kind == strategies::SpanKind::compute && v[i]->name[0] == 'F') ++fwd;
      if (v[i]->kind == strategies::SpanKind::compute && v[i]->name[0] == 'B') ++bwd;
    }
    EXPECT_EQ(fwd, p.microbatches()) << "rank " << rank;
    EXPECT_EQ(bwd, p.microbatches()) << "rank " << rank;
  }
  EXPECT_NEAR(r.timeline.end_s(), r.report.time.step_s - c.sw.step_overhead_s, 1e-9);
  const auto j = nlohmann::json::parse(des::chrome_trace(r.timeline));
  ASSERT_TRUE(j.contains("traceEvents"));
  int x = 0;
  for (const auto& e : j["traceEvents"]) {
    if (e["ph"] == "X") {
      ++x;
      EXPECT_GE(e["dur"].get<double>(), 0);
      EXPECT_TRUE(e.contains("pid") && e.contains("tid") && e.contains("cat"));
    }
  }
  EXPECT_EQ(x, static_cast<int>(r.timeline.spans.size()));
}

}  // namespace


namespace {

// ---- context parallel as flows -------------------------------------------------------------

TEST(DesContention, DataParallelTrafficSlowsTheContextParallelReduceScattersTheAnalyticModelTimesAlone) {
  // Llama 3 70B, tp 8 x cp 16 (all-gather CP, Llama 3 sec. 3.3.2) x pp 16 on meta-h100-roce: each CP
  // group spans 16 nodes, so its K/V all-gathers and dK/dV reduce-scatters are NIC flows. Alone
  // (dp = 1) the simulation reproduces the analytic step. With dp = 8 (same microbatches per
  // pipeline) each stage's gradient buckets leave during its last backward on the same NICs as that
  // backward's CP reduce-scatters, which then outlast the weight-gradient GEMMs; the delay runs
  // down the pipeline's cool-down to stage 0. The analytic model times each collective alone: its
  // TP/CP and bubble terms are the same for dp = 1 and dp = 8. The flat fabric isolates the effect
  // (with 1:7 the static pod factor over-prices the reduction itself, DesOversubscription).
  const hw::Cluster meta = flat(hw::load_cluster("meta-h100-roce"));
  const model::ModelSpec m = model::load_model("llama3-70b");
  des::SimOptions o;
  o.timeline = false;
  const strategies::Plan alone_p = plan_for(m, meta, "tp=8,cp=16,pp=16,mbs=1,gbs=16,cp_algo=allgather,zero=1", 2048);
  const strategies::Plan shared_p = plan_for(m, meta, "tp=8,cp=16,pp=16,mbs=1,gbs=128,cp_algo=allgather,zero=1", 16384);
  ASSERT_EQ(alone_p.dp, 1);
  ASSERT_EQ(shared_p.dp, 8);
  ASSERT_EQ(alone_p.microbatches(), shared_p.microbatches());
  const des::SimResult alone = des::simulate(m, meta, alone_p, o);
  const des::SimResult shared = des::simulate(m, meta, shared_p, o);
  EXPECT_LE(rel(alone.report.time.step_s, alone.analytic_step_s), 0.01)
      << "alone: simulated " << alone.report.time.step_s << " s, analytic " << alone.analytic_step_s;
  // What is neither compute nor the data-parallel reduction: TP/CP exposure + pipeline waits.
  auto rest = [](const strategies::StepReport& r) { return r.tp_comm_exposed_s + r.time.bubble_s; };
  analytic::Estimator est(m, meta);
  const double ana_growth = rest(est.evaluate(shared_p)) - rest(est.evaluate(alone_p));
  const double sim_growth = rest(shared.report) - rest(alone.report);
  EXPECT_NEAR(ana_growth, 0, 1e-9);
  EXPECT_GT(shared.report.tp_comm_exposed_s, alone.report.tp_comm_exposed_s);  // the CP reduce-scatters wait longer
  EXPECT_GE(sim_growth, 0.01 * shared.report.time.step_s)
      << "TP/CP + bubble: dp 1 " << rest(alone.report) << " s, dp 8 " << rest(shared.report) << " s (step " << shared.report.time.step_s << " s)";
  std::printf("TP/CP + bubble, simulated: dp 1 %.4f s, dp 8 %.4f s (+%.1f%% of the step); analytic +%.4f s; step sim/analytic dp 1 %.4f, dp 8 %.4f\n",
              rest(alone.report), rest(shared.report), 100 * sim_growth / shared.report.time.step_s, ana_growth,
              alone.report.time.step_s / alone.analytic_step_s, shared.report.time.step_s / shared.analytic_step_s);
}

}  // namespace

// ---- NIC share per GPU (issue 23) ----------------------------------------------------------

namespace {
// ZeRO-3 on 16 GPUs (2 nodes) without prefetch (every gather and reduce-scatter exposed): per
// microbatch two parameter all-gathers and one gradient reduce-scatter, each a flat ring of the dp
// group at one GPU's NIC share: (n-1) latencies + (n-1)/n B / share.
double zero3_hand_s(const analytic::Estimator& est, const strategies::Plan& p, const hw::Cluster& c) {
  const double B = 2.0 * est.params_on_stage(p, 0);  // bf16 parameters = bf16 gradients
  const double n = p.dp;
  const double share = hw::nic_share(c, hw::make_group(c, p.dp, p.tp));
  const double ring = (n - 1) * c.net.latency_s + (n - 1) / n * B / share;
  return static_cast<double>(p.microbatches()) * 3 * ring;
}
}  // namespace

TEST(DesNicShare, Zero3GathersAtOneNicShareTp1VsTp8And8Vs4NicsAnalyticAndDesAgree) {
  const model::ModelSpec m = model::load_model("gpt3-1.3b");
  for (int nics : {8, 4}) {
    hw::Cluster c = flat(hw::load_cluster("selene-a100"));
    c.sw.dp_overlap = false;
    c.sw.zero3_prefetch_depth = 0;
    c.net.nics_per_node = nics;
    c.net.nic_bw_Bps = 25e9 * nics / 8;  // 200 Gb/s NICs: 8 per node, or 4 shared by two GPUs each
    for (const char* text : {"tp=1,pp=1,mbs=1,gbs=32,zero=3", "tp=8,pp=1,mbs=1,gbs=4,zero=3"}) {
      const strategies::Plan p = plan_for(m, c, text, 16);
      analytic::Estimator est(m, c);
      const double hand = zero3_hand_s(est, p, c);
      const double ana = est.evaluate(p).dp_comm_exposed_s;
      EXPECT_NEAR(ana, hand, 1e-3 * hand) << text << " nics " << nics;
      des::SimOptions o;
      o.timeline = false;
      const des::SimResult r = des::simulate(m, c, p, o);
      EXPECT_NEAR(r.report.dp_comm_exposed_s, hand, 0.03 * hand) << text << " nics " << nics << ": simulated "
                                                                 << r.report.dp_comm_exposed_s << " s, hand " << hand << " s";
      std::printf("%s nics %d: hand %.4f s analytic %.4f s simulated %.4f s\n", text, nics, hand, ana, r.report.dp_comm_exposed_s);
    }
  }
}
