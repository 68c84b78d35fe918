// Megatron-Core r0.8 data-parallel and loss-head mechanisms (issue 15, branch acc10;
// docs/accuracy-acc10.md): the DDP bucket size, the bucket holding the word embedding that stays
// exposed, the interleaved schedule's per-chunk gradient sync window, the fp32 gradient reduce of
// bf16 runs and the unfused vocab-parallel cross-entropy's bytes, each pinned against hand-computed
// numbers.
#include <gtest/gtest.h>

#include <string>

#include "hardware/collectives.hpp"
#include "hardware/stack.hpp"
#include "simulator/analytic/estimator.hpp"
#include "simulator/analytic/mcore_ddp.hpp"
#include "strategies/layer_cost.hpp"

namespace {

using namespace scaleplan;

// The Megatron-LM README (r0.8.0 scaling table) 1.7B row's shape: 24 x 2048, 16 heads, vocab 131072,
// seq 4096, untied embeddings.
model::ModelSpec gpt_1_7b_mcore() {
  return model::parse_model("name: gpt-1.7b-mcore\nlayers: 24\nhidden: 2048\nheads: 16\nffn: 8192\nvocab: 131072\n"
                            "seq: 4096\nactivation: gelu\ntied_embeddings: false\n",
                            "t.yaml");
}

TEST(McoreDdp, BucketIsMaxOf40MAnd1MPerDpRank) {
  hw::Software sw;
  EXPECT_EQ(analytic::dp_bucket_params(sw, 48), 0);  // no bucket model on a stack that gives none
  sw.dp_bucket_min_params = 4e7;
  sw.dp_bucket_params_per_dp_rank = 1e6;
  EXPECT_DOUBLE_EQ(analytic::dp_bucket_params(sw, 8), 4e7);
  EXPECT_DOUBLE_EQ(analytic::dp_bucket_params(sw, 48), 4.8e7);
  EXPECT_DOUBLE_EQ(analytic::dp_bucket_params(sw, 96), 9.6e7);
}

TEST(McoreDdp, EdgeBucketHoldsTheWordEmbeddingOrAWholeBucket) {
  // 1.7B at tp=1: the 131072 x 2048 = 268,435,456-parameter embedding is larger than a 48M bucket.
  EXPECT_DOUBLE_EQ(analytic::dp_edge_bucket_params(4.8e7, 268435456.0, 1.7e9), 268435456.0);
  // A small embedding shares the last bucket: a whole bucket.
  EXPECT_DOUBLE_EQ(analytic::dp_edge_bucket_params(4.8e7, 1e7, 1.7e9), 4.8e7);
  // Never more than the stage holds; nothing without a bucket model.
  EXPECT_DOUBLE_EQ(analytic::dp_edge_bucket_params(4.8e7, 268435456.0, 1e8), 1e8);
  EXPECT_EQ(analytic::dp_edge_bucket_params(0, 268435456.0, 1.7e9), 0);
}

TEST(McoreDdp, InterleavedChunkSyncWindow) {
  EXPECT_DOUBLE_EQ(analytic::dp_window_scale(1, 8, 32), 1.0);  // 1F1B: the last microbatch's backward
  // pp=8, v=3: chunk 2 syncs with 2 x 8 chunk-backwards + its own last one left: 17 / 3 stage-backwards.
  EXPECT_DOUBLE_EQ(analytic::dp_window_scale(3, 8, 32), 17.0 / 3.0);
  // pp=2, v=2 (the 70B row): (1 x 2 + 1) / 2 = 1.5.
  EXPECT_DOUBLE_EQ(analytic::dp_window_scale(2, 2, 8), 1.5);
  // Capped at the step's m x v chunk-backwards: pp=4, v=2, m=1 -> min(2, 5) / 2 = 1.
  EXPECT_DOUBLE_EQ(analytic::dp_window_scale(2, 4, 1), 1.0);
}

TEST(McoreDdp, StackCarriesTheR080Values) {
  const hw::Software s = hw::load_stack("megatron-core-2024");
  EXPECT_EQ(s.grad_reduce_bytes, 4);  // bf16 -> accumulate_allreduce_grads_in_fp32 (arguments.py)
  EXPECT_DOUBLE_EQ(s.dp_bucket_min_params, 4e7);
  EXPECT_DOUBLE_EQ(s.dp_bucket_params_per_dp_rank, 1e6);
  EXPECT_TRUE(s.dp_chunk_sync);
  EXPECT_DOUBLE_EQ(s.ddp_grad_passes, 4);  // zero 1 + NaN-check norm 1 + 1/dp scaling 2
  EXPECT_DOUBLE_EQ(s.embedding_grad_bytes_per_param, 12);  // zero-fill 2 + main_grad add_ 4 + 2 + 4
  EXPECT_DOUBLE_EQ(s.ce_logit_bytes_fwd, 38);  // 6 + 4 + 8 + 8 + 4 + 8
  EXPECT_DOUBLE_EQ(s.ce_logit_bytes_bwd, 14);  // 8 + 6
  // Other stacks keep today's behaviour.
  const hw::Software n = hw::load_stack("nemo-2024");
  EXPECT_EQ(n.dp_bucket_min_params, 0);
  EXPECT_FALSE(n.dp_chunk_sync);
  EXPECT_EQ(n.ce_logit_bytes_fwd, 0);
  EXPECT_EQ(n.ddp_grad_passes, 0);
  EXPECT_EQ(n.embedding_grad_bytes_per_param, 0);
}

// The cross-entropy's extra bytes: (38 - 12) per logit element in forward and (14 - 6) in backward,
// streamed at 3350 GB/s x 0.85. 1.7B, tp=1, one microbatch of 4096 tokens: N = 4096 x 131072 =
// 536,870,912 logits; forward +26 N = 13.959 GB -> 4.9021 ms; backward +8 N = 4.295 GB -> 1.5083 ms.
TEST(McoreDdp, UnfusedCrossEntropyBytes) {
  const model::ModelSpec m = gpt_1_7b_mcore();
  hw::Cluster c = hw::load_cluster("dgx-h100");
  strategies::LayerShape sh;
  sh.b = 1, sh.s = 4096, sh.s_kv = 4096, sh.tp = 1, sh.flash = true;
  const hw::Group g{};
  const strategies::PhaseCost base = strategies::head_cost(m, c, sh, g);
  c.sw.ce_logit_bytes_fwd = 38;
  c.sw.ce_logit_bytes_bwd = 14;
  const strategies::PhaseCost mc = strategies::head_cost(m, c, sh, g);
  const double N = 4096.0 * 131072.0, rate = 3350e9 * 0.85;
  EXPECT_NEAR(mc.fwd_s - base.fwd_s, 26 * N / rate, 1e-12);
  EXPECT_NEAR(mc.bwd_s - base.bwd_s, 8 * N / rate, 1e-12);
  EXPECT_NEAR(26 * N / rate, 4.9021e-3, 1e-6);
  EXPECT_NEAR(mc.model_flops, base.model_flops, 0);  // the FLOP count does not change
}

// 1.7B, dp=48 (6 nodes x 8), tp=1, 4 microbatches of 1: the fp32 reduce-scatter (6.8 GB) and the bf16
// all-gather hide under the last backward / first forward, but the bucket with the word embedding
// (268,435,456 parameters, larger than the max(40M, 48M) bucket) is reduce-scattered after the
// backward ends and all-gathered before the forward starts. Ring over the node's NICs:
// min(NVLink 450 x 0.8, 8 x 50 x 0.8) = 320 GB/s per GPU, 5 us per step:
// 2 x 47 x 5 us + 47/48 x (4 + 2) x 268435456 / 320e9 = 0.47 ms + 4.9283 ms = 5.3983 ms.
TEST(McoreDdp, EmbeddingBucketStaysExposed) {
  const model::ModelSpec m = gpt_1_7b_mcore();
  hw::Cluster c = hw::load_cluster("dgx-h100");
  hw::use_stack(c, "megatron-core-2024");
  const strategies::Plan p = strategies::resolve_plan(
      strategies::parse_plan("tp=1,pp=1,mbs=1,gbs=192,zero=1,recompute=none,precision=bf16"), m, c, 48);
  ASSERT_EQ(p.dp, 48);
  const double floor_s = 2 * 47 * 5e-6 + 47.0 / 48.0 * 6 * 268435456.0 / 320e9;
  EXPECT_NEAR(analytic::Estimator(m, c).evaluate(p).dp_comm_exposed_s, floor_s, 1e-9);
  EXPECT_NEAR(floor_s, 5.3983e-3, 1e-7);
  hw::Cluster nb = c;
  nb.sw.dp_bucket_min_params = nb.sw.dp_bucket_params_per_dp_rank = 0;
  EXPECT_EQ(analytic::Estimator(m, nb).evaluate(p).dp_comm_exposed_s, 0);  // all of it hidden without buckets
}

// The per-chunk sync only widens the window: with it the exposed DP time of an interleaved plan is no
// larger, and a 1F1B plan is unchanged.
TEST(McoreDdp, ChunkSyncWidensOnlyTheInterleavedWindow) {
  const model::ModelSpec m = model::load_model("gpt3-175b");
  hw::Cluster c = hw::load_cluster("dgx-h100");
  hw::use_stack(c, "megatron-core-2024");
  hw::Cluster off = c;
  off.sw.dp_chunk_sync = false;
  const strategies::Plan pi = strategies::resolve_plan(
      strategies::parse_plan("tp=8,pp=8,vpp=3,dp=16,mbs=1,gbs=256,zero=1,sp=on,recompute=none,precision=bf16"), m, c, 1024);
  const double on_s = analytic::Estimator(m, c).evaluate(pi).dp_comm_exposed_s;
  const double off_s = analytic::Estimator(m, off).evaluate(pi).dp_comm_exposed_s;
  EXPECT_GT(off_s, 0);
  EXPECT_LT(on_s, off_s);
  const strategies::Plan p1 = strategies::resolve_plan(
      strategies::parse_plan("tp=8,pp=8,dp=16,mbs=1,gbs=256,zero=1,sp=on,recompute=none,precision=bf16"), m, c, 1024);
  EXPECT_DOUBLE_EQ(analytic::Estimator(m, c).evaluate(p1).dp_comm_exposed_s,
                   analytic::Estimator(m, off).evaluate(p1).dp_comm_exposed_s);
}

// The dense embedding gradient and its fp32 main-grad accumulation, per microbatch: 12 B x 131072 x 2048
// (tp=1) = 3.2212 GB at 3350 GB/s x 0.85 = 1.13124 ms, plus one kernel (4 us); at tp=8 an eighth of the bytes.
TEST(McoreDdp, DenseEmbeddingGradient) {
  const model::ModelSpec m = gpt_1_7b_mcore();
  hw::Cluster c = hw::load_cluster("dgx-h100");
  strategies::LayerShape sh;
  sh.b = 1, sh.s = 4096, sh.s_kv = 4096, sh.tp = 1, sh.flash = true;
  const strategies::PhaseCost base = strategies::embedding_cost(m, c, sh, hw::Group{});
  c.sw.embedding_grad_bytes_per_param = 12;
  const double rate = 3350e9 * 0.85;
  EXPECT_NEAR(strategies::embedding_cost(m, c, sh, hw::Group{}).bwd_s - base.bwd_s, 12 * 131072.0 * 2048 / rate + 4e-6, 1e-12);
  EXPECT_NEAR(12 * 131072.0 * 2048 / rate, 1.13124e-3, 1e-8);
  EXPECT_EQ(strategies::embedding_cost(m, c, sh, hw::Group{}).fwd_s, base.fwd_s);  // backward only
}

// The DDP's passes over the fp32 gradient buffer: 4 passes x 4 B x 4e9 parameters (a 32B model at tp=8)
// = 64 GB at 3350 GB/s x 0.85 = 22.4759 ms, plus one kernel for the zero and two per bucket
// (ceil(4e9 / 4.8e7) = 84 buckets): (1 + 168) x 4 us = 0.676 ms -> 23.1519 ms.
TEST(McoreDdp, GradBufferPasses) {
  const hw::Device h = hw::load_device("h100-sxm-80gb");
  EXPECT_NEAR(analytic::ddp_grad_pass_s(h, 4, 4, 4e9, 4.8e7), 64e9 / (3350e9 * 0.85) + 169 * 4e-6, 1e-12);
  EXPECT_NEAR(analytic::ddp_grad_pass_s(h, 4, 4, 4e9, 4.8e7), 23.1519e-3, 1e-7);
  EXPECT_EQ(analytic::ddp_grad_pass_s(h, 0, 4, 4e9, 4.8e7), 0);
}

// In the estimator the passes add to the step and to the compute breakdown, on the slowest stage's
// parameters; the 1.7B dp=48 plan of EmbeddingBucketStaysExposed.
TEST(McoreDdp, GradBufferPassesAddToTheStep) {
  const model::ModelSpec m = gpt_1_7b_mcore();
  hw::Cluster c = hw::load_cluster("dgx-h100");
  hw::use_stack(c, "megatron-core-2024");
  hw::Cluster off = c;
  off.sw.ddp_grad_passes = 0;
  const strategies::Plan p = strategies::resolve_plan(
      strategies::parse_plan("tp=1,pp=1,mbs=1,gbs=192,zero=1,recompute=none,precision=bf16"), m, c, 48);
  const analytic::Estimator est(m, c);
  const double P = est.params_on_stage(p, 0);
  const double t = analytic::ddp_grad_pass_s(c.device, 4, 4, P, 4.8e7);
  const strategies::StepReport a = est.evaluate(p), b = analytic::Estimator(m, off).evaluate(p);
  EXPECT_NEAR(a.time.step_s - b.time.step_s, t, 1e-12);
  EXPECT_NEAR(a.time.compute_s - b.time.compute_s, t, 1e-12);
  EXPECT_GT(t, 16 * 1.6e9 / (3350e9 * 0.85));  // at least 16 B per parameter of a ~1.7e9-parameter GPU
}

}  // namespace
