#include "simulator/search/scale.hpp"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <set>

#include "common/errors.hpp"
#include "strategies/plan_label.hpp"

namespace scaleplan::search {

namespace {

std::vector<long long> divisors(long long n) {
  std::vector<long long> lo, hi;
  for (long long d = 1; d * d <= n; ++d)
    if (n % d == 0) {
      lo.push_back(d);
      if (d != n / d) hi.push_back(n / d);
    }
  lo.insert(lo.end(), hi.rbegin(), hi.rend());
  return lo;
}

SearchSpec spec_at(SearchSpec s, const analytic::Estimator& est, const BatchChoice& b, long long n) {
  s.gpus = n;
  s.gbs_auto = b.automatic;
  s.batch = b.model;
  s.gbs = b.automatic ? auto_gbs_candidates(est.model(), est.cluster(), n, b.model) : std::vector<long long>{b.gbs};
  return s;
}

}  // namespace

std::vector<long long> candidate_counts(const model::ModelSpec& m, const hw::Cluster& c, long long n, const BatchChoice& b,
                                        size_t limit, bool uneven_layers, bool align_to_nodes) {
  const std::vector<long long> mps = model_parallel_sizes(m, c, 0, uneven_layers, align_to_nodes);
  const std::vector<long long> dps = b.automatic ? std::vector<long long>{} : divisors(b.gbs);
  std::set<long long, std::greater<long long>> counts;
  for (long long mp : mps) {
    if (mp > n) break;
    long long best = 0;
    if (b.automatic) {
      best = mp * (n / mp);  // any dp: the batch follows it
    } else {
      for (long long dp : dps)
        if (dp * mp <= n) best = std::max(best, dp * mp);
    }
    if (best > 0) counts.insert(best);
  }
  std::vector<long long> out;
  // Fixed batch: down to N/2 (divisibility by the batch leaves few counts); auto: down to 0.9 N
  // (any dp works, so counts close to N abound). Always the largest one.
  const double floor = b.automatic ? 0.9 * static_cast<double>(n) : 0.5 * static_cast<double>(n);
  for (long long k : counts) {
    if (out.size() >= limit || (!out.empty() && static_cast<double>(k) < floor)) break;
    out.push_back(k);
  }
  return out;
}

CountResult best_at_count(const analytic::Estimator& est, SearchSpec base, const BatchChoice& b, long long requested,
                          int max_counts) {
  if (requested <= 0) throw UsageError("--gpus must be positive GPU counts (got " + std::to_string(requested) + ")");
  if (!b.automatic && b.gbs <= 0) throw UsageError("--gbs must be a positive batch or 'auto'");
  CountResult r;
  r.requested = requested;
  const std::string label = base.progress_label;
  const std::vector<long long> counts =
      candidate_counts(est.model(), est.cluster(), requested, b, static_cast<size_t>(std::max(1, max_counts)), base.uneven_layers,
                       base.align_to_nodes);
  // Search every candidate; keep the largest count whose best plan is within kSubsetTolerance of
  // the fastest one (useful tokens/s): all N GPUs unless a subset is clearly faster.
  constexpr double kSubsetTolerance = 0.01;
  std::vector<std::pair<long long, SearchResult>> found;
  std::vector<std::vector<long long>> gbs_of;
  SearchResult first;
  long long first_n = 0;
  bool whole_searched = false, whole_fits = false;
  double whole_tps = 0, fastest = 0;
  for (long long n : counts) {
    SearchSpec s = spec_at(base, est, b, n);
    s.top_k = std::max(1, base.top_k);
    s.pareto = false;
    s.progress_label = label + " " + std::to_string(n) + " GPUs";
    SearchResult res = run_search(est, s);
    ++r.counts_tried;
    if (n == requested) {
      whole_searched = true;
      whole_fits = res.ok();
      if (res.ok()) whole_tps = res.top.front().useful_tokens_per_s;
    }
    if (res.ok()) {
      fastest = std::max(fastest, res.top.front().useful_tokens_per_s);
      gbs_of.push_back(s.gbs);
      found.emplace_back(n, std::move(res));
    } else if (first_n == 0) {
      first_n = n;
      first = std::move(res);
      r.gbs = s.gbs;
    }
  }
  bool have = first_n != 0;
  for (size_t i = 0; i < found.size(); ++i)  // counts descending: the first within tolerance is the largest
    if (found[i].second.top.front().useful_tokens_per_s >= (1.0 - kSubsetTolerance) * fastest) {
      r.used = found[i].first;
      r.gbs = gbs_of[i];
      r.search = std::move(found[i].second);
      have = true;
      break;
    }
  if (!r.search.ok() && first_n != 0) {
    r.used = first_n;
    r.search = std::move(first);
  }
  const std::string gbs_rule = b.automatic ? "" : " (dp = GPUs/(tp*cp*pp) must divide gbs " + std::to_string(b.gbs) + ")";
  const std::string N = std::to_string(requested);
  if (!have) {
    r.used = 0;
    r.search.reason = "no plan can use any count <= " + N + " GPUs" + gbs_rule;
    r.note = r.search.reason;
  } else if (!r.search.ok()) {
    r.note = "no count <= " + N + " GPUs has a plan that fits (searched " + std::to_string(r.counts_tried) + " counts down to " +
             std::to_string(counts.back()) + "); " + r.search.reason;
  } else if (r.used != requested) {
    const std::string used = std::to_string(r.used);
    if (!whole_searched) r.note = "no plan uses all " + N + " GPUs" + gbs_rule + "; the largest usable subsets were searched: using " + used;
    else if (!whole_fits) r.note = "no plan fits on all " + N + " GPUs; using the fastest usable subset, " + used;
    else {
      char buf[96];
      std::snprintf(buf, sizeof buf, " (%.4g vs %.4g useful tokens/s on all)", r.search.top.front().useful_tokens_per_s, whole_tps);
      r.note = "a subset trains more than 1% faster than all " + N + " GPUs: using " + used + buf;
    }
  }
  return r;
}

ScaleResult run_scale(const analytic::Estimator& est, const SearchSpec& base, const BatchChoice& b, const std::vector<long long>& gpus,
                      double tokens) {
  const auto t0 = std::chrono::steady_clock::now();
  if (gpus.empty()) throw UsageError("--gpus needs at least one count");
  ScaleResult r;
  r.tokens_default = tokens <= 0;
  // Default T: compute-optimal 20 tokens per parameter (Hoffmann et al. 2022, Table 3).
  r.tokens = tokens > 0 ? tokens : kChinchillaTokensPerParam * est.model().total_params();
  for (size_t i = 0; i < gpus.size(); ++i) {
    SearchSpec s = base;
    s.tokens = r.tokens;
    s.progress_label = base.progress_label + " " + std::to_string(i + 1) + "/" + std::to_string(gpus.size()) + ":";
    ScalePoint pt;
    pt.at = best_at_count(est, s, b, gpus[i]);
    if (pt.at.ok()) {
      SearchSpec ts = s;
      ts.gbs_auto = b.automatic;
      ts.batch = b.model;
      pt.train = training_time(ts, est.model(), pt.at.best(), r.tokens);
    }
    r.points.push_back(std::move(pt));
  }
  for (size_t i = 0; i < r.points.size(); ++i)
    if (r.points[i].at.ok() && (r.base_index < 0 || gpus[i] < gpus[static_cast<size_t>(r.base_index)])) r.base_index = static_cast<int>(i);
  if (r.base_index >= 0) {
    const ScalePoint& b0 = r.points[static_cast<size_t>(r.base_index)];
    for (ScalePoint& p : r.points) {
      if (!p.at.ok()) continue;
      // Speedup = throughput ratio (useful tokens/s, i.e. the time-to-train ratio); scaling
      // efficiency = speedup / (GPUs / base GPUs), the standard strong-scaling definition.
      p.speedup = p.at.best().useful_tokens_per_s / b0.at.best().useful_tokens_per_s;
      p.efficiency = p.speedup / (static_cast<double>(p.at.used) / static_cast<double>(b0.at.used));
    }
  }
  // Efficiency that rises with the GPU count names why (issue 16.5): the next smaller count with a
  // plan is compared with this one, share by share.
  for (ScalePoint& p : r.points) {
    if (!p.at.ok()) continue;
    const ScalePoint* prev = nullptr;
    for (const ScalePoint& q : r.points)
      if (q.at.ok() && q.at.used < p.at.used && (!prev || q.at.used > prev->at.used)) prev = &q;
    if (!prev || p.efficiency <= prev->efficiency * (1 + 1e-9)) continue;
    const Candidate &a = prev->at.best(), &c = p.at.best();
    auto share = [](const Candidate& x, double v) { return 100.0 * v / x.metrics.time.step_s; };
    char buf[512];
    std::snprintf(buf, sizeof buf,
                  "efficiency rises from %lld GPUs (%.3f -> %.3f): per-GPU useful tokens/s up %.1f%%; global batch %lld -> %lld, "
                  "bubble %.1f%% -> %.1f%%, exposed comm %.1f%% -> %.1f%% of the step; plan %s -> %s",
                  prev->at.used, prev->efficiency, p.efficiency, 100.0 * (p.efficiency / prev->efficiency - 1), a.plan.gbs, c.plan.gbs,
                  share(a, a.metrics.time.bubble_s), share(c, c.metrics.time.bubble_s), share(a, a.metrics.time.comm_exposed_s),
                  share(c, c.metrics.time.comm_exposed_s), strategies::short_label(a.plan).c_str(), strategies::short_label(c.plan).c_str());
    p.efficiency_note = buf;
  }
  r.wall_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return r;
}

Budget run_budget(const analytic::Estimator& est, const SearchSpec& base, const BatchChoice& b, long long gpus, double tokens,
                  double price) {
  if (!(tokens > 0)) throw UsageError("--tokens must be a positive token count");
  Budget r;
  r.price_usd_per_gpu_hour = price > 0 ? price : est.cluster().price_usd_per_gpu_hour;
  r.power_W_per_gpu = est.cluster().power_W_per_gpu;
  SearchSpec s = base;
  s.tokens = tokens;
  if (price > 0) s.price_usd_per_gpu_hour = price;
  r.at = best_at_count(est, s, b, gpus);
  if (!r.at.ok()) return r;
  SearchSpec ts = s;
  ts.gbs_auto = b.automatic;
  ts.batch = b.model;
  r.train = training_time(ts, est.model(), r.at.best(), tokens);
  const double n = static_cast<double>(r.at.used);
  r.hours = r.train.seconds / 3600.0;                       // wall-clock: tokens processed / tokens per second
  r.days = r.hours / 24.0;
  r.gpu_hours = n * r.hours;                                // GPUs held for the whole run
  r.usd = r.gpu_hours * r.price_usd_per_gpu_hour;           // rental: price per GPU-hour x GPU-hours
  r.energy_kwh = r.power_W_per_gpu * n * r.hours / 1000.0;  // cluster power per GPU (node share, no PUE) x GPU-hours
  return r;
}

}  // namespace scaleplan::search
