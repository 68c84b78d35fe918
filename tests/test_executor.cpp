// The reference executor on one process (executor/gpt.hpp): gradients against finite differences,
// training reduces the loss on the shipped corpus, checkpoints restore bit-identical losses and
// are never torn, bad plans and checkpoints are typed errors.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>

#include "common/errors.hpp"
#include "executor/backend.hpp"
#include "executor/comm.hpp"
#include "executor/gpt.hpp"
#include "executor/predict.hpp"
#include "simulator/analytic/executor_ops.hpp"
#include "model/model.hpp"

using namespace scaleplan;
using namespace scaleplan::executor;

namespace {
const Corpus& corpus() {
  static const Corpus c = Corpus::from_file(SCALEPLAN_SOURCE_DIR "/executor/data/corpus.txt");
  return c;
}
strategies::Plan plan(const std::string& s, const model::ModelSpec& m, int ranks = 1) {
  return resolve_executor_plan(strategies::parse_plan(s), m, executor_cluster(hw::load_cluster("dgx-a100-40gb")), ranks);
}

// Central differences on the largest-gradient entry of several tensors.
void check_fd(const model::ModelSpec& m, const std::string& ps) {
  auto be = make_backend("cpu");
  auto w = make_self_comm();
  Trainer tr(m, plan(ps, m), *be, *w);
  tr.loss_and_grads(corpus());
  const auto gg = tr.global_grads();
  int checked = 0;
  for (const auto& u : tr.units_info())
    for (const auto& ti : u.tensors) {
      const auto& g = gg.at(ti.name);
      std::size_t bi = 0;
      for (std::size_t i = 0; i < g.size(); ++i)
        if (std::abs(g[i]) > std::abs(g[bi])) bi = i;
      if (std::abs(g[bi]) < 1e-3) continue;  // fp32 central differences resolve ~1e-5
      const float v = tr.param(u.name, ti.offset + bi), eps = 1e-2f;
      tr.set_param(u.name, ti.offset + bi, v + eps);
      const double lp = tr.loss_and_grads(corpus());
      tr.set_param(u.name, ti.offset + bi, v - eps);
      const double lm = tr.loss_and_grads(corpus());
      tr.set_param(u.name, ti.offset + bi, v);
      const double fd = (lp - lm) / (2 * eps);
      EXPECT_NEAR(fd, g[bi], 5e-3 * std::abs(g[bi]) + 2e-5) << ti.name;
      ++checked;
    }
  EXPECT_GE(checked, 10);
}
}  // namespace

TEST(Executor, GradientsMatchFiniteDifferencesGelu) { check_fd(model::load_model("gpt-tiny"), "mbs=2,gbs=2"); }

TEST(Executor, GradientsMatchFiniteDifferencesSwiglu) {
  auto m = model::load_model("gpt-tiny");
  m.activation = model::Activation::swiglu;
  m.bias = false;
  check_fd(m, "mbs=1,gbs=2");
}

TEST(Executor, TrainingReducesLoss) {
  auto m = model::load_model("gpt-tiny");
  auto be = make_backend("cpu");
  auto w = make_self_comm();
  Trainer tr(m, plan("mbs=4,gbs=4", m), *be, *w);
  const double first = tr.step(corpus());
  EXPECT_NEAR(first, std::log(256.0), 0.2);  // uniform over the byte vocabulary at init
  double last = 0;
  for (int k = 0; k < 30; ++k) last = tr.step(corpus());
  EXPECT_LT(last, first - 2.0);  // measured: 5.55 -> ~2.6 with AdamW lr 3e-3
}

TEST(Executor, LambAndLarsTrain) {
  auto m = model::load_model("gpt-tiny");
  for (const char* o : {"lamb", "lars"}) {
    auto be = make_backend("cpu");
    auto w = make_self_comm();
    TrainOptions to;
    to.optimizer = o;
    to.lr = std::string(o) == "lamb" ? 1e-2 : 5.0;
    Trainer tr(m, plan("mbs=4,gbs=4", m), *be, *w, to);
    const double first = tr.step(corpus());
    double last = 0;
    for (int k = 0; k < 15; ++k) last = tr.step(corpus());
    EXPECT_LT(last, first - 0.5) << o;
  }
}

TEST(Executor, CheckpointRestoreIsBitIdentical) {
  auto m = model::load_model("gpt-tiny");
  const auto dir = std::filesystem::temp_directory_path() / ("scaleplan_ckpt_" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  std::vector<double> a, b;
  {
    auto be = make_backend("cpu");
    auto w = make_self_comm();
    Trainer tr(m, plan("mbs=2,gbs=2", m), *be, *w);
    for (int k = 0; k < 3; ++k) tr.step(corpus());
    tr.save(dir.string());
    for (int k = 0; k < 3; ++k) a.push_back(tr.step(corpus()));
  }
  {
    auto be = make_backend("cpu");
    auto w = make_self_comm();
    Trainer tr(m, plan("mbs=2,gbs=2", m), *be, *w);
    tr.load(dir.string());
    EXPECT_EQ(tr.steps_done(), 3);
    for (int k = 0; k < 3; ++k) b.push_back(tr.step(corpus()));
  }
  ASSERT_EQ(a.size(), b.size());
  for (std::size_t i = 0; i < a.size(); ++i) EXPECT_EQ(a[i], b[i]) << "step " << i + 3;  // bit-identical
  // No temporary file is left behind (writes are temp + fsync + rename).
  for (const auto& e : std::filesystem::directory_iterator(dir)) EXPECT_NE(e.path().extension(), ".tmp") << e.path();
  // A save that dies between writing its file and renaming it leaves the previous checkpoint whole.
  {
    auto be = make_backend("cpu");
    auto w = make_self_comm();
    Trainer tr(m, plan("mbs=2,gbs=2", m), *be, *w);
    tr.load(dir.string());
    tr.step(corpus());
    EXPECT_THROW(tr.save(dir.string(), [](const std::string&) { throw CheckpointError("simulated crash"); }), CheckpointError);
    Trainer again(m, plan("mbs=2,gbs=2", m), *be, *w);
    again.load(dir.string());
    EXPECT_EQ(again.steps_done(), 3);
    EXPECT_EQ(again.step(corpus()), a[0]);
  }
  // A corrupt file, a missing file, another plan: typed errors.
  auto be = make_backend("cpu");
  auto w = make_self_comm();
  Trainer tr(m, plan("mbs=2,gbs=2", m), *be, *w);
  {
    std::fstream f(dir / "rank-0.step-3.ckpt", std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(200);
    f.put('\x5a');
  }
  EXPECT_THROW(tr.load(dir.string()), CheckpointError);
  std::filesystem::remove(dir / "rank-0.step-3.ckpt");
  EXPECT_THROW(tr.load(dir.string()), CheckpointError);
  EXPECT_THROW(tr.load((dir / "nothing-here").string()), CheckpointError);
  Trainer other(m, plan("mbs=1,gbs=2", m), *be, *w);
  EXPECT_THROW(other.load(dir.string()), CheckpointError);
  std::filesystem::remove_all(dir);
}

TEST(Executor, RejectsPlansItCannotRun) {
  auto m = model::load_model("gpt-tiny");
  auto be = make_backend("cpu");
  auto w = make_self_comm();
  strategies::Plan p = plan("mbs=1,gbs=2", m);
  p.dp = 2;  // needs 2 ranks
  EXPECT_THROW(Trainer(m, p, *be, *w), PlanError);
  EXPECT_THROW(Trainer(m, plan("precision=bf16", m), *be, *w), PlanError);
  auto g = m;
  g.kv_heads = 2;
  EXPECT_THROW(Trainer(g, plan("gbs=1", m), *be, *w), PlanError);
  for (auto act : {model::Activation::relu, model::Activation::geglu, model::Activation::squared_relu}) {
    auto a = m;  // computed as GeLU before: now refused rather than silently wrong
    a.activation = act;
    EXPECT_THROW(Trainer(a, plan("gbs=1", m), *be, *w), PlanError);
  }
  EXPECT_THROW(make_backend("tpu"), BackendError);
}

TEST(Executor, MemoryMatchesEstimatorOnOneRank) {
  auto m = model::load_model("gpt-tiny");
  for (const char* ps : {"mbs=1,gbs=2", "mbs=2,gbs=2,recompute=full", "mbs=1,gbs=1,recompute=selective"}) {
    auto be = make_backend("cpu");
    auto w = make_self_comm();
    const auto p = plan(ps, m);
    Trainer tr(m, p, *be, *w);
    tr.step(corpus());
    tr.reset_measurements();
    tr.step(corpus());
    const auto r = predict(m, p, hw::load_cluster("dgx-a100-40gb"));
    const auto ms = tr.memory();
    EXPECT_EQ(ms.at(MemCategory::params), r.memory.params) << ps;
    EXPECT_EQ(ms.at(MemCategory::grads), r.memory.grads) << ps;
    EXPECT_EQ(ms.at(MemCategory::optimizer), r.memory.optimizer) << ps;
    EXPECT_NEAR(ms.at(MemCategory::activations), r.memory.activations, 0.05 * r.memory.activations) << ps;
    EXPECT_EQ(ms.at(MemCategory::buffers), r.memory.buffers) << ps;  // executor_buffer_bytes (issue 22)
  }
}

// Optimizer state per parameter as the executor keeps it: AdamW and LAMB m and v (8 B), LARS one
// momentum (4 B), on one rank (the parallel check compares them over DP/TP shards too).
TEST(Executor, OptimizerStateMatchesEstimatorPerOptimizer) {
  auto m = model::load_model("gpt-tiny");
  for (const char* o : {"adamw", "lamb", "lars"}) {
    auto be = make_backend("cpu");
    auto w = make_self_comm();
    const auto p = plan("mbs=1,gbs=1", m);
    TrainOptions to;
    to.optimizer = o;
    Trainer tr(m, p, *be, *w, to);
    tr.step(corpus());
    PredictOptions po;
    po.optimizer = o;
    const auto r = predict(m, p, hw::load_cluster("dgx-a100-40gb"), po);
    EXPECT_EQ(tr.memory().at(MemCategory::optimizer), r.memory.optimizer) << o;
    EXPECT_EQ(r.memory.optimizer, (std::string(o) == "lars" ? 1.0 : 2.0) * r.memory.params) << o;  // params: 4 B each
  }
  PredictOptions bad;
  bad.optimizer = "sgd";
  EXPECT_THROW(executor_estimator_options(bad), PlanError);
}

// The executor op model (EstimatorOptions::executor_op_time) charges every kernel call the device's
// overhead once: raising kernel_overhead_s by d raises one layer's forward + backward by exactly
// layer_kernels x d, and a strided-batched GEMM is counted per head (the CPU backend loops).
TEST(Executor, OpTimeCountsEveryKernelOnce) {
  auto m = model::load_model("gpt-tiny");
  hw::Device d = hw::load_cluster("dgx-a100-40gb").device;
  strategies::LayerShape sh;
  sh.b = 4;
  sh.s = m.seq;
  sh.s_kv = m.seq;
  sh.precision = strategies::Precision::fp32;
  const auto a = analytic::executor_op_times(m, d, sh);
  d.eff.kernel_overhead_s += 1e-3;
  const auto b = analytic::executor_op_times(m, d, sh);
  EXPECT_NEAR(b.layer_fwd_s + b.layer_bwd_s - a.layer_fwd_s - a.layer_bwd_s, a.layer_kernels * 1e-3, 1e-9);
  // Six per-head GEMM loops (forward Q K^T and P V; backward dP, dV, dQ, dK), b x heads calls
  // each: doubling the heads (16 -> 32 per loop at b = 4) adds 6 x 16 GEMM calls and nothing else.
  model::ModelSpec m2 = m;
  m2.heads *= 2;
  m2.kv_heads *= 2;
  const auto c = analytic::executor_op_times(m2, d, sh);
  EXPECT_EQ(c.layer_kernels - a.layer_kernels, 6 * 16);
  // Per-class rates: a slower GeLU class slows the layer, the GPU presets leave the classes unset.
  EXPECT_EQ(d.eff.kernel_Bps[static_cast<int>(hw::KernelClass::gelu)], 0.0);
  d.eff.kernel_Bps[static_cast<int>(hw::KernelClass::gelu)] = 1e9;
  const auto e = analytic::executor_op_times(m, d, sh);
  EXPECT_GT(e.layer_fwd_s, b.layer_fwd_s);
  // An unmeasured backward class runs at its forward class's rate; a measured one at its own.
  EXPECT_EQ(d.kernel_time(hw::KernelClass::gelu_bwd, 1e6), d.kernel_time(hw::KernelClass::gelu, 1e6));
  d.eff.kernel_Bps[static_cast<int>(hw::KernelClass::gelu_bwd)] = 0.5e9;
  EXPECT_NEAR(d.kernel_time(hw::KernelClass::gelu_bwd, 1e6) - d.eff.kernel_overhead_s, 2e-3, 1e-12);
  const auto f = analytic::executor_op_times(m, d, sh);
  EXPECT_GT(f.layer_bwd_s, e.layer_bwd_s);
  EXPECT_EQ(f.layer_fwd_s, e.layer_fwd_s);
}

// The workspace model (executor_buffer_bytes) by hand for gpt-tiny at b = 4 (T = 256, h = 64,
// 4 heads of 16, ffn 256, s = 64): attention backward dx2 16384 + dqkv 49152 + dP, dS 2 x 65536
// + dv 16384 = 212992 floats; selective adds the re-created probabilities (65536); ZeRO-2 one
// layer's gradient bucket (49984); full recompute the whole keep=false forward (328704).
TEST(Executor, BufferModelByHand) {
  auto m = model::load_model("gpt-tiny");
  strategies::LayerShape sh;
  sh.b = 4;
  sh.s = m.seq;
  sh.s_kv = m.seq;
  EXPECT_EQ(analytic::executor_buffer_bytes(m, sh, 0, false), 4 * 212992.0);
  EXPECT_EQ(analytic::executor_buffer_bytes(m, sh, 2, false), 4 * (212992.0 + 49984));
  sh.recompute = strategies::Recompute::selective;
  EXPECT_EQ(analytic::executor_buffer_bytes(m, sh, 0, false), 4 * (212992.0 + 65536));
  sh.recompute = strategies::Recompute::full;
  EXPECT_EQ(analytic::executor_buffer_bytes(m, sh, 0, false), 4 * 328704.0);
  EXPECT_EQ(analytic::executor_buffer_bytes(m, sh, 0, true), 4 * (328704.0 + 16384));
}

// Ranks sharing cores (issue 22): with k = ranks / host cores > 1 the CPU executor's GPipe and 1F1B
// steps are simulated under processor sharing (strategies/shared_cores.hpp, pinned by hand in
// test_shared_cores.cpp): shorter than with every rank on its own core, never shorter than the
// busiest stage's work at the all-busy rate; the interleaved schedule's bubble costs 1/k of its
// length. Nothing changes without host_cores, with a core per rank, or for the GPU op model.
TEST(Executor, OversubscribedPipelineSharesTheCores) {
  auto m = model::load_model("gpt-small");
  hw::Cluster c = hw::load_cluster("dgx-a100-40gb");
  c.gpus_per_node = 4;
  PredictOptions po;
  po.op_time = true;
  for (const char* plan : {"pp=4,mbs=1,gbs=8", "pp=4,mbs=1,gbs=8,schedule=gpipe"}) {
    c.host.cores = 0;
    const auto p = resolve_executor_plan(strategies::parse_plan(plan), m, executor_cluster(c), 4);
    const auto base = predict(m, p, c, po);
    ASSERT_GT(base.time.bubble_s, 0) << plan;
    c.host.cores = 4;  // a core per rank
    EXPECT_EQ(predict(m, p, c, po).time.step_s, base.time.step_s) << plan;
    c.host.cores = 2;  // k = 2
    const auto shared = predict(m, p, c, po);
    EXPECT_LT(shared.time.step_s, base.time.step_s - 0.5 * base.time.bubble_s) << plan;
    EXPECT_GT(shared.time.step_s, base.time.step_s - base.time.bubble_s - 0.25 * base.time.compute_s) << plan;
    c.host.cores = 1;  // k = 4: the fill and drain run four times faster than with k = 2
    EXPECT_LT(predict(m, p, c, po).time.step_s, shared.time.step_s) << plan;
  }
  // Interleaved (not simulated): the bubble costs 1/k.
  c.host.cores = 0;
  const auto p = resolve_executor_plan(strategies::parse_plan("pp=2,vpp=2,mbs=1,gbs=4,schedule=interleaved"), m, executor_cluster(c), 2);
  const auto base = predict(m, p, c, po);
  ASSERT_GT(base.time.bubble_s, 0);
  c.host.cores = 1;  // k = 2
  EXPECT_NEAR(predict(m, p, c, po).time.step_s, base.time.step_s - base.time.bubble_s / 2, 1e-12);
  po.op_time = false;  // the GPU op model: GPUs do not share cores
  const double gpu_k2 = predict(m, p, c, po).time.step_s;
  c.host.cores = 0;
  EXPECT_EQ(gpu_k2, predict(m, p, c, po).time.step_s);
}
