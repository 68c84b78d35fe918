#include "gui/explorer.hpp"

#include <cstdio>

#include "common/errors.hpp"
#include "hardware/stack.hpp"
#include "simulator/search/batch.hpp"

namespace scaleplan::gui {

std::vector<long long> default_scale_counts() { return {200, 500, 1000, 2000, 5000, 10000, 20000}; }

LoadedInputs load_inputs(const ExplorerInputs& in) {
  LoadedInputs l{model::load_model(in.model), hw::load_cluster(in.cluster)};
  if (in.seq < 0) throw UsageError("sequence length must be positive (0 = the model's)");
  if (in.seq > 0) l.model.seq = in.seq;
  if (!in.stack.empty()) hw::use_stack(l.cluster, in.stack);
  if (in.gpus <= 0) throw UsageError("GPU count must be positive");
  if (in.gbs <= 0) throw UsageError("global batch must be positive");
  return l;
}

double progress_fraction(const std::string& line) {
  double within = 0;
  const auto open = line.rfind('(');
  if (open != std::string::npos) {
    int pct = 0;
    if (std::sscanf(line.c_str() + open, "(%d%%)", &pct) == 1) within = pct / 100.0;
  }
  // "scale 3/7:" (run_scale's label) -> step 3 of 7.
  const auto colon = line.find(':');
  int step = 0, steps = 0;
  const std::string head = line.substr(0, colon == std::string::npos ? 0 : colon);
  const auto sp = head.rfind(' ');
  if (sp != std::string::npos && std::sscanf(head.c_str() + sp + 1, "%d/%d", &step, &steps) == 2 && steps > 0 && step >= 1)
    return (static_cast<double>(step - 1) + within) / steps;
  return within;
}

namespace {
bool raised(const std::atomic<bool>* c) { return c != nullptr && c->load(); }
}  // namespace

ExplorerResult run_explorer(const ExplorerInputs& in, const ProgressFn& progress, const std::atomic<bool>* cancel) {
  ExplorerResult r;
  r.inputs = in;
  LoadedInputs l = load_inputs(in);
  r.model = l.model;
  r.cluster = l.cluster;
  const analytic::Estimator est(r.model, r.cluster);
  auto report = [&](double lo, double hi, const std::string& line) {
    if (progress) progress(lo + (hi - lo) * progress_fraction(line), line);
  };

  // Phase 1 (0-50%): the search, keeping every feasible plan (up to the cap) for the scatter.
  if (progress) progress(0.0, "search: starting");
  search::Progress p1([&](const std::string& line, bool) { report(0.0, 0.5, line); }, 0.0);
  search::SearchSpec spec;
  spec.gpus = in.gpus;
  spec.gbs = {in.gbs};
  spec.top_k = kMaxScatterPlans;
  spec.merge_equivalents = false;  // the scatter plots every plan (issue 16.4 merges rows for tables)
  spec.threads = in.threads;
  spec.progress = &p1;
  spec.cancel = cancel;
  r.search = search::run_search(est, spec);
  if (r.search.cancelled || raised(cancel)) {
    r.cancelled = true;
    return r;
  }

  // Phase 2 (50-80%): the best plan at each count (scale.hpp), ranked by time to train.
  search::BatchChoice b;
  b.automatic = in.scale_gbs_auto;
  b.gbs = in.gbs;
  b.model = search::batch_model(r.model, search::Optimizer::adam);
  search::SearchSpec base;
  base.objective = search::Objective::time;
  base.top_k = 1;
  base.pareto = false;
  base.threads = in.threads;
  base.progress_label = "scale";
  base.cancel = cancel;
  search::Progress p2([&](const std::string& line, bool) { report(0.5, 0.8, line); }, 0.0);
  base.progress = &p2;
  if (progress) progress(0.5, "scale: starting");
  r.scale = search::run_scale(est, base, b, in.scale_counts, in.tokens);
  if (raised(cancel)) {
    r.cancelled = true;
    return r;
  }

  // Phase 3 (80-100%): days, GPU-hours and dollars at each count for the sweep's tokens.
  base.progress = nullptr;
  for (size_t i = 0; i < in.scale_counts.size(); ++i) {
    if (raised(cancel)) {
      r.cancelled = true;
      return r;
    }
    if (progress)
      progress(0.8 + 0.2 * static_cast<double>(i) / static_cast<double>(in.scale_counts.size()),
               "budget " + std::to_string(i + 1) + "/" + std::to_string(in.scale_counts.size()));
    r.budgets.push_back(search::run_budget(est, base, b, in.scale_counts[i], r.scale.tokens, 0));
  }
  if (progress) progress(1.0, "done");
  r.cancelled = raised(cancel);
  return r;
}

}  // namespace scaleplan::gui
