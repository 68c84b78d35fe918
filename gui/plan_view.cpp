#include "gui/plan_view.hpp"

#include <fstream>

#include "common/errors.hpp"
#include "strategies/plan_label.hpp"

namespace scaleplan::gui {

using strategies::Plan;

namespace {

// Parallelism family: which model-parallel dimensions besides DP the plan uses.
int parallel_family(const Plan& p) {
  if (p.cp > 1 || p.ep > 1) return 4;
  if (p.tp > 1 && p.pp > 1) return 3;
  if (p.pp > 1) return 2;
  if (p.tp > 1) return 1;
  return 0;
}
int zero_family(const Plan& p) { return p.zero < 0 ? 0 : p.zero > 3 ? 3 : p.zero; }
int recompute_family(const Plan& p) { return static_cast<int>(p.recompute); }  // none, selective, full
int schedule_family(const Plan& p) {
  switch (p.schedule) {
    case strategies::Schedule::one_f_one_b: return 0;
    case strategies::Schedule::gpipe: return 1;
    case strategies::Schedule::interleaved: return 2;
    case strategies::Schedule::zero_bubble: return 3;
  }
  return 0;
}

// A power-of-two degree in buckets 1, 2, 4, 8, >= 16 (degrees in between go to the bucket below).
int degree_family(int degree) {
  int f = 0;
  for (int d = degree; d > 1 && f < 4; d /= 2) ++f;
  return f;
}
int tp_family(const Plan& p) { return degree_family(p.tp); }
int pp_family(const Plan& p) { return degree_family(p.pp); }
int offload_family(const Plan& p) { return static_cast<int>(p.offload); }  // none, optimizer, params, nvme, gemini

}  // namespace

const std::vector<ColourScheme>& colour_schemes() {
  static const std::vector<ColourScheme> k = {
      {"parallelism", "which dimensions split the model besides data parallelism: tp>1, pp>1, cp>1 or ep>1",
       {"DP only", "TP x DP", "PP x DP", "TP x PP x DP", "with CP / EP"}, parallel_family},
      {"ZeRO stage", "optimizer-state (1), gradient (2) and parameter (3) sharding over data parallelism",
       {"ZeRO-0", "ZeRO-1", "ZeRO-2", "ZeRO-3"}, zero_family},
      {"recompute", "activation recomputation policy", {"no recompute", "selective", "full"}, recompute_family},
      {"schedule", "pipeline schedule", {"1F1B", "GPipe", "interleaved 1F1B", "zero bubble"}, schedule_family},
      {"tensor parallel", "tensor-parallel degree", {"tp=1", "tp=2-3", "tp=4-7", "tp=8-15", "tp>=16"}, tp_family},
      {"pipeline parallel", "pipeline-parallel degree", {"pp=1", "pp=2-3", "pp=4-7", "pp=8-15", "pp>=16"}, pp_family},
      {"offload", "what is offloaded to host memory or NVMe", {"no offload", "optimizer", "params", "NVMe", "gemini chunks"}, offload_family},
  };
  return k;
}

std::string plan_yaml(const Plan& p, const std::vector<std::string>& comment) {
  std::string y;
  for (const auto& c : comment) y += "# " + c + "\n";
  auto kv = [&y](const char* k, const std::string& v) { y += std::string(k) + ": " + v + "\n"; };
  kv("dp", std::to_string(p.dp));
  kv("tp", std::to_string(p.tp));
  kv("pp", std::to_string(p.pp));
  kv("vpp", std::to_string(p.vpp));
  kv("mbs", std::to_string(p.mbs));
  kv("gbs", std::to_string(p.gbs));
  kv("cp", std::to_string(p.cp));
  kv("ep", std::to_string(p.ep));
  kv("tp_mode", std::string("\"") + name(p.tp_mode) + "\"");
  kv("tp_depth", std::to_string(p.tp_depth));
  kv("sp", p.sp ? "\"on\"" : "\"off\"");  // quoted: bare on/off are YAML 1.1 booleans
  kv("cp_algo", name(p.cp_algo));
  kv("schedule", std::string("\"") + name(p.schedule) + "\"");
  kv("recompute", name(p.recompute));
  kv("zero", std::to_string(p.zero));
  kv("offload", name(p.offload));
  kv("precision", name(p.precision));
  if (p.uneven_split()) kv("layers", "\"" + p.layers_string() + "\"");  // issue 16: layers on the first/middle/last stage
  return y;
}

void save_plan_yaml(const std::string& path, const Plan& p, const std::vector<std::string>& comment) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  if (!out) throw UsageError("cannot write plan file '" + path + "'");
  out << plan_yaml(p, comment);
  if (!out) throw UsageError("cannot write plan file '" + path + "'");
}

}  // namespace scaleplan::gui

namespace scaleplan::gui {
std::string plan_label(const strategies::Plan& p) { return strategies::short_label(p); }  // the CLI's label (issue 16)
}  // namespace scaleplan::gui
