#pragma once
// The order in which one pipeline stage runs its forward and backward passes (plain C++, no
// SimGrid): GPipe (Huang et al. 2019: all forwards, then all backwards), 1F1B (Narayanan et al.
// SC21 sec. 2.2, PipeDream-Flush: p-i-1 warm-up forwards, then one forward one backward, then the
// cool-down backwards) and interleaved 1F1B (SC21 sec. 2.2.2; the order of Megatron-LM
// schedules.py forward_backward_pipelining_with_interleaving). zero_bubble (ZB-H1) uses the 1F1B
// order for F and B; its deferred W passes are placed by the rank program (simulate.cpp).
#include <vector>

#include "strategies/plan.hpp"

namespace scaleplan::des {

struct PipeOp {
  bool forward = true;
  int microbatch = 0;
  int chunk = 0;  // model chunk on this stage (0..v-1); virtual stage = chunk * p + stage
};

// Ops of stage `stage` (0..p-1) for m microbatches and v chunks per stage (v = 1 unless
// interleaved). Interleaved needs m % p == 0 (Megatron's rule); throws PlanError otherwise.
std::vector<PipeOp> stage_order(strategies::Schedule s, int p, int v, int m, int stage);

// Per-stage times of one microbatch (all of the stage's v chunks): forward, input-gradient
// backward (B) and weight gradient (W). Schedules other than zero_bubble run B and W as one pass.
struct StagePassTimes {
  double f_s = 0, b_s = 0, w_s = 0;
};

// The critical path (makespan) of the schedule's dependency graph: each stage runs its ops in
// stage_order, one at a time; F of (microbatch, virtual stage k) waits for F of k - 1, B for B of
// k + 1; each op of chunk c takes 1/v of the stage's time. zero_bubble (ZB-H1, Qi et al. 2023
// sec. 3.1) places the deferred W's as zero_bubble_w_slots does. No communication time.
double schedule_makespan(strategies::Schedule s, int p, int v, int m, const std::vector<StagePassTimes>& t);

// ZB-H1's static W placement (Qi et al. 2023 sec. 3.1: the schedule is fixed before the step from
// the F, B and W times): for each stage and each op of its stage_order (1F1B order, v = 1), how many
// deferred W's run before that op waits for its input: as many as finish before the input arrives
// (a W never delays an F or a B), and after a B at most `stage` W's stay deferred (the memory of
// 1F1B). The W's left run after the last op. The simulator's rank programs follow these slots.
std::vector<std::vector<int>> zero_bubble_w_slots(int p, int m, const std::vector<StagePassTimes>& t);

}  // namespace scaleplan::des
