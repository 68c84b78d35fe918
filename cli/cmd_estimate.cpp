#include <iostream>

#include "cli/commands.hpp"
#include "cli/report.hpp"
#include "simulator/analytic/estimator.hpp"
#include "strategies/plan.hpp"

namespace scaleplan::cli {

namespace {
struct EstimateArgs {
  std::string model, cluster, plan;
  long long gpus = 0;
  long long seq = 0;
  bool json = false;
};
}  // namespace

void add_estimate(CLI::App& app, int& rc) {
  auto a = std::make_shared<EstimateArgs>();
  CLI::App* sub = app.add_subcommand("estimate", "memory per GPU and step time of one plan");
  sub->add_option("--model", a->model, "model preset or YAML file")->required();
  sub->add_option("--cluster", a->cluster, "cluster preset or YAML file")->required();
  sub->add_option("--gpus", a->gpus, "GPU count (dp is derived when the plan omits it)")->check(CLI::PositiveNumber);
  sub->add_option("--plan", a->plan, "plan: key=value,... or a plan preset / YAML file")->required();
  sub->add_option("--seq", a->seq, "sequence length (overrides the model's)")->check(CLI::PositiveNumber);
  sub->add_flag("--json", a->json, "print the contract JSON only");
  sub->callback([a, &rc] {
    rc = guarded([&] {
      model::ModelSpec m = model::load_model(a->model);
      if (a->seq > 0) m.seq = a->seq;
      hw::Cluster c = hw::load_cluster(a->cluster);
      strategies::Plan p = strategies::resolve_plan(strategies::load_plan(a->plan), m, c, a->gpus);
      analytic::Estimator est(m, c);
      const strategies::StepReport r = est.evaluate(p);
      if (a->json) std::cout << report_json(r).dump(2) << "\n";
      else std::cout << report_text(r, m.name + " on " + std::to_string(p.gpus()) + " x " + c.device.name + " (" + c.name + ")");
      return r.feasible ? 0 : 1;
    });
  });
}

}  // namespace scaleplan::cli
