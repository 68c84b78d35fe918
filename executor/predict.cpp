#include "executor/predict.hpp"

#include "common/errors.hpp"

namespace scaleplan::executor {

analytic::EstimatorOptions executor_estimator_options() {
  analytic::EstimatorOptions o;
  o.reserved_bytes = 0;     // the tracked allocator counts no context / library reserve
  o.allocator_margin = 0;   // nor a caching-allocator margin
  o.recipe = analytic::EstimatorOptions::RecipeKind::zero_paper;  // fp32: 4 + 4 + 8 B/param (ZeRO paper)
  o.executor_accounting = true;  // memory and bytes as executor/gpt.cpp allocates and sends them
  return o;
}

analytic::EstimatorOptions executor_estimator_options(const PredictOptions& po) {
  analytic::EstimatorOptions o = executor_estimator_options();
  // State and the bytes one optimizer call moves per parameter of the shard (executor/gpt.cpp
  // optimizer_step, cpu_backend.cpp kernels; fp32):
  //  adamw: adamw_update reads p, g, m, v and writes p, m, v                          = 28 B
  //  lamb:  lamb_direction reads p, g, m, v, writes m, v, u (28), the zero-filled u (4),
  //         sums of squares of p and u (8), axpy reads u, p and writes p (12)          = 52 B
  //  lars:  sums of squares of p and g (8), lars_update reads p, g, m, writes p, m (20) = 28 B
  struct Opt {
    const char* name;
    double state_bytes, step_bytes;
  };
  static const Opt opts[] = {{"adamw", 8, 28}, {"lamb", 8, 52}, {"lars", 4, 28}};
  for (const Opt& k : opts)
    if (po.optimizer == k.name) {
      o.optimizer_state_bytes_per_param = k.state_bytes;
      o.optimizer_bytes_per_param = k.step_bytes;
      o.executor_op_time = po.op_time;
      return o;
    }
  throw PlanError("optimizer", "unknown optimizer '" + po.optimizer + "' (adamw, lamb, lars)");
}

model::ModelSpec executor_model(model::ModelSpec m) {
  m.dropout = false;  // the executor trains without dropout (bit-reproducible runs)
  return m;
}

hw::Cluster executor_cluster(hw::Cluster c) {
  c.sw.flash_attention = false;  // unfused attention: the s x s probabilities are stored
  c.sw.dp_overlap = false;       // DP reduction after the last microbatch's backward
  c.sw.zero3_prefetch_depth = 0; // ZeRO-3 gathers block where a unit is acquired (executor/gpt.cpp acquire_params)
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

strategies::StepReport predict(const model::ModelSpec& m, const strategies::Plan& p, const hw::Cluster& c,
                               const PredictOptions& po) {
  analytic::Estimator est(executor_model(m), executor_cluster(c), executor_estimator_options(po));
  return est.evaluate(p);
}

}  // namespace scaleplan::executor
