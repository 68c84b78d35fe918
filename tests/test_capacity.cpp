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
// one V100-32GB with 1.5 TB of host memory. DISAGREES (+51%): we find ~60B, bound by host memory.
// What we checked, resource by resource:
//  - host: DeepSpeed's own estimate (estimate_zero3_model_states_mem_needs_all_cold, offload of
//    params and optimizer: 16-bit weight 2 + fp32 master and moments 12 + fp32 gradient 4 = 18
//    B/param, times additional_buffer_factor 1.5 for the pinned buffers = 27 B/param; the
//    max(4 x GPUs, 18) term is 18 with one GPU). 1536 GiB / 27 B = 61B. The DGX-2's "1.5 TB" is 24 x
//    64 GiB DIMMs = 1536 GiB; read as 1.5e12 B it still gives 55.6B (+39%). To bind at 40B (+25%:
//    50B) the host would need ~33 B/param, which no DeepSpeed buffer accounts for.
//  - GPU: DeepSpeed's estimate is one gathered layer, 4 P_L (16-bit weight + gradient); with the
//    claim's unpublished batch we charge mbs=1 with activation checkpoints (full recompute), and the
//    GPU holds under half its 32 GB at ~60B: activation checkpoints of a larger batch would have to
//    take > 25 GB to bind at 40B -- possible for a training run, but not a model-size limit.
// 40B is the size DeepSpeed demonstrated, not a measured limit. Pinned: the host binds, the limit
// is host memory / 27 B, at or above the demonstrated 40B, and the GPU is far from full.
TEST(CapacityClaims, Zero3OffloadIsHostBoundAboveTheDemonstrated40B) {
  const auto e = capacity("dgx2-v100", 1, "zero3_offload");
  ASSERT_GT(e.max_params, 0) << e.reason;
  EXPECT_EQ(e.binding, "host") << e.binding_reason;
  EXPECT_GE(e.max_params, 40e9);
  const double host = hw::load_cluster("dgx2-v100").host.memory_bytes;
  EXPECT_NEAR(e.max_params * 27 / host, 1.0, 0.03);
  EXPECT_LT(e.report.memory.total(), 0.5 * e.report.memory.capacity);
}

// ---- ZeRO (Rajbhandari et al. 2020, sec. 10 "model size"), 16 V100-32GB of a DGX-2, no model
// parallelism: data parallel OOMs at ~1.4B, ZeRO-1 (P_os) reaches ~6B, ZeRO-2 (P_os+g) ~13B. ----
// ZeRO-1: 4 + 12/16 = 4.75 B/param of GPU memory; ZeRO-2: 2 + 14/16 = 2.875 B/param.
TEST(CapacityClaims, ZeroPaperZero1SixBillion) { expect_claim(capacity("dgx2-v100", 16, "zero1"), 6e9, 0.25, "gpu"); }
TEST(CapacityClaims, ZeroPaperZero2ThirteenBillion) { expect_claim(capacity("dgx2-v100", 16, "zero2"), 13e9, 0.25, "gpu"); }

// Data parallel: the GPU binds at 16 B/param (the paper's model states) + 4 B/param for the
// baseline's "flattened fp32 buffer" the gradients are fused into for the all-reduce (ZeRO paper
// sec. 3.2, "6 GB for a 1.5B model"; EstimatorOptions::dp_fused_grad_buffer_bytes, set by
// default_capacity_options) + the recomputed activations and the CUDA reserve:
// (32 GiB - ~1.6 GiB) / 20 B = ~1.6B (+16%). Without that buffer (today's DDP, whose buckets are
// views of the gradients) it would be ~2.0B (+46%).
TEST(CapacityClaims, ZeroPaperDataParallelOutOfMemoryAt1_4B) {
  expect_claim(capacity("dgx2-v100", 16, "ddp"), 1.4e9, 0.25, "gpu");
}
// The same baseline on one GPU (ZeRO-Offload paper, Ren et al. 2021, abstract: "PyTorch alone for a
// 1.4B parameter model, the largest that can be trained without running out of memory" on a V100).
TEST(CapacityClaims, ZeroOffloadPaperPyTorchAlone1_4BOnOneV100) {
  expect_claim(capacity("dgx2-v100", 1, "ddp"), 1.4e9, 0.25, "gpu");
}
// The buffer is the baseline's only: off in the estimator by default (published runs unchanged),
// charged for zero=0 only, and not on top of the megatron recipe's fp32 main gradient (the
// all-reduce buffer itself).
TEST(CapacityClaims, FusedGradientBufferIsTheBaselinesOnly) {
  const model::ModelSpec m = search::gpt_family(16, 24, 1024);
  const hw::Cluster c = hw::load_cluster("dgx2-v100");
  const analytic::Estimator plain(m, c), base(m, c, search::default_capacity_options());
  analytic::EstimatorOptions mo = search::default_capacity_options();
  mo.recipe = analytic::EstimatorOptions::RecipeKind::megatron;
  const analytic::Estimator meg(m, c, mo), meg_plain(m, c, [] {
    analytic::EstimatorOptions o;
    o.recipe = analytic::EstimatorOptions::RecipeKind::megatron;
    return o;
  }());
  auto plan = [&](const char* s) { return strategies::resolve_plan(strategies::parse_plan(s), m, c, 16); };
  const auto p0 = plan("zero=0,mbs=1,recompute=full"), p1 = plan("zero=1,mbs=1,recompute=full");
  EXPECT_NEAR((base.evaluate(p0).memory.buffers - plain.evaluate(p0).memory.buffers) / (4 * m.total_params()), 1.0, 1e-9);
  EXPECT_EQ(base.evaluate(p1).memory.buffers, plain.evaluate(p1).memory.buffers);
  EXPECT_EQ(meg.evaluate(p0).memory.buffers, meg_plain.evaluate(p0).memory.buffers);
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
