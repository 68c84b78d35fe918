#include "hardware/stack.hpp"

#include <algorithm>
#include <cstdio>

#include "common/presets.hpp"
#include "common/text_match.hpp"
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
  y.check_keys({"name", "framework", "version", "date", "aliases", "alias_from", "capabilities", "efficiency"});
  (void)y.str_list_or("aliases");  // family names a runs file may use (resolve_stack_name); checked here, read there
  if (!y.is_null("alias_from") && alias_month(y.str("alias_from")) <= 0)
    y.fail("alias_from", "must be a month YYYY-MM (the first month whose runs this stack answers its aliases for)");
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
  ConfigText t;
  try {
    t = load_config_text("stacks", spec);
  } catch (const UsageError& e) {
    // A family name ("nemo") answers several dated stacks: name them (a runs file resolves it by the row's date).
    const std::vector<std::string> fam = stacks_answering(spec);
    if (fam.empty()) throw;
    std::string list;
    for (const std::string& f : fam) list += (list.empty() ? "" : ", ") + f;
    throw UsageError("'" + spec + "' is a framework family, not a stack preset: name one of its stacks (" + list +
                     ", newest first; docs/stacks.md)");
  }
  return parse_stack(t.text, t.file);
}

std::vector<std::string> stack_names() { return preset_names("stacks"); }

namespace {

// Lower case without spaces, hyphens, underscores or dots: "Megatron-LM", "megatron_lm" and "MegatronLM" are one family.
std::string family_key(const std::string& s) {
  std::string k = lower(s);
  k.erase(std::remove_if(k.begin(), k.end(), [](char ch) { return ch == ' ' || ch == '-' || ch == '_' || ch == '.'; }), k.end());
  return k;
}

struct AliasEntry {
  std::string preset;
  int from = 0;  // months since year 0
};

// Each stack preset's aliases and alias_from month (its `date` when unset), read once: every runs row without a
// preset stack asks.
struct PresetAliases {
  std::string preset;
  std::vector<std::string> aliases;
  int from = 0;
};
const std::vector<PresetAliases>& preset_aliases() {
  static const std::vector<PresetAliases> all = [] {
    std::vector<PresetAliases> v;
    for (const std::string& name : preset_names("stacks")) {
      const ConfigText t = load_config_text("stacks", name);
      const YamlMap y = YamlMap::parse(t.text, t.file);
      v.push_back({name, y.str_list_or("aliases"), alias_month(y.str_or("alias_from", y.str_or("date", "")))});
    }
    return v;
  }();
  return all;
}

// Every stack preset that lists `family` in its aliases, with its alias_from month.
std::vector<AliasEntry> alias_entries(const std::string& family) {
  std::vector<AliasEntry> out;
  const std::string want = family_key(family);
  for (const PresetAliases& p : preset_aliases())
    if (std::any_of(p.aliases.begin(), p.aliases.end(), [&](const std::string& a) { return family_key(a) == want; }))
      out.push_back({p.preset, p.from});
  std::sort(out.begin(), out.end(), [](const AliasEntry& a, const AliasEntry& b) { return a.from > b.from; });
  return out;
}

std::string month_text(int m) {
  const int mo = m % 12 + 1;
  return std::to_string(m / 12) + (mo < 10 ? "-0" : "-") + std::to_string(mo);
}

// Lower case, spaces and underscores as hyphens: the form aliases are searched for in free text.
std::string text_form(const std::string& s) {
  std::string k = lower(s);
  for (char& ch : k)
    if (ch == ' ' || ch == '_') ch = '-';
  return k;
}

}  // namespace

int alias_month(const std::string& ym) {
  int y = 0, mo = 0;
  if (std::sscanf(ym.c_str(), "%4d-%2d", &y, &mo) != 2 || y < 1900 || mo < 1 || mo > 12) return 0;
  return y * 12 + (mo - 1);
}

std::vector<std::string> stacks_answering(const std::string& family) {
  std::vector<std::string> out;
  for (const AliasEntry& e : alias_entries(family)) out.push_back(e.preset);
  return out;
}

std::vector<InferredStack> family_candidates(const std::string& spec, int month) {
  const std::vector<AliasEntry> all = alias_entries(spec);  // latest alias_from first
  std::vector<InferredStack> out;
  if (all.empty()) return out;
  std::string cands;
  for (const AliasEntry& e : all) cands += (cands.empty() ? "" : ", ") + e.preset;
  const auto add = [&](const AliasEntry& e, const std::string& why, bool by_date = true) {
    out.push_back({e.preset, "stack " + spec + " -> " + e.preset + " (" + why + "; stacks answering '" + spec + "': " + cands + ")", by_date});
  };
  if (month <= 0) {
    for (const AliasEntry& e : all) add(e, out.empty() ? "the row gives no date: the latest" : "the row gives no date");
    return out;
  }
  for (const AliasEntry& e : all)  // answering it by the row's month, latest first
    if (e.from <= month)
      add(e, out.empty() ? "the latest answering it from " + month_text(e.from) + " <= the row's " + month_text(month)
                         : "answering it from " + month_text(e.from) + " <= the row's " + month_text(month));
  for (auto e = all.rbegin(); e != all.rend(); ++e)  // then the later ones, earliest first
    if (e->from > month) add(*e, "the row's " + month_text(month) + " predates it (from " + month_text(e->from) + ")", false);
  return out;
}

std::string resolve_stack_name(const std::string& spec, int month, std::string* note) {
  if (has_preset("stacks", spec) || spec.find('/') != std::string::npos || spec.find(".y") != std::string::npos) return spec;
  const std::vector<InferredStack> c = family_candidates(spec, month);
  if (c.empty()) return spec;
  if (note != nullptr) *note = c.front().note;
  return c.front().stack;
}

void use_stack(Cluster& c, const std::string& spec) { c.sw = load_stack(spec); }

std::vector<InferredStack> stacks_named_in(const std::string& text, int month) {
  const std::string t = text_form(text);
  std::vector<std::string> found;  // aliases named in the text
  for (const PresetAliases& p : preset_aliases())
    for (const std::string& a : p.aliases)
      if (has_word(t, text_form(a)) && std::find(found.begin(), found.end(), a) == found.end()) found.push_back(a);
  std::stable_sort(found.begin(), found.end(), [](const std::string& a, const std::string& b) { return a.size() > b.size(); });
  // Every named family's stacks that ran by the row's date first (most specific name first), then the later ones.
  std::vector<InferredStack> out;
  for (const bool dated : {true, false})
    for (const std::string& a : found)
      for (const InferredStack& c : family_candidates(a, month)) {  // by date even where the alias is also a preset's name (gpt-neox)
        if (c.by_date != dated || std::any_of(out.begin(), out.end(), [&](const InferredStack& x) { return x.stack == c.stack; })) continue;
        out.push_back({c.stack, "stack inferred from the source, which names '" + a + "': " + c.note, c.by_date});
      }
  return out;
}

}  // namespace scaleplan::hw
