// scaleplan search: every valid plan for (model, cluster, GPUs, global batch), ranked (issue 4).
#include <fmt/format.h>

#include <iostream>

#include "cli/commands.hpp"
#include "cli/export.hpp"
#include "cli/goodput_cli.hpp"
#include "cli/plot.hpp"
#include "cli/options.hpp"
#include "cli/report.hpp"
#include "common/errors.hpp"
#include "simulator/analytic/estimator.hpp"
#include "strategies/pipeline.hpp"
#include "simulator/search/search.hpp"
#include "validation/mfu_ceiling.hpp"

namespace scaleplan::cli {

namespace {

struct SearchArgs {
  ModelClusterArgs io;
  SearchTuningArgs tune;
  std::string gbs, objective = "throughput", tokens;
  long long gpus = 0;
  int top = 10;
  double price = 0;
  bool json = false, csv = false;
  std::string export_format, export_out;  // --export FORMAT [--out FILE]: the best plan for a framework
  GoodputArgs goodput;  // --objective time-to-train (issue 19)
  std::string plot;     // --plot FILE.png|.svg: the top plans and the Pareto front
};


std::string gib(double b) { return fmt::format("{:.1f}", b / (1024.0 * 1024.0 * 1024.0)); }

}  // namespace

void add_search(CLI::App& app, int& rc) {
  auto a = std::make_shared<SearchArgs>();
  CLI::App* sub = app.add_subcommand("search", "every valid plan for a GPU count and global batch, ranked, with the Pareto front");
  add_model_cluster_options(sub, a->io);
  sub->add_option("--gpus", a->gpus, "GPU count")->required()->check(gpus_range());
  sub->add_option("--gbs", a->gbs, "global batch (sequences), or 'auto' (large-batch model picks it)")->required();
  sub->add_option("--objective", a->objective,
                  "throughput | cost (USD per token) | time (to train --tokens) | time-to-train (--tokens, with failures)");
  sub->add_option("--top", a->top, "how many plans to print (default 10)");
  sub->add_option("--tokens", a->tokens, "tokens to train (3e11, 300B) for --objective time");
  sub->add_option("--price", a->price, "USD per GPU-hour (default: the cluster's) for --objective cost")->check(finite_non_negative());
  add_seq_option(sub, a->io);
  add_search_tuning_options(sub, a->tune);
  add_goodput_options(sub, a->goodput);
  sub->add_flag("--json", a->json, "print one JSON object only");
  sub->add_option("--plot", a->plot, "also draw the top plans and the Pareto front (memory per GPU vs tokens/s) to FILE.png or FILE.svg (needs the GUI part)");
  sub->add_flag("--csv", a->csv, "print the rows as CSV (the --json fields, dotted columns) instead of the table");
  sub->add_option("--export", a->export_format, "print the best plan as this framework's launch arguments / config instead of "
                                                "the table (megatron|nemo|deepspeed|torchtitan; see `scaleplan export`)");
  sub->add_option("--out", a->export_out, "with --export: write the export to this file");
  sub->callback([a, &rc] {
    rc = guarded([&] {
      if (!a->export_out.empty() && a->export_format.empty()) throw UsageError("--out needs --export FORMAT");
      if (a->json && a->csv) throw UsageError("--json and --csv each print the whole stdout: give one");
      if (!a->plot.empty()) check_plot_path(a->plot);
      if (!a->export_format.empty() && (a->json || a->csv)) throw UsageError("--export and --json each print the whole stdout: give one");
      LoadedInputs in = load_inputs(a->io);
      model::ModelSpec& m = in.model;
      hw::Cluster& c = in.cluster;
      const GoodputSetup gsetup = goodput_setup(a->goodput, c);
      const search::GbsArg g = search::parse_gbs(a->gbs);
      const double b_noise = b_noise_tokens(a->tune);
      analytic::Estimator est(m, c);
      search::SearchSpec spec;
      spec.gpus = a->gpus;
      spec.objective = search::parse_objective(a->objective);
      spec.tokens = a->tokens.empty() ? 0 : search::parse_quantity(a->tokens, "--tokens");
      spec.price_usd_per_gpu_hour = a->price;
      spec.failures = &gsetup.profile;
      spec.checkpoint = gsetup.options.checkpoint;
      spec.top_k = a->top;
      spec.threads = a->tune.threads;
      spec.gbs_auto = g.automatic;
      spec.batch = search::batch_model(m, search::parse_optimizer(a->tune.optimizer), b_noise);
      if (spec.gpus <= 0) throw UsageError("--gpus must be a positive GPU count");
      spec.gbs = g.automatic ? search::auto_gbs_candidates(m, c, spec.gpus, spec.batch) : std::vector<long long>{g.gbs};
      search::Progress progress(stderr_progress_line());
      spec.progress = &progress;
      spec.cancel = interrupt_flag();  // Ctrl-C stops cleanly (issue 17)
      const search::SearchResult r = search::run_search(est, spec);
      throw_if_interrupted("search");
      progress.finish();
      const double price = a->price > 0 ? a->price : c.price_usd_per_gpu_hour;
      if (!a->plot.empty() && r.ok()) {
        const double gib = 1024.0 * 1024.0 * 1024.0;
        nlohmann::json top = nlohmann::json::array(), front = nlohmann::json::array();
        for (const auto& x : r.top) top.push_back({x.metrics.memory.total() / gib, x.metrics.throughput.tokens_per_s});
        for (const auto& x : r.pareto) front.push_back({x.metrics.memory.total() / gib, x.metrics.throughput.tokens_per_s});
        render_plot({{"title", fmt::format("{} on {} x {} ({}): top {} plans and the Pareto front", m.name, spec.gpus, c.device.name, c.name, r.top.size())},
                     {"kind", "scatter"}, {"x_label", "memory per GPU, GiB"}, {"y_label", "tokens/s"},
                     {"series", {{{"name", "top plans"}, {"color", "#1f77b4"}, {"points", top}},
                                 {{"name", "Pareto front (speed vs memory)"}, {"color", "#d62728"}, {"points", front}}}}},
                    a->plot);
      }
      if (!a->export_format.empty()) {
        if (!r.ok()) {
          std::cerr << "error: no plan to export: " << r.reason << "\n";
          return 1;
        }
        std::cerr << "best: " << r.top.front().plan.to_string() << "\n";
        return write_export(a->export_format, ExportInput{m, c, r.top.front().plan}, a->export_out);
      }

      if (a->json || a->csv) {
        nlohmann::json j = {{"model", m.name},
                            {"cluster", c.name},
                            {"gpus", spec.gpus},
                            {"objective", search::name(spec.objective)},
                            {"evaluated", r.evaluated},
                            {"feasible", r.feasible}};
        if (g.automatic) {
          j["gbs"] = "auto";
          j["b_noise_tokens"] = spec.batch.b_noise_tokens;
          j["optimizer"] = search::name(search::parse_optimizer(a->tune.optimizer));
        } else {
          j["gbs"] = g.gbs;
        }
        j["plans"] = nlohmann::json::array();
        for (const auto& x : r.top) {
          nlohmann::json e = report_json(search::full_report(est, x));
          // Plans identical in cost and memory, one row (issue 16.4).
          e["equivalent_plans"] = nlohmann::json::array();
          for (const auto& q : x.equivalents) e["equivalent_plans"].push_back(q.to_string());
          const std::string flag = validation::mfu_flag(c.device.name, x.metrics.throughput.mfu);  // issue 16.5
          if (!flag.empty()) e["mfu_flag"] = flag;
          j["plans"].push_back(std::move(e));
        }
        j["pareto"] = nlohmann::json::array();
        for (const auto& x : r.pareto) j["pareto"].push_back(report_json(search::full_report(est, x)));
        if (!r.ok()) {
          j["reason"] = r.reason;
          if (r.has_smallest) j["smallest"] = report_json(search::full_report(est, r.smallest));
        }
        if (a->csv) std::cout << csv_table(j["plans"]);
        else std::cout << j.dump(2) << "\n";
        return r.ok() ? 0 : 1;
      }

      std::string out = fmt::format("{} on {} x {} ({}), gbs {}, objective {}\n", m.name, spec.gpus, c.device.name, c.name,
                                    g.automatic ? "auto" : std::to_string(g.gbs), search::name(spec.objective));
      if (g.automatic)
        out += fmt::format("large-batch model: B_noise {:.3g} tokens ({}), ranked by useful tokens/s = tokens/s / (1 + B/B_noise)\n",
                           spec.batch.b_noise_tokens, search::b_noise_is_default(m, b_noise) ? "default" : "model");
      out += fmt::format("evaluated {} plans, {} fit in memory\n", r.evaluated, r.feasible);
      if (!r.ok()) {
        out += "infeasible: " + r.reason + "\n";
        std::cout << out;
        return 1;
      }
      const bool days_col = spec.objective == search::Objective::time || spec.objective == search::Objective::time_to_train;
      std::string obj_col = spec.objective == search::Objective::cost ? "USD/Mtok" : days_col ? "days" : "";
      out += fmt::format("\ntop {} by {}{}\n", r.top.size(), search::name(spec.objective),
                         days_col && spec.tokens <= 0 ? " (no --tokens: ranked as throughput)"
                         : spec.objective == search::Objective::time_to_train
                             ? fmt::format(" (wall-clock days with failures: profile {}, {} checkpoints)", gsetup.profile.name,
                                           search::name(spec.checkpoint))
                             : "");
      // step = compute + exp.comm + bubble + offload + host (issue 16.4: the columns add up).
      out += fmt::format("{:>3} {:>9} {:>6} {:>9} {:>9} {:>9} {:>9} {:>9} {:>7} | {:>6} {:>6} {:>6} {:>6} {:>6} {:>6} GiB |{}{} plan\n", "#",
                         "tokens/s", "MFU", "step s", "compute", "exp.comm", "bubble", "offload", "host", "total", "param", "grad", "optim",
                         "activ", "buffer",
                         g.automatic ? fmt::format(" {:>6}", "gbs") : "", obj_col.empty() ? "" : fmt::format(" {:>9}", obj_col));
      int i = 0;
      for (const auto& x : r.top) {
        const auto& t = x.metrics.time;
        const auto& mm = x.metrics.memory;
        std::string obj;
        if (spec.objective == search::Objective::cost) obj = fmt::format(" {:>9.3f}", 1e6 * search::objective_value(spec, m, price, x));
        else if (days_col && spec.tokens > 0)
          obj = fmt::format(" {:>9.2f}", search::objective_value(spec, m, price, x) / 86400.0);
        else if (days_col) obj = fmt::format(" {:>9}", "-");
        out += fmt::format("{:>3} {:>9.4g} {:>5.1f}% {:>9.3f} {:>9.3f} {:>9.3f} {:>9.3f} {:>9.3f} {:>7.3f} | {:>6} {:>6} {:>6} {:>6} {:>6} {:>6}     |{}{} {}{}\n",
                           ++i, x.metrics.throughput.tokens_per_s, 100 * x.metrics.throughput.mfu, t.step_s, t.compute_s,
                           t.comm_exposed_s, t.bubble_s, t.offload_exposed_s, t.host_s, gib(mm.total()), gib(mm.params), gib(mm.grads), gib(mm.optimizer),
                           gib(mm.activations), gib(mm.buffers), g.automatic ? fmt::format(" {:>6}", x.plan.gbs) : "", obj,
                           short_plan(x.plan, m.layers),
                           x.equivalents.empty() ? "" : fmt::format(" (+{} same-cost variant{}, --json lists them)", x.equivalents.size(),
                                                                      x.equivalents.size() > 1 ? "s" : ""));
      }
      {
        int k = 0, flagged = 0;
        std::string first;
        for (const auto& x : r.top) {
          ++k;
          const std::string flag = validation::mfu_flag(c.device.name, x.metrics.throughput.mfu);
          if (!flag.empty() && flagged++ == 0) first = fmt::format("#{}: {}", k, flag);
        }
        if (flagged > 0) out += fmt::format("flag: {} plan(s) above the best published MFU on {} ({}; validation/mfu_ceilings.yaml)\n", flagged,
                                            c.device.name, first);
      }
      out += "best: " + r.top.front().plan.to_string() + "\n";
      if (r.top.front().plan.uneven_split())
        out += "  (pp does not divide the layers: uneven stages as Llama 3, layers=first/middle/last stage; docs/schedules.md)\n";
      // The front can hold dozens of points; print at most max(10, top) of them, evenly spaced
      // from the fastest to the most headroom (--json lists all).
      const size_t n_front = r.pareto.size(), shown = std::min(n_front, static_cast<size_t>(std::max(10, spec.top_k)));
      out += fmt::format("\nPareto front: {}tokens/s vs memory headroom ({} plans{})\n", g.automatic ? "useful " : "", n_front,
                         shown < n_front ? fmt::format(", {} shown; --json lists all", shown) : "");
      out += fmt::format("{:>11} {:>13} {:>11}  plan\n", "tokens/s", "headroom GiB", "total GiB");
      for (size_t k = 0; k < shown; ++k) {
        const size_t idx = shown <= 1 ? 0 : k * (n_front - 1) / (shown - 1);
        const auto& x = r.pareto[idx];
        out += fmt::format("{:>11.4g} {:>13} {:>11}  {}{}\n", x.useful_tokens_per_s, gib(x.headroom()), gib(x.metrics.memory.total()),
                           short_plan(x.plan, m.layers), g.automatic ? fmt::format(" gbs={}", x.plan.gbs) : "");
      }
      std::cout << out;
      return 0;
    });
  });
}

}  // namespace scaleplan::cli
