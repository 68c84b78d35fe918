#include "simulator/search/train_goodput.hpp"

#include "common/errors.hpp"

namespace scaleplan::search {

hw::FailureProfile resolve_failures(const GoodputOptions& o, const hw::Cluster& c) {
  if (!o.failures.empty()) return hw::load_failures(o.failures);
  return hw::load_failures(c.failures.empty() ? hw::kDefaultFailureProfile : c.failures);
}

TrainGoodput train_goodput(const hw::Cluster& c, const hw::FailureProfile& f, const GoodputOptions& o, const Candidate& x,
                           long long gpus, double failure_free_s, double price_usd_per_gpu_hour, double power_W_per_gpu) {
  if (o.interval_s < 0) throw UsageError("--checkpoint-interval must be >= 0 seconds (0: Daly's optimum)");
  TrainGoodput t;
  t.profile = f.name;
  t.mode = o.checkpoint;
  const GoodputModel m = goodput_model(f, c, gpus, o.checkpoint);
  t.g = goodput(m, failure_free_s, checkpoint_bytes(x.plan, x.metrics.memory), x.metrics.time.step_s, o.interval_s);
  const double n = static_cast<double>(gpus);
  t.hours = t.g.wall_s / 3600.0;
  t.days = t.hours / 24.0;
  t.gpu_hours = n * t.hours;                             // GPUs held for the whole wall time
  t.usd = t.gpu_hours * price_usd_per_gpu_hour;          // rental: price x GPU-hours
  t.energy_kwh = power_W_per_gpu * n * t.hours / 1000.0;  // as the failure-free figure: held GPUs draw their node share
  return t;
}

CostShares cost_shares(const Candidate& x, double useful_over_processed, double goodput_fraction) {
  CostShares s;
  const auto& t = x.metrics.time;
  const double g = goodput_fraction;
  const double step = t.step_s > 0 ? t.step_s : 1.0;
  s.batch = g * (1.0 - useful_over_processed);
  s.communication = g * t.comm_exposed_s / step;
  s.bubble = g * t.bubble_s / step;
  s.goodput = 1.0 - g;
  // Registry-free: four named terms, the largest wins (ties: the first listed).
  const std::pair<const char*, double> terms[] = {
      {"batch", s.batch}, {"communication", s.communication}, {"bubble", s.bubble}, {"goodput", s.goodput}};
  double best = 0;
  for (const auto& [name, v] : terms)
    if (v > best) {
      best = v;
      s.largest = name;
    }
  return s;
}

}  // namespace scaleplan::search
