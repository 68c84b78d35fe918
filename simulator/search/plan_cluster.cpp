#include "simulator/search/plan_cluster.hpp"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <memory>
#include <limits>
#include <mutex>
#include <set>
#include <thread>

#include "common/errors.hpp"

namespace scaleplan::search {

long long noise_batch_sequences(const BatchModel& b, long long seq) {
  const double x = b.b_noise_tokens / static_cast<double>(std::max<long long>(1, seq));
  return std::max<long long>(1, 1LL << std::max(0L, std::lround(std::log2(std::max(1.0, x)))));
}

std::vector<long long> auto_gpu_counts(long long lo, long long hi, int n, int node) {
  // Log-spaced targets, each snapped to the nearest 2^k x {1, 9/8, 5/4, 11/8, 3/2, 7/4} (a multiple
  // of the node): counts whose data-parallel part can divide a power-of-two batch (dp | gbs) with tp
  // a power of two and pp in {1, 3, 5, 7, 9, 11} x 2^j, so the largest usable count <= N is N or near it.
  std::set<long long> s;
  const double a = std::log(static_cast<double>(lo)), b = std::log(static_cast<double>(hi));
  for (int i = 0; i < n; ++i) {
    const double x = std::exp(a + (b - a) * i / std::max(1, n - 1));
    const double p2 = std::exp2(std::floor(std::log2(x)));
    double best = p2;
    for (double f : {1.0, 1.125, 1.25, 1.375, 1.5, 1.75, 2.0})
      if (std::abs(p2 * f - x) < std::abs(best - x)) best = p2 * f;
    const long long k = std::llround(best / node) * node;
    if (k >= lo && k <= hi) s.insert(std::max<long long>(node, k));
  }
  return {s.begin(), s.end()};
}

namespace {

// Usable counts tried per option, largest first (scale.hpp candidate_counts): the largest usable
// count may need a model-parallel size that does not fit (e.g. pp=7 for dp | 2048).
constexpr int kCountsPerOption = 4;
// Microbatches of at most 8 sequences: larger ones only add activation memory once the GEMMs are
// large (a pruning knob of Space, to keep 800 options within 5 s on 2 cores).
constexpr long long kMaxMbs = 8;

void check(const PlanClusterSpec& s, const std::vector<hw::Cluster>& clusters, const std::vector<long long>& counts) {
  if (!(s.tokens > 0)) throw UsageError("--tokens must be a positive token count");
  if ((s.deadline_days > 0) == (s.budget_usd > 0))
    throw UsageError("give exactly one of --deadline-days D or --budget-usd B, positive");
  if (clusters.empty()) throw UsageError("--devices: no node type to search");
  if (counts.empty()) throw UsageError("--gpus: no GPU count to search");
  for (long long n : counts)
    if (n <= 0) throw UsageError("--gpus must be positive GPU counts (got " + std::to_string(n) + ")");
}

// One option: the best plan on at most `n` GPUs (the largest usable count), then its run with failures.
ClusterOption evaluate(const analytic::Estimator& est, const hw::Cluster& c, const hw::FailureProfile& f, const PlanClusterSpec& spec,
                       size_t ci, long long n) {
  ClusterOption o;
  o.cluster = ci;
  o.requested = n;
  SearchSpec s;
  s.objective = Objective::time;
  s.tokens = spec.tokens;
  s.top_k = 1;
  s.pareto = false;
  s.threads = 1;  // options run in parallel instead
  s.max_mbs = kMaxMbs;
  // The largest usable count <= n that has a plan (scale.hpp candidate_counts, largest first); unlike
  // best_at_count, smaller counts are not searched once one fits (an option is a rental size).
  const std::vector<long long> cand = candidate_counts(est.model(), est.cluster(), n, spec.batch, kCountsPerOption);
  SearchResult found;
  for (long long k : cand) {
    s.gpus = k;
    s.gbs_auto = spec.batch.automatic;
    s.batch = spec.batch.model;
    s.gbs = spec.batch.automatic ? auto_gbs_candidates(est.model(), est.cluster(), k, spec.batch.model)
                                 : std::vector<long long>{spec.batch.gbs};
    found = run_search(est, s);
    o.used = k;
    if (found.ok()) break;
  }
  if (!found.ok()) {
    o.reason = cand.empty() ? "no plan can use any count <= " + std::to_string(n) + " GPUs" : found.reason;
    return o;
  }
  o.ok = true;
  o.best = found.top.front();
  SearchSpec ts = s;
  ts.gbs_auto = spec.batch.automatic;
  ts.batch = spec.batch.model;
  o.train = training_time(ts, est.model(), o.best, spec.tokens);
  o.run = train_goodput(c, f, spec.goodput, o.best, o.used, o.train.seconds, c.price_usd_per_gpu_hour, c.power_W_per_gpu);
  o.failure_free_days = o.train.seconds / 86400.0;
  o.failure_free_usd = static_cast<double>(o.used) * o.train.seconds / 3600.0 * c.price_usd_per_gpu_hour;
  if (!o.run.g.finishes) {
    o.ok = false;
    o.reason = "never finishes: restarts and lost work outpace the training";
  } else if (c.price_usd_per_gpu_hour <= 0) {
    // An unpriced cluster (price_usd_per_gpu_hour unset: 0 = unknown, e.g. dgx-b200, gb200-nvl72) costs $0 here,
    // which would make it the cheapest option and put it on every budget: it keeps its plan and days but
    // takes no part in the choice or the front.
    o.ok = false;
    o.reason = "no price: the cluster sets no price_usd_per_gpu_hour, so its cost cannot be compared (set one in its file)";
  }
  return o;
}

// Deadline: the cheapest within it (ties: fewer days); budget: the fastest within it (ties: fewer USD).
void choose(PlanClusterResult& r, const PlanClusterSpec& spec) {
  const bool deadline = spec.deadline_days > 0;
  for (size_t i = 0; i < r.options.size(); ++i) {
    const ClusterOption& o = r.options[i];
    if (!o.ok) continue;
    const double d = o.run.days, u = o.run.usd;
    const bool meets = deadline ? d <= spec.deadline_days : u <= spec.budget_usd;
    const auto key = [&](const ClusterOption& x) { return deadline ? std::make_pair(x.run.usd, x.run.days) : std::make_pair(x.run.days, x.run.usd); };
    if (meets && (r.chosen < 0 || key(o) < key(r.options[static_cast<size_t>(r.chosen)]))) r.chosen = static_cast<int>(i);
    // Closest when nothing meets it: the least of the constrained quantity.
    const auto near = [&](const ClusterOption& x) { return deadline ? std::make_pair(x.run.days, x.run.usd) : std::make_pair(x.run.usd, x.run.days); };
    if (r.closest < 0 || near(o) < near(r.options[static_cast<size_t>(r.closest)])) r.closest = static_cast<int>(i);
  }
  if (r.chosen >= 0) r.closest = -1;
}

void front(PlanClusterResult& r) {
  std::vector<int> ok;
  for (size_t i = 0; i < r.options.size(); ++i)
    if (r.options[i].ok) ok.push_back(static_cast<int>(i));
  std::sort(ok.begin(), ok.end(), [&](int a, int b) {
    const auto& x = r.options[static_cast<size_t>(a)].run;
    const auto& y = r.options[static_cast<size_t>(b)].run;
    return x.days != y.days ? x.days < y.days : x.usd < y.usd;
  });
  double best_usd = std::numeric_limits<double>::infinity();
  for (int i : ok) {  // by days ascending: on the front when cheaper than every faster option
    const double u = r.options[static_cast<size_t>(i)].run.usd;
    if (u < best_usd) {
      r.pareto.push_back(i);
      best_usd = u;
    }
  }
}

}  // namespace

PlanClusterResult plan_cluster(const model::ModelSpec& m, const std::vector<hw::Cluster>& clusters, const std::vector<long long>& counts,
                               const PlanClusterSpec& spec) {
  const auto t0 = std::chrono::steady_clock::now();
  check(spec, clusters, counts);
  std::vector<std::unique_ptr<analytic::Estimator>> est;
  std::vector<hw::FailureProfile> prof;
  for (const hw::Cluster& c : clusters) {
    est.push_back(std::make_unique<analytic::Estimator>(m, c));
    prof.push_back(resolve_failures(spec.goodput, c));
    (void)goodput_model(prof.back(), c, counts.front(), spec.goodput.checkpoint);  // bad storage: an error now, not per option
  }
  PlanClusterResult r;
  const size_t total = clusters.size() * counts.size();
  r.options.resize(total);
  std::atomic<size_t> next{0}, done{0};
  std::mutex err_mu;
  std::exception_ptr err;
  // Evaluates one option (index i); the first exception is kept and rethrown after the join.
  auto one = [&](size_t i) {
    const size_t ci = i / counts.size();
    try {
      r.options[i] = evaluate(*est[ci], clusters[ci], prof[ci], spec, ci, counts[i % counts.size()]);
    } catch (...) {
      std::lock_guard<std::mutex> lk(err_mu);
      if (!err) err = std::current_exception();
    }
    done.fetch_add(1);
  };
  auto work = [&] {
    for (size_t i; (i = next.fetch_add(1)) < total;) one(i);
  };
  const unsigned hw_threads = std::max(1u, std::thread::hardware_concurrency());
  const size_t n_threads = std::min<size_t>(total, spec.threads > 0 ? static_cast<size_t>(spec.threads) : hw_threads);
  std::vector<std::thread> pool;
  for (size_t t = 1; t < n_threads; ++t) pool.emplace_back(work);
  // The calling thread works too and reports progress between options.
  for (size_t i; (i = next.fetch_add(1)) < total;) {
    one(i);
    if (spec.progress && spec.progress->due()) spec.progress->update("plan-cluster, best plans of options", done.load(), total);
  }
  for (std::thread& t : pool) t.join();
  if (err) std::rethrow_exception(err);
  if (spec.progress) spec.progress->update("plan-cluster, best plans of options", total, total);
  choose(r, spec);
  front(r);
  r.wall_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return r;
}

}  // namespace scaleplan::search
