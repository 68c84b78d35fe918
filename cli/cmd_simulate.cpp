// scaleplan simulate: one training step on the SimGrid discrete-event simulator (issue 7).
#include <fstream>
#include <iostream>

#include "cli/commands.hpp"
#include "cli/options.hpp"
#include "cli/report.hpp"
#include "common/errors.hpp"
#include "cli/options.hpp"
#include "simulator/analytic/estimator.hpp"
#include "strategies/plan.hpp"
#include "strategies/stack_caps.hpp"
#ifdef SCALEPLAN_HAVE_DES
#include "simulator/des/simulate.hpp"
#endif

namespace scaleplan::cli {

namespace {
struct SimulateArgs {
  std::string model, cluster, plan, trace, stack;
  long long gpus = 0;
  bool json = false;
  bool no_reduce = false;
};

#ifdef SCALEPLAN_HAVE_DES
nlohmann::json links_json(const std::vector<des::LinkTier>& links) {
  nlohmann::json a = nlohmann::json::array();
  for (const auto& l : links)
    a.push_back({{"tier", l.tier}, {"links", l.links}, {"capacity_Bps", l.capacity_Bps}, {"bytes", l.bytes},
                 {"mean_utilization", l.mean_util}, {"max_utilization", l.max_util}, {"busiest", l.busiest}});
  return a;
}

int run_simulate(const SimulateArgs& a) {
  model::ModelSpec m = model::load_model(a.model);
  hw::Cluster c = hw::load_cluster(a.cluster);
  apply_stack_option(c, a.stack);
  strategies::Plan p = strategies::resolve_plan(strategies::load_plan(a.plan), m, c, a.gpus);
  // A plan the stack cannot run is infeasible before any simulation: the analytic report says why.
  if (!strategies::stack_refusal(c.sw, p).empty()) {
    const strategies::StepReport r = analytic::Estimator(m, c).evaluate(p);
    if (a.json) std::cout << report_json(r).dump(2) << "\n";
    else std::cout << report_text(r, m.name + " on " + std::to_string(p.gpus()) + " x " + c.device.name + " (" + c.name + ")");
    return 1;
  }
  des::SimOptions o;
  o.reduce = !a.no_reduce;
  o.timeline = !a.trace.empty();
  // Forked child (the default): a SimGrid abort becomes a one-line error instead of a crash.
  const des::SimResult r = des::simulate(m, c, p, o);
  if (!a.trace.empty()) {
    std::ofstream f(a.trace);
    if (!f) throw UsageError("cannot write the trace file '" + a.trace + "'");
    f << des::chrome_trace(r.timeline);
  }
  if (a.json) {
    nlohmann::json j = report_json(r.report);
    j["simulation"] = {{"analytic_step_s", r.analytic_step_s},
                       {"total_ranks", r.total_ranks},
                       {"simulated_ranks", r.simulated_ranks},
                       {"reduction", r.reduction},
                       {"flows", r.flows},
                       {"wall_s", r.wall_s},
                       {"peak_rss_bytes", r.peak_rss_bytes}};
    j["links"] = links_json(r.links);
    std::cout << j.dump(2) << "\n";
  } else {
    std::cout << report_text(r.report, m.name + " on " + std::to_string(p.gpus()) + " x " + c.device.name + " (" + c.name +
                                           "), simulated");
    std::printf("analytic estimate      %s (simulated / analytic = %.3f)\n", fmt_time(r.analytic_step_s).c_str(),
                r.report.time.step_s / r.analytic_step_s);
    std::printf("simulated ranks        %lld of %lld (symmetry reduction x%d), %lld flows, %.2f s wall, %.0f MiB peak\n",
                r.simulated_ranks, r.total_ranks, r.reduction, r.flows, r.wall_s, r.peak_rss_bytes / (1024.0 * 1024.0));
    std::printf("link utilization over the step (per directed link):\n");
    std::printf("  %-11s %7s %12s %9s %9s  %s\n", "tier", "links", "capacity", "mean", "max", "busiest");
    for (const auto& l : r.links)
      std::printf("  %-11s %7d %9.1f GB/s %8.1f%% %8.1f%%  %s\n", l.tier.c_str(), l.links, l.capacity_Bps / 1e9, 100 * l.mean_util,
                  100 * l.max_util, l.busiest.c_str());
    if (!a.trace.empty()) std::printf("trace                  %s (open in ui.perfetto.dev)\n", a.trace.c_str());
  }
  return r.report.feasible ? 0 : 1;
}
#endif
}  // namespace

void add_simulate(CLI::App& app, int& rc) {
  auto a = std::make_shared<SimulateArgs>();
  CLI::App* sub = app.add_subcommand("simulate", "one training step on the SimGrid discrete-event simulator (contention, timeline)");
  sub->add_option("--model", a->model, "model preset or YAML file")->required();
  sub->add_option("--cluster", a->cluster, "cluster preset or YAML file")->required();
  sub->add_option("--gpus", a->gpus, "GPU count (dp is derived when the plan omits it)")->check(gpus_range());
  sub->add_option("--plan", a->plan, "plan: key=value,... or a plan preset / YAML file")->required();
  add_stack_option(sub, a->stack);
  sub->add_option("--trace", a->trace, "write a Chrome trace / Perfetto JSON timeline to this file");
  sub->add_flag("--json", a->json, "print the contract JSON (plus simulation and links) only");
  sub->add_flag("--no-reduce", a->no_reduce, "simulate every rank (no symmetry reduction)");
  sub->callback([a, &rc] {
#ifdef SCALEPLAN_HAVE_DES
    rc = guarded([&] { return run_simulate(*a); });
#else
    std::cerr << "error: 'simulate' needs SimGrid: rebuild with -DSCALEPLAN_WITH_SIMGRID=ON (libsimgrid-dev 3.32)\n";
    rc = 2;
#endif
  });
}

}  // namespace scaleplan::cli
