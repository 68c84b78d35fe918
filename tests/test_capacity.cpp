// simulator/search/capacity.hpp (issue 6): the largest GPT-family model per memory strategy, against
// the published capacity claims on their own hardware (+-25%). Every assumption the claims rest on
// (host memory, PCIe, CPU, chunk-manager ratios) is in the cluster YAML the test names. Setting of
// every row: sequence 1024, microbatch 1 per GPU, full activation recompute, no model parallelism,
// fp16 mixed-precision Adam (the ZeRO paper's 16 B/param), the capacity family of capacity.hpp.
// Where the model disagrees with a claim, the test says which resource binds and why, and pins that.
#include <gtest/gtest.h>

#include <cmath>
#include <string>

#include "simulator/search/capacity.hpp"

namespace {

using namespace scaleplan;

search::CapacityEntry capacity(const char* cluster, long long gpus, const char* strategy) {
  const hw::Cluster c = hw::load_cluster(cluster);
  search::CapacitySpec s;
  s.gpus = gpus;
  s.base = search::default_capacity_plan();
  for (const auto& st : search::capacity_strategies())
    if (std::string(st.name) == strategy) return search::capacity_of(c, s, st);
  ADD_FAILURE() << "no strategy " << strategy;
  return {};
}

void expect_claim(const search::CapacityEntry& e, double claim, double tol, const char* binding) {
  ASSERT_GT(e.max_params, 0) << e.strategy << ": " << e.reason;
  EXPECT_NEAR(e.max_params / claim, 1.0, tol) << e.strategy << " max " << e.max_params / 1e9 << "B vs claim " << claim / 1e9 << "B";
  EXPECT_EQ(e.binding, binding) << e.strategy << ": " << e.binding_reason;
}

// ---- ZeRO-Offload (Ren et al. 2021, abstract and sec. 6): 13B on one V100-32GB of a DGX-2. ----
// Binding: the GPU, which keeps the 16-bit weights (2 B/param) plus one gradient bucket, the
// recomputed activations and the CUDA reserve: (32 GiB - ~3 GiB) / 2 B = ~15.5B (+19%). The host
// (1.5 TB, DeepSpeed's 24 B/param) would allow ~68B.
TEST(CapacityClaims, ZeroOffloadThirteenBillionOnOneV100) {
  expect_claim(capacity("dgx2-v100", 1, "zero_offload"), 13e9, 0.25, "gpu");
}

// ---- ZeRO-3-Offload (DeepSpeed, March 2021 release; ZeRO-Infinity paper sec. 1 cites it): 40B on
// one V100-32GB with 1.5 TB of host memory. DISAGREES (+51%): we find ~60B, bound by host memory at
// DeepSpeed's own estimate (estimate_zero3_model_states_mem_needs: 18 B/param x 1.5 buffer factor =
// 27 B/param; 1536 GiB / 27 B = 61B); the GPU holds one gathered layer (4 P_L) and recomputed
// activations, ~6 GiB at 60B. 40B is the size DeepSpeed demonstrated, not a measured limit, and
// its runs used training batches whose activation checkpoints (not published with the claim) we do
// not charge. Pinned: host binds, and the limit is host memory / 27 B, at or above the demonstrated 40B.
TEST(CapacityClaims, Zero3OffloadIsHostBoundAboveTheDemonstrated40B) {
  const auto e = capacity("dgx2-v100", 1, "zero3_offload");
  ASSERT_GT(e.max_params, 0) << e.reason;
  EXPECT_EQ(e.binding, "host") << e.binding_reason;
  EXPECT_GE(e.max_params, 40e9);
  const double host = hw::load_cluster("dgx2-v100").host.memory_bytes;
  EXPECT_NEAR(e.max_params * 27 / host, 1.0, 0.03);
}

// ---- ZeRO (Rajbhandari et al. 2020, sec. 10 "model size"), 16 V100-32GB of a DGX-2, no model
// parallelism: data parallel OOMs at ~1.4B, ZeRO-1 (P_os) reaches ~6B, ZeRO-2 (P_os+g) ~13B. ----
// ZeRO-1: 4 + 12/16 = 4.75 B/param of GPU memory; ZeRO-2: 2 + 14/16 = 2.875 B/param.
TEST(CapacityClaims, ZeroPaperZero1SixBillion) { expect_claim(capacity("dgx2-v100", 16, "zero1"), 6e9, 0.25, "gpu"); }
TEST(CapacityClaims, ZeroPaperZero2ThirteenBillion) { expect_claim(capacity("dgx2-v100", 16, "zero2"), 13e9, 0.25, "gpu"); }

// Data parallel: DISAGREES (+40%): we find ~2.0B, bound by the GPU at 16 B/param (the paper's own
// accounting) + ~1 GiB of recomputed activations + the 1 GiB CUDA reserve. The paper's baseline was
// PyTorch DDP of 2019 with Megatron-LM's fp16 optimizer, which also kept an fp32 gradient copy
// (Megatron: 18 B/param) and DDP's own flat gradient buckets (another 2 B/param before PyTorch 1.7's
// gradient_as_bucket_view): ~20 B/param, and (32 GiB - 2 GiB) / 20 B = 1.6B, near the published
// 1.4B. We keep the ZeRO paper's 16 B/param for every strategy so the rows compare like with like.
// Pinned: the GPU binds, and 1.4B fits under our accounting while (capacity / 16 B) does not.
TEST(CapacityClaims, ZeroPaperDataParallelIsGpuBoundAbove1_4B) {
  const auto e = capacity("dgx2-v100", 16, "ddp");
  ASSERT_GT(e.max_params, 0);
  EXPECT_EQ(e.binding, "gpu") << e.binding_reason;
  EXPECT_GE(e.max_params, 1.4e9);
  const double cap = hw::load_cluster("dgx2-v100").device.hbm_bytes;
  EXPECT_LT(e.max_params * 16, cap);
  EXPECT_NEAR(e.max_params / 1.4e9, 1.0, 0.5);
}

// ---- PatrickStar (Fang et al. 2021; README): 18B on 8 V100-32GB with 240 GB of host memory, 68B
// on 8 A100-80GB with 1 TB, chunk-based. ----
// Binding: host memory in the warm-up iteration. PatrickStar lets chunks use 0.8 of the host
// (overall_cpu_mem_ratio, shared by the 8 ranks) and, before the first iteration's memory trace
// exists, only 0.1 x 0.8 of the GPU (warmup_gpu_chunk_mem_ratio): 14 B/param of model data (16-bit
// weights whose chunks the gradients reuse, fp32 master + moments) must fit there.
TEST(CapacityClaims, PatrickStarEighteenBillionOnEightV100) {
  expect_claim(capacity("yard-v100", 8, "chunked"), 18e9, 0.25, "host");
}
TEST(CapacityClaims, PatrickStarSixtyEightBillionOnEightA100) {
  expect_claim(capacity("superpod-a100-80gb", 8, "chunked"), 68e9, 0.25, "host");
}

// ---- Side by side: chunk-based vs static ZeRO-3-Offload placement on the same node. ----
// PatrickStar reports 2.27x (V100) and 2.5x (A100) DeepSpeed's largest model; static offload needs
// 27 B/param of host memory for what the chunk manager holds in 14 B/param, part of it on the GPU.
TEST(CapacityClaims, ChunksTrainLargerModelsThanStaticOffload) {
  for (const char* c : {"yard-v100", "superpod-a100-80gb"}) {
    const auto chunked = capacity(c, 8, "chunked");
    const auto stat = capacity(c, 8, "zero3_offload");
    EXPECT_GT(chunked.max_params, 1.4 * stat.max_params) << c;
    EXPECT_LT(chunked.max_params, 2.5 * stat.max_params) << c;
  }
}

// ---- Search properties ----
TEST(Capacity, StrategiesOrderAndMonotoneSharding) {
  const hw::Cluster c = hw::load_cluster("dgx2-v100");
  search::CapacitySpec s;
  s.gpus = 16;
  s.base = search::default_capacity_plan();
  const auto es = search::run_capacity(c, s);
  ASSERT_EQ(es.size(), 8u);
  const char* names[] = {"ddp", "zero1", "zero2", "zero3", "zero_offload", "zero3_offload", "zero_infinity", "chunked"};
  for (size_t i = 0; i < es.size(); ++i) EXPECT_EQ(es[i].strategy, names[i]);
  EXPECT_LE(es[0].max_params, es[1].max_params);
  EXPECT_LE(es[1].max_params, es[2].max_params);
  EXPECT_LE(es[2].max_params, es[3].max_params);
  for (const auto& e : es) {
    EXPECT_TRUE(e.report.feasible) << e.strategy;
    EXPECT_GT(e.tokens_per_s, 0) << e.strategy;
    EXPECT_EQ(e.hidden, 128 * e.heads);
    // The answer is the largest: one more layer at its hidden size does not fit.
    const auto bigger = search::gpt_family(e.heads, e.layers + 1, s.seq);
    EXPECT_GT(bigger.total_params(), e.max_params);
    EXPECT_FALSE(e.binding.empty()) << e.strategy;
  }
}

TEST(Capacity, ModelParallelPlanKeepsDivisibleShapes) {
  // With tp=8, pp=2 every member has heads divisible by 8 and layers by 2, and model parallelism
  // lets zero3 train more than on the same GPUs without it.
  const hw::Cluster c = hw::load_cluster("selene-a100");
  search::CapacitySpec s;
  s.gpus = 64;
  s.base = strategies::parse_plan("tp=8,pp=2,mbs=1,recompute=full");
  const auto e = search::capacity_of(c, s, search::capacity_strategies()[3]);
  ASSERT_GT(e.max_params, 0);
  EXPECT_EQ(e.heads % 8, 0);
  EXPECT_EQ(e.layers % 2, 0);
  EXPECT_EQ(e.report.plan.tp, 8);
  EXPECT_EQ(e.report.plan.pp, 2);
  EXPECT_EQ(e.report.plan.dp, 4);
  search::CapacitySpec flat = s;
  flat.base = search::default_capacity_plan();
  EXPECT_GT(e.max_params, search::capacity_of(c, flat, search::capacity_strategies()[3]).max_params);
}

TEST(Capacity, NvmeStrategyIsUnavailableWithoutNvme) {
  const auto e = capacity("yard-v100", 8, "zero_infinity");
  EXPECT_FALSE(e.available);
  EXPECT_EQ(e.max_params, 0);
  EXPECT_NE(e.reason.find("needs NVMe"), std::string::npos) << e.reason;
}

TEST(Capacity, FamilyMatchesGpt3Shapes) {
  // k = 40 is GPT-3 13B's shape (40 x 5120, d_head 128); k = 96 is 175B's (96 x 12288).
  const auto m13 = search::gpt_family(40, 40, 2048);
  EXPECT_NEAR(m13.total_params() / 12.85e9, 1.0, 0.01);
  const auto m175 = search::gpt_family(96, 96, 2048);
  EXPECT_NEAR(m175.total_params() / 174.6e9, 1.0, 0.01);
}

}  // namespace
