// `scaleplan model --model M [--json]`: the resolved model (a preset, a YAML file or hf:config.json),
// every dimension and its parameter counts: params (total) and active_params (per token, MoE top-k).
#include <iomanip>
#include <iostream>
#include <nlohmann/json.hpp>

#include "cli/commands.hpp"

namespace scaleplan::cli {

namespace {

const char* activation_name(model::Activation a) {
  switch (a) {
    case model::Activation::gelu: return "gelu";
    case model::Activation::swiglu: return "swiglu";
    case model::Activation::relu: return "relu";
    case model::Activation::geglu: return "geglu";
    case model::Activation::squared_relu: return "squared_relu";
  }
  return "?";
}
const char* position_name(model::Position p) {
  switch (p) {
    case model::Position::learned: return "learned";
    case model::Position::rope: return "rope";
    case model::Position::alibi: return "alibi";
  }
  return "?";
}

// Per-token active parameters: the dense layers whole, the MoE layers with top_k + shared experts.
double active_params(const model::ModelSpec& m) {
  if (!m.moe.enabled()) return m.total_params();
  const double moe_layers = static_cast<double>(m.moe_layers());
  return m.total_params() - moe_layers * (m.layer_params() - m.layer_active_params());
}

nlohmann::ordered_json describe(const model::ModelSpec& m) {
  nlohmann::ordered_json j = {{"name", m.name},
                      {"layers", m.layers},
                      {"hidden", m.hidden},
                      {"heads", m.heads},
                      {"kv_heads", m.kv_heads},
                      {"head_dim", m.head_dim()},
                      {"ffn", m.ffn},
                      {"vocab", m.vocab},
                      {"seq", m.seq},
                      {"activation", activation_name(m.activation)},
                      {"norm", m.norm == model::Norm::rmsnorm ? "rmsnorm" : "layernorm"},
                      {"norms_per_layer", m.layer_norms},
                      {"position", position_name(m.position)},
                      {"tied_embeddings", m.tied_embeddings},
                      {"bias", m.bias},
                      {"qkv_bias", m.qkv_bias},
                      {"embedding_norm", m.embedding_norm},
                      {"weight_bits", m.weight_bits},
                      {"params", m.total_params()},
                      {"active_params", active_params(m)},
                      {"embedding_params", m.embedding_params()},
                      {"lm_head_params", m.lm_head_params()}};
  if (m.position == model::Position::learned) j["position_rows"] = m.position_rows();
  if (m.moe.enabled())
    j["moe"] = {{"experts", m.moe.experts},
                {"top_k", m.moe.top_k},
                {"expert_ffn", m.moe.expert_ffn > 0 ? m.moe.expert_ffn : m.ffn},
                {"shared_experts", m.moe.shared_experts},
                {"shared_expert_ffn", m.moe.shared_experts > 0 && m.moe.shared_expert_ffn > 0 ? m.moe.shared_expert_ffn
                                      : m.moe.shared_experts > 0 ? (m.moe.expert_ffn > 0 ? m.moe.expert_ffn : m.ffn)
                                                                 : 0},
                {"shared_expert_gate", m.moe.shared_expert_gate},
                {"first_dense_layers", m.moe.first_dense_layers},
                {"moe_layers", m.moe_layers()}};
  if (m.mla.enabled())
    j["mla"] = {{"q_lora_rank", m.mla.q_lora_rank},
                {"kv_lora_rank", m.mla.kv_lora_rank},
                {"qk_nope_head_dim", m.mla.qk_nope_head_dim},
                {"qk_rope_head_dim", m.mla.qk_rope_head_dim},
                {"v_head_dim", m.mla.v_head_dim}};
  return j;
}

void print_text(const nlohmann::ordered_json& j) {
  for (const auto& [k, v] : j.items()) {
    if (v.is_object()) {
      std::cout << k << ":\n";
      for (const auto& [k2, v2] : v.items()) std::cout << "  " << std::left << std::setw(20) << k2 << " " << v2.dump() << "\n";
      continue;
    }
    if (k == "params" || k == "active_params" || k == "embedding_params" || k == "lm_head_params") {
      std::cout << std::left << std::setw(22) << k << " " << std::fixed << std::setprecision(0) << v.get<double>() << "  ("
                << std::setprecision(3) << v.get<double>() / 1e9 << " B)\n";
      continue;
    }
    std::cout << std::left << std::setw(22) << k << " " << (v.is_string() ? v.get<std::string>() : v.dump()) << "\n";
  }
}

}  // namespace

void add_model(CLI::App& app, int& rc) {
  auto* cmd = app.add_subcommand("model", "Print the resolved model: every dimension, params and active_params");
  auto spec = std::make_shared<std::string>();
  auto json = std::make_shared<bool>(false);
  cmd->add_option("--model", *spec, "preset name, YAML file, or hf:PATH (config.json or its folder)")->required();
  cmd->add_flag("--json", *json, "One JSON object on stdout");
  cmd->callback([&rc, spec, json] {
    rc = guarded([&] {
      const nlohmann::ordered_json j = describe(model::load_model(*spec));
      if (*json)
        std::cout << j.dump(2) << "\n";
      else
        print_text(j);
      return 0;
    });
  });
}

}  // namespace scaleplan::cli
