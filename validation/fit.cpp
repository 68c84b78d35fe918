#include "validation/fit.hpp"

#include <algorithm>
#include <cmath>
#include <map>

namespace scaleplan::validation {

const std::vector<FitParam>& fit_params() {
  // The parameters configs/devices marks as fitted (commit f4dd8a2 "Fit A100 and H100 efficiency
  // parameters on the shared validation set"); priors are the values those files held before it.
  static const std::vector<FitParam> k = {
      {"a100.gemm_max", {"a100"}, &hw::Efficiency::gemm_max, 0.40, 0.95, false, 0.80,
       "a100-40gb.yaml before fitting: cuBLAS bf16/fp16 on A100 ~250 of 312 TFLOP/s", "a100-80gb"},
      {"a100.gemm_half_flop", {"a100"}, &hw::Efficiency::gemm_half_flop, 1e8, 5e10, true, 1e9,
       "a100-80gb.yaml before fitting (starting point)", "a100-80gb"},
      {"h100.gemm_max", {"h100", "h200"}, &hw::Efficiency::gemm_max, 0.40, 0.95, false, 0.75,
       "h100-sxm-80gb.yaml before fitting: large bf16 cuBLAS GEMMs reach ~700-800 of 989 TFLOP/s", "h100-sxm-80gb"},
      {"h100.flash_attention", {"h100", "h200"}, &hw::Efficiency::flash_attention, 0.20, 0.90, false, 0.40,
       "h100-sxm-80gb.yaml before fitting: FlashAttention-2 on H100 ~35-40% of peak (FA2 paper)", "h100-sxm-80gb"},
      // V100 (issue 15): the DGX-2H rows of Shoeybi et al. 2019 (group megatron2019) exercise them.
      {"v100.gemm_max", {"v100"}, &hw::Efficiency::gemm_max, 0.40, 0.95, false, 0.664,
       "Markidis et al. 2018 (arXiv 1803.04014) abstract: cuBLAS on V100 tensor cores 'up to 83 Tflops/s' of 125", "v100-32gb"},
      {"overlap_slowdown", {""}, &hw::Efficiency::overlap_slowdown, 0.0, 1.0, false, 0.2,
       "hw::Efficiency default before fitting", "a100-80gb"},
      // H100 / H200 fitted on their own (issue 15, branch acc5): the compute slowdown under
      // overlapped collectives is the device's (NCCL's kernels take SMs and HBM bandwidth from the
      // compute: 132 SMs on H100, 108 on A100), so the H100 rows do not set the A100 / V100 value.
      // Listed after the generic entry: apply_params applies in order, this one wins on H100 / H200.
      {"h100.overlap_slowdown", {"h100", "h200"}, &hw::Efficiency::overlap_slowdown, 0.0, 1.0, false, 0.2,
       "hw::Efficiency default before fitting", "h100-sxm-80gb"},
  };
  return k;
}

bool param_applies(const FitParam& p, const hw::Device& d) {
  for (const auto& pre : p.prefixes)
    if (d.name.rfind(pre, 0) == 0) return true;
  return false;
}

void apply_params(std::vector<RunSpec>& runs, const std::vector<double>& v) {
  const auto& ps = fit_params();
  for (auto& r : runs)
    for (std::size_t i = 0; i < ps.size(); ++i)
      if (param_applies(ps[i], r.cluster.device)) r.cluster.device.eff.*ps[i].field = v[i];
}

std::vector<double> shipped_values() {
  std::vector<double> v;
  for (const auto& p : fit_params()) v.push_back(hw::load_device(p.shipped_device).eff.*p.field);
  return v;
}

namespace {

constexpr int kGridPoints = 7;     // coarse grid per parameter and sweep
constexpr int kGoldenSteps = 10;   // golden-section steps in the best grid cell pair (0.618^10 ~ 1 %)
constexpr int kMaxSweeps = 20;
constexpr double kFitTolPct = 1e-3;  // stop when a sweep gains less MAPE than this (percentage points)

// Mean |error| of the runs (and of the layer timings' forward and backward passes) under parameter
// values, re-predicting only the entries whose parameters changed.
class Objective {
 public:
  Objective(std::vector<RunSpec> rows, std::vector<LayerTimingSpec> layers) : rows_(std::move(rows)), layers_(std::move(layers)) {
    const auto& ps = fit_params();
    const std::size_t n = rows_.size() + layers_.size();
    uses_.resize(n);
    for (std::size_t r = 0; r < n; ++r)
      for (std::size_t i = 0; i < ps.size(); ++i)
        if (param_applies(ps[i], device(r))) uses_[r].push_back(i);
    key_.assign(n, {});
    err_.assign(n, -1);
  }
  bool uses(std::size_t i) const {
    for (const auto& u : uses_)
      if (std::find(u.begin(), u.end(), i) != u.end()) return true;
    return false;
  }
  double operator()(const std::vector<double>& v) {
    ++evaluations_;
    double sum = 0, terms = 0, run_sum = 0;
    max_ = 0;
    counted_ = 0;
    for (std::size_t r = 0; r < uses_.size(); ++r) {
      std::vector<double> key;
      for (std::size_t i : uses_[r]) key.push_back(v[i]);
      if (err_[r] < -0.5 || key != key_[r]) {
        const auto& ps = fit_params();
        for (std::size_t i : uses_[r]) device(r).eff.*ps[i].field = v[i];
        err_[r] = error(r);
        key_[r] = std::move(key);
      }
      if (err_[r] < 0) continue;
      sum += err_[r];
      if (r < rows_.size()) {
        terms += 1, run_sum += err_[r], ++counted_;
        max_ = std::max(max_, err_[r]);
      } else {
        terms += 2;  // forward + backward
      }
    }
    mape_ = counted_ > 0 ? run_sum / counted_ : 0;
    return terms > 0 ? sum / terms : 0;
  }
  double mape() const { return mape_; }
  double max_error() const { return max_; }
  int counted() const { return counted_; }
  int layers() const { return static_cast<int>(layers_.size()); }
  int evaluations() const { return evaluations_; }

 private:
  hw::Device& device(std::size_t r) { return r < rows_.size() ? rows_[r].cluster.device : layers_[r - rows_.size()].cluster.device; }
  // |error| of a run, the sum of a layer's forward and backward |errors|; -0.25: not predictable.
  double error(std::size_t r) const {
    if (r >= rows_.size()) {
      const LayerTimingResult l = predict_layer(layers_[r - rows_.size()]);
      return std::fabs(l.fwd_error_pct) + std::fabs(l.bwd_error_pct);
    }
    const RunResult rr = predict_run(rows_[r]);
    return rr.supported ? std::fabs(rr.error_pct) : -0.25;
  }

  std::vector<RunSpec> rows_;
  std::vector<LayerTimingSpec> layers_;
  std::vector<std::vector<std::size_t>> uses_;
  std::vector<std::vector<double>> key_;
  std::vector<double> err_;
  double max_ = 0, mape_ = 0;
  int counted_ = 0, evaluations_ = 0;
};

double to_u(const FitParam& p, double x) { return p.log_scale ? std::log(x) : x; }
double from_u(const FitParam& p, double u) { return p.log_scale ? std::exp(u) : u; }
// Position in the box: 0 at lo, 1 at hi (on the log scale for log parameters).
double to_unit(const FitParam& p, double x) { return (to_u(p, x) - to_u(p, p.lo)) / (to_u(p, p.hi) - to_u(p, p.lo)); }
double from_unit(const FitParam& p, double t) { return from_u(p, to_u(p, p.lo) + t * (to_u(p, p.hi) - to_u(p, p.lo))); }

// Minimises g(t) on [a, b]: a grid, then golden-section search between the best grid point's
// neighbours. Returns the best t seen, or `t0` unless something is strictly better than `best`.
template <typename G>
double line_minimise(G&& g, double a, double b, double t0, double& best) {
  double tbest = t0;
  int kbest = -1;
  const double step = (b - a) / (kGridPoints - 1);
  for (int k = 0; k < kGridPoints; ++k) {
    const double val = g(a + k * step);
    if (val < best - 1e-12) best = val, tbest = a + k * step, kbest = k;
  }
  double lo = kbest >= 0 ? a + std::max(kbest - 1, 0) * step : std::max(a, tbest - step);
  double hi = kbest >= 0 ? a + std::min(kbest + 1, kGridPoints - 1) * step : std::min(b, tbest + step);
  const double r = (std::sqrt(5.0) - 1) / 2;
  double c = hi - r * (hi - lo), d = lo + r * (hi - lo);
  double fc = g(c), fd = g(d);
  for (int s = 0; s < kGoldenSteps; ++s) {
    if (fc < fd) hi = d, d = c, fd = fc, c = hi - r * (hi - lo), fc = g(c);
    else lo = c, c = d, fc = fd, d = lo + r * (hi - lo), fd = g(d);
  }
  if (fc < best - 1e-12) best = fc, tbest = c;
  if (fd < best - 1e-12) best = fd, tbest = d;
  return tbest;
}

// One coordinate over its bounds. Keeps the current value unless a candidate is strictly better.
double minimise_coordinate(Objective& f, std::vector<double>& v, std::size_t i, double best) {
  const FitParam& p = fit_params()[i];
  std::vector<double> w = v;
  auto g = [&](double t) {
    w[i] = from_unit(p, t);
    return f(w);
  };
  v[i] = from_unit(p, line_minimise(g, 0.0, 1.0, to_unit(p, v[i]), best));
  return best;
}

// Along the direction a sweep moved (in box units): coordinate search alone crawls along ridges
// where two parameters trade off (gemm_max against overlap_slowdown); this is Powell's step.
double minimise_along(Objective& f, std::vector<double>& v, const std::vector<double>& from, const std::vector<bool>& on,
                      double best) {
  const auto& ps = fit_params();
  std::vector<double> x0(v.size()), d(v.size());
  double tlo = -1e9, thi = 1e9, norm = 0;
  for (std::size_t i = 0; i < v.size(); ++i) {
    x0[i] = to_unit(ps[i], v[i]);
    d[i] = on[i] ? x0[i] - to_unit(ps[i], from[i]) : 0;
    norm += d[i] * d[i];
    if (d[i] > 0) tlo = std::max(tlo, -x0[i] / d[i]), thi = std::min(thi, (1 - x0[i]) / d[i]);
    if (d[i] < 0) tlo = std::max(tlo, (1 - x0[i]) / d[i]), thi = std::min(thi, -x0[i] / d[i]);
  }
  if (norm < 1e-12) return best;
  std::vector<double> w = v;
  auto at = [&](double t) {
    for (std::size_t i = 0; i < v.size(); ++i)
      if (on[i]) w[i] = from_unit(ps[i], std::clamp(x0[i] + t * d[i], 0.0, 1.0));
    return w;
  };
  const double t = line_minimise([&](double t) { return f(at(t)); }, tlo, thi, 0.0, best);
  v = at(t);
  return best;
}

// Rows without a strategy keep the plan the search finds under the priors while fitting (one
// search per row instead of one per evaluation).
std::vector<RunSpec> freeze_searched(std::vector<RunSpec> rows) {
  for (auto& r : rows) {
    if (!r.search || !r.refused.empty()) continue;
    const RunResult rr = predict_run(r);
    if (!rr.supported) continue;
    r.search = false;
    r.plan = rr.report.plan;
    r.vpp_free = false;
    r.recompute_options = {r.plan.recompute};
  }
  return rows;
}

}  // namespace

namespace {

// The objective over the rows (refused ones dropped) and layers, all set to `values`.
Objective make_objective(const std::vector<RunSpec>& rows, const std::vector<LayerTimingSpec>& layers,
                         const std::vector<double>& values) {
  std::vector<RunSpec> start;
  for (const auto& r : rows)
    if (r.refused.empty()) start.push_back(r);
  apply_params(start, values);
  std::vector<LayerTimingSpec> lts = layers;
  const auto& ps = fit_params();
  for (auto& l : lts)
    for (std::size_t i = 0; i < ps.size(); ++i)
      if (param_applies(ps[i], l.cluster.device)) l.cluster.device.eff.*ps[i].field = values[i];
  return Objective(freeze_searched(std::move(start)), std::move(lts));
}

void finish(Objective& f, FitResult& out) {
  out.objective_pct = f(out.values);
  out.mape_pct = f.mape();
  out.max_error_pct = f.max_error();
  out.rows = f.counted();
  out.layers = f.layers();
  out.evaluations = f.evaluations();
}

}  // namespace

FitResult evaluate_params(const std::vector<RunSpec>& rows, const std::vector<LayerTimingSpec>& layers,
                          const std::vector<double>& values) {
  FitResult out;
  out.values = values;
  Objective f = make_objective(rows, layers, values);
  for (std::size_t i = 0; i < values.size(); ++i) out.identified.push_back(f.uses(i));
  finish(f, out);
  return out;
}

FitResult fit(const std::vector<RunSpec>& rows, const std::vector<LayerTimingSpec>& layers) {
  const auto& ps = fit_params();
  FitResult out;
  for (const auto& p : ps) out.values.push_back(p.prior);
  Objective f = make_objective(rows, layers, out.values);
  for (std::size_t i = 0; i < ps.size(); ++i) out.identified.push_back(f.uses(i));
  double best = f(out.values);
  for (int sweep = 0; sweep < kMaxSweeps; ++sweep) {
    const double before = best;
    const std::vector<double> from = out.values;
    for (std::size_t i = 0; i < ps.size(); ++i)
      if (out.identified[i]) best = minimise_coordinate(f, out.values, i, best);
    best = minimise_along(f, out.values, from, out.identified, best);
    if (before - best < kFitTolPct) break;
  }
  finish(f, out);
  return out;
}

CvResult cross_validate(const RunsFile& f) {
  CvResult out;
  std::vector<std::string> order;
  std::map<std::string, std::vector<std::size_t>> members;
  for (std::size_t i = 0; i < f.runs.size(); ++i) {
    const std::string& g = f.runs[i].group;
    if (!members.count(g)) order.push_back(g);
    members[g].push_back(i);
  }
  std::vector<RunSpec> shipped = f.runs;
  out.runs.resize(f.runs.size());
  double sum = 0, sum_mem = 0;
  int n = 0;
  for (const auto& g : order) {
    CvGroup cg;
    cg.group = g;
    std::vector<RunSpec> train;
    for (std::size_t i = 0; i < f.runs.size(); ++i)
      if (f.runs[i].group != g) train.push_back(f.runs[i]);
    std::vector<LayerTimingSpec> train_layers;
    for (const auto& l : f.layer_timings)
      if (l.group != g) train_layers.push_back(l);
    cg.fit = fit(train, train_layers);
    std::vector<RunSpec> test;
    for (std::size_t i : members[g]) test.push_back(f.runs[i]);
    apply_params(test, cg.fit.values);
    double gsum = 0, fsum = 0;
    for (std::size_t k = 0; k < test.size(); ++k) {
      RunResult rr = predict_run(test[k]);
      const RunResult fitted = predict_run(shipped[members[g][k]]);
      if (rr.supported) {
        const double e = std::fabs(rr.error_pct);
        gsum += e, sum += e, ++n, ++cg.runs;
        cg.max_error_pct = std::max(cg.max_error_pct, e);
        out.cv_max_error_pct = std::max(out.cv_max_error_pct, e);
        if (fitted.supported) fsum += std::fabs(fitted.error_pct);
        if (rr.feasible) sum_mem += e;
        else ++out.oom;
      }
      out.runs[members[g][k]] = std::move(rr);
    }
    cg.mape_pct = cg.runs > 0 ? gsum / cg.runs : 0;
    cg.fitted_mape_pct = cg.runs > 0 ? fsum / cg.runs : 0;
    out.groups.push_back(std::move(cg));
  }
  out.cv_mape_pct = n > 0 ? sum / n : 0;
  out.cv_mape_in_memory_pct = n > out.oom ? sum_mem / (n - out.oom) : 0;
  return out;
}

}  // namespace scaleplan::validation
