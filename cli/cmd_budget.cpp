// scaleplan budget: days, GPU-hours, dollars and energy to train on T tokens, with the plan (issue 4).
#include <fmt/format.h>

#include <iostream>

#include "cli/commands.hpp"
#include "cli/goodput_cli.hpp"
#include "cli/plot.hpp"
#include "cli/options.hpp"
#include "cli/report.hpp"
#include "common/errors.hpp"
#include "simulator/analytic/estimator.hpp"
#include "simulator/search/scale.hpp"

namespace scaleplan::cli {

namespace {
struct BudgetArgs {
  ModelClusterArgs io;
  SearchTuningArgs tune;
  std::string tokens, gbs = "auto";
  long long gpus = 0;
  double price = 0;
  bool json = false, csv = false;
  std::string plot;  // --plot FILE.png|.svg: the wall-clock days, split
  GoodputArgs goodput;  // issue 19
};
}  // namespace

void add_budget(CLI::App& app, int& rc) {
  auto a = std::make_shared<BudgetArgs>();
  CLI::App* sub = app.add_subcommand("budget", "days, GPU-hours, dollars and energy to train on T tokens");
  add_model_cluster_options(sub, a->io);
  sub->add_option("--gpus", a->gpus, "GPU count")->required()->check(gpus_range());
  sub->add_option("--tokens", a->tokens, "tokens to train (3e11, 300B, 15T)")->required();
  sub->add_option("--price", a->price, "USD per GPU-hour (default: the cluster's)")->check(finite_non_negative());
  sub->add_option("--gbs", a->gbs, "global batch (sequences) or 'auto' (default: auto)");
  add_seq_option(sub, a->io);
  add_search_tuning_options(sub, a->tune);
  add_goodput_options(sub, a->goodput);
  sub->add_flag("--json", a->json, "print one JSON object only");
  sub->add_option("--plot", a->plot, "also draw the wall-clock days (training, checkpoints, lost work, restarts) to FILE.png or FILE.svg (needs the GUI part)");
  sub->add_flag("--csv", a->csv, "print the rows as CSV (the --json fields, dotted columns) instead of the table");
  sub->callback([a, &rc] {
    rc = guarded([&] {
      if (a->json && a->csv) throw UsageError("--json and --csv each print the whole stdout: give one");
      if (!a->plot.empty()) check_plot_path(a->plot);
      LoadedInputs in = load_inputs(a->io);
      const GoodputSetup gsetup = goodput_setup(a->goodput, in.cluster);
      model::ModelSpec& m = in.model;
      hw::Cluster& c = in.cluster;
      const search::GbsArg g = search::parse_gbs(a->gbs);
      const double tokens = search::parse_quantity(a->tokens, "--tokens");
      const double b_noise = b_noise_tokens(a->tune);
      const search::Optimizer opt = search::parse_optimizer(a->tune.optimizer);
      if (a->price < 0) throw UsageError("--price must be >= 0");
      analytic::Estimator est(m, c);
      search::BatchChoice b;
      b.automatic = g.automatic;
      b.gbs = g.gbs;
      b.model = search::batch_model(m, opt, b_noise);
      search::SearchSpec base;
      base.objective = search::Objective::time;
      base.top_k = 1;
      base.threads = a->tune.threads;
      base.progress_label = "budget";
      search::Progress progress(stderr_progress_line());
      base.progress = &progress;
      base.cancel = interrupt_flag();  // Ctrl-C stops cleanly (issue 17)
      const search::Budget r = search::run_budget(est, base, b, a->gpus, tokens, a->price);
      throw_if_interrupted("budget");
      progress.finish();
      const search::TrainGoodput gp = r.at.ok() ? run_goodput(gsetup, c, r.at.best(), r.at.used, r.train.seconds, r.price_usd_per_gpu_hour,
                                                              r.power_W_per_gpu)
                                                : search::TrainGoodput{};
      if (!a->plot.empty() && r.at.ok()) {
        // One stacked bar: failure-free training days, then what failures add (docs/goodput.md).
        const double d = 86400.0;
        nlohmann::json series = nlohmann::json::array();
        const auto add = [&](const char* name, const char* color, double days) { series.push_back({{"name", name}, {"color", color}, {"values", {days}}}); };
        add("training (failure-free)", "#1f77b4", r.train.seconds / d);
        add("checkpoints", "#ff7f0e", gp.g.checkpoint_s / d);
        add("lost work", "#d62728", gp.g.lost_s / d);
        add("restarts", "#7f7f7f", gp.g.restart_s / d);
        render_plot({{"title", m.name + " on " + std::to_string(r.at.used) + " x " + c.device.name + " (" + c.name + ")\n" + r.at.best().plan.to_string()},
                     {"kind", "bar"}, {"x_label", ""}, {"y_label", "days"},
                     {"categories", {fmt::format("{:.1f} days, goodput {:.1f}%", gp.days, 100 * gp.g.fraction)}}, {"series", series}},
                    a->plot);
      }

      if (a->json || a->csv) {
        nlohmann::json j = {{"model", m.name},
                            {"cluster", c.name},
                            {"gpus", a->gpus},
                            {"gpus_used", r.at.used},
                            {"note", r.at.note},
                            {"tokens", tokens},
                            {"optimizer", search::name(opt)},
                            {"b_noise_tokens", b.model.b_noise_tokens},
                            {"feasible", r.at.ok()}};
        if (g.automatic) j["gbs_mode"] = "auto";
        else j["gbs_mode"] = "fixed";
        if (r.at.ok()) {
          const auto& x = r.at.best();
          j["gbs"] = x.plan.gbs;
          j["steps"] = r.train.steps;
          j["tokens_processed"] = r.train.tokens_processed;
          j["useful_tokens"] = r.train.useful_tokens;
          j["tokens_per_s"] = x.metrics.throughput.tokens_per_s;
          j["seconds"] = r.train.seconds;
          j["hours"] = r.hours;
          j["days"] = r.days;
          j["gpu_hours"] = r.gpu_hours;
          j["price_usd_per_gpu_hour"] = r.price_usd_per_gpu_hour;
          j["usd"] = r.usd;
          j["power_W_per_gpu"] = r.power_W_per_gpu;
          j["energy_kwh"] = r.energy_kwh;
          j["estimate"] = report_json(search::full_report(est, x));
          add_goodput_json(j, gp);
        } else {
          j["reason"] = r.at.search.reason;
        }
        if (a->csv) std::cout << csv_table(j);
        else std::cout << j.dump(2) << "\n";
        return r.at.ok() ? 0 : 1;
      }

      std::string out = fmt::format("{} on {} x {} ({}): {:.4g} tokens\n", m.name, a->gpus, c.device.name, c.name, tokens);
      if (!r.at.ok()) {
        out += "infeasible: " + r.at.search.reason + "\n";
        std::cout << out;
        return 1;
      }
      if (!r.at.note.empty()) out += "note: " + r.at.note + "\n";
      const auto& x = r.at.best();
      const double B = static_cast<double>(x.plan.gbs) * static_cast<double>(m.seq);
      out += "plan: " + x.plan.to_string() + "\n";
      out += fmt::format("  global batch      {} sequences ({:.3g} tokens){}\n", x.plan.gbs, B,
                         g.automatic ? fmt::format(", chosen against B_noise {:.3g} tokens{} ({})", b.model.b_noise_tokens,
                                                   search::b_noise_is_default(m, b_noise) ? " (default)" : "", search::name(opt))
                                     : "");
      out += fmt::format("  optimizer steps   {:.4g}\n", r.train.steps);
      out += fmt::format("  tokens processed  {:.4g} (the tokens asked for; the batch sets the step count)\n", r.train.tokens_processed);
      if (g.automatic)  // issue 16.4: say that --gbs auto chose the batch, and what it costs in sample efficiency
        out += fmt::format("  note: --gbs auto chose gbs {} ({:.3g} tokens per step); at B_noise {:.3g} tokens they count as\n"
                           "        {:.3g} tokens of small-batch training (E_min = E / (1 + B/B_noise), McCandlish et al. 2018)\n",
                           x.plan.gbs, B, b.model.b_noise_tokens, r.train.useful_tokens);
      out += fmt::format("  throughput        {:.4g} tokens/s, step {}, MFU {:.1f}%\n", x.metrics.throughput.tokens_per_s,
                         fmt_time(x.metrics.time.step_s), 100 * x.metrics.throughput.mfu);
      out += fmt::format("  memory per GPU    {} of {}\n", fmt_bytes(x.metrics.memory.total()), fmt_bytes(x.metrics.memory.capacity));
      out += fmt::format("time         {:.2f} days ({:.1f} hours) on {} GPUs\n", r.days, r.hours, r.at.used);
      out += fmt::format("GPU-hours    {:.4g}\n", r.gpu_hours);
      out += "cost         " + cost_text(r.usd, r.price_usd_per_gpu_hour) + "\n";
      out += fmt::format("energy       {:.4g} kWh at {:.0f} W per GPU (node power share, no PUE)\n", r.energy_kwh, r.power_W_per_gpu);
      out += goodput_text(gp, r.days, r.price_usd_per_gpu_hour);
      std::cout << out;
      return 0;
    });
  });
}

}  // namespace scaleplan::cli
