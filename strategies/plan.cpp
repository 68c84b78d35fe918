#include "strategies/plan.hpp"
#include "strategies/pipeline.hpp"
#include "strategies/context.hpp"
#include "strategies/expert.hpp"
#include "strategies/tensor_nd.hpp"
#include "strategies/offload.hpp"

#include <algorithm>
#include <charconv>
#include <sstream>
#include <vector>

#include "common/errors.hpp"
#include "common/limits.hpp"
#include "common/presets.hpp"
#include "common/yaml_reader.hpp"

namespace scaleplan::strategies {

const char* name(TpMode v) {
  switch (v) {
    case TpMode::d1: return "1d";
    case TpMode::d2: return "2d";
    case TpMode::d2_5: return "2.5d";
    case TpMode::d3: return "3d";
  }
  return "?";
}
const char* name(CpAlgo v) {
  switch (v) {
    case CpAlgo::ring: return "ring";
    case CpAlgo::ulysses: return "ulysses";
    case CpAlgo::ring_self_attn: return "ring_self_attn";
    case CpAlgo::allgather: return "allgather";
  }
  return "?";
}
const char* name(Schedule v) {
  switch (v) {
    case Schedule::gpipe: return "gpipe";
    case Schedule::one_f_one_b: return "1f1b";
    case Schedule::interleaved: return "interleaved";
    case Schedule::zero_bubble: return "zero_bubble";
  }
  return "?";
}
const char* name(Recompute v) {
  switch (v) {
    case Recompute::none: return "none";
    case Recompute::selective: return "selective";
    case Recompute::full: return "full";
  }
  return "?";
}
const char* name(Offload v) {
  switch (v) {
    case Offload::none: return "none";
    case Offload::optimizer: return "optimizer";
    case Offload::params: return "params";
    case Offload::nvme: return "nvme";
    case Offload::gemini: return "gemini";
  }
  return "?";
}
const char* name(Precision v) {
  switch (v) {
    case Precision::fp32: return "fp32";
    case Precision::fp16: return "fp16";
    case Precision::bf16: return "bf16";
    case Precision::fp8: return "fp8";
  }
  return "?";
}

hw::Dtype compute_dtype(Precision p) {
  switch (p) {
    case Precision::fp32: return hw::Dtype::fp32;
    case Precision::fp16: return hw::Dtype::fp16;
    case Precision::bf16: return hw::Dtype::bf16;
    case Precision::fp8: return hw::Dtype::fp8;
  }
  return hw::Dtype::bf16;
}
// fp8 (Micikevicius et al. 2022, "FP8 Formats for Deep Learning"; Transformer Engine recipe): only
// the GEMM inputs are cast to fp8; activations exchanged stay 16-bit, and of those kept for backward
// only the linears' inputs are kept in their fp8 cast (strategies/memory.hpp ActShape::e_gemm_in).
double bytes_per_element(Precision p) { return p == Precision::fp32 ? 4.0 : 2.0; }

std::string Plan::to_string() const {
  std::ostringstream s;
  s << "dp=" << dp << ",tp=" << tp << ",pp=" << pp << ",vpp=" << vpp << ",mbs=" << mbs << ",gbs=" << gbs
    << ",cp=" << cp << ",ep=" << ep;
  if (tp_mode != TpMode::d1) s << ",tp_mode=" << name(tp_mode);
  if (tp_mode == TpMode::d2_5) s << ",tp_depth=" << tp_depth;
  s << ",sp=" << (sp ? "on" : "off");
  if (cp > 1) s << ",cp_algo=" << name(cp_algo);
  s << ",schedule=" << name(schedule) << ",recompute=" << name(recompute) << ",zero=" << zero
    << ",offload=" << name(offload) << ",precision=" << name(precision);
  if (uneven_split()) s << ",layers=" << layers_string();
  if (zero_shard > 0) s << ",zero_shard=" << zero_shard;
  return s.str();
}

std::string Plan::layers_string() const {
  if (layers_first <= 0) return "";
  if (pp <= 1) return std::to_string(layers_first);
  if (pp == 2) return std::to_string(layers_first) + "/" + std::to_string(layers_last);
  return std::to_string(layers_first) + "/" + std::to_string(layers_middle) + "/" + std::to_string(layers_last);
}

namespace {

// An integer in [lo, hi] (docs/reliability.md "Ranges"): checked as 64-bit, so every value that
// passes fits the Plan's int fields (hi <= 2^31 - 1 for those) and no check is defeated by a wrap.
long long parse_int(const std::string& key, const std::string& v, long long lo, long long hi) {
  long long out = 0;
  auto [ptr, ec] = std::from_chars(v.data(), v.data() + v.size(), out);
  if (ec == std::errc::result_out_of_range)
    throw PlanError(key, "must be in " + limits::range_str(lo, hi) + " (got " + v + ", beyond 64-bit)");
  if (ec != std::errc() || ptr != v.data() + v.size()) throw PlanError(key, "must be an integer (got '" + v + "')");
  if (out < lo) throw PlanError(key, "must be >= " + std::to_string(lo) + " (got " + v + ")");
  if (out > hi) throw PlanError(key, "must be in " + limits::range_str(lo, hi) + " (got " + v + ")");
  return out;
}
int parse_degree(const std::string& key, const std::string& v) {
  return static_cast<int>(parse_int(key, v, 1, limits::kMaxDegree));
}

template <typename E>
E parse_enum(const std::string& key, const std::string& v, std::initializer_list<std::pair<const char*, E>> opts) {
  std::string list;
  for (const auto& [n, e] : opts) {
    if (v == n) return e;
    list += (list.empty() ? "" : "|") + std::string(n);
  }
  throw PlanError(key, "must be " + list + " (got '" + v + "')");
}

// layers=F/M/L (first / each middle / last stage), F/L, or L: 1 to 3 positive integers.
void parse_layers(Plan& p, const std::string& key, const std::string& v) {
  std::vector<long long> n;
  std::stringstream ss(v);
  std::string part;
  while (std::getline(ss, part, '/')) n.push_back(parse_int(key, part, 1, limits::kMaxLayers));
  if (n.empty() || n.size() > 3 || v.back() == '/')
    throw PlanError(key, "must be F/M/L (layers on the first, each middle and the last pipeline stage), F/L or L (got '" + v + "')");
  for (const long long x : n)
    if (x > 1000000) throw PlanError(key, "has a stage of more than 1000000 layers (got '" + v + "')");
  p.layers_first = static_cast<int>(n.front());
  p.layers_last = static_cast<int>(n.back());
  p.layers_middle = static_cast<int>(n.size() == 3 ? n[1] : n.front());
  p.layers_given = static_cast<int>(n.size());
}

bool parse_bool(const std::string& key, const std::string& v) {
  if (v == "on" || v == "true" || v == "1" || v == "yes") return true;
  if (v == "off" || v == "false" || v == "0" || v == "no") return false;
  throw PlanError(key, "must be on|off (got '" + v + "')");
}

void set_key(Plan& p, const std::string& k, const std::string& v) {
  if (v.empty()) throw PlanError(k, "has no value (write " + k + "=VALUE)");
  if (k == "dp") p.dp = parse_degree(k, v);
  else if (k == "tp") p.tp = parse_degree(k, v);
  else if (k == "pp") p.pp = parse_degree(k, v);
  else if (k == "vpp") p.vpp = static_cast<int>(parse_int(k, v, 1, limits::kMaxLayers));
  else if (k == "mbs") p.mbs = static_cast<int>(parse_int(k, v, 1, limits::kMaxDegree));
  else if (k == "gbs") p.gbs = parse_int(k, v, 1, limits::kMaxGbs);
  else if (k == "cp") p.cp = parse_degree(k, v);
  else if (k == "ep") p.ep = parse_degree(k, v);
  else if (k == "tp_depth") p.tp_depth = parse_degree(k, v);
  else if (k == "zero") p.zero = static_cast<int>(parse_int(k, v, 0, limits::kMaxDegree));  // 0-3: resolve_plan
  else if (k == "layers") parse_layers(p, k, v);
  else if (k == "zero_shard") p.zero_shard = parse_degree(k, v);
  else if (k == "tp_mode")
    p.tp_mode = parse_enum<TpMode>(k, v, {{"1d", TpMode::d1}, {"2d", TpMode::d2}, {"2.5d", TpMode::d2_5}, {"3d", TpMode::d3}});
  else if (k == "sp") p.sp = parse_bool(k, v);
  else if (k == "cp_algo")
    p.cp_algo = parse_enum<CpAlgo>(k, v, {{"ring", CpAlgo::ring}, {"ulysses", CpAlgo::ulysses}, {"ring_self_attn", CpAlgo::ring_self_attn},
                                           {"allgather", CpAlgo::allgather}});
  else if (k == "schedule") {
    p.schedule = parse_enum<Schedule>(k, v, {{"gpipe", Schedule::gpipe}, {"1f1b", Schedule::one_f_one_b},
                                             {"interleaved", Schedule::interleaved}, {"zero_bubble", Schedule::zero_bubble}});
    p.schedule_set = true;
  } else if (k == "recompute")
    p.recompute = parse_enum<Recompute>(k, v, {{"none", Recompute::none}, {"selective", Recompute::selective}, {"full", Recompute::full}});
  else if (k == "offload")
    p.offload = parse_enum<Offload>(k, v, {{"none", Offload::none}, {"optimizer", Offload::optimizer}, {"params", Offload::params},
                                           {"nvme", Offload::nvme}, {"gemini", Offload::gemini}});
  else if (k == "precision") {
    p.precision = parse_enum<Precision>(k, v, {{"fp32", Precision::fp32}, {"fp16", Precision::fp16}, {"bf16", Precision::bf16}, {"fp8", Precision::fp8}});
    p.precision_set = true;
  } else
    throw PlanError(k, "unknown key (known: dp tp pp vpp mbs gbs cp ep tp_mode tp_depth sp cp_algo schedule recompute zero offload precision layers zero_shard)");
}

}  // namespace

Plan parse_plan(const std::string& text) {
  Plan p;
  std::vector<std::string> seen;
  if (text.find_first_not_of(" \t") == std::string::npos) return p;  // "" or blanks: all defaults
  std::size_t start = 0;
  while (start <= text.size()) {
    const std::size_t comma = std::min(text.find(',', start), text.size());
    std::string item = text.substr(start, comma - start);
    start = comma + 1;
    const auto b = item.find_first_not_of(" \t");
    if (b == std::string::npos)  // "tp=8,,pp=1", ",tp=8" or "tp=8,": a typo, not "no key"
      throw PlanError(seen.empty() ? std::string("(first item)") : seen.back(),
                      "an empty plan item next to it (',,' or a leading/trailing ',')");
    item = item.substr(b, item.find_last_not_of(" \t") - b + 1);
    const auto eq = item.find('=');
    if (eq == std::string::npos) throw PlanError(item, "expected key=value");
    const std::string k = item.substr(0, eq), v = item.substr(eq + 1);
    for (const auto& s : seen)
      if (s == k) throw PlanError(k, "given twice");
    seen.push_back(k);
    set_key(p, k, v);
  }
  return p;
}

Plan load_plan(const std::string& spec) {
  if (spec.find('=') != std::string::npos || spec.empty()) return parse_plan(spec);
  ConfigText t = load_config_text("plans", spec);
  return parse_plan_yaml(t.text, t.file);
}

Plan parse_plan_yaml(const std::string& text, const std::string& file) {
  const ConfigText t{text, file};
  YamlMap y = YamlMap::parse(t.text, t.file);
  Plan p;
  for (const auto& kv : y.node()) {
    const std::string k = kv.first.Scalar();
    const SourceLocation at{t.file, kv.first.Mark().line + 1, kv.first.Mark().column + 1};
    if (!kv.second.IsScalar()) throw ConfigError(at, k, "must be a scalar value");
    try {
      set_key(p, k, kv.second.Scalar());
    } catch (const PlanError& e) {
      throw ConfigError(at, k, e.rule());
    }
  }
  return p;
}

namespace {
// An explicit split (layers=F/M/L): the count of numbers fits pp, the stages add up to the model's
// layers, and with vpp every stage keeps at least one layer per chunk. An uneven split (or one
// that vpp does not divide) is then allowed, as the search's (Plan::allow_uneven_layers).
void check_layers_split(Plan& p, long long L) {
  const int want = p.pp >= 3 ? 3 : p.pp;
  if (p.layers_given != want)
    throw PlanError("layers", "pp=" + std::to_string(p.pp) + " needs " + (want == 3 ? "F/M/L (first/middle/last stage)" : want == 2 ? "F/L" : "one number") +
                                  " (got '" + p.layers_string() + "')");
  const long long sum = p.layers_first + static_cast<long long>(p.pp - 2 > 0 ? p.pp - 2 : 0) * p.layers_middle + (p.pp > 1 ? p.layers_last : 0);
  if (sum != L)
    throw PlanError("layers", "layers=" + p.layers_string() + " puts " + std::to_string(sum) + " layers on pp=" + std::to_string(p.pp) +
                                  " stages; the model has " + std::to_string(L));
  const int least = std::min({p.layers_first, p.layers_middle, p.layers_last});
  if (least < p.vpp)
    throw PlanError("layers", "layers=" + p.layers_string() + " leaves a stage with fewer layers than vpp=" + std::to_string(p.vpp) + " chunks");
  p.allow_uneven_layers = p.uneven_split() || L % (static_cast<long long>(p.pp) * p.vpp) != 0;
}

// The products resolve_plan forms, checked before use (docs/reliability.md "Ranges"): tp*pp*cp and
// dp*tp*pp*cp within the GPU limit, gbs*seq within the tokens-per-step limit.
long long checked_product(const char* key, const char* what, long long a, long long b, long long hi) {
  long long r = 0;
  if (!limits::mul_within(a, b, hi, &r))
    throw PlanError(key, std::string(what) + " exceeds " + std::to_string(hi) + " (the limit of docs/reliability.md)");
  return r;
}
}  // namespace

Plan resolve_plan(Plan p, const model::ModelSpec& m, const hw::Cluster& c, long long gpus) {
  // MLA and dense-first MoE stacks (model/model.hpp: mla, moe.first_dense_layers) are costed by `serve`
  // (simulator/serve) only: the training layer costs assume MHA/GQA and one layer kind. Fine-grained and
  // shared experts (moe.expert_ffn, shared_experts) are costed (strategies/expert).
  if (m.mla.enabled() || m.moe.first_dense_layers > 0)
    throw PlanError("model", m.name + " uses MLA or dense-first MoE layers, which the training estimator does not model yet (`serve` does)");
  if (gpus > limits::kMaxGpus)
    throw PlanError("dp", "--gpus " + std::to_string(gpus) + " is outside " + limits::range_str(1, limits::kMaxGpus));
  const long long inner = checked_product("tp", "tp*pp*cp", checked_product("tp", "tp*pp", p.tp, p.pp, limits::kMaxGpus), p.cp,
                                          limits::kMaxGpus);
  if (p.dp == 0) {
    if (gpus <= 0) p.dp = 1;
    else if (gpus % inner != 0)
      throw PlanError("tp", "tp*pp*cp = " + std::to_string(inner) + " does not divide --gpus " + std::to_string(gpus));
    else p.dp = static_cast<int>(gpus / inner);
  }
  const long long all = checked_product("dp", "dp*tp*pp*cp", p.dp, inner, limits::kMaxGpus);
  if (gpus > 0 && all != gpus)
    throw PlanError("dp", "dp*tp*pp*cp = " + std::to_string(all) + " does not match --gpus " + std::to_string(gpus));
  // Tensor parallel mode rules (strategies/tensor_nd: 1d heads/ffn/kv_heads divisible by tp; 2d
  // tp = q^2; 2.5d tp = tp_depth q^2; 3d tp = q^3; the grid side divides heads, hidden, ffn and
  // the microbatch rows).
  tp_model(p.tp_mode).check(p, m);
  check_offload(p, c);  // offload rules (issue 6): strategies/offload.cpp
  check_expert_parallel(p, m);
  if (m.seq % p.cp != 0) throw PlanError("cp", "cp=" + std::to_string(p.cp) + " does not divide seq=" + std::to_string(m.seq));
  cp_model(p.cp_algo).check(p, m);
  if (p.zero > 3) throw PlanError("zero", "must be 0, 1, 2 or 3");
  if (p.zero_shard > 0) {  // hybrid sharding (docs/zero3.md)
    if (p.zero != 3) throw PlanError("zero_shard", "needs zero=3 (got zero=" + std::to_string(p.zero) + ")");
    if (p.dp % p.zero_shard != 0)
      throw PlanError("zero_shard", "zero_shard=" + std::to_string(p.zero_shard) + " does not divide dp=" + std::to_string(p.dp));
    if (p.ep > 1) throw PlanError("zero_shard", "hybrid sharding with ep>1 is not modelled");
    if (p.offload != Offload::none) throw PlanError("zero_shard", "hybrid sharding with offload is not modelled");
  }
  if (p.pp > m.layers) throw PlanError("pp", "pp=" + std::to_string(p.pp) + " exceeds layers=" + std::to_string(m.layers));
  if (p.vpp > m.layers) throw PlanError("vpp", "vpp=" + std::to_string(p.vpp) + " exceeds layers=" + std::to_string(m.layers));
  if (p.vpp > 1 && !p.schedule_set) p.schedule = Schedule::interleaved;
  if (p.vpp > 1 && p.schedule != Schedule::interleaved)
    throw PlanError("vpp", "vpp>1 needs schedule=interleaved (got " + std::string(name(p.schedule)) + ")");
  if (p.schedule == Schedule::interleaved && p.pp == 1) throw PlanError("schedule", "interleaved needs pp>1");
  if (p.schedule == Schedule::zero_bubble && p.pp == 1) throw PlanError("schedule", "zero_bubble needs pp>1");
  if (p.layers_given > 0) check_layers_split(p, m.layers);
  if (!p.allow_uneven_layers && m.layers % (static_cast<long long>(p.pp) * p.vpp) != 0)
    throw PlanError(p.vpp > 1 ? "vpp" : "pp", "pp*vpp=" + std::to_string(static_cast<long long>(p.pp) * p.vpp) + " does not divide layers=" + std::to_string(m.layers));
  if (p.allow_uneven_layers && m.layers < static_cast<long long>(p.pp) * p.vpp)
    throw PlanError("vpp", "pp*vpp exceeds layers");
  if (p.allow_uneven_layers && p.layers_given == 0 && m.layers % p.pp != 0) {
    const StageLayers sl = stage_layers(m.layers, p.pp);
    if (sl.first < 1 || sl.last < 1)
      throw PlanError("pp", "pp=" + std::to_string(p.pp) + " leaves the first or last stage without a layer (layers=" + std::to_string(m.layers) + ")");
  }
  if (p.layers_given == 0) {  // the default split, said explicitly (issue 16: every plan states its split)
    const StageLayers sl = stage_layers(m.layers, p.pp);
    p.layers_first = static_cast<int>(sl.first);
    p.layers_middle = static_cast<int>(sl.middle);
    p.layers_last = static_cast<int>(sl.last);
  }
  if (!p.precision_set) p.precision = c.device.peak(hw::Dtype::bf16) > 0 ? Precision::bf16 : Precision::fp16;
  if (c.device.peak(compute_dtype(p.precision)) <= 0)
    throw PlanError("precision", std::string(name(p.precision)) + " is not supported by " + c.device.name);
  // Default global batch: enough microbatches to fill the pipeline twice (README "Plan defaults").
  const long long per_step = checked_product("mbs", "mbs*dp", p.mbs, p.dp, limits::kMaxGbs);
  if (p.gbs == 0) {
    const long long fill = p.pp > 1 ? checked_product("vpp", "2*pp*vpp", 2LL * p.pp, p.vpp, limits::kMaxGbs) : 1;
    p.gbs = checked_product("gbs", "the default gbs = mbs*dp*2*pp*vpp", per_step, fill, limits::kMaxGbs);
  }
  long long tokens_per_step = 0;  // the message is built only on failure: the search calls this per plan, allocation-free
  if (!limits::mul_within(p.gbs, m.seq, limits::kMaxTokensPerStep, &tokens_per_step))
    throw PlanError("gbs", "gbs*seq (tokens per step, seq=" + std::to_string(m.seq) + ") exceeds " +
                               std::to_string(limits::kMaxTokensPerStep) + " (the limit of docs/reliability.md)");
  if (p.gbs % (static_cast<long long>(p.mbs) * p.dp) != 0)
    throw PlanError("gbs", "gbs=" + std::to_string(p.gbs) + " is not a multiple of mbs*dp=" + std::to_string(static_cast<long long>(p.mbs) * p.dp));
  if (p.schedule == Schedule::interleaved && p.microbatches() % p.pp != 0)
    throw PlanError("gbs", "the interleaved schedule needs microbatches per pipeline (" + std::to_string(p.microbatches()) +
                               ") to be a multiple of pp=" + std::to_string(p.pp));
  return p;
}

}  // namespace scaleplan::strategies
