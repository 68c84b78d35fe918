// scaleplan scale: the best plan at each GPU count, speedup and scaling efficiency (issue 4).
#include <fmt/format.h>

#include <algorithm>
#include <iostream>

#include "cli/commands.hpp"
#include "cli/goodput_cli.hpp"
#include "cli/plot.hpp"
#include "cli/options.hpp"
#include "cli/report.hpp"
#include "common/errors.hpp"
#include "simulator/analytic/estimator.hpp"
#include "strategies/pipeline.hpp"
#include "simulator/search/scale.hpp"

namespace scaleplan::cli {

namespace {

struct ScaleArgs {
  ModelClusterArgs io;
  SearchTuningArgs tune;
  std::string gpus, gbs, tokens, plot;
  bool json = false, csv = false;
  GoodputArgs goodput;  // issue 19
};

// Per count (issue 19): the run with failures, the costliest term, and efficiency with goodput.
struct PointGoodput {
  search::TrainGoodput t;
  search::CostShares shares;
  double efficiency = 0;  // speedup with failures / GPU ratio, against the smallest count
};

// With a fixed batch the tokens are the user's (processed) tokens: no time goes to extra tokens, so the
// batch term is 0; with --gbs auto the tokens beyond E_min are the batch's cost.
std::vector<PointGoodput> scale_goodput(const GoodputSetup& gs, const hw::Cluster& c, const search::ScaleResult& r, bool auto_batch) {
  std::vector<PointGoodput> out(r.points.size());
  for (size_t i = 0; i < r.points.size(); ++i) {
    const search::ScalePoint& p = r.points[i];
    if (!p.at.ok()) continue;
    out[i].t = run_goodput(gs, c, p.at.best(), p.at.used, p.train.seconds, c.price_usd_per_gpu_hour, c.power_W_per_gpu);
    const double useful_share = auto_batch ? p.train.useful_tokens / p.train.tokens_processed : 1.0;
    out[i].shares = search::cost_shares(p.at.best(), useful_share, out[i].t.g.fraction);
  }
  if (r.base_index < 0) return out;
  const size_t b = static_cast<size_t>(r.base_index);
  const double base = r.points[b].at.best().useful_tokens_per_s * out[b].t.g.fraction;
  for (size_t i = 0; i < r.points.size(); ++i) {
    if (!r.points[i].at.ok() || base <= 0) continue;
    const double speedup = r.points[i].at.best().useful_tokens_per_s * out[i].t.g.fraction / base;
    out[i].efficiency = speedup / (static_cast<double>(r.points[i].at.used) / static_cast<double>(r.points[b].at.used));
  }
  return out;
}

// --plot: scaling efficiency and MFU (both in percent) over the GPUs used, on a log axis.
nlohmann::json scale_chart(const search::ScaleResult& r, const std::string& title) {
  nlohmann::json eff = nlohmann::json::array(), mfu = nlohmann::json::array();
  for (const auto& p : r.points) {
    if (!p.at.ok()) continue;
    eff.push_back({static_cast<double>(p.at.used), 100 * p.efficiency});
    mfu.push_back({static_cast<double>(p.at.used), 100 * p.at.best().metrics.throughput.mfu});
  }
  return {{"title", title}, {"kind", "line"}, {"x_label", "GPUs"}, {"y_label", "%"}, {"x_log", true},
          {"series", {{{"name", "scaling efficiency"}, {"color", "#1f77b4"}, {"points", eff}}, {{"name", "MFU"}, {"color", "#ff7f0e"}, {"points", mfu}}}}};
}


}  // namespace

void add_scale(CLI::App& app, int& rc) {
  auto a = std::make_shared<ScaleArgs>();
  CLI::App* sub = app.add_subcommand("scale", "best plan, throughput, speedup and scaling efficiency at each GPU count");
  add_model_cluster_options(sub, a->io);
  sub->add_option("--gpus", a->gpus, "GPU counts, comma-separated (200,400,...,20000)")->required();
  sub->add_option("--gbs", a->gbs, "global batch (sequences), or 'auto' (chosen per count by the large-batch model)")->required();
  sub->add_option("--tokens", a->tokens, "tokens to train (3e11, 300B); default 20 per parameter (Chinchilla)");
  add_seq_option(sub, a->io);
  add_search_tuning_options(sub, a->tune);
  add_goodput_options(sub, a->goodput);
  sub->add_flag("--json", a->json, "print one JSON object only");
  sub->add_flag("--csv", a->csv, "print the rows as CSV (the --json fields, dotted columns) instead of the table");
  sub->add_option("--plot", a->plot, "also draw scaling efficiency and MFU over the GPU counts to FILE.png or FILE.svg (needs the GUI part)");
  sub->callback([a, &rc] {
    rc = guarded([&] {
      if (!a->plot.empty()) check_plot_path(a->plot);
      if (a->json && a->csv) throw UsageError("--json and --csv each print the whole stdout: give one");
      LoadedInputs in = load_inputs(a->io);
      model::ModelSpec& m = in.model;
      hw::Cluster& c = in.cluster;
      const GoodputSetup gsetup = goodput_setup(a->goodput, c);
      const std::vector<long long> counts = search::parse_counts(a->gpus, "--gpus");
      const search::GbsArg g = search::parse_gbs(a->gbs);
      const double b_noise = b_noise_tokens(a->tune);
      const search::Optimizer opt = search::parse_optimizer(a->tune.optimizer);
      const double tokens = a->tokens.empty() ? 0 : search::parse_quantity(a->tokens, "--tokens");
      analytic::Estimator est(m, c);
      search::BatchChoice b;
      b.automatic = g.automatic;
      b.gbs = g.gbs;
      b.model = search::batch_model(m, opt, b_noise);
      search::SearchSpec base;
      base.objective = search::Objective::time;
      base.top_k = 1;
      base.threads = a->tune.threads;
      base.progress_label = "scale";
      search::Progress progress(stderr_progress_line());
      base.progress = &progress;
      base.cancel = interrupt_flag();  // Ctrl-C stops cleanly (issue 17)
      const search::ScaleResult r = search::run_scale(est, base, b, counts, tokens);
      throw_if_interrupted("scale");
      if (!a->plot.empty()) render_plot(scale_chart(r, m.name + " on " + c.name + ": scaling"), a->plot);
      progress.finish();
      const std::vector<PointGoodput> gp = scale_goodput(gsetup, c, r, g.automatic);
      bool all_ok = true;
      for (const auto& p : r.points) all_ok = all_ok && p.at.ok();

      if (a->json || a->csv) {
        nlohmann::json j = {{"model", m.name},
                            {"cluster", c.name},
                            {"optimizer", search::name(opt)},
                            {"b_noise_tokens", b.model.b_noise_tokens},
                            {"tokens", r.tokens},
                            {"tokens_default", r.tokens_default}};
        if (g.automatic) j["gbs"] = "auto";
        else j["gbs"] = g.gbs;
        j["failures"] = gsetup.profile.name;
        j["points"] = nlohmann::json::array();
        for (size_t pi = 0; pi < r.points.size(); ++pi) {
          const auto& p = r.points[pi];
          nlohmann::json e = {{"gpus", p.at.requested}, {"gpus_used", p.at.used}, {"note", p.at.note}, {"feasible", p.at.ok()}};
          if (p.at.ok()) {
            const auto& x = p.at.best();
            const auto& t = x.metrics.time;
            e["gbs"] = x.plan.gbs;
            e["tokens_per_s"] = x.metrics.throughput.tokens_per_s;
            e["useful_tokens_per_s"] = x.useful_tokens_per_s;
            e["speedup"] = p.speedup;
            e["efficiency"] = p.efficiency;
            if (!p.efficiency_note.empty()) e["efficiency_note"] = p.efficiency_note;  // issue 16.5
            e["mfu"] = x.metrics.throughput.mfu;
            e["steps"] = p.train.steps;
            e["tokens_needed"] = p.train.tokens_processed;
            e["time_s"] = p.train.seconds;
            e["days"] = p.train.seconds / 86400.0;
            e["breakdown"] = {{"step_s", t.step_s},
                              {"compute_s", t.compute_s},
                              {"bubble_s", t.bubble_s},
                              {"tp_comm_exposed_s", x.metrics.tp_comm_exposed_s},
                              {"pp_comm_exposed_s", x.metrics.pp_comm_exposed_s},
                              {"dp_comm_exposed_s", x.metrics.dp_comm_exposed_s}};
            e["estimate"] = report_json(search::full_report(est, x));
            add_goodput_json(e, gp[pi].t);
            e["efficiency_goodput"] = gp[pi].efficiency;
            const search::CostShares& cs = gp[pi].shares;
            e["costliest"] = {{"term", cs.largest},
                              {"shares", {{"batch", cs.batch}, {"communication", cs.communication}, {"bubble", cs.bubble}, {"goodput", cs.goodput}}}};
          } else {
            e["reason"] = p.at.search.reason;
          }
          j["points"].push_back(e);
        }
        if (a->csv) std::cout << csv_table(j["points"]);
        else std::cout << j.dump(2) << "\n";
        return all_ok ? 0 : 1;
      }

      std::string out = fmt::format("{} on {} ({}), gbs {}, {:.3g} tokens{}\n", m.name, c.device.name, c.name,
                                    g.automatic ? "auto" : std::to_string(g.gbs), r.tokens,
                                    r.tokens_default ? " (default: 20 per parameter, Hoffmann et al. 2022)" : "");
      out += fmt::format("large-batch model (McCandlish et al. 2018): B_noise {:.3g} tokens{}, optimizer {}\n", b.model.b_noise_tokens,
                         search::b_noise_is_default(m, b_noise) ? " (default)" : "", search::name(opt));
      out += fmt::format("{:>7} {:>6} {:>6} {:>10} {:>8} {:>6} {:>6} {:>8} | {:>6} {:>6} {:>6} {:>6} | {:>9} {:>9} {:>8} | {:>6} {:>8} {:>6} {:>13}  plan\n",
                         "GPUs", "used", "gbs", "tokens/s", "speedup", "eff.", "MFU", "step s", "bubble", "DP", "TP", "PP", "steps", "tokens",
                         "days", "goodpt", "days+f", "eff.+f", "costliest");
      std::string notes;
      for (size_t pi = 0; pi < r.points.size(); ++pi) {
        const auto& p = r.points[pi];
        if (!p.at.ok()) {
          out += fmt::format("{:>7} {:>6}  no plan: {}\n", p.at.requested, "-", p.at.search.reason);
          continue;
        }
        const auto& x = p.at.best();
        const auto& t = x.metrics.time;
        const double st = t.step_s > 0 ? t.step_s : 1;
        out += fmt::format(
            "{:>7} {:>6} {:>6} {:>10.4g} {:>7.2f}x {:>5.1f}%{} {:>5.1f}% {:>8.3f} | {:>5.1f}% {:>5.1f}% {:>5.1f}% {:>5.1f}% | {:>9.3g} {:>9.3g} {:>8.2f} | "
            "{:>5.1f}% {:>8.2f} {:>5.1f}% {:>13}  {}\n",
            p.at.requested, p.at.used, x.plan.gbs, x.metrics.throughput.tokens_per_s, p.speedup, 100 * p.efficiency,
            p.efficiency_note.empty() ? " " : "^", 100 * x.metrics.throughput.mfu, t.step_s, 100 * t.bubble_s / st, 100 * x.metrics.dp_comm_exposed_s / st,
            100 * x.metrics.tp_comm_exposed_s / st, 100 * x.metrics.pp_comm_exposed_s / st, p.train.steps, p.train.tokens_processed,
            p.train.seconds / 86400.0, 100 * gp[pi].t.g.fraction, gp[pi].t.days, 100 * gp[pi].efficiency,
            fmt::format("{} {:.0f}%", gp[pi].shares.largest, 100 * std::max({gp[pi].shares.batch, gp[pi].shares.communication,
                                                                            gp[pi].shares.bubble, gp[pi].shares.goodput})),
            short_plan(x.plan, m.layers));
        if (!p.at.note.empty()) notes += fmt::format("  {} GPUs: {}\n", p.at.requested, p.at.note);
        if (!p.efficiency_note.empty()) notes += fmt::format("  {} GPUs: {}\n", p.at.requested, p.efficiency_note);
      }
      out += g.automatic ? "speedup: time-to-train ratio (useful tokens/s) against the smallest count; efficiency: speedup / GPU ratio\n"
                         : "speedup: tokens/s ratio against the smallest count; efficiency: speedup / GPU ratio\n";
      out += "bubble, DP, TP, PP: share of the step time (pipeline bubble; exposed data-, tensor-, pipeline-parallel communication)\n";
      out += "^: efficiency above the next smaller count's; the notes say why\n";
      out += fmt::format("goodpt, days+f, eff.+f: with failures (profile {}, {} checkpoints; docs/goodput.md); costliest: the term that "
                         "costs the most wall time (batch beyond B_noise, exposed communication, bubble, goodput)\n",
                         gsetup.profile.name, search::name(gsetup.options.checkpoint));
      if (!notes.empty()) out += "notes:\n" + notes;
      std::cout << out;
      return all_ok ? 0 : 1;
    });
  });
}

}  // namespace scaleplan::cli
