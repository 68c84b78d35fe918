// `scaleplan export`: one function per framework, each listing the settings it writes as
// (name, value) pairs and rendering them in the framework's own syntax. Flag and key names follow
// the framework versions named in the registry (sources beside each writer and in
// tests/data/export/*, which the tests check every export against).
#include "cli/export.hpp"

#include <fmt/format.h>

#include <nlohmann/json.hpp>
#include <sstream>

#include "common/errors.hpp"

namespace scaleplan::cli {

namespace {

using nlohmann::json;
using strategies::Plan;

// One setting: a flag ("--tensor-model-parallel-size") or a dotted key ("model.micro_batch_size")
// and its value (a JSON scalar; `true` alone for a switch flag).
struct Setting {
  std::string key;
  json value;
};
using Settings = std::vector<Setting>;

long long nodes_of(const ExportInput& in) {
  const long long per_node = std::max(1, in.cluster.gpus_per_node);
  return (static_cast<long long>(in.plan.gpus()) + per_node - 1) / per_node;
}

// Layers of one virtual pipeline stage (Megatron's --num-layers-per-virtual-pipeline-stage,
// torchtitan's pipeline_parallel_layers_per_stage); refused when the split is uneven.
long long layers_per_virtual_stage(const ExportInput& in, const char* flag) {
  const long long chunks = static_cast<long long>(in.plan.pp) * in.plan.vpp;
  if (in.model.layers % chunks != 0)
    throw ExportRefused("pp", fmt::format("{} layers do not split evenly over pp*vpp = {} chunks, which {} needs", in.model.layers, chunks, flag));
  return in.model.layers / chunks;
}

void refuse_tp_grid(const Plan& p, const char* framework) {
  if (p.tp_mode != strategies::TpMode::d1)
    throw ExportRefused("tp_mode", fmt::format("{} has only 1D (Megatron-style) tensor parallelism, not tp_mode={}", framework, strategies::name(p.tp_mode)));
}

std::vector<std::string> keys_of(const Settings& s) {
  std::vector<std::string> k;
  for (const auto& x : s) k.push_back(x.key);
  return k;
}

std::string scalar_text(const json& v) { return v.is_string() ? v.get<std::string>() : v.dump(); }

// A nested object from dotted keys ("model.optim.name" -> {"model": {"optim": {"name": ...}}}).
json nest(const Settings& s) {
  json root = json::object();
  for (const auto& x : s) {
    json* node = &root;
    std::string rest = x.key;
    for (auto dot = rest.find('.'); dot != std::string::npos; dot = rest.find('.')) {
      node = &(*node)[rest.substr(0, dot)];
      rest = rest.substr(dot + 1);
    }
    (*node)[rest] = x.value;
  }
  return root;
}

void yaml_lines(const json& obj, int indent, std::ostringstream& out) {
  for (const auto& [k, v] : obj.items()) {
    out << std::string(indent, ' ') << k << ":";
    if (v.is_object()) {
      out << "\n";
      yaml_lines(v, indent + 2, out);
    } else {
      out << " " << (v.is_null() ? "null" : v.dump()) << "\n";
    }
  }
}

// ---- Megatron-LM (flags of megatron/training/arguments.py at core_v0.12.0) ----
Settings megatron_model_flags(const model::ModelSpec& m) {
  Settings s = {{"--num-layers", m.layers},       {"--hidden-size", m.hidden}, {"--ffn-hidden-size", m.ffn},
                {"--num-attention-heads", m.heads}, {"--seq-length", m.seq},  {"--max-position-embeddings", m.seq}};
  if (m.kv_heads > 0 && m.kv_heads < m.heads) {
    s.push_back({"--group-query-attention", true});
    s.push_back({"--num-query-groups", m.kv_heads});
  }
  if (m.activation == model::Activation::swiglu) s.push_back({"--swiglu", true});
  // arguments.py: '--squared-relu', "Use squared relu activation instead of default gelu".
  if (m.activation == model::Activation::squared_relu) s.push_back({"--squared-relu", true});
  if (m.norm == model::Norm::rmsnorm) s.push_back({"--normalization", "RMSNorm"});
  if (m.position == model::Position::rope) s.push_back({"--position-embedding-type", "rope"});
  if (!m.tied_embeddings) s.push_back({"--untie-embeddings-and-output-weights", true});
  if (!m.bias) s.push_back({"--disable-bias-linear", true});
  if (m.moe.enabled()) {
    s.push_back({"--num-experts", m.moe.experts});
    s.push_back({"--moe-router-topk", m.moe.top_k});
  }
  return s;
}

Settings megatron_parallel_flags(const ExportInput& in) {
  const Plan& p = in.plan;
  refuse_tp_grid(p, "Megatron-LM");
  Settings s = {{"--tensor-model-parallel-size", p.tp}, {"--pipeline-model-parallel-size", p.pp},
                {"--micro-batch-size", p.mbs},          {"--global-batch-size", p.gbs}};
  if (p.schedule == strategies::Schedule::gpipe)
    throw ExportRefused("schedule", "Megatron-LM has no GPipe schedule (its pipeline runs 1F1B, or interleaved 1F1B with vpp > 1)");
  if (p.schedule == strategies::Schedule::zero_bubble)
    throw ExportRefused("schedule", "Megatron-LM core_v0.12.0 has no zero-bubble pipeline schedule");
  if (p.vpp > 1) s.push_back({"--num-layers-per-virtual-pipeline-stage", layers_per_virtual_stage(in, "--num-layers-per-virtual-pipeline-stage")});
  if (p.sp) s.push_back({"--sequence-parallel", true});
  if (p.cp > 1) {
    s.push_back({"--context-parallel-size", p.cp});
    // --cp-comm-type: p2p (ring attention), a2a (Ulysses), allgather (Llama 3's all-gather CP).
    switch (p.cp_algo) {
      case strategies::CpAlgo::ring: s.push_back({"--cp-comm-type", "p2p"}); break;
      case strategies::CpAlgo::ulysses: s.push_back({"--cp-comm-type", "a2a"}); break;
      case strategies::CpAlgo::allgather: s.push_back({"--cp-comm-type", "allgather"}); break;
      case strategies::CpAlgo::ring_self_attn:
        throw ExportRefused("cp_algo", "Megatron-LM has no ring self-attention (Li et al.) context parallelism; its --cp-comm-type is p2p, a2a or allgather");
    }
  }
  if (p.ep > 1) s.push_back({"--expert-model-parallel-size", p.ep});
  // Recompute: --recompute-granularity full|selective (full: every layer, uniform, 1 layer a chunk).
  if (p.recompute == strategies::Recompute::selective) s.push_back({"--recompute-granularity", "selective"});
  if (p.recompute == strategies::Recompute::full) {
    s.push_back({"--recompute-granularity", "full"});
    s.push_back({"--recompute-method", "uniform"});
    s.push_back({"--recompute-num-layers", 1});
  }
  // ZeRO: stage 1 = the distributed optimizer; 2 and 3 = Megatron-FSDP's
  // --data-parallel-sharding-strategy optim_grads / optim_grads_params (with --use-custom-fsdp).
  if (p.zero == 1) s.push_back({"--use-distributed-optimizer", true});
  if (p.zero >= 2) {
    s.push_back({"--use-custom-fsdp", true});
    s.push_back({"--data-parallel-sharding-strategy", p.zero == 2 ? "optim_grads" : "optim_grads_params"});
  }
  if (p.offload == strategies::Offload::optimizer) s.push_back({"--optimizer-cpu-offload", true});
  else if (p.offload != strategies::Offload::none)
    throw ExportRefused("offload", fmt::format("Megatron-LM offloads only the optimizer (--optimizer-cpu-offload), not offload={}", strategies::name(p.offload)));
  switch (p.precision) {
    case strategies::Precision::bf16: s.push_back({"--bf16", true}); break;
    case strategies::Precision::fp16: s.push_back({"--fp16", true}); break;
    case strategies::Precision::fp8:
      s.push_back({"--bf16", true});
      s.push_back({"--fp8-format", "hybrid"});  // Transformer Engine: E4M3 forward, E5M2 gradients
      break;
    case strategies::Precision::fp32: break;
  }
  return s;
}

ExportResult write_megatron(const ExportInput& in) {
  Settings s = megatron_parallel_flags(in);
  for (auto& x : megatron_model_flags(in.model)) s.push_back(std::move(x));
  if (in.cluster.sw.flash_attention) s.push_back({"--attention-backend", "flash"});
  std::ostringstream out;
  out << fmt::format("# scaleplan export: Megatron-LM (core_v0.12.0), {} on {} x {} ({}), plan {}\n", in.model.name, in.plan.gpus(),
                     in.cluster.device.name, in.cluster.name, in.plan.to_string());
  out << fmt::format("torchrun --nnodes {} --nproc-per-node {} pretrain_gpt.py", nodes_of(in), std::min<long long>(in.cluster.gpus_per_node, in.plan.gpus()));
  for (const auto& x : s) {
    out << " \\\n    " << x.key;
    if (!(x.value.is_boolean() && x.value.get<bool>())) out << " " << scalar_text(x.value);
  }
  out << "\n";
  return {"megatron", "Megatron-LM core_v0.12.0", out.str(), keys_of(s)};
}

// ---- NeMo 1.x (examples/nlp/language_modeling/conf/megatron_gpt_config.yaml at 8cfedd7) ----
ExportResult write_nemo(const ExportInput& in) {
  const Plan& p = in.plan;
  const model::ModelSpec& m = in.model;
  refuse_tp_grid(p, "NeMo");
  if (p.schedule == strategies::Schedule::gpipe || p.schedule == strategies::Schedule::zero_bubble)
    throw ExportRefused("schedule", fmt::format("NeMo (Megatron-core) has no {} schedule", strategies::name(p.schedule)));
  if (p.cp > 1 && p.cp_algo != strategies::CpAlgo::ring)
    throw ExportRefused("cp_algo", "NeMo 1.x configs set only context_parallel_size (ring attention), not cp_algo=" + std::string(strategies::name(p.cp_algo)));
  if (p.zero >= 2) throw ExportRefused("zero", "NeMo 1.x shards only optimizer states (distributed_fused_adam, ZeRO-1), not zero=" + std::to_string(p.zero));
  if (p.offload != strategies::Offload::none) throw ExportRefused("offload", "NeMo 1.x GPT configs have no offload setting");
  Settings s = {{"trainer.devices", std::min<long long>(in.cluster.gpus_per_node, p.gpus())},
                {"trainer.num_nodes", nodes_of(in)},
                {"model.micro_batch_size", p.mbs},
                {"model.global_batch_size", p.gbs},
                {"model.tensor_model_parallel_size", p.tp},
                {"model.pipeline_model_parallel_size", p.pp},
                {"model.sequence_parallel", p.sp},
                {"model.encoder_seq_length", m.seq},
                {"model.max_position_embeddings", m.seq},
                {"model.num_layers", m.layers},
                {"model.hidden_size", m.hidden},
                {"model.ffn_hidden_size", m.ffn},
                {"model.num_attention_heads", m.heads}};
  if (p.vpp > 1) s.push_back({"model.virtual_pipeline_model_parallel_size", p.vpp});
  if (p.cp > 1) s.push_back({"model.context_parallel_size", p.cp});
  if (p.ep > 1) s.push_back({"model.expert_model_parallel_size", p.ep});
  if (m.kv_heads > 0 && m.kv_heads < m.heads) s.push_back({"model.num_query_groups", m.kv_heads});
  if (p.recompute != strategies::Recompute::none) {
    const bool full = p.recompute == strategies::Recompute::full;
    s.push_back({"model.activations_checkpoint_granularity", full ? "full" : "selective"});
    if (full) {
      s.push_back({"model.activations_checkpoint_method", "uniform"});
      s.push_back({"model.activations_checkpoint_num_layers", 1});
    }
  }
  if (p.zero == 1) s.push_back({"model.optim.name", "distributed_fused_adam"});
  // trainer.precision: PyTorch Lightning names ("bf16-mixed", "16-mixed", "32").
  const char* precision = p.precision == strategies::Precision::fp16 ? "16-mixed" : p.precision == strategies::Precision::fp32 ? "32" : "bf16-mixed";
  s.push_back({"trainer.precision", precision});
  if (p.precision == strategies::Precision::fp8) {
    s.push_back({"model.fp8", true});
    s.push_back({"model.fp8_hybrid", true});
  }
  std::ostringstream out;
  out << fmt::format("# scaleplan export: NeMo 1.x megatron_gpt_config overrides, {} on {} x {} ({}), plan {}\n", m.name, p.gpus(),
                     in.cluster.device.name, in.cluster.name, p.to_string());
  yaml_lines(nest(s), 0, out);
  return {"nemo", "NeMo megatron_gpt_config.yaml @8cfedd7", out.str(), keys_of(s)};
}

// ---- DeepSpeed (ds_config.json keys at 38327e0) ----
ExportResult write_deepspeed(const ExportInput& in) {
  const Plan& p = in.plan;
  // DeepSpeed's config holds data parallelism and ZeRO only: tensor and pipeline parallelism are
  // set in the model code (Megatron-DeepSpeed's flags, PipelineModule(num_stages=...)).
  const auto refuse_dim = [](const char* key, long long v, const char* why) {
    if (v > 1) throw ExportRefused(key, fmt::format("{}={}: {}; use --format megatron for Megatron-DeepSpeed's flags", key, v, why));
  };
  refuse_dim("tp", p.tp, "a DeepSpeed config has no tensor-parallel degree");
  refuse_dim("pp", p.pp, "DeepSpeed pipelines are built in code (PipelineModule), not in the config");
  refuse_dim("cp", p.cp, "a DeepSpeed config has no context-parallel degree");
  refuse_dim("ep", p.ep, "DeepSpeed-MoE sets expert parallelism in the model code");
  if (p.precision == strategies::Precision::fp8) throw ExportRefused("precision", "a DeepSpeed config has no fp8 training switch");
  if (p.offload == strategies::Offload::gemini) throw ExportRefused("offload", "gemini is Colossal-AI's chunk manager, not DeepSpeed's");
  if (p.offload != strategies::Offload::none && p.zero == 0)
    throw ExportRefused("offload", "DeepSpeed offloads through ZeRO (zero >= 1 for the optimizer, zero=3 for parameters)");
  if ((p.offload == strategies::Offload::params || p.offload == strategies::Offload::nvme) && p.zero != 3)
    throw ExportRefused("offload", "DeepSpeed offloads parameters only at ZeRO stage 3 (zero=3)");
  Settings s = {{"train_batch_size", p.gbs},
                {"train_micro_batch_size_per_gpu", p.mbs},
                {"gradient_accumulation_steps", p.microbatches()},
                {"zero_optimization.stage", p.zero}};
  if (p.offload == strategies::Offload::optimizer) s.push_back({"zero_optimization.offload_optimizer.device", "cpu"});
  if (p.offload == strategies::Offload::params) {
    s.push_back({"zero_optimization.offload_optimizer.device", "cpu"});
    s.push_back({"zero_optimization.offload_param.device", "cpu"});
  }
  if (p.offload == strategies::Offload::nvme) {
    s.push_back({"zero_optimization.offload_optimizer.device", "nvme"});
    s.push_back({"zero_optimization.offload_param.device", "nvme"});
  }
  if (p.precision == strategies::Precision::bf16) s.push_back({"bf16.enabled", true});
  if (p.precision == strategies::Precision::fp16) s.push_back({"fp16.enabled", true});
  // Recompute in DeepSpeed is the model's checkpoint() calls; the config tunes them (full only).
  if (p.recompute == strategies::Recompute::selective)
    throw ExportRefused("recompute", "DeepSpeed's activation checkpointing recomputes whole checkpointed blocks (recompute=full), not selective");
  if (p.recompute == strategies::Recompute::full) s.push_back({"activation_checkpointing.contiguous_memory_optimization", true});
  json j = nest(s);
  std::string text = j.dump(2) + "\n";
  return {"deepspeed", "DeepSpeed @38327e0", text, keys_of(s)};
}

// ---- torchtitan (JobConfig of torchtitan/config/job_config.py at v0.2.0) ----
const char* torchtitan_schedule(const Plan& p) {
  // torch.distributed.pipelining schedule class names, as torchtitan's pipeline_parallel_schedule takes them.
  switch (p.schedule) {
    case strategies::Schedule::gpipe: return "GPipe";
    case strategies::Schedule::one_f_one_b: return "1F1B";
    case strategies::Schedule::interleaved: return "Interleaved1F1B";
    case strategies::Schedule::zero_bubble:
      if (p.vpp > 1) return "InterleavedZeroBubble";
      throw ExportRefused("schedule", "torch.distributed.pipelining has zero-bubble schedules only with several stages per rank (vpp > 1)");
  }
  return "1F1B";
}

ExportResult write_torchtitan(const ExportInput& in) {
  const Plan& p = in.plan;
  refuse_tp_grid(p, "torchtitan");
  // torchtitan's tensor parallelism always shards norms and dropout over the sequence (SequenceParallel).
  if (p.tp > 1 && !p.sp) throw ExportRefused("sp", "torchtitan's tensor parallelism always uses sequence parallelism (sp=on)");
  if (p.zero == 1) throw ExportRefused("zero", "FSDP2 has no optimizer-only sharding (zero=1); zero=2 (reshard_after_forward=never) is the closest");
  if (p.precision == strategies::Precision::fp16) throw ExportRefused("precision", "torchtitan trains in bf16 or fp32 (mixed_precision_param), not fp16");
  if (p.cp > 1 && p.cp_algo != strategies::CpAlgo::ring && p.cp_algo != strategies::CpAlgo::allgather)
    throw ExportRefused("cp_algo", "torchtitan's context parallelism is ring attention (rotate allgather or alltoall), not " + std::string(strategies::name(p.cp_algo)));
  if (p.offload != strategies::Offload::none && !(p.offload == strategies::Offload::params && p.zero == 3))
    throw ExportRefused("offload", "torchtitan offloads only through FSDP2's CPU offload (offload=params with zero=3)");
  Settings s;
  if (p.zero == 0) s.push_back({"parallelism.data_parallel_replicate_degree", p.dp});
  else {
    s.push_back({"parallelism.data_parallel_shard_degree", p.dp});
    s.push_back({"parallelism.fsdp_reshard_after_forward", p.zero == 2 ? "never" : "always"});
  }
  s.push_back({"parallelism.tensor_parallel_degree", p.tp});
  s.push_back({"parallelism.pipeline_parallel_degree", p.pp});
  if (p.pp > 1) {
    s.push_back({"parallelism.pipeline_parallel_schedule", torchtitan_schedule(p)});
    s.push_back({"parallelism.pipeline_parallel_microbatch_size", p.mbs});
    if (p.vpp > 1) s.push_back({"parallelism.pipeline_parallel_layers_per_stage", layers_per_virtual_stage(in, "pipeline_parallel_layers_per_stage")});
  }
  s.push_back({"parallelism.context_parallel_degree", p.cp});
  if (p.cp > 1) s.push_back({"parallelism.context_parallel_rotate_method", "allgather"});
  s.push_back({"parallelism.expert_parallel_degree", p.ep});
  s.push_back({"training.local_batch_size", p.gbs / p.dp});
  s.push_back({"training.global_batch_size", p.gbs});
  s.push_back({"training.seq_len", in.model.seq});
  s.push_back({"training.mixed_precision_param", p.precision == strategies::Precision::fp32 ? "float32" : "bfloat16"});
  if (p.offload == strategies::Offload::params) s.push_back({"training.enable_cpu_offload", true});
  s.push_back({"activation_checkpoint.mode", strategies::name(p.recompute)});
  if (p.precision == strategies::Precision::fp8) s.push_back({"model.converters", json::array({"float8"})});
  std::ostringstream out;
  out << fmt::format("# scaleplan export: torchtitan v0.2.0 job config, {} on {} x {} ({}), plan {}\n", in.model.name, p.gpus(),
                     in.cluster.device.name, in.cluster.name, p.to_string());
  out << "# the model itself is chosen by [model] name / flavor in torchtitan\n";
  const json j = nest(s);
  for (const auto& [section, fields] : j.items()) {
    out << "\n[" << section << "]\n";
    for (const auto& [k, v] : fields.items()) out << k << " = " << v.dump() << "\n";
  }
  return {"torchtitan", "torchtitan v0.2.0", out.str(), keys_of(s)};
}

}  // namespace

const std::vector<Exporter>& exporters() {
  static const std::vector<Exporter> kExporters = {
      {"megatron", "Megatron-LM core_v0.12.0", write_megatron},
      {"nemo", "NeMo megatron_gpt_config.yaml @8cfedd7", write_nemo},
      {"deepspeed", "DeepSpeed @38327e0", write_deepspeed},
      {"torchtitan", "torchtitan v0.2.0", write_torchtitan},
  };
  return kExporters;
}

ExportResult export_plan(const std::string& format, const ExportInput& in) {
  std::string known;
  for (const auto& e : exporters()) {
    if (format == e.format) return e.write(in);
    known += (known.empty() ? "" : ", ") + std::string(e.format);
  }
  throw UsageError("--format: unknown format '" + format + "' (known: " + known + ")");
}

}  // namespace scaleplan::cli
