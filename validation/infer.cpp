#include "validation/infer.hpp"

#include <algorithm>
#include <cctype>
#include <regex>

#include "common/errors.hpp"
#include "common/yaml_reader.hpp"
#include "strategies/stack_caps.hpp"

namespace scaleplan::validation {

using strategies::Plan;
using strategies::Recompute;

namespace {

constexpr int month_of(int year, int month) { return year * 12 + (month - 1); }
// Sequence parallelism and selective recompute: Korthikanti et al., arXiv 2205.05198 (May 2022).
constexpr int kSpSelectiveSince = month_of(2022, 5);
// Interleaved 1F1B schedule: Narayanan et al. SC21, arXiv 2104.04473 (April 2021).
constexpr int kInterleavedSince = month_of(2021, 4);

int to_int(const std::string& s) { return std::stoi(s); }

bool starts_with(const std::string& s, const char* prefix) { return s.rfind(prefix, 0) == 0; }

}  // namespace

int row_month(const std::string& date, const std::string& source) {
  std::smatch m;
  static const std::regex ym(R"(^\s*(\d{4})(?:-(\d{1,2}))?)");
  if (std::regex_search(date, m, ym)) return month_of(to_int(m[1]), m[2].matched ? to_int(m[2]) : 12);
  static const std::regex arxiv(R"(arXiv[: ]*(\d{2})(\d{2})\.\d{4,5})", std::regex::icase);
  if (std::regex_search(source, m, arxiv)) return month_of(2000 + to_int(m[1]), to_int(m[2]));
  // NVIDIA container tags are YY.MM ("NeMo 24.07", "25.11 NeMo container").
  static const std::regex container(R"((?:NeMo\s*(\d{2})\.(\d{2}))|(?:(\d{2})\.(\d{2})\s+NeMo))", std::regex::icase);
  if (std::regex_search(source, m, container)) {
    const bool first = m[1].matched;
    return month_of(2000 + to_int(first ? m[1] : m[3]), to_int(first ? m[2] : m[4]));
  }
  // Supercomputing conference (held in November).
  static const std::regex sc(R"(\bSC(\d{2})\b)");
  if (std::regex_search(source, m, sc)) return month_of(2000 + to_int(m[1]), 11);
  // A citation's dates (the commit read, the commit that added the table, ...): the earliest is the nearest
  // to when the run happened.
  static const std::regex ymd(R"(\b(20[1-3]\d)-(\d{2})(?:-\d{2})?\b)");
  int earliest = 0;
  for (auto it = std::sregex_iterator(source.begin(), source.end(), ymd); it != std::sregex_iterator(); ++it) {
    const int mo = to_int((*it)[2]);
    if (mo < 1 || mo > 12) continue;
    const int m = month_of(to_int((*it)[1]), mo);
    if (earliest == 0 || m < earliest) earliest = m;
  }
  if (earliest > 0) return earliest;
  static const std::regex year(R"(\b(20[1-3]\d)\b)");
  if (std::regex_search(source, m, year)) return month_of(to_int(m[1]), 12);
  return 0;
}

std::string month_str(int month) {
  if (month <= 0) return "unknown";
  const int y = month / 12, mo = month % 12 + 1;
  return std::to_string(y) + (mo < 10 ? "-0" : "-") + std::to_string(mo);
}

StackCaps stack_caps_from_row(int month, const hw::Software& sw) {
  StackCaps c;
  c.flash_attention = sw.flash_attention;
  if (!sw.stack.empty() && sw.stack != "unrestricted") {
    // The row names its stack (configs/stacks/*.yaml): the stack's capabilities decide what a null
    // field may become, whatever the date.
    c.selective_recompute = strategies::allows(sw.caps, Recompute::selective);
    c.sequence_parallel = sw.caps.sequence_parallel;
    c.interleaved_schedule = strategies::allows(sw.caps, strategies::Schedule::interleaved);
    c.basis = "stack " + sw.stack;
    return c;
  }
  if (month > 0) {
    c.selective_recompute = c.sequence_parallel = month >= kSpSelectiveSince;
    c.interleaved_schedule = month >= kInterleavedSince;
    c.basis = "published " + month_str(month);
  } else {
    c.basis = "date unknown: a current stack";
  }
  return c;
}

bool plan_allowed(const Plan& p, const StackCaps& caps, const RowStrategy& given) {
  if (p.recompute == Recompute::selective && !caps.selective_recompute) return false;
  if (p.sp && p.tp > 1 && !caps.sequence_parallel) return false;
  if (p.vpp > 1 && !caps.interleaved_schedule) return false;
  if (given.recompute && p.recompute != *given.recompute) return false;
  if (given.sp && p.tp > 1 && p.sp != *given.sp) return false;
  if (given.mbs && p.mbs != *given.mbs) return false;
  if (given.vpp && p.vpp != *given.vpp) return false;
  if (given.zero && p.zero != *given.zero) return false;
  return true;
}

namespace {

// recompute null: the FLOP-counting convention first (a count that includes the recompute forward
// pass implies recompute), then the least recompute the stack offers that fits in memory.
void infer_recompute(const RowStrategy& s, const std::string& fc, const StackCaps& caps, InferredPlan& out) {
  if (s.recompute) {
    out.recompute_options = {*s.recompute};
    out.plan.recompute = *s.recompute;
    return;
  }
  if (starts_with(fc, "eq3 incl. recompute")) {
    // SC21 eq. (3) "assumes activation recomputation": 4 passes of the layer GEMMs (full recompute).
    out.recompute_options = {Recompute::full};
    out.assumed.push_back("recompute=full (eq3 counting includes the full recompute forward pass)");
  } else if (starts_with(fc, "hardware incl. recompute")) {
    out.recompute_options = caps.selective_recompute ? std::vector<Recompute>{Recompute::selective, Recompute::full}
                                                     : std::vector<Recompute>{Recompute::full};
    out.assumed.push_back(caps.selective_recompute
                              ? "recompute=least of selective/full that fits (FLOPs counted incl. recompute)"
                              : "recompute=full (FLOPs counted incl. recompute; no selective recompute before 2022-05)");
  } else {
    out.recompute_options = caps.selective_recompute
                                ? std::vector<Recompute>{Recompute::none, Recompute::selective, Recompute::full}
                                : std::vector<Recompute>{Recompute::none, Recompute::full};
    out.assumed.push_back(caps.selective_recompute ? "recompute=least of none/selective/full that fits (null)"
                                                   : "recompute=least of none/full that fits (null; no selective recompute before 2022-05)");
  }
  out.plan.recompute = out.recompute_options.front();
}

void infer_sp(const RowStrategy& s, const StackCaps& caps, InferredPlan& out) {
  if (s.sp) {
    out.plan.sp = *s.sp;
    return;
  }
  if (out.plan.tp <= 1) {
    out.plan.sp = false;
    return;  // nothing to shard: no assumption
  }
  out.plan.sp = caps.sequence_parallel;
  out.assumed.push_back(caps.sequence_parallel ? "sp=on (null; tp>1 and the stack has sequence parallelism)"
                                               : "sp=off (null; sequence parallelism arrived 2022-05, " + caps.basis + ")");
}

void infer_vpp(const RowStrategy& s, const StackCaps& caps, InferredPlan& out) {
  Plan& p = out.plan;
  if (s.vpp) {
    p.vpp = static_cast<int>(*s.vpp);
    if (p.vpp > 1) p.schedule = strategies::Schedule::interleaved, p.schedule_set = true;
    return;
  }
  if (p.pp <= 1) return;
  if (caps.interleaved_schedule) {
    out.vpp_free = true;
    out.assumed.push_back("vpp=smallest with bubble <= 10% (null)");
  } else {
    out.assumed.push_back("vpp=1 (null; the interleaved schedule arrived 2021-04, " + caps.basis + ")");
  }
}

strategies::Precision precision_of(const std::optional<std::string>& v, const hw::Cluster& c, InferredPlan& out) {
  // 16-bit mixed precision ("mixed16" or null) is bf16 where both the device and the row's stack have
  // it (configs/stacks precisions), else fp16 (e.g. DeepSpeed ZeRO as in the 2021 SC21 ZeRO-3 runs).
  const bool has_bf16 = c.device.peak(hw::Dtype::bf16) > 0 && strategies::allows(c.sw.caps, strategies::Precision::bf16);
  const std::string p = v.value_or("mixed16");
  if (!v) out.assumed.push_back(std::string("precision=") + (has_bf16 ? "bf16" : "fp16") + " (null: 16-bit mixed precision)");
  if (p == "fp32") return strategies::Precision::fp32;
  if (p == "fp16") return strategies::Precision::fp16;
  if (p == "bf16") return strategies::Precision::bf16;
  if (p == "fp8") return strategies::Precision::fp8;
  return has_bf16 ? strategies::Precision::bf16 : strategies::Precision::fp16;  // mixed16
}

int degree(const std::optional<long long>& v, const char* name, InferredPlan& out) {
  if (v) return static_cast<int>(*v);
  out.assumed.push_back(std::string(name) + "=1 (null)");
  return 1;
}

}  // namespace

InferredPlan infer_plan(const RowStrategy& s, const std::string& fc, const StackCaps& caps, const hw::Cluster& c,
                        long long gpus) {
  InferredPlan out;
  Plan& p = out.plan;
  p.precision = precision_of(s.precision, c, out);
  p.precision_set = true;
  p.allow_uneven_layers = true;
  p.cp_algo = s.cp_algo;
  if (s.gbs) p.gbs = *s.gbs;
  if (!s.present) {
    out.search = true;
    out.assumed.push_back("plan=best found by search under the stack's capabilities (no strategy in the source; " + caps.basis + ")");
    return out;
  }
  p.tp = degree(s.tp, "tp", out);
  p.pp = degree(s.pp, "pp", out);
  p.cp = degree(s.cp, "cp", out);
  const long long inner = static_cast<long long>(p.tp) * p.pp * p.cp;
  if (s.dp) p.dp = static_cast<int>(*s.dp);
  else {
    p.dp = static_cast<int>(gpus / inner);
    out.assumed.push_back("dp=gpus/(tp*pp*cp)=" + std::to_string(p.dp) + " (null)");
  }
  // Expert parallelism: as published; absent or null is 1 (no experts split), which is what a dense
  // row means; an MoE row with ep null gets the assumption listed.
  p.ep = s.ep ? static_cast<int>(*s.ep) : 1;
  if (s.mbs) p.mbs = static_cast<int>(*s.mbs);
  else out.assumed.push_back("microbatch=1 (null)");
  infer_vpp(s, caps, out);
  infer_recompute(s, fc, caps, out);
  infer_sp(s, caps, out);
  if (s.zero) p.zero = static_cast<int>(*s.zero);
  else {
    p.zero = 1;
    out.assumed.push_back("zero=1 (null: distributed optimizer)");
  }
  return out;
}

namespace {

// Tokenizer families by model-name prefix (longest first), each read from the family's preset,
// which cites the vocabulary's source (configs/models/*.yaml).
struct Family {
  const char* prefix;
  const char* preset;
};
constexpr Family kFamilies[] = {
    {"llama-3", "llama3-70b"}, {"llama3", "llama3-70b"},     {"llama-2", "llama2-70b"}, {"llama2", "llama2-70b"},
    {"llama", "llama2-70b"},   {"mixtral", "mixtral-8x7b"}, {"mistral", "mixtral-8x7b"}, {"bloom", "bloom-176b"},
    {"opt", "opt-175b"},       {"gpt", "gpt3-175b"},
};

std::string lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char ch) { return static_cast<char>(std::tolower(ch)); });
  return s;
}

std::optional<std::pair<long long, std::string>> vocab_for(const std::string& name) {
  try {
    const long long v = model::load_model(name).vocab;
    return std::pair{v, "vocab=" + std::to_string(v) + " (null; preset " + name + ")"};
  } catch (const std::exception&) {
  }
  const std::string n = lower(name);
  for (const Family& f : kFamilies) {
    if (!starts_with(n, f.prefix)) continue;
    const long long v = model::load_model(f.preset).vocab;
    return std::pair{v, "vocab=" + std::to_string(v) + " (null; tokenizer family '" + f.prefix + "', preset " + f.preset + ")"};
  }
  return std::nullopt;
}

}  // namespace

model::ModelSpec parse_row_model(const YamlMap& m, std::vector<std::string>& assumed) {
  const std::string act = m.str_or("activation", "gelu");
  const bool vocab_null = m.is_null("vocab");
  if (!vocab_null && act != "relu" && act != "geglu") return model::parse_model_map(m);
  YAML::Node c = YAML::Clone(m.node());
  if (act == "relu") {
    c["activation"] = "gelu";  // same two-matrix MLP (Vaswani et al. 2017 eq. 2); element-wise cost alike
    assumed.push_back("activation relu costed as gelu (same 2-matrix MLP)");
  } else if (act == "geglu") {
    c["activation"] = "swiglu";  // same gated three-matrix MLP (Shazeer 2020, eq. 5-6)
    assumed.push_back("activation geglu costed as swiglu (same gated 3-matrix MLP)");
  }
  if (vocab_null) {
    const std::string name = m.str_or("name", "");
    const auto v = vocab_for(name);
    if (!v) m.fail("vocab", "null, and model name '" + name + "' names no preset or known tokenizer family");
    c["vocab"] = v->first;
    assumed.push_back(v->second);
  }
  return model::parse_model_map(YamlMap(c, m.file(), "model"));
}

}  // namespace scaleplan::validation
