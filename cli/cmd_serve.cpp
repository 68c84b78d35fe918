// scaleplan serve (DESIGN.md sec. 6; issue 20; docs/serve.md): the best serving layout under latency SLOs.
#include <fmt/format.h>

#include <iostream>
#include <nlohmann/json.hpp>

#include "cli/commands.hpp"
#include "cli/report.hpp"
#include "common/errors.hpp"
#include "simulator/serve/serve_search.hpp"

namespace scaleplan::cli {

namespace {

struct ServeArgs {
  std::string model, cluster, batch = "auto", precision;
  int gpus = 0;
  long long prompt = 0, output = 0;
  double ttft_slo_ms = 0, tpot_slo_ms = 0;
  bool json = false;
};

nlohmann::json layout_json(const serve::Layout& l) {
  return {{"tp", l.tp}, {"pp", l.pp}, {"ep", l.ep}, {"dp", l.dp}, {"batch", l.batch}, {"gpus", l.gpus()}};
}

nlohmann::json result_json(const serve::Result& r) {
  const serve::Memory& m = r.memory;
  return {{"plan", layout_json(r.layout)},
          {"memory", {{"weights", m.weights}, {"kv_cache", m.kv_cache}, {"activations", m.activations}, {"buffers", m.buffers},
                      {"total", m.total()}, {"capacity", m.capacity}}},
          {"latency", {{"ttft_s", r.latency.ttft_s}, {"tpot_s", r.latency.tpot_s}, {"e2e_s", r.latency.e2e_s},
                       {"prefill_s", r.latency.prefill_s}, {"decode_step_s", r.latency.decode_step_s}}},
          {"throughput", {{"tokens_per_s_per_gpu", r.throughput.tokens_per_s_per_gpu},
                          {"usd_per_m_tokens", r.throughput.usd_per_m_tokens},
                          {"requests_per_s", r.throughput.requests_per_s}}},
          {"max_batch_fit", r.max_batch_fit}};
}

std::string layout_text(const serve::Layout& l) {
  return fmt::format("tp={} pp={}{} dp={} batch={}", l.tp, l.pp, l.ep > 1 ? fmt::format(" ep={}", l.ep) : "", l.dp, l.batch);
}

// Bad input names its flag (exit 2).
void check_inputs(const ServeArgs& a, const model::ModelSpec& m) {
  if (a.prompt > m.seq) throw UsageError(fmt::format("--prompt-tokens {} is longer than {}'s context ({} tokens)", a.prompt, m.name, m.seq));
  if (a.prompt + a.output > m.seq)
    throw UsageError(fmt::format("--output-tokens {}: prompt + output = {} exceeds {}'s context ({} tokens)", a.output, a.prompt + a.output,
                                 m.name, m.seq));
}

long long parse_batch(const std::string& s) {
  if (s == "auto") return 0;
  try {
    std::size_t used = 0;
    const long long b = std::stoll(s, &used);
    if (used == s.size() && b > 0) return b;
  } catch (const std::exception&) {
  }
  throw UsageError("--batch must be a positive integer or 'auto' (got '" + s + "')");
}

std::string text_report(const ServeArgs& a, const serve::ServeModel& sm, const serve::SearchResult& s) {
  const auto& c = sm.cluster();
  std::string out = fmt::format("{} on {} x {} ({}), {}: prompt {} + output {} tokens", sm.model().name, a.gpus, c.device.name, c.name,
                                sm.precision().name, a.prompt, a.output);
  if (a.ttft_slo_ms > 0) out += fmt::format("; SLO TTFT <= {} ms", a.ttft_slo_ms);
  if (a.tpot_slo_ms > 0) out += fmt::format("; SLO TPOT <= {} ms", a.tpot_slo_ms);
  out += fmt::format("\n{} layouts x batches costed\n\n", s.evaluated);
  const serve::Result& r = s.best;
  out += s.found ? "best layout (output tokens/s per GPU):\n" : fmt::format("INFEASIBLE: {}\nnearest miss:\n", s.reason);
  out += fmt::format("  plan        {}  ({} GPUs per replica)\n", layout_text(r.layout), r.layout.tp * r.layout.pp);
  const serve::Memory& m = r.memory;
  out += fmt::format("  memory/GPU  weights {}  kv_cache {}  activations {}  buffers {}  total {} of {}\n", fmt_bytes(m.weights),
                     fmt_bytes(m.kv_cache), fmt_bytes(m.activations), fmt_bytes(m.buffers), fmt_bytes(m.total()), fmt_bytes(m.capacity));
  out += fmt::format("  latency     TTFT {}  TPOT {}  e2e {}\n", fmt_time(r.latency.ttft_s), fmt_time(r.latency.tpot_s), fmt_time(r.latency.e2e_s));
  // A cluster without a price (price_usd_per_gpu_hour unset) has no cost per token, not a zero one.
  const bool priced = c.price_usd_per_gpu_hour > 0;
  const std::string usd = priced ? fmt::format("{:.3f} USD per M output tokens", r.throughput.usd_per_m_tokens)
                                 : std::string("cost unknown (the cluster sets no price_usd_per_gpu_hour)");
  out += fmt::format("  throughput  {:.1f} output tokens/s per GPU, {}, {:.2f} requests/s\n", r.throughput.tokens_per_s_per_gpu, usd,
                     r.throughput.requests_per_s);
  if (!s.front.empty()) {
    out += fmt::format("\nPareto front (TPOT vs output tokens/s per GPU):\n  {:<30} {:>10} {:>10} {:>10} {:>12} {:>10}\n", "plan", "TTFT",
                       "TPOT", "e2e", "tok/s/GPU", "USD/M tok");
    for (const auto& f : s.front)
      out += fmt::format("  {:<30} {:>10} {:>10} {:>10} {:>12.1f} {:>10}\n", layout_text(f.layout), fmt_time(f.latency.ttft_s),
                         fmt_time(f.latency.tpot_s), fmt_time(f.latency.e2e_s), f.throughput.tokens_per_s_per_gpu,
                         priced ? fmt::format("{:.3f}", f.throughput.usd_per_m_tokens) : std::string("-"));
  }
  return out;
}

int run_serve(const ServeArgs& a) {
  const model::ModelSpec m = model::load_model(a.model);
  const hw::Cluster c = hw::load_cluster(a.cluster);
  check_inputs(a, m);
  const serve::PrecisionSpec& prec = serve::precision_spec(a.precision.empty() ? serve::default_precision(m) : a.precision);
  if (c.device.peak(prec.compute) <= 0)
    throw UsageError(fmt::format("--precision {}: {} has no {} tensor cores", prec.name, c.device.name, hw::dtype_name(prec.compute)));
  serve::SearchSpec spec;
  spec.gpus = a.gpus;
  spec.batch = parse_batch(a.batch);
  spec.slo.ttft_s = a.ttft_slo_ms * 1e-3;
  spec.slo.tpot_s = a.tpot_slo_ms * 1e-3;
  const serve::ServeModel sm(m, c, prec, {a.prompt, a.output});
  const serve::SearchResult s = serve::search(sm, spec);
  if (spec.batch > 0 && s.largest_fit < spec.batch)
    throw UsageError(fmt::format("--batch {} does not fit: the KV cache of the largest layout holds {} sequences of {} tokens per replica",
                                 spec.batch, s.largest_fit, a.prompt + a.output));
  if (a.json) {
    nlohmann::json j = result_json(s.best);
    j["feasible"] = s.found;
    j["reason"] = s.reason;
    j["model"] = m.name;
    j["cluster"] = c.name;
    j["precision"] = prec.name;
    j["request"] = {{"prompt_tokens", a.prompt}, {"output_tokens", a.output}};
    j["evaluated"] = s.evaluated;
    j["pareto"] = nlohmann::json::array();
    for (const auto& f : s.front) j["pareto"].push_back(result_json(f));
    std::cout << j.dump(2) << "\n";
  } else {
    std::cout << text_report(a, sm, s);
  }
  return s.found ? 0 : 1;
}

}  // namespace

void add_serve(CLI::App& app, int& rc) {
  auto a = std::make_shared<ServeArgs>();
  CLI::App* sub = app.add_subcommand("serve", "best inference layout: memory, TTFT/TPOT, tokens/s per GPU, cost (docs/serve.md)");
  sub->add_option("--model", a->model, "model preset or YAML file")->required();
  sub->add_option("--cluster", a->cluster, "cluster preset or YAML file")->required();
  sub->add_option("--gpus", a->gpus, "GPUs to serve on (all are used: dp replicas of tp x pp)")->required()->check(CLI::PositiveNumber);
  sub->add_option("--prompt-tokens", a->prompt, "input tokens per request")->required()->check(CLI::PositiveNumber);
  sub->add_option("--output-tokens", a->output, "generated tokens per request")->required()->check(CLI::PositiveNumber);
  sub->add_option("--batch", a->batch, "sequences in flight per replica, or auto (default)");
  sub->add_option("--ttft-slo-ms", a->ttft_slo_ms, "time-to-first-token limit, ms")->check(CLI::PositiveNumber);
  sub->add_option("--tpot-slo-ms", a->tpot_slo_ms, "time-per-output-token limit, ms")->check(CLI::PositiveNumber);
  sub->add_option("--precision", a->precision, "bf16 | fp8 | int8 | int4 (default: the checkpoint's, bf16 for 16-bit models)");
  sub->add_flag("--json", a->json, "print the JSON report only");
  sub->callback([a, &rc] { rc = guarded([&] { return run_serve(*a); }); });
}

}  // namespace scaleplan::cli
