#pragma once
// Which cluster to rent (issue 19): node types (cluster presets) x network presets x GPU counts, each
// option's best plan (the fastest, failure-free, on the largest usable count <= N that has one)
// and its run with failures (train_goodput.hpp); the cheapest option that meets a deadline, or the
// fastest within a budget, and the Pareto front of wall-clock days vs dollars.
#include <string>
#include <vector>

#include "simulator/search/scale.hpp"
#include "simulator/search/train_goodput.hpp"

namespace scaleplan::search {

struct ClusterOption {
  size_t cluster = 0;  // index into the clusters searched
  long long requested = 0, used = 0;
  bool ok = false;
  std::string reason;  // why there is no plan ("" when ok)
  Candidate best;
  TrainingTime train;
  TrainGoodput run;  // with failures
  double failure_free_days = 0, failure_free_usd = 0;
};

struct PlanClusterSpec {
  double tokens = 0;           // T (useful tokens with --gbs auto, else processed)
  double deadline_days = 0;    // > 0: the cheapest option within it
  double budget_usd = 0;       // > 0: the fastest option within it (exactly one of the two)
  BatchChoice batch;
  GoodputOptions goodput;
  int threads = 0;             // options searched in parallel (0: all cores)
  Progress* progress = nullptr;
};

struct PlanClusterResult {
  std::vector<ClusterOption> options;  // clusters x counts, in that order
  int chosen = -1;                     // meets the deadline / budget (index into options)
  int closest = -1;                    // when none does: the fastest (deadline) or cheapest (budget)
  std::vector<int> pareto;             // days vs dollars, by days ascending
  double wall_s = 0;
  bool met() const { return chosen >= 0; }
};

// The default global batch of plan-cluster (sequences): the power of two nearest B_noise / seq, the
// batch at which steps and tokens are each twice their minimum (McCandlish et al. 2018, eq. 2.11 at
// B = B_noise): one batch for every option keeps the comparison about the clusters.
long long noise_batch_sequences(const BatchModel& b, long long seq);

// Up to n log-spaced GPU counts from `lo` to `hi`, snapped to 2^k x {1, 9/8, 5/4, 11/8, 3/2, 7/4} and to
// multiples of `node` (the --gpus auto list; duplicates merged).
std::vector<long long> auto_gpu_counts(long long lo, long long hi, int n, int node);

// Each cluster's failure profile: `spec.goodput.failures`, else the cluster's own.
PlanClusterResult plan_cluster(const model::ModelSpec& m, const std::vector<hw::Cluster>& clusters, const std::vector<long long>& counts,
                               const PlanClusterSpec& spec);

}  // namespace scaleplan::search
