#include "validation/serve_runs.hpp"

#include <cmath>

#include "common/errors.hpp"
#include "common/yaml_reader.hpp"
#include "simulator/serve/serve_search.hpp"
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
    st->check_keys({"cuda_graph_padding"});
    s.cuda_graph_padding = st->boolean_or("cuda_graph_padding", true);
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
  const serve::ServeModel sm(r.model, r.cluster, serve::precision_spec(r.precision), r.request, opt);
  // The row's layout; its batch when published, else every candidate up to the largest that fits (the
  // benchmark's engine admits as many sequences as its KV pool holds, capped by its max batch size).
  serve::Layout l = r.layout;
  long long cands[64];
  const int n = serve::batch_candidates(std::max<long long>(1, sm.max_batch(l)), sm.options().max_batch, r.batch, cands, 64);
  serve::Result best;
  bool have = false;
  for (int i = 0; i < n; ++i) {
    l.batch = cands[i];
    const serve::Result res = sm.evaluate(l, r.slo);
    if (!have || (res.feasible() && (!best.feasible() || res.throughput.tokens_per_s_per_gpu > best.throughput.tokens_per_s_per_gpu))) {
      best = res;
      have = true;
    }
  }
  out.feasible = best.feasible();
  out.predicted = best.throughput.tokens_per_s_per_gpu * (r.per_gpu ? 1 : l.gpus());
  out.error_pct = 100.0 * (out.predicted - out.published) / out.published;
  out.note = "serve: tp=" + std::to_string(l.tp) + " pp=" + std::to_string(l.pp) + " ep=" + std::to_string(l.ep) +
             " dp=" + std::to_string(l.dp) + " batch=" + std::to_string(best.layout.batch) + " " + r.precision;
  if (!best.feasible()) out.note += std::string("; infeasible: ") + serve::verdict_name(best.verdict);
  return out;
}

}  // namespace scaleplan::validation
