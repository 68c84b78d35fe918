#include "hardware/failures.hpp"

#include <algorithm>
#include <cmath>

#include "common/presets.hpp"
#include "common/yaml_reader.hpp"

namespace scaleplan::hw {

namespace {

double rate_sum(const FailureProfile& f, long long gpus, int gpus_per_node, bool planned) {
  const double g = static_cast<double>(gpus);
  const double nodes = std::ceil(g / static_cast<double>(std::max(1, gpus_per_node)));
  double r = 0;
  // Independent causes in series: the job stops when any one fails, so the rates add (exponential
  // failures; Kokolis et al. 2024, arXiv 2410.21680, sec. on MTTF vs job size).
  for (const FailureCause& c : f.causes)
    if (c.planned == planned) r += c.rate_per_s * (c.per_node ? nodes : g);
  return r;
}

}  // namespace

double FailureProfile::unplanned_rate_per_s(long long gpus, int gpus_per_node) const {
  return rate_sum(*this, gpus, gpus_per_node, false);
}
double FailureProfile::planned_rate_per_s(long long gpus, int gpus_per_node) const {
  return rate_sum(*this, gpus, gpus_per_node, true);
}

FailureProfile parse_failures(const std::string& text, const std::string& file) {
  YamlMap y = YamlMap::parse(text, file);
  y.check_keys({"name", "source", "observed", "causes", "recovery"});
  FailureProfile f;
  f.name = y.str("name");
  f.file = file;
  YamlMap o = y.map("observed");
  o.check_keys({"gpus", "gpus_per_node", "days"});
  const double gpus = static_cast<double>(o.integer("gpus"));
  const double per_node = static_cast<double>(o.integer("gpus_per_node"));
  const double window_s = o.num("days") * 86400.0;
  YamlMap cs = y.map("causes");
  for (const auto& kv : cs.node()) {
    const std::string key = kv.first.as<std::string>();
    YamlMap c = cs.map(key);
    c.check_keys({"scope", "interruptions", "planned", "source"});
    FailureCause fc;
    fc.name = key;
    fc.per_node = c.choice("scope", {"gpu", "node"}, "gpu") == "node";
    fc.planned = c.boolean_or("planned", false);
    // rate = count / (window x units observed): per GPU-second or per node-second.
    const double n = c.num("interruptions", Bound::non_negative);
    fc.rate_per_s = n / (window_s * (fc.per_node ? gpus / per_node : gpus));
    f.causes.push_back(fc);
  }
  YamlMap r = y.map("recovery");
  r.check_keys({"detect_s", "restart_s"});
  f.detect_s = r.num("detect_s", Bound::non_negative);
  f.restart_s = r.num("restart_s", Bound::non_negative);
  return f;
}

FailureProfile load_failures(const std::string& spec) {
  if (spec == "none") {
    FailureProfile f;
    f.name = "none";
    return f;
  }
  ConfigText t = load_config_text("failures", spec);
  return parse_failures(t.text, t.file);
}

}  // namespace scaleplan::hw
