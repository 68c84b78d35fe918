#pragma once
// The model spec: a decoder-only transformer (GPT / LLaMA / MoE shapes) and its parameter counts.
#include <string>

namespace scaleplan {
class YamlMap;
}

namespace scaleplan::model {

enum class Activation { gelu, swiglu };
enum class Norm { layernorm, rmsnorm };
enum class Position { learned, rope };

struct Moe {
  int experts = 0;  // 0 = dense
  int top_k = 1;
  double capacity_factor = 1.0;
  bool enabled() const { return experts > 1; }
};

struct ModelSpec {
  std::string name;
  long long layers = 0, hidden = 0, heads = 0, kv_heads = 0, ffn = 0, vocab = 0, seq = 0;
  Activation activation = Activation::gelu;
  Norm norm = Norm::layernorm;
  Position position = Position::learned;
  bool tied_embeddings = true;
  bool bias = true;
  bool dropout = true;           // GPT-style recipes train with dropout (Megatron default 0.1); LLaMA-style without
  Moe moe;
  double params_nominal = 0;     // from the file, for a sanity check only
  double b_noise_tokens = 0;     // critical batch (McCandlish et al. 2018), 0 = unknown

  long long head_dim() const { return hidden / heads; }
  long long kv_dim() const { return kv_heads * head_dim(); }
  int mlp_matrices() const { return activation == Activation::swiglu ? 3 : 2; }
  int norm_params_per_norm() const { return norm == Norm::layernorm ? 2 : 1; }  // weight (+ bias)

  // Parameter counts (SC21 eq. 2 for GPT: 12 L h^2 (1 + 13/(12h) + (V+s)/(12 L h))).
  double attn_weight_params() const;   // Q, K, V, O matrices
  double attn_bias_params() const;     // QKV bias + O bias
  double mlp_weight_params() const;    // one expert
  double mlp_bias_params() const;
  double norm_params() const;          // the two per-layer norms
  double router_params() const;
  double layer_params() const;         // all experts included
  double layer_active_params() const;  // top_k experts
  double embedding_params() const;     // word (+ learned position) embedding
  double lm_head_params() const;       // 0 when tied
  double final_norm_params() const;
  double total_params() const;
};

ModelSpec parse_model(const std::string& text, const std::string& file);
ModelSpec parse_model_map(const YamlMap& y);  // a model mapping (presets and runs files)
ModelSpec load_model(const std::string& spec);

}  // namespace scaleplan::model
