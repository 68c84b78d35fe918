#include "model/model.hpp"

#include <cmath>

#include "common/limits.hpp"
#include "common/presets.hpp"
#include "common/yaml_reader.hpp"
#include "model/hf_config.hpp"

namespace scaleplan::model {

double ModelSpec::attn_weight_params() const {
  const double h = hidden;
  if (mla.enabled()) {
    // DeepSeek-V2 sec. 2.1.2 eqs. (9)-(18) / HF modeling_deepseek.py DeepseekV2Attention: q_a (+norm), q_b,
    // kv_a_proj_with_mqa (latent + rope key), kv_a norm, kv_b (per-head K_nope and V), o_proj.
    const double nh = heads, qk = mla.qk_nope_head_dim + mla.qk_rope_head_dim, r = mla.q_lora_rank, c = mla.kv_lora_rank;
    const double q = r > 0 ? h * r + r + r * nh * qk : h * nh * qk;
    return q + h * (c + mla.qk_rope_head_dim) + c + c * nh * (mla.qk_nope_head_dim + mla.v_head_dim) + nh * mla.v_head_dim * h;
  }
  // Q and O are h x (heads head_dim): h x h unless head_dim is explicit (HF modeling_gemma2.py Gemma2Attention).
  const double q = static_cast<double>(q_dim());
  return h * q /*Q*/ + 2 * h * kv_dim() /*K,V*/ + q * h /*O*/;
}
double ModelSpec::kv_elems_per_token_layer() const {
  if (mla.enabled()) return static_cast<double>(mla.kv_lora_rank + mla.qk_rope_head_dim);
  return 2.0 * static_cast<double>(kv_dim());
}
double ModelSpec::expert_mlp_params() const {
  return static_cast<double>(mlp_matrices()) * hidden * (moe.expert_ffn > 0 ? moe.expert_ffn : ffn);
}
double ModelSpec::attn_bias_params() const {
  const double qkv = static_cast<double>(q_dim()) + 2.0 * kv_dim();
  if (bias) return qkv + hidden;  // QKV bias + O bias
  return qkv_bias ? qkv : 0.0;    // Qwen2 (modeling_qwen2.py Qwen2Attention: q/k/v bias=True, o_proj bias=False)
}
double ModelSpec::shared_expert_mlp_params() const {
  if (moe.shared_expert_ffn <= 0) return expert_mlp_params();
  return static_cast<double>(mlp_matrices()) * hidden * moe.shared_expert_ffn;
}
double ModelSpec::mlp_weight_params() const { return static_cast<double>(mlp_matrices()) * hidden * ffn; }
double ModelSpec::mlp_bias_params() const {
  return bias ? static_cast<double>(ffn) * (mlp_matrices() - 1) + hidden : 0.0;
}
double ModelSpec::norm_params() const { return static_cast<double>(layer_norms) * norm_params_per_norm() * hidden; }
double ModelSpec::router_params() const {
  if (!moe.enabled()) return 0.0;
  // Qwen2-MoE's shared_expert_gate is Linear(hidden, 1, bias=False) (modeling_qwen2_moe.py).
  return static_cast<double>(hidden) * moe.experts + (moe.shared_expert_gate ? static_cast<double>(hidden) : 0.0);
}
double ModelSpec::layer_params() const {
  if (!moe.enabled()) return attn_weight_params() + attn_bias_params() + mlp_weight_params() + mlp_bias_params() + norm_params();
  const double shared = moe.shared_experts * (shared_expert_mlp_params() + mlp_bias_params());
  return attn_weight_params() + attn_bias_params() + moe.experts * (expert_mlp_params() + mlp_bias_params()) + shared +
         norm_params() + router_params();
}
double ModelSpec::layer_active_params() const {
  if (!moe.enabled()) return layer_params();
  const double shared = moe.shared_experts * (shared_expert_mlp_params() + mlp_bias_params());
  return attn_weight_params() + attn_bias_params() + moe.top_k * (expert_mlp_params() + mlp_bias_params()) + shared +
         norm_params() + router_params();
}
double ModelSpec::embedding_params() const {
  const double pos = position == Position::learned ? static_cast<double>(position_rows()) * hidden : 0.0;
  // BLOOM's word_embeddings_layernorm (modeling_bloom.py BloomModel) sits with the embedding.
  const double emb_norm = embedding_norm ? static_cast<double>(norm_params_per_norm()) * hidden : 0.0;
  return static_cast<double>(vocab) * hidden + pos + emb_norm;
}
double ModelSpec::lm_head_params() const { return tied_embeddings ? 0.0 : static_cast<double>(vocab) * hidden; }
double ModelSpec::final_norm_params() const { return static_cast<double>(norm_params_per_norm()) * hidden; }
double ModelSpec::total_params() const {
  // Leading dense layers of a DeepSeekMoE model (first_dense_layers; 0 otherwise) hold one FFN of width ffn.
  const double dense = static_cast<double>(moe.enabled() ? moe.first_dense_layers : 0);
  const double dense_layer = attn_weight_params() + attn_bias_params() + mlp_weight_params() + mlp_bias_params() + norm_params();
  return (layers - dense) * layer_params() + dense * dense_layer + embedding_params() + lm_head_params() + final_norm_params();
}

ModelSpec parse_model_map(const YamlMap& y) {
  y.check_keys({"name", "layers", "hidden", "heads", "kv_heads", "ffn", "vocab", "seq", "activation", "norm", "position",
                "tied_embeddings", "bias", "dropout", "moe", "params_b", "b_noise_tokens", "mla", "weight_bits", "head_dim"});
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
  m.head_dim_explicit = y.int_in_or("head_dim", 0, 0, limits::kMaxHidden);
  if (m.head_dim_explicit == 0 && m.hidden % m.heads != 0)
    y.fail("heads", "must divide hidden (" + std::to_string(m.hidden) + ")");
  if (m.heads % m.kv_heads != 0) y.fail("kv_heads", "must divide heads (" + std::to_string(m.heads) + ")");
  const std::string act = y.choice("activation", {"gelu", "swiglu", "relu", "geglu", "squared_relu"}, "gelu");
  m.activation = act == "swiglu"         ? Activation::swiglu
                 : act == "relu"         ? Activation::relu
                 : act == "geglu"        ? Activation::geglu
                 : act == "squared_relu" ? Activation::squared_relu
                                         : Activation::gelu;
  const bool llama_style = m.gated();
  m.norm = y.choice("norm", {"layernorm", "rmsnorm"}, llama_style ? "rmsnorm" : "layernorm") == "rmsnorm" ? Norm::rmsnorm
                                                                                                        : Norm::layernorm;
  const std::string pos = y.choice("position", {"learned", "rope", "alibi"}, llama_style ? "rope" : "learned");
  m.position = pos == "rope" ? Position::rope : pos == "alibi" ? Position::alibi : Position::learned;
  m.tied_embeddings = y.boolean_or("tied_embeddings", !llama_style);
  m.bias = y.boolean_or("bias", !llama_style);
  m.dropout = y.boolean_or("dropout", !llama_style);
  if (auto moe = y.opt_map("moe")) {
    moe->check_keys({"experts", "top_k", "capacity_factor", "shared_experts", "expert_ffn", "first_dense_layers",
                     "shared_expert_ffn", "shared_expert_gate"});
    m.moe.shared_expert_ffn = moe->int_in_or("shared_expert_ffn", 0, 0, limits::kMaxFfn);
    m.moe.shared_expert_gate = moe->boolean_or("shared_expert_gate", false);
    m.moe.experts = static_cast<int>(moe->int_in("experts", 1, limits::kMaxExperts));
    m.moe.top_k = static_cast<int>(moe->int_in_or("top_k", 2, 1, limits::kMaxExperts));
    m.moe.capacity_factor = moe->num_or("capacity_factor", 1.0);
    if (m.moe.top_k > m.moe.experts) moe->fail("top_k", "must be <= experts");
    m.moe.shared_experts = static_cast<int>(moe->integer_or("shared_experts", 0, Bound::non_negative));
    m.moe.expert_ffn = moe->integer_or("expert_ffn", 0, Bound::non_negative);
    m.moe.first_dense_layers = static_cast<int>(moe->integer_or("first_dense_layers", 0, Bound::non_negative));
    if (m.moe.first_dense_layers >= m.layers) moe->fail("first_dense_layers", "must be < layers");
  }
  if (auto mla = y.opt_map("mla")) {
    mla->check_keys({"q_lora_rank", "kv_lora_rank", "qk_nope_head_dim", "qk_rope_head_dim", "v_head_dim"});
    m.mla.q_lora_rank = mla->integer_or("q_lora_rank", 0, Bound::non_negative);
    m.mla.kv_lora_rank = mla->integer("kv_lora_rank");
    m.mla.qk_nope_head_dim = mla->integer("qk_nope_head_dim");
    m.mla.qk_rope_head_dim = mla->integer("qk_rope_head_dim");
    m.mla.v_head_dim = mla->integer("v_head_dim");
  }
  const long long bits = y.integer_or("weight_bits", 16);
  if (bits != 4 && bits != 8 && bits != 16 && bits != 32) y.fail("weight_bits", "must be 4, 8, 16 or 32");
  m.weight_bits = static_cast<int>(bits);
  m.params_nominal = y.num_or("params_b", 0, Bound::non_negative) * 1e9;
  m.b_noise_tokens = y.num_or("b_noise_tokens", 0, Bound::non_negative);
  return m;
}

ModelSpec parse_model(const std::string& text, const std::string& file) {
  return parse_model_map(YamlMap::parse(text, file));
}

ModelSpec load_model(const std::string& spec) {
  if (spec.rfind("hf:", 0) == 0) return load_hf_config(spec.substr(3));
  ConfigText t = load_config_text("models", spec);
  return parse_model(t.text, t.file);
}

}  // namespace scaleplan::model
