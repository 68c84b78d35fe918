// Sequence / context parallelism (strategies/context): per-layer payloads counted by hand for ring
// attention, ring self-attention, DeepSpeed-Ulysses and Llama 3's all-gather CP; when ring attention
// hides its transfers; plan rules; a 1,000,000-token sequence and how memory scales with s.
#include <gtest/gtest.h>

#include <functional>

#include "common/errors.hpp"
#include "hardware/cluster.hpp"
#include "model/model.hpp"
#include "simulator/analytic/estimator.hpp"
#include "strategies/context.hpp"
#include "strategies/layer_cost.hpp"
#include "strategies/plan.hpp"

namespace {

using namespace scaleplan;
using namespace scaleplan::strategies;

struct Fixture {
  model::ModelSpec m = model::load_model("llama3-8b");
  hw::Cluster c = hw::load_cluster("dgx-h100");
};

LayerShape cp_shape(const model::ModelSpec& m, int tp, int cp, CpAlgo algo, double seq) {
  LayerShape sh;
  sh.b = 1;
  sh.s = seq / cp;
  sh.s_kv = seq;
  sh.tp = tp;
  sh.cp = cp;
  sh.sp = tp > 1;
  sh.flash = true;
  sh.cp_algo = algo;
  return sh;
}

PhaseCost layer(const Fixture& f, const LayerShape& sh) {
  return layer_cost(f.m, f.c, sh, make_tp_groups(f.c, tp_layout(TpMode::d1, sh.tp, 1)), hw::make_group(f.c, sh.cp, sh.tp));
}

// This rank's K and V of its local tokens: 2 e b (s/cp) kv_dim / tp.
double kv_block(const model::ModelSpec& m, int tp, int cp, double seq) { return 2.0 * 2 * (seq / cp) * m.kv_dim() / tp; }

TEST(ContextBytes, ByHand) {
  Fixture f;
  const int tp = 8, cp = 4;
  const double seq = 65536;
  const double kv = kv_block(f.m, tp, cp, seq);
  const double q = 2.0 * (seq / cp) * f.m.hidden / tp;
  // Ring attention: cp-1 K/V blocks forward, K/V and dK/dV backward.
  EXPECT_DOUBLE_EQ(layer(f, cp_shape(f.m, tp, cp, CpAlgo::ring, seq)).cp_bytes, 3 * (cp - 1) * kv);
  // Ring self-attention: K then V (half a block each), cp-1 steps, 3x for backward: the same bytes.
  EXPECT_DOUBLE_EQ(layer(f, cp_shape(f.m, tp, cp, CpAlgo::ring_self_attn, seq)).cp_bytes, 3 * (cp - 1) * kv);
  // Ulysses: all-to-alls of Q, K, V in and O out, mirrored in backward.
  EXPECT_DOUBLE_EQ(layer(f, cp_shape(f.m, tp, cp, CpAlgo::ulysses, seq)).cp_bytes, 2 * (2 * q + kv));
  // All-gather (Llama 3): gather K/V (output cp blocks) forward and again backward, reduce-scatter dK/dV.
  EXPECT_DOUBLE_EQ(layer(f, cp_shape(f.m, tp, cp, CpAlgo::allgather, seq)).cp_bytes, 3 * cp * kv);
  // Full recompute adds the forward's exchange again.
  LayerShape r = cp_shape(f.m, tp, cp, CpAlgo::ring, seq);
  r.recompute = Recompute::full;
  EXPECT_DOUBLE_EQ(layer(f, r).cp_bytes, 4 * (cp - 1) * kv);
}

// Ring attention hides a block transfer under the block's attention when the block is long enough
// (FORMULAS.md: c >= FLOPS / bandwidth); ring self-attention never overlaps.
TEST(ContextOverlap, RingHidesLongBlocksOnly) {
  Fixture f;
  // The same local work without the CP exchange (cp = 1, same s and s_kv): TP collectives only.
  auto without_cp = [&](LayerShape sh) {
    sh.cp = 1;
    return layer(f, sh);
  };
  const LayerShape long_sh = cp_shape(f.m, 8, 2, CpAlgo::ring, 131072);  // 64K-token blocks over NVLink
  EXPECT_DOUBLE_EQ(layer(f, long_sh).fwd_comm_s, without_cp(long_sh).fwd_comm_s);  // fully hidden
  const LayerShape rsa = cp_shape(f.m, 8, 2, CpAlgo::ring_self_attn, 131072);
  EXPECT_GT(layer(f, rsa).fwd_comm_s, without_cp(rsa).fwd_comm_s);
  // Short blocks across nodes: 512-token blocks, cp group of 8 nodes over the network.
  const LayerShape short_sh = cp_shape(f.m, 8, 8, CpAlgo::ring, 4096);
  EXPECT_GT(layer(f, short_sh).fwd_comm_s, without_cp(short_sh).fwd_comm_s);
}

void expect_plan_error(const std::function<void()>& fn, const std::string& key, const std::string& sub) {
  try {
    fn();
    ADD_FAILURE() << "no PlanError";
  } catch (const PlanError& e) {
    EXPECT_EQ(e.key(), key) << e.what();
    EXPECT_NE(std::string(e.what()).find(sub), std::string::npos) << e.what();
  }
}

TEST(ContextPlan, Rules) {
  Fixture f;
  f.m.seq = 131072;
  auto r = [&](const char* s, long long g) { return resolve_plan(parse_plan(s), f.m, f.c, g); };
  EXPECT_NO_THROW(r("tp=8,cp=4,cp_algo=ulysses", 32));  // 32 heads / 8 = 4 per rank
  expect_plan_error([&] { r("tp=8,cp=8,cp_algo=ulysses", 64); }, "cp_algo", "divisible by tp*cp=64");
  EXPECT_NO_THROW(r("tp=8,cp=8,cp_algo=allgather", 64));
  EXPECT_NO_THROW(r("tp=8,cp=8,cp_algo=ring_self_attn", 64));
  expect_plan_error([&] { r("tp=8,cp=3", 24); }, "cp", "does not divide seq");
  expect_plan_error([] { parse_plan("cp_algo=zigzag"); }, "cp_algo", "ring|ulysses|ring_self_attn|allgather");
}

// A 1,000,000-token (2^20) sequence: Llama 3 8B on 256 H100 (tp 8 x cp 32, ring attention, full
// recompute) fits; with fused attention the activations grow linearly in s at fixed cp, the
// attention compute quadratically; without fused attention the stored scores grow as s^2.
TEST(ContextLongSequence, MillionTokens) {
  Fixture f;
  f.m.seq = 1 << 20;
  analytic::Estimator est(f.m, f.c);
  const Plan p = resolve_plan(parse_plan("tp=8,cp=32,sp=on,mbs=1,gbs=32,recompute=full,zero=1"), f.m, f.c, 256);
  const StepReport rep = est.evaluate(p);
  EXPECT_TRUE(rep.feasible) << rep.reason;
  EXPECT_GT(rep.comm.cp, 0);
  EXPECT_GT(rep.throughput.tokens_per_s, 0);

  auto table = [&](double seq, bool flash, int cp) {
    model::ModelSpec m = f.m;
    m.seq = static_cast<long long>(seq);
    hw::Cluster c = f.c;
    c.sw.flash_attention = flash;
    analytic::Estimator e(m, c);
    const std::string s = "tp=8,sp=on,mbs=1,recompute=selective,cp=" + std::to_string(cp);
    return e.prepare(resolve_plan(parse_plan(s), m, c, 8LL * cp));
  };
  // Fused attention, fixed cp: bytes per layer double with s.
  const auto a = table(1 << 19, true, 32), b = table(1 << 20, true, 32);
  EXPECT_NEAR(b.layer_act / a.layer_act, 2.0, 1e-9);
  // cp doubled with s: per-rank activations stay put.
  const auto c2 = table(1 << 20, true, 64);
  EXPECT_NEAR(c2.layer_act / a.layer_act, 1.0, 1e-9);
  // Attention compute per rank at fixed cp grows ~ s^2 (it dominates at this length): forward time
  // ratio between 3 and 4 for 2x the sequence.
  EXPECT_GT(b.lc.fwd_s / a.lc.fwd_s, 3.0);
  EXPECT_LT(b.lc.fwd_s / a.lc.fwd_s, 4.0);
  // Unfused attention without selective recompute keeps the s x s scores: ~4x for 2x s at long s.
  auto table_none = [&](double seq) {
    model::ModelSpec m = f.m;
    m.seq = static_cast<long long>(seq);
    hw::Cluster c = f.c;
    c.sw.flash_attention = false;
    analytic::Estimator e(m, c);
    return e.prepare(resolve_plan(parse_plan("tp=8,sp=on,mbs=1,cp=32"), m, c, 256));
  };
  const double r = table_none(1 << 20).layer_act / table_none(1 << 19).layer_act;
  EXPECT_GT(r, 3.9);
  EXPECT_LE(r, 4.0);
}

// Each algorithm's cost component is found by its name in the registry.
TEST(ContextRegistry, Names) {
  EXPECT_STREQ(cp_model(CpAlgo::ring).name, "ring");
  EXPECT_STREQ(cp_model(CpAlgo::ulysses).name, "ulysses");
  EXPECT_STREQ(cp_model(CpAlgo::ring_self_attn).name, "ring_self_attn");
  EXPECT_STREQ(cp_model(CpAlgo::allgather).name, "allgather");
}

}  // namespace
