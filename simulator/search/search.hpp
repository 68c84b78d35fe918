#pragma once
// Exhaustive plan search (issue 4): walk the plan space (space.hpp), evaluate every plan with the
// analytic estimator's allocation-free hot path, keep the feasible ones, rank them by an
// objective, and keep the top K and the Pareto front of throughput vs memory headroom.
// Runs on every core (std::thread); the answer does not depend on the thread count or timing:
// ties are broken by memory (less first) and then by the plan's fields (compare_plans).
#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "simulator/analytic/estimator.hpp"
#include "simulator/search/batch.hpp"
#include "simulator/search/goodput.hpp"
#include "simulator/search/space.hpp"

namespace scaleplan::search {

// time_to_train: wall-clock days with failures, checkpoints and restarts (goodput.hpp, issue 19).
enum class Objective { throughput, cost, time, time_to_train };
const char* name(Objective o);
Objective parse_objective(const std::string& s);  // throws UsageError

// Progress of long work, for a line on stderr. The library never prints: it calls `fn` from the
// thread that started the work, at most 10 times a second and only once the work has run for
// `delay_s`; finish() calls fn(final=true) if anything was shown.
class Progress {
 public:
  using Fn = std::function<void(const std::string& line, bool final)>;
  explicit Progress(Fn fn, double delay_s = 1.0);
  void update(const std::string& what, std::uint64_t done, std::uint64_t total);
  void finish();
  bool shown() const { return shown_; }
  bool due() const;  // past the delay and the rate limit: an update() now would print

 private:
  Fn fn_;
  double delay_s_;
  std::chrono::steady_clock::time_point start_, last_;
  bool shown_ = false;
  std::string last_line_;
};

struct SearchSpec {
  long long gpus = 0;
  // Global batches (sequences): one value for --gbs B; several with gbs_auto.
  std::vector<long long> gbs;
  // --gbs auto: rank by useful tokens (McCandlish: tokens/s x E_min/E) so the batch is a decision.
  bool gbs_auto = false;
  BatchModel batch;
  Objective objective = Objective::throughput;
  double tokens = 0;  // T (0: none given; time objective then ranks as throughput)
  double price_usd_per_gpu_hour = 0;  // cost objective (0: the cluster's price)
  int top_k = 10;
  // One row per cost (issue 16.4): plans identical in objective, step and memory merge into one
  // Candidate with its equivalents. The GUI's scatter, which plots every plan, turns it off.
  bool merge_equivalents = true;
  bool pareto = true;  // keep the Pareto front (scale and budget do not need it)
  // Also run every plan through strategies::resolve_plan and skip those it refuses (counted in
  // SearchResult::rejected). Work items are always probed (space.hpp); this checks every leaf, at
  // ~15% of the search's time. tests/test_search.cpp runs with it and expects no rejection.
  bool verify_plans = false;
  int threads = 0;   // 0: std::thread::hardware_concurrency()
  int max_tp = 0;    // 0: all (see Space)
  long long max_mbs = 0;
  bool uneven_layers = true;   // see Space::uneven_layers
  bool align_to_nodes = true;  // see Space::align_to_nodes
  Progress* progress = nullptr;
  std::string progress_label = "search";
  // Cooperative cancellation (the GUI's Cancel button): while *cancel is true, workers take no new
  // work item (a few thousand plans at most), and run_search returns what it has, with
  // SearchResult::cancelled set. nullptr: never cancelled. Scale sweeps and budgets pass it on.
  const std::atomic<bool>* cancel = nullptr;
  // Objective::time_to_train (issue 19): the failure profile and checkpoint mode the goodput-adjusted
  // time uses (nullptr: the cluster's profile, loaded by run_search).
  const hw::FailureProfile* failures = nullptr;
  CheckpointMode checkpoint = CheckpointMode::blocking;
};

// One evaluated plan, light: the plan and the estimator's numbers (no strings).
struct Candidate {
  strategies::Plan plan;
  analytic::StepMetrics metrics;
  double useful_tokens_per_s = 0;  // tokens/s x E_min/E under --gbs auto, else tokens/s
  double score = 0;                // the objective, smaller is better (see objective_value)
  // Plans identical to this one in objective, step time and memory (issue 16.4: one row per cost;
  // e.g. recompute none and selective under flash attention), by compare_plans, at most
  // kMaxEquivalents. The candidate itself is the smallest of them by compare_plans.
  std::vector<strategies::Plan> equivalents;
  double headroom() const { return metrics.memory.capacity - metrics.memory.total(); }
};

inline constexpr size_t kMaxEquivalents = 8;

struct SearchResult {
  std::uint64_t evaluated = 0;  // plans the estimator costed
  std::uint64_t feasible = 0;   // of them, those that fit in memory
  std::uint64_t rejected = 0;   // leaves resolve_plan refused (verify_plans; 0 while the axes mirror its rules)
  std::vector<Candidate> top;     // best first (at most top_k)
  std::vector<Candidate> pareto;  // throughput vs headroom, by throughput descending
  bool has_smallest = false;
  Candidate smallest;  // least memory of all evaluated plans (explains "nothing fits")
  std::string reason;  // why there is no feasible plan ("" when there is), or "search cancelled"
  bool cancelled = false;  // SearchSpec::cancel was raised before every work item was walked
  double wall_s = 0;
  bool ok() const { return !top.empty(); }
};

// The objective's value for a candidate (smaller is better), in its unit:
//   throughput: seconds per useful token (1 / tokens/s); cost: USD per useful token
//   (price x gpus / 3600 / tokens/s); time: seconds to train `tokens` (tokens processed / tokens/s);
//   time_to_train: the same seconds with failures (goodput_wall_s; the candidate's score).
double objective_value(const SearchSpec& spec, const model::ModelSpec& m, double price, const Candidate& c);

// Runs the search. Bad input (gpus <= 0, no gbs, top_k <= 0) throws UsageError; "nothing fits"
// is a result (ok() false, reason set).
SearchResult run_search(const analytic::Estimator& est, const SearchSpec& spec);

// The full StepReport of a candidate (re-evaluated through Estimator::evaluate: identical numbers).
strategies::StepReport full_report(const analytic::Estimator& est, const Candidate& c);

// Tokens processed, steps and seconds to train `tokens` for a candidate: the tokens processed are
// `tokens` (fixed batch and gbs_auto alike; steps = tokens / batch); useful_tokens is the
// large-batch model's E_min of them.
struct TrainingTime {
  double tokens_processed = 0, useful_tokens = 0, steps = 0, seconds = 0;
};
TrainingTime training_time(const SearchSpec& spec, const model::ModelSpec& m, const Candidate& c, double tokens);

}  // namespace scaleplan::search
