// strategies/memory.hpp: model-state bytes under ZeRO (ZeRO paper, Megatron-LM, DeepSpeed estimators)
// and per-layer activation bytes (Korthikanti et al. 2022, Table 2), pinned to hand-computed numbers.
#include <gtest/gtest.h>

#include <cmath>

#include "strategies/memory.hpp"

namespace {

using namespace scaleplan;
using strategies::ActShape;
using strategies::model_states;
using strategies::Precision;
using strategies::Recompute;

// Relative comparison for values that go through a few floating-point operations.
void expect_rel(double actual, double expected, double rel = 1e-12) {
  EXPECT_NEAR(actual, expected, std::fabs(expected) * rel) << "actual " << actual << " expected " << expected;
}

// ---------------------------------------------------------------- ZeRO paper (Rajbhandari et al. 2020, sec. 3.1 / 5)
// Mixed-precision Adam: 2 (16-bit params) + 2 (16-bit grads) + 12 (fp32 master, momentum, variance) = 16 B/param.
// Sec. 5 example: Psi = 7.5B, N_d = 64. Values are exact in binary floating point (N is a power of two).
constexpr double kP = 7.5e9;
constexpr int kN = 64;

TEST(ZeroPaper, Zero0Is16P) {
  const auto s = model_states(strategies::recipe_zero_paper(Precision::bf16), kP, 0, kN);
  EXPECT_EQ(s.params, 2 * kP);
  EXPECT_EQ(s.grads, 2 * kP);
  EXPECT_EQ(s.optimizer, 12 * kP);
  EXPECT_EQ(s.total(), 16 * kP);  // 120 GB (paper: "120GB")
  EXPECT_EQ(s.total(), 120e9);
}

TEST(ZeroPaper, Zero1Is4PPlus12POverN) {
  const auto s = model_states(strategies::recipe_zero_paper(Precision::bf16), kP, 1, kN);
  EXPECT_EQ(s.params, 2 * kP);
  EXPECT_EQ(s.grads, 2 * kP);
  EXPECT_EQ(s.optimizer, 12 * kP / kN);
  EXPECT_EQ(s.total(), 4 * kP + 12 * kP / kN);
  EXPECT_EQ(s.total(), 31.40625e9);  // paper: 31.4 GB
}

TEST(ZeroPaper, Zero2Is2PPlus14POverN) {
  const auto s = model_states(strategies::recipe_zero_paper(Precision::bf16), kP, 2, kN);
  EXPECT_EQ(s.params, 2 * kP);
  EXPECT_EQ(s.grads, 2 * kP / kN);
  EXPECT_EQ(s.optimizer, 12 * kP / kN);
  EXPECT_EQ(s.total(), 2 * kP + 14 * kP / kN);
  EXPECT_EQ(s.total(), 16.640625e9);  // paper: 16.6 GB
}

TEST(ZeroPaper, Zero3Is16POverN) {
  const auto s = model_states(strategies::recipe_zero_paper(Precision::bf16), kP, 3, kN);
  EXPECT_EQ(s.params, 2 * kP / kN);
  EXPECT_EQ(s.grads, 2 * kP / kN);
  EXPECT_EQ(s.optimizer, 12 * kP / kN);
  EXPECT_EQ(s.total(), 16 * kP / kN);
  EXPECT_EQ(s.total(), 1.875e9);  // paper: 1.9 GB
}

TEST(ZeroPaper, Fp16RecipeEqualsBf16) {
  for (int z = 0; z <= 3; ++z) {
    const auto a = model_states(strategies::recipe_zero_paper(Precision::fp16), kP, z, kN);
    const auto b = model_states(strategies::recipe_zero_paper(Precision::bf16), kP, z, kN);
    EXPECT_EQ(a.total(), b.total()) << "zero=" << z;
  }
}

TEST(ZeroPaper, NonPowerOfTwoDp) {
  const double P = 1.3e9;
  const int n = 24;
  const auto r = strategies::recipe_zero_paper(Precision::bf16);
  expect_rel(model_states(r, P, 1, n).total(), 4 * P + 12 * P / n);
  expect_rel(model_states(r, P, 2, n).total(), 2 * P + 14 * P / n);
  expect_rel(model_states(r, P, 3, n).total(), 16 * P / n);
}

TEST(ZeroPaper, DpOneShardsNothing) {
  const auto r = strategies::recipe_zero_paper(Precision::bf16);
  for (int z = 0; z <= 3; ++z) EXPECT_EQ(model_states(r, kP, z, 1).total(), 16 * kP) << "zero=" << z;
}

// fp32 training with Adam: 4 (params) + 4 (grads) + 8 (momentum, variance), no master copy.
TEST(ZeroPaper, Fp32Recipe448) {
  const auto r = strategies::recipe_zero_paper(Precision::fp32);
  const auto s0 = model_states(r, kP, 0, kN);
  EXPECT_EQ(s0.params, 4 * kP);
  EXPECT_EQ(s0.grads, 4 * kP);
  EXPECT_EQ(s0.optimizer, 8 * kP);
  EXPECT_EQ(model_states(r, kP, 1, kN).total(), 8 * kP + 8 * kP / kN);
  EXPECT_EQ(model_states(r, kP, 2, kN).total(), 4 * kP + 12 * kP / kN);
  EXPECT_EQ(model_states(r, kP, 3, kN).total(), 16 * kP / kN);
}

// ---------------------------------------------------------------- Megatron-LM theoretical_memory_usage.py
// Without the distributed optimizer: 18 B/param (2 bf16 params + 4 fp32 main grads + 12 Adam);
// with it (zero=1): 6 + 12/N_d.
TEST(Megatron, Zero0Is18P) {
  const auto s = model_states(strategies::recipe_megatron(), kP, 0, kN);
  EXPECT_EQ(s.params, 2 * kP);
  EXPECT_EQ(s.grads, 4 * kP);
  EXPECT_EQ(s.optimizer, 12 * kP);
  EXPECT_EQ(s.total(), 18 * kP);
}

TEST(Megatron, DistributedOptimizerIs6PPlus12POverN) {
  const auto s = model_states(strategies::recipe_megatron(), kP, 1, kN);
  EXPECT_EQ(s.params + s.grads, 6 * kP);
  EXPECT_EQ(s.optimizer, 12 * kP / kN);
  EXPECT_EQ(s.total(), 6 * kP + 12 * kP / kN);
  // theoretical_memory_usage.py: num_bytes_per_parameter = 18 if not use_distributed_optimizer
  // else 6 + (12 / data_parallel_size).
  const double P = 1.75e11, n = 8;
  expect_rel(model_states(strategies::recipe_megatron(), P, 1, 8).total(), P * (6 + 12 / n));
}

// ---------------------------------------------------------------- DeepSpeed estimators
// deepspeed/runtime/zero/stage_1_and_2.py estimate_zero2_model_states_mem_needs, cpu_offload=False:
//   gpu_mem = 4 * total_params + int(16 * total_params / total_gpus)
double deepspeed_zero2_gpu(double total_params, int total_gpus) {
  return 4 * total_params + std::trunc(16 * total_params / total_gpus);
}
// deepspeed/runtime/zero/stage3.py estimate_zero3_model_states_mem_needs, cpu_offload=False:
//   largest_layer_memory = 4 * largest_layer_params
//   gpu_mem = largest_layer_memory + int(18 * total_params / total_gpus)
double deepspeed_zero3_gpu(double total_params, double largest_layer_params, int total_gpus) {
  return 4 * largest_layer_params + std::trunc(18 * total_params / total_gpus);
}

TEST(DeepSpeed, Zero2MatchesEstimator13B8Gpus) {
  const double P = 13e9;
  const int gpus = 8;
  const auto s = model_states(strategies::recipe_deepspeed(), P, 2, gpus);
  EXPECT_EQ(deepspeed_zero2_gpu(P, gpus), 78e9);  // 52e9 + 26e9
  EXPECT_NEAR(s.total(), deepspeed_zero2_gpu(P, gpus), 1.0);
  EXPECT_EQ(s.total(), 4 * P + 16 * P / gpus);
}

TEST(DeepSpeed, Zero3MatchesEstimator13B8Gpus) {
  const double P = 13e9, PL = 325e6;
  const int gpus = 8;
  const auto s = model_states(strategies::recipe_deepspeed(), P, 3, gpus, PL);
  EXPECT_EQ(deepspeed_zero3_gpu(P, PL, gpus), 30.55e9);  // 1.3e9 + 29.25e9
  EXPECT_NEAR(s.total(), deepspeed_zero3_gpu(P, PL, gpus), 1.0);
}

TEST(DeepSpeed, MatchesEstimatorToTheByteOnOtherSizes) {
  // The estimator truncates to whole bytes; ours may keep a fraction: at most one byte apart.
  const double cases[][2] = {{13e9, 325e6}, {6.7e9, 206e6}, {175e9, 2.4e9}, {1.3e9, 50e6}};
  for (const auto& c : cases) {
    for (int gpus : {1, 7, 8, 24, 64, 1000}) {
      const auto z2 = model_states(strategies::recipe_deepspeed(), c[0], 2, gpus);
      const auto z3 = model_states(strategies::recipe_deepspeed(), c[0], 3, gpus, c[1]);
      EXPECT_NEAR(z2.total(), deepspeed_zero2_gpu(c[0], gpus), 1.0) << "P=" << c[0] << " gpus=" << gpus;
      EXPECT_NEAR(z3.total(), deepspeed_zero3_gpu(c[0], c[1], gpus), 1.0) << "P=" << c[0] << " gpus=" << gpus;
    }
  }
}

TEST(ModelStates, ShardingNeverIncreasesMemory) {
  for (auto r : {strategies::recipe_zero_paper(Precision::bf16), strategies::recipe_zero_paper(Precision::fp32),
                 strategies::recipe_megatron(), strategies::recipe_deepspeed()}) {
    double prev = model_states(r, kP, 0, kN).total();
    for (int z = 1; z <= 3; ++z) {
      const double cur = model_states(r, kP, z, kN).total();
      EXPECT_LE(cur, prev) << r.name << " zero=" << z;
      EXPECT_GT(cur, 0) << r.name << " zero=" << z;
      prev = cur;
    }
  }
}

// ---------------------------------------------------------------- activations (Korthikanti et al. 2022, Table 2)
// GPT layer: gelu MLP with ffn = 4h, multi-head attention (kv = heads), dropout, 16-bit activations.
model::ModelSpec gpt_shape(long long h, long long a, long long s, long long ffn = 0) {
  model::ModelSpec m;
  m.name = "hand-gpt";
  m.layers = 48;
  m.hidden = h;
  m.heads = a;
  m.kv_heads = a;
  m.ffn = ffn > 0 ? ffn : 4 * h;
  m.vocab = 51200;
  m.seq = s;
  m.activation = model::Activation::gelu;
  m.norm = model::Norm::layernorm;
  m.position = model::Position::learned;
  m.tied_embeddings = true;
  m.bias = true;
  m.dropout = true;
  return m;
}

ActShape act(double b, double s, int t, bool sp, Recompute rc) {
  ActShape x;
  x.b = b;
  x.s = s;
  x.s_kv = s;
  x.tp = t;
  x.sp = sp;
  x.recompute = rc;
  x.flash = false;
  x.e = 2;
  return x;
}

struct ActCase {
  long long h, a, s, b;
  int t;
};
// The 22B, 175B, 530B and 1T rows of Korthikanti Table 3, plus a small shape.
const ActCase kActCases[] = {{6144, 64, 2048, 4, 8}, {12288, 96, 2048, 1, 8}, {20480, 128, 2048, 1, 8},
                             {25600, 160, 2048, 1, 8}, {1024, 16, 1024, 2, 2}};

TEST(Activations, NoParallelism) {  // sbh(34 + 5as/h)
  for (const auto& c : kActCases) {
    const auto m = gpt_shape(c.h, c.a, c.s);
    const double sbh = double(c.s) * c.b * c.h;
    expect_rel(strategies::layer_activation_bytes(m, act(c.b, c.s, 1, false, Recompute::none)),
               sbh * (34 + 5.0 * c.a * c.s / c.h));
  }
}

TEST(Activations, TensorParallel) {  // sbh(10 + 24/t + 5as/(ht))
  for (const auto& c : kActCases) {
    const auto m = gpt_shape(c.h, c.a, c.s);
    const double sbh = double(c.s) * c.b * c.h, t = c.t;
    expect_rel(strategies::layer_activation_bytes(m, act(c.b, c.s, c.t, false, Recompute::none)),
               sbh * (10 + 24 / t + 5.0 * c.a * c.s / (c.h * t)));
  }
}

TEST(Activations, TensorAndSequenceParallel) {  // sbh/t (34 + 5as/h)
  for (const auto& c : kActCases) {
    const auto m = gpt_shape(c.h, c.a, c.s);
    const double sbh = double(c.s) * c.b * c.h, t = c.t;
    expect_rel(strategies::layer_activation_bytes(m, act(c.b, c.s, c.t, true, Recompute::none)),
               sbh / t * (34 + 5.0 * c.a * c.s / c.h));
  }
}

TEST(Activations, TensorParallelSelectiveRecompute) {  // sbh(10 + 24/t)
  for (const auto& c : kActCases) {
    const auto m = gpt_shape(c.h, c.a, c.s);
    const double sbh = double(c.s) * c.b * c.h, t = c.t;
    expect_rel(strategies::layer_activation_bytes(m, act(c.b, c.s, c.t, false, Recompute::selective)), sbh * (10 + 24 / t));
  }
}

TEST(Activations, SequenceParallelSelectiveRecompute) {  // 34 sbh / t
  for (const auto& c : kActCases) {
    const auto m = gpt_shape(c.h, c.a, c.s);
    const double sbh = double(c.s) * c.b * c.h, t = c.t;
    expect_rel(strategies::layer_activation_bytes(m, act(c.b, c.s, c.t, true, Recompute::selective)), 34 * sbh / t);
  }
}

TEST(Activations, FullRecomputeKeepsTheLayerInput) {  // 2sbh (no SP)
  for (const auto& c : kActCases) {
    const auto m = gpt_shape(c.h, c.a, c.s);
    const double sbh = double(c.s) * c.b * c.h;
    expect_rel(strategies::layer_activation_bytes(m, act(c.b, c.s, 1, false, Recompute::full)), 2 * sbh);
    expect_rel(strategies::layer_activation_bytes(m, act(c.b, c.s, c.t, false, Recompute::full)), 2 * sbh);
  }
}

// Korthikanti Table 2 numbers for the 22B model (s=2048, b=4, h=6144, a=64, t=8), in GiB-free bytes.
TEST(Activations, Table2Pinned22B) {
  const auto m = gpt_shape(6144, 64, 2048);
  const double sbh = 2048.0 * 4 * 6144;  // 50,331,648
  EXPECT_EQ(sbh, 50331648.0);
  // no parallelism: 34 + 5*64*2048/6144 = 34 + 106.666... = 140.666...
  expect_rel(strategies::layer_activation_bytes(m, act(4, 2048, 1, false, Recompute::none)), sbh * (34 + 320.0 / 3));
  // 10 + 24/8 + 5*64*2048/(6144*8) = 13 + 13.333... = 26.333...
  expect_rel(strategies::layer_activation_bytes(m, act(4, 2048, 8, false, Recompute::none)), sbh * (13 + 40.0 / 3));
  expect_rel(strategies::layer_activation_bytes(m, act(4, 2048, 8, true, Recompute::selective)), sbh * 34 / 8);
}

// Megatron-LM theoretical_memory_usage.py (selective recompute + sequence parallel):
// per layer s*b*h*(18 + 4*ffn/h), divided by t -- holds for any gelu ffn width.
TEST(Activations, MegatronTheoreticalFormulaAnyFfn) {
  for (long long ffn : {4096LL, 8192LL, 11008LL}) {
    const auto m = gpt_shape(2048, 16, 2048, ffn);
    const double sbh = 2048.0 * 2 * 2048, t = 4;
    expect_rel(strategies::layer_activation_bytes(m, act(2, 2048, 4, true, Recompute::selective)),
               sbh * (18 + 4.0 * ffn / 2048) / t);
  }
}

TEST(Activations, LinearInMicrobatch) {
  const auto m = gpt_shape(4096, 32, 2048);
  for (auto rc : {Recompute::none, Recompute::selective, Recompute::full}) {
    const double one = strategies::layer_activation_bytes(m, act(1, 2048, 4, true, rc));
    const double four = strategies::layer_activation_bytes(m, act(4, 2048, 4, true, rc));
    expect_rel(four, 4 * one);
  }
}

TEST(Activations, NoRecomputeVariantIgnoresRecompute) {
  const auto m = gpt_shape(6144, 64, 2048);
  const ActShape full = act(4, 2048, 8, false, Recompute::full);
  expect_rel(strategies::layer_activation_bytes_no_recompute(m, full),
             strategies::layer_activation_bytes(m, act(4, 2048, 8, false, Recompute::none)));
}

}  // namespace
