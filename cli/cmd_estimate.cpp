#include <fmt/format.h>

#include <iostream>

#include "cli/commands.hpp"
#include "cli/options.hpp"
#include "cli/plot.hpp"
#include "cli/report.hpp"
#include "validation/mfu_ceiling.hpp"
#include "common/errors.hpp"
#include "simulator/analytic/estimator.hpp"
#include "strategies/plan.hpp"
#include "strategies/tensor_nd.hpp"

namespace scaleplan::cli {

namespace {
struct EstimateArgs {
  std::string model, cluster, plan, compare, stack, plot;
  long long gpus = 0;
  long long seq = 0;
  bool json = false;
};

// One row of `--compare tp_mode`: the plan with its tp_mode switched, or why that mode cannot run it.
struct CompareRow {
  strategies::TpMode mode = strategies::TpMode::d1;
  strategies::Plan plan;
  bool valid = false;
  std::string reason;
  strategies::StepReport report;
};

// 2.5d depth for a comparison: the user's tp_depth when the plan names one, else the smallest
// d >= 2 with tp = d q^2, q >= 2 (the most 2D-like Tesseract layout); 1 when none exists.
int depth_for(const strategies::Plan& p) {
  if (p.tp_mode == strategies::TpMode::d2_5 && p.tp_depth > 1) return p.tp_depth;
  for (int d = 2; d * 4 <= p.tp; ++d)
    if (p.tp % d == 0 && strategies::exact_root(p.tp / d, 2) >= 2) return d;
  return 1;
}

int run_compare(const EstimateArgs& a, const model::ModelSpec& m, const hw::Cluster& c) {
  if (a.compare != "tp_mode") throw UsageError("--compare must be tp_mode (got '" + a.compare + "')");
  const strategies::Plan base = strategies::load_plan(a.plan);
  analytic::Estimator est(m, c);
  std::vector<CompareRow> rows;
  for (strategies::TpMode mode : {strategies::TpMode::d1, strategies::TpMode::d2, strategies::TpMode::d2_5, strategies::TpMode::d3}) {
    CompareRow row;
    row.mode = mode;
    row.plan = base;
    row.plan.tp_mode = mode;
    row.plan.tp_depth = mode == strategies::TpMode::d2_5 ? depth_for(base) : 1;
    if (mode != strategies::TpMode::d1) row.plan.sp = false;  // Megatron SP is a 1d switch; grid modes distribute everything
    try {
      row.plan = strategies::resolve_plan(row.plan, m, c, a.gpus);
      row.report = est.evaluate(row.plan);
      row.valid = true;
    } catch (const PlanError& e) {
      row.reason = e.what();
    }
    rows.push_back(row);
  }
  bool any = false;
  for (const auto& r : rows) any = any || r.valid;
  if (!any) throw PlanError("tp_mode", "no tensor-parallel mode accepts this plan (1d: " + rows[0].reason + ")");

  if (a.json) {
    nlohmann::json out = {{"compare", "tp_mode"}, {"model", m.name}, {"cluster", c.name}, {"rows", nlohmann::json::array()}};
    for (const auto& r : rows) {
      nlohmann::json j = {{"tp_mode", strategies::name(r.mode)}, {"valid", r.valid}, {"reason", r.reason}};
      if (r.valid) {
        const auto l = strategies::tp_layout(r.plan.tp_mode, r.plan.tp, r.plan.tp_depth);
        j["tp_depth"] = r.plan.tp_depth;
        j["grid_q"] = l.q;
        j["report"] = report_json(r.report);
      }
      out["rows"].push_back(j);
    }
    std::cout << out.dump(2) << "\n";
    return 0;
  }
  const strategies::Plan& shown = rows[0].valid ? rows[0].plan : base;
  std::string s = fmt::format("{} on {} x {} ({}): tensor-parallel modes at tp={}, the rest of the plan fixed\n", m.name,
                              rows[0].valid ? std::to_string(shown.gpus()) : std::to_string(a.gpus), c.device.name, c.name, base.tp);
  s += fmt::format("{:<5} {:<14} {:>10} {:>10} {:>10} {:>10} | {:>11} {:>11} | {:>10} {:>10} {:>6} {}\n", "mode", "layout", "params",
                   "activ.", "buffers", "total", "tp bytes", "tp exposed", "step", "tokens/s", "MFU", "fits");
  for (const auto& r : rows) {
    if (!r.valid) {
      s += fmt::format("{:<5} n/a: {}\n", strategies::name(r.mode), r.reason);
      continue;
    }
    const auto l = strategies::tp_layout(r.plan.tp_mode, r.plan.tp, r.plan.tp_depth);
    const std::string layout = r.mode == strategies::TpMode::d1     ? fmt::format("P={}", r.plan.tp)
                               : r.mode == strategies::TpMode::d2   ? fmt::format("q={} ({}x{})", l.q, l.q, l.q)
                               : r.mode == strategies::TpMode::d2_5 ? fmt::format("d={} q={}", l.d, l.q)
                                                                    : fmt::format("q={} ({}^3)", l.q, l.q);
    const auto& rep = r.report;
    s += fmt::format("{:<5} {:<14} {:>10} {:>10} {:>10} {:>10} | {:>11} {:>11} | {:>10} {:>10.4g} {:>5.1f}% {}\n", strategies::name(r.mode),
                     layout, fmt_bytes(rep.memory.params), fmt_bytes(rep.memory.activations), fmt_bytes(rep.memory.buffers),
                     fmt_bytes(rep.memory.total()), fmt_bytes(rep.comm.tp), fmt_time(rep.tp_comm_exposed_s), fmt_time(rep.time.step_s),
                     rep.throughput.tokens_per_s, 100 * rep.throughput.mfu, rep.feasible ? "yes" : "NO");
  }
  s += "tp bytes: payload per GPU per step (contract); tp exposed: tensor/context collectives on the critical path per step.\n";
  std::cout << s;
  return 0;
}
}  // namespace

void add_estimate(CLI::App& app, int& rc) {
  auto a = std::make_shared<EstimateArgs>();
  CLI::App* sub = app.add_subcommand("estimate", "memory per GPU and step time of one plan");
  sub->add_option("--model", a->model, "model preset or YAML file")->required();
  sub->add_option("--cluster", a->cluster, "cluster preset or YAML file")->required();
  sub->add_option("--gpus", a->gpus, "GPU count (dp is derived when the plan omits it)")->check(gpus_range());
  sub->add_option("--plan", a->plan, "plan: key=value,... or a plan preset / YAML file")->required();
  sub->add_option("--seq", a->seq, "sequence length (overrides the model's)")->check(seq_range());
  add_stack_option(sub, a->stack);
  sub->add_option("--compare", a->compare, "side-by-side report over one plan dimension: tp_mode (1d, 2d, 2.5d, 3d)");
  sub->add_flag("--json", a->json, "print the contract JSON only");
  sub->add_option("--plot", a->plot, "also draw the memory and time breakdown to FILE.png or FILE.svg (needs the GUI part)");
  sub->callback([a, &rc] {
    rc = guarded([&] {
      if (!a->plot.empty()) check_plot_path(a->plot);
      model::ModelSpec m = model::load_model(a->model);
      if (a->seq > 0) m.seq = a->seq;
      hw::Cluster c = hw::load_cluster(a->cluster);
      apply_stack_option(c, a->stack);
      if (!a->compare.empty()) return run_compare(*a, m, c);
      strategies::Plan p = strategies::resolve_plan(strategies::load_plan(a->plan), m, c, a->gpus);
      analytic::Estimator est(m, c);
      const strategies::StepReport r = est.evaluate(p);
      const std::string title = m.name + " on " + std::to_string(p.gpus()) + " x " + c.device.name + " (" + c.name + ")";
      const std::string flag = validation::mfu_flag(c.device.name, r.throughput.mfu);  // issue 16.5
      if (a->json) {
        nlohmann::json j = report_json(r);
        if (!flag.empty()) j["mfu_flag"] = flag;
        std::cout << j.dump(2) << "\n";
      } else {
        std::cout << report_text(r, title);
        if (!flag.empty()) std::cout << "flag: " << flag << "\n";
      }
      if (!a->plot.empty()) render_plot(breakdown_chart(r, title + "\nplan " + p.to_string()), a->plot);
      return r.feasible ? 0 : 1;
    });
  });
}

}  // namespace scaleplan::cli
