#pragma once
// Scaling sweeps and training budgets (issue 4): the best plan at each GPU count, and the days,
// GPU-hours, dollars and energy to train on T tokens.
//
// A count N that no plan can use whole (e.g. 20,000 GPUs with gbs 2048: dp = N/(tp*cp*pp) must
// divide the batch) runs on a usable subset, and the result says so. Candidate subsets: for every
// model-parallel size mp = tp*cp*pp the model allows, the largest count mp*dp <= N it can use
// whole (dp | gbs; any dp with --gbs auto, where the batch follows dp), down to N/2 (0.9 N with
// --gbs auto), at most 8. Each is searched; the result is the largest count whose best plan is
// within 1% of the fastest (useful tokens/s). So N keeps all its GPUs when it is usable, unless a
// subset is clearly faster (e.g. 16,000 GPUs at gbs 2048: 15,360 only with 15 uneven pipeline
// stages vs 12,288 with an even split), which the note then says.
#include <string>
#include <vector>

#include "simulator/search/search.hpp"

namespace scaleplan::search {

// How a run's batch is chosen: fixed (`gbs`) or auto (the large-batch model picks it per count).
struct BatchChoice {
  bool automatic = false;
  long long gbs = 0;
  BatchModel model;
};

// The best plan on at most `requested` GPUs.
struct CountResult {
  long long requested = 0, used = 0;
  int counts_tried = 0;
  std::vector<long long> gbs;  // the global batches searched at `used`
  SearchResult search;         // at `used` (or, if nothing fits anywhere, at `requested`)
  std::string note;            // why used < requested ("" when equal)
  bool ok() const { return search.ok(); }
  const Candidate& best() const { return search.top.front(); }
};

// Candidate counts <= n (see above), largest first, at most `limit`.
std::vector<long long> candidate_counts(const model::ModelSpec& m, const hw::Cluster& c, long long n, const BatchChoice& b,
                                        size_t limit, bool uneven_layers = true, bool align_to_nodes = true);

// `base` gives the tokens, threads, progress (gpus and gbs are set here). Searches the candidate
// counts <= requested and keeps the fastest feasible plan.
CountResult best_at_count(const analytic::Estimator& est, SearchSpec base, const BatchChoice& b, long long requested,
                          int max_counts = 8);

struct ScalePoint {
  CountResult at;
  TrainingTime train;   // for the sweep's tokens
  double speedup = 0;     // useful tokens/s over the smallest count's
  double efficiency = 0;  // speedup / (GPUs used / the smallest count's GPUs used)
  // Non-empty when the efficiency is higher than at the next smaller count (issue 16.5): what
  // changed per GPU (global batch, bubble and exposed-communication shares, the plan).
  std::string efficiency_note;
};

struct ScaleResult {
  std::vector<ScalePoint> points;  // in the order of the requested counts
  double tokens = 0;                // T used for steps and time
  bool tokens_default = false;      // T = 20 tokens/param (Hoffmann et al. 2022), none was given
  int base_index = -1;              // the smallest requested count with a plan
  double wall_s = 0;
};

// tokens <= 0: kChinchillaTokensPerParam x the model's parameters.
ScaleResult run_scale(const analytic::Estimator& est, const SearchSpec& base, const BatchChoice& b,
                      const std::vector<long long>& gpus, double tokens);

struct Budget {
  CountResult at;
  TrainingTime train;
  double price_usd_per_gpu_hour = 0, power_W_per_gpu = 0;
  double hours = 0, days = 0, gpu_hours = 0, usd = 0, energy_kwh = 0;
};
// Days, GPU-hours, dollars, energy for T tokens (price <= 0: the cluster's).
Budget run_budget(const analytic::Estimator& est, const SearchSpec& base, const BatchChoice& b, long long gpus, double tokens,
                  double price);

}  // namespace scaleplan::search
