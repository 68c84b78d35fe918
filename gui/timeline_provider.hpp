#pragma once
// Where the GUI's pipeline timeline (Gantt) comes from. The chart draws a strategies::Timeline from
// a provider: the SimGrid simulator's when it is built (simulator/des, plugged in by the caller),
// otherwise the analytic schedule below. No Qt here.
#include <functional>
#include <string>

#include "hardware/cluster.hpp"
#include "model/model.hpp"
#include "simulator/analytic/estimator.hpp"
#include "strategies/plan.hpp"
#include "strategies/timeline.hpp"

namespace scaleplan::gui {

// plan: resolved (strategies::resolve_plan). May throw (typed errors); the GUI shows the message.
using TimelineProvider = std::function<strategies::Timeline(const model::ModelSpec&, const hw::Cluster&, const strategies::Plan&)>;

struct NamedTimelineProvider {
  std::string label;  // shown in the chart title, e.g. "analytic schedule", "SimGrid simulation"
  TimelineProvider fn;
};

// The analytic schedule: one row per pipeline stage (Span::rank = the stage's first GPU in the
// cluster's rank order), the stage's forward and backward of each microbatch (per model chunk when
// interleaved) in the order the schedule runs them (strategies/pipeline.hpp: GPipe = all forwards
// then all backwards; 1F1B and interleaved = Megatron-LM's warm-up / steady 1F1B / cool-down order,
// megatron/core/pipeline_parallel/schedules.py), each started as soon as its stage is free and its
// input has arrived. Op durations are the estimator's per-layer costs (LayerTable: forward,
// backward, recompute and the exposed TP collectives, plus embedding and LM head on the end
// stages); each op is followed by its stage-to-stage send (the estimator's p2p time, charged to
// every stage as the estimator does). After the flush: the exposed data-parallel gradient sync, the
// optimizer step and the host step overhead, as in the estimator's step time. For even stages the
// timeline's end equals the estimator's step time (GPipe, 1F1B; tests/test_gui_core.cpp).
strategies::Timeline analytic_schedule_timeline(const analytic::Estimator& est, const strategies::Plan& plan);
NamedTimelineProvider analytic_schedule_provider();

// The rank that represents pipeline stage `stage` (its first GPU): stage * stride of the PP group.
int stage_rank(const hw::Cluster& c, const strategies::Plan& p, int stage);

}  // namespace scaleplan::gui
