#pragma once
// A training run's budget with failures (issue 19): the failure-free time of a chosen plan
// (scale.hpp, budget/scale) turned into wall-clock days, GPU-hours, dollars and energy with goodput.
#include <string>

#include "simulator/search/goodput.hpp"
#include "simulator/search/search.hpp"

namespace scaleplan::search {

struct GoodputOptions {
  std::string failures;  // profile name/file, "none", or "" (the cluster's, else the default)
  CheckpointMode checkpoint = CheckpointMode::blocking;
  double interval_s = 0;  // > 0: force the checkpoint interval (0: Daly's optimum)
};
// The profile GoodputOptions names (throws UsageError / ConfigError on a bad one).
hw::FailureProfile resolve_failures(const GoodputOptions& o, const hw::Cluster& c);

struct TrainGoodput {
  std::string profile;
  CheckpointMode mode = CheckpointMode::blocking;
  Goodput g;
  double hours = 0, days = 0, gpu_hours = 0, usd = 0, energy_kwh = 0;  // with failures
};
// `failure_free_s`: the run's failure-free seconds on `gpus` GPUs with plan/memory of `x`.
// GPUs are held (and paid, and powered) for the whole wall time, stops included.
TrainGoodput train_goodput(const hw::Cluster& c, const hw::FailureProfile& f, const GoodputOptions& o, const Candidate& x,
                           long long gpus, double failure_free_s, double price_usd_per_gpu_hour, double power_W_per_gpu);

// What costs the most at a GPU count (issue 19, item 4): each term's share of the wall-clock time.
//   batch          tokens beyond E_min (McCandlish et al. 2018: E = E_min (1 + B/B_noise)): g (1 - E_min/E)
//                  (pass useful_over_processed = 1 when the tokens are the processed ones: fixed batch)
//   communication  exposed communication in the step: g x comm_exposed_s / step_s
//   bubble         pipeline bubble in the step: g x bubble_s / step_s
//   goodput        checkpoints, lost work and restarts: 1 - g
// (g = goodput fraction; the terms are each alone's share, they overlap slightly: a wasted token's
// step also has its bubble.)
struct CostShares {
  double batch = 0, communication = 0, bubble = 0, goodput = 0;
  const char* largest = "none";
};
CostShares cost_shares(const Candidate& x, double useful_over_processed, double goodput_fraction);

}  // namespace scaleplan::search
