#pragma once
// Published training runs (schema of shared/validation/published_runs.yaml) and their prediction.
#include <optional>
#include <string>
#include <vector>

#include "hardware/cluster.hpp"
#include "model/model.hpp"
#include "strategies/plan.hpp"
#include "strategies/step_report.hpp"
#include "validation/infer.hpp"
#include "validation/serve_runs.hpp"

namespace scaleplan::validation {

struct RunSpec {
  std::string id;
  std::string source;
  model::ModelSpec model;
  hw::Cluster cluster;
  long long gpus = 0;
  std::string group;              // source group for --cv group: `group:` or the id's prefix before '-'
  strategies::Plan plan;          // with the row's fields; nulls filled by infer_plan (validation/infer.hpp)
  std::vector<std::string> assumed;  // one line per inferred field: "recompute=full (eq3 counting ...)"
  bool vpp_free = false;          // vpp null: tuned (see README "Validation defaults")
  std::vector<strategies::Recompute> recompute_options;  // tried in order, the first that fits
  bool search = false;            // no strategy: predicted as the best plan search finds under `caps`
  StackCaps caps;                 // what the row's stack could do (infer.hpp)
  RowStrategy given;              // the strategy fields as published (search rows keep them)
  std::string refused;            // non-empty: the row cannot be predicted, and why (never aborts the file)
  // result
  std::optional<double> iteration_time_s, tflops_per_gpu, mfu_pct, hfu_pct, percent_of_peak;
  std::string flops_counting;
  std::string unsupported;        // non-empty: needs a capability not built yet
};

struct LayerTimingSpec {
  std::string id, experiment;
  std::string group;  // as RunSpec::group
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
// Several runs files as one (validate --runs A --runs B): rows in file order; `file` joins the names.
// The fitting set is the shared set plus validation/fitting_runs.yaml (docs/accuracy.md).
RunsFile load_runs(const std::vector<std::string>& specs);
// Puts every row on one software stack (validate --stack): a what-if over each row's own `stack:`.
void use_stack(RunsFile& f, const std::string& stack);

struct RunResult {
  std::string id;
  std::string metric;   // iteration_time_s | tflops_per_gpu | mfu_pct | percent_of_peak
  double published = 0, predicted = 0, error_pct = 0;
  std::string group;
  bool supported = true;  // false: refused (see `refused`), excluded from the MAPE
  bool feasible = true;   // memory verdict of the predicted plan (false: "oom" in JSON)
  std::string refused;    // why the row could not be predicted
  std::vector<std::string> assumed;  // inferred fields (RunSpec::assumed)
  std::string note;       // other remarks (predicted plan exceeds memory, ...)
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
  int counted = 0;  // predicted rows (refused rows excluded)
  int refused = 0;
  int oom = 0;      // counted rows whose predicted plan does not fit in memory
  double mape_in_memory_pct = 0, max_error_in_memory_pct = 0;  // the same without the oom rows
};

RunResult predict_run(const RunSpec& r);
LayerTimingResult predict_layer(const LayerTimingSpec& l);
ValidationSummary validate(const RunsFile& f);
// MAPE / max over results (refused rows skipped): fills the summary's error fields.
void summarize(ValidationSummary& s);

// FLOPs per iteration under a published counting convention (see the runs file's meta).
double sc21_eq3_flops(const model::ModelSpec& m, double gbs);  // 96 B s l h^2 (1 + s/6h + V/16lh)
double kor22_eq7_flops(const model::ModelSpec& m, double gbs);  // 72 B L s h^2 (1 + s/6h + V/12hL)

}  // namespace scaleplan::validation
