// libFuzzer target: a runs file (validation::parse_runs, the schema of validate --runs), each run
// predicted as `validate` does (validation::validate: every run and layer timing), and each run's
// plan resolved and costed directly as well.
#include "tests/fuzz/fuzz_common.hpp"
#include "validation/runs.hpp"

using namespace scaleplan;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  fuzz::expect_typed_errors([&] {
    const validation::RunsFile f = validation::parse_runs(fuzz::text_of(data, size), "fuzz-runs.yaml");
    const validation::ValidationSummary v = validation::validate(f);
    for (const auto& r : v.runs) {
      // Serving rows (kind: serve, validation/serve_runs.cpp) carry no training report.
      const bool serving = r.metric.rfind("output_tokens_per_s", 0) == 0;
      if (r.supported && r.feasible && !serving) fuzz::check_report(r.report);
    }
    for (const auto& r : f.runs) {
      if (!r.refused.empty()) continue;  // a refused row carries no model to cost (validation/runs.hpp)
      const analytic::Estimator est(r.model, r.cluster);
      fuzz::cost_plan(est, r.plan, r.gpus);
    }
  });
  return 0;
}
