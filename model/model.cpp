#include "model/model.hpp"

#include <cmath>

#include "common/limits.hpp"
#include "common/presets.hpp"
#include "common/yaml_reader.hpp"

namespace scaleplan::model {

double ModelSpec::attn_weight_params() const {
  const double h = hidden;
  return h * h /*Q*/ + 2 * h * kv_dim() /*K,V*/ + h * h /*O*/;
}
double ModelSpec::attn_bias_params() const { return bias ? (hidden + 2.0 * kv_dim() + hidden) : 0.0; }
double ModelSpec::mlp_weight_params() const { return static_cast<double>(mlp_matrices()) * hidden * ffn; }
double ModelSpec::mlp_bias_params() const {
  return bias ? static_cast<double>(ffn) * (mlp_matrices() - 1) + hidden : 0.0;
}
double ModelSpec::norm_params() const { return 2.0 * norm_params_per_norm() * hidden; }
double ModelSpec::router_params() const { return moe.enabled() ? static_cast<double>(hidden) * moe.experts : 0.0; }
double ModelSpec::layer_params() const {
  const double e = moe.enabled() ? moe.experts : 1;
  return attn_weight_params() + attn_bias_params() + e * (mlp_weight_params() + mlp_bias_params()) + norm_params() +
         router_params();
}
double ModelSpec::layer_active_params() const {
  const double e = moe.enabled() ? moe.top_k : 1;
  return attn_weight_params() + attn_bias_params() + e * (mlp_weight_params() + mlp_bias_params()) + norm_params() +
         router_params();
}
double ModelSpec::embedding_params() const {
  return static_cast<double>(vocab) * hidden + (position == Position::learned ? static_cast<double>(seq) * hidden : 0.0);
}
double ModelSpec::lm_head_params() const { return tied_embeddings ? 0.0 : static_cast<double>(vocab) * hidden; }
double ModelSpec::final_norm_params() const { return static_cast<double>(norm_params_per_norm()) * hidden; }
double ModelSpec::total_params() const {
  return layers * layer_params() + embedding_params() + lm_head_params() + final_norm_params();
}

ModelSpec parse_model_map(const YamlMap& y) {
  y.check_keys({"name", "layers", "hidden", "heads", "kv_heads", "ffn", "vocab", "seq", "activation", "norm", "position",
                "tied_embeddings", "bias", "dropout", "moe", "params_b", "b_noise_tokens"});
  ModelSpec m;
  m.name = y.str_or("name", "inline-model");
  // Documented ranges (common/limits.hpp, docs/reliability.md): far above published models, low
  // enough that the search's loops over layers and heads end in seconds (issue 17).
  m.layers = y.int_in("layers", 1, limits::kMaxLayers);
  m.hidden = y.int_in("hidden", 1, limits::kMaxHidden);
  m.heads = y.int_in("heads", 1, limits::kMaxHeads);
  m.kv_heads = y.int_in_or("kv_heads", m.heads, 1, limits::kMaxHeads);
  m.ffn = y.int_in_or("ffn", 4 * m.hidden, 1, limits::kMaxFfn);
  m.vocab = y.int_in("vocab", 1, limits::kMaxVocab);
  m.seq = y.int_in("seq", 1, limits::kMaxSeq);
  if (m.hidden % m.heads != 0) y.fail("heads", "must divide hidden (" + std::to_string(m.hidden) + ")");
  if (m.heads % m.kv_heads != 0) y.fail("kv_heads", "must divide heads (" + std::to_string(m.heads) + ")");
  m.activation = y.choice("activation", {"gelu", "swiglu"}, "gelu") == "swiglu" ? Activation::swiglu : Activation::gelu;
  const bool llama_style = m.activation == Activation::swiglu;
  m.norm = y.choice("norm", {"layernorm", "rmsnorm"}, llama_style ? "rmsnorm" : "layernorm") == "rmsnorm" ? Norm::rmsnorm
                                                                                                        : Norm::layernorm;
  m.position = y.choice("position", {"learned", "rope"}, llama_style ? "rope" : "learned") == "rope" ? Position::rope
                                                                                                    : Position::learned;
  m.tied_embeddings = y.boolean_or("tied_embeddings", !llama_style);
  m.bias = y.boolean_or("bias", !llama_style);
  m.dropout = y.boolean_or("dropout", !llama_style);
  if (auto moe = y.opt_map("moe")) {
    moe->check_keys({"experts", "top_k", "capacity_factor"});
    m.moe.experts = static_cast<int>(moe->int_in("experts", 1, limits::kMaxExperts));
    m.moe.top_k = static_cast<int>(moe->int_in_or("top_k", 2, 1, limits::kMaxExperts));
    m.moe.capacity_factor = moe->num_or("capacity_factor", 1.0);
    if (m.moe.top_k > m.moe.experts) moe->fail("top_k", "must be <= experts");
  }
  m.params_nominal = y.num_or("params_b", 0, Bound::non_negative) * 1e9;
  m.b_noise_tokens = y.num_or("b_noise_tokens", 0, Bound::non_negative);
  return m;
}

ModelSpec parse_model(const std::string& text, const std::string& file) {
  return parse_model_map(YamlMap::parse(text, file));
}

ModelSpec load_model(const std::string& spec) {
  ConfigText t = load_config_text("models", spec);
  return parse_model(t.text, t.file);
}

}  // namespace scaleplan::model
