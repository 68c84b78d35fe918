#include "gui/timeline_provider.hpp"

#include <algorithm>
#include <stdexcept>
#include <vector>

#include "strategies/pipeline.hpp"

namespace scaleplan::gui {

using strategies::Plan;
using strategies::Schedule;
using strategies::Span;
using strategies::SpanKind;
using strategies::Timeline;

int stage_rank(const hw::Cluster& c, const Plan& p, int stage) {
  // Same strides as the estimator (simulator/analytic/estimator.cpp): TP, CP innermost, then DP
  // before PP (Megatron) or PP before DP (cluster software.rank_order tp-cp-pp-dp).
  const int s_pp = c.sw.pp_inside_dp ? p.tp * p.cp : p.tp * p.cp * p.dp;
  return stage * s_pp;
}

namespace {

enum Dir { kF = 0, kB = 1 };
struct Op {
  Dir dir;
  int chunk;
  long long mb;
};

// The order stage `s` of `P` runs its ops (v model chunks, m microbatches).
std::vector<Op> stage_order(Schedule kind, int s, int P, int v, long long m) {
  std::vector<Op> ops;
  if (kind == Schedule::gpipe) {  // GPipe: all forwards, then all backwards (last in, first out)
    for (long long j = 0; j < m; ++j) ops.push_back({kF, 0, j});
    for (long long j = m - 1; j >= 0; --j) ops.push_back({kB, 0, j});
    return ops;
  }
  // Megatron-LM 1F1B / interleaved: virtual microbatch k of m*v; chunk = (k mod P*v) / P (reversed
  // for backward), microbatch = (k / (P*v)) * P + k mod P; warm-up (P-s-1)*2 + (v-1)*P forwards
  // when interleaved, P-s-1 without (forward_backward_pipelining_with[out]_interleaving).
  const long long total = m * v;
  auto op_of = [&](long long k, Dir d) {
    const long long in_group = k % (static_cast<long long>(P) * v);
    int chunk = static_cast<int>(in_group / P);
    if (d == kB) chunk = v - 1 - chunk;
    const long long mb = v == 1 ? k : (k / (static_cast<long long>(P) * v)) * P + k % P;
    return Op{d, chunk, mb};
  };
  long long warm = v == 1 ? std::min<long long>(P - s - 1, m) : (m == P ? total : std::min<long long>((P - s - 1) * 2LL + (v - 1LL) * P, total));
  for (long long k = 0; k < warm; ++k) ops.push_back(op_of(k, kF));
  for (long long k = 0; k < total - warm; ++k) {
    ops.push_back(op_of(k + warm, kF));
    ops.push_back(op_of(k, kB));
  }
  for (long long k = total - warm; k < total; ++k) ops.push_back(op_of(k, kB));
  return ops;
}

}  // namespace

Timeline analytic_schedule_timeline(const analytic::Estimator& est, const Plan& p) {
  const model::ModelSpec& m = est.model();
  const hw::Cluster& c = est.cluster();
  const analytic::LayerTable t = est.prepare(p);
  const strategies::StepReport r = est.evaluate(p, t);
  const int P = p.pp;
  const int v = p.schedule == Schedule::interleaved ? p.vpp : 1;
  const long long M = p.microbatches();
  if (M <= 0) throw std::invalid_argument("analytic_schedule_timeline: the plan has no microbatch (resolve it first)");
  const strategies::StageLayers sl = strategies::stage_layers(p, m.layers);

  // Per-op times (one microbatch, one chunk), as the estimator sums them per stage.
  const auto& lc = t.lc;
  const auto& ec = t.ec;
  const auto& hc = t.hc;
  const double layer_f = lc.fwd_s + lc.fwd_comm_s;
  const double layer_r = lc.recompute_s + lc.recompute_comm_s;
  const double layer_b = lc.bwd_s + lc.bwd_comm_exposed_s;
  // The estimator charges 2 v sends per microbatch to every stage (pp_comm_exposed_s = m 2 v t_p2p).
  const double t_p2p = P > 1 ? r.pp_comm_exposed_s / (2.0 * v * static_cast<double>(M)) : 0.0;
  auto layers_of = [&](int s) { return P == 1 ? sl.first : s == 0 ? sl.first : s == P - 1 ? sl.last : sl.middle; };
  struct Cost {
    double f, rc, b;
  };
  auto cost = [&](int s, int chunk) {
    const double n = layers_of(s) / v;
    Cost x{n * layer_f, n * layer_r, n * layer_b};
    if (s == 0 && chunk == 0) {
      x.f += ec.fwd_s + ec.fwd_comm_s;
      x.b += ec.bwd_s;
    }
    if (s == P - 1 && chunk == v - 1) {
      x.f += hc.fwd_s + hc.fwd_comm_s;
      x.b += hc.bwd_s + hc.bwd_comm_exposed_s;
    }
    return x;
  };

  // End time of each op (including its send): [dir][stage][chunk][mb].
  const size_t n_ops = static_cast<size_t>(2) * P * v * M;
  std::vector<double> end(n_ops, -1.0);
  auto idx = [&](Dir d, int s, int chunk, long long j) {
    return ((static_cast<size_t>(d) * P + s) * v + chunk) * static_cast<size_t>(M) + static_cast<size_t>(j);
  };
  // The op whose output this op needs (-1: none).
  auto dep = [&](const Op& o, int s) -> long long {
    if (o.dir == kF) {
      if (s > 0) return static_cast<long long>(idx(kF, s - 1, o.chunk, o.mb));
      if (o.chunk > 0) return static_cast<long long>(idx(kF, P - 1, o.chunk - 1, o.mb));
      return -1;
    }
    if (s < P - 1) return static_cast<long long>(idx(kB, s + 1, o.chunk, o.mb));
    if (o.chunk < v - 1) return static_cast<long long>(idx(kB, 0, o.chunk + 1, o.mb));
    return static_cast<long long>(idx(kF, P - 1, v - 1, o.mb));
  };

  std::vector<std::vector<Op>> order(P);
  for (int s = 0; s < P; ++s) order[s] = stage_order(p.schedule, s, P, v, M);
  std::vector<size_t> next(P, 0);
  std::vector<double> free_at(P, 0.0);
  Timeline tl;
  tl.spans.reserve(n_ops * (layer_r > 0 ? 3 : 2) + 3 * P);
  size_t done = 0;
  while (done < n_ops) {
    bool moved = false;
    for (int s = 0; s < P; ++s) {
      while (next[s] < order[s].size()) {
        const Op& o = order[s][next[s]];
        const long long d = dep(o, s);
        if (d >= 0 && end[static_cast<size_t>(d)] < 0) break;  // input not there yet
        double at = std::max(free_at[s], d >= 0 ? end[static_cast<size_t>(d)] : 0.0);
        const Cost x = cost(s, o.chunk);
        const int rank = stage_rank(c, p, s);
        const std::string tag = " mb" + std::to_string(o.mb) + (v > 1 ? " c" + std::to_string(o.chunk) : "");
        if (o.dir == kF) {
          tl.spans.push_back({rank, SpanKind::compute, "F" + tag, at, x.f});
          at += x.f;
        } else {
          if (x.rc > 0) {
            tl.spans.push_back({rank, SpanKind::recompute, "R" + tag, at, x.rc});
            at += x.rc;
          }
          tl.spans.push_back({rank, SpanKind::compute, "B" + tag, at, x.b});
          at += x.b;
        }
        if (t_p2p > 0) {
          tl.spans.push_back({rank, SpanKind::comm, std::string(o.dir == kF ? "send act pp" : "send grad pp") + tag, at, t_p2p});
          at += t_p2p;
        }
        end[idx(o.dir, s, o.chunk, o.mb)] = at;
        free_at[s] = at;
        ++next[s];
        ++done;
        moved = true;
      }
    }
    if (!moved) throw std::logic_error("analytic_schedule_timeline: the schedule order deadlocks (internal error)");
  }

  // The tail after the pipeline flush, on every stage: exposed DP sync, optimizer, host overhead.
  const double flush = *std::max_element(free_at.begin(), free_at.end());
  for (int s = 0; s < P; ++s) {
    const int rank = stage_rank(c, p, s);
    double at = flush;
    if (r.dp_comm_exposed_s > 0) {
      tl.spans.push_back({rank, SpanKind::comm, "dp grad sync (exposed)", at, r.dp_comm_exposed_s});
      at += r.dp_comm_exposed_s;
    }
    if (r.time.optimizer_s > 0) {
      tl.spans.push_back({rank, SpanKind::optimizer, "optimizer step", at, r.time.optimizer_s});
      at += r.time.optimizer_s;
    }
    if (c.sw.step_overhead_s > 0) tl.spans.push_back({rank, SpanKind::idle, "host step overhead", at, c.sw.step_overhead_s});
  }
  return tl;
}

NamedTimelineProvider analytic_schedule_provider() {
  return {"analytic schedule", [](const model::ModelSpec& m, const hw::Cluster& c, const Plan& p) {
            const analytic::Estimator est(m, c);
            return analytic_schedule_timeline(est, p);
          }};
}

}  // namespace scaleplan::gui
