#include "validation/runs.hpp"

#include <algorithm>
#include <cmath>
#include <cstdlib>

#include "common/errors.hpp"
#include "common/limits.hpp"
#include "common/presets.hpp"
#include "common/yaml_reader.hpp"
#include "simulator/analytic/estimator.hpp"
#include "strategies/layer_cost.hpp"
#include "strategies/pipeline.hpp"

namespace scaleplan::validation {

using strategies::Plan;
using strategies::Recompute;

double sc21_eq3_flops(const model::ModelSpec& m, double B) {
  const double s = m.seq, l = m.layers, h = m.hidden, V = m.vocab;
  return 96.0 * B * s * l * h * h * (1 + s / (6 * h) + V / (16 * l * h));
}
double kor22_eq7_flops(const model::ModelSpec& m, double B) {
  const double s = m.seq, L = m.layers, h = m.hidden, V = m.vocab;
  return 72.0 * B * L * s * h * h * (1 + s / (6 * h) + V / (12 * h * L));
}

namespace {

// The keys a runs file may hold at each level (issue 17: unknown keys are errors naming
// file:line:column, so a typo such as 'microbtach' is not silently a default). `stack` and `group`
// are the wave-2 row keys (DESIGN.md sec. 6); `meta`, `notes`, `derived`, `assumed` are free text.
constexpr std::initializer_list<const char*> kRootKeys = {"meta", "runs", "layer_timings"};
constexpr std::initializer_list<const char*> kRunKeys = {"id", "source", "source_type", "notes", "derived", "assumed", "model",
                                                         "cluster", "hardware", "strategy", "result", "stack", "group"};
constexpr std::initializer_list<const char*> kLayerTimingKeys = {"id", "source", "source_type", "notes", "derived", "assumed",
                                                                 "experiment", "model", "cluster", "hardware", "strategy",
                                                                 "forward_ms", "backward_ms", "combined_ms", "overhead_pct",
                                                                 "stack", "group"};
constexpr std::initializer_list<const char*> kHardwareKeys = {"gpu", "gpus", "gpus_per_node", "inter_node", "intra_node", "system"};
constexpr std::initializer_list<const char*> kStrategyKeys = {"tp", "pp", "cp", "dp", "vpp", "microbatch", "global_batch",
                                                              "recompute", "sequence_parallel", "zero_stage", "cp_algo",
                                                              "precision"};
constexpr std::initializer_list<const char*> kResultKeys = {"iteration_time_s", "tflops_per_gpu", "mfu", "hfu", "percent_of_peak",
                                                            "flops_counting", "tokens_per_s"};

hw::Cluster cluster_of(const YamlMap& run) {
  YamlMap c = run.map("cluster");
  c.check_keys({"preset", "gpus_per_node", "inter_node_gbps_per_gpu"});
  hw::Cluster cl;
  const std::string preset = c.str("preset");
  try {
    cl = hw::load_cluster(preset);
  } catch (const UsageError& e) {
    c.fail("preset", e.what());
  }
  if (auto g = c.opt_int_in("gpus_per_node", 1, limits::kMaxGpus)) cl.gpus_per_node = static_cast<int>(*g);
  if (auto bw = c.opt_num("inter_node_gbps_per_gpu")) cl.net.nic_bw_Bps = *bw * 1e9 / 8;
  return cl;
}

strategies::Precision precision_of(const YamlMap& s, const hw::Cluster& c, Plan& p) {
  const std::string v = s.str_or("precision", "mixed16");
  if (v == "fp32") return strategies::Precision::fp32;
  if (v == "fp16") return strategies::Precision::fp16;
  if (v == "bf16") return strategies::Precision::bf16;
  if (v == "fp8") return strategies::Precision::fp8;
  if (v == "mixed16") return c.device.peak(hw::Dtype::bf16) > 0 ? strategies::Precision::bf16 : strategies::Precision::fp16;
  s.fail("precision", "must be fp16, bf16, fp8, mixed16 or null (got '" + v + "')");
}

Plan plan_of(const YamlMap& s, const hw::Cluster& c, long long gpus, std::vector<std::string>* defaults, bool* vpp_free,
             bool* recompute_free, bool* sp_free) {
  Plan p;
  s.check_keys(kStrategyKeys);
  // Ranges of docs/reliability.md (common/limits.hpp): each degree fits the Plan's int fields, and
  // resolve_plan checks their products.
  using limits::kMaxDegree;
  p.tp = static_cast<int>(s.int_in_or("tp", 1, 1, kMaxDegree));
  p.pp = static_cast<int>(s.int_in_or("pp", 1, 1, kMaxDegree));
  p.cp = static_cast<int>(s.int_in_or("cp", 1, 1, kMaxDegree));
  const long long inner = static_cast<long long>(p.tp) * p.pp * p.cp;  // < 2^63: each < 2^25
  p.dp = static_cast<int>(s.int_in_or("dp", std::min(gpus / inner, kMaxDegree), 1, kMaxDegree));
  if (auto mb = s.opt_int_in("microbatch", 1, kMaxDegree)) p.mbs = static_cast<int>(*mb);
  else if (defaults) defaults->push_back("microbatch=1 (null)");
  p.gbs = s.int_in("global_batch", 1, limits::kMaxGbs);
  if (auto v = s.opt_int_in("vpp", 1, limits::kMaxLayers)) {
    p.vpp = static_cast<int>(*v);
    if (p.vpp > 1) p.schedule = strategies::Schedule::interleaved, p.schedule_set = true;
  } else if (p.pp > 1) {
    *vpp_free = true;
    if (defaults) defaults->push_back("vpp tuned (null)");
  }
  const std::string rc = s.str_or("recompute", "");
  if (rc.empty()) {
    *recompute_free = true;
    if (defaults) defaults->push_back("recompute=least that fits (null)");
  } else {
    p.recompute = rc == "full" ? Recompute::full : rc == "selective" ? Recompute::selective : rc == "none" ? Recompute::none
                                                                                                      : (s.fail("recompute", "must be full|selective|none|null"), Recompute::none);
  }
  if (s.is_null("sequence_parallel")) {
    *sp_free = true;
    p.sp = p.tp > 1;
    if (defaults) defaults->push_back("sp=on (null)");
  } else {
    p.sp = s.boolean_or("sequence_parallel", false);
  }
  if (auto z = s.opt_int_in("zero_stage", 0, 3)) p.zero = static_cast<int>(*z);
  else {
    p.zero = 1;
    if (defaults) defaults->push_back("zero=1 (null)");
  }
  // cp_algo (optional; default ring): how the run's context parallelism exchanged K/V.
  const std::string ca = s.str_or("cp_algo", "ring");
  try {
    p.cp_algo = strategies::parse_plan("cp_algo=" + ca).cp_algo;
  } catch (const PlanError& e) {
    s.fail("cp_algo", e.rule());
  }
  p.precision = precision_of(s, c, p);
  p.precision_set = true;
  p.allow_uneven_layers = true;
  return p;
}

}  // namespace

RunsFile parse_runs(const std::string& text, const std::string& file) {
  YamlMap root = YamlMap::parse(text, file);
  root.check_keys(kRootKeys);
  RunsFile f;
  f.file = file;
  const YAML::Node runs = root.node()["runs"];
  if (!runs || !runs.IsSequence()) root.fail("runs", "must be a list of runs");
  for (std::size_t i = 0; i < runs.size(); ++i) {
    if (!runs[i].IsMap()) throw ConfigError({file, runs[i].Mark().line + 1, runs[i].Mark().column + 1}, "runs[" + std::to_string(i) + "]", "must be a mapping");
    YamlMap r(runs[i], file, "runs[" + std::to_string(i) + "]");
    r.check_keys(kRunKeys);
    RunSpec rs;
    rs.id = r.str("id");
    rs.source = r.str_or("source", "");
    rs.model = model::parse_model_map(r.map("model"));
    rs.cluster = cluster_of(r);
    YamlMap hwm = r.map("hardware");
    hwm.check_keys(kHardwareKeys);
    rs.gpus = hwm.int_in("gpus", 1, limits::kMaxGpus);
    if (auto g = hwm.opt_int_in("gpus_per_node", 1, limits::kMaxGpus)) rs.cluster.gpus_per_node = static_cast<int>(*g);
    YamlMap s = r.map("strategy");
    rs.plan = plan_of(s, rs.cluster, rs.gpus, &rs.defaults, &rs.vpp_free, &rs.recompute_free, &rs.sp_free);
    YamlMap res = r.map("result");
    res.check_keys(kResultKeys);
    rs.iteration_time_s = res.opt_num("iteration_time_s");
    rs.tflops_per_gpu = res.opt_num("tflops_per_gpu");
    rs.mfu_pct = res.opt_num("mfu");
    rs.hfu_pct = res.opt_num("hfu");
    rs.percent_of_peak = res.opt_num("percent_of_peak");
    rs.flops_counting = res.str_or("flops_counting", "null");
    if (!rs.iteration_time_s && !rs.tflops_per_gpu && !rs.mfu_pct && !rs.percent_of_peak)
      res.fail("iteration_time_s", "a run needs one of iteration_time_s, tflops_per_gpu, mfu, percent_of_peak");
    f.runs.push_back(std::move(rs));
  }
  const YAML::Node lt = root.node()["layer_timings"];
  if (lt && !lt.IsNull() && !lt.IsSequence()) root.fail("layer_timings", "must be a list");
  if (lt && lt.IsSequence()) {
    for (std::size_t i = 0; i < lt.size(); ++i) {
      if (!lt[i].IsMap())
        throw ConfigError({file, lt[i].Mark().line + 1, lt[i].Mark().column + 1}, "layer_timings[" + std::to_string(i) + "]", "must be a mapping");
      YamlMap r(lt[i], file, "layer_timings[" + std::to_string(i) + "]");
      r.check_keys(kLayerTimingKeys);
      LayerTimingSpec l;
      l.id = r.str("id");
      l.experiment = r.str_or("experiment", "");
      l.model = model::parse_model_map(r.map("model"));
      l.cluster = r.has("cluster") ? cluster_of(r) : hw::load_cluster("selene-a100");
      const YamlMap lhw = r.map("hardware");
      lhw.check_keys(kHardwareKeys);
      const long long gpus = lhw.int_in("gpus", 1, limits::kMaxGpus);
      bool a = false, b = false, c = false;
      l.plan = plan_of(r.map("strategy"), l.cluster, gpus, nullptr, &a, &b, &c);
      l.forward_ms = r.num("forward_ms");
      l.backward_ms = r.num("backward_ms");
      f.layer_timings.push_back(std::move(l));
    }
  }
  return f;
}

RunsFile load_runs(const std::string& spec) {
  if (spec.empty()) {
    ConfigText t = load_config_text("validation", "published_runs");
    t.file = "validation/published_runs.yaml";
    return parse_runs(t.text, t.file);
  }
  return parse_runs(read_file(spec), spec);
}

namespace {

// Bubble share below which practitioners stop interleaving: more virtual stages cost more
// point-to-point transfers and activation memory (Narayanan et al. SC21 sec. 2.2.2 and 5.4).
constexpr double kVppBubbleTarget = 0.10;

strategies::StepReport best_report(const RunSpec& r, const analytic::Estimator& est) {
  // Fields the source left null (README "Validation defaults"): vpp is the smallest interleaving
  // degree that brings the bubble (p-1)/(v m) under kVppBubbleTarget (else the largest valid one);
  // recompute is the least recompute that fits in memory.
  std::vector<Recompute> rcs = r.recompute_free ? std::vector<Recompute>{Recompute::none, Recompute::selective, Recompute::full}
                                                : std::vector<Recompute>{r.plan.recompute};
  for (Recompute rc : rcs) {
    strategies::StepReport chosen;
    bool have = false;
    const int vmax = r.vpp_free ? static_cast<int>(r.model.layers / r.plan.pp) : 1;
    for (int v = 1; v <= vmax; ++v) {
      Plan p = r.plan;
      p.recompute = rc;
      if (r.vpp_free) {
        p.vpp = v;
        p.schedule = v > 1 ? strategies::Schedule::interleaved : strategies::Schedule::one_f_one_b;
        p.schedule_set = true;
        // Chunks must split the stages evenly, except for models whose layers do not divide into
        // the stages at all (Llama 3 405B: 126 layers on 16 stages), where chunks are uneven too.
        const bool even_stages = r.model.layers % p.pp == 0;
        if (v > 1 && even_stages && r.model.layers % (static_cast<long long>(p.pp) * v) != 0) continue;
      }
      try {
        p = strategies::resolve_plan(p, r.model, r.cluster, r.gpus);
      } catch (const PlanError&) {
        continue;
      }
      chosen = est.evaluate(p);
      have = true;
      if (strategies::bubble_fraction(p.schedule, p.pp, p.vpp, p.microbatches()) <= kVppBubbleTarget) break;
    }
    if (!have) throw PlanError("strategy", "no valid plan for run " + r.id);
    if (chosen.feasible || rc == rcs.back()) return chosen;
  }
  return {};
}

}  // namespace

RunResult predict_run(const RunSpec& r) {
  RunResult out;
  out.id = r.id;
  for (const auto& d : r.defaults) out.note += (out.note.empty() ? "" : "; ") + d;
  if (!r.unsupported.empty()) {
    out.supported = false;
    out.note = "not yet supported: " + r.unsupported;
  }
  analytic::Estimator est(r.model, r.cluster);
  const strategies::StepReport rep = best_report(r, est);
  out.report = rep;
  out.feasible = rep.feasible;
  const double step = rep.time.step_s;
  const double gbs = static_cast<double>(rep.plan.gbs);
  const double gpus = static_cast<double>(r.gpus);
  const double peak = r.cluster.device.peak(strategies::compute_dtype(rep.plan.precision));
  // FLOPs under the row's own convention (compare like with like).
  auto flops = [&]() {
    const std::string& fc = r.flops_counting;
    if (fc.rfind("eq3", 0) == 0) return sc21_eq3_flops(r.model, gbs);
    if (fc.rfind("model eq7", 0) == 0) return kor22_eq7_flops(r.model, gbs);
    if (fc.rfind("hardware", 0) == 0) return rep.hw_flops_per_step;
    return rep.model_flops_per_step;
  };
  if (r.iteration_time_s) {
    out.metric = "iteration_time_s";
    out.published = *r.iteration_time_s;
    out.predicted = step;
  } else if (r.tflops_per_gpu) {
    out.metric = "tflops_per_gpu";
    out.published = *r.tflops_per_gpu;
    out.predicted = flops() / step / gpus / 1e12;
  } else if (r.mfu_pct) {
    out.metric = "mfu_pct";
    out.published = *r.mfu_pct;
    out.predicted = 100.0 * flops() / step / gpus / peak;
  } else {
    out.metric = "percent_of_peak";
    out.published = *r.percent_of_peak;
    out.predicted = 100.0 * flops() / step / gpus / peak;
  }
  out.error_pct = 100.0 * (out.predicted - out.published) / out.published;
  if (!rep.feasible) out.note += (out.note.empty() ? "" : "; ") + std::string("predicted plan exceeds memory: ") + rep.reason;
  return out;
}

LayerTimingResult predict_layer(const LayerTimingSpec& l) {
  LayerTimingResult out;
  out.id = l.id;
  out.experiment = l.experiment;
  const Plan& p = l.plan;
  strategies::LayerShape sh;
  sh.b = p.mbs;
  sh.s = static_cast<double>(l.model.seq) / p.cp;
  sh.s_kv = static_cast<double>(l.model.seq);
  sh.tp = p.tp;
  sh.cp = p.cp;
  sh.sp = p.sp && p.tp > 1;
  sh.flash = l.cluster.sw.flash_attention;
  sh.recompute = p.recompute;
  sh.precision = p.precision;
  const strategies::TpGroups g_tp = strategies::make_tp_groups(l.cluster, strategies::tp_layout(p.tp_mode, p.tp, p.tp_depth));
  const hw::Group g_cp = hw::make_group(l.cluster, p.cp, p.tp);
  const strategies::PhaseCost c = strategies::layer_cost(l.model, l.cluster, sh, g_tp, g_cp);
  out.fwd_published_ms = l.forward_ms;
  out.bwd_published_ms = l.backward_ms;
  out.fwd_predicted_ms = 1e3 * (c.fwd_s + c.fwd_comm_s);
  out.bwd_predicted_ms = 1e3 * (c.bwd_s + c.recompute_s + c.recompute_comm_s + c.bwd_comm_exposed_s);
  out.fwd_error_pct = 100.0 * (out.fwd_predicted_ms - l.forward_ms) / l.forward_ms;
  out.bwd_error_pct = 100.0 * (out.bwd_predicted_ms - l.backward_ms) / l.backward_ms;
  return out;
}

ValidationSummary validate(const RunsFile& f) {
  ValidationSummary s;
  double sum = 0;
  for (const auto& r : f.runs) {
    RunResult rr = predict_run(r);
    if (rr.supported) {
      sum += std::fabs(rr.error_pct);
      s.max_error_pct = std::max(s.max_error_pct, std::fabs(rr.error_pct));
      ++s.counted;
    }
    s.runs.push_back(std::move(rr));
  }
  s.mape_pct = s.counted > 0 ? sum / s.counted : 0;
  for (const auto& l : f.layer_timings) s.layers.push_back(predict_layer(l));
  return s;
}

}  // namespace scaleplan::validation
