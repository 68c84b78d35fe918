// Transformer Engine's FP8 casts of the GEMM operands (strategies/fp8_cast.hpp; TE v1.8
// module/linear.py, module/layernorm_linear.py, module/base.py grad_output_preprocess): bytes per
// kernel pinned by hand, the layer total for Llama 2 7B, the time at the device's streaming rate, the
// stack keys, and the estimator's once-per-step weight cast.
#include <gtest/gtest.h>

#include "hardware/stack.hpp"
#include "simulator/analytic/estimator.hpp"
#include "strategies/fp8_cast.hpp"
#include "strategies/tensor_nd.hpp"

namespace {

using namespace scaleplan;
using namespace scaleplan::strategies;

// One linear, each path of TE v1.8 (e = 2: bf16 tensors read, fp8 written).
TEST(Fp8Cast, OneLinearByHand) {
  const double e = 2;
  // te.Linear without sequence parallelism: fp8_cast_transpose_fused of the input (read 2, write 1 + 1)
  // in forward; fp8_cast_transpose(_bgrad)_fused of the output gradient in backward; weight cast + transpose.
  Fp8CastBytes b = fp8_cast_bytes({100, 30, 20, 100, 100, false, false, 1}, e);
  EXPECT_DOUBLE_EQ(b.fwd, 4.0 * 100 * 30);
  EXPECT_DOUBLE_EQ(b.fwd_saved, 0);
  EXPECT_DOUBLE_EQ(b.bwd, 4.0 * 100 * 20);
  EXPECT_DOUBLE_EQ(b.weight, 4.0 * 30 * 20);
  EXPECT_EQ(b.fwd_kernels, 1);
  EXPECT_EQ(b.bwd_kernels, 1);
  // Row-parallel with SP (tp 4): input cast where it lives (read 2, write 1), its fp8 transpose in
  // backward (read 1, write 1); output gradient cast on the 25 local rows, gathered in fp8, transposed.
  b = fp8_cast_bytes({100, 30, 20, 100, 25, false, true, 1}, e);
  EXPECT_DOUBLE_EQ(b.fwd, 3.0 * 100 * 30);
  EXPECT_DOUBLE_EQ(b.bwd, 2.0 * 100 * 30 + 3.0 * 25 * 20 + 2.0 * 100 * 20);
  EXPECT_EQ(b.bwd_kernels, 3);
  // LayerNormLinear (column-parallel, SP): the norm writes 1 B instead of 2 on its 25 local rows; the
  // gathered fp8 input is transposed in backward; the local output gradient takes the fused kernel.
  b = fp8_cast_bytes({100, 30, 20, 25, 100, true, true, 1}, e);
  EXPECT_DOUBLE_EQ(b.fwd, 0);
  EXPECT_DOUBLE_EQ(b.fwd_saved, 1.0 * 25 * 30);
  EXPECT_DOUBLE_EQ(b.bwd, 2.0 * 100 * 30 + 4.0 * 100 * 20);
  EXPECT_EQ(b.fwd_kernels, 0);
  // Grouped experts: `copies` identical linears.
  const Fp8CastBytes one = fp8_cast_bytes({10, 30, 20, 10, 10, false, false, 1}, e);
  const Fp8CastBytes four = fp8_cast_bytes({10, 30, 20, 10, 10, false, false, 4}, e);
  EXPECT_DOUBLE_EQ(four.fwd, 4 * one.fwd);
  EXPECT_DOUBLE_EQ(four.bwd, 4 * one.bwd);
  EXPECT_DOUBLE_EQ(four.weight, 4 * one.weight);
}

LayerShape llama_shape(Precision prec, bool fused) {
  LayerShape sh;
  sh.b = 1, sh.s = 4096, sh.s_kv = 4096, sh.tp = 1;
  sh.flash = true;
  sh.precision = prec;
  sh.fp8_norm_fused = fused;
  return sh;
}

// Llama 2 7B (h 4096, MHA, SwiGLU ffn 11008), one 4096-token microbatch, tp 1, Megatron-Core's TE
// layer (QKV and FC1 as LayerNormLinear), on an H100 SXM (3.35 TB/s x mem_bw 0.85, 4 us per kernel).
TEST(Fp8Cast, Llama2LayerByHand) {
  const model::ModelSpec m = model::load_model("llama2-7b");
  const double T = 4096, h = 4096, f = 11008;
  const Fp8CastBytes b = fp8_layer_cast_bytes(m, llama_shape(Precision::fp8, true), true);
  // Forward: the projection's and FC2's inputs (4 B each); the two fused norms write 1 B less.
  EXPECT_DOUBLE_EQ(b.fwd, 4 * T * h + 4 * T * f);
  EXPECT_DOUBLE_EQ(b.fwd_saved, 2 * T * h);
  // Backward: QKV (transpose 2Th, dY 4 T 3h), projection dY 4Th, FC1 (2Th, dY 4 T 2f), FC2 dY 4Th.
  EXPECT_DOUBLE_EQ(b.bwd, (2 * T * h + 4 * T * 3 * h) + 4 * T * h + (2 * T * h + 4 * T * 2 * f) + 4 * T * h);
  EXPECT_DOUBLE_EQ(b.weight, 4 * (h * 3 * h + h * h + h * 2 * f + f * h));
  EXPECT_EQ(b.fwd_kernels, 2);
  EXPECT_EQ(b.bwd_kernels, 6);
  EXPECT_EQ(b.weight_kernels, 4);
  // Net 0.977 GB of forward-and-backward cast traffic (2Th + 4Tf forward, 24Th + 8Tf backward) = 0.343 ms
  // at 2.85 TB/s, + 8 kernels x 4 us = 0.375 ms per layer and microbatch.
  const hw::Device d = hw::load_device("h100-sxm-80gb");
  const Fp8CastTime t = fp8_cast_time(d, b);
  const double bw = 3350e9 * 0.85;
  EXPECT_NEAR(t.fwd_s, (4 * T * h + 4 * T * f - 2 * T * h) / bw + 2 * 4e-6, 1e-12);
  EXPECT_NEAR(t.bwd_s, b.bwd / bw + 6 * 4e-6, 1e-12);
  EXPECT_NEAR(t.fwd_s + t.bwd_s, 0.375e-3, 0.001e-3);
  // Unfused norms (plain te.Linear): the QKV and FC1 inputs take the fused cast-transpose (4 B) instead.
  const Fp8CastBytes u = fp8_layer_cast_bytes(m, llama_shape(Precision::fp8, false), false);
  EXPECT_DOUBLE_EQ(u.fwd - b.fwd, 2 * 4 * T * h);
  EXPECT_DOUBLE_EQ(u.fwd_saved, 0);
  EXPECT_DOUBLE_EQ(b.bwd - u.bwd, 2 * 2 * T * h);
}

// 16-bit plans have no casts, and the fp8 flags do not change their cost.
TEST(Fp8Cast, Bf16Unchanged) {
  const model::ModelSpec m = model::load_model("llama2-7b");
  const hw::Cluster c = hw::load_cluster("dgx-h100");
  const Fp8CastBytes b = fp8_layer_cast_bytes(m, llama_shape(Precision::bf16, true), true);
  EXPECT_EQ(b.fwd + b.bwd + b.weight + b.fwd_saved, 0);
  LayerShape plain = llama_shape(Precision::bf16, false), flagged = llama_shape(Precision::bf16, true);
  flagged.fp8_weight_cache = true;
  const auto g = make_tp_groups(c, tp_layout(TpMode::d1, 1, 1));
  const PhaseCost a = layer_cost(m, c, plain, g, hw::make_group(c, 1, 1));
  const PhaseCost z = layer_cost(m, c, flagged, g, hw::make_group(c, 1, 1));
  EXPECT_EQ(a.fwd_s, z.fwd_s);
  EXPECT_EQ(a.bwd_s, z.bwd_s);
  EXPECT_EQ(z.fp8_weight_cast_s, 0);
}

// The layer carries the casts: toggling the norm fusion moves fwd + bwd by exactly the cast-time
// difference; the weight cache moves the weight cast out of fwd_s into the once-per-step share; and
// an fp8 layer never costs less than the GEMM-speedup-only model (the casts' net time is positive for
// every shape: tp 1..8, SP on and off, fused or not, dense and MoE).
TEST(Fp8Cast, LayerCarriesTheCasts) {
  const hw::Cluster c = hw::load_cluster("dgx-h100");
  const auto g1 = make_tp_groups(c, tp_layout(TpMode::d1, 1, 1));
  const auto cp1 = hw::make_group(c, 1, 1);
  const model::ModelSpec m = model::load_model("llama2-7b");
  auto cost = [&](bool fused, bool cache) {
    LayerShape sh = llama_shape(Precision::fp8, fused);
    sh.fp8_weight_cache = cache;
    return layer_cost(m, c, sh, g1, cp1);
  };
  auto casts = [&](bool fused) { return fp8_cast_time(c.device, fp8_layer_cast_bytes(m, llama_shape(Precision::fp8, fused), fused)); };
  const PhaseCost fu = cost(true, false), un = cost(false, false), cached = cost(true, true);
  const Fp8CastTime tf = casts(true), tu = casts(false);
  EXPECT_NEAR((un.fwd_s + un.bwd_s) - (fu.fwd_s + fu.bwd_s), (tu.fwd_s + tu.bwd_s) - (tf.fwd_s + tf.bwd_s), 1e-12);
  EXPECT_NEAR(fu.fwd_s - cached.fwd_s, tf.weight_s, 1e-12);
  EXPECT_DOUBLE_EQ(cached.fp8_weight_cast_s, tf.weight_s);
  EXPECT_EQ(fu.fp8_weight_cast_s, 0);

  for (const char* name : {"llama2-7b", "gpt3-175b", "llama3-70b", "mixtral-8x7b"}) {
    const model::ModelSpec mm = model::load_model(name);
    for (int tp : {1, 2, 4, 8})
      for (bool sp : {false, true})
        for (bool fused : {false, true}) {
          LayerShape sh = llama_shape(Precision::fp8, fused);
          sh.tp = tp, sh.sp = sp && tp > 1, sh.b = 2;
          const Fp8CastTime t = fp8_cast_time(c.device, fp8_layer_cast_bytes(mm, sh, fused));
          EXPECT_GT(t.fwd_s + t.bwd_s, 0) << name << " tp " << tp << " sp " << sp << " fused " << fused;
          EXPECT_GT(t.weight_s, 0) << name;
        }
  }
}

// Stack keys: Megatron-Core / NeMo fuse the norm's cast and cache the fp8 weights; the default is
// plain te.Linear behaviour (neither).
TEST(Fp8Cast, StackKeys) {
  for (const char* s : {"megatron-core-2024", "megatron-core-2025", "nemo-2024"}) {
    const hw::Software sw = hw::load_stack(s);
    EXPECT_TRUE(sw.fp8_norm_fused_cast) << s;
    EXPECT_TRUE(sw.fp8_weight_cache) << s;
  }
  const hw::Software foundry = hw::load_stack("llm-foundry-fsdp");
  EXPECT_FALSE(foundry.fp8_norm_fused_cast);
  EXPECT_FALSE(foundry.fp8_weight_cache);
}

// The estimator charges the cached weight cast once per step: the step grows by the slowest stage's
// layers x the layer's weight cast, whatever the number of microbatches.
TEST(Fp8Cast, EstimatorWeightCastOncePerStep) {
  const model::ModelSpec m = model::load_model("llama2-7b");
  hw::Cluster c = hw::load_cluster("dgx-h100");
  c.sw = hw::load_stack("nemo-2024");
  for (const char* plan : {"tp=1,pp=1,mbs=1,gbs=8,zero=1,recompute=none,precision=fp8",
                           "tp=1,pp=1,mbs=1,gbs=32,zero=1,recompute=none,precision=fp8"}) {
    const Plan p = resolve_plan(parse_plan(plan), m, c, 8);
    c.sw.fp8_weight_cache = true;
    const analytic::Estimator cached_est(m, c);
    const analytic::LayerTable t = cached_est.prepare(p);
    const double cached = cached_est.evaluate(p).time.step_s;
    c.sw.fp8_weight_cache = false;
    const double per_mb = analytic::Estimator(m, c).evaluate(p).time.step_s;
    ASSERT_GT(t.lc.fp8_weight_cast_s, 0);
    // Without the cache every microbatch casts the weights (m x layers x cast); with it, once.
    const double layers = m.layers, mbs = static_cast<double>(p.microbatches());
    EXPECT_NEAR(per_mb - cached, (mbs - 1) * layers * t.lc.fp8_weight_cast_s, 1e-3 * per_mb) << plan;
  }
}

}  // namespace

namespace {

// fp8 with sequence parallelism: TE all-gathers fp8 tensors (the LayerNormLinear inputs, forward and
// the backward re-gather, and the row-parallel output gradients), 1 B per element; the reduce-scatters
// stay bf16. Per layer and microbatch: 6 all-gathers of T h and 4 reduce-scatters of 2 T h bytes.
TEST(Fp8Cast, SequenceParallelGathersFp8) {
  using namespace scaleplan;
  using namespace scaleplan::strategies;
  const model::ModelSpec m = model::load_model("llama2-70b");
  const hw::Cluster c = hw::load_cluster("dgx-h100");
  LayerShape sh;
  sh.b = 1, sh.s = 4096, sh.s_kv = 4096, sh.tp = 4, sh.sp = true, sh.flash = true;
  const auto g = make_tp_groups(c, tp_layout(TpMode::d1, 4, 1));
  auto tl = [&](Precision p) {
    sh.precision = p;
    return tp_model(TpMode::d1).layer(m, c, sh, tp_layout(TpMode::d1, 4, 1), g, true);
  };
  const TpLayerCost f8 = tl(Precision::fp8), b16 = tl(Precision::bf16);
  const double Th = 4096.0 * 8192;
  EXPECT_DOUBLE_EQ(b16.tp_bytes, 10 * 2 * Th);
  EXPECT_DOUBLE_EQ(f8.tp_bytes, 6 * Th + 4 * 2 * Th);
  EXPECT_DOUBLE_EQ(f8.recompute_tp_bytes, 2 * Th + 2 * 2 * Th);
  const double ag8 = hw::collective_time(c, hw::Coll::all_gather, Th, g.all);
  const double ag16 = hw::collective_time(c, hw::Coll::all_gather, 2 * Th, g.all);
  // Without TP overlap the forward pays 2 all-gathers + 2 reduce-scatters.
  EXPECT_NEAR(b16.fwd_comm_s - f8.fwd_comm_s, 2 * (ag16 - ag8), 1e-12);
  // Without SP the all-reduces carry bf16 in both.
  sh.sp = false;
  EXPECT_DOUBLE_EQ(tl(Precision::fp8).tp_bytes, tl(Precision::bf16).tp_bytes);
}

}  // namespace
