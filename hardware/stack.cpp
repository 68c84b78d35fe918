#include "hardware/stack.hpp"

#include "common/presets.hpp"
#include "common/yaml_reader.hpp"

namespace scaleplan::hw {

namespace {

// A list of names -> a bit mask (bit i = names[i]); every element checked, located at the element.
unsigned name_mask(const YamlMap& caps, const char* key, std::initializer_list<const char*> names) {
  const YAML::Node n = caps.node()[key];
  if (!n || n.IsNull()) caps.fail(key, "is required (list the values the stack offers; [] for none)");
  if (!n.IsSequence()) caps.fail(key, "must be a list");
  unsigned mask = 0;
  std::string allowed;
  for (const char* a : names) allowed += (allowed.empty() ? "" : ", ") + std::string(a);
  for (std::size_t i = 0; i < n.size(); ++i) {
    const YAML::Node e = n[i];
    const std::string v = e.IsScalar() ? e.Scalar() : std::string();
    unsigned bit = 0;
    bool found = false;
    for (const char* a : names) {
      if (v == a) {
        found = true;
        break;
      }
      ++bit;
    }
    if (!found)
      throw ConfigError({caps.file(), e.Mark().line + 1, e.Mark().column + 1}, "capabilities." + std::string(key) + "[" + std::to_string(i) + "]",
                        "must be one of " + allowed + " (got '" + v + "')");
    mask |= 1u << bit;
  }
  return mask;
}

bool required_bool(const YamlMap& caps, const char* key) {
  if (caps.is_null(key)) caps.fail(key, "is required (true or false)");
  return caps.boolean_or(key, false);
}

}  // namespace

void apply_software_block(const YamlMap& s, Software& sw) {
  s.check_keys({"attention", "dp_overlap", "step_overhead_ms", "rank_order", "chunk_cap_ratio", "chunk_warmup_ratio",
                "chunk_host_ratio", "dp_collective_nics", "elementwise", "fsdp_unit", "grad_reduce_dtype",
                "rng_state_bytes", "optimizer_bytes_per_param", "activation_passes_fwd", "activation_passes_bwd",
                "dp_param_gather_overlap", "metric_logit_bytes", "recompute_early_stop", "selective_recompute", "pp_fsdp_unsharded", "fp8_lm_head", "metric_sync_states",
                "optimizer_host_us_per_tensor", "param_tensors_per_layer", "fp8_norm_fused_cast", "fp8_weight_cache",
                "dp_bucket_min_params", "dp_bucket_params_per_dp_rank", "ce_logit_bytes_fwd", "ce_logit_bytes_bwd", "ce_logit_peak_bytes", "dp_chunk_sync", "ddp_grad_passes",
                "embedding_grad_bytes_per_param"});
  sw.pp_inside_dp = s.choice("rank_order", {"tp-cp-dp-pp", "tp-cp-pp-dp"}, sw.pp_inside_dp ? "tp-cp-pp-dp" : "tp-cp-dp-pp") == "tp-cp-pp-dp";
  const std::string attn = s.choice("attention", {"flash", "flash2", "flash_triton", "unfused"},
                                    sw.flash_attention ? (sw.flash_triton ? "flash_triton" : sw.flash2_attention ? "flash2" : "flash") : "unfused");
  sw.flash_attention = attn != "unfused";
  sw.flash_triton = attn == "flash_triton";
  sw.flash2_attention = attn == "flash2" || sw.flash_triton;  // the Triton kernel is timed against FA2's efficiency
  sw.dp_overlap = s.boolean_or("dp_overlap", sw.dp_overlap);
  sw.dp_param_gather_overlap = s.boolean_or("dp_param_gather_overlap", sw.dp_param_gather_overlap);
  sw.step_overhead_s = s.num_or("step_overhead_ms", sw.step_overhead_s * 1e3, Bound::non_negative) * 1e-3;
  sw.chunk_cap_ratio = s.num_or("chunk_cap_ratio", sw.chunk_cap_ratio, Bound::fraction);
  sw.chunk_warmup_ratio = s.num_or("chunk_warmup_ratio", sw.chunk_warmup_ratio, Bound::fraction);
  sw.chunk_host_ratio = s.num_or("chunk_host_ratio", sw.chunk_host_ratio, Bound::fraction);
  sw.eager_elementwise = s.choice("elementwise", {"fused", "eager"}, sw.eager_elementwise ? "eager" : "fused") == "eager";
  sw.rng_state_bytes = s.num_or("rng_state_bytes", sw.rng_state_bytes, Bound::non_negative);
  sw.optimizer_bytes_per_param = s.num_or("optimizer_bytes_per_param", sw.optimizer_bytes_per_param, Bound::non_negative);
  sw.activation_passes_fwd = s.num_or("activation_passes_fwd", sw.activation_passes_fwd, Bound::non_negative);
  sw.activation_passes_bwd = s.num_or("activation_passes_bwd", sw.activation_passes_bwd, Bound::non_negative);
  sw.metric_logit_bytes = s.num_or("metric_logit_bytes", sw.metric_logit_bytes, Bound::non_negative);
  sw.recompute_early_stop = s.boolean_or("recompute_early_stop", sw.recompute_early_stop);
  sw.pp_fsdp_unsharded = s.boolean_or("pp_fsdp_unsharded", sw.pp_fsdp_unsharded);
  sw.fp8_lm_head = s.boolean_or("fp8_lm_head", sw.fp8_lm_head);
  sw.selective_op_sac = s.choice("selective_recompute", {"attention", "op_every_second_mm"},
                                 sw.selective_op_sac ? "op_every_second_mm" : "attention") == "op_every_second_mm";
  sw.metric_sync_states = s.num_or("metric_sync_states", sw.metric_sync_states, Bound::non_negative);
  sw.optimizer_host_s_per_tensor =
      s.num_or("optimizer_host_us_per_tensor", sw.optimizer_host_s_per_tensor * 1e6, Bound::non_negative) * 1e-6;
  sw.param_tensors_per_layer = s.num_or("param_tensors_per_layer", sw.param_tensors_per_layer, Bound::non_negative);
  sw.fp8_norm_fused_cast = s.boolean_or("fp8_norm_fused_cast", sw.fp8_norm_fused_cast);
  sw.fp8_weight_cache = s.boolean_or("fp8_weight_cache", sw.fp8_weight_cache);
  sw.dp_bucket_min_params = s.num_or("dp_bucket_min_params", sw.dp_bucket_min_params, Bound::non_negative);
  sw.dp_bucket_params_per_dp_rank = s.num_or("dp_bucket_params_per_dp_rank", sw.dp_bucket_params_per_dp_rank, Bound::non_negative);
  sw.ce_logit_bytes_fwd = s.num_or("ce_logit_bytes_fwd", sw.ce_logit_bytes_fwd, Bound::non_negative);
  sw.ce_logit_bytes_bwd = s.num_or("ce_logit_bytes_bwd", sw.ce_logit_bytes_bwd, Bound::non_negative);
  sw.ce_logit_peak_bytes = s.num_or("ce_logit_peak_bytes", sw.ce_logit_peak_bytes, Bound::positive);
  sw.dp_chunk_sync = s.boolean_or("dp_chunk_sync", sw.dp_chunk_sync);
  sw.ddp_grad_passes = s.num_or("ddp_grad_passes", sw.ddp_grad_passes, Bound::non_negative);
  sw.embedding_grad_bytes_per_param = s.num_or("embedding_grad_bytes_per_param", sw.embedding_grad_bytes_per_param, Bound::non_negative);
  sw.dp_nics_aggregate = s.choice("dp_collective_nics", {"per_gpu", "node"}, sw.dp_nics_aggregate ? "node" : "per_gpu") == "node";
  sw.fsdp_per_layer = s.choice("fsdp_unit", {"stage", "layer"}, sw.fsdp_per_layer ? "layer" : "stage") == "layer";
  sw.grad_reduce_bytes = s.choice("grad_reduce_dtype", {"param", "fp32"}, sw.grad_reduce_bytes == 4 ? "fp32" : "param") == "fp32" ? 4 : 0;
  if (sw.optimizer_host_s_per_tensor > 0 && sw.param_tensors_per_layer <= 0)
    s.fail("param_tensors_per_layer", "is required (> 0) with optimizer_host_us_per_tensor");
  if (sw.chunk_warmup_ratio > sw.chunk_cap_ratio)
    s.fail("chunk_warmup_ratio", "must be <= chunk_cap_ratio (warm-up cannot give chunks more of the GPU than steady state)");
}

Software parse_stack(const std::string& text, const std::string& file) {
  YamlMap y = YamlMap::parse(text, file);
  y.check_keys({"name", "framework", "version", "date", "capabilities", "efficiency"});
  Software sw;
  sw.stack = y.str("name");
  (void)y.str("framework");  // required descriptive fields (docs/stacks.md)
  (void)y.str("version");
  (void)y.str("date");
  YamlMap c = y.map("capabilities");
  c.check_keys({"tensor_parallel", "sequence_parallel", "pipeline_schedules", "recompute", "context_parallel", "zero_stages",
                "offload", "precisions", "expert_parallel", "tp_comm_overlap"});
  Capabilities& k = sw.caps;
  // Name orders follow the strategies enums (static_asserts in strategies/stack_caps.cpp).
  k.tp_modes = name_mask(c, "tensor_parallel", {"1d", "2d", "2.5d", "3d"});
  k.schedules = name_mask(c, "pipeline_schedules", {"gpipe", "1f1b", "interleaved", "zero_bubble"});
  k.recompute = name_mask(c, "recompute", {"none", "selective", "full"});
  k.cp_algos = name_mask(c, "context_parallel", {"ring", "ulysses", "ring_self_attn", "allgather"});
  k.zero_stages = name_mask(c, "zero_stages", {"0", "1", "2", "3"});
  k.offloads = name_mask(c, "offload", {"none", "optimizer", "params", "nvme", "gemini"});
  k.precisions = name_mask(c, "precisions", {"fp32", "fp16", "bf16", "fp8"});
  k.sequence_parallel = required_bool(c, "sequence_parallel");
  k.expert_parallel = required_bool(c, "expert_parallel");
  k.tp_comm_overlap = required_bool(c, "tp_comm_overlap");
  if (!(k.recompute & 1u)) c.fail("recompute", "must include none (every stack can run without recompute)");
  if (!(k.zero_stages & 1u)) c.fail("zero_stages", "must include 0 (plain data parallelism)");
  if (!(k.offloads & 1u)) c.fail("offload", "must include none");
  if (k.precisions == 0) c.fail("precisions", "must list at least one precision");
  if (k.sequence_parallel && !(k.tp_modes & 1u)) c.fail("sequence_parallel", "needs 1d tensor parallelism");
  y.map("efficiency");  // required: every stack states its efficiency values (with sources)
  apply_software_block(y.map("efficiency"), sw);
  return sw;
}

Software load_stack(const std::string& spec) {
  ConfigText t = load_config_text("stacks", spec);
  return parse_stack(t.text, t.file);
}

std::vector<std::string> stack_names() { return preset_names("stacks"); }

void use_stack(Cluster& c, const std::string& spec) { c.sw = load_stack(spec); }

}  // namespace scaleplan::hw
