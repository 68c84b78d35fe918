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

}  // namespace scaleplan::des
