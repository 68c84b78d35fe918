#pragma once
// Pipeline schedules (registry): how long a step of m microbatches takes on p stages, and how many
// microbatches' activations a stage keeps at its peak.
#include "strategies/plan.hpp"

namespace scaleplan::strategies {

struct StageTimes {
  double max_s = 0;  // slowest stage: forward + backward of one microbatch (all its chunks)
  double sum_s = 0;  // sum over stages
  double w_s = 0;    // weight-gradient (W) time of one microbatch on the slowest stage (zero-bubble fills with it)
  double w_sum_s = 0;    // W time of one microbatch summed over stages
  double w_first_s = 0;  // W time of one microbatch on the first stage
  double w_min_s = 0;    // smallest W time of one microbatch over the stages (what every stage can fill with)
  double f_max_s = 0;    // largest forward of one microbatch over the stages
  double b_max_s = 0;    // largest backward (B + W) of one microbatch over the stages
};

// The critical path every schedule must respect, for m microbatches on p stages: each stage runs
// all its m forwards and backwards (m t_max), and one microbatch passes forward then backward
// (input gradient) through every stage before the first stage's last weight gradient
// (sum_i (t_i - W_i) + W_0). Any schedule's step is at least the larger of the two
// (Narayanan et al. SC21 sec. 2.2; Qi et al. 2023 sec. 3: W may move, F and B may not).
double pipeline_lower_bound(const StageTimes& st, long long m);

struct ScheduleModel {
  Schedule kind;
  const char* name;
  // Pipeline time of the step (without the optimizer and DP tail).
  double (*time)(const StageTimes& st, int p, int v, long long m);
  // Microbatches (in units of a full stage's layers) whose activations stage `i` holds at peak.
  double (*in_flight)(int stage, int p, int v, long long m);
};

// Registry lookup (gpipe, 1f1b, interleaved, zero_bubble).
const ScheduleModel& schedule_model(Schedule s);
// Bubble fraction of ideal compute: (p-1)/m for GPipe and 1F1B, (p-1)/(v m) interleaved (SC21 sec. 2.2);
// zero_bubble (ZB-H1) with t_F = t_B = t_W: (p-1)/(3m) (Qi et al. 2023 sec. 3.1).
double bubble_fraction(Schedule s, int p, int v, long long m);

// Layers on each pipeline stage: all equal when pp divides layers; otherwise middle stages take
// ceil(L/p) and the first and last stage share the rest (Llama 3 sec. 3.3.2).
struct StageLayers {
  double first = 0, middle = 0, last = 0;
};
StageLayers stage_layers(long long layers, int pp);
// The plan's split (Plan::layers_first/middle/last, key layers=F/M/L) when it has one, else the above.
StageLayers stage_layers(const Plan& p, long long layers);

}  // namespace scaleplan::strategies
