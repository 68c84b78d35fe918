#include "model/hf_config.hpp"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <functional>
#include <initializer_list>
#include <nlohmann/json.hpp>
#include <sstream>

#include "common/errors.hpp"

namespace scaleplan::model {
namespace {

using nlohmann::json;

SourceLocation at_offset(const std::string& file, const std::string& text, std::size_t off) {
  int line = 1, col = 1;
  for (std::size_t i = 0; i < off && i < text.size(); ++i) {
    if (text[i] == '\n') {
      ++line;
      col = 1;
    } else {
      ++col;
    }
  }
  return {file, line, col};
}

// Typed, located reads of one config.json object. A key is located by its first quoted occurrence
// in the text (config.json files are flat for the keys read here).
class HfReader {
 public:
  HfReader(const json& j, std::string file, const std::string& text) : j_(j), file_(std::move(file)), text_(text) {}

  SourceLocation loc(const std::string& key) const {
    const std::size_t p = text_.find("\"" + key + "\"");
    return p == std::string::npos ? SourceLocation{file_, 1, 1} : at_offset(file_, text_, p + 1);
  }
  [[noreturn]] void fail(const std::string& key, const std::string& rule) const { throw ConfigError(loc(key), key, rule); }
  bool has(const std::string& key) const { return j_.contains(key) && !j_.at(key).is_null(); }
  // The first of the names present (HF configs spell some keys two ways, e.g. BLOOM n_embed / hidden_size).
  std::string pick(std::initializer_list<const char*> names) const {
    for (const char* n : names)
      if (has(n)) return n;
    std::string all;
    for (const char* n : names) all += std::string(all.empty() ? "" : " or ") + "'" + n + "'";
    throw ConfigError({file_, 1, 1}, *names.begin(), "missing key " + all + " (model_type " + model_type() + ")");
  }
  long long integer(std::initializer_list<const char*> names) const {
    const std::string k = pick(names);
    const json& v = j_.at(k);
    if (!v.is_number_integer() || v.get<long long>() <= 0) fail(k, "must be a positive integer");
    return v.get<long long>();
  }
  long long integer(const char* name) const { return integer({name}); }
  long long integer_or(const char* name, long long dflt) const { return has(name) ? integer({name}) : dflt; }
  // A count that may be 0 (n_shared_experts, first_k_dense_replace).
  long long count_or(const char* name, long long dflt) const {
    if (!has(name)) return dflt;
    const json& v = j_.at(name);
    if (!v.is_number_integer() || v.get<long long>() < 0) fail(name, "must be a non-negative integer");
    return v.get<long long>();
  }
  bool boolean_or(const char* name, bool dflt) const {
    if (!has(name)) return dflt;
    if (!j_.at(name).is_boolean()) fail(name, "must be true or false");
    return j_.at(name).get<bool>();
  }
  std::string str_or(const char* name, const std::string& dflt) const {
    if (!has(name)) return dflt;
    if (!j_.at(name).is_string()) fail(name, "must be a string");
    return j_.at(name).get<std::string>();
  }
  const json& raw(const char* name) const { return j_.at(name); }
  std::string model_type() const { return j_.value("model_type", std::string("?")); }

 private:
  const json& j_;
  std::string file_;
  const std::string& text_;
};

// hidden_act of an ungated MLP (GPT-2 activation_function, GPT-NeoX/OPT/BLOOM hidden_act).
Activation plain_activation(const HfReader& r, const char* key, const std::string& dflt) {
  const std::string a = r.str_or(key, dflt);
  if (a == "relu") return Activation::relu;
  if (a.rfind("gelu", 0) == 0) return Activation::gelu;  // gelu, gelu_new, gelu_fast, gelu_pytorch_tanh
  r.fail(key, "unsupported activation '" + a + "' (relu or gelu*)");
}
// Gated MLP (gate_proj, up_proj, down_proj): silu -> SwiGLU, gelu* -> GeGLU.
Activation gated_activation(const HfReader& r, const char* key, const std::string& dflt) {
  const std::string a = r.str_or(key, dflt);
  if (a == "silu" || a == "swish") return Activation::swiglu;
  if (a.rfind("gelu", 0) == 0) return Activation::geglu;
  r.fail(key, "unsupported gated activation '" + a + "' (silu or gelu*)");
}

// The pre-training context of a RoPE model: rope_scaling.original_max_position_embeddings when the
// context was extended afterwards (Llama 3.1 "llama3", DeepSeek "yarn"), else max_position_embeddings.
long long rope_seq(const HfReader& r) {
  if (r.has("rope_scaling") && r.raw("rope_scaling").is_object()) {
    const json& rs = r.raw("rope_scaling");
    if (rs.contains("original_max_position_embeddings") && rs["original_max_position_embeddings"].is_number_integer())
      return rs["original_max_position_embeddings"].get<long long>();
  }
  return r.integer("max_position_embeddings");
}

// LLaMA-style decoders (modeling_llama.py LlamaDecoderLayer: RMSNorm, RoPE, q/k/v/o, gated MLP).
void llama_like(const HfReader& r, ModelSpec& m) {
  m.layers = r.integer("num_hidden_layers");
  m.hidden = r.integer("hidden_size");
  m.heads = r.integer("num_attention_heads");
  m.kv_heads = r.integer_or("num_key_value_heads", m.heads);
  m.ffn = r.integer("intermediate_size");
  m.vocab = r.integer("vocab_size");
  m.seq = rope_seq(r);
  const long long hd = r.integer_or("head_dim", 0);
  if (hd > 0 && hd * m.heads != m.hidden) m.head_dim_explicit = hd;
  m.activation = gated_activation(r, "hidden_act", "silu");
  m.norm = Norm::rmsnorm;
  m.position = Position::rope;
  m.tied_embeddings = r.boolean_or("tie_word_embeddings", false);  // LlamaConfig default False
  m.bias = r.boolean_or("attention_bias", false) && r.boolean_or("mlp_bias", false);
  m.qkv_bias = !m.bias && r.boolean_or("attention_bias", false);
  m.dropout = false;
}

void llama(const HfReader& r, ModelSpec& m) {
  llama_like(r, m);
  if (r.boolean_or("mlp_bias", false) && !r.boolean_or("attention_bias", false))
    r.fail("mlp_bias", "MLP biases without attention biases are not modelled");
}

// modeling_mixtral.py MixtralSparseMoeBlock: num_local_experts experts of width intermediate_size,
// top num_experts_per_tok, router Linear(hidden, experts, bias=False).
void mixtral(const HfReader& r, ModelSpec& m) {
  llama_like(r, m);
  m.moe.experts = static_cast<int>(r.integer("num_local_experts"));
  m.moe.top_k = static_cast<int>(r.integer("num_experts_per_tok"));
}

// modeling_qwen2.py: LLaMA with q/k/v biases (o_proj without).
void qwen2(const HfReader& r, ModelSpec& m) {
  llama_like(r, m);
  m.qkv_bias = true;
}

// modeling_qwen2_moe.py: routed experts of moe_intermediate_size, one shared expert of
// shared_expert_intermediate_size behind a sigmoid gate; dense layers (width intermediate_size)
// where listed in mlp_only_layers or off the decoder_sparse_step grid.
void qwen2_moe(const HfReader& r, ModelSpec& m) {
  qwen2(r, m);
  m.moe.experts = static_cast<int>(r.integer("num_experts"));
  m.moe.top_k = static_cast<int>(r.integer("num_experts_per_tok"));
  m.moe.expert_ffn = r.integer("moe_intermediate_size");
  m.moe.shared_expert_ffn = r.count_or("shared_expert_intermediate_size", 0);
  m.moe.shared_experts = m.moe.shared_expert_ffn > 0 ? 1 : 0;
  m.moe.shared_expert_gate = m.moe.shared_experts > 0;
  if (r.integer_or("decoder_sparse_step", 1) != 1) r.fail("decoder_sparse_step", "only 1 (every layer sparse) is modelled");
  if (r.has("mlp_only_layers")) {
    const json& v = r.raw("mlp_only_layers");
    if (!v.is_array()) r.fail("mlp_only_layers", "must be a list of layer indices");
    for (std::size_t i = 0; i < v.size(); ++i)  // only a leading run of dense layers is representable
      if (!v[i].is_number_integer() || v[i].get<long long>() != static_cast<long long>(i))
        r.fail("mlp_only_layers", "only leading dense layers [0, 1, ..] are modelled");
    m.moe.first_dense_layers = static_cast<int>(v.size());
  }
}

// modeling_deepseek.py (DeepSeek-V2/V3 remote code; transformers models/deepseek_v3): MLA attention,
// n_routed_experts of moe_intermediate_size + n_shared_experts, first_k_dense_replace dense layers.
void deepseek(const HfReader& r, ModelSpec& m) {
  llama_like(r, m);
  m.mla.q_lora_rank = r.count_or("q_lora_rank", 0);  // null in DeepSeek-V2-Lite: q projected directly
  m.mla.kv_lora_rank = r.integer("kv_lora_rank");
  m.mla.qk_nope_head_dim = r.integer("qk_nope_head_dim");
  m.mla.qk_rope_head_dim = r.integer("qk_rope_head_dim");
  m.mla.v_head_dim = r.integer("v_head_dim");
  m.head_dim_explicit = 0;
  if (r.has("n_routed_experts")) {
    m.moe.experts = static_cast<int>(r.integer("n_routed_experts"));
    m.moe.top_k = static_cast<int>(r.integer("num_experts_per_tok"));
    m.moe.expert_ffn = r.integer("moe_intermediate_size");
    m.moe.shared_experts = static_cast<int>(r.count_or("n_shared_experts", 0));
    m.moe.first_dense_layers = static_cast<int>(r.count_or("first_k_dense_replace", 0));
    if (r.integer_or("moe_layer_freq", 1) != 1) r.fail("moe_layer_freq", "only 1 (every layer after the dense ones) is modelled");
    if (m.moe.first_dense_layers >= m.layers) r.fail("first_k_dense_replace", "must be < num_hidden_layers");
  }
  const std::string qm = r.has("quantization_config") && r.raw("quantization_config").is_object()
                             ? r.raw("quantization_config").value("quant_method", std::string())
                             : std::string();
  if (qm == "fp8") m.weight_bits = 8;  // DeepSeek-V3 ships fp8 e4m3 weights
}

// modeling_gemma2.py: GeGLU (hidden_activation), explicit head_dim, four RMSNorms per layer, tied.
void gemma2(const HfReader& r, ModelSpec& m) {
  llama_like(r, m);
  m.activation = gated_activation(r, r.has("hidden_activation") ? "hidden_activation" : "hidden_act", "gelu_pytorch_tanh");
  const long long hd = r.integer("head_dim");
  m.head_dim_explicit = hd * m.heads != m.hidden ? hd : 0;
  m.layer_norms = 4;  // input, post_attention, pre_feedforward, post_feedforward
  m.tied_embeddings = r.boolean_or("tie_word_embeddings", true);
  m.seq = r.integer("max_position_embeddings");
}

// GPT-style decoders: LayerNorm with bias, biases everywhere, ungated MLP.
void gpt_common(ModelSpec& m) {
  m.norm = Norm::layernorm;
  m.bias = true;
  m.dropout = true;
}

// modeling_gpt2.py: wte + wpe (n_positions), Conv1D c_attn/c_proj/c_fc with biases, tied lm_head.
void gpt2(const HfReader& r, ModelSpec& m) {
  gpt_common(m);
  m.layers = r.integer({"n_layer", "num_hidden_layers"});
  m.hidden = r.integer({"n_embd", "hidden_size"});
  m.heads = r.integer({"n_head", "num_attention_heads"});
  m.kv_heads = m.heads;
  m.ffn = r.integer_or("n_inner", 4 * m.hidden);
  m.vocab = r.integer("vocab_size");
  m.seq = r.integer({"n_positions", "n_ctx"});
  m.activation = plain_activation(r, "activation_function", "gelu_new");
  m.position = Position::learned;
  m.tied_embeddings = r.boolean_or("tie_word_embeddings", true);
}

// modeling_gpt_neox.py: rotary (rotary_pct of head_dim, no parameters), biased QKV/dense/MLP,
// separate embed_in and embed_out (tie_word_embeddings default False).
void gpt_neox(const HfReader& r, ModelSpec& m) {
  gpt_common(m);
  m.layers = r.integer("num_hidden_layers");
  m.hidden = r.integer("hidden_size");
  m.heads = r.integer("num_attention_heads");
  m.kv_heads = m.heads;
  m.ffn = r.integer("intermediate_size");
  m.vocab = r.integer("vocab_size");
  m.seq = r.integer("max_position_embeddings");
  m.activation = plain_activation(r, "hidden_act", "gelu");
  m.position = Position::rope;
  m.tied_embeddings = r.boolean_or("tie_word_embeddings", false);
  m.bias = r.boolean_or("attention_bias", true);
}

// modeling_opt.py: learned positions with an offset of 2 rows (OPTLearnedPositionalEmbedding),
// ReLU fc1/fc2, biases (enable_bias), lm_head tied to embed_tokens.
void opt(const HfReader& r, ModelSpec& m) {
  gpt_common(m);
  m.layers = r.integer("num_hidden_layers");
  m.hidden = r.integer("hidden_size");
  m.heads = r.integer("num_attention_heads");
  m.kv_heads = m.heads;
  m.ffn = r.integer("ffn_dim");
  m.vocab = r.integer("vocab_size");
  m.seq = r.integer("max_position_embeddings");
  m.max_positions = m.seq + 2;
  m.activation = plain_activation(r, "activation_function", "relu");
  m.position = Position::learned;
  m.tied_embeddings = r.boolean_or("tie_word_embeddings", true);
  m.bias = r.boolean_or("enable_bias", true);
  if (r.integer_or("word_embed_proj_dim", m.hidden) != m.hidden)
    r.fail("word_embed_proj_dim", "a projected embedding (OPT-350m) is not modelled; must equal hidden_size");
}

// modeling_bloom.py: ALiBi (no position parameters), word_embeddings_layernorm, biased fused QKV,
// 4h GELU MLP, tied lm_head. Sequence length: 2048, BLOOM's training context (arXiv 2211.05100 sec. 3.4).
void bloom(const HfReader& r, ModelSpec& m) {
  gpt_common(m);
  m.layers = r.integer({"n_layer", "num_hidden_layers"});
  m.hidden = r.integer({"hidden_size", "n_embed"});
  m.heads = r.integer({"n_head", "num_attention_heads"});
  m.kv_heads = m.heads;
  m.ffn = 4 * m.hidden;
  m.vocab = r.integer("vocab_size");
  m.seq = r.integer_or("seq_length", 2048);
  m.activation = Activation::gelu;
  m.position = Position::alibi;
  m.embedding_norm = true;
  m.tied_embeddings = r.boolean_or("tie_word_embeddings", true);
}

using Mapper = std::function<void(const HfReader&, ModelSpec&)>;
const std::vector<std::pair<std::string, Mapper>>& registry() {
  static const std::vector<std::pair<std::string, Mapper>> r = {
      {"bloom", bloom},       {"deepseek_v2", deepseek}, {"deepseek_v3", deepseek}, {"gemma2", gemma2},
      {"gpt2", gpt2},         {"gpt_neox", gpt_neox},    {"llama", llama},          {"mistral", llama},
      {"mixtral", mixtral},   {"opt", opt},              {"qwen2", qwen2},          {"qwen2_moe", qwen2_moe},
  };
  return r;
}

std::string read_text(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw UsageError("cannot read Hugging Face config '" + path + "'");
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

}  // namespace

std::vector<std::string> hf_model_types() {
  std::vector<std::string> v;
  for (const auto& [k, f] : registry()) v.push_back(k);
  std::sort(v.begin(), v.end());
  return v;
}

ModelSpec parse_hf_config(const std::string& text, const std::string& file) {
  json j;
  try {
    j = json::parse(text);
  } catch (const json::parse_error& e) {
    throw ConfigError(at_offset(file, text, e.byte > 0 ? e.byte - 1 : 0), "", std::string("invalid JSON: ") + e.what());
  }
  if (!j.is_object()) throw ConfigError({file, 1, 1}, "", "a config.json must be a JSON object");
  const HfReader r(j, file, text);
  if (!r.has("model_type")) throw ConfigError({file, 1, 1}, "model_type", "missing key 'model_type'");
  const std::string type = r.str_or("model_type", "");
  const auto& reg = registry();
  const auto it = std::find_if(reg.begin(), reg.end(), [&](const auto& e) { return e.first == type; });
  if (it == reg.end()) {
    std::string known;
    for (const auto& k : hf_model_types()) known += (known.empty() ? "" : ", ") + k;
    r.fail("model_type", "unknown model_type '" + type + "' (supported: " + known + ")");
  }
  ModelSpec m;
  // Named after the file (folder/config.json -> folder), or its _name_or_path.
  const std::filesystem::path fp(file);
  std::string base = fp.stem() == "config" ? fp.parent_path().filename().string() : fp.stem().string();
  if (j.contains("_name_or_path") && j["_name_or_path"].is_string()) base = j["_name_or_path"].get<std::string>();
  m.name = base.empty() ? type : base;
  it->second(r, m);
  if (m.heads % m.kv_heads != 0) r.fail("num_key_value_heads", "must divide num_attention_heads");
  if (m.head_dim_explicit == 0 && m.hidden % m.heads != 0)
    r.fail("num_attention_heads", "must divide hidden_size (or give head_dim)");
  if (m.moe.enabled() && m.moe.top_k > m.moe.experts) r.fail("num_experts_per_tok", "must be <= the number of experts");
  return m;
}

ModelSpec load_hf_config(const std::string& path) {
  namespace fs = std::filesystem;
  if (path.empty()) throw UsageError("--model hf: needs a path to a config.json or the folder holding one");
  std::error_code ec;
  const std::string file = fs::is_directory(path, ec) ? (fs::path(path) / "config.json").string() : path;
  return parse_hf_config(read_text(file), file);
}

}  // namespace scaleplan::model
