#include "simulator/search/capacity.hpp"

#include <numeric>
#include <optional>

#include "common/errors.hpp"
#include "simulator/analytic/estimator.hpp"

namespace scaleplan::search {

using strategies::Offload;
using strategies::Plan;
using strategies::StepReport;

const std::vector<CapacityStrategy>& capacity_strategies() {
  static const std::vector<CapacityStrategy> k = {
      {"ddp", 0, Offload::none},           {"zero1", 1, Offload::none},
      {"zero2", 2, Offload::none},         {"zero3", 3, Offload::none},
      {"zero_offload", 2, Offload::optimizer}, {"zero3_offload", 3, Offload::params},
      {"zero_infinity", 3, Offload::nvme}, {"chunked", 3, Offload::gemini},
  };
  return k;
}

model::ModelSpec gpt_family(long long k, long long layers, long long seq) {
  model::ModelSpec m;
  m.name = "gpt-h" + std::to_string(128 * k) + "-L" + std::to_string(layers);
  m.layers = layers;
  m.hidden = 128 * k;
  m.heads = k;
  m.kv_heads = k;
  m.ffn = 4 * m.hidden;
  m.vocab = 50257;
  m.seq = seq;
  return m;  // GELU, LayerNorm, learned positions, tied embeddings, biases, dropout: ModelSpec defaults (GPT-2/3)
}

analytic::EstimatorOptions default_capacity_options() {
  analytic::EstimatorOptions o;
  o.dp_fused_grad_buffer_bytes = 4;  // ZeRO paper sec. 3.2: "a flattened fp32 buffer" (6 GB for 1.5B)
  return o;
}

Plan default_capacity_plan() {
  Plan p;
  p.mbs = 1;
  p.recompute = strategies::Recompute::full;
  return p;
}

namespace {

struct Trial {
  bool fits = false;
  long long k = 0, layers = 0;
  double params = 0;
  StepReport report;
};

class Prober {
 public:
  Prober(const hw::Cluster& c, const CapacitySpec& s, const CapacityStrategy& st) : c_(c), s_(s), st_(st) {}
  // Throws PlanError when the plan rules refuse this member.
  Trial run(long long k, long long layers) const {
    const model::ModelSpec m = gpt_family(k, layers, s_.seq);
    Plan p = s_.base;
    p.zero = st_.zero;
    p.offload = st_.offload;
    p = strategies::resolve_plan(p, m, c_, s_.gpus);
    const analytic::Estimator est(m, c_, s_.options);
    Trial t;
    t.k = k;
    t.layers = layers;
    t.params = m.total_params();
    t.report = est.evaluate(p);
    t.fits = t.report.feasible;
    return t;
  }

 private:
  const hw::Cluster& c_;
  const CapacitySpec& s_;
  const CapacityStrategy& st_;
};

std::string binding_of(const StepReport& r) {
  if (r.offload.host_over) return "host";
  if (r.offload.nvme_over) return "nvme";
  return "gpu";
}

}  // namespace

CapacityEntry capacity_of(const hw::Cluster& c, const CapacitySpec& s, const CapacityStrategy& st) {
  if (s.gpus <= 0) throw UsageError("--gpus must be a positive GPU count (got " + std::to_string(s.gpus) + ")");
  CapacityEntry e;
  e.strategy = st.name;
  const Prober probe(c, s, st);
  // k must give heads (= k) and layers (= k) the plan's tp and pp can divide.
  const long long tp = std::max(1, s.base.tp), pp = std::max(1, s.base.pp);
  const long long step = std::lcm(tp, pp);
  std::optional<Trial> best, refused;
  auto attempt = [&](long long k, long long L) -> std::optional<Trial> {
    try {
      return probe.run(k, L);
    } catch (const PlanError& err) {
      if (err.key() == "offload" || err.key() == "zero") {  // the strategy itself is refused here
        e.available = false;
        e.reason = err.what();
        return std::nullopt;
      }
      throw;
    }
  };
  // Smallest member, then doubling, then bisection on j (k = j * step).
  long long lo = 0, hi = 0;
  {
    auto t = attempt(step, step);
    if (!t) return e;
    if (!t->fits) {
      refused = std::move(*t);
    } else {
      best = std::move(*t);
      lo = 1;
    }
  }
  if (lo == 1) {
    const long long jmax = std::max<long long>(1, s.max_k / step);
    long long j = 1;
    hi = jmax + 1;
    while (2 * j <= jmax) {
      auto t = attempt(2 * j * step, 2 * j * step);
      if (!t) return e;
      if (!t->fits) {
        hi = 2 * j;
        refused = std::move(*t);
        break;
      }
      best = std::move(*t);
      j *= 2;
    }
    lo = j;
    while (hi - lo > 1) {
      const long long mid = (lo + hi) / 2;
      auto t = attempt(mid * step, mid * step);
      if (!t) return e;
      if (t->fits) {
        best = std::move(*t);
        lo = mid;
      } else {
        refused = std::move(*t);
        hi = mid;
      }
    }
    // Finer: more layers at this hidden size while the model fits (bisection on layers in
    // (k, 2k], in steps of pp): the next k may be refused by a step in the chunk waste, or be
    // a coarse step in size.
    const long long k = lo * step;
    long long llo = k / pp, lhi = 2 * k / pp + 1;  // layers = j * pp; llo fits, lhi is out of range
    while (lhi - llo > 1) {
      const long long mid = (llo + lhi) / 2;
      auto t = attempt(k, mid * pp);
      if (!t) return e;
      if (t->fits) {
        best = std::move(*t);
        llo = mid;
      } else {
        refused = std::move(*t);
        lhi = mid;
      }
    }
    (void)lhi;
  }
  if (best) {
    e.max_params = best->params;
    e.layers = best->layers;
    e.hidden = 128 * best->k;
    e.heads = best->k;
    e.report = best->report;
    e.tokens_per_s = best->report.throughput.tokens_per_s;
  }
  if (refused) {
    e.binding = binding_of(refused->report);
    e.binding_reason = refused->report.reason;
  }
  return e;
}

std::vector<CapacityEntry> run_capacity(const hw::Cluster& c, const CapacitySpec& s) {
  std::vector<CapacityEntry> out;
  for (const CapacityStrategy& st : capacity_strategies()) out.push_back(capacity_of(c, s, st));
  return out;
}

}  // namespace scaleplan::search
