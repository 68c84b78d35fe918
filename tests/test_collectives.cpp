// hardware/collectives.hpp: alpha-beta collective costs (FORMULAS.md "Collective cost"), group
// placement for strided ranks, and oversubscription above a pod.
#include "simulator/analytic/estimator.hpp"
#include "strategies/plan.hpp"
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <string>

#include "hardware/cluster.hpp"
#include "hardware/collectives.hpp"

namespace {

using namespace scaleplan::hw;

void expect_rel(double actual, double expected, double rel = 1e-12) {
  EXPECT_NEAR(actual, expected, std::fabs(expected) * rel) << "actual " << actual << " expected " << expected;
}

// A hand-built DGX-like cluster: 8 GPUs per node on NVSwitch, one NIC per GPU.
Cluster hand_cluster() {
  Cluster c;
  c.name = "hand";
  c.gpus_per_node = 8;
  c.intra.kind = IntraKind::nvswitch;
  c.intra.bw_Bps = 300e9;
  c.intra.latency_s = 3e-6;
  c.intra.bus_efficiency = 0.8;
  c.net.topology = Topology::fat_tree;
  c.net.nic_bw_Bps = 25e9;
  c.net.latency_s = 5e-6;
  c.net.bus_efficiency = 0.9;
  c.net.pod_gpus = 0;
  c.net.oversubscription = 1;
  return c;
}

CollAlgo algo(const char* name) {
  int n = 0;
  const CollAlgoEntry* a = coll_algorithms(&n);
  for (int i = 0; i < n; ++i)
    if (std::strcmp(a[i].name, name) == 0) return a[i].fn;
  return nullptr;
}

const Coll kAllKinds[] = {Coll::all_reduce, Coll::reduce_scatter, Coll::all_gather, Coll::all_to_all, Coll::send_recv};

// ---------------------------------------------------------------- groups
TEST(Groups, TensorParallelInsideOneNode) {  // tp=8, stride 1, 8-GPU nodes
  const Group g = make_group(hand_cluster(), 8, 1);
  EXPECT_EQ(g.size, 8);
  EXPECT_EQ(g.per_node, 8);
  EXPECT_EQ(g.nodes, 1);
  EXPECT_EQ(g.pod_factor, 1.0);
}

TEST(Groups, DataParallelAcrossNodes) {  // dp=32 with tp=8: stride 8
  const Group g = make_group(hand_cluster(), 32, 8);
  EXPECT_EQ(g.size, 32);
  EXPECT_EQ(g.per_node, 1);
  EXPECT_EQ(g.nodes, 32);
}

TEST(Groups, StridesThatShareNodes) {
  const Cluster c = hand_cluster();
  struct {
    int size, stride, per_node, nodes;
  } cases[] = {
      {4, 1, 4, 1},     // tp=4
      {4, 2, 4, 1},     // ranks 0,2,4,6
      {16, 2, 4, 4},    // dp=16 behind tp=2
      {2, 4, 2, 1},     // ranks 0,4
      {16, 1, 8, 2},    // 16 consecutive ranks
      {64, 1, 8, 8},
      {2, 64, 1, 2},    // a pipeline pair far apart
      {1, 1, 1, 1},
  };
  for (const auto& k : cases) {
    const Group g = make_group(c, k.size, k.stride);
    EXPECT_EQ(g.per_node, k.per_node) << "size " << k.size << " stride " << k.stride;
    EXPECT_EQ(g.nodes, k.nodes) << "size " << k.size << " stride " << k.stride;
    EXPECT_EQ(g.per_node * g.nodes, k.size) << "size " << k.size << " stride " << k.stride;
  }
}

TEST(Groups, SixteenGpuNodes) {  // dgx2-v100: 16 GPUs per node
  Cluster c = hand_cluster();
  c.gpus_per_node = 16;
  const Group g = make_group(c, 16, 1);
  EXPECT_EQ(g.per_node, 16);
  EXPECT_EQ(g.nodes, 1);
  const Group d = make_group(c, 8, 4);  // ranks 0,4,8,12 | 16,...
  EXPECT_EQ(d.per_node, 4);
  EXPECT_EQ(d.nodes, 2);
}

// ---------------------------------------------------------------- ring inside one node
// all-reduce: 2(n-1) alpha + 2(n-1)/n B/bw; reduce-scatter / all-gather: (n-1) alpha + (n-1)/n B/bw;
// bw = intra bw_Bps * bus_efficiency.
TEST(Ring, AllReduceInsideOneNode) {
  const Cluster c = hand_cluster();
  const double bw = 300e9 * 0.8, a = 3e-6;
  EXPECT_EQ(intra_bw(c), bw);
  for (int n : {2, 4, 8}) {
    const Group g = make_group(c, n, 1);
    for (double B : {1e3, 1e6, 256e6, 4e9}) {
      const double expected = 2 * (n - 1) * a + 2.0 * (n - 1) / n * B / bw;
      expect_rel(algo("ring")(c, Coll::all_reduce, B, g), expected);
      expect_rel(collective_time(c, Coll::all_reduce, B, g), expected);  // one node: ring is the only algorithm
    }
  }
}

TEST(Ring, ReduceScatterAndAllGatherInsideOneNode) {
  const Cluster c = hand_cluster();
  const double bw = 300e9 * 0.8, a = 3e-6;
  for (int n : {2, 4, 8}) {
    const Group g = make_group(c, n, 1);
    for (double B : {1e3, 1e6, 256e6, 4e9}) {
      const double expected = (n - 1) * a + (n - 1.0) / n * B / bw;
      const char* name = nullptr;
      expect_rel(collective_time(c, Coll::reduce_scatter, B, g, &name), expected);
      ASSERT_NE(name, nullptr);
      EXPECT_STREQ(name, "ring");
      expect_rel(collective_time(c, Coll::all_gather, B, g), expected);
    }
  }
}

TEST(Ring, AllReduceIsReduceScatterPlusAllGather) {
  const Cluster c = hand_cluster();
  const Group g = make_group(c, 8, 1);
  const double B = 1e9;
  expect_rel(collective_time(c, Coll::all_reduce, B, g),
             collective_time(c, Coll::reduce_scatter, B, g) + collective_time(c, Coll::all_gather, B, g));
}

// ---------------------------------------------------------------- across nodes
// Hierarchical: intra-node reduce-scatter, inter-node all-reduce on B/p, intra-node all-gather.
TEST(Hierarchical, AllReduceAcrossNodes) {
  const Cluster c = hand_cluster();
  const Group g = make_group(c, 32, 1);  // 4 nodes x 8
  ASSERT_EQ(g.per_node, 8);
  ASSERT_EQ(g.nodes, 4);
  const double p = 8, m = 4, bi = 300e9 * 0.8, bo = 25e9 * 0.9, ai = 3e-6, ao = 5e-6;
  EXPECT_EQ(inter_bw(c, g), bo);
  for (double B : {1e4, 1e6, 1e9}) {
    const double rs = (p - 1) * ai + (p - 1) / p * B / bi;
    const double inter = 2 * (m - 1) * ao + 2 * (m - 1) / m * (B / p) / bo;
    expect_rel(algo("hierarchical")(c, Coll::all_reduce, B, g), 2 * rs + inter);
    // NCCL has no hierarchical reduce-scatter / all-gather (issue 23): not applicable.
    EXPECT_LT(algo("hierarchical")(c, Coll::reduce_scatter, B, g), 0);
    EXPECT_LT(algo("hierarchical")(c, Coll::all_gather, B, g), 0);
  }
}

TEST(Hierarchical, NotApplicableInsideOneNodeOrOneGpuPerNode) {
  const Cluster c = hand_cluster();
  EXPECT_LT(algo("hierarchical")(c, Coll::all_reduce, 1e6, make_group(c, 8, 1)), 0);
  EXPECT_LT(algo("hierarchical")(c, Coll::all_reduce, 1e6, make_group(c, 32, 8)), 0);
}

TEST(AcrossNodes, BestAlgorithmIsTheCheapestApplicable) {
  const Cluster c = hand_cluster();
  int n = 0;
  const CollAlgoEntry* algos = coll_algorithms(&n);
  ASSERT_GE(n, 3);
  for (auto [size, stride] : {std::pair{16, 1}, {32, 1}, {64, 1}, {32, 8}, {128, 8}, {4, 2}}) {
    const Group g = make_group(c, size, stride);
    for (Coll k : kAllKinds) {
      for (double B : {1e3, 1e6, 1e9}) {
        double best = -1;
        for (int i = 0; i < n; ++i) {
          const double t = algos[i].fn(c, k, B, g);
          if (t >= 0 && (best < 0 || t < best)) best = t;
        }
        const char* name = nullptr;
        const double got = collective_time(c, k, B, g, &name);
        if (best >= 0) {
          EXPECT_EQ(got, best) << coll_name(k) << " size " << size << " stride " << stride << " B " << B;
          EXPECT_NE(name, nullptr);
        }
      }
    }
  }
}

TEST(AcrossNodes, RingAcrossNodesUsesTheNics) {
  // dp=32 behind tp=8: one GPU per node; the ring runs at the NIC rate with network latency.
  const Cluster c = hand_cluster();
  const Group g = make_group(c, 32, 8);
  const double n = 32, bo = 25e9 * 0.9, ao = 5e-6, B = 1e9;
  expect_rel(algo("ring")(c, Coll::all_reduce, B, g), 2 * (n - 1) * ao + 2 * (n - 1) / n * B / bo);
}

TEST(AcrossNodes, CrossingNodesIsSlowerThanStayingInside) {
  const Cluster c = hand_cluster();
  const double B = 1e9;
  EXPECT_GT(collective_time(c, Coll::all_reduce, B, make_group(c, 8, 8)),
            collective_time(c, Coll::all_reduce, B, make_group(c, 8, 1)));
}

// ---------------------------------------------------------------- edge cases
TEST(Edges, SizeOneGroupsCostNothing) {
  const Cluster c = hand_cluster();
  for (int stride : {1, 8, 1024}) {
    const Group g = make_group(c, 1, stride);
    for (Coll k : {Coll::all_reduce, Coll::reduce_scatter, Coll::all_gather, Coll::all_to_all})
      EXPECT_EQ(collective_time(c, k, 1e9, g), 0.0) << coll_name(k) << " stride " << stride;
  }
}

TEST(Edges, ZeroBytesCostNothing) {
  const Cluster c = hand_cluster();
  for (Coll k : kAllKinds) EXPECT_EQ(collective_time(c, k, 0.0, make_group(c, 16, 1)), 0.0) << coll_name(k);
}

TEST(Edges, NeverNegativeAndFinite) {
  for (const char* preset : {"selene-a100", "dgx1-v100", "dgx2-v100", "dgx-h100", "meta-h100-roce", "dgx-a100-40gb"}) {
    const Cluster c = load_cluster(preset);
    for (int size : {1, 2, 3, 8, 16, 64, 512, 4096}) {
      for (int stride : {1, 2, 8, 64, 4096}) {
        const Group g = make_group(c, size, stride);
        EXPECT_GT(g.pod_factor, 0.0);
        EXPECT_LE(g.pod_factor, 1.0);
        for (Coll k : kAllKinds) {
          for (double B : {-1.0, 0.0, 1.0, 1e3, 1e9, 1e12}) {
            const double t = collective_time(c, k, B, g);
            EXPECT_GE(t, 0.0) << preset << " " << coll_name(k) << " size " << size << " stride " << stride << " B " << B;
            EXPECT_TRUE(std::isfinite(t)) << preset << " " << coll_name(k);
          }
        }
      }
    }
  }
}

TEST(Edges, MonotoneInBytes) {
  const Cluster c = load_cluster("selene-a100");
  for (auto [size, stride] : {std::pair{8, 1}, {64, 8}, {128, 1}}) {
    const Group g = make_group(c, size, stride);
    for (Coll k : kAllKinds) {
      double prev = 0;
      for (double B = 1e3; B <= 1e11; B *= 10) {
        const double t = collective_time(c, k, B, g);
        EXPECT_GE(t, prev) << coll_name(k) << " B " << B;
        prev = t;
      }
    }
  }
}

// ---------------------------------------------------------------- oversubscription (Llama 3: 1:7 above 3072-GPU pods)
TEST(Oversubscription, MetaRoceGroupsInsideAPodKeepFullRate) {
  const Cluster c = load_cluster("meta-h100-roce");
  ASSERT_EQ(c.net.pod_gpus, 3072);
  ASSERT_EQ(c.net.oversubscription, 7);
  EXPECT_EQ(make_group(c, 8, 1).pod_factor, 1.0);
  EXPECT_EQ(make_group(c, 384, 8).pod_factor, 1.0);   // spans exactly one pod
  EXPECT_EQ(make_group(c, 16, 128).pod_factor, 1.0);  // 2048 ranks apart end to end
}

TEST(Oversubscription, MetaRoceGroupsCrossingPods) {
  const Cluster c = load_cluster("meta-h100-roce");
  // A pipeline pair 4096 ranks apart: one node per pod, the uplink share is 1/7 of the NIC.
  const Group pair = make_group(c, 2, 4096);
  EXPECT_NEAR(pair.pod_factor, 1.0 / 7, 1e-15);
  expect_rel(inter_bw(c, pair), c.net.nic_bw_Bps * c.net.bus_efficiency / 7);
  // 4 members 1024 ranks apart: 3 members (3 nodes) per pod -> min(1, 3/7).
  EXPECT_NEAR(make_group(c, 4, 1024).pod_factor, 3.0 / 7, 1e-15);
  // A large DP group with many nodes per pod is not slowed: min(1, 384/7) = 1.
  EXPECT_EQ(make_group(c, 512, 8).pod_factor, 1.0);
}

TEST(Oversubscription, CrossingPodsCostsMore) {
  const Cluster c = load_cluster("meta-h100-roce");
  Cluster flat = c;
  flat.net.oversubscription = 1;
  const double B = 1e9;
  const Group far = make_group(c, 2, 4096);
  const Group far_flat = make_group(flat, 2, 4096);
  EXPECT_EQ(far_flat.pod_factor, 1.0);
  EXPECT_GT(collective_time(c, Coll::send_recv, B, far), collective_time(flat, Coll::send_recv, B, far_flat));
  expect_rel(collective_time(c, Coll::send_recv, B, far), c.net.latency_s + B / (c.net.nic_bw_Bps * c.net.bus_efficiency / 7));
}

TEST(Oversubscription, NoPodsNoFactor) {
  const Cluster c = load_cluster("selene-a100");
  EXPECT_EQ(make_group(c, 2, 1 << 20).pod_factor, 1.0);
  EXPECT_EQ(make_group(c, 4096, 8).pod_factor, 1.0);
}

}  // namespace

// The rank order decides the tier of the DP groups: with pp inside dp (Llama 3's [TP, CP, PP, DP])
// a DP group's members are tp*cp*pp ranks apart instead of tp*cp, so it crosses the oversubscribed
// pod layer of meta-h100-roce sooner; DP time can only grow.
TEST(RankOrder, PipelineInsideDataParallelMovesDpGroupsOutward) {
  // 80 stages of 8 GPUs: with pp inside dp, DP members are 640 GPUs apart, 4.8 per 3072-GPU pod (< 7).
  // llama2-70b has untied embeddings, so no first/last-stage embedding all-reduce muddles the DP time.
  auto m = scaleplan::model::load_model("llama2-70b");
  auto c = scaleplan::hw::load_cluster("meta-h100-roce");
  auto plan = scaleplan::strategies::resolve_plan(scaleplan::strategies::parse_plan("tp=8,pp=80,mbs=1,gbs=640,zero=1"), m, c, 5120);
  c.sw.dp_overlap = false;  // expose the whole DP time
  c.sw.pp_inside_dp = false;  // baseline: Megatron order (the preset uses Llama 3 order)
  auto c2 = c;
  c2.sw.pp_inside_dp = true;
  const auto a = scaleplan::analytic::Estimator(m, c).evaluate(plan);
  const auto b = scaleplan::analytic::Estimator(m, c2).evaluate(plan);
  EXPECT_GT(b.dp_comm_exposed_s, a.dp_comm_exposed_s);
  EXPECT_DOUBLE_EQ(a.comm.dp, b.comm.dp);  // same payload, different tier
}

// ---------------------------------------------------------------- NIC share per GPU (issue 23)
namespace {
// All-gather of B output bytes per GPU over dp ranks across nodes: a flat ring, (n-1) network
// latencies + (n-1)/n B at one GPU's NIC share.
double ring_ag(double n, double B, double share_Bps, double a) { return (n - 1) * a + (n - 1) / n * B / share_Bps; }
}  // namespace

TEST(NicShare, Tp1AndTp8DataParallelGatherMoveEachGpusBytesAtOneNicShare) {
  // 16 nodes x 8 GPUs = 128 GPUs. tp 1: one dp group of 128 (8 members per node); tp 8: eight dp
  // groups of 16 (one member per node). Either way all 8 GPUs of a node send at once, so each gets
  // 1/8 of the node's 8 x 25 GB/s = 25 GB/s x 0.9 = 22.5 GB/s; before issue 23 the tp-1 ring ran at
  // min(NVLink 240, 8 x 22.5) = 180 GB/s.
  const Cluster c = hand_cluster();
  const double share = 25e9 * 0.9, a = 5e-6, B = 4e9;
  const Group g1 = make_group(c, 128, 1), g8 = make_group(c, 16, 8);
  EXPECT_EQ(nic_share(c, g1), share);
  EXPECT_EQ(nic_share(c, g8), share);
  expect_rel(collective_time(c, Coll::all_gather, B, g1), ring_ag(128, B, share, a));
  expect_rel(collective_time(c, Coll::reduce_scatter, B, g1), ring_ag(128, B, share, a));
  // tp 8 holds 1/8 of the parameters per GPU: 1/8 of the bytes over a 16-rank ring.
  expect_rel(collective_time(c, Coll::all_gather, B / 8, g8), ring_ag(16, B / 8, share, a));
  // The hand numbers: tp 1, 4 GB: 127 x 5 us + 127/128 x 4e9 / 22.5e9 = 0.000635 + 0.176389 s.
  EXPECT_NEAR(collective_time(c, Coll::all_gather, B, g1), 0.177024, 1e-6);
}

TEST(NicShare, FourNicsPerNodeHalveTheShareWhenAllGpusSend) {
  // 4 NICs of 50 GB/s for 8 GPUs (nic_Gbps_per_gpu = 200, i.e. 25 GB/s per GPU): with all 8 GPUs
  // sending each gets 25 GB/s; with 8 NICs of 50 GB/s (nic 50 GB/s per GPU) each gets 50 GB/s.
  Cluster four = hand_cluster(), eight = hand_cluster();
  four.net.nics_per_node = 4;
  four.net.nic_bw_Bps = 25e9;
  eight.net.nics_per_node = 8;
  eight.net.nic_bw_Bps = 50e9;
  const Group g4 = make_group(four, 64, 1), g8 = make_group(eight, 64, 1);
  EXPECT_EQ(nic_share(four, g4), 25e9 * 0.9);
  EXPECT_EQ(nic_share(eight, g8), 50e9 * 0.9);
  const double B = 1e9;
  expect_rel(collective_time(four, Coll::all_gather, B, g4), ring_ag(64, B, 25e9 * 0.9, 5e-6));
  expect_rel(collective_time(eight, Coll::all_gather, B, g8), ring_ag(64, B, 50e9 * 0.9, 5e-6));
  // Fewer GPUs of the node sending: each may use up to one whole NIC (50 GB/s), never more.
  EXPECT_EQ(nic_share(four, make_group(four, 64, 1, 4)), 50e9 * 0.9);
  EXPECT_EQ(nic_share(four, make_group(four, 64, 1, 1)), 50e9 * 0.9);
  EXPECT_EQ(nic_share(eight, make_group(eight, 64, 1, 2)), 50e9 * 0.9);
}

TEST(NicShare, AllReduceKeepsTheNodesNicsThroughTheTreeAndHierarchicalSteps) {
  // NCCL's tree / the hierarchical all-reduce put one rank per NIC on the inter-node step, so a
  // tp-1 gradient all-reduce still moves at the node's 8 NIC shares (NCCL measures 192 GB/s bus
  // bandwidth on DGX A100 with 8 x HDR, NVIDIA/nccl#812).
  const Cluster c = hand_cluster();
  const Group g = make_group(c, 64, 1);  // 8 nodes x 8
  const double B = 4e9, p = 8, m = 8, bi = 300e9 * 0.8, bo = 25e9 * 0.9;
  const double hier = 2 * ((p - 1) * 3e-6 + (p - 1) / p * B / bi) + 2 * (m - 1) * 5e-6 + 2 * (m - 1) / m * (B / p) / bo;
  const double flat_ring = 2 * (64 - 1) * 5e-6 + 2 * 63.0 / 64 * B / bo;
  const char* name = nullptr;
  const double t = collective_time(c, Coll::all_reduce, B, g, &name);
  EXPECT_LE(t, hier * (1 + 1e-12));
  EXPECT_LT(t, flat_ring / 4);
  ASSERT_NE(name, nullptr);
  EXPECT_STRNE(name, "ring");
}
