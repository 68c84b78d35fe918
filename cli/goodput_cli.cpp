#include "cli/goodput_cli.hpp"

#include <fmt/format.h>

#include "cli/report.hpp"
#include "common/errors.hpp"

namespace scaleplan::cli {

void add_goodput_options(CLI::App* sub, GoodputArgs& a) {
  sub->add_option("--failures", a.failures, "failure profile (configs/failures) or YAML file, or 'none' (default: the cluster's)");
  sub->add_option("--checkpoint", a.checkpoint, "blocking | async (default: blocking)");
  sub->add_option("--checkpoint-interval", a.interval_s, "seconds of training between checkpoints (default: Daly's optimum)");
}

search::GoodputOptions goodput_options(const GoodputArgs& a) {
  search::GoodputOptions o;
  o.failures = a.failures;
  o.checkpoint = search::parse_checkpoint_mode(a.checkpoint);
  if (a.interval_s < 0) throw UsageError("--checkpoint-interval must be >= 0 seconds (0: Daly's optimum)");
  o.interval_s = a.interval_s;
  return o;
}

GoodputSetup goodput_setup(const GoodputArgs& a, const hw::Cluster& c) {
  GoodputSetup s;
  s.options = goodput_options(a);
  s.profile = search::resolve_failures(s.options, c);
  return s;
}

search::TrainGoodput run_goodput(const GoodputSetup& s, const hw::Cluster& c, const search::Candidate& x, long long gpus,
                                 double failure_free_s, double price_usd_per_gpu_hour, double power_W_per_gpu) {
  return search::train_goodput(c, s.profile, s.options, x, gpus, failure_free_s, price_usd_per_gpu_hour, power_W_per_gpu);
}

void add_goodput_json(nlohmann::json& j, const search::TrainGoodput& t) {
  j["goodput"] = goodput_json(t);
  j["goodput_detail"] = goodput_detail_json(t);
}

nlohmann::json goodput_json(const search::TrainGoodput& t) {
  const search::Goodput& g = t.g;
  // A run that never finishes (restarts outpace the work) has no finite days: null.
  nlohmann::json days = g.finishes ? nlohmann::json(t.days) : nlohmann::json(nullptr);
  return {{"fraction", g.fraction},         {"days", days},          {"interruptions", g.interruptions},
          {"checkpoint_s", g.checkpoint_s}, {"lost_s", g.lost_s},    {"restart_s", g.restart_s},
          {"interval_s", g.interval_s}};
}

nlohmann::json goodput_detail_json(const search::TrainGoodput& t) {
  const search::Goodput& g = t.g;
  return {{"profile", t.profile},
          {"checkpoint_mode", search::name(t.mode)},
          {"finishes", g.finishes},
          {"mtbf_s", g.mtbf_s},
          {"planned_interruptions", g.planned_interruptions},
          {"checkpoint_bytes", g.checkpoint_bytes},
          {"checkpoint_write_s", g.write_s},
          {"checkpoint_read_s", g.read_s},
          {"checkpoint_blocking_s", g.blocking_s},
          {"young_interval_s", g.young_interval_s},
          {"wall_s", g.wall_s},
          {"hours", t.hours},
          {"gpu_hours", t.gpu_hours},
          {"usd", t.usd},
          {"energy_kwh", t.energy_kwh}};
}

std::string cost_text(double usd, double price_usd_per_gpu_hour) {
  if (price_usd_per_gpu_hour <= 0) return "unknown: the cluster sets no price_usd_per_gpu_hour (pass --price USD)";
  return fmt::format("${:.4g} at ${:.2f} per GPU-hour", usd, price_usd_per_gpu_hour);
}

std::string goodput_text(const search::TrainGoodput& t, double failure_free_days, double price_usd_per_gpu_hour) {
  const search::Goodput& g = t.g;
  std::string out = fmt::format("with failures (profile {}, {} checkpoints):\n", t.profile, search::name(t.mode));
  if (g.mtbf_s <= 0 && g.planned_interruptions <= 0) return out + "  no failures modelled: the failure-free figures above stand\n";
  if (!g.finishes) return out + "  the run never finishes: restarts and lost work outpace the training (MTBF " + fmt_time(g.mtbf_s) + ")\n";
  out += fmt::format("  goodput      {:.1f}% of the wall time trains\n", 100 * g.fraction);
  out += fmt::format("  time         {:.2f} days (+{:.2f} over failure-free)\n", t.days, t.days - failure_free_days);
  out += fmt::format("  GPU-hours    {:.4g}\n", t.gpu_hours);
  out += "  cost         " + cost_text(t.usd, price_usd_per_gpu_hour) + "\n";
  out += fmt::format("  energy       {:.4g} kWh\n", t.energy_kwh);
  out += fmt::format("  interruptions {:.0f} unexpected (MTBF {:.2f} h) + {:.0f} planned over the run\n", g.interruptions, g.mtbf_s / 3600,
                     g.planned_interruptions);
  out += fmt::format("  checkpoint   {} every {} of training (Young: {}), write {}, blocks {}, reload {}\n", fmt_bytes(g.checkpoint_bytes),
                     fmt_time(g.interval_s), fmt_time(g.young_interval_s), fmt_time(g.write_s), fmt_time(g.blocking_s), fmt_time(g.read_s));
  out += fmt::format("  lost time    checkpointing {:.2f} d, lost work {:.2f} d, restarts {:.2f} d\n", g.checkpoint_s / 86400, g.lost_s / 86400,
                     g.restart_s / 86400);
  return out;
}

}  // namespace scaleplan::cli
