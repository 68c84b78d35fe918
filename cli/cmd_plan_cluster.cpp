// scaleplan plan-cluster: which cluster to rent for a model, a token count and a deadline or a
// budget (issue 19; DESIGN.md sec. 6). The search: simulator/search/plan_cluster.hpp.
#include <fmt/format.h>

#include <iostream>
#include <sstream>

#include "cli/commands.hpp"
#include "cli/goodput_cli.hpp"
#include "cli/options.hpp"
#include "cli/report.hpp"
#include "common/errors.hpp"
#include "common/presets.hpp"
#include "hardware/network_preset.hpp"
#include "simulator/search/plan_cluster.hpp"

namespace scaleplan::cli {

namespace {

struct PlanClusterArgs {
  std::string model, tokens, devices, gpus = "auto", networks, gbs;
  double deadline_days = 0, budget_usd = 0;
  long long seq = 0;
  SearchTuningArgs tune;
  GoodputArgs goodput;
  bool json = false;
};

std::vector<std::string> split_list(const std::string& s) {
  std::vector<std::string> out;
  std::stringstream ss(s);
  for (std::string x; std::getline(ss, x, ',');)
    if (!x.empty()) out.push_back(x);
  return out;
}

// A node type: a cluster preset or file, or a device preset (its first cluster preset is the node).
hw::Cluster node_type(const std::string& spec) {
  if (!has_preset("devices", spec) || has_preset("clusters", spec)) return hw::load_cluster(spec);
  const hw::Device d = hw::load_device(spec);
  for (const std::string& name : preset_names("clusters")) {
    hw::Cluster c = hw::load_cluster(name);
    if (c.device.name == d.name) return c;
  }
  throw UsageError("--devices: no cluster preset holds device '" + spec + "'; pass a cluster preset or YAML file with that device");
}

std::vector<hw::Cluster> node_types(const std::string& list) {
  std::vector<hw::Cluster> out;
  if (!list.empty()) {
    for (const std::string& s : split_list(list)) out.push_back(node_type(s));
    return out;
  }
  // Default: one node type per device preset that a cluster preset holds.
  for (const std::string& d : preset_names("devices")) try {
      out.push_back(node_type(d));
    } catch (const UsageError&) {
    }
  return out;
}

// Each node type under each network (`native`: the node type's own network).
std::vector<hw::Cluster> options_of(const std::vector<hw::Cluster>& nodes, const std::string& list) {
  const std::vector<std::string> names = list.empty() ? preset_names("networks") : split_list(list);
  if (names.empty()) throw UsageError("--networks: no network to search");
  std::vector<hw::Cluster> out;
  for (const hw::Cluster& n : nodes)
    for (const std::string& w : names) out.push_back(w == "native" ? n : hw::with_network(n, hw::load_network_preset(w)));
  return out;
}

nlohmann::json option_json(const search::ClusterOption& o, const hw::Cluster& c) {
  nlohmann::json j = {{"cluster", c.name}, {"device", c.device.name}, {"gpus", o.requested}, {"gpus_used", o.used}, {"feasible", o.ok}};
  if (!o.ok) {
    j["reason"] = o.reason;
    return j;
  }
  j["plan"] = plan_json(o.best.plan);
  j["mfu"] = o.best.metrics.throughput.mfu;
  j["failure_free"] = {{"days", o.failure_free_days}, {"usd", o.failure_free_usd}};
  j["days"] = o.run.days;
  j["usd"] = o.run.usd;
  j["gpu_hours"] = o.run.gpu_hours;
  j["energy_kwh"] = o.run.energy_kwh;
  add_goodput_json(j, o.run);
  return j;
}

std::string option_line(const search::ClusterOption& o, const hw::Cluster& c, long long layers) {
  return fmt::format("{:>8.2f} {:>11.4g} {:>6} {:>6.1f}% {:>5.1f}% {:<34} {}", o.run.days, o.run.usd, o.used, 100 * o.run.g.fraction,
                     100 * o.best.metrics.throughput.mfu, c.name, short_plan(o.best.plan, layers));
}

}  // namespace

void add_plan_cluster(CLI::App& app, int& rc) {
  auto a = std::make_shared<PlanClusterArgs>();
  CLI::App* sub = app.add_subcommand("plan-cluster", "cheapest cluster (node type x network x GPU count) for a deadline, or fastest for a budget");
  sub->add_option("--model", a->model, "model preset or YAML file")->required();
  sub->add_option("--tokens", a->tokens, "tokens to train (300B, 15.6T)")->required();
  sub->add_option("--deadline-days", a->deadline_days, "wall-clock days (with failures) to finish within");
  sub->add_option("--budget-usd", a->budget_usd, "dollars (with failures) to finish within");
  sub->add_option("--devices", a->devices, "node types: cluster presets/files or device presets, comma-separated (default: one per device)");
  sub->add_option("--gpus", a->gpus, "GPU counts, comma-separated, or 'auto' (40 counts, 64 to 32768; default)");
  sub->add_option("--networks", a->networks, "network presets (configs/networks) or 'native', comma-separated (default: all presets)");
  sub->add_option("--gbs", a->gbs, "global batch (sequences) or 'auto' (slow: a batch per count); default: the power of two nearest B_noise");
  sub->add_option("--seq", a->seq, "sequence length (overrides the model's)");
  add_search_tuning_options(sub, a->tune);
  add_goodput_options(sub, a->goodput);
  sub->add_flag("--json", a->json, "print one JSON object only");
  sub->callback([a, &rc] {
    rc = guarded([&] {
      model::ModelSpec m = model::load_model(a->model);
      if (a->seq > 0) m.seq = a->seq;
      search::PlanClusterSpec spec;
      spec.tokens = search::parse_quantity(a->tokens, "--tokens");
      if (a->deadline_days < 0 || a->budget_usd < 0) throw UsageError("--deadline-days and --budget-usd must be positive");
      spec.deadline_days = a->deadline_days;
      spec.budget_usd = a->budget_usd;
      spec.batch.model = search::batch_model(m, search::parse_optimizer(a->tune.optimizer), b_noise_tokens(a->tune));
      search::GbsArg g;
      if (a->gbs.empty()) g.gbs = search::noise_batch_sequences(spec.batch.model, m.seq);
      else g = search::parse_gbs(a->gbs);
      spec.batch.automatic = g.automatic;
      spec.batch.gbs = g.gbs;
      spec.goodput = goodput_options(a->goodput);
      spec.threads = a->tune.threads;
      const std::vector<hw::Cluster> clusters = options_of(node_types(a->devices), a->networks);
      const std::vector<long long> counts =
          a->gpus == "auto" ? search::auto_gpu_counts(64, 32768, 40, 8) : search::parse_counts(a->gpus, "--gpus");
      search::Progress progress(stderr_progress_line());
      spec.progress = &progress;
      const search::PlanClusterResult r = search::plan_cluster(m, clusters, counts, spec);
      progress.finish();
      const bool deadline = spec.deadline_days > 0;
      size_t with_plan = 0;
      for (const auto& o : r.options) with_plan += o.ok ? 1 : 0;

      if (a->json) {
        nlohmann::json j = {{"model", m.name},     {"tokens", spec.tokens},         {"met", r.met()},
                            {"options", r.options.size()}, {"options_with_plan", with_plan}, {"wall_s", r.wall_s}};
        if (deadline) j["deadline_days"] = spec.deadline_days;
        else j["budget_usd"] = spec.budget_usd;
        j["gbs"] = g.automatic ? nlohmann::json("auto") : nlohmann::json(g.gbs);
        if (r.met()) j["chosen"] = option_json(r.options[static_cast<size_t>(r.chosen)], clusters[r.options[static_cast<size_t>(r.chosen)].cluster]);
        else {
          j["reason"] = deadline ? "no option meets the deadline" : "no option fits the budget";
          if (r.closest >= 0) j["closest"] = option_json(r.options[static_cast<size_t>(r.closest)], clusters[r.options[static_cast<size_t>(r.closest)].cluster]);
        }
        j["pareto"] = nlohmann::json::array();
        for (int i : r.pareto) j["pareto"].push_back(option_json(r.options[static_cast<size_t>(i)], clusters[r.options[static_cast<size_t>(i)].cluster]));
        std::cout << j.dump(2) << "\n";
        return r.met() ? 0 : 1;
      }

      std::string out = fmt::format("{} for {:.4g} tokens, {}: {} clusters (node type x network) x {} GPU counts = {} options, {} with a plan and a price ({:.2f} s)\n",
                                    m.name, spec.tokens,
                                    deadline ? fmt::format("deadline {:g} days", spec.deadline_days) : fmt::format("budget ${:.4g}", spec.budget_usd),
                                    clusters.size(), counts.size(), r.options.size(), with_plan, r.wall_s);
      out += fmt::format("global batch {} sequences{}; days and $ include failures, checkpoints and restarts (docs/goodput.md)\n",
                         g.automatic ? "auto" : std::to_string(g.gbs), a->gbs.empty() ? " (default: nearest B_noise)" : "");
      const std::string head = fmt::format("{:>8} {:>11} {:>6} {:>7} {:>6} {:<34} {}\n", "days", "USD", "GPUs", "goodput", "MFU", "cluster", "plan");
      int code = 0;
      if (r.met()) {
        const auto& o = r.options[static_cast<size_t>(r.chosen)];
        out += deadline ? "cheapest option that meets the deadline:\n" : "fastest option within the budget:\n";
        out += head + option_line(o, clusters[o.cluster], m.layers) + "\n";
      } else {
        out += deadline ? fmt::format("no option meets it: nothing trains in {:g} days", spec.deadline_days)
                        : fmt::format("no option meets it: nothing trains for ${:.4g}", spec.budget_usd);
        if (r.closest >= 0) {
          const auto& o = r.options[static_cast<size_t>(r.closest)];
          out += deadline ? "; the fastest:\n" : "; the cheapest:\n";
          out += head + option_line(o, clusters[o.cluster], m.layers) + "\n";
        } else {
          out += " (no option has a plan)\n";
        }
        code = 1;
      }
      out += fmt::format("Pareto front, days vs dollars ({} options):\n", r.pareto.size()) + head;
      for (int i : r.pareto) {
        const auto& o = r.options[static_cast<size_t>(i)];
        out += option_line(o, clusters[o.cluster], m.layers) + "\n";
      }
      std::cout << out;
      return code;
    });
  });
}

}  // namespace scaleplan::cli
