#include "validation/serve_runs.hpp"

#include <cmath>

#include "common/errors.hpp"
#include "common/yaml_reader.hpp"
#include "validation/trtllm_bench.hpp"
#include "validation/runs.hpp"

namespace scaleplan::validation {

ServeRunSpec parse_serve_run(const YamlMap& r) {
  r.check_keys({"id", "kind", "source", "source_type", "quote", "model", "cluster", "layout", "precision", "request", "scenario",
                "slo", "result", "notes", "stack"});
  ServeRunSpec s;
  s.id = r.str("id");
  s.source = r.str_or("source", "");
  YamlMap mm = r.map("model");
  mm.check_keys({"preset", "seq"});
  try {
    s.model = model::load_model(mm.str("preset"));
  } catch (const UsageError& e) {
    mm.fail("preset", e.what());
  }
  if (auto seq = mm.opt_integer("seq")) s.model.seq = *seq;
  YamlMap cm = r.map("cluster");
  cm.check_keys({"preset"});
  try {
    s.cluster = hw::load_cluster(cm.str("preset"));
  } catch (const UsageError& e) {
    cm.fail("preset", e.what());
  }
  YamlMap lm = r.map("layout");
  lm.check_keys({"gpus", "tp", "pp", "ep", "batch"});
  const long long gpus = lm.integer("gpus");
  s.layout.tp = static_cast<int>(lm.integer_or("tp", 1));
  s.layout.pp = static_cast<int>(lm.integer_or("pp", 1));
  s.layout.ep = static_cast<int>(lm.integer_or("ep", 1));
  if (gpus % (static_cast<long long>(s.layout.tp) * s.layout.pp) != 0) lm.fail("gpus", "must be a multiple of tp x pp");
  if (s.layout.tp % s.layout.ep != 0) lm.fail("ep", "must divide tp");
  s.layout.dp = static_cast<int>(gpus / (static_cast<long long>(s.layout.tp) * s.layout.pp));
  s.batch = lm.integer_or("batch", 0);
  s.precision = r.str("precision");
  try {
    serve::precision_spec(s.precision, "precision");
  } catch (const UsageError& e) {
    r.fail("precision", e.what());
  }
  if (auto st = r.opt_map("stack")) {  // the engine's options where they differ from serve::StackOptions' defaults
    st->check_keys({"cuda_graph_padding", "engine_limits"});
    s.cuda_graph_padding = st->boolean_or("cuda_graph_padding", true);
    s.engine_limits = st->str_or("engine_limits", "");
    if (!s.engine_limits.empty() && s.engine_limits != "trtllm-bench") st->fail("engine_limits", "unknown value (known: trtllm-bench)");
  }
  YamlMap q = r.map("request");
  q.check_keys({"prompt_tokens", "output_tokens"});
  s.request.prompt_tokens = q.integer("prompt_tokens");
  s.request.output_tokens = q.integer("output_tokens");
  if (s.request.prompt_tokens + s.request.output_tokens > s.model.seq) q.fail("prompt_tokens", "prompt + output exceed the model's seq");
  if (auto slo = r.opt_map("slo")) {
    slo->check_keys({"ttft_ms", "tpot_ms"});
    s.slo.ttft_s = slo->num_or("ttft_ms", 0, Bound::non_negative) * 1e-3;
    s.slo.tpot_s = slo->num_or("tpot_ms", 0, Bound::non_negative) * 1e-3;
  }
  YamlMap res = r.map("result");
  res.check_keys({"output_tokens_per_s", "output_tokens_per_s_per_gpu"});
  if (auto g = res.opt_num("output_tokens_per_s_per_gpu")) {
    s.output_tokens_per_s = *g;
    s.per_gpu = true;
  } else {
    s.output_tokens_per_s = res.num("output_tokens_per_s");
  }
  return s;
}

RunResult predict_serve_run(const ServeRunSpec& r) {
  RunResult out;
  out.id = r.id;
  out.metric = r.per_gpu ? "output_tokens_per_s_per_gpu" : "output_tokens_per_s";
  out.published = r.output_tokens_per_s;
  serve::StackOptions opt;
  if (!r.cuda_graph_padding) opt.graph_batch_count = 0;  // an engine without CUDA-graph padding (e.g. TensorRT-LLM v0.9)
  serve::Layout l = r.layout;
  std::string limits;
  if (r.batch == 0 && r.engine_limits == "trtllm-bench") {
    // The engine limits trtllm-bench set for this row (validation/trtllm_bench.hpp, TensorRT-LLM tuning.py).
    TrtllmBenchInput in;
    in.param_count = r.model.total_params();
    in.precision = r.precision;
    in.attention_layers = r.model.layers;
    in.kv_heads = r.model.kv_heads;
    in.head_size = r.model.head_dim();
    in.tp = l.tp;
    in.pp = l.pp;
    in.device_memory_bytes = r.cluster.device.hbm_bytes;
    in.isl = r.request.prompt_tokens;
    in.osl = r.request.output_tokens;
    in.kv_fraction = opt.kv_fraction;
    const TrtllmBenchSettings b = trtllm_bench_settings(in);
    if (!b.ok) {
      out.supported = false;
      out.refused = b.reason;
      out.note = "serve: " + b.reason;
      return out;
    }
    opt.max_batch = b.max_batch_size;
    opt.max_num_tokens = b.max_num_tokens;
    limits = " (trtllm-bench max_batch_size=" + std::to_string(b.max_batch_size) + " max_num_tokens=" + std::to_string(b.max_num_tokens) + ")";
  }
  const serve::ServeModel sm(r.model, r.cluster, serve::precision_spec(r.precision), r.request, opt);
  // The row's batch when published; else the engine admits as many sequences as its KV pool holds, up to its max
  // batch size (TensorRT-LLM's capacity scheduler) -- one batch, not the best of several.
  l.batch = r.batch > 0 ? r.batch : std::max<long long>(1, std::min(sm.max_batch(l), opt.max_batch));
  const serve::Result res = sm.evaluate(l, r.slo);
  out.feasible = res.feasible();
  out.predicted = res.throughput.tokens_per_s_per_gpu * (r.per_gpu ? 1 : l.gpus());
  out.error_pct = 100.0 * (out.predicted - out.published) / out.published;
  out.note = "serve: tp=" + std::to_string(l.tp) + " pp=" + std::to_string(l.pp) + " ep=" + std::to_string(l.ep) +
             " dp=" + std::to_string(l.dp) + " batch=" + std::to_string(l.batch) + " " + r.precision + limits;
  if (!res.feasible()) out.note += std::string("; infeasible: ") + serve::verdict_name(res.verdict);
  return out;
}

}  // namespace scaleplan::validation
