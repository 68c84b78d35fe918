#pragma once
// The GUI's work without Qt (issue 10): load the inputs, run the plan search (every feasible plan
// kept, up to a cap, for the scatter chart), the scaling sweep over 200..20,000 GPUs and the
// training budget at each count. Runs on whatever thread calls it (the GUI's worker thread);
// reports progress through a callback and stops early when the cancel flag is raised.
#include <atomic>
#include <functional>
#include <string>
#include <vector>

#include "simulator/search/scale.hpp"

namespace scaleplan::gui {

// The scatter chart shows every feasible plan up to this many (then the fastest this many; the
// count of all feasible plans is in SearchResult::feasible). A search keeps them in its top-K list.
inline constexpr int kMaxScatterPlans = 20000;

// 200..20,000 GPUs in a 1-2-5 progression (the scaling range).
std::vector<long long> default_scale_counts();

struct ExplorerInputs {
  std::string model = "gpt3-1.3b";    // preset name or YAML path
  std::string cluster = "selene-a100";
  std::string stack;                   // software stack preset or YAML path; "" = the cluster's default (docs/stacks.md)
  long long gpus = 64;
  long long gbs = 512;                 // global batch (sequences) of the search
  long long seq = 0;                   // sequence length; 0 = the model's
  bool scale_gbs_auto = true;          // scaling sweep: batch per count by the large-batch model, else `gbs`
  std::vector<long long> scale_counts = default_scale_counts();
  double tokens = 0;                   // tokens to train for the budget; 0 = 20 per parameter (Chinchilla)
  int threads = 0;                     // 0 = all cores
};

struct LoadedInputs {
  model::ModelSpec model;
  hw::Cluster cluster;
};
// Loads the model and cluster (seq override applied). Throws ConfigError / UsageError.
LoadedInputs load_inputs(const ExplorerInputs& in);

struct ExplorerResult {
  ExplorerInputs inputs;
  model::ModelSpec model;
  hw::Cluster cluster;
  search::SearchResult search;          // top = the feasible plans, fastest first (at most kMaxScatterPlans)
  search::ScaleResult scale;            // one point per inputs.scale_counts
  std::vector<search::Budget> budgets;  // one per inputs.scale_counts, for scale.tokens
  bool cancelled = false;
};

// fraction in [0, 1]; line: what is running.
using ProgressFn = std::function<void(double fraction, const std::string& line)>;

// Search, then scale sweep, then budgets. Bad input throws (ConfigError, UsageError, PlanError);
// "nothing fits" is a result (search.ok() false). With `cancel` raised the remaining phases are
// skipped and the result says cancelled.
ExplorerResult run_explorer(const ExplorerInputs& in, const ProgressFn& progress = {}, const std::atomic<bool>* cancel = nullptr);

// The share of a phase done, read from a search::Progress line ("search: 10/200 plans (5%)",
// "scale 3/7: 12/80 plans (15%)"): the step i/N of a multi-step phase and the percentage within it.
double progress_fraction(const std::string& line);

}  // namespace scaleplan::gui
