// Failures, checkpoints and goodput (issue 19): Young/Daly and the wall-time model against hand-computed
// cases, rates from a profile, checkpoint size from the plan, bad input, zero failures = failure-free
// numbers exactly, and Llama 3 405B on 16,384 H100 against the published interruptions and
// effective training time.
#include <gtest/gtest.h>

#include <cmath>
#include <string>

#include "common/errors.hpp"
#include "hardware/cluster.hpp"
#include "hardware/failures.hpp"
#include "model/model.hpp"
#include "simulator/analytic/estimator.hpp"
#include "simulator/search/goodput.hpp"
#include "simulator/search/plan_cluster.hpp"
#include "simulator/search/scale.hpp"
#include "simulator/search/train_goodput.hpp"

namespace {

using namespace scaleplan;
using search::CheckpointMode;

TEST(Goodput, YoungInterval) {
  // sqrt(2 x 60 s x 3600 s) = sqrt(432000) = 657.267 s.
  EXPECT_NEAR(search::young_interval_s(60, 3600), 657.2671, 1e-3);
}

TEST(Goodput, DalyInterval) {
  // x = 60/7200 = 0.008333: 657.267 x (1 + 0.091287/3 + 0.008333/9) - 60 = 657.267 x 1.031355 - 60 = 617.876 s.
  EXPECT_NEAR(search::daly_interval_s(60, 3600), 617.8756, 1e-3);
  // delta >= 2M: checkpoint every M.
  EXPECT_DOUBLE_EQ(search::daly_interval_s(8000, 3600), 3600);
}

TEST(Goodput, DalyWallTime) {
  // M=3600, R=300, tau=600, delta=60, T_s=36000: 3600 e^{1/12} (e^{660/3600} - 1) 36000/600
  //   = 3600 x 1.0869040 x 0.2012153 x 60 = 47239.44 s.
  EXPECT_NEAR(search::daly_wall_s(36000, 600, 60, 300, 3600), 47239.44, 0.05);
  // M -> infinity: no failure, only the checkpoints: T_s (tau + delta)/tau.
  EXPECT_NEAR(search::daly_wall_s(36000, 600, 60, 300, 1e12), 36000 * 660.0 / 600.0, 1e-2);
}

const char* kProfile = R"(name: test
observed: {gpus: 1000, gpus_per_node: 8, days: 10}
causes:
  gpu: {scope: gpu, interruptions: 100}
  host: {scope: node, interruptions: 25}
  maintenance: {scope: node, planned: true, interruptions: 5}
recovery: {detect_s: 120, restart_s: 60}
)";

TEST(Goodput, RatesFromProfile) {
  const hw::FailureProfile f = hw::parse_failures(kProfile, "test.yaml");
  // gpu: 100 / (864000 s x 1000 GPUs) per GPU-s; host: 25 / (864000 x 125 nodes) per node-s.
  // A job of 2000 GPUs (250 nodes): 100 x 2 / 864000 + 25 x 2 / 864000 = 250 / 864000 per s.
  EXPECT_NEAR(f.unplanned_rate_per_s(2000, 8), 250.0 / 864000.0, 1e-15);
  EXPECT_NEAR(f.planned_rate_per_s(2000, 8), 10.0 / 864000.0, 1e-15);
  // 12 GPUs on 8-GPU nodes hold 2 nodes.
  EXPECT_NEAR(f.unplanned_rate_per_s(12, 8), (100.0 * 12 / 1000 + 25.0 * 2 / 125) / 864000.0, 1e-15);
}

hw::Cluster test_cluster() {
  hw::Cluster c = hw::load_cluster("dgx-h100");
  c.storage.per_node_Bps = 10e9;
  c.storage.write_Bps = 40e9;
  c.storage.read_Bps = 0;  // not given: nodes x per node
  return c;
}

TEST(Goodput, HandComputedRun) {
  const hw::FailureProfile f = hw::parse_failures(kProfile, "test.yaml");
  const hw::Cluster c = test_cluster();
  const search::GoodputModel g = search::goodput_model(f, c, 2000, CheckpointMode::blocking);
  // 250 nodes x 10 GB/s = 2.5 TB/s links; the 40 GB/s file system binds writes; reads 2.5 TB/s.
  EXPECT_DOUBLE_EQ(g.write_Bps, 40e9);
  EXPECT_DOUBLE_EQ(g.read_Bps, 2500e9);
  const double bytes = 2.4e12;  // write 60 s, read 0.96 s
  const search::Goodput r = search::goodput(g, 864000, bytes);
  const double M = 864000.0 / 250.0;  // 3456 s
  EXPECT_NEAR(r.mtbf_s, M, 1e-9);
  EXPECT_NEAR(r.write_s, 60, 1e-12);
  EXPECT_NEAR(r.read_s, 0.96, 1e-12);
  const double tau = search::daly_interval_s(60, M);
  EXPECT_NEAR(r.interval_s, tau, 1e-9);
  // Unplanned: Daly with R = 120 + 60 + 0.96; planned: 10/864000 per s x (60 + 60 + 0.96) s busy.
  const double w_u = M * std::exp(180.96 / M) * std::expm1((tau + 60) / M) * 864000 / tau;
  const double w = w_u / (1 - 10.0 / 864000.0 * 120.96);
  EXPECT_NEAR(r.wall_s, w, 1e-6 * w);
  EXPECT_NEAR(r.fraction, 864000 / w, 1e-9);
  EXPECT_NEAR(r.interruptions, w / M, 1e-9);
  EXPECT_NEAR(r.checkpoint_s + r.lost_s + r.restart_s, w - 864000, 1e-6 * w);
  EXPECT_NEAR(r.checkpoint_s, 864000 / tau * 60, 1e-6);
  // Term by term: per segment (tau + 60 s) e^{s/M} - 1 failures, each losing M - s/(e^{s/M} - 1) of work.
  const double seg = tau + 60, fails = std::expm1(seg / M);
  EXPECT_NEAR(r.lost_s, 864000 / tau * (M * fails - seg), 1e-6 * r.lost_s);
  EXPECT_NEAR(r.restart_s, 864000 / tau * fails * M * std::expm1(180.96 / M) + (w - w_u), 1e-6 * r.restart_s);
  // Checkpoints fall between optimizer steps: with 100 s steps, a whole number of them.
  const search::Goodput rs = search::goodput(g, 864000, bytes, 100.0);
  EXPECT_DOUBLE_EQ(rs.interval_s, 100.0 * std::round(tau / 100.0));
  EXPECT_DOUBLE_EQ(search::goodput(g, 864000, bytes, 5000.0).interval_s, 5000.0);  // at least one step
  EXPECT_DOUBLE_EQ(search::goodput_wall_s(g, 864000, bytes, 100.0), rs.wall_s);
  // Async: blocks only for the device->host copy (2.4e12 / 2000 GPUs / 50 GB/s PCIe = 0.024 s), loses
  // the write in flight; the interval is at least the write.
  const search::GoodputModel ga = search::goodput_model(f, c, 2000, CheckpointMode::async);
  const search::Goodput ra = search::goodput(ga, 864000, bytes);
  EXPECT_NEAR(ra.blocking_s, 2.4e12 / 2000 / c.host.pcie_Bps, 1e-12);
  EXPECT_GE(ra.interval_s, ra.write_s);
  EXPECT_GT(ra.fraction, r.fraction);  // here the write dominates delta: async wins
}

TEST(Goodput, ZeroFailuresIsFailureFree) {
  const hw::FailureProfile none = hw::load_failures("none");
  const search::GoodputModel g = search::goodput_model(none, test_cluster(), 4096, CheckpointMode::blocking);
  const search::Goodput r = search::goodput(g, 123456.789, 1e12);
  EXPECT_EQ(r.wall_s, 123456.789);  // exactly, not approximately
  EXPECT_EQ(r.fraction, 1.0);
  EXPECT_EQ(r.interruptions, 0.0);
  EXPECT_EQ(r.checkpoint_s + r.lost_s + r.restart_s, 0.0);
  EXPECT_EQ(r.interval_s, 0.0);
  // A profile whose counts are all zero is the same.
  const std::string zero = R"(name: zero
observed: {gpus: 1000, gpus_per_node: 8, days: 10}
causes: {gpu: {scope: gpu, interruptions: 0}}
recovery: {detect_s: 120, restart_s: 60}
)";
  const search::GoodputModel gz = search::goodput_model(hw::parse_failures(zero, "z.yaml"), test_cluster(), 4096, CheckpointMode::blocking);
  EXPECT_EQ(search::goodput(gz, 5000.0, 1e12).wall_s, 5000.0);
  EXPECT_EQ(search::goodput_wall_s(gz, 5000.0, 1e12), 5000.0);
}

TEST(Goodput, CheckpointBytesFromPlan) {
  strategies::Plan p;
  p.dp = 4;
  p.tp = 2;
  p.pp = 2;
  p.zero = 1;
  strategies::MemoryBreakdown m;
  m.params = 1e9;     // replicated over dp: 16 GPUs x 1e9 / 4 = 4e9 unique
  m.optimizer = 5e8;  // sharded over dp (zero=1): 16 x 5e8 = 8e9
  EXPECT_DOUBLE_EQ(search::checkpoint_bytes(p, m), 12e9);
  p.zero = 0;  // optimizer replicated too: 16 x 5e8 / 4 = 2e9
  EXPECT_DOUBLE_EQ(search::checkpoint_bytes(p, m), 6e9);
  p.zero = 3;  // sharded; params also hold ZeRO-3's gathered layer: weights = 2/12 of the 8e9 of states
  EXPECT_DOUBLE_EQ(search::checkpoint_bytes(p, m), 8e9 + 8e9 / 6.0);
}

TEST(Goodput, BadInput) {
  std::string neg = kProfile;
  neg.replace(neg.find("interruptions: 100"), 18, "interruptions: -3");
  EXPECT_THROW(hw::parse_failures(neg, "neg.yaml"), ConfigError);
  std::string days = kProfile;
  days.replace(days.find("days: 10"), 8, "days: 0");
  EXPECT_THROW(hw::parse_failures(days, "days.yaml"), ConfigError);
  EXPECT_THROW(hw::load_failures("no-such-profile"), UsageError);
  EXPECT_THROW(search::parse_checkpoint_mode("sometimes"), UsageError);
  // Zero storage bandwidth: a parse error on the cluster, and an error when modelled in code.
  const std::string cl = "name: x\ndevice: h100-sxm-80gb\nnode: {gpus: 8, intra: {kind: nvswitch, bw_GBps: 450}}\n"
                         "network: {nic_Gbps_per_gpu: 400}\nstorage: {per_node_GBps: 0}\n";
  EXPECT_THROW(hw::parse_cluster(cl, "x.yaml"), ConfigError);
  hw::Cluster c = test_cluster();
  c.storage = {};
  EXPECT_THROW(search::goodput_model(hw::parse_failures(kProfile, "t.yaml"), c, 64, CheckpointMode::blocking), UsageError);
  // ... but not when no failure is modelled.
  EXPECT_NO_THROW(search::goodput_model(hw::load_failures("none"), c, 64, CheckpointMode::blocking));
}

TEST(PlanCluster, AutoCountsAndDefaultBatch) {
  const std::vector<long long> c = search::auto_gpu_counts(64, 32768, 40, 8);
  ASSERT_EQ(c.size(), 40u);
  EXPECT_EQ(c.front(), 64);
  EXPECT_EQ(c.back(), 32768);
  for (long long n : c) {
    EXPECT_EQ(n % 8, 0) << n;
    long long odd = n;  // 2^k x {1, 9, 5, 11, 3, 7}
    while (odd % 2 == 0) odd /= 2;
    EXPECT_TRUE(odd == 1 || odd == 3 || odd == 5 || odd == 7 || odd == 9 || odd == 11) << n;
  }
  search::BatchModel b;
  b.b_noise_tokens = 4e6;
  EXPECT_EQ(search::noise_batch_sequences(b, 8192), 512);   // 488 sequences -> 512
  EXPECT_EQ(search::noise_batch_sequences(b, 2048), 2048);  // 1953 -> 2048
}

// Llama 3 405B on 16,384 H100 for 15.6T tokens (Llama 3 Herd of Models, sec. 3.3.4): 419 unexpected
// interruptions in a 54-day snapshot of pre-training, "higher than 90% effective training time".
// The 54 days are a window, not the run: the run's own count is rate x its predicted wall time, and
// scaled back to 54 days of wall clock it must match 419.
TEST(Goodput, Llama3_405B) {
  const model::ModelSpec m = model::load_model("llama3-405b");
  const hw::Cluster c = hw::load_cluster("meta-h100-roce");
  analytic::Estimator est(m, c);
  search::BatchChoice b;
  b.gbs = 2048;  // 16M tokens at 8K (sec. 3.4.1, the batch of most of the run)
  b.model = search::batch_model(m, search::Optimizer::adam);
  search::SearchSpec base;
  base.objective = search::Objective::time;
  base.top_k = 1;
  const search::Budget r = search::run_budget(est, base, b, 16384, 15.6e12, 0);
  ASSERT_TRUE(r.at.ok());
  ASSERT_EQ(r.at.used, 16384);
  const hw::FailureProfile f = search::resolve_failures({}, c);
  ASSERT_EQ(f.name, "llama3-h100");
  const search::TrainGoodput t =
      search::train_goodput(c, f, {}, r.at.best(), r.at.used, r.train.seconds, r.price_usd_per_gpu_hour, r.power_W_per_gpu);
  const double in_54_days = t.g.interruptions / t.days * 54.0;
  EXPECT_NEAR(in_54_days, 419.0, 0.25 * 419.0);
  EXPECT_GT(t.days, 54.0);                       // the whole run is longer than the snapshot...
  EXPECT_GT(t.g.interruptions, 419.0);           // ... so it sees more interruptions
  EXPECT_NEAR(t.g.fraction, 0.90, 0.03);         // effective training time "higher than 90%"
  EXPECT_NEAR(t.g.mtbf_s / 3600.0, 3.09, 0.05);  // 54 x 24 h / 419
  EXPECT_NEAR(t.days, r.days / t.g.fraction, 1e-9 * t.days);
  EXPECT_GT(t.usd, r.usd);
}

}  // namespace
