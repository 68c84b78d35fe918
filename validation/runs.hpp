#pragma once
// Published training runs (schema of shared/validation/published_runs.yaml) and their prediction.
#include <optional>
#include <string>
#include <vector>

#include "hardware/cluster.hpp"
#include "model/model.hpp"
#include "strategies/plan.hpp"
#include "strategies/step_report.hpp"
#include "validation/serve_runs.hpp"

namespace scaleplan::validation {

struct RunSpec {
  std::string id;
  std::string source;
  model::ModelSpec model;
  hw::Cluster cluster;
  long long gpus = 0;
  strategies::Plan plan;          // with the row's fields; nulls noted in `defaults`
  std::vector<std::string> defaults;  // "microbatch=1 (null in the source)", ...
  bool vpp_free = false;          // vpp null: tuned (see README "Validation defaults")
  bool recompute_free = false;    // recompute null: least recompute that fits
  bool sp_free = false;
  // result
  std::optional<double> iteration_time_s, tflops_per_gpu, mfu_pct, hfu_pct, percent_of_peak;
  std::string flops_counting;
  std::string unsupported;        // non-empty: needs a capability not built yet
};

struct LayerTimingSpec {
  std::string id, experiment;
  model::ModelSpec model;
  hw::Cluster cluster;
  strategies::Plan plan;
  double forward_ms = 0, backward_ms = 0;
};

struct RunsFile {
  std::string file;
  std::vector<RunSpec> runs;
  std::vector<LayerTimingSpec> layer_timings;
  std::vector<ServeRunSpec> serve_runs;  // `kind: serve` rows (validation/serve_runs.hpp)
};

// Parses a runs file; errors name file:line:column and field.
RunsFile parse_runs(const std::string& text, const std::string& file);
RunsFile load_runs(const std::string& spec);  // a path, or "" for the embedded shared set

struct RunResult {
  std::string id;
  std::string metric;   // iteration_time_s | tflops_per_gpu | mfu_pct | percent_of_peak
  double published = 0, predicted = 0, error_pct = 0;
  bool supported = true;
  bool feasible = true;  // memory verdict of the predicted plan
  std::string note;      // defaults used, unsupported reason
  strategies::StepReport report;
};

struct LayerTimingResult {
  std::string id, experiment;
  double fwd_published_ms = 0, fwd_predicted_ms = 0, bwd_published_ms = 0, bwd_predicted_ms = 0;
  double fwd_error_pct = 0, bwd_error_pct = 0;
};

struct ValidationSummary {
  std::vector<RunResult> runs;
  std::vector<LayerTimingResult> layers;
  double mape_pct = 0, max_error_pct = 0;
  int counted = 0;
};

RunResult predict_run(const RunSpec& r);
LayerTimingResult predict_layer(const LayerTimingSpec& l);
ValidationSummary validate(const RunsFile& f);

// FLOPs per iteration under a published counting convention (see the runs file's meta).
double sc21_eq3_flops(const model::ModelSpec& m, double gbs);  // 96 B s l h^2 (1 + s/6h + V/16lh)
double kor22_eq7_flops(const model::ModelSpec& m, double gbs);  // 72 B L s h^2 (1 + s/6h + V/12hL)

}  // namespace scaleplan::validation
