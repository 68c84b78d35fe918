#include "validation/runs.hpp"

#include <algorithm>
#include <cmath>
#include <cstdlib>

#include "common/errors.hpp"
#include "common/limits.hpp"
#include "common/presets.hpp"
#include "common/yaml_reader.hpp"
#include "hardware/stack.hpp"
#include "simulator/analytic/estimator.hpp"
#include "simulator/search/search.hpp"
#include "strategies/layer_cost.hpp"
#include "strategies/pipeline.hpp"
#include "strategies/stack_caps.hpp"

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
// Informational per-row keys the parser reads no number from: notes, derived, assumed, quote (the
// verbatim result line), role (fitting / held-out, docs/evidence.md), pending_reason, date.
constexpr std::initializer_list<const char*> kRunKeys = {"id", "source", "source_type", "notes", "derived", "assumed", "model",
                                                         "cluster", "hardware", "strategy", "result", "stack", "group",
                                                         "quote", "role", "pending_reason", "date"};
constexpr std::initializer_list<const char*> kLayerTimingKeys = {"id", "source", "source_type", "notes", "derived", "assumed",
                                                                 "experiment", "model", "cluster", "hardware", "strategy",
                                                                 "forward_ms", "backward_ms", "combined_ms", "overhead_pct",
                                                                 "stack", "group"};
constexpr std::initializer_list<const char*> kHardwareKeys = {"gpu", "gpus", "gpus_per_node", "inter_node", "intra_node", "system"};
constexpr std::initializer_list<const char*> kStrategyKeys = {"tp", "pp", "cp", "dp", "vpp", "microbatch", "global_batch",
                                                              "recompute", "sequence_parallel", "zero_stage", "cp_algo",
                                                              "precision", "ep", "optimizer"};
constexpr std::initializer_list<const char*> kResultKeys = {"iteration_time_s", "tflops_per_gpu", "mfu", "hfu", "percent_of_peak",
                                                            "flops_counting", "tokens_per_s"};

// The row's stack name: a preset, a file, or a framework's family name ("nemo", "Megatron-LM") resolved by
// the row's date (hw::resolve_stack_name), the resolution recorded in `assumed`.
std::string row_stack(const YamlMap& run, std::vector<std::string>* assumed) {
  std::string note;
  const std::string s =
      hw::resolve_stack_name(run.str("stack"), row_month(run.str_or("date", ""), run.str_or("source", "")), &note);
  if (!note.empty() && assumed != nullptr) assumed->push_back(note);
  return s;
}

// The cluster preset that stands for a device's system when a row names none it has: an NVIDIA reference
// system (dgx-*) first, then a SuperPOD, then the first preset holding the device; "" when none holds it.
std::string cluster_for_device(const std::string& device) {
  if (device.empty()) return "";
  std::string best;
  int best_rank = 3;
  for (const std::string& name : preset_names("clusters")) {
    const hw::Cluster c = hw::load_cluster(name);
    if (c.device.name != device) continue;
    const int rank = name.rfind("dgx-", 0) == 0 ? 0 : name.rfind("superpod-", 0) == 0 ? 1 : 2;
    if (rank < best_rank) best = name, best_rank = rank;
  }
  return best;
}

hw::Cluster cluster_of(const YamlMap& run, std::vector<std::string>* assumed = nullptr) {
  const std::optional<YamlMap> cm = run.opt_map("cluster");
  if (cm) cm->check_keys({"preset", "device", "gpus_per_node", "inter_node_gbps_per_gpu"});
  hw::Cluster cl;
  const std::string preset = cm ? cm->str_or("preset", "") : "";
  try {
    if (preset.empty()) throw UsageError("no cluster preset");
    cl = hw::load_cluster(preset);
  } catch (const UsageError& e) {
    // No preset, or one scaleplan does not have: the reference system of the GPU hardware.gpu names, said in `assumed`.
    const std::string gpu = run.has("hardware") ? run.map("hardware").str_or("gpu", "") : "";
    const std::string fallback = assumed != nullptr ? cluster_for_device(hw::device_named_in(gpu)) : "";
    if (fallback.empty()) {
      if (cm) cm->fail("preset", e.what());
      run.fail("cluster", "is required: name a cluster preset (configs/clusters), or a hardware.gpu that names a device preset");
    }
    cl = hw::load_cluster(fallback);
    assumed->push_back("cluster " + fallback + " (" + (preset.empty() ? std::string("no cluster preset") : "unknown cluster preset '" + preset + "'") +
                       "; the reference system of hardware.gpu '" + gpu + "')");
  }
  static const YamlMap none = YamlMap::parse("{}", "<none>");
  const YamlMap& c = cm ? *cm : none;
  // The row's GPU where it differs from the preset's (a device preset or file; configs/devices).
  if (!c.is_null("device")) {
    try {
      cl.device = hw::load_device(c.str("device"));
    } catch (const UsageError& e) {
      c.fail("device", e.what());
    }
  } else if (assumed != nullptr && run.has("hardware")) {
    // No cluster.device: the GPU the row's hardware.gpu names, where it is another preset than the cluster's
    // ("H100 96GB HBM2e" on a cluster preset of 80 GB H100s), said in `assumed`.
    const std::string gpu = run.map("hardware").str_or("gpu", "");
    const std::string dev = hw::device_named_in(gpu);
    if (!dev.empty() && dev != cl.device.name) {
      const std::string held = cl.device.name;
      cl.device = hw::load_device(dev);
      assumed->push_back("device " + dev + " from hardware.gpu '" + gpu + "' (cluster preset " + preset + " holds " + held + ")");
    }
  }
  if (auto g = c.opt_int_in("gpus_per_node", 1, limits::kMaxGpus)) cl.gpus_per_node = static_cast<int>(*g);
  if (auto bw = c.opt_num("inter_node_gbps_per_gpu")) cl.net.nic_bw_Bps = *bw * 1e9 / 8;
  // The row's software stack (configs/stacks) replaces the preset's default stack.
  if (!run.is_null("stack")) {
    // A framework family in a runs row is resolved with the row's strategy (infer_row_stack); here only a
    // preset or file, or (for layer timings, no strategy) the family's first stack by date.
    const std::string name = run.str("stack");
    const bool family = !has_preset("stacks", name) && !hw::stacks_answering(name).empty();
    if (!family || assumed == nullptr) {
      try {
        hw::use_stack(cl, row_stack(run, assumed));
      } catch (const UsageError& e) {
        run.fail("stack", e.what());
      }
    }
  }
  return cl;
}

// The row's strategy as published (nulls kept as nullopt; values checked here, with location).
RowStrategy read_strategy(const std::optional<YamlMap>& sm) {
  RowStrategy st;
  if (!sm) return st;
  const YamlMap& s = *sm;
  s.check_keys(kStrategyKeys);
  // Ranges of docs/reliability.md (common/limits.hpp): each degree fits the Plan's int fields, and
  // resolve_plan checks their products.
  auto deg = [&](const char* k) -> std::optional<long long> { return s.opt_int_in(k, 1, limits::kMaxDegree); };
  st.tp = deg("tp"), st.pp = deg("pp"), st.dp = deg("dp"), st.cp = deg("cp");
  st.present = st.tp || st.pp || st.dp || st.cp;
  st.vpp = deg("vpp"), st.mbs = deg("microbatch");
  st.ep = deg("ep");  // expert parallelism (MoE rows; ep divides dp, checked by resolve_plan)
  st.gbs = s.opt_int_in("global_batch", 1, limits::kMaxGbs);
  if (st.present && !st.gbs) s.fail("global_batch", "is required to predict the run");
  st.zero = s.opt_int_in("zero_stage", 0, 3);
  if (!s.is_null("recompute")) {
    const std::string rc = s.choice("recompute", {"full", "selective", "none"});
    st.recompute = rc == "full" ? Recompute::full : rc == "selective" ? Recompute::selective : Recompute::none;
  }
  if (!s.is_null("sequence_parallel")) st.sp = s.boolean_or("sequence_parallel", false);
  if (!s.is_null("precision")) st.precision = s.choice("precision", {"fp32", "fp16", "bf16", "fp8", "mixed16"});
  if (!s.is_null("optimizer")) {
    st.optimizer = s.str("optimizer");
    if (!strategies::recipe_named(*st.optimizer))
      s.fail("optimizer", "unknown model-state layout (zero-paper, megatron, deepspeed, apex-distributed-adam, apex-distributed-adam-bf16-grads, apex-distributed-adam-bf16)");
  }
  // cp_algo (optional; default ring): how the run's context parallelism exchanged K/V.
  const std::string ca = s.str_or("cp_algo", "ring");
  try {
    st.cp_algo = strategies::parse_plan("cp_algo=" + ca).cp_algo;
  } catch (const PlanError& e) {
    s.fail("cp_algo", e.rule());
  }
  return st;
}

// The row's source group (validate --cv group): `group:`, else the id up to its first '-'.
std::string group_of(const YamlMap& r, const std::string& id) {
  const std::string g = r.str_or("group", "");
  return g.empty() ? id.substr(0, id.find('-')) : g;
}

// Whether a stack can run what the row publishes (degrees > 1, ZeRO stage, recompute, precision): a stack
// that cannot is not the run's stack, whatever its source names.
bool stack_runs(const hw::Capabilities& k, const RowStrategy& st) {
  const auto has = [](unsigned mask, int bit) { return (mask >> bit) & 1u; };
  if (st.tp && *st.tp > 1 && k.tp_modes == 0) return false;
  if (st.pp && *st.pp > 1 && k.schedules == 0) return false;
  if (st.cp && *st.cp > 1 && k.cp_algos == 0) return false;
  if (st.ep && *st.ep > 1 && !k.expert_parallel) return false;
  if (st.zero && !has(k.zero_stages, static_cast<int>(*st.zero))) return false;
  if (st.recompute && !has(k.recompute, static_cast<int>(*st.recompute))) return false;
  if (st.sp && *st.sp && !k.sequence_parallel) return false;
  if (st.precision && *st.precision == "fp8" && !has(k.precisions, static_cast<int>(strategies::Precision::fp8))) return false;
  return true;
}

// A row that names a framework family, or no stack, takes a stack that can run its published strategy:
// the family's presets by the row's date (hw::family_candidates), or those its source names (hw::stacks_named_in)
// (issue 15.3: never guessed silently: the choice is in `assumed`).
void infer_row_stack(const YamlMap& r, RunSpec& rs) {
  const int month = row_month(r.str_or("date", ""), rs.source);
  std::vector<hw::InferredStack> cands;
  bool family = false;
  if (!r.is_null("stack")) {
    const std::string name = r.str("stack");
    if (has_preset("stacks", name)) return;  // a preset or file: applied in cluster_of
    cands = hw::family_candidates(name, month);
    family = true;
  } else {
    cands = hw::stacks_named_in(rs.source, month);
  }
  for (std::size_t i = 0; i < cands.size(); ++i) {
    const hw::Software sw = hw::load_stack(cands[i].stack);
    if (!stack_runs(sw.caps, rs.given)) continue;
    hw::use_stack(rs.cluster, cands[i].stack);
    rs.assumed.push_back(cands[i].note + (i > 0 ? "; the stacks before it cannot run the published strategy" : ""));
    return;
  }
  if (family && !cands.empty()) {  // none runs it: the first by date, and the row says so
    hw::use_stack(rs.cluster, cands.front().stack);
    rs.assumed.push_back(cands.front().note + "; none of them runs the published strategy");
  }
}

RunSpec parse_run(const YamlMap& r) {
  r.check_keys(kRunKeys);
  RunSpec rs;
  rs.id = r.str("id");
  rs.group = group_of(r, rs.id);
  rs.source = r.str_or("source", "");
  rs.model = parse_row_model(r.map("model"), rs.assumed);
  rs.cluster = cluster_of(r, &rs.assumed);
  YamlMap hwm = r.map("hardware");
  hwm.check_keys(kHardwareKeys);
  rs.gpus = hwm.int_in("gpus", 1, limits::kMaxGpus);
  if (auto g = hwm.opt_int_in("gpus_per_node", 1, limits::kMaxGpus)) rs.cluster.gpus_per_node = static_cast<int>(*g);
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
  rs.given = read_strategy(r.opt_map("strategy"));
  infer_row_stack(r, rs);
  rs.caps = stack_caps_from_row(row_month(r.str_or("date", ""), rs.source), rs.cluster.sw);
  InferredPlan ip = infer_plan(rs.given, rs.flops_counting, rs.caps, rs.cluster, rs.gpus);
  if (ip.search && ip.plan.gbs <= 0) r.fail("strategy", "no strategy and no global_batch: nothing to search for");
  rs.plan = ip.plan;
  rs.vpp_free = ip.vpp_free;
  rs.recompute_options = std::move(ip.recompute_options);
  rs.search = ip.search;
  rs.assumed.insert(rs.assumed.end(), ip.assumed.begin(), ip.assumed.end());
  if (rs.given.present && !rs.given.ep && rs.model.moe.enabled()) rs.assumed.push_back("ep=1 (null: experts not split)");
  return rs;
}

// A row that cannot be read is refused with the reason (file:line:col and the rule); the rest of
// the file is still validated.
RunSpec refused_run(const YAML::Node& n, std::size_t i, const std::string& reason) {
  RunSpec rs;
  rs.id = "runs[" + std::to_string(i) + "]";
  if (n.IsMap() && n["id"] && n["id"].IsScalar()) rs.id = n["id"].Scalar();
  rs.group = rs.id.substr(0, rs.id.find('-'));
  if (n.IsMap() && n["group"] && n["group"].IsScalar()) rs.group = n["group"].Scalar();
  rs.refused = reason;
  return rs;
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
    try {
      if (!runs[i].IsMap())
        throw ConfigError({file, runs[i].Mark().line + 1, runs[i].Mark().column + 1}, "runs[" + std::to_string(i) + "]", "must be a mapping");
      YamlMap r(runs[i], file, "runs[" + std::to_string(i) + "]");
      if (r.str_or("kind", "train") == "serve") {  // serving rows: validation/serve_runs.cpp
        f.serve_runs.push_back(parse_serve_run(r));
        continue;
      }
      f.runs.push_back(parse_run(r));
    } catch (const std::runtime_error& e) {  // ConfigError, UsageError, PlanError
      f.runs.push_back(refused_run(runs[i], i, e.what()));
    }
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
      l.group = group_of(r, l.id);
      l.experiment = r.str_or("experiment", "");
      l.model = model::parse_model_map(r.map("model"));
      l.cluster = r.has("cluster") ? cluster_of(r) : hw::load_cluster("selene-a100");
      if (!r.has("cluster") && !r.is_null("stack")) {
        try {
          hw::use_stack(l.cluster, row_stack(r, nullptr));
        } catch (const UsageError& e) {
          r.fail("stack", e.what());
        }
      }
      const YamlMap lhw = r.map("hardware");
      lhw.check_keys(kHardwareKeys);
      const long long gpus = lhw.int_in("gpus", 1, limits::kMaxGpus);
      const StackCaps caps = stack_caps_from_row(row_month(r.str_or("date", ""), r.str_or("source", "")), l.cluster.sw);
      l.plan = infer_plan(read_strategy(r.map("strategy")), "null", caps, l.cluster, gpus).plan;
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

RunsFile load_runs(const std::vector<std::string>& specs) {
  if (specs.empty()) return load_runs(std::string());
  RunsFile all;
  for (const auto& spec : specs) {
    RunsFile f = load_runs(spec);
    all.file += (all.file.empty() ? "" : " + ") + f.file;
    all.runs.insert(all.runs.end(), f.runs.begin(), f.runs.end());
    all.layer_timings.insert(all.layer_timings.end(), f.layer_timings.begin(), f.layer_timings.end());
    all.serve_runs.insert(all.serve_runs.end(), f.serve_runs.begin(), f.serve_runs.end());
  }
  return all;
}

void use_stack(RunsFile& f, const std::string& stack) {
  const hw::Software sw = hw::load_stack(stack);
  for (auto& r : f.runs) r.cluster.sw = sw;
  for (auto& l : f.layer_timings) l.cluster.sw = sw;
}

namespace {

// Bubble share below which practitioners stop interleaving: more virtual stages cost more
// point-to-point transfers and activation memory (Narayanan et al. SC21 sec. 2.2.2 and 5.4).
constexpr double kVppBubbleTarget = 0.10;

strategies::StepReport best_report(const RunSpec& r, const analytic::Estimator& est) {
  // Fields the source left null (README "Validation defaults"): vpp is the smallest interleaving
  // degree that brings the bubble (p-1)/(v m) under kVppBubbleTarget (else the largest valid one);
  // recompute is the least recompute that fits in memory.
  std::vector<Recompute> rcs = r.recompute_options.empty() ? std::vector<Recompute>{r.plan.recompute} : r.recompute_options;
  // Free choices stay within what the row's stack can run (configs/stacks capabilities).
  const hw::Capabilities& caps = r.cluster.sw.caps;
  if (!r.recompute_options.empty()) std::erase_if(rcs, [&](Recompute rc) { return !strategies::allows(caps, rc); });
  std::string why;
  for (Recompute rc : rcs) {
    strategies::StepReport chosen;
    bool have = false;
    const bool can_interleave = strategies::allows(caps, strategies::Schedule::interleaved);
    const int vmax = r.vpp_free && can_interleave ? static_cast<int>(r.model.layers / r.plan.pp) : 1;
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
      } catch (const PlanError& e) {
        why = e.what();
        continue;
      }
      chosen = est.evaluate(p);
      have = true;
      if (strategies::bubble_fraction(p.schedule, p.pp, p.vpp, p.microbatches()) <= kVppBubbleTarget) break;
    }
    if (!have) throw PlanError("strategy", "no valid plan for the row's fields (" + why + ")");
    if (chosen.feasible || rc == rcs.back()) return chosen;
  }
  return {};
}

// A row without a strategy: the best plan `search` finds for its GPUs and batch among those its
// stack could run (plan_allowed) in the row's precision. The search ranks by throughput.
constexpr int kSearchTopK = 200;

strategies::StepReport searched_report(const RunSpec& r, const analytic::Estimator& est) {
  search::SearchSpec spec;
  spec.gpus = r.gpus;
  spec.gbs = {r.plan.gbs};
  spec.top_k = kSearchTopK;
  spec.pareto = false;
  const search::SearchResult res = search::run_search(est, spec);
  for (const auto& c : res.top)
    if (plan_allowed(c.plan, r.caps, r.given) && c.plan.precision == r.plan.precision) return search::full_report(est, c);
  throw PlanError("strategy", "search found no plan the row's stack could run with its published fields (" + r.caps.basis + ")" +
                                  (res.reason.empty() ? "" : ": " + res.reason));
}

}  // namespace

RunResult predict_run(const RunSpec& r) {
  RunResult out;
  out.id = r.id;
  out.group = r.group;
  out.assumed = r.assumed;
  if (!r.refused.empty()) {
    out.supported = false;
    out.refused = r.refused;
    return out;
  }
  analytic::EstimatorOptions opts;
  if (r.given.optimizer) opts.recipe_override = *strategies::recipe_named(*r.given.optimizer);
  analytic::Estimator est(r.model, r.cluster, opts);
  strategies::StepReport rep;
  try {
    rep = r.search ? searched_report(r, est) : best_report(r, est);
  } catch (const std::runtime_error& e) {  // PlanError: no valid plan for the row's fields
    out.supported = false;
    out.refused = e.what();
    return out;
  }
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
  if (!rep.feasible) out.note = "predicted plan exceeds memory: " + rep.reason;
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
  sh.flash2 = l.cluster.sw.flash2_attention;
  sh.flash_triton = l.cluster.sw.flash_triton;
  sh.eager_elementwise = l.cluster.sw.eager_elementwise;
  sh.tp_overlap = l.cluster.sw.caps.tp_comm_overlap && sh.sp && p.tp <= l.cluster.gpus_per_node;
  sh.act_passes_fwd = l.cluster.sw.activation_passes_fwd;
  sh.act_passes_bwd = l.cluster.sw.activation_passes_bwd;
  sh.recompute_early_stop = l.cluster.sw.recompute_early_stop;
  sh.op_sac = l.cluster.sw.selective_op_sac;
  sh.rng_copy_s = strategies::rng_state_copy_s(l.cluster);
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

void summarize(ValidationSummary& s) {
  double sum = 0, sum_mem = 0;
  s.counted = s.refused = s.oom = 0;
  s.max_error_pct = s.max_error_in_memory_pct = 0;
  for (const auto& rr : s.runs) {
    if (!rr.supported) {
      ++s.refused;
      continue;
    }
    const double e = std::fabs(rr.error_pct);
    sum += e;
    s.max_error_pct = std::max(s.max_error_pct, e);
    ++s.counted;
    if (!rr.feasible) {
      ++s.oom;
      continue;
    }
    sum_mem += e;
    s.max_error_in_memory_pct = std::max(s.max_error_in_memory_pct, e);
  }
  s.mape_pct = s.counted > 0 ? sum / s.counted : 0;
  s.mape_in_memory_pct = s.counted > s.oom ? sum_mem / (s.counted - s.oom) : 0;
}

ValidationSummary validate(const RunsFile& f) {
  ValidationSummary s;
  for (const auto& r : f.runs) s.runs.push_back(predict_run(r));
  for (const auto& r : f.serve_runs) s.runs.push_back(predict_serve_run(r));  // serving rows (validation/serve_runs.cpp)
  summarize(s);
  for (const auto& l : f.layer_timings) s.layers.push_back(predict_layer(l));
  return s;
}

}  // namespace scaleplan::validation
