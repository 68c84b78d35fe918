// strategies/offload.hpp and strategies/chunks.hpp (issue 6): offload memory and step time pinned to
// hand-computed numbers, the chunk-size search and furthest-future eviction, the plan rules, and
// the estimator's use of them.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <string>
#include <vector>

#include "common/errors.hpp"
#include "simulator/analytic/estimator.hpp"
#include "simulator/search/search.hpp"
#include "strategies/chunks.hpp"
#include "strategies/offload.hpp"

namespace {

using namespace scaleplan;
using strategies::Offload;
using strategies::Plan;

void expect_rel(double actual, double expected, double rel = 1e-12) {
  EXPECT_NEAR(actual, expected, std::fabs(expected) * rel) << "actual " << actual << " expected " << expected;
}

const strategies::Recipe kZero = strategies::recipe_zero_paper(strategies::Precision::fp16);
constexpr double kP = 13e9;  // ZeRO-Offload's 13B

// ---------------------------------------------------------------- memory per mode
TEST(OffloadStates, ZeroOffloadKeeps16BitWeightsAndOneBucketOnTheGpu) {
  // Ren et al. 2021 Fig. 2: GPU 2M (fp16 params) + the gradient bucket; host: 12M optimizer + fp32
  // gradient, x 1.5 (DeepSpeed estimate_zero2_model_states_mem_needs, cpu_offload: 16 x 1.5 = 24).
  const auto s = strategies::offload_states(kZero, Offload::optimizer, kP, 2, 1, 0);
  EXPECT_EQ(s.gpu.params, 2 * kP);
  EXPECT_EQ(s.gpu.grads, 2 * 5e8);
  EXPECT_EQ(s.gpu.optimizer, 0);
  expect_rel(s.host, 24 * kP);
  EXPECT_EQ(s.nvme, 0);
  // dp = 16: the host states are partitioned (ZeRO-2), the 16-bit weights are not.
  const auto d = strategies::offload_states(kZero, Offload::optimizer, kP, 2, 16, 0);
  EXPECT_EQ(d.gpu.params, 2 * kP);
  expect_rel(d.host, 24 * kP / 16);
}

TEST(OffloadStates, Zero3OffloadLeavesOneLayerOnTheGpuAnd27BytesOnTheHost) {
  // DeepSpeed estimate_zero3_model_states_mem_needs (params + optimizer offloaded): GPU 4 P_L,
  // CPU 18 P x 1.5 = 27 P.
  const double PL = 12.0 * 5120 * 5120;
  const auto s = strategies::offload_states(kZero, Offload::params, kP, 3, 1, PL);
  EXPECT_EQ(s.gpu.params, 4 * PL);
  EXPECT_EQ(s.gpu.grads + s.gpu.optimizer, 0);
  expect_rel(s.host, 27 * kP);
}

TEST(OffloadStates, ZeroInfinityPutsWeightsAndOptimizerOnNvme) {
  const double PL = 1e9;
  const auto s = strategies::offload_states(kZero, Offload::nvme, kP, 3, 8, PL);
  EXPECT_EQ(s.gpu.params, 4 * PL);
  expect_rel(s.nvme, 14 * kP / 8);                   // 2 + 12 B per parameter shard
  expect_rel(s.host, 2 * kP / 8 + 2 * 5 * 1e8);      // 16-bit gradients + 5 staging buffers of 1e8 elements
}

TEST(OffloadStates, NoneIsModelStates) {
  const auto s = strategies::offload_states(kZero, Offload::none, kP, 1, 16, 0);
  const auto m = strategies::model_states(kZero, kP, 1, 16, 0);
  EXPECT_EQ(s.gpu.total(), m.total());
  EXPECT_EQ(s.host, 0);
}

// ---------------------------------------------------------------- host share and step time
hw::Host dgx2_host() {
  hw::Host h;
  h.memory_bytes = 1536.0 * 1024 * 1024 * 1024;
  h.mem_bw_Bps = 256e9;
  h.flops_fp32 = 8.3e12;
  h.pcie_Bps = 12e9;
  h.nvme_bytes = 30e12;
  h.nvme_Bps = 20e9;
  return h;
}

TEST(HostShare, SixteenGpusSplitTheNodeAndDramCapsPcie) {
  const auto s = strategies::host_share(dgx2_host(), 16);
  EXPECT_EQ(s.flops, 8.3e12 / 16);
  EXPECT_EQ(s.mem_bw, 16e9);
  EXPECT_EQ(s.pcie, 12e9);  // 12 GB/s link < 16 GB/s DRAM share
  const auto one = strategies::host_share(dgx2_host(), 1);
  EXPECT_EQ(one.pcie, 12e9);
  EXPECT_EQ(one.memory, dgx2_host().memory_bytes);
  hw::Host slow = dgx2_host();
  slow.mem_bw_Bps = 136e9;  // 8.5 GB/s each of 16 < 12 GB/s link
  EXPECT_EQ(strategies::host_share(slow, 16).pcie, 8.5e9);
}

TEST(CpuAdam, IsTheSlowerOfFlopsAndDram) {
  const auto s = strategies::host_share(dgx2_host(), 1);
  // 13e9 params: DRAM 32 B x 13e9 / 256e9 = 1.625 s; FLOP 14 x 13e9 / 8.3e12 = 21.9 ms.
  expect_rel(strategies::cpu_adam_time(kP, s), 32 * kP / 256e9);
  hw::Host weak = dgx2_host();
  weak.flops_fp32 = 1e11;  // 14 x 13e9 / 1e11 = 1.82 s > 1.625 s
  expect_rel(strategies::cpu_adam_time(kP, strategies::host_share(weak, 1)), 14 * kP / 1e11);
}

TEST(OffloadStep, ZeroOffloadOverlapsGradientsWithBackwardAndWaitsForAdam) {
  const auto hs = strategies::host_share(dgx2_host(), 1);
  strategies::OffloadStepInput in;
  in.params_shard = kP;
  in.microbatches = 2;
  in.compute_per_mb_s = 3.0;
  in.backward_per_mb_s = 2.0;
  const auto r = strategies::offload_step(Offload::optimizer, hs, in);
  const double d2h = 2 * kP / 12e9;  // 2.167 s per microbatch, 2.0 s of it hidden
  const double h2d = 2 * kP / 12e9;
  const double adam = 32 * kP / 256e9;
  expect_rel(r.pcie_bytes, 2 * 2 * kP + 2 * kP);
  expect_rel(r.exposed_s, 2 * (d2h - 2.0) + std::max(adam, h2d));
  EXPECT_EQ(r.nvme_bytes, 0);
}

TEST(OffloadStep, Zero3OffloadFetchesWeightsTwicePerMicrobatch) {
  const auto hs = strategies::host_share(dgx2_host(), 1);
  strategies::OffloadStepInput in;
  in.params_shard = kP;
  in.microbatches = 3;
  in.compute_per_mb_s = 1.0;
  const auto r = strategies::offload_step(Offload::params, hs, in);
  const double mb = 6 * kP;  // fetch 2 B forward + 2 B backward, gradients 2 B back
  expect_rel(r.pcie_bytes, 3 * mb);
  expect_rel(r.exposed_s, 3 * (mb / 12e9 - 1.0) + 32 * kP / 256e9);
}

TEST(OffloadStep, ZeroInfinityIsBoundByNvme) {
  const auto hs = strategies::host_share(dgx2_host(), 16);  // 20 GB/s / 16 = 1.25 GB/s of NVMe each
  strategies::OffloadStepInput in;
  in.params_shard = kP / 16;
  in.microbatches = 1;
  in.compute_per_mb_s = 0.5;
  const auto r = strategies::offload_step(Offload::nvme, hs, in);
  const double U = kP / 16, nv = 20e9 / 16;
  const double t_mb = std::max(6 * U / 12e9, 4 * U / nv);
  const double opt = (24 + 2) * U / nv;  // read 12, write 12 + 2 B per parameter
  expect_rel(r.nvme_bytes, 4 * U + 26 * U);
  expect_rel(r.exposed_s, (t_mb - 0.5) + std::max(32 * U / 16e9, opt));
}

// ---------------------------------------------------------------- chunks
TEST(Chunks, NextFitWasteByHand) {
  // chunk 10: [4,4] waste 2 | [7] -> 3 | [3] + [5]? 3+5 = 8 <= 10 -> [3,5] waste 2 -> total 7, 3 chunks
  long long n = 0;
  EXPECT_EQ(strategies::packed_waste({4, 4, 7, 3, 5}, 10, &n), 2 + 3 + 2);
  EXPECT_EQ(n, 3);
  // A tensor larger than the chunk gets a chunk of its own size (no waste of its own).
  EXPECT_EQ(strategies::packed_waste({4, 25, 4}, 10, &n), 6 + 6);
  EXPECT_EQ(n, 3);
}

TEST(Chunks, SearchPicksTheLeastWaste) {
  // Tensors 5, 7, 6 (next fit, in order), min chunk 1, range 12, interval 1: sizes 7..19.
  // 7: [5][7][6] waste 2+0+1 = 3; 12: [5,7][6] waste 6; 13: [5,7][6] waste 1+7 = 8; 18: [5,7,6] waste 0.
  strategies::ChunkSearch s;
  s.min_chunk_elems = 1;
  s.search_range_elems = 12;
  s.interval_elems = 1;
  EXPECT_EQ(strategies::packed_waste({5, 7, 6}, 7), 3);
  EXPECT_EQ(strategies::packed_waste({5, 7, 6}, 12), 6);
  EXPECT_EQ(strategies::packed_waste({5, 7, 6}, 13), 8);
  const auto c = strategies::search_chunk_configuration({5, 7, 6}, 1, s);
  EXPECT_EQ(c.chunk_elems, 18);
  EXPECT_EQ(c.wasted_elems, 0);
  EXPECT_EQ(c.chunks, 1);
  // dp = 4: rounded up to a multiple of 4 (20), waste 2.
  const auto d = strategies::search_chunk_configuration({5, 7, 6}, 4, s);
  EXPECT_EQ(d.chunk_elems, 20);
  EXPECT_EQ(d.wasted_elems, 2);
}

TEST(Chunks, ExtraLargeEmbeddingIsLeftOutOfTheSearch) {
  // GPT-3 13B-shaped stage: the word embedding (50257 x 5120) is above mean + 3 sd of the tensor
  // sizes, so the search starts at the largest MLP matrix (4 h^2) and wastes < 2%.
  model::ModelSpec m;
  m.layers = 40;
  m.hidden = 5120;
  m.heads = 40;
  m.kv_heads = 40;
  m.ffn = 20480;
  m.vocab = 50257;
  m.seq = 1024;
  const auto t = strategies::stage_tensors(m, 1, 1, 40, true, true, false);
  const auto c = strategies::search_chunk_configuration(t, 1, {}, 5120);
  EXPECT_GE(c.chunk_elems, 4.0 * 5120 * 5120);
  EXPECT_LT(c.chunk_elems, 4.0 * 5120 * 5120 + 32.0 * 1024 * 1024 + 5120);
  EXPECT_LT(c.waste_fraction(), 0.02);
  EXPECT_EQ(c.largest_elems, 50257.0 * 5120);
  double sum = 0;
  for (double x : t) sum += x;
  expect_rel(sum, m.total_params());  // the tensor list is the model
}

TEST(Chunks, EarlyStoppedPackingDecidesAsTheFullOne) {
  // packed_waste with stop_at (the search's pruning): >= stop_at exactly when the full waste is.
  const std::vector<double> t = {5, 7, 6, 3, 9, 2, 8, 4};
  for (double chunk = 9; chunk <= 30; ++chunk) {
    const double full = strategies::packed_waste(t, chunk);
    for (double stop = 0; stop <= full + 2; stop += 0.5) {
      const double w = strategies::packed_waste(t, chunk, nullptr, stop);
      EXPECT_EQ(w >= stop, full >= stop) << "chunk " << chunk << " stop " << stop;
      if (w < stop) {
        EXPECT_EQ(w, full);
      }
    }
  }
}

TEST(Chunks, PrunedSearchPicksWhatTryingEveryCandidatePicks) {
  // search_chunk_elems skips candidates by a lower bound and stops packings early; the pick must be
  // the one of packing every candidate in full (first minimum, ties to the smaller chunk).
  strategies::ChunkSearch s;
  s.min_chunk_elems = 1;
  s.search_range_elems = 400;
  s.interval_elems = 1;
  unsigned x = 12345;
  for (int trial = 0; trial < 200; ++trial) {
    std::vector<double> t;
    const int n = 5 + trial % 40;
    for (int i = 0; i < n; ++i) {
      x = x * 1103515245u + 12345u;
      t.push_back(static_cast<double>(20 + (x >> 16) % 60));  // 20..79: none is extra-large
    }
    double largest = 0;
    for (double v : t) largest = std::max(largest, v);
    double best = largest, best_waste = std::numeric_limits<double>::infinity();
    for (double c = largest; c <= largest + s.search_range_elems; c += 1) {
      const double w = strategies::packed_waste(t, c);
      if (w < best_waste) {
        best_waste = w;
        best = c;
      }
    }
    EXPECT_EQ(strategies::search_chunk_elems(t, s), best) << "trial " << trial;
  }
}

TEST(Chunks, SearchSplitsIntoTheDpFreeSearchAndTheDpRounding) {
  // search_chunk_configuration = chunk_configuration(search_chunk_elems): the search does not read
  // dp, so the search (simulator/search ChunkCache) runs it once per (tp, ep, pp) for every dp.
  model::ModelSpec m = model::load_model("gpt3-13b");
  const auto t = strategies::stage_tensors(m, 2, 1, 10, true, false, true);
  const double best = strategies::search_chunk_elems(t, {}, static_cast<double>(m.hidden));
  for (int dp : {1, 3, 8, 64}) {
    const auto a = strategies::search_chunk_configuration(t, dp, {}, static_cast<double>(m.hidden));
    const auto b = strategies::chunk_configuration(t, best, dp);
    EXPECT_EQ(a.chunk_elems, b.chunk_elems);
    EXPECT_EQ(a.chunks, b.chunks);
    EXPECT_EQ(a.wasted_elems, b.wasted_elems);
    EXPECT_EQ(a.used_elems, b.used_elems);
    EXPECT_EQ(a.largest_elems, b.largest_elems);
  }
  // The estimator's two steps: one ChunkSearchTable serves plans that differ in dp only.
  const hw::Cluster c = hw::load_cluster("selene-a100");
  const analytic::Estimator est(m, c);
  const Plan p8 = strategies::resolve_plan(strategies::parse_plan("tp=2,pp=4,zero=3,offload=gemini,mbs=1,gbs=512"), m, c, 64);
  const Plan p16 = strategies::resolve_plan(strategies::parse_plan("tp=2,pp=4,zero=3,offload=gemini,mbs=1,gbs=512"), m, c, 128);
  ASSERT_NE(p8.dp, p16.dp);
  const analytic::ChunkSearchTable cs = est.search_chunks(p8);
  ASSERT_TRUE(cs.matches(p16));
  const analytic::ChunkTable direct = est.prepare_chunks(p16), shared = est.prepare_chunks(p16, cs);
  for (int k = 0; k < 3; ++k) {
    EXPECT_EQ(direct.stage[k].chunk_elems, shared.stage[k].chunk_elems);
    EXPECT_EQ(direct.stage[k].chunks, shared.stage[k].chunks);
    EXPECT_EQ(direct.stage[k].wasted_elems, shared.stage[k].wasted_elems);
    const auto ref = strategies::stage_chunk_config(m, p16, k == 0 ? 0 : k == 1 ? 1 : p16.pp - 1);
    EXPECT_EQ(shared.stage[k].chunk_elems, ref.chunk_elems);
  }
}

TEST(Chunks, SweepClosedFormIsFurthestFutureEviction) {
  // Two steps of forward 0..n-1, backward n-1..0; the second step's loads from the cache the first
  // left are 2 (n - R) (sweep_loads).
  for (int n : {5, 12, 40})
    for (int R : {0, 1, 3, n - 1, n}) {
      std::vector<int> one;
      for (int i = 0; i < n; ++i) one.push_back(i);
      for (int i = n - 1; i >= 0; --i) one.push_back(i);
      std::vector<int> two = one;
      two.insert(two.end(), one.begin(), one.end());
      std::vector<int> none;
      const long long cold = strategies::furthest_future_loads(one, R, none);
      const long long both = strategies::furthest_future_loads(two, R, none);
      EXPECT_EQ(static_cast<double>(both - cold), strategies::sweep_loads(n, R)) << "n=" << n << " R=" << R;
    }
}

TEST(Chunks, FurthestFutureBeatsLeastRecentlyUsedOnASweep) {
  // Cache 2 over 0 1 2 0 1 2: MIN loads 0,1,2 then evicts 1 (used after 0) -> hit 0, load 1, hit 2? by hand: 4.
  std::vector<int> a = {0, 1, 2, 0, 1, 2};
  EXPECT_EQ(strategies::furthest_future_loads(a, 2, {}), 4);
  EXPECT_EQ(strategies::furthest_future_loads(a, 3, {}), 3);
  EXPECT_EQ(strategies::furthest_future_loads(a, 3, {0, 1, 2}), 0);
}

TEST(Chunks, PlacementFillsTheGpuWith16BitChunksFirstThenOptimizer) {
  strategies::ChunkInput in;
  in.config.chunk_elems = 1e8;
  in.config.used_elems = 10e8;  // 10 chunks
  in.config.largest_elems = 1e8;
  in.dp = 1;
  in.capacity = 10e9;
  in.non_model_peak = 1e9;
  in.policy.cap_ratio = 0.9;      // room 9e9 - 1e9 - 0.4e9 = 7.6e9
  in.policy.warmup_ratio = 0.2;   // room 2e9 - 0.4e9 = 1.6e9
  in.host.memory = 100e9;
  in.host.pcie = 10e9;
  in.host.mem_bw = 100e9;
  in.host.flops = 1e12;
  const auto r = strategies::place_chunks(in);
  EXPECT_EQ(r.working_bytes, 0.4e9);
  EXPECT_EQ(r.fp16_on_gpu, 10);  // 10 x 0.2 GB = 2 GB
  EXPECT_EQ(r.os_on_gpu, 4);     // (7.6 - 2) / 1.2 = 4.67
  expect_rel(r.host_steady, 6 * 1.2e9);
  // warm-up: 1.6 GB holds 8 of the 16-bit shards, no optimizer: 2 x 0.2 + 10 x 1.2 GB on the host
  expect_rel(r.host_warmup, 0.4e9 + 12e9);
  EXPECT_EQ(r.host(), r.host_warmup);
  // Every 16-bit shard is resident (no sweep traffic); the 6 shards whose optimizer states are on the
  // host send their gradient down and take the updated weight back: 6 x 2 x 0.2 GB.
  expect_rel(r.pcie_bytes, 6 * 2 * 0.2e9);
  expect_rel(r.cpu_adam_s, std::max(14 * 6e8 / 1e12, 32 * 6e8 / 100e9));
}

// ---------------------------------------------------------------- plan rules
TEST(OffloadPlan, RulesNameTheKey) {
  const model::ModelSpec m = model::load_model("gpt3-1.3b");
  const hw::Cluster c = hw::load_cluster("selene-a100");
  auto err = [&](const std::string& plan, const hw::Cluster& cl) -> std::string {
    try {
      (void)strategies::resolve_plan(strategies::parse_plan(plan), m, cl, 8);
    } catch (const PlanError& e) {
      EXPECT_EQ(e.key(), "offload") << plan;
      return e.rule();
    }
    return "";
  };
  EXPECT_NE(err("offload=optimizer", c).find("needs zero=1 or 2"), std::string::npos);
  EXPECT_NE(err("zero=3,offload=optimizer", c).find("use offload=params"), std::string::npos);
  EXPECT_NE(err("zero=2,offload=params", c).find("needs zero=3"), std::string::npos);
  EXPECT_NE(err("zero=1,offload=nvme", c).find("needs zero=3"), std::string::npos);
  EXPECT_NE(err("offload=gemini", c).find("needs zero=3"), std::string::npos);
  EXPECT_NE(err("zero=3,offload=nvme", hw::load_cluster("yard-v100")).find("needs NVMe"), std::string::npos);
  for (const char* ok : {"zero=1,offload=optimizer", "zero=2,offload=optimizer", "zero=3,offload=params", "zero=3,offload=nvme",
                         "zero=3,offload=gemini"})
    EXPECT_EQ(err(ok, c), "") << ok;
}

// ---------------------------------------------------------------- estimator
struct Case {
  model::ModelSpec m;
  hw::Cluster c;
  Case(const char* model, const char* cluster, long long seq) : m(model::load_model(model)), c(hw::load_cluster(cluster)) {
    m.seq = seq;
  }
  strategies::StepReport run(const std::string& plan, long long gpus) const {
    const Plan p = strategies::resolve_plan(strategies::parse_plan(plan), m, c, gpus);
    return analytic::Estimator(m, c).evaluate(p);
  }
};

TEST(OffloadEstimator, StepIncludesExposedOffloadAndDropsTheGpuOptimizer) {
  const Case s("gpt3-13b", "dgx2-v100", 1024);
  const auto base = s.run("zero=2,mbs=1,recompute=full", 16);
  const auto off = s.run("zero=2,offload=optimizer,mbs=1,recompute=full", 16);
  EXPECT_GT(off.time.offload_exposed_s, 0);
  EXPECT_EQ(off.time.optimizer_s, 0);
  expect_rel(off.time.step_s, base.time.step_s - base.time.optimizer_s + off.time.offload_exposed_s, 1e-9);
  expect_rel(off.throughput.tokens_per_s * off.time.step_s, base.throughput.tokens_per_s * base.time.step_s, 1e-9);
  EXPECT_LT(off.memory.total(), base.memory.total());
  EXPECT_GT(off.memory.host, 0);
  EXPECT_EQ(base.memory.host, 0);
  EXPECT_EQ(base.time.offload_exposed_s, 0);
}

TEST(OffloadEstimator, HostOverflowIsInfeasibleAndSaysSo) {
  // 175B with ZeRO-3-Offload on one 240 GiB Yard node: 27 B x 175e9 / 8 per GPU is far over.
  const Case s("gpt3-175b", "yard-v100", 1024);
  const auto r = s.run("zero=3,offload=params,recompute=full", 8);
  EXPECT_FALSE(r.feasible);
  EXPECT_TRUE(r.offload.host_over);
  EXPECT_NE(r.reason.find("out of host memory"), std::string::npos) << r.reason;
  EXPECT_LT(r.memory.total(), r.memory.capacity);  // the GPU itself has room
}

TEST(OffloadEstimator, NvmeOverflowIsInfeasibleAndSaysSo) {
  // 175B with ZeRO-Infinity on one DGX-2 node whose NVMe is cut to 1 TB: 14 B x 175e9 = 2.45 TB.
  Case s("gpt3-175b", "dgx2-v100", 1024);
  s.c.host.nvme_bytes = 1e12;
  const auto r = s.run("zero=3,offload=nvme,recompute=full", 16);
  EXPECT_FALSE(r.feasible);
  EXPECT_TRUE(r.offload.nvme_over);
  EXPECT_NE(r.reason.find("out of NVMe"), std::string::npos) << r.reason;
}

TEST(OffloadEstimator, GeminiKeepsEverythingOnTheGpuWhenItFits) {
  // 1.3B on 8 A100-80GB: every chunk fits on the GPU; nothing moves, no CPU Adam.
  const Case s("gpt3-1.3b", "selene-a100", 1024);
  const auto r = s.run("zero=3,offload=gemini,mbs=1", 8);
  ASSERT_TRUE(r.feasible) << r.reason;
  EXPECT_EQ(r.offload.pcie_bytes, 0);
  EXPECT_EQ(r.offload.cpu_adam_s, 0);
  EXPECT_EQ(r.time.offload_exposed_s, 0);
  EXPECT_EQ(r.offload.fp16_chunks_on_gpu, r.offload.chunks);
  EXPECT_EQ(r.offload.os_chunks_on_gpu, r.offload.chunks);
  EXPECT_LT(r.offload.chunk_waste, 0.05);
}

TEST(OffloadEstimator, GeminiSpillsWhatTheGpuCannotHold) {
  // 13B on 8 V100-32GB of a Yard node: the optimizer chunks do not all fit beside the 16-bit ones.
  const Case s("gpt3-13b", "yard-v100", 1024);
  const auto r = s.run("zero=3,offload=gemini,mbs=16,recompute=full", 8);
  ASSERT_TRUE(r.feasible) << r.reason;
  EXPECT_LT(r.offload.os_chunks_on_gpu, r.offload.chunks);
  EXPECT_GT(r.offload.cpu_adam_s, 0);
  EXPECT_GT(r.memory.host, 0);
  EXPECT_GT(r.time.offload_exposed_s, 0);
  // Side by side with static placement of the same stage: ZeRO-3-Offload's 27 B/param on the host,
  // ZeRO-3's 16 B/param (+ one gathered layer) on the GPU; the chunks need less host than the former.
  const double P = s.m.total_params();
  expect_rel(r.offload.static_offload_host, 27 * P / 8, 1e-9);
  EXPECT_GT(r.offload.static_zero3_gpu, 16 * P / 8);
  EXPECT_LT(r.memory.host, r.offload.static_offload_host);
}

TEST(OffloadEstimator, GeminiWithoutRoomForTheChunksInFlightIsInfeasible) {
  // A warm-up share of the GPU smaller than the two gathered chunks in flight: nothing can run.
  Case s("gpt3-13b", "yard-v100", 1024);
  s.c.sw.chunk_warmup_ratio = 0.001;
  const auto r = s.run("zero=3,offload=gemini,mbs=1,recompute=full", 8);
  EXPECT_FALSE(r.feasible);
  EXPECT_NE(r.reason.find("out of GPU memory for chunks"), std::string::npos) << r.reason;
}

TEST(OffloadSearch, OffloadIsPickedOnlyWhenNothingElseFits) {
  // 1.3B on 8 A100s: plans without offload fit, so the best has none.
  {
    const Case s("gpt3-1.3b", "selene-a100", 2048);
    const analytic::Estimator est(s.m, s.c);
    search::SearchSpec spec;
    spec.gpus = 8;
    spec.gbs = {64};
    spec.top_k = 1;
    spec.threads = 1;
    const auto r = search::run_search(est, spec);
    ASSERT_TRUE(r.ok());
    EXPECT_EQ(r.top[0].plan.offload, Offload::none);
  }
  // 175B on 8 A100-80GB: nothing fits in GPU memory or in host memory; ZeRO-Infinity on the
  // node's 30 TB of NVMe does (Rajbhandari et al. 2021 train 1T on one DGX-2 node).
  {
    const Case s("gpt3-175b", "selene-a100", 2048);
    const analytic::Estimator est(s.m, s.c);
    search::SearchSpec spec;
    spec.gpus = 8;
    spec.gbs = {8};
    spec.top_k = 1;
    spec.threads = 1;
    const auto r = search::run_search(est, spec);
    ASSERT_TRUE(r.ok()) << r.reason;
    EXPECT_EQ(r.top[0].plan.offload, Offload::nvme);
  }
}

// Offload is a search dimension with the chunk manager in it (issue 6): 13B on one V100-32GB with
// 240 GiB of host memory (yard-v100). Nothing fits without offload (16 B/param = 208 GB on a 32 GB
// GPU); ZeRO-3-Offload's static placement needs 27 B/param = 323 GiB of host memory; the chunk
// manager holds 14 B/param over GPU and host, so the search picks it. Its leaves are costed from
// the chunk configuration prepared once per (tp, ep, pp, dp): the same numbers as estimate's own.
TEST(OffloadSearch, ChunksArePickedWhereNothingElseFits) {
  const Case s("gpt3-13b", "yard-v100", 2048);
  const analytic::Estimator est(s.m, s.c);
  search::SearchSpec spec;
  spec.gpus = 1;
  spec.gbs = {32};
  spec.top_k = 50;
  spec.threads = 1;
  const auto r = search::run_search(est, spec);
  ASSERT_TRUE(r.ok()) << r.reason;
  const Plan best = r.top[0].plan;
  EXPECT_EQ(best.offload, Offload::gemini) << best.to_string();
  // The same plan without offload does not fit on the GPU, nor with ZeRO-3-Offload on the host.
  Plan none = best, stat = best;
  none.offload = Offload::none;
  none.zero = 0;
  stat.offload = Offload::params;
  EXPECT_FALSE(est.evaluate(strategies::resolve_plan(none, s.m, s.c, 1)).feasible);
  const auto rs = est.evaluate(strategies::resolve_plan(stat, s.m, s.c, 1));
  EXPECT_FALSE(rs.feasible);
  EXPECT_TRUE(rs.offload.host_over) << rs.reason;
  // The search's number is estimate's (whose chunk-size search runs per call).
  const auto full = est.evaluate(best);
  EXPECT_EQ(full.time.step_s, r.top[0].metrics.time.step_s);
  EXPECT_EQ(full.memory.total(), r.top[0].metrics.memory.total());
  // Only leaves whose offload=none sibling did not fit carry offload: every plan in the top list
  // that fits without offload has none.
  for (const auto& c : r.top) {
    if (c.plan.offload == Offload::none) continue;
    Plan n = c.plan;
    n.offload = Offload::none;
    if (n.dp == 1) n.zero = 0;
    EXPECT_FALSE(est.evaluate(strategies::resolve_plan(n, s.m, s.c, 1)).feasible) << c.plan.to_string();
  }
}

}  // namespace
