#include "simulator/search/search.hpp"

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstdio>
#include <mutex>
#include <thread>
#include <unordered_map>

#include "common/errors.hpp"

namespace scaleplan::search {

using analytic::LayerTable;
using analytic::StepMetrics;
using strategies::Plan;

const char* name(Objective o) {
  switch (o) {
    case Objective::throughput: return "throughput";
    case Objective::cost: return "cost";
    case Objective::time: return "time";
    case Objective::time_to_train: return "time-to-train";
  }
  return "?";
}

Objective parse_objective(const std::string& s) {
  if (s == "throughput") return Objective::throughput;
  if (s == "cost") return Objective::cost;
  if (s == "time") return Objective::time;
  if (s == "time-to-train" || s == "time_to_train") return Objective::time_to_train;
  throw UsageError("--objective must be throughput|cost|time|time-to-train (got '" + s + "')");
}

// ---------------------------------------------------------------------------------------------
Progress::Progress(Fn fn, double delay_s) : fn_(std::move(fn)), delay_s_(delay_s), start_(std::chrono::steady_clock::now()) {}

void Progress::update(const std::string& what, std::uint64_t done, std::uint64_t total) {
  if (!fn_) return;
  const auto now = std::chrono::steady_clock::now();
  if (std::chrono::duration<double>(now - start_).count() < delay_s_) return;
  if (shown_ && done < total && std::chrono::duration<double>(now - last_).count() < 0.1) return;  // the last one always shows
  char buf[160];
  const int pct = total > 0 ? static_cast<int>(100.0 * static_cast<double>(done) / static_cast<double>(total)) : 100;
  std::snprintf(buf, sizeof buf, "%s: %llu/%llu plans (%d%%)", what.c_str(), static_cast<unsigned long long>(done),
                static_cast<unsigned long long>(total), pct);
  last_line_ = buf;
  last_ = now;
  shown_ = true;
  fn_(last_line_, false);
}

bool Progress::due() const {
  if (!fn_) return false;
  const auto now = std::chrono::steady_clock::now();
  if (std::chrono::duration<double>(now - start_).count() < delay_s_) return false;
  return !shown_ || std::chrono::duration<double>(now - last_).count() >= 0.1;
}

void Progress::finish() {
  if (fn_ && shown_) fn_(last_line_, true);
  shown_ = false;
}

// ---------------------------------------------------------------------------------------------
namespace {

// Ranking: the objective, then less memory, then the plan's fields (a total order: deterministic).
bool better(double score_a, double mem_a, const Plan& a, double score_b, double mem_b, const Plan& b) {
  if (score_a != score_b) return score_a < score_b;
  if (mem_a != mem_b) return mem_a < mem_b;
  return compare_plans(a, b) < 0;
}
bool better(const Candidate& a, const Candidate& b) {
  return better(a.score, a.metrics.memory.total(), a.plan, b.score, b.metrics.memory.total(), b.plan);
}

// Identical in cost and memory (issue 16.4): one row, the others listed as its equivalents.
bool same_cost(const Candidate& a, const Candidate& b) {
  return a.score == b.score && a.metrics.time.step_s == b.metrics.time.step_s && a.metrics.memory.total() == b.metrics.memory.total();
}
// `keep` (the smaller plan by compare_plans) takes `other` and its equivalents; the list stays
// sorted and capped, so the result does not depend on the order plans arrive in.
void absorb(Candidate& keep, const Candidate& other) {
  keep.equivalents.push_back(other.plan);
  keep.equivalents.insert(keep.equivalents.end(), other.equivalents.begin(), other.equivalents.end());
  std::sort(keep.equivalents.begin(), keep.equivalents.end(), [](const Plan& a, const Plan& b) { return compare_plans(a, b) < 0; });
  if (keep.equivalents.size() > kMaxEquivalents) keep.equivalents.resize(kMaxEquivalents);
}
// Merges same-cost neighbours of a list sorted by better() (same score and memory are adjacent).
void merge_equivalents(std::vector<Candidate>& v) {
  std::vector<Candidate> out;
  out.reserve(v.size());
  for (Candidate& c : v) {
    if (!out.empty() && same_cost(out.back(), c)) absorb(out.back(), c);
    else out.push_back(std::move(c));
  }
  v = std::move(out);
}

// Pareto dominance on (useful tokens/s up, headroom up); equal points: the smaller plan wins, so
// the relation is a strict partial order and the front does not depend on the insertion order.
bool dominates(const Candidate& q, const Candidate& x) {
  const double qh = q.headroom(), xh = x.headroom();
  if (q.useful_tokens_per_s < x.useful_tokens_per_s || qh < xh) return false;
  if (q.useful_tokens_per_s > x.useful_tokens_per_s || qh > xh) return true;
  return compare_plans(q.plan, x.plan) < 0;
}

struct TableKey {
  int mbs, tp, cp;
  bool sp;
  strategies::Recompute recompute;
  strategies::Precision precision;
  strategies::TpMode tp_mode;
  int tp_depth;
  strategies::CpAlgo cp_algo;  // normalised to ring when cp == 1 (LayerTable::matches ignores it there)
  int ep;
  bool operator==(const TableKey&) const = default;
};
struct TableKeyHash {
  size_t operator()(const TableKey& k) const {
    size_t h = std::hash<int>()(k.mbs);
    auto mix = [&h](size_t v) { h ^= v + 0x9e3779b97f4a7c15ULL + (h << 6) + (h >> 2); };
    mix(static_cast<size_t>(k.tp));
    mix(static_cast<size_t>(k.cp));
    mix(k.sp);
    mix(static_cast<size_t>(k.recompute));
    mix(static_cast<size_t>(k.precision));
    mix(static_cast<size_t>(k.tp_mode));
    mix(static_cast<size_t>(k.tp_depth));
    mix(static_cast<size_t>(k.cp_algo));
    mix(static_cast<size_t>(k.ep));
    return h;
  }
};

// Layer tables shared by the workers: prepared once per key, never moved (node-based map).
class TableCache {
 public:
  explicit TableCache(const analytic::Estimator& est) : est_(est) {}
  const LayerTable& get(const Plan& p) {
    const TableKey k{p.mbs,     p.tp,        p.cp, p.sp, p.recompute, p.precision, p.tp_mode, p.tp_depth,
                     p.cp > 1 ? p.cp_algo : strategies::CpAlgo::ring, p.ep};
    {
      std::lock_guard<std::mutex> lk(mu_);
      auto it = tables_.find(k);
      if (it != tables_.end()) return it->second;
    }
    LayerTable t = est_.prepare(p);  // outside the lock; a rare duplicate is dropped below
    std::lock_guard<std::mutex> lk(mu_);
    return tables_.emplace(k, std::move(t)).first->second;
  }

 private:
  const analytic::Estimator& est_;
  std::mutex mu_;
  std::unordered_map<TableKey, LayerTable, TableKeyHash> tables_;
};

// offload=gemini chunk configurations shared by the workers (issue 6): prepared once per
// (tp, ep, pp, dp) -- the chunk-size search allocates -- so every gemini leaf is arithmetic only.
// The costly chunk-size search itself runs once per (tp, ep, pp) and serves every dp.
class ChunkCache {
 public:
  explicit ChunkCache(const analytic::Estimator& est) : est_(est) {}
  const analytic::ChunkTable& get(const Plan& p) {
    const Key k{p.tp, p.ep, p.pp, p.dp};
    const Key ks{p.tp, p.ep, p.pp, 0};  // the chunk-size search does not depend on dp
    const analytic::ChunkSearchTable* cs = nullptr;
    {
      std::lock_guard<std::mutex> lk(mu_);
      auto it = tables_.find(k);
      if (it != tables_.end()) return it->second;
      auto is = searches_.find(ks);
      if (is != searches_.end()) cs = &is->second;
    }
    if (cs == nullptr) {
      analytic::ChunkSearchTable t = est_.search_chunks(p);  // outside the lock; a rare duplicate is dropped below
      std::lock_guard<std::mutex> lk(mu_);
      cs = &searches_.emplace(ks, t).first->second;
    }
    analytic::ChunkTable t = est_.prepare_chunks(p, *cs);  // outside the lock, as above
    std::lock_guard<std::mutex> lk(mu_);
    return tables_.emplace(k, std::move(t)).first->second;
  }

 private:
  struct Key {
    int tp, ep, pp, dp;
    bool operator==(const Key&) const = default;
  };
  struct KeyHash {
    size_t operator()(const Key& k) const {
      size_t h = std::hash<int>()(k.tp);
      for (int v : {k.ep, k.pp, k.dp}) h ^= std::hash<int>()(v) + 0x9e3779b97f4a7c15ULL + (h << 6) + (h >> 2);
      return h;
    }
  };
  const analytic::Estimator& est_;
  std::mutex mu_;
  std::unordered_map<Key, analytic::ChunkTable, KeyHash> tables_;
  std::unordered_map<Key, analytic::ChunkSearchTable, KeyHash> searches_;  // key dp = 0
};

// What one worker thread keeps.
struct Worker {
  const analytic::Estimator* est = nullptr;
  TableCache* cache = nullptr;
  ChunkCache* chunk_cache = nullptr;
  size_t top_k = 10;
  bool verify = false;
  bool keep_pareto = true;
  bool gbs_auto = false;
  bool merge = true;  // SearchSpec::merge_equivalents
  BatchModel batch;
  double seq = 1;
  double score_factor = 1;  // objective = score_factor / useful tokens/s
  const GoodputModel* goodput = nullptr;  // time_to_train: the failure-free time -> wall time with failures

  const LayerTable* table = nullptr;
  const analytic::ChunkTable* chunks = nullptr;  // offload=gemini leaves only
  bool none_fit = false;  // the last offload=none leaf fitted (issue 6)
  std::uint64_t evaluated = 0, feasible = 0, rejected = 0;
  std::vector<Candidate> top;
  std::vector<Candidate> pareto;
  bool has_smallest = false;
  Candidate smallest;

  void offer_top(const Candidate& c) {
    for (Candidate& x : top)
      if (merge && same_cost(x, c)) {  // one row per cost (issue 16.4)
        if (better(c, x)) {
          Candidate k = c;
          absorb(k, x);
          x = std::move(k);
        } else {
          absorb(x, c);
        }
        return;
      }
    if (top.size() == top_k && !better(c, top.back())) return;
    auto pos = std::upper_bound(top.begin(), top.end(), c, [](const Candidate& a, const Candidate& b) { return better(a, b); });
    top.insert(pos, c);
    if (top.size() > top_k) top.pop_back();
  }

  void offer_pareto(const Candidate& c) {
    for (const Candidate& q : pareto)
      if (dominates(q, c)) return;
    pareto.erase(std::remove_if(pareto.begin(), pareto.end(), [&](const Candidate& q) { return dominates(c, q); }), pareto.end());
    pareto.push_back(c);
  }

  // The hot path: one leaf of the walk. Arithmetic only; copies a Candidate only when it enters
  // the top K or the Pareto front.
  void operator()(const Plan& p) {
    // Offload (issue 6; space.cpp offload axis): an offload leaf follows its offload=none sibling;
    // offload only adds time, so it is costed only when that sibling did not fit.
    if (p.offload == strategies::Offload::none) none_fit = false;
    else if (none_fit) return;
    // Optional safety net (SearchSpec::verify_plans): the axes mirror resolve_plan's rules, so
    // this never throws unless the rules changed under them; then the plan is skipped.
    if (verify) {
      try {
        (void)strategies::resolve_plan(p, est->model(), est->cluster(), p.gpus());
      } catch (const PlanError&) {
        ++rejected;
        return;
      }
    }
    if (table == nullptr || !table->matches(p)) table = &cache->get(p);
    const analytic::ChunkTable* ct = nullptr;
    if (p.offload == strategies::Offload::gemini) {
      if (chunks == nullptr || !chunks->matches(p)) chunks = &chunk_cache->get(p);
      ct = chunks;
    }
    const StepMetrics x = est->metrics(p, *table, ct);
    ++evaluated;
    if (p.offload == strategies::Offload::none) none_fit = x.feasible;
    const double mem = x.memory.total();
    if (!x.feasible) {
      // The smallest GPU need among plans without offload (an offload plan refused by the host
      // needs little GPU memory; it would not explain "nothing fits").
      if (p.offload != strategies::Offload::none) return;
      if (!has_smallest || mem < smallest.metrics.memory.total() ||
          (mem == smallest.metrics.memory.total() && compare_plans(p, smallest.plan) < 0)) {
        smallest.plan = p;
        smallest.metrics = x;
        has_smallest = true;
      }
      return;
    }
    ++feasible;
    const double tps = x.throughput.tokens_per_s;
    const double useful = gbs_auto ? tps * batch.useful_fraction(static_cast<double>(p.gbs) * seq) : tps;
    double score = score_factor / useful;
    if (goodput) score = goodput_wall_s(*goodput, score, checkpoint_bytes(p, x.memory), x.time.step_s);
    const bool enters_top = top.size() < top_k || better(score, mem, p, top.back().score, top.back().metrics.memory.total(), top.back().plan) ||
                            (merge && score == top.back().score && mem == top.back().metrics.memory.total());  // may be its equivalent
    // Pareto pre-check without building a candidate: any point at least as fast with at least as much headroom.
    const double headroom = x.memory.capacity - mem;
    bool maybe_pareto = keep_pareto;
    if (maybe_pareto)
      for (const Candidate& q : pareto)
        if (q.useful_tokens_per_s >= useful && q.headroom() >= headroom && (q.useful_tokens_per_s > useful || q.headroom() > headroom)) {
          maybe_pareto = false;
          break;
        }
    if (!enters_top && !maybe_pareto) return;
    Candidate c;
    c.plan = p;
    c.metrics = x;
    c.useful_tokens_per_s = useful;
    c.score = score;
    if (enters_top) offer_top(c);
    if (maybe_pareto) offer_pareto(c);
  }
};

std::string gib(double b) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.2f GiB", b / (1024.0 * 1024.0 * 1024.0));
  return buf;
}

}  // namespace

double objective_value(const SearchSpec& spec, const model::ModelSpec& m, double price, const Candidate& c) {
  switch (spec.objective) {
    case Objective::throughput: return 1.0 / c.useful_tokens_per_s;
    case Objective::cost: return price * static_cast<double>(c.plan.gpus()) / 3600.0 / c.useful_tokens_per_s;  // USD per useful token
    case Objective::time: return (spec.tokens > 0 ? spec.tokens : 1.0) / c.useful_tokens_per_s;  // T / (tokens/s x E_min/E)
    case Objective::time_to_train: return c.score;  // goodput_wall_s of the time above (run_search)
  }
  return 0;
}

SearchResult run_search(const analytic::Estimator& est, const SearchSpec& spec) {
  const auto t0 = std::chrono::steady_clock::now();
  const model::ModelSpec& m = est.model();
  const hw::Cluster& c = est.cluster();
  if (spec.top_k <= 0) throw UsageError("--top must be at least 1 (got " + std::to_string(spec.top_k) + ")");
  const double price = spec.price_usd_per_gpu_hour > 0 ? spec.price_usd_per_gpu_hour : c.price_usd_per_gpu_hour;
  if (spec.objective == Objective::cost && price <= 0)
    throw UsageError("--objective cost needs a price: cluster '" + c.name + "' has no price_usd_per_gpu_hour; pass --price");
  Space s = make_space(m, c, spec.gpus, spec.gbs);
  s.max_tp = spec.max_tp;
  s.max_mbs = spec.max_mbs;
  s.uneven_layers = spec.uneven_layers;
  s.align_to_nodes = spec.align_to_nodes;

  const std::vector<Plan> items = work_items(s);

  // The objective is score_factor / useful tokens/s (objective_value with tokens/s = 1).
  const bool ttt = spec.objective == Objective::time_to_train;
  const double score_factor = spec.objective == Objective::cost               ? price * static_cast<double>(spec.gpus) / 3600.0
                              : spec.objective == Objective::time || ttt ? (spec.tokens > 0 ? spec.tokens : 1.0)
                                                                              : 1.0;
  // time_to_train: the job's failure and storage model, once (goodput.hpp).
  GoodputModel gm;
  if (ttt && spec.tokens <= 0) throw UsageError("--objective time-to-train needs --tokens (the run whose failures it counts)");
  if (ttt) {
    const hw::FailureProfile prof =
        spec.failures ? *spec.failures : hw::load_failures(c.failures.empty() ? hw::kDefaultFailureProfile : c.failures);
    gm = goodput_model(prof, c, spec.gpus, spec.checkpoint);
  }

  unsigned hw_threads = std::thread::hardware_concurrency();
  size_t n_threads = spec.threads > 0 ? static_cast<size_t>(spec.threads) : std::max(1u, hw_threads);
  n_threads = std::max<size_t>(1, std::min(n_threads, items.size()));

  TableCache cache(est);
  ChunkCache chunk_cache(est);
  std::vector<Worker> workers(n_threads);
  for (Worker& w : workers) {
    w.est = &est;
    w.cache = &cache;
    w.chunk_cache = &chunk_cache;
    w.top_k = static_cast<size_t>(spec.top_k);
    w.keep_pareto = spec.pareto;
    w.verify = spec.verify_plans;
    w.gbs_auto = spec.gbs_auto;
    w.merge = spec.merge_equivalents;
    w.batch = spec.batch;
    w.seq = static_cast<double>(m.seq);
    w.score_factor = score_factor;
    w.goodput = ttt ? &gm : nullptr;
    w.top.reserve(w.top_k + 1);
  }
  std::atomic<size_t> next{0};
  std::atomic<std::uint64_t> done{0};
  std::atomic<bool> cancelled{false};
  std::mutex mu;
  std::condition_variable cv;
  size_t running = n_threads;
  auto work = [&](Worker& w) {
    for (size_t i; (i = next.fetch_add(1, std::memory_order_relaxed)) < items.size();) {
      if (spec.cancel && spec.cancel->load(std::memory_order_relaxed)) {
        cancelled.store(true, std::memory_order_relaxed);
        break;
      }
      Plan p = items[i];
      const std::uint64_t before = w.evaluated + w.rejected;
      walk(s, split_axis(), num_axes(), p, w);
      done.fetch_add(w.evaluated + w.rejected - before, std::memory_order_relaxed);
    }
    std::lock_guard<std::mutex> lk(mu);
    --running;
    cv.notify_all();
  };
  std::vector<std::thread> pool;
  pool.reserve(n_threads);
  for (size_t t = 0; t < n_threads; ++t) pool.emplace_back(work, std::ref(workers[t]));
  // The calling thread reports progress. Plan totals are counted (a walk without evaluation) only
  // once the work has run past the progress delay, so short searches do not pay for them.
  std::uint64_t total = 0;
  bool counted = false;
  {
    std::unique_lock<std::mutex> lk(mu);
    while (running > 0) {
      cv.wait_for(lk, std::chrono::milliseconds(100), [&] { return running == 0; });
      if (spec.progress && running > 0 && spec.progress->due()) {
        lk.unlock();
        if (!counted) {
          for (const Plan& it : items) total += count_plans(s, it);
          counted = true;
        }
        spec.progress->update(spec.progress_label, done.load(std::memory_order_relaxed), total);
        lk.lock();
      }
    }
  }
  for (std::thread& t : pool) t.join();

  // Merge (order-independent: every comparison is a total order).
  SearchResult r;
  std::vector<Candidate> all_top, all_front;
  for (Worker& w : workers) {
    r.evaluated += w.evaluated;
    r.feasible += w.feasible;
    r.rejected += w.rejected;
    all_top.insert(all_top.end(), w.top.begin(), w.top.end());
    all_front.insert(all_front.end(), w.pareto.begin(), w.pareto.end());
    if (w.has_smallest) {
      const double mw = w.smallest.metrics.memory.total();
      if (!r.has_smallest || mw < r.smallest.metrics.memory.total() ||
          (mw == r.smallest.metrics.memory.total() && compare_plans(w.smallest.plan, r.smallest.plan) < 0)) {
        r.smallest = w.smallest;
        r.has_smallest = true;
      }
    }
  }
  std::sort(all_top.begin(), all_top.end(), [](const Candidate& a, const Candidate& b) { return better(a, b); });
  if (spec.merge_equivalents) merge_equivalents(all_top);
  if (all_top.size() > static_cast<size_t>(spec.top_k)) all_top.resize(static_cast<size_t>(spec.top_k));
  r.top = std::move(all_top);
  for (const Candidate& x : all_front) {
    bool dominated = false;
    for (const Candidate& q : all_front)
      if (dominates(q, x)) {
        dominated = true;
        break;
      }
    if (!dominated) r.pareto.push_back(x);
  }
  std::sort(r.pareto.begin(), r.pareto.end(), [](const Candidate& a, const Candidate& b) {
    if (a.useful_tokens_per_s != b.useful_tokens_per_s) return a.useful_tokens_per_s > b.useful_tokens_per_s;
    if (a.headroom() != b.headroom()) return a.headroom() > b.headroom();
    return compare_plans(a.plan, b.plan) < 0;
  });

  if (r.top.empty()) {
    std::string gbs_list;
    for (size_t i = 0; i < spec.gbs.size() && i < 6; ++i) gbs_list += (i ? "," : "") + std::to_string(spec.gbs[i]);
    if (spec.gbs.size() > 6) gbs_list += ",...";
    if (r.evaluated == 0) {
      r.reason = "no plan splits " + std::to_string(spec.gpus) + " GPUs for gbs " + gbs_list +
                 ": dp = gpus/(tp*cp*pp) must divide gbs, with tp | heads=" + std::to_string(m.heads) + " (node-aligned) and pp <= layers=" +
                 std::to_string(m.layers) + " (even, or an uneven split whose first and last stages keep 1..ceil(layers/pp) layers)";
    } else {
      r.reason = "no plan fits in memory: of " + std::to_string(r.evaluated) + " plans the smallest needs " +
                 gib(r.smallest.metrics.memory.total()) + " per GPU of " + gib(r.smallest.metrics.memory.capacity) + " (" +
                 r.smallest.plan.to_string() + ")";
    }
  }
  if (cancelled.load()) {
    r.cancelled = true;
    r.reason = "search cancelled";
  }
  if (spec.progress && counted) spec.progress->update(spec.progress_label, r.evaluated + r.rejected, r.evaluated + r.rejected);
  r.wall_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return r;
}

strategies::StepReport full_report(const analytic::Estimator& est, const Candidate& c) { return est.evaluate(c.plan); }

TrainingTime training_time(const SearchSpec& spec, const model::ModelSpec& m, const Candidate& c, double tokens) {
  TrainingTime t;
  const double B = static_cast<double>(c.plan.gbs) * static_cast<double>(m.seq);  // batch in tokens
  // The tokens asked for are the tokens trained, with a fixed batch or --gbs auto alike (issue
  // 16.4): a larger batch changes the step count, not the token count. useful_tokens reports the
  // large-batch model's E_min = E / (1 + B/B_noise) (McCandlish et al. 2018 eq. 2.11), which
  // ranks the batches of --gbs auto.
  t.tokens_processed = tokens;
  t.useful_tokens = tokens * spec.batch.useful_fraction(B);
  t.steps = t.tokens_processed / B;
  t.seconds = t.tokens_processed / c.metrics.throughput.tokens_per_s;
  return t;
}

}  // namespace scaleplan::search
