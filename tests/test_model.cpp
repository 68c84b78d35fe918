// model/model.hpp parameter counts and strategies/layer_cost.hpp / simulator/analytic FLOPs,
// pinned to Megatron SC21 eq. (2), Korthikanti 2022 eq. (7) / Appendix A and hand counts of
// released checkpoints.
#include <gtest/gtest.h>

#include <cmath>
#include <string>

#include "common/presets.hpp"
#include "hardware/cluster.hpp"
#include "model/model.hpp"
#include "simulator/analytic/estimator.hpp"
#include "strategies/layer_cost.hpp"

namespace {

using namespace scaleplan;

bool is_plain_gpt(const model::ModelSpec& m) {
  return m.activation == model::Activation::gelu && m.norm == model::Norm::layernorm &&
         m.position == model::Position::learned && m.tied_embeddings && m.bias && m.kv_heads == m.heads &&
         m.ffn == 4 * m.hidden && !m.moe.enabled();
}

// SC21 eq. (2): P = 12 L h^2 (1 + 13/(12h) + (V+s)/(12 L h)) = 12Lh^2 + 13Lh + (V+s)h.
// The equation leaves out the final LayerNorm (2h), which the model counts.
double sc21_eq2(const model::ModelSpec& m) {
  const double L = m.layers, h = m.hidden, V = m.vocab, s = m.seq;
  return 12 * L * h * h * (1 + 13 / (12 * h) + (V + s) / (12 * L * h));
}
double sc21_eq2_integer(const model::ModelSpec& m) {  // the same, summed in integers (exact)
  const long long L = m.layers, h = m.hidden, V = m.vocab, s = m.seq;
  return static_cast<double>(12 * L * h * h + 13 * L * h + (V + s) * h);
}

TEST(ParamCount, Gpt3PresetsFollowSc21Eq2) {
  const char* gpt3[] = {"gpt3-125m", "gpt3-350m", "gpt3-760m", "gpt3-1.3b", "gpt3-2.7b", "gpt3-6.7b", "gpt3-13b", "gpt3-175b"};
  for (const char* name : gpt3) {
    const model::ModelSpec m = model::load_model(name);
    ASSERT_TRUE(is_plain_gpt(m)) << name << " is not a plain GPT shape";
    const double h = m.hidden;
    EXPECT_EQ(m.final_norm_params(), 2 * h) << name;
    // Exact: the count is a sum of integers below 2^53.
    EXPECT_EQ(m.total_params() - m.final_norm_params(), sc21_eq2_integer(m)) << name;
    EXPECT_NEAR(m.total_params() - m.final_norm_params(), sc21_eq2(m), sc21_eq2(m) * 1e-14) << name;
  }
}

TEST(ParamCount, Gpt3_175bHandCount) {
  const model::ModelSpec m = model::load_model("gpt3-175b");
  // 96 layers x (12 h^2 + 13 h) + V h + s h + 2h, h = 12288, V = 50257, s = 2048.
  const double expected = 96.0 * (12.0 * 12288 * 12288 + 13.0 * 12288) + 50257.0 * 12288 + 2048.0 * 12288 + 2.0 * 12288;
  EXPECT_EQ(m.total_params(), expected);
  EXPECT_EQ(m.total_params(), 174604259328.0);
}

TEST(ParamCount, EveryPlainGptPresetFollowsSc21Eq2) {
  int n = 0;
  for (const auto& name : preset_names("models")) {
    const model::ModelSpec m = model::load_model(name);
    if (!is_plain_gpt(m)) continue;
    ++n;
    EXPECT_EQ(m.total_params() - m.final_norm_params(), sc21_eq2_integer(m)) << name;
  }
  EXPECT_GE(n, 8);
}

TEST(ParamCount, PerLayerGptPieces) {
  const model::ModelSpec m = model::load_model("gpt3-13b");
  const double h = m.hidden;
  EXPECT_EQ(m.attn_weight_params(), 4 * h * h);
  EXPECT_EQ(m.attn_bias_params(), 4 * h);
  EXPECT_EQ(m.mlp_weight_params(), 8 * h * h);
  EXPECT_EQ(m.mlp_bias_params(), 5 * h);
  EXPECT_EQ(m.norm_params(), 4 * h);
  EXPECT_EQ(m.layer_params(), 12 * h * h + 13 * h);
  EXPECT_EQ(m.lm_head_params(), 0);  // tied
}

// Llama 2 70B: released checkpoint has 68,976,648,192 parameters (80 layers, h 8192, 64 heads,
// 8 KV heads of 128, ffn 28672 SwiGLU, RMSNorm, no biases, vocab 32000, untied).
TEST(ParamCount, Llama2_70bHandCount) {
  const model::ModelSpec m = model::load_model("llama2-70b");
  const double L = 80, h = 8192, kv = 8 * 128, f = 28672, V = 32000;
  const double layer = 2 * h * h + 2 * h * kv + 3 * h * f + 2 * h;
  const double expected = L * layer + 2 * V * h + h;
  EXPECT_EQ(expected, 68976648192.0);
  EXPECT_EQ(m.layer_params(), layer);
  EXPECT_EQ(m.embedding_params(), V * h);  // RoPE: no position table
  EXPECT_EQ(m.lm_head_params(), V * h);    // untied
  EXPECT_EQ(m.final_norm_params(), h);     // RMSNorm has no bias
  EXPECT_EQ(m.total_params(), expected);
  EXPECT_NEAR(m.total_params(), 69e9, 0.05e9);
}

// Llama 3 8B: released checkpoint has 8,030,261,248 parameters (vocab 128256).
TEST(ParamCount, Llama3_8bHandCount) {
  const model::ModelSpec m = model::load_model("llama3-8b");
  ASSERT_EQ(m.vocab, 128256);
  const double L = 32, h = 4096, kv = 8 * 128, f = 14336, V = 128256;
  const double expected = L * (2 * h * h + 2 * h * kv + 3 * h * f + 2 * h) + 2 * V * h + h;
  EXPECT_EQ(expected, 8030261248.0);
  EXPECT_EQ(m.total_params(), expected);
}

TEST(ParamCount, LlamaStyleDefaultsFromSwiglu) {
  const model::ModelSpec m =
      model::parse_model("name: x\nlayers: 2\nhidden: 512\nheads: 8\nkv_heads: 2\nffn: 1536\nvocab: 1000\nseq: 128\nactivation: swiglu\n",
                         "inline.yaml");
  EXPECT_EQ(m.norm, model::Norm::rmsnorm);
  EXPECT_EQ(m.position, model::Position::rope);
  EXPECT_FALSE(m.tied_embeddings);
  EXPECT_FALSE(m.bias);
  EXPECT_FALSE(m.dropout);
  const double h = 512, kv = 2 * 64, f = 1536, V = 1000;
  EXPECT_EQ(m.total_params(), 2 * (2 * h * h + 2 * h * kv + 3 * h * f + 2 * h) + 2 * V * h + h);
}

TEST(ParamCount, GptDefaultsKvHeadsAndFfn) {
  const model::ModelSpec m = model::parse_model("layers: 2\nhidden: 64\nheads: 4\nvocab: 256\nseq: 64\n", "inline.yaml");
  EXPECT_EQ(m.kv_heads, 4);
  EXPECT_EQ(m.ffn, 256);
  EXPECT_TRUE(m.tied_embeddings);
  EXPECT_TRUE(m.dropout);
}

// The run-contract presets (DESIGN.md "run --json"): gpt-tiny 120,576 and gpt-small 3,454,464 params.
TEST(ParamCount, RunPresets) {
  const model::ModelSpec tiny = model::load_model("gpt-tiny");
  EXPECT_EQ(tiny.layers, 2);
  EXPECT_EQ(tiny.hidden, 64);
  EXPECT_EQ(tiny.heads, 4);
  EXPECT_EQ(tiny.vocab, 256);
  EXPECT_EQ(tiny.seq, 64);
  EXPECT_EQ(tiny.total_params(), 120576.0);
  const model::ModelSpec small = model::load_model("gpt-small");
  EXPECT_EQ(small.layers, 4);
  EXPECT_EQ(small.hidden, 256);
  EXPECT_EQ(small.heads, 8);
  EXPECT_EQ(small.vocab, 1024);
  EXPECT_EQ(small.seq, 128);
  EXPECT_EQ(small.total_params(), 3454464.0);
}

TEST(ParamCount, MixtralTotalAndActive) {
  const model::ModelSpec m = model::load_model("mixtral-8x7b");
  ASSERT_TRUE(m.moe.enabled());
  const double L = 32, h = 4096, kv = 1024, f = 14336, V = 32000, E = 8, k = 2;
  const double attn = 2 * h * h + 2 * h * kv, expert = 3 * h * f, router = h * E, norms = 2 * h;
  EXPECT_EQ(m.layer_params(), attn + E * expert + router + norms);
  EXPECT_EQ(m.layer_active_params(), attn + k * expert + router + norms);
  // Released checkpoint: 46,702,792,704 parameters.
  EXPECT_EQ(m.total_params(), L * (attn + E * expert + router + norms) + 2 * V * h + h);
  EXPECT_EQ(m.total_params(), 46702792704.0);
}

// ---------------------------------------------------------------- FLOPs
// Korthikanti 2022 eq. (7) / SC21 sec. 3: forward FLOPs of one GPT layer per sequence = 24 s h^2 + 4 s^2 h.
TEST(Flops, LayerForwardMatchesKorthikantiEq7) {
  for (const char* name : {"gpt3-125m", "gpt3-13b", "gpt3-175b", "gpt-22b", "gpt-1t"}) {
    const model::ModelSpec m = model::load_model(name);
    for (double s : {static_cast<double>(m.seq), 512.0, 8192.0}) {
      const double h = m.hidden;
      const double expected = 24 * s * h * h + 4 * s * s * h;
      EXPECT_NEAR(strategies::layer_forward_flops(m, s), expected, expected * 1e-14) << name << " s=" << s;
    }
  }
}

// GQA and SwiGLU (Megatron num_floating_point_operations): 2 s [h (h + 2 kv) + h^2 + 3 h f] + 4 s^2 h.
TEST(Flops, LayerForwardLlamaShape) {
  const model::ModelSpec m = model::load_model("llama2-70b");
  const double s = 4096, h = 8192, kv = 1024, f = 28672;
  const double expected = 2 * s * (h * (h + 2 * kv) + h * h + 3 * h * f) + 4 * s * s * h;
  EXPECT_NEAR(strategies::layer_forward_flops(m, s), expected, expected * 1e-14);
}

// Korthikanti 2022 Appendix A: model FLOPs per step = 72 B L s h^2 (1 + s/(6h) + V/(12 h L)).
TEST(Flops, ModelFlopsPerStepMatchesAppendixA) {
  const hw::Cluster c = hw::load_cluster("selene-a100");
  for (const char* name : {"gpt3-175b", "gpt3-1.3b", "gpt-22b", "gpt-530b"}) {
    const model::ModelSpec m = model::load_model(name);
    const analytic::Estimator est(m, c);
    const double L = m.layers, s = m.seq, h = m.hidden, V = m.vocab;
    for (double B : {1.0, 512.0, 1536.0}) {
      const double expected = 72 * B * L * s * h * h * (1 + s / (6 * h) + V / (12 * h * L));
      EXPECT_NEAR(est.model_flops_per_step(B), expected, expected * 1e-12) << name << " B=" << B;
    }
  }
}

TEST(Flops, ModelFlopsPerStepGpt3_175bPinned) {
  const analytic::Estimator est(model::load_model("gpt3-175b"), hw::load_cluster("selene-a100"));
  // 72 * 1536 * 96 * 2048 * 12288^2 * (1 + 2048/73728 + 50257/14155776)
  const double expected = 72.0 * 1536 * 96 * 2048 * 12288.0 * 12288.0 * (1 + 2048.0 / 73728 + 50257.0 / 14155776);
  EXPECT_NEAR(est.model_flops_per_step(1536), expected, expected * 1e-12);
  EXPECT_NEAR(est.model_flops_per_step(1536), 3.38598e18, 0.00001e18);
}

}  // namespace
