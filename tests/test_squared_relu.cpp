// The squared-ReLU activation (Nemotron-4, arXiv 2402.16819 sec. 2; Megatron-Core
// megatron/core/activations.py squared_relu = torch.pow(F.relu(x), 2) under jit_fuser): parsed from
// a model mapping and a runs-file row, costed as an ungated two-matrix MLP (GEMM FLOPs and stored
// activation bytes counted by hand below).
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "common/yaml_reader.hpp"
#include "model/model.hpp"
#include "strategies/layer_cost.hpp"
#include "strategies/memory.hpp"
#include "validation/infer.hpp"

namespace {

using namespace scaleplan;

// Nemotron-3 8B shape (NeMo nemotron.py Nemotron3Config8B) with NemotronConfig's architecture keys.
const char* kNemotron8b = R"(name: nemotron-8b
layers: 32
hidden: 4096
heads: 32
ffn: 16384
vocab: 256000
seq: 4096
activation: squared_relu
norm: layernorm
position: rope
tied_embeddings: false
bias: false
dropout: false
)";

TEST(SquaredRelu, ParsesAsAnUngatedActivation) {
  const model::ModelSpec m = model::parse_model(kNemotron8b, "nemotron-8b.yaml");
  EXPECT_EQ(m.activation, model::Activation::squared_relu);
  EXPECT_FALSE(m.gated());
  EXPECT_EQ(m.mlp_matrices(), 2);
  // Not a LLaMA-style (gated) model: the norm/position defaults stay GPT's unless given.
  const model::ModelSpec d = model::parse_model("{layers: 2, hidden: 64, heads: 4, vocab: 100, seq: 16, activation: squared_relu}", "x.yaml");
  EXPECT_EQ(d.norm, model::Norm::layernorm);
  EXPECT_EQ(d.position, model::Position::learned);
  EXPECT_EQ(d.ffn, 4 * 64);
}

TEST(SquaredRelu, MisspeltNameIsRejectedWithTheField) {
  try {
    model::parse_model("{layers: 2, hidden: 64, heads: 4, vocab: 100, seq: 16, activation: squared-relu}", "x.yaml");
    FAIL() << "squared-relu accepted";
  } catch (const std::exception& e) {
    EXPECT_NE(std::string(e.what()).find("activation"), std::string::npos) << e.what();
  }
}

// A runs-file row's inline model keeps squared_relu as it is (no substitution, nothing assumed).
TEST(SquaredRelu, RunsRowModelPassesThrough) {
  const YamlMap row = YamlMap::parse("{name: nemotron-22b, layers: 40, hidden: 6144, heads: 48, kv_heads: null, ffn: 24576, "
                                     "vocab: 256000, seq: 4096, params_b: null, activation: squared_relu}",
                                     "row.yaml");
  std::vector<std::string> assumed;
  const model::ModelSpec m = validation::parse_row_model(row, assumed);
  EXPECT_EQ(m.activation, model::Activation::squared_relu);
  EXPECT_EQ(m.kv_heads, m.heads);  // kv_heads null: MHA
  EXPECT_TRUE(assumed.empty());
}

// Two GEMMs per token in the MLP (up h x f, down f x h): 2 s (4 h^2 + 2 h f) + 4 s^2 h forward
// (MHA, no bias), the same as the GeLU MLP of the same width.
TEST(SquaredRelu, MlpFlopsByHand) {
  const model::ModelSpec m = model::parse_model(kNemotron8b, "nemotron-8b.yaml");
  const double s = 4096, h = 4096, f = 16384;
  EXPECT_DOUBLE_EQ(m.mlp_weight_params(), 2 * h * f);
  const double expected = 2 * s * (4 * h * h + 2 * h * f) + 4 * s * s * h;
  EXPECT_NEAR(strategies::layer_forward_flops(m, s), expected, expected * 1e-14);
  // 2*4096*(4*4096^2 + 2*4096*16384) + 4*4096^2*4096 = 1649267441664 + 274877906944
  EXPECT_DOUBLE_EQ(expected, 1649267441664.0 + 274877906944.0);
  model::ModelSpec g = m;
  g.activation = model::Activation::gelu;
  EXPECT_DOUBLE_EQ(strategies::layer_forward_flops(g, s), expected);
}

// Bytes one layer keeps (no recompute, tp 1, flash attention, 16-bit e = 2, no dropout), term by term
// (Korthikanti 2022 sec. 4): norm inputs 2e, QKV input e, FC1 input e, Q/K/V 3e, projection input e
// = 8e = 16 sbh; the MLP keeps ONE FC1-output tensor
// (the fused squared ReLU's saved input) plus the FC2 input: 2e f/h sbh = 4 sbh f/h; flash keeps a
// fp32 logsumexp per head and query: 4 b a s.
TEST(SquaredRelu, ActivationBytesByHand) {
  const model::ModelSpec m = model::parse_model(kNemotron8b, "nemotron-8b.yaml");
  strategies::ActShape a;
  a.b = 2;
  a.s = 4096;
  a.s_kv = 4096;
  a.tp = 1;
  a.flash = true;
  const double b = 2, s = 4096, h = 4096, f = 16384, heads = 32;
  const double sbh = s * b * h;
  const double expected = 16 * sbh + 4 * sbh * f / h + 4 * b * heads * s;
  EXPECT_DOUBLE_EQ(strategies::layer_activation_bytes(m, a), expected);
  EXPECT_DOUBLE_EQ(expected, 32 * sbh + 1048576.0);  // 1074790400 B
  // A gated (SwiGLU) MLP of the same width keeps two FC1 outputs (gate and up): 2 sbh f/h more.
  model::ModelSpec sw = m;
  sw.activation = model::Activation::swiglu;
  EXPECT_DOUBLE_EQ(strategies::layer_activation_bytes(sw, a) - expected, 2 * sbh * f / h);
}

}  // namespace
