#pragma once
// The model spec: a decoder-only transformer (GPT / LLaMA / MoE shapes) and its parameter counts.
#include <string>

namespace scaleplan {
class YamlMap;
}

namespace scaleplan::model {

// relu: OPT (modeling_opt.py, activation_function=relu); geglu: Gemma 2 (modeling_gemma2.py Gemma2MLP,
// gelu-gated like swiglu: gate, up and down projections). squared_relu: Nemotron-4 (arXiv 2402.16819 sec. 2,
// "Squared ReLU activations in the MLP layers"; Megatron-Core megatron/core/activations.py squared_relu =
// torch.pow(F.relu(x), 2) under jit_fuser): ungated two-matrix MLP as gelu/relu.
enum class Activation { gelu, swiglu, relu, geglu, squared_relu };
enum class Norm { layernorm, rmsnorm };
// alibi: BLOOM (modeling_bloom.py build_alibi_tensor), no position parameters.
enum class Position { learned, rope, alibi };

struct Moe {
  int experts = 0;  // 0 = dense
  int top_k = 1;
  double capacity_factor = 1.0;
  // DeepSeekMoE (DeepSeek-V3 tech report, arXiv 2412.19437, sec. 2.1.2): always-active shared experts,
  // a routed-expert FFN width of its own, and the first layers kept dense. 0 = as Mixtral/GShard.
  int shared_experts = 0;
  long long expert_ffn = 0;      // intermediate size of one routed/shared expert; 0 = ffn
  int first_dense_layers = 0;    // leading layers with a dense FFN of width ffn (HF first_k_dense_replace)
  // Qwen2-MoE (HF modeling_qwen2_moe.py Qwen2MoeSparseMoeBlock): one shared expert of its own width
  // (shared_expert_intermediate_size) scaled by a sigmoid gate Linear(hidden, 1). 0 = expert_ffn.
  long long shared_expert_ffn = 0;
  bool shared_expert_gate = false;
  bool enabled() const { return experts > 1; }
};

// Multi-head latent attention (DeepSeek-V2, arXiv 2405.04434, sec. 2.1.2-2.1.3): K and V are
// rebuilt from a cached latent of kv_lora_rank plus a shared decoupled RoPE key of qk_rope_head_dim.
struct Mla {
  long long q_lora_rank = 0;       // 0: queries projected directly from the hidden state
  long long kv_lora_rank = 0;      // d_c; 0 = no MLA
  long long qk_nope_head_dim = 0;  // d_h (per-head non-rotary query/key dim)
  long long qk_rope_head_dim = 0;  // d_h^R
  long long v_head_dim = 0;
  bool enabled() const { return kv_lora_rank > 0; }
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
  Mla mla;
  int weight_bits = 16;          // bits per weight of the released checkpoint (DeepSeek-V3: 8, fp8); serving's default
  // Hugging Face architectures (model/hf_config.hpp); defaults keep the GPT/LLaMA shapes above.
  long long head_dim_explicit = 0;  // HF head_dim where it differs from hidden/heads (Gemma 2); 0 = hidden/heads
  bool qkv_bias = false;            // Q/K/V biases without the other biases (Qwen2 modeling_qwen2.py)
  int layer_norms = 2;              // norms per layer (Gemma 2: 4, modeling_gemma2.py Gemma2DecoderLayer)
  bool embedding_norm = false;      // LayerNorm after the word embedding (BLOOM word_embeddings_layernorm)
  long long max_positions = 0;      // rows of the learned position table; 0 = seq (OPT: max_position_embeddings + 2)
  double params_nominal = 0;     // from the file, for a sanity check only
  double b_noise_tokens = 0;     // critical batch (McCandlish et al. 2018), 0 = unknown

  long long head_dim() const { return head_dim_explicit > 0 ? head_dim_explicit : hidden / heads; }
  long long q_dim() const { return heads * head_dim(); }  // = hidden unless head_dim_explicit
  long long kv_dim() const { return kv_heads * head_dim(); }
  bool gated() const { return activation == Activation::swiglu || activation == Activation::geglu; }
  int mlp_matrices() const { return gated() ? 3 : 2; }
  int norm_params_per_norm() const { return norm == Norm::layernorm ? 2 : 1; }  // weight (+ bias)
  long long position_rows() const { return max_positions > 0 ? max_positions : seq; }

  // Parameter counts (SC21 eq. 2 for GPT: 12 L h^2 (1 + 13/(12h) + (V+s)/(12 L h))).
  double attn_weight_params() const;   // Q, K, V, O matrices
  double attn_bias_params() const;     // QKV bias + O bias
  double mlp_weight_params() const;    // one dense FFN (width ffn; also one expert when expert_ffn = 0)
  double expert_mlp_params() const;    // one routed or shared expert (width expert_ffn, or ffn)
  double shared_expert_mlp_params() const;  // one shared expert (width shared_expert_ffn, or as a routed one)
  long long moe_layers() const { return moe.enabled() ? layers - moe.first_dense_layers : 0; }
  // KV-cache elements one token keeps per layer: 2 kv_heads head_dim (MHA/GQA/MQA), or the MLA latent
  // kv_lora_rank + qk_rope_head_dim (DeepSeek-V2 Table 1: (d_c + d_h^R) l elements per token).
  double kv_elems_per_token_layer() const;
  double mlp_bias_params() const;
  double norm_params() const;          // the two per-layer norms
  double router_params() const;       // router, plus the Qwen2-MoE shared-expert gate
  double layer_params() const;         // all experts included
  double layer_active_params() const;  // top_k experts
  double embedding_params() const;     // word (+ learned position) embedding
  double lm_head_params() const;       // 0 when tied
  double final_norm_params() const;
  double total_params() const;
};

ModelSpec parse_model(const std::string& text, const std::string& file);
ModelSpec parse_model_map(const YamlMap& y);  // a model mapping (presets and runs files)
// A preset name, a YAML file, or "hf:PATH" (a Hugging Face config.json or the folder holding one;
// model/hf_config.hpp).
ModelSpec load_model(const std::string& spec);

}  // namespace scaleplan::model
