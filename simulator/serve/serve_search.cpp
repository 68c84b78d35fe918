#include "simulator/serve/serve_search.hpp"

#include <algorithm>
#include <fmt/format.h>

namespace scaleplan::serve {

std::vector<Layout> layouts(const model::ModelSpec& m, int gpus) {
  std::vector<Layout> out;
  for (int tp = 1; tp <= gpus; ++tp) {
    if (gpus % tp != 0 || m.heads % tp != 0) continue;
    for (int pp = 1; pp * tp <= gpus; ++pp) {
      if ((gpus / tp) % pp != 0 || pp > m.layers) continue;
      for (int ep = 1; ep <= tp; ++ep) {
        if (tp % ep != 0) continue;
        if (ep > 1 && (!m.moe.enabled() || m.moe.experts % ep != 0)) continue;
        Layout l;
        l.tp = tp;
        l.pp = pp;
        l.ep = ep;
        l.dp = gpus / (tp * pp);
        out.push_back(l);
      }
    }
  }
  return out;
}

int batch_candidates(long long fit, long long cap, long long fixed, long long* out, int max_out) {
  if (fixed > 0) {
    out[0] = fixed;
    return 1;
  }
  const long long top = std::min(fit, cap);
  int n = 0;
  for (long long b = 1; b < top && n < max_out - 1; b *= 2) out[n++] = b;
  if (top >= 1) out[n++] = top;
  return n;
}

namespace {

// Non-dominated feasible results: sorted by TPOT, each strictly faster in throughput than all before it.
std::vector<Result> pareto(std::vector<Result> all) {
  std::sort(all.begin(), all.end(), [](const Result& a, const Result& b) {
    if (a.latency.tpot_s != b.latency.tpot_s) return a.latency.tpot_s < b.latency.tpot_s;
    return a.throughput.tokens_per_s_per_gpu > b.throughput.tokens_per_s_per_gpu;
  });
  std::vector<Result> front;
  double best = -1;
  for (const Result& r : all) {
    if (r.throughput.tokens_per_s_per_gpu > best * (1 + 1e-9)) {
      front.push_back(r);
      best = r.throughput.tokens_per_s_per_gpu;
    }
  }
  return front;
}

bool better(const Result& a, const Result& b) {
  if (a.throughput.tokens_per_s_per_gpu != b.throughput.tokens_per_s_per_gpu)
    return a.throughput.tokens_per_s_per_gpu > b.throughput.tokens_per_s_per_gpu;
  return a.latency.e2e_s < b.latency.e2e_s;
}

}  // namespace

SearchResult search(const ServeModel& sm, const SearchSpec& spec, std::vector<Result>* evaluated) {
  SearchResult out;
  std::vector<Result> feasible;
  Result miss;  // nearest miss: fits in memory with the lowest TPOT, else the smallest memory overshoot
  bool have_miss = false, miss_fits = false;
  long long cands[64];
  for (Layout l : layouts(sm.model(), spec.gpus)) {
    const long long fit = sm.max_batch(l);
    out.largest_fit = std::max(out.largest_fit, fit);
    const int n = batch_candidates(std::max<long long>(fit, 1), sm.options().max_batch, spec.batch, cands, 64);
    long long ok = 0, slo_bad = 0;  // the largest batch meeting the SLOs, the smallest missing them (this layout)
    int bisections = 0;
    for (int i = 0; i < n + 1; ++i) {
      if (i == n) {
        if (++bisections > 62) break;  // the interval halves each step; a guard, never reached
        // TPOT and TTFT grow with the batch: bisect between the last power of two that meets the SLOs and the
        // first that does not, so the best batch under an SLO is not rounded down to a power of two.
        if (ok == 0 || slo_bad == 0 || slo_bad - ok <= 1) break;
        l.batch = ok + (slo_bad - ok) / 2;
      } else {
        l.batch = cands[i];
      }
      const Result r = sm.evaluate(l, spec.slo);
      ++out.evaluated;
      if (evaluated) evaluated->push_back(r);
      if (r.feasible()) ok = std::max(ok, l.batch);
      else if (r.verdict != Verdict::out_of_memory && (slo_bad == 0 || l.batch < slo_bad)) slo_bad = l.batch;
      if (i == n) --i;  // keep bisecting
      if (r.feasible()) {
        feasible.push_back(r);
        if (!out.found || better(r, out.best)) out.best = r;
        out.found = true;
        continue;
      }
      const bool fits = r.verdict != Verdict::out_of_memory;
      const bool take = !have_miss || (fits && !miss_fits) ||
                        (fits == miss_fits && (fits ? r.latency.tpot_s < miss.latency.tpot_s
                                                    : r.memory.total() / r.memory.capacity < miss.memory.total() / miss.memory.capacity));
      if (take) miss = r, have_miss = true, miss_fits = fits;
    }
  }
  if (!out.found) {
    out.best = miss;
    if (!have_miss) out.reason = fmt::format("no layout of {} GPUs divides the model ({} heads)", spec.gpus, sm.model().heads);
    else if (!miss_fits)
      out.reason = fmt::format("out of memory on every layout of {} GPUs: the lightest needs {:.1f} GiB per GPU of {:.1f} GiB",
                               spec.gpus, miss.memory.total() / (1 << 30), miss.memory.capacity / (1 << 30));
    else
      out.reason = fmt::format("no layout meets the SLOs: the best reaches TTFT {:.1f} ms, TPOT {:.2f} ms ({})",
                               1e3 * miss.latency.ttft_s, 1e3 * miss.latency.tpot_s, verdict_name(miss.verdict));
  }
  out.front = pareto(std::move(feasible));
  return out;
}

}  // namespace scaleplan::serve
