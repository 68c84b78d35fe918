// Tensor parallelism 1d / 2d / 2.5d / 3d (strategies/tensor_nd): per-linear collectives against the
// complexity table of FORMULAS.md (Colossal-AI docs; Xu et al. 2021, Wang et al. 2021, Bian et al.
// 2021) and hand counts; layer-level payloads; memory and plan rules.
//
// Units of the table (documented in docs/parallelism.md "Tensor parallel 1d / 2d / 2.5d / 3d"): the wire bytes one
// rank sends for one linear layer y = x W, forward + backward, when x, W and y all have M bytes:
//   1d   2(P-1)/P    in units of M
//   2d   6(q-1)/q    in units of M/q       (P = q^2)
//   2.5d 3(q-1)(d+1)/(dq) in units of M/q  (P = d q^2; the depth all-reduce of dW counted apart)
//   3d   6(q-1)/q^3  in units of M         (P = q^3)
#include <gtest/gtest.h>

#include <functional>

#include "common/errors.hpp"
#include "hardware/cluster.hpp"
#include "model/model.hpp"
#include "simulator/analytic/estimator.hpp"
#include "strategies/layer_cost.hpp"
#include "strategies/plan.hpp"
#include "strategies/tensor_nd.hpp"

namespace {

using namespace scaleplan;
using namespace scaleplan::strategies;

constexpr double M = 1.0e9;

TEST(TensorNdTable, OneD) {
  for (int P : {2, 4, 8, 16}) {
    const TpLayout l = tp_layout(TpMode::d1, P, 1);
    const double want = 2.0 * (P - 1) / P * M;
    EXPECT_NEAR(linear_wire_bytes(l, LinearRole::column, M, M, M), want, 1e-6 * M) << P;
    EXPECT_NEAR(linear_wire_bytes(l, LinearRole::row, M, M, M), want, 1e-6 * M) << P;
  }
}

TEST(TensorNdTable, TwoD) {
  for (int q : {2, 3, 4, 8}) {
    const TpLayout l = tp_layout(TpMode::d2, q * q, 1);
    ASSERT_EQ(l.q, q);
    EXPECT_NEAR(linear_wire_bytes(l, LinearRole::column, M, M, M) / (M / q), 6.0 * (q - 1) / q, 1e-9) << q;
  }
}

TEST(TensorNdTable, TwoAndAHalfD) {
  for (auto [q, d] : {std::pair{2, 2}, {2, 4}, {4, 2}, {3, 3}, {4, 4}}) {
    const TpLayout l = tp_layout(TpMode::d2_5, d * q * q, d);
    ASSERT_EQ(l.q, q);
    ASSERT_EQ(l.d, d);
    const double table = 3.0 * (q - 1) * (d + 1) / (static_cast<double>(d) * q);
    EXPECT_NEAR(linear_wire_bytes(l, LinearRole::column, M, M, M, false) / (M / q), table, 1e-9) << q << "," << d;
    // With depth 1 it is 2d's 6(q-1)/q.
    const TpLayout l1 = tp_layout(TpMode::d2_5, q * q, 1);
    EXPECT_NEAR(linear_wire_bytes(l1, LinearRole::column, M, M, M) / (M / q), 6.0 * (q - 1) / q, 1e-9);
    // The depth all-reduce of the weight gradient (W/q^2 per rank over d ranks) comes on top.
    const double depth = 2.0 * (d - 1) / d * M / (q * q);
    EXPECT_NEAR(linear_wire_bytes(l, LinearRole::column, M, M, M, true) - linear_wire_bytes(l, LinearRole::column, M, M, M, false),
                depth, 1e-6 * M);
  }
}

TEST(TensorNdTable, ThreeD) {
  for (int q : {2, 3, 4}) {
    const TpLayout l = tp_layout(TpMode::d3, q * q * q, 1);
    ASSERT_EQ(l.q, q);
    EXPECT_NEAR(linear_wire_bytes(l, LinearRole::row, M, M, M) / M, 6.0 * (q - 1) / (q * q * q), 1e-9) << q;
  }
}

// Hand counts of the collectives of one linear with distinct A (input), W (weight), Y (output) sizes.
TEST(TensorNdHandCount, PerLinear) {
  const double A = 600, W = 900, Y = 1200;
  TpColl c[kMaxTpColls];
  // 1d: the column linear all-reduces dA in backward, the row linear Y in forward.
  ASSERT_EQ(tp_model(TpMode::d1).linear_colls(tp_layout(TpMode::d1, 8, 1), LinearRole::column, A, W, Y, c), 1);
  EXPECT_EQ(c[0].kind, hw::Coll::all_reduce);
  EXPECT_EQ(c[0].phase, TpPhase::bwd);
  EXPECT_EQ(c[0].bytes, A);
  ASSERT_EQ(tp_model(TpMode::d1).linear_colls(tp_layout(TpMode::d1, 8, 1), LinearRole::row, A, W, Y, c), 1);
  EXPECT_EQ(c[0].phase, TpPhase::fwd);
  EXPECT_EQ(c[0].bytes, Y);
  // 2d, q = 3: forward gathers A/q on the row and W/q on the column; backward gathers W/q, scatters
  // dA (A/q), gathers A/q, scatters dW (W/q). 4 all-gathers, 2 reduce-scatters, 2 forward, 4 backward.
  {
    const int n = tp_model(TpMode::d2).linear_colls(tp_layout(TpMode::d2, 9, 1), LinearRole::column, A, W, Y, c);
    ASSERT_EQ(n, 6);
    int ag = 0, rs = 0, fwd = 0;
    double bytes = 0;
    for (int i = 0; i < n; ++i) {
      ag += c[i].kind == hw::Coll::all_gather;
      rs += c[i].kind == hw::Coll::reduce_scatter;
      fwd += c[i].phase == TpPhase::fwd;
      bytes += c[i].bytes;
      EXPECT_EQ(c[i].size, 3);
    }
    EXPECT_EQ(ag, 4);
    EXPECT_EQ(rs, 2);
    EXPECT_EQ(fwd, 2);
    EXPECT_DOUBLE_EQ(bytes, 3 * A / 3 + 3 * W / 3);
  }
  // 2.5d, d = 2, q = 2: activations A/(dq), weights W/q, then one depth all-reduce of W/q^2 over d.
  {
    const int n = tp_model(TpMode::d2_5).linear_colls(tp_layout(TpMode::d2_5, 8, 2), LinearRole::column, A, W, Y, c);
    ASSERT_EQ(n, 7);
    EXPECT_DOUBLE_EQ(c[0].bytes, A / 4);
    EXPECT_DOUBLE_EQ(c[1].bytes, W / 2);
    EXPECT_EQ(c[6].kind, hw::Coll::all_reduce);
    EXPECT_EQ(c[6].axis, TpAxis::a2);
    EXPECT_EQ(c[6].size, 2);
    EXPECT_DOUBLE_EQ(c[6].bytes, W / 4);
  }
  // 3d, q = 2: forward AG A/q^2, AG W/q^2, RS Y/q^2; backward AG dY/q^2, RS dA/q^2, RS dW/q^2.
  {
    const int n = tp_model(TpMode::d3).linear_colls(tp_layout(TpMode::d3, 8, 1), LinearRole::column, A, W, Y, c);
    ASSERT_EQ(n, 6);
    const hw::Coll kinds[] = {hw::Coll::all_gather, hw::Coll::all_gather, hw::Coll::reduce_scatter,
                              hw::Coll::all_gather, hw::Coll::reduce_scatter, hw::Coll::reduce_scatter};
    const double bytes[] = {A / 4, W / 4, Y / 4, Y / 4, A / 4, W / 4};
    for (int i = 0; i < 6; ++i) {
      EXPECT_EQ(c[i].kind, kinds[i]) << i;
      EXPECT_DOUBLE_EQ(c[i].bytes, bytes[i]) << i;
      EXPECT_EQ(c[i].phase, i < 3 ? TpPhase::fwd : TpPhase::bwd) << i;
    }
  }
}

model::ModelSpec toy() {
  model::ModelSpec m;
  m.name = "toy";
  m.layers = 8;
  m.hidden = 1024;
  m.heads = 16;
  m.kv_heads = 16;
  m.ffn = 4096;
  m.vocab = 32000;
  m.seq = 2048;
  m.bias = false;
  m.dropout = false;
  m.tied_embeddings = true;
  m.position = model::Position::rope;
  return m;
}

LayerShape shape(TpMode mode, int tp, int depth, int b = 4) {
  LayerShape sh;
  sh.b = b;
  sh.s = 2048;
  sh.s_kv = 2048;
  sh.tp = tp;
  sh.tp_mode = mode;
  sh.tp_depth = depth;
  sh.flash = true;
  return sh;
}

PhaseCost layer(const model::ModelSpec& m, const hw::Cluster& c, const LayerShape& sh) {
  const TpGroups g = make_tp_groups(c, tp_layout(sh.tp_mode, sh.tp, sh.tp_depth));
  return layer_cost(m, c, sh, g, hw::make_group(c, 1, sh.tp));
}

// Layer payload (contract bytes, one microbatch): 1d = 4 all-reduces of e T h (Megatron); 2d = the
// six collectives of each of the four linears plus the norm statistics, counted by hand.
TEST(TensorNdLayer, ContractBytesByHand) {
  const model::ModelSpec m = toy();
  const hw::Cluster c = hw::load_cluster("dgx-h100");
  const double e = 2, T = 4 * 2048.0, h = 1024, f = 4096;
  EXPECT_DOUBLE_EQ(layer(m, c, shape(TpMode::d1, 4, 1)).tp_bytes, 4 * e * T * h);
  const double q = 2;
  // (K, N) of QKV, proj, FC1, FC2; each linear: 3 activation collectives of e T K / q, 3 weight ones of e K N / q.
  const double lin[4][2] = {{h, 3 * h}, {h, h}, {h, f}, {f, h}};
  double want = 0;
  for (const auto& kn : lin) want += 3 * e * T * kn[0] / q + 3 * e * kn[0] * kn[1] / q;
  want += 4 * (2 * 4.0 * T / q);  // norm statistics: 2 norms x fwd + bwd, 2 fp32 per local token
  EXPECT_DOUBLE_EQ(layer(m, c, shape(TpMode::d2, 4, 1)).tp_bytes, want);
}

// Per-rank FLOPs are total / P in every mode; activations are all split by P in the grid modes
// (the same bytes as 1d with Megatron SP), and 2.5d holds d x the weights of 2d at the same P.
TEST(TensorNdLayer, MemoryAndComputeScaling) {
  const model::ModelSpec m = toy();
  const hw::Cluster c = hw::load_cluster("dgx-h100");
  const double f1 = layer(m, c, shape(TpMode::d1, 16, 1, 16)).model_flops;
  EXPECT_DOUBLE_EQ(layer(m, c, shape(TpMode::d2, 16, 1, 16)).model_flops, f1);
  EXPECT_DOUBLE_EQ(layer(m, c, shape(TpMode::d2_5, 16, 4, 16)).model_flops, f1);

  analytic::Estimator est(m, c);
  auto plan = [&](const char* s) { return resolve_plan(parse_plan(s), m, c, 16); };
  const analytic::LayerTable sp1 = est.prepare(plan("tp=16,sp=on,mbs=16"));
  const analytic::LayerTable g2 = est.prepare(plan("tp=16,tp_mode=2d,mbs=16"));
  const analytic::LayerTable g25 = est.prepare(plan("tp=16,tp_mode=2.5d,tp_depth=4,mbs=16"));
  EXPECT_DOUBLE_EQ(g2.layer_act, sp1.layer_act);
  EXPECT_DOUBLE_EQ(g25.layer_act, sp1.layer_act);
  // pp = 1, tied embeddings, RoPE: the layers, one vocab-parallel word embedding, the final norm.
  const double split = m.attn_weight_params() + m.mlp_weight_params();
  const double rest = m.norm_params();
  auto want = [&](double wdiv, int tp) { return m.layers * (split / wdiv + rest) + m.vocab * m.hidden / static_cast<double>(tp) + m.final_norm_params(); };
  EXPECT_NEAR(est.params_on_stage(plan("tp=16,tp_mode=2d,mbs=16"), 0), want(16, 16), 1);
  EXPECT_NEAR(est.params_on_stage(plan("tp=16,tp_mode=2.5d,tp_depth=4,mbs=16"), 0), want(4, 16), 1);
  EXPECT_NEAR(est.params_on_stage(plan("tp=8,tp_mode=3d,mbs=4"), 0), want(8, 8), 1);
  EXPECT_NEAR(est.params_on_stage(plan("tp=8"), 0), want(8, 8), 1);
}

// Across nodes 1d all-reduces the full activation over the slow network; 3d moves 1/q^2 pieces
// and on a long-sequence microbatch (activations >> weights) exposes less TP time.
TEST(TensorNdLayer, ThreeDBeatsOneDAcrossNodesOnActivationHeavyLayers) {
  model::ModelSpec m = toy();
  m.seq = 32768;
  const hw::Cluster c = hw::load_cluster("selene-a100");  // 8 GPUs per node: tp = 64 spans 8 nodes
  LayerShape s1 = shape(TpMode::d1, 64, 1, 16), s3 = shape(TpMode::d3, 64, 1, 16);
  s1.s = s1.s_kv = s3.s = s3.s_kv = 32768;
  s1.sp = true;
  const PhaseCost a = layer(m, c, s1), b = layer(m, c, s3);
  EXPECT_LT(b.fwd_comm_s + b.bwd_comm_exposed_s, a.fwd_comm_s + a.bwd_comm_exposed_s);
}

void expect_plan_error(const std::function<void()>& f, const std::string& key, const std::string& substr) {
  try {
    f();
    ADD_FAILURE() << "no PlanError (wanted key " << key << ")";
  } catch (const PlanError& e) {
    EXPECT_EQ(e.key(), key) << e.what();
    EXPECT_NE(std::string(e.what()).find(substr), std::string::npos) << e.what();
  }
}

TEST(TensorNdPlan, Rules) {
  const model::ModelSpec m = model::load_model("gpt3-175b");
  const hw::Cluster c = hw::load_cluster("selene-a100");
  auto r = [&](const char* s, long long g) { return resolve_plan(parse_plan(s), m, c, g); };
  EXPECT_NO_THROW(r("tp=16,tp_mode=2d,mbs=4", 64));
  EXPECT_NO_THROW(r("tp=8,tp_mode=2.5d,tp_depth=2,mbs=4", 64));
  EXPECT_NO_THROW(r("tp=8,tp_mode=3d,mbs=4", 64));
  expect_plan_error([&] { r("tp=8,tp_mode=2d,mbs=4", 64); }, "tp", "q^2");
  expect_plan_error([&] { r("tp=16,tp_mode=3d,mbs=4", 64); }, "tp", "q^3");
  expect_plan_error([&] { r("tp=8,tp_mode=2.5d,mbs=4", 64); }, "tp_depth", "tp_depth * q^2");
  expect_plan_error([&] { r("tp=8,tp_mode=2.5d,tp_depth=3,mbs=4", 64); }, "tp_depth", "tp_depth * q^2");
  expect_plan_error([&] { r("tp=8,tp_depth=2", 64); }, "tp_depth", "only tp_mode=2.5d");
  expect_plan_error([&] { r("tp=16,tp_mode=2d,mbs=2", 64); }, "mbs", "multiple of 4");
  expect_plan_error([&] { r("tp=8,tp_mode=3d,mbs=2", 64); }, "mbs", "multiple of 4");
  expect_plan_error([&] { r("tp=16,tp_mode=2d,mbs=4,sp=on", 64); }, "sp", "already distributes");
  const model::ModelSpec moe = model::load_model("mixtral-8x7b");
  expect_plan_error([&] { resolve_plan(parse_plan("tp=4,tp_mode=2d,mbs=2"), moe, c, 64); }, "tp_mode", "MoE");
  // The grid side must divide heads: 25 = 5^2 and heads = 96.
  expect_plan_error([&] { r("tp=25,tp_mode=2d,mbs=5", 25); }, "tp", "does not divide heads");
}

TEST(TensorNdPlan, ExactRoot) {
  EXPECT_EQ(exact_root(64, 2), 8);
  EXPECT_EQ(exact_root(64, 3), 4);
  EXPECT_EQ(exact_root(8, 2), 0);
  EXPECT_EQ(exact_root(1000000, 3), 100);
  EXPECT_EQ(exact_root(1, 3), 1);
}

}  // namespace
