// scaleplan scale: the best plan at each GPU count, speedup and scaling efficiency (issue 4).
#include <fmt/format.h>

#include <iostream>

#include "cli/commands.hpp"
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
  std::string gpus, gbs, tokens;
  bool json = false;
};


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
  sub->add_flag("--json", a->json, "print one JSON object only");
  sub->callback([a, &rc] {
    rc = guarded([&] {
      LoadedInputs in = load_inputs(a->io);
      model::ModelSpec& m = in.model;
      hw::Cluster& c = in.cluster;
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
      progress.finish();
      bool all_ok = true;
      for (const auto& p : r.points) all_ok = all_ok && p.at.ok();

      if (a->json) {
        nlohmann::json j = {{"model", m.name},
                            {"cluster", c.name},
                            {"optimizer", search::name(opt)},
                            {"b_noise_tokens", b.model.b_noise_tokens},
                            {"tokens", r.tokens},
                            {"tokens_default", r.tokens_default}};
        if (g.automatic) j["gbs"] = "auto";
        else j["gbs"] = g.gbs;
        j["points"] = nlohmann::json::array();
        for (const auto& p : r.points) {
          nlohmann::json e = {{"gpus", p.at.requested}, {"gpus_used", p.at.used}, {"note", p.at.note}, {"feasible", p.at.ok()}};
          if (p.at.ok()) {
            const auto& x = p.at.best();
            const auto& t = x.metrics.time;
            e["gbs"] = x.plan.gbs;
            e["tokens_per_s"] = x.metrics.throughput.tokens_per_s;
            e["useful_tokens_per_s"] = x.useful_tokens_per_s;
            e["speedup"] = p.speedup;
            e["efficiency"] = p.efficiency;
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
          } else {
            e["reason"] = p.at.search.reason;
          }
          j["points"].push_back(e);
        }
        std::cout << j.dump(2) << "\n";
        return all_ok ? 0 : 1;
      }

      std::string out = fmt::format("{} on {} ({}), gbs {}, {:.3g} tokens{}\n", m.name, c.device.name, c.name,
                                    g.automatic ? "auto" : std::to_string(g.gbs), r.tokens,
                                    r.tokens_default ? " (default: 20 per parameter, Hoffmann et al. 2022)" : "");
      out += fmt::format("large-batch model (McCandlish et al. 2018): B_noise {:.3g} tokens{}, optimizer {}\n", b.model.b_noise_tokens,
                         search::b_noise_is_default(m, b_noise) ? " (default)" : "", search::name(opt));
      out += fmt::format("{:>7} {:>6} {:>6} {:>10} {:>8} {:>6} {:>6} {:>8} | {:>6} {:>6} {:>6} {:>6} | {:>9} {:>9} {:>8}  plan\n", "GPUs", "used",
                         "gbs", "tokens/s", "speedup", "eff.", "MFU", "step s", "bubble", "DP", "TP", "PP", "steps", "tokens", "days");
      std::string notes;
      for (const auto& p : r.points) {
        if (!p.at.ok()) {
          out += fmt::format("{:>7} {:>6}  no plan: {}\n", p.at.requested, "-", p.at.search.reason);
          continue;
        }
        const auto& x = p.at.best();
        const auto& t = x.metrics.time;
        const double st = t.step_s > 0 ? t.step_s : 1;
        out += fmt::format(
            "{:>7} {:>6} {:>6} {:>10.4g} {:>7.2f}x {:>5.1f}% {:>5.1f}% {:>8.3f} | {:>5.1f}% {:>5.1f}% {:>5.1f}% {:>5.1f}% | {:>9.3g} {:>9.3g} {:>8.2f}  {}\n",
            p.at.requested, p.at.used, x.plan.gbs, x.metrics.throughput.tokens_per_s, p.speedup, 100 * p.efficiency,
            100 * x.metrics.throughput.mfu, t.step_s, 100 * t.bubble_s / st, 100 * x.metrics.dp_comm_exposed_s / st,
            100 * x.metrics.tp_comm_exposed_s / st, 100 * x.metrics.pp_comm_exposed_s / st, p.train.steps, p.train.tokens_processed,
            p.train.seconds / 86400.0, short_plan(x.plan, m.layers));
        if (!p.at.note.empty()) notes += fmt::format("  {} GPUs: {}\n", p.at.requested, p.at.note);
      }
      out += g.automatic ? "speedup: time-to-train ratio (useful tokens/s) against the smallest count; efficiency: speedup / GPU ratio\n"
                         : "speedup: tokens/s ratio against the smallest count; efficiency: speedup / GPU ratio\n";
      out += "bubble, DP, TP, PP: share of the step time (pipeline bubble; exposed data-, tensor-, pipeline-parallel communication)\n";
      if (!notes.empty()) out += "notes:\n" + notes;
      std::cout << out;
      return all_ok ? 0 : 1;
    });
  });
}

}  // namespace scaleplan::cli
