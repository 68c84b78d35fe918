// model/hf_config.hpp: Hugging Face config.json import. Real config files under tests/data/hf
// (sources in tests/data/hf/SOURCES.md); parameter counts against the numbers the model cards and
// papers publish (quoted at each row), the mapping of each architecture's keys, typed errors, and
// an estimate of a small plan for every file.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <set>
#include <string>

#include "common/errors.hpp"
#include "hardware/cluster.hpp"
#include "model/hf_config.hpp"
#include "simulator/analytic/estimator.hpp"
#include "strategies/layer_cost.hpp"
#include "strategies/plan.hpp"

namespace {

using namespace scaleplan;

std::string data(const std::string& f) { return std::string(SCALEPLAN_SOURCE_DIR) + "/tests/data/hf/" + f; }
model::ModelSpec load(const std::string& f) { return model::load_model("hf:" + data(f)); }

// Per-token parameters: MoE layers with top_k + shared experts (cli `scaleplan model` active_params).
double active(const model::ModelSpec& m) {
  return m.total_params() - static_cast<double>(m.moe_layers()) * (m.layer_params() - m.layer_active_params());
}
double input_embedding(const model::ModelSpec& m) { return static_cast<double>(m.vocab) * m.hidden; }

struct Published {
  const char* file;
  const char* model_type;
  double params;         // total, as published
  const char* quote;     // where the number comes from
};

// Total parameter counts published on the model cards (or the model's paper / release post).
const Published kPublished[] = {
    {"gpt2-gptq.json", "gpt2", 124e6, "openai-community/gpt2 card: 'the smallest version of GPT-2, with 124M parameters'"},
    {"gpt2-medium.json", "gpt2", 355e6, "gpt2-medium card: 'GPT-2 Medium is the 355M parameter version of GPT-2'"},
    {"gpt2-large.json", "gpt2", 774e6, "gpt2-large card: 'GPT-2 Large is the 774M parameter version of GPT-2'"},
    {"bloom-3b.json", "bloom", 3e9, "bigscience/bloom-3b card: 3B parameters (642M embedding parameters)"},
    {"pythia-6.9b-deduped.json", "gpt_neox", 6857302016.0, "EleutherAI Pythia card, exact counts: 6.9B = 6,857,302,016 total"},
    {"pythia-12b-deduped.json", "gpt_neox", 11846072320.0, "EleutherAI Pythia card: 12B = 11,846,072,320 total"},
    {"llama-2-13b.json", "llama", 13e9, "Llama 2 paper (arXiv 2307.09288) Table 1: 13B"},
    {"llama-3.1-8b-instruct.json", "llama", 8e9, "Llama 3.1 model card: 8B"},
    {"llama-3.2-1b-instruct.json", "llama", 1.23e9, "llama3_2/MODEL_CARD.md: '1B (1.23B parameters)'"},
    {"llama-3.2-3b-instruct.json", "llama", 3.21e9, "llama3_2/MODEL_CARD.md: '3B (3.21B parameters)'"},
    {"qwen2.5-7b-instruct.json", "qwen2", 7.61e9, "Qwen2.5-7B-Instruct card: 'Number of Parameters: 7.61B'"},
    {"mixtral-8x7b-v0.1.json", "mixtral", 46.7e9, "mistral.ai/news/mixtral-of-experts: '46.7B total parameters'"},
    {"qwen1.5-moe-a2.7b.json", "qwen2_moe", 14.3e9, "Qwen1.5-MoE-A2.7B card: '14.3B parameters in total'"},
    {"deepseek-v2-lite.json", "deepseek_v2", 15.7e9, "DeepSeek-V2-Lite card: '15.7B total parameters'"},
    {"deepseek-v3.json", "deepseek_v3", 671e9, "DeepSeek-V3 card / README_WEIGHTS.md: 'Total parameters: 671B' (MTP module excluded)"},
};

TEST(HfImport, ParamsMatchPublishedCardsWithinHalfPercent) {
  std::set<std::string> types;
  for (const auto& p : kPublished) {
    const model::ModelSpec m = load(p.file);
    const double err = std::fabs(m.total_params() - p.params) / p.params;
    EXPECT_LT(err, 0.005) << p.file << ": " << m.total_params() << " vs " << p.params << " (" << p.quote << ")";
    types.insert(p.model_type);
  }
  EXPECT_GE(std::size(kPublished), 12u);
  EXPECT_GE(types.size(), 8u);
}

// Exact published counts: the formula must hit them to the parameter.
TEST(HfImport, ExactPublishedCounts) {
  EXPECT_EQ(load("pythia-6.9b-deduped.json").total_params(), 6857302016.0);
  EXPECT_EQ(load("pythia-12b-deduped.json").total_params(), 11846072320.0);
  // Pythia card, non-embedding: 6.9B 6,444,163,072 (embed_in and embed_out excluded).
  const model::ModelSpec p = load("pythia-6.9b-deduped.json");
  EXPECT_EQ(p.total_params() - 2 * input_embedding(p), 6444163072.0);
  // Gemma 2 paper (arXiv 2408.00118) Table 1, non-embedding parameters: 2B 2,024,517,888;
  // 9B 8,324,201,984; 27B 26,047,480,320 (tied embeddings: total = non-embedding + V h).
  EXPECT_EQ(load("gemma-2-2b.json").total_params() - input_embedding(load("gemma-2-2b.json")), 2024517888.0);
  EXPECT_EQ(load("gemma-2-9b.json").total_params() - input_embedding(load("gemma-2-9b.json")), 8324201984.0);
  EXPECT_EQ(load("gemma-2-27b.json").total_params() - input_embedding(load("gemma-2-27b.json")), 26047480320.0);
  // GPT-2 124M: 12 (12 h^2 + 13 h) + V h + 1024 h + 2 h = 124,439,808 (SC21 eq. 2 plus the final LayerNorm).
  EXPECT_EQ(load("gpt2-gptq.json").total_params(), 124439808.0);
  // BLOOM: L (12 h^2 + 13 h) + V h + 2 h (word_embeddings_layernorm) + 2 h (ln_f).
  const double h = 2560;
  EXPECT_EQ(load("bloom-3b.json").total_params(), 30 * (12 * h * h + 13 * h) + 250880 * h + 4 * h);
  EXPECT_NEAR(load("bloom-3b.json").embedding_params(), 642e6, 642e6 * 0.005);  // card: 642M embedding
}

// Active parameters per token, as published for the MoE models.
TEST(HfImport, MoeActiveParamsMatchPublished) {
  // mistral.ai: 'only uses 12.9B parameters per token'.
  const model::ModelSpec mix = load("mixtral-8x7b-v0.1.json");
  EXPECT_NEAR(active(mix), 12.9e9, 12.9e9 * 0.005);
  // Qwen1.5-MoE-A2.7B card: '2.7B activated parameters during runtime'.
  const model::ModelSpec q = load("qwen1.5-moe-a2.7b.json");
  EXPECT_NEAR(active(q), 2.7e9, 2.7e9 * 0.005);
  // DeepSeek-V2-Lite card: '2.4B activated'. Counted as for V3 below (input embedding left out) this
  // gives 2.451B: 2.1% above the published figure, which has two significant digits. Pinned to the
  // hand count (27 layers, 1 dense; MLA without q compression; 6 routed + 2 shared of 1408) instead.
  const model::ModelSpec lite = load("deepseek-v2-lite.json");
  EXPECT_EQ(active(lite), 2661150208.0);
  EXPECT_NEAR(active(lite) - input_embedding(lite), 2.4e9, 2.4e9 * 0.025);
  // DeepSeek-V3 README_WEIGHTS.md: 'Activation parameters: 36.6B (including 0.9B for the output Head)',
  // i.e. the input embedding (a lookup) is not counted as activated.
  const model::ModelSpec v3 = load("deepseek-v3.json");
  EXPECT_NEAR(active(v3) - input_embedding(v3), 36.6e9, 36.6e9 * 0.005);
}

TEST(HfImport, MapsEachArchitecturesKeys) {
  const model::ModelSpec g = load("gemma-2-9b.json");  // head_dim 256 != 3584/16
  EXPECT_EQ(g.head_dim(), 256);
  EXPECT_EQ(g.q_dim(), 4096);
  EXPECT_EQ(g.activation, model::Activation::geglu);
  EXPECT_EQ(g.mlp_matrices(), 3);
  EXPECT_EQ(g.layer_norms, 4);
  EXPECT_TRUE(g.tied_embeddings);
  EXPECT_EQ(g.seq, 8192);

  const model::ModelSpec l = load("llama-3.1-8b-instruct.json");
  EXPECT_EQ(l.activation, model::Activation::swiglu);
  EXPECT_EQ(l.kv_heads, 8);
  EXPECT_FALSE(l.bias);
  EXPECT_FALSE(l.tied_embeddings);
  EXPECT_EQ(l.position, model::Position::rope);
  EXPECT_EQ(l.seq, 8192);  // rope_scaling.original_max_position_embeddings: the pre-training context
  EXPECT_TRUE(load("llama-3.2-1b-instruct.json").tied_embeddings);

  const model::ModelSpec q = load("qwen2.5-7b-instruct.json");
  EXPECT_TRUE(q.qkv_bias);
  EXPECT_EQ(q.attn_bias_params(), 3584.0 + 2 * 512);  // q, k, v biases; o_proj has none

  const model::ModelSpec moe = load("qwen1.5-moe-a2.7b.json");
  EXPECT_EQ(moe.moe.experts, 60);
  EXPECT_EQ(moe.moe.top_k, 4);
  EXPECT_EQ(moe.moe.expert_ffn, 1408);
  EXPECT_EQ(moe.moe.shared_experts, 1);
  EXPECT_EQ(moe.moe.shared_expert_ffn, 5632);
  EXPECT_TRUE(moe.moe.shared_expert_gate);
  EXPECT_EQ(moe.router_params(), 2048.0 * 60 + 2048);  // gate + shared_expert_gate

  const model::ModelSpec v3 = load("deepseek-v3.json");
  EXPECT_EQ(v3.moe.experts, 256);
  EXPECT_EQ(v3.moe.shared_experts, 1);
  EXPECT_EQ(v3.moe.first_dense_layers, 3);
  EXPECT_EQ(v3.moe.expert_ffn, 2048);
  EXPECT_EQ(v3.ffn, 18432);
  EXPECT_EQ(v3.mla.q_lora_rank, 1536);
  EXPECT_EQ(v3.mla.kv_lora_rank, 512);
  EXPECT_EQ(v3.weight_bits, 8);  // quantization_config fp8
  EXPECT_EQ(v3.seq, 4096);
  EXPECT_EQ(load("deepseek-v2-lite.json").mla.q_lora_rank, 0);  // null: q projected directly

  const model::ModelSpec b = load("bloom-3b.json");
  EXPECT_EQ(b.position, model::Position::alibi);
  EXPECT_TRUE(b.embedding_norm);
  EXPECT_TRUE(b.bias);
  EXPECT_EQ(b.ffn, 4 * 2560);

  const model::ModelSpec n = load("pythia-12b-deduped.json");
  EXPECT_FALSE(n.tied_embeddings);
  EXPECT_EQ(n.position, model::Position::rope);
  EXPECT_EQ(n.activation, model::Activation::gelu);

  const model::ModelSpec g2 = load("gpt2-large.json");
  EXPECT_EQ(g2.position, model::Position::learned);
  EXPECT_EQ(g2.position_rows(), 1024);
  EXPECT_EQ(g2.ffn, 4 * 1280);
}

// Forward FLOPs of one layer: 2 per weight per token over the attention matrices and the MLP a token
// uses, plus 4 s^2 h for QK^T and AV (strategies/layer_cost.cpp). DeepSeek-V3 by hand: MLA weights
// q_a 7168x1536 + norm 1536 + q_b 1536x128x192, kv_a 7168x576 + norm 512, kv_b 512x128x256,
// o 128x128x7168 = 187,107,328; MLP: (8 routed + 1 shared) x 3 x 7168 x 2048 = 396,361,728.
TEST(HfImport, LayerFlopsUseExpertWidthAndMla) {
  const model::ModelSpec v3 = load("deepseek-v3.json");
  EXPECT_EQ(v3.attn_weight_params(), 187107328.0);
  const double s = 4096;
  // Attention core: 2 s^2 per head and unit of the query-key (qk_nope 128 + qk_rope 64) and value (128)
  // head dims, 128 heads (DeepSeek-V2 eqs. 9-18); not 4 s^2 h, which holds only when head dims are h / heads.
  const double expected = 2 * s * (187107328.0 + 396361728.0) + 2 * s * s * 128 * (192 + 128);
  EXPECT_NEAR(strategies::layer_forward_flops(v3, s), expected, expected * 1e-12);
  // Mixtral (expert_ffn = intermediate_size): 2 s (h (h + 2 kv) + h^2 + 2 x 3 h f) + 4 s^2 h, as before.
  const model::ModelSpec mix = load("mixtral-8x7b-v0.1.json");
  const double h = 4096, kv = 1024, f = 14336;
  const double mexp = 2 * s * (h * (h + 2 * kv) + h * h + 2 * 3 * h * f) + 4 * s * s * h;
  EXPECT_NEAR(strategies::layer_forward_flops(mix, s), mexp, mexp * 1e-12);
}

// OPT: no real config file was found in a public repository here, so the mapping is pinned on the
// keys OPTConfig defines (modeling_opt.py: learned positions offset by 2, ReLU, biases, tied).
TEST(HfImport, OptMapping) {
  const std::string cfg = R"({"model_type": "opt", "hidden_size": 768, "num_hidden_layers": 12,
    "num_attention_heads": 12, "ffn_dim": 3072, "vocab_size": 50272, "max_position_embeddings": 2048,
    "activation_function": "relu", "word_embed_proj_dim": 768})";
  const model::ModelSpec m = model::parse_hf_config(cfg, "opt.json");
  EXPECT_EQ(m.activation, model::Activation::relu);
  EXPECT_EQ(m.position_rows(), 2050);
  const double h = 768;
  // 12 (12 h^2 + 13 h) + V h + 2050 h + 2 h = 125,239,296 (OPT-125m).
  EXPECT_EQ(m.total_params(), 12 * (12 * h * h + 13 * h) + 50272 * h + 2050 * h + 2 * h);
  EXPECT_EQ(m.total_params(), 125239296.0);
}

ConfigError error_of(const std::string& text) {
  try {
    model::parse_hf_config(text, "cfg.json");
  } catch (const ConfigError& e) {
    return e;
  }
  ADD_FAILURE() << "no ConfigError for " << text;
  return ConfigError({}, "", "");
}

TEST(HfImport, UnknownModelTypeNamesTheKeyAndPosition) {
  const ConfigError e = error_of("{\n  \"hidden_size\": 8,\n  \"model_type\": \"t5\"\n}");
  EXPECT_EQ(e.field(), "model_type");
  EXPECT_EQ(e.where().file, "cfg.json");
  EXPECT_EQ(e.where().line, 3);
  EXPECT_NE(std::string(e.what()).find("t5"), std::string::npos);
  EXPECT_NE(std::string(e.what()).find("llama"), std::string::npos);  // lists the supported ones
}

TEST(HfImport, MissingKeyIsNamed) {
  const ConfigError e = error_of(R"({"model_type": "llama", "hidden_size": 64, "num_attention_heads": 4,
    "intermediate_size": 128, "vocab_size": 100, "max_position_embeddings": 64})");
  EXPECT_EQ(e.field(), "num_hidden_layers");
  EXPECT_NE(std::string(e.what()).find("missing key 'num_hidden_layers'"), std::string::npos);
  EXPECT_EQ(error_of(R"({"hidden_size": 8})").field(), "model_type");
}

TEST(HfImport, BadValuesAndSyntax) {
  const ConfigError e = error_of("{\"model_type\": \"gpt2\", \"n_layer\": \"twelve\"}");
  EXPECT_EQ(e.field(), "n_layer");
  EXPECT_EQ(e.where().line, 1);
  EXPECT_GT(e.where().column, 1);
  const ConfigError s = error_of("{\n  \"model_type\": \"gpt2\",\n  oops\n}");
  EXPECT_EQ(s.where().line, 3);
  EXPECT_NE(std::string(s.what()).find("invalid JSON"), std::string::npos);
  EXPECT_THROW(model::load_model("hf:/nonexistent/config.json"), UsageError);
}

TEST(HfImport, FolderHoldingConfigJson) {
  const std::string dir = testing::TempDir() + "/hf_folder_test";
  std::filesystem::create_directories(dir);
  {
    std::ifstream in(data("gpt2-large.json"));
    std::ofstream out(dir + "/config.json");
    out << in.rdbuf();
  }
  const model::ModelSpec m = model::load_model("hf:" + dir);
  EXPECT_EQ(m.total_params(), load("gpt2-large.json").total_params());
  EXPECT_EQ(m.name, "hf_folder_test");
}

// Every committed config gives a model the estimator costs: a small plan on 8 H100s.
TEST(HfImport, EstimatorAcceptsEveryFileItModels) {
  const hw::Cluster c = hw::load_cluster("dgx-h100");
  int n = 0;
  for (const auto& e : std::filesystem::directory_iterator(data(""))) {
    if (e.path().extension() != ".json") continue;
    model::ModelSpec m = model::load_model("hf:" + e.path().string());
    m.seq = 2048;
    const int tp = m.heads % 8 == 0 && (m.kv_heads % 8 == 0 || m.mla.enabled()) ? 8 : 1;
    const strategies::Plan plan = strategies::parse_plan("tp=" + std::to_string(tp) + ",mbs=1,gbs=64");
    if (m.mla.enabled() || m.moe.first_dense_layers > 0) {
      // DeepSeek-V2/V3 (MLA, dense first layers): the training estimator refuses them by key (`serve` costs
      // them); fine-grained and shared experts (Qwen1.5-MoE) are costed (strategies/expert).
      EXPECT_THROW(strategies::resolve_plan(plan, m, c, 8), PlanError) << e.path();
      continue;
    }
    const strategies::Plan p = strategies::resolve_plan(plan, m, c, 8);
    const analytic::Estimator est(m, c);
    const strategies::StepReport r = est.evaluate(p);
    EXPECT_GT(r.time.step_s, 0) << e.path();
    EXPECT_GT(r.throughput.tokens_per_s, 0) << e.path();
    EXPECT_GT(r.memory.total(), 0) << e.path();
    ++n;
  }
  EXPECT_GE(n, 12);
}

}  // namespace
