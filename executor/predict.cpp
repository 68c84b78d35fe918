#include "executor/predict.hpp"

namespace scaleplan::executor {

analytic::EstimatorOptions executor_estimator_options() {
  analytic::EstimatorOptions o;
  o.reserved_bytes = 0;     // the tracked allocator counts no context / library reserve
  o.allocator_margin = 0;   // nor a caching-allocator margin
  o.recipe = analytic::EstimatorOptions::RecipeKind::zero_paper;  // fp32: 4 + 4 + 8 B/param (ZeRO paper)
  o.executor_accounting = true;  // memory and bytes as executor/gpt.cpp allocates and sends them
  return o;
}

model::ModelSpec executor_model(model::ModelSpec m) {
  m.dropout = false;  // the executor trains without dropout (bit-reproducible runs)
  return m;
}

hw::Cluster executor_cluster(hw::Cluster c) {
  c.sw.flash_attention = false;  // unfused attention: the s x s probabilities are stored
  c.sw.dp_overlap = false;       // DP reduction after the last microbatch's backward
  c.sw.pp_inside_dp = false;     // rank order tp, dp, pp (Grid::make)
  return c;
}

strategies::Plan resolve_executor_plan(strategies::Plan p, const model::ModelSpec& m, const hw::Cluster& c, long long ranks) {
  if (!p.precision_set) {
    p.precision = strategies::Precision::fp32;
    p.precision_set = true;
  }
  return strategies::resolve_plan(p, m, c, ranks);
}

strategies::StepReport predict(const model::ModelSpec& m, const strategies::Plan& p, const hw::Cluster& c) {
  analytic::Estimator est(executor_model(m), executor_cluster(c), executor_estimator_options());
  return est.evaluate(p);
}

}  // namespace scaleplan::executor
