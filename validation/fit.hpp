#pragma once
// Fitting the device efficiency parameters to published runs, and leave-one-group-out
// cross-validation (issue 15 item 5, DESIGN.md sec. 6 `validate --cv group`).
//
// The fitted parameters are a declared list (fit_params()): each names where it lives (a field of
// hw::Efficiency on the devices whose preset name starts with one of its prefixes), its bounds, and
// its prior: the value it had before any fitting, with that value's source. A parameter that no
// fitting row exercises (no row on its devices) keeps its prior, so a group left out never lends
// its data to its own prediction. The minimiser is a bounded coordinate search (a grid, then a
// golden-section refinement around the best grid point, per parameter, repeated until a sweep
// gains less than kFitTolPct) of the MAPE over the fitting rows.
#include <string>
#include <vector>

#include "hardware/device.hpp"
#include "validation/runs.hpp"

namespace scaleplan::validation {

struct FitParam {
  const char* name;                   // "a100.gemm_max"
  std::vector<std::string> prefixes;  // device presets it applies to ("" = every device)
  double hw::Efficiency::*field;      // where it lives
  double lo, hi;                      // bounds
  bool log_scale;                     // searched on log(x) (a size, not a fraction)
  double prior;                       // the value before fitting
  const char* prior_source;
  const char* shipped_device;         // the preset whose shipped value the fit reproduces
};
const std::vector<FitParam>& fit_params();

bool param_applies(const FitParam& p, const hw::Device& d);
// Sets every parameter on the runs whose device it applies to.
void apply_params(std::vector<RunSpec>& runs, const std::vector<double>& values);
// The values shipped in configs/devices (shipped_device's preset), one per fit_params().
std::vector<double> shipped_values();

struct FitResult {
  std::vector<double> values;    // one per fit_params()
  std::vector<bool> identified;  // false: no fitting row on the parameter's devices (kept at its prior)
  double objective_pct = 0;  // mean |error| over the runs and the layer timings' forward and backward
  double mape_pct = 0, max_error_pct = 0;  // over the runs only
  int rows = 0;         // fitting rows counted in the MAPE
  int layers = 0;       // single-layer timings in the objective
  int evaluations = 0;  // objective evaluations
};

// Fits fit_params() to the rows (refused rows are skipped) and the single-layer timings (their
// forward and backward errors are two more terms of the mean). Rows without a strategy are searched
// once, under the priors, and that plan is kept while fitting.
FitResult fit(const std::vector<RunSpec>& rows, const std::vector<LayerTimingSpec>& layers = {});

// The same objective and errors at given values (no fitting): how good the shipped values are.
FitResult evaluate_params(const std::vector<RunSpec>& rows, const std::vector<LayerTimingSpec>& layers,
                          const std::vector<double>& values);

struct CvGroup {
  std::string group;
  int runs = 0;                // predicted rows of the group
  double mape_pct = 0;         // the group predicted with parameters fitted on the other groups
  double max_error_pct = 0;
  double fitted_mape_pct = 0;  // the group predicted with the shipped parameters
  FitResult fit;               // the fit without this group
};

struct CvResult {
  std::vector<CvGroup> groups;   // in order of first appearance in the file
  std::vector<RunResult> runs;   // each row predicted by the fit that left its group out
  double cv_mape_pct = 0, cv_max_error_pct = 0;
  int oom = 0;  // held-out predictions whose plan does not fit in memory
  double cv_mape_in_memory_pct = 0;  // cv_mape_pct without them
};

// Leave-one-group-out over RunSpec::group.
CvResult cross_validate(const RunsFile& f);

}  // namespace scaleplan::validation
