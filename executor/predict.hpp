#pragma once
// The analytic estimator set up for what the reference executor runs, so that measured and
// predicted numbers describe the same thing (DESIGN.md "run --json"):
//  - fp32 plans (precision=fp32 unless the plan says otherwise): 4 + 4 + 8 bytes per parameter;
//  - no fixed reserve and no allocator margin (the executor counts exactly what it allocates);
//  - the model as trained: no dropout (the executor is deterministic), unfused attention (no flash),
//    no DP/backward overlap (the executor reduces after the last microbatch).
#include <string>

#include "hardware/cluster.hpp"
#include "model/model.hpp"
#include "simulator/analytic/estimator.hpp"
#include "strategies/plan.hpp"
#include "strategies/step_report.hpp"

namespace scaleplan::executor {

// What the prediction should know about the run beyond model, plan and cluster.
struct PredictOptions {
  std::string optimizer = "adamw";  // adamw | lamb | lars: optimizer state and step bytes per parameter
  // Time the executor's own kernel list (EstimatorOptions::executor_op_time): the CPU backend.
  // Off: the estimator's GPU op model (the CUDA backend).
  bool op_time = false;
};

analytic::EstimatorOptions executor_estimator_options();
// Throws PlanError for an unknown optimizer.
analytic::EstimatorOptions executor_estimator_options(const PredictOptions& po);
model::ModelSpec executor_model(model::ModelSpec m);
hw::Cluster executor_cluster(hw::Cluster c);
// resolve_plan with fp32 as the default precision.
strategies::Plan resolve_executor_plan(strategies::Plan p, const model::ModelSpec& m, const hw::Cluster& c, long long ranks);
strategies::StepReport predict(const model::ModelSpec& m, const strategies::Plan& p, const hw::Cluster& c);
strategies::StepReport predict(const model::ModelSpec& m, const strategies::Plan& p, const hw::Cluster& c,
                               const PredictOptions& po);

}  // namespace scaleplan::executor
